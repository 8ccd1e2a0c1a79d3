//! The service configuration: one typed [`Config`], built from its defaults, then an optional TOML
//! file (`--config` or `BATTLES_CONFIG`), then environment variables, then command-line flags
//! ([`Overrides`]), each later source winning over the earlier ones.
//!
//! | field | default | environment |
//! |---|---|---|
//! | `database_url` | none: the local server, else a private one (see `postgres.rs`) | `DATABASE_URL` |
//! | `workers` | available cores | `BATTLES_WORKERS` |
//! | `time_skew_secs` | `3600` | `BATTLES_TIME_SKEW_SECS` |
//! | `rejects_path` | none (beside the output) | `BATTLES_REJECTS` |
//! | `max_record_bytes` | `16777216` (16 MiB) | `BATTLES_MAX_RECORD_BYTES` |
//! | `pg_pool_size` | `4` | `BATTLES_PG_POOL_SIZE` |
//! | `admin_token` | none (admin endpoints closed) | `BATTLES_ADMIN_TOKEN` |
//! | `cors_origins` | none | `BATTLES_CORS_ORIGINS` (comma separated, `*` for any) |
//! | `esi_base_url` | `https://esi.evetech.net/latest` | `BATTLES_ESI_BASE_URL` |
//! | `resolve_names` | `false` | `BATTLES_RESOLVE_NAMES` |
//! | `listen` | `127.0.0.1:8080` | `BATTLES_LISTEN` |
//! | `kafka_brokers` | none: `battles run` replays the bundled day instead | `BATTLES_KAFKA_BROKERS` |
//! | `killmail_topic` | `killmail.enriched` | `BATTLES_KILLMAIL_TOPIC` |
//! | `events_topic` | `battle.events` | `BATTLES_EVENTS_TOPIC` |
//! | `kafka_group_id` | `battle-service` | `BATTLES_KAFKA_GROUP_ID` |
//!
//! Every command reads its settings from here and nowhere else; a setting appears here when
//! a command reads it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Environment variable naming the TOML configuration file.
pub const CONFIG_ENV: &str = "BATTLES_CONFIG";

/// Everything the service can be told. Unknown keys in the TOML file are errors (typos must not
/// pass silently).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL connection URL. Default none: the local server on 127.0.0.1:5432 (database
    /// `battles_db`), else a private server (`battles::postgres::discover`).
    pub database_url: Option<String>,
    /// Worker threads of the engine. Default: the number of available cores.
    pub workers: usize,
    /// How far in the future a killmail time may be before it is rejected, in seconds.
    /// Default 3600 (one hour).
    pub time_skew_secs: u64,
    /// Where rejected records go for file sources. Default: none, meaning `<output>.rejects.jsonl`
    /// beside a command's output, or nowhere for `check` (which only counts).
    pub rejects_path: Option<PathBuf>,
    /// Largest accepted record in bytes; longer ones are rejected as too large.
    /// Default 16 MiB.
    pub max_record_bytes: usize,
    /// PostgreSQL connections in the pool. Default 4.
    pub pg_pool_size: usize,
    /// HTTP listen address of `battles serve`. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Bearer token of the API's admin endpoints. Default none: they answer 403.
    pub admin_token: Option<battles_api::Secret>,
    /// Origins the API allows by CORS (`*` for any). Default none.
    pub cors_origins: Vec<String>,
    /// ESI base URL of the optional names resolver.
    pub esi_base_url: String,
    /// Ask ESI for names the killmails did not carry. Default false.
    pub resolve_names: bool,
    /// Kafka bootstrap servers of `battles run` (`host:port,...`). Default none: `run` replays
    /// the bundled day (or the files it is given) through the same path.
    pub kafka_brokers: Option<String>,
    /// Topic `battles run` consumes. Default `killmail.enriched`.
    pub killmail_topic: String,
    /// Topic the event relay publishes to. Default `battle.events`.
    pub events_topic: String,
    /// Kafka consumer group id, for monitoring only: partitions are assigned explicitly and
    /// offsets live in PostgreSQL. Default `battle-service`.
    pub kafka_group_id: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: None,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            time_skew_secs: crate::ingest::DEFAULT_TIME_SKEW_SECS,
            rejects_path: None,
            max_record_bytes: crate::sources::DEFAULT_MAX_RECORD_BYTES,
            pg_pool_size: 4,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            cors_origins: Vec::new(),
            esi_base_url: "https://esi.evetech.net/latest".into(),
            resolve_names: false,
            kafka_brokers: None,
            killmail_topic: "killmail.enriched".into(),
            events_topic: "battle.events".into(),
            kafka_group_id: "battle-service".into(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config FILE` (wins over `BATTLES_CONFIG`).
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub workers: Option<usize>,
    pub time_skew_secs: Option<u64>,
    pub rejects_path: Option<PathBuf>,
    pub max_record_bytes: Option<usize>,
    pub pg_pool_size: Option<usize>,
    pub kafka_brokers: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file, then the process environment, then `overrides`.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load_with_env(overrides, |var| std::env::var(var).ok())
    }

    /// [`Config::load`] with the environment given as a lookup function (for tests).
    pub fn load_with_env(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
        let mut config = match file {
            Some(path) => Config::from_file(&path)?,
            None => Config::default(),
        };
        config.apply_env(&env)?;
        config.apply_overrides(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Defaults overlaid with a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |var: &str| env(var).filter(|v| !v.is_empty());
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = Some(v);
        }
        parse_env(&get, "BATTLES_LISTEN", &mut self.listen)?;
        parse_env(&get, "BATTLES_WORKERS", &mut self.workers)?;
        parse_env(&get, "BATTLES_TIME_SKEW_SECS", &mut self.time_skew_secs)?;
        parse_env(&get, "BATTLES_MAX_RECORD_BYTES", &mut self.max_record_bytes)?;
        parse_env(&get, "BATTLES_PG_POOL_SIZE", &mut self.pg_pool_size)?;
        if let Some(v) = get("BATTLES_REJECTS") {
            self.rejects_path = Some(PathBuf::from(v));
        }
        if let Some(v) = get("BATTLES_ADMIN_TOKEN") {
            self.admin_token = Some(battles_api::Secret::new(v));
        }
        if let Some(v) = get("BATTLES_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = get("BATTLES_ESI_BASE_URL") {
            self.esi_base_url = v;
        }
        parse_env(&get, "BATTLES_RESOLVE_NAMES", &mut self.resolve_names)?;
        if let Some(v) = get("BATTLES_KAFKA_BROKERS") {
            self.kafka_brokers = Some(v);
        }
        parse_env(&get, "BATTLES_KILLMAIL_TOPIC", &mut self.killmail_topic)?;
        parse_env(&get, "BATTLES_EVENTS_TOPIC", &mut self.events_topic)?;
        parse_env(&get, "BATTLES_KAFKA_GROUP_ID", &mut self.kafka_group_id)?;
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides) {
        fn set<T: Clone>(target: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *target = v.clone();
            }
        }
        if o.database_url.is_some() {
            self.database_url = o.database_url.clone();
        }
        set(&mut self.listen, &o.listen);
        set(&mut self.workers, &o.workers);
        set(&mut self.time_skew_secs, &o.time_skew_secs);
        set(&mut self.max_record_bytes, &o.max_record_bytes);
        set(&mut self.pg_pool_size, &o.pg_pool_size);
        if o.rejects_path.is_some() {
            self.rejects_path = o.rejects_path.clone();
        }
        if o.kafka_brokers.is_some() {
            self.kafka_brokers = o.kafka_brokers.clone();
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::Invalid("workers must be at least 1".into()));
        }
        if self.max_record_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_record_bytes must be at least 1".into(),
            ));
        }
        if self.pg_pool_size == 0 {
            return Err(ConfigError::Invalid(
                "pg_pool_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn parse_env<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    target: &mut T,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = get(var) {
        *target = value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
            var,
            value: value.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn toml_file(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("battles.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_without_file_env_or_flags() {
        let c = Config::load_with_env(&Overrides::default(), env_of(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.time_skew_secs, 3600);
        assert!(c.workers >= 1);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_file(
            dir.path(),
            "time_skew_secs = 10\nworkers = 3\ndatabase_url = \"postgres://file\"\npg_pool_size = 6\n",
        );
        let env = env_of(&[
            (CONFIG_ENV, file.to_str().unwrap()),
            ("BATTLES_TIME_SKEW_SECS", "20"),
            ("DATABASE_URL", "postgres://env"),
        ]);
        let flags = Overrides {
            time_skew_secs: Some(30),
            ..Overrides::default()
        };
        let c = Config::load_with_env(&flags, env).unwrap();
        assert_eq!(c.time_skew_secs, 30, "flag beats env and file");
        assert_eq!(
            c.database_url.as_deref(),
            Some("postgres://env"),
            "env beats file"
        );
        assert_eq!(c.workers, 3, "file beats default");
        assert_eq!(c.pg_pool_size, 6);
        assert_eq!(
            c.max_record_bytes,
            Config::default().max_record_bytes,
            "default stays"
        );
    }

    #[test]
    fn a_config_files_database_url_is_used_without_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_file(dir.path(), "database_url = \"postgres://file/db\"\n");
        let env = env_of(&[(CONFIG_ENV, file.to_str().unwrap())]);
        let c = Config::load_with_env(&Overrides::default(), env).unwrap();
        assert_eq!(c.database_url.as_deref(), Some("postgres://file/db"));
        // A flag still wins.
        let flags = Overrides {
            config_file: Some(file),
            database_url: Some("postgres://flag/db".into()),
            ..Overrides::default()
        };
        let c = Config::load_with_env(&flags, env_of(&[])).unwrap();
        assert_eq!(c.database_url.as_deref(), Some("postgres://flag/db"));
    }

    #[test]
    fn config_flag_beats_config_env() {
        let dir = tempfile::tempdir().unwrap();
        let from_flag = toml_file(dir.path(), "workers = 7\n");
        let env = env_of(&[(CONFIG_ENV, "/nonexistent/battles.toml")]);
        let flags = Overrides {
            config_file: Some(from_flag),
            ..Overrides::default()
        };
        assert_eq!(Config::load_with_env(&flags, env).unwrap().workers, 7);
    }

    #[test]
    fn api_fields_come_from_env() {
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[
                ("BATTLES_ADMIN_TOKEN", "s3cret"),
                (
                    "BATTLES_CORS_ORIGINS",
                    "https://a.example, https://b.example",
                ),
                ("BATTLES_RESOLVE_NAMES", "true"),
                ("BATTLES_ESI_BASE_URL", "http://127.0.0.1:9"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.admin_token.as_ref().map(battles_api::Secret::expose),
            Some("s3cret")
        );
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the token shows in Debug"
        );
        assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
        assert!(c.resolve_names);
        assert_eq!(c.esi_base_url, "http://127.0.0.1:9");
        let d = Config::default();
        assert_eq!((d.admin_token, d.resolve_names), (None, false));
    }

    #[test]
    fn kafka_fields_come_from_env_and_flags() {
        let d = Config::default();
        assert_eq!(d.kafka_brokers, None);
        assert_eq!(
            (d.killmail_topic.as_str(), d.events_topic.as_str()),
            ("killmail.enriched", "battle.events")
        );
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[
                ("BATTLES_KAFKA_BROKERS", "k1:9092,k2:9092"),
                ("BATTLES_KILLMAIL_TOPIC", "km"),
                ("BATTLES_EVENTS_TOPIC", "ev"),
                ("BATTLES_KAFKA_GROUP_ID", "g"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka_brokers.as_deref(), Some("k1:9092,k2:9092"));
        assert_eq!(
            (c.killmail_topic.as_str(), c.events_topic.as_str()),
            ("km", "ev")
        );
        assert_eq!(c.kafka_group_id, "g");
        let flagged = Config::load_with_env(
            &Overrides {
                kafka_brokers: Some("flag:1".into()),
                ..Overrides::default()
            },
            env_of(&[("BATTLES_KAFKA_BROKERS", "env:1")]),
        )
        .unwrap();
        assert_eq!(flagged.kafka_brokers.as_deref(), Some("flag:1"));
    }

    #[test]
    fn pool_size_comes_from_env_and_must_be_positive() {
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_PG_POOL_SIZE", "9")]),
        )
        .unwrap();
        assert_eq!(c.pg_pool_size, 9);
        let zero = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_PG_POOL_SIZE", "0")]),
        );
        assert!(matches!(zero, Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn bad_values_are_errors_not_defaults() {
        let err = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_WORKERS", "many")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("BATTLES_WORKERS"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let typo = toml_file(dir.path(), "time_skew = 5\n");
        let err = Config::load_with_env(
            &Overrides {
                config_file: Some(typo),
                ..Overrides::default()
            },
            env_of(&[]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let zero =
            Config::load_with_env(&Overrides::default(), env_of(&[("BATTLES_WORKERS", "0")]));
        assert!(matches!(zero, Err(ConfigError::Invalid(_))));
        let missing = Config::load_with_env(
            &Overrides::default(),
            env_of(&[(CONFIG_ENV, "/nonexistent/battles.toml")]),
        );
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
    }
}
