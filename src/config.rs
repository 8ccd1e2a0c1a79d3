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
//! | `recluster_topic` | `battle.recluster` | `BATTLES_RECLUSTER_TOPIC` |
//! | `retention_topic` | `data.retention` | `BATTLES_RETENTION_TOPIC` |
//! | `kafka_group_id` | `battle-service` | `BATTLES_KAFKA_GROUP_ID` |
//! | `retention_months` | `60` (`0`: the daily retention run is off; at most 1200) | `BATTLES_RETENTION_MONTHS` |
//! | `[clustering] window_secs` | `3600` | `BATTLES_CLUSTERING_WINDOW_SECS` |
//! | `[clustering] same_system_secs` | `1200` | `BATTLES_CLUSTERING_SAME_SYSTEM_SECS` |
//! | `[clustering] gate_jumps` | `2` | `BATTLES_CLUSTERING_GATE_JUMPS` |
//! | `[clustering] adjacent_secs` | `480` | `BATTLES_CLUSTERING_ADJACENT_SECS` |
//! | `[clustering] adjacent_min_characters` | `2` | `BATTLES_CLUSTERING_ADJACENT_MIN_CHARACTERS`, else `BATTLES_LINK_THRESHOLD` |
//! | `[clustering] adjacent_anyone_secs` | `450` | `BATTLES_CLUSTERING_ADJACENT_ANYONE_SECS` |
//! | `[clustering] satellite_secs` | `450` | `BATTLES_CLUSTERING_SATELLITE_SECS` |
//! | `[clustering] bucket_secs` | `3150` | `BATTLES_CLUSTERING_BUCKET_SECS` |
//! | `[clustering] min_linked_killmails` | `0` (every component is a battle) | `BATTLES_CLUSTERING_MIN_LINKED_KILLMAILS` |
//!
//! The `[clustering]` table is the link rule ([`battles_dataflow::LinkRule`], explained in
//! `docs/clustering.md`) plus `min_linked_killmails`; [`Config::engine_config`] turns it into
//! the engine's configuration. Missing keys take the defaults above. `BATTLES_LINK_THRESHOLD` is
//! the spec's name for a link score threshold (0.65); the rule has no score, and its only count
//! threshold is `adjacent_min_characters` (characters two killmails in neighbouring systems must
//! share to link up to `adjacent_secs` apart), so that is what it sets, as a whole number; when
//! `BATTLES_CLUSTERING_ADJACENT_MIN_CHARACTERS` is set too, that one wins. At load, every `*_secs`
//! must be positive, every link and the satellite window at most `window_secs` (the engine looks
//! no further), `bucket_secs` at least the longest link, and twice `satellite_secs` at most
//! `bucket_secs` (a satellite looks that far both ways inside its cell). After changing the rule,
//! stored battles are repaired by re-clustering their range (`battles recluster`).
//!
//! Every command reads its settings from here and nowhere else; a setting appears here when
//! a command reads it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use battles_dataflow::{Cluster, EngineConfig, LinkRule};
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
    /// Topic of re-clustering requests (`battle.recluster`). Default `battle.recluster`.
    pub recluster_topic: String,
    /// Topic of retention requests (`data.retention_cleanup`). Default `data.retention`.
    pub retention_topic: String,
    /// Kafka consumer group id, for monitoring only: partitions are assigned explicitly and
    /// offsets live in PostgreSQL. Default `battle-service`.
    pub kafka_group_id: String,
    /// Months of battles the service's daily retention run keeps. Default 60; 0 turns the run
    /// off. At most [`MAX_RETENTION_MONTHS`].
    pub retention_months: u32,
    /// The `[clustering]` table: the link rule and `min_linked_killmails`.
    pub clustering: ClusteringConfig,
}

/// Largest accepted `retention_months` (100 years; use 0 to keep everything).
pub const MAX_RETENTION_MONTHS: u32 = 1200;

/// The `[clustering]` table: every field of [`LinkRule`] (same names and meaning) plus
/// [`EngineConfig::min_linked_killmails`]. Missing keys take [`LinkRule::default`]'s values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusteringConfig {
    pub window_secs: i64,
    pub same_system_secs: i64,
    pub gate_jumps: usize,
    pub adjacent_secs: i64,
    pub adjacent_min_characters: usize,
    pub adjacent_anyone_secs: i64,
    pub satellite_secs: i64,
    pub bucket_secs: i64,
    /// A component needs at least this many linked (non-satellite) killmails to be a battle.
    /// Default 0: every component is one.
    pub min_linked_killmails: usize,
}

impl Default for ClusteringConfig {
    fn default() -> Self {
        ClusteringConfig::of(
            &LinkRule::default(),
            EngineConfig::default().min_linked_killmails,
        )
    }
}

impl ClusteringConfig {
    fn of(rule: &LinkRule, min_linked_killmails: usize) -> Self {
        let LinkRule {
            window_secs,
            same_system_secs,
            gate_jumps,
            adjacent_secs,
            adjacent_min_characters,
            adjacent_anyone_secs,
            satellite_secs,
            bucket_secs,
        } = rule.clone();
        ClusteringConfig {
            window_secs,
            same_system_secs,
            gate_jumps,
            adjacent_secs,
            adjacent_min_characters,
            adjacent_anyone_secs,
            satellite_secs,
            bucket_secs,
            min_linked_killmails,
        }
    }

    /// The link rule of this table.
    pub fn rule(&self) -> LinkRule {
        LinkRule {
            window_secs: self.window_secs,
            same_system_secs: self.same_system_secs,
            gate_jumps: self.gate_jumps,
            adjacent_secs: self.adjacent_secs,
            adjacent_min_characters: self.adjacent_min_characters,
            adjacent_anyone_secs: self.adjacent_anyone_secs,
            satellite_secs: self.satellite_secs,
            bucket_secs: self.bucket_secs,
        }
    }

    /// What the engine assumes of the rule (`dataflow/src/link.rs`, `cell.rs`), which it would
    /// otherwise clamp or widen silently.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("clustering.{m}")));
        let secs = [
            ("window_secs", self.window_secs),
            ("same_system_secs", self.same_system_secs),
            ("adjacent_secs", self.adjacent_secs),
            ("adjacent_anyone_secs", self.adjacent_anyone_secs),
            ("satellite_secs", self.satellite_secs),
            ("bucket_secs", self.bucket_secs),
        ];
        for (name, v) in secs {
            if v <= 0 {
                return invalid(format!("{name} must be at least 1, not {v}"));
            }
        }
        // The engine compares killmails no further apart than the window (`max_link_secs`,
        // `satellite_window` clamp to it).
        for (name, v) in &secs[1..5] {
            if *v > self.window_secs {
                return invalid(format!(
                    "{name} ({v}) must be at most window_secs ({})",
                    self.window_secs
                ));
            }
        }
        // Linked killmails must be in the same or consecutive buckets (`bucket_width` would
        // widen the buckets instead).
        let (longest, v) = secs[1..4]
            .iter()
            .max_by_key(|(_, v)| *v)
            .copied()
            .unwrap_or(("same_system_secs", self.same_system_secs));
        if self.bucket_secs < v {
            return invalid(format!(
                "bucket_secs ({}) must be at least the longest link, {longest} ({v})",
                self.bucket_secs
            ));
        }
        // A satellite in its bucket's first satellite window attaches in its home cell, which
        // holds that bucket and the one before: it sees a whole window ahead only when two
        // windows fit in a bucket.
        if self.satellite_secs.saturating_mul(2) > self.bucket_secs {
            return invalid(format!(
                "bucket_secs ({}) must be at least twice satellite_secs ({})",
                self.bucket_secs, self.satellite_secs
            ));
        }
        Ok(())
    }
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
            recluster_topic: "battle.recluster".into(),
            retention_topic: "data.retention".into(),
            kafka_group_id: "battle-service".into(),
            retention_months: 60,
            clustering: ClusteringConfig::default(),
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
        parse_env(&get, "BATTLES_RECLUSTER_TOPIC", &mut self.recluster_topic)?;
        parse_env(&get, "BATTLES_RETENTION_TOPIC", &mut self.retention_topic)?;
        parse_env(&get, "BATTLES_KAFKA_GROUP_ID", &mut self.kafka_group_id)?;
        parse_env(&get, "BATTLES_RETENTION_MONTHS", &mut self.retention_months)?;
        let c = &mut self.clustering;
        parse_env(&get, "BATTLES_CLUSTERING_WINDOW_SECS", &mut c.window_secs)?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_SAME_SYSTEM_SECS",
            &mut c.same_system_secs,
        )?;
        parse_env(&get, "BATTLES_CLUSTERING_GATE_JUMPS", &mut c.gate_jumps)?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_ADJACENT_SECS",
            &mut c.adjacent_secs,
        )?;
        // The spec's score threshold; the rule's one count threshold. The specific name wins.
        parse_env(
            &get,
            "BATTLES_LINK_THRESHOLD",
            &mut c.adjacent_min_characters,
        )?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_ADJACENT_MIN_CHARACTERS",
            &mut c.adjacent_min_characters,
        )?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_ADJACENT_ANYONE_SECS",
            &mut c.adjacent_anyone_secs,
        )?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_SATELLITE_SECS",
            &mut c.satellite_secs,
        )?;
        parse_env(&get, "BATTLES_CLUSTERING_BUCKET_SECS", &mut c.bucket_secs)?;
        parse_env(
            &get,
            "BATTLES_CLUSTERING_MIN_LINKED_KILLMAILS",
            &mut c.min_linked_killmails,
        )?;
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
        if self.retention_months > MAX_RETENTION_MONTHS {
            return Err(ConfigError::Invalid(format!(
                "retention_months ({}) must be at most {MAX_RETENTION_MONTHS} (0 keeps everything)",
                self.retention_months
            )));
        }
        self.clustering.validate()
    }

    /// The engine's configuration: the `[clustering]` rule, `min_linked_killmails` and
    /// `workers`; one process, the default cluster timeout.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            rule: self.clustering.rule(),
            min_linked_killmails: self.clustering.min_linked_killmails,
            workers: self.workers,
            ..EngineConfig::default()
        }
    }

    /// The engine of a process that drives it (`backfill`, `run`): [`Config::engine_config`],
    /// spread over `cluster` (host:port of every process, this one first) as its process 0
    /// when the list is not empty; the others run `battles engine-peer`.
    pub fn driver_engine_config(&self, cluster: &[String]) -> EngineConfig {
        EngineConfig {
            cluster: (!cluster.is_empty()).then(|| Cluster {
                addresses: cluster.to_vec(),
                process: 0,
            }),
            ..self.engine_config()
        }
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

    #[test]
    fn clustering_table_is_read_with_defaults_for_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_file(
            dir.path(),
            "retention_months = 24\n[clustering]\nadjacent_secs = 600\ngate_jumps = 1\nmin_linked_killmails = 3\n",
        );
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[(CONFIG_ENV, file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(c.retention_months, 24);
        let rule = c.clustering.rule();
        assert_eq!((rule.adjacent_secs, rule.gate_jumps), (600, 1));
        assert_eq!(c.clustering.min_linked_killmails, 3);
        let d = LinkRule::default();
        assert_eq!(
            LinkRule {
                adjacent_secs: 600,
                gate_jumps: 1,
                ..d
            },
            rule,
            "missing keys take the defaults"
        );
        let typo = toml_file(dir.path(), "[clustering]\nadjacent_sec = 600\n");
        let err = Config::load_with_env(
            &Overrides {
                config_file: Some(typo),
                ..Overrides::default()
            },
            env_of(&[]),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn defaults_are_the_engines() {
        let d = Config::default();
        assert_eq!(d.retention_months, 60);
        assert_eq!(d.clustering.rule(), LinkRule::default());
        let e = d.engine_config();
        let default = EngineConfig::default();
        assert_eq!(e.rule, default.rule);
        assert_eq!(e.min_linked_killmails, default.min_linked_killmails);
        assert_eq!(e.workers, d.workers);
    }

    #[test]
    fn clustering_env_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = toml_file(
            dir.path(),
            "[clustering]\nwindow_secs = 7200\nsame_system_secs = 900\nbucket_secs = 4000\n",
        );
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[
                (CONFIG_ENV, file.to_str().unwrap()),
                ("BATTLES_CLUSTERING_WINDOW_SECS", "5000"),
                ("BATTLES_CLUSTERING_SAME_SYSTEM_SECS", "1000"),
                ("BATTLES_CLUSTERING_GATE_JUMPS", "3"),
                ("BATTLES_CLUSTERING_ADJACENT_SECS", "500"),
                ("BATTLES_CLUSTERING_ADJACENT_MIN_CHARACTERS", "4"),
                ("BATTLES_CLUSTERING_ADJACENT_ANYONE_SECS", "300"),
                ("BATTLES_CLUSTERING_SATELLITE_SECS", "400"),
                ("BATTLES_CLUSTERING_MIN_LINKED_KILLMAILS", "2"),
                ("BATTLES_RETENTION_MONTHS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.clustering.rule(),
            LinkRule {
                window_secs: 5000,
                same_system_secs: 1000,
                gate_jumps: 3,
                adjacent_secs: 500,
                adjacent_min_characters: 4,
                adjacent_anyone_secs: 300,
                satellite_secs: 400,
                bucket_secs: 4000,
            }
        );
        assert_eq!(c.clustering.min_linked_killmails, 2);
        assert_eq!(c.retention_months, 0, "0 turns retention off and is valid");
        let e = c.engine_config();
        assert_eq!(
            e.rule,
            c.clustering.rule(),
            "engine_config carries the rule"
        );
        assert_eq!(e.min_linked_killmails, 2);
        assert_eq!(e.workers, c.workers);
        let bucket = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_CLUSTERING_BUCKET_SECS", "3300")]),
        )
        .unwrap();
        assert_eq!(bucket.engine_config().rule.bucket_secs, 3300);
    }

    #[test]
    fn link_threshold_sets_adjacent_min_characters_and_the_specific_variable_wins() {
        let c = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_LINK_THRESHOLD", "3")]),
        )
        .unwrap();
        assert_eq!(c.clustering.adjacent_min_characters, 3);
        assert_eq!(c.engine_config().rule.adjacent_min_characters, 3);
        let both = Config::load_with_env(
            &Overrides::default(),
            env_of(&[
                ("BATTLES_LINK_THRESHOLD", "3"),
                ("BATTLES_CLUSTERING_ADJACENT_MIN_CHARACTERS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(both.clustering.adjacent_min_characters, 5);
        let score = Config::load_with_env(
            &Overrides::default(),
            env_of(&[("BATTLES_LINK_THRESHOLD", "0.65")]),
        )
        .unwrap_err();
        assert!(
            score.to_string().contains("BATTLES_LINK_THRESHOLD"),
            "{score}"
        );
    }

    #[test]
    fn invalid_clustering_and_retention_values_are_refused_by_name() {
        let refused = |pairs: &[(&str, &str)], name: &str| {
            let err = Config::load_with_env(&Overrides::default(), env_of(pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{pairs:?}: {err}");
        };
        refused(
            &[("BATTLES_CLUSTERING_WINDOW_SECS", "soon")],
            "BATTLES_CLUSTERING_WINDOW_SECS",
        );
        refused(
            &[("BATTLES_CLUSTERING_GATE_JUMPS", "-1")],
            "BATTLES_CLUSTERING_GATE_JUMPS",
        );
        refused(
            &[("BATTLES_RETENTION_MONTHS", "-1")],
            "BATTLES_RETENTION_MONTHS",
        );
        refused(&[("BATTLES_RETENTION_MONTHS", "1201")], "retention_months");
        refused(
            &[("BATTLES_CLUSTERING_SATELLITE_SECS", "0")],
            "clustering.satellite_secs",
        );
        refused(
            &[("BATTLES_CLUSTERING_ADJACENT_SECS", "-5")],
            "clustering.adjacent_secs",
        );
        refused(
            &[("BATTLES_CLUSTERING_WINDOW_SECS", "0")],
            "clustering.window_secs",
        );
        // A link longer than the window: the engine would never compare the pair.
        refused(
            &[("BATTLES_CLUSTERING_WINDOW_SECS", "1000")],
            "clustering.same_system_secs (1200) must be at most window_secs",
        );
        // Buckets narrower than the longest link.
        refused(
            &[("BATTLES_CLUSTERING_BUCKET_SECS", "1199")],
            "bucket_secs (1199) must be at least the longest link, same_system_secs (1200)",
        );
        refused(
            &[
                ("BATTLES_CLUSTERING_ADJACENT_SECS", "3000"),
                ("BATTLES_CLUSTERING_BUCKET_SECS", "2999"),
            ],
            "adjacent_secs (3000)",
        );
        // Two satellite windows must fit in a bucket.
        refused(
            &[("BATTLES_CLUSTERING_SATELLITE_SECS", "1576")],
            "twice satellite_secs (1576)",
        );
        assert!(
            Config::load_with_env(
                &Overrides::default(),
                env_of(&[
                    ("BATTLES_CLUSTERING_SATELLITE_SECS", "1575"),
                    ("BATTLES_CLUSTERING_BUCKET_SECS", "3150"),
                    ("BATTLES_RETENTION_MONTHS", "1200"),
                ]),
            )
            .is_ok(),
            "the limits themselves are accepted"
        );
    }
}
