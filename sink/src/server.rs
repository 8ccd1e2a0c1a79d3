//! Finding a PostgreSQL server. In order: `DATABASE_URL`; else the local server
//! (127.0.0.1:5432, user `postgres`); else, when the PostgreSQL binaries are installed, a private
//! server of our own under a data directory (initialized on first use, on a free port, its unix
//! socket in the data directory, started with `pg_ctl` and left running for the next command);
//! else one clear error saying how to get a server.
//!
//! `initdb` and `postgres` refuse to run as root: as root the data directory is handed to the
//! `postgres` system user and the binaries run through `runuser -u postgres`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio_postgres::Config;

use crate::migrate::{database_name, maintenance_config, parse_url};

/// The database used when `DATABASE_URL` names none.
pub const DEFAULT_DATABASE: &str = "battles_db";
/// The local server tried when `DATABASE_URL` is not set.
pub const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// Forces the private server even when a local one answers (tests of that path).
pub const FORCE_PRIVATE_ENV: &str = "BATTLES_PG_PRIVATE";
/// Overrides the private server's data directory.
pub const PRIVATE_DIR_ENV: &str = "BATTLES_PGDATA";

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL ({url:?}): {message}")]
    BadUrl { url: String, message: String },
    #[error("PostgreSQL at DATABASE_URL ({url}) does not answer: {message}")]
    Unreachable { url: String, message: String },
    #[error(
        "no PostgreSQL server: none answers at 127.0.0.1:5432 and the PostgreSQL binaries \
         (initdb, pg_ctl) are not installed. Start one with `docker compose up -d postgres`, \
         install PostgreSQL (e.g. `apt-get install postgresql`), or set DATABASE_URL"
    )]
    NoServer,
    #[error("private PostgreSQL server in {dir}: {message}")]
    Private { dir: PathBuf, message: String },
}

/// Where the server came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOrigin {
    DatabaseUrl,
    Local,
    Private { data_dir: PathBuf, port: u16 },
}

/// A server that answered, with the URL of the database the service uses on it.
#[derive(Clone, Debug)]
pub struct Server {
    /// Connection URL including the database name.
    pub url: String,
    pub config: Config,
    pub origin: ServerOrigin,
}

impl Server {
    /// The database name the URL points at.
    pub fn database(&self) -> String {
        database_name(&self.config)
    }

    /// The same server, another database.
    pub fn url_for(&self, database: &str) -> String {
        replace_database(&self.url, database)
    }
}

/// Discovery options.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// `DATABASE_URL` (or `--database-url`).
    pub database_url: Option<String>,
    /// Skip `DATABASE_URL` and the local server.
    pub force_private: bool,
    /// Data directory of the private server; default `.battles/pgdata` in the working directory.
    pub private_dir: Option<PathBuf>,
    /// Database name used on the local or private server.
    pub database: Option<String>,
}

impl Discovery {
    /// Options from the environment: `DATABASE_URL`, `BATTLES_PG_PRIVATE=1`, `BATTLES_PGDATA`.
    pub fn from_env() -> Discovery {
        Discovery {
            database_url: std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()),
            force_private: std::env::var(FORCE_PRIVATE_ENV).is_ok_and(|v| v == "1" || v == "true"),
            private_dir: std::env::var_os(PRIVATE_DIR_ENV).map(PathBuf::from),
            database: None,
        }
    }

    /// Finds (or starts) a server. Says on stderr when it starts a private one.
    pub async fn discover(&self) -> Result<Server, DiscoveryError> {
        let database = self.database.as_deref().unwrap_or(DEFAULT_DATABASE);
        if !self.force_private {
            if let Some(url) = &self.database_url {
                let config = parse_url(url).map_err(|e| DiscoveryError::BadUrl {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
                let url = if config.get_dbname().is_some() {
                    url.clone()
                } else {
                    replace_database(url, DEFAULT_DATABASE)
                };
                answers(&config)
                    .await
                    .map_err(|message| DiscoveryError::Unreachable {
                        url: redact(&url),
                        message,
                    })?;
                return Ok(server(url, ServerOrigin::DatabaseUrl));
            }
            let local = format!("{LOCAL_URL}/{database}");
            let config = parse_url(&local).expect("the local URL parses");
            if answers(&config).await.is_ok() {
                return Ok(server(local, ServerOrigin::Local));
            }
        }
        let Some(bin) = find_binaries() else {
            return Err(DiscoveryError::NoServer);
        };
        let dir = self
            .private_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".battles/pgdata"));
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let private = tokio::task::spawn_blocking(move || PrivateServer::start(&bin, &dir))
            .await
            .map_err(|e| DiscoveryError::Private {
                dir: PathBuf::new(),
                message: e.to_string(),
            })??;
        let url = private.url(database);
        Ok(server(
            url,
            ServerOrigin::Private {
                data_dir: private.data_dir,
                port: private.port,
            },
        ))
    }
}

fn server(url: String, origin: ServerOrigin) -> Server {
    let config = parse_url(&url).expect("a discovered URL parses");
    Server {
        url,
        config,
        origin,
    }
}

/// Ok when the server behind `config` accepts a connection (to its maintenance database: the
/// service database may not exist yet).
async fn answers(config: &Config) -> Result<(), String> {
    let mut admin = maintenance_config(config);
    admin.connect_timeout(Duration::from_secs(3));
    match admin.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            // The connection ends once the client is gone.
            let _ = connection.await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `url` with its database path replaced by `database`.
pub fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{}:***{}", &url[..scheme_end], user, &rest[at..])
                }
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest
/// `/usr/lib/postgresql/*/bin`, else `PATH`.
pub fn find_binaries() -> Option<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// A PostgreSQL server of our own, in its own data directory.
#[derive(Clone, Debug)]
pub struct PrivateServer {
    pub data_dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

impl PrivateServer {
    /// Starts the server in `data_dir` (initializing the directory on first use), or attaches to
    /// it when it is already running. Blocking: runs `initdb` and `pg_ctl`.
    pub fn start(bin: &Path, data_dir: &Path) -> Result<PrivateServer, DiscoveryError> {
        let err = |message: String| DiscoveryError::Private {
            dir: data_dir.to_owned(),
            message,
        };
        let as_root = is_root();
        if let Some(port) = running_port(data_dir) {
            return Ok(PrivateServer {
                data_dir: data_dir.to_owned(),
                port,
                bin: bin.to_owned(),
            });
        }
        if !data_dir.join("PG_VERSION").is_file() {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| err(format!("cannot create the data directory: {e}")))?;
            if as_root {
                chown_to_postgres(data_dir).map_err(err)?;
            }
            eprintln!(
                "battles: no PostgreSQL server answers; initializing a private one in {}",
                data_dir.display()
            );
            let out = pg_command(bin, "initdb", as_root)
                .arg("-D")
                .arg(data_dir)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ])
                .output()
                .map_err(|e| err(format!("cannot run initdb: {e}")))?;
            if !out.status.success() {
                return Err(err(format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        let port = free_port().map_err(|e| err(format!("no free port: {e}")))?;
        let log = data_dir.join("server.log");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}'",
            data_dir.display()
        );
        let out = pg_command(bin, "pg_ctl", as_root)
            .arg("-D")
            .arg(data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .map_err(|e| err(format!("cannot run pg_ctl: {e}")))?;
        if !out.status.success() {
            let log_tail = std::fs::read_to_string(&log)
                .map(|s| s.lines().rev().take(5).collect::<Vec<_>>().join(" | "))
                .unwrap_or_default();
            return Err(err(format!(
                "pg_ctl start failed: {} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                log_tail
            )));
        }
        eprintln!(
            "battles: started a private PostgreSQL server on 127.0.0.1:{port} (data {}, log {}); \
             stop it with: pg_ctl -D {} stop",
            data_dir.display(),
            log.display(),
            data_dir.display()
        );
        Ok(PrivateServer {
            data_dir: data_dir.to_owned(),
            port,
            bin: bin.to_owned(),
        })
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server (fast shutdown: open sessions are disconnected).
    pub fn stop(&self) -> Result<(), DiscoveryError> {
        let out = pg_command(&self.bin, "pg_ctl", is_root())
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .map_err(|e| DiscoveryError::Private {
                dir: self.data_dir.clone(),
                message: format!("cannot run pg_ctl: {e}"),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(DiscoveryError::Private {
                dir: self.data_dir.clone(),
                message: format!(
                    "pg_ctl stop failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

/// The port of the server running in `data_dir`, read from its `postmaster.pid`, when that
/// process is alive.
fn running_port(data_dir: &Path) -> Option<u16> {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = pid_file.lines();
    let pid: u32 = lines.next()?.trim().parse().ok()?;
    let port: u16 = lines.nth(2)?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(port)
}

/// A port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `bin/program`, run as the `postgres` user when we are root.
fn pg_command(bin: &Path, program: &str, as_root: bool) -> Command {
    let exe = bin.join(program);
    let mut c = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    // The `postgres` user may not be allowed into our working directory; every path we pass is
    // absolute.
    c.current_dir("/");
    c
}

/// Hands `dir` to the `postgres` system user (it must exist: the PostgreSQL packages create it).
fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let (uid, gid) = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
                .flatten()
        })
        .ok_or("running as root and there is no `postgres` user to run the server as")?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://u@h:5432/old?sslmode=disable", "new"),
            "postgres://u@h:5432/new?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
