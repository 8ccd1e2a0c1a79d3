//! The schema: the versioned SQL files of `migrations/` (embedded at compile time by refinery),
//! applied in order and recorded in `refinery_schema_history`, so a database at an older version
//! upgrades in place and running them again changes nothing. Also creates the database itself
//! when the server does not have it yet.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::SinkError;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// An arbitrary constant: the advisory lock that serializes concurrent `migrate` calls
/// (two service instances starting at once).
const MIGRATION_LOCK_KEY: i64 = 0x6261_7474_6c65_7301;

/// Applies every migration not yet applied. Idempotent. First rebuilds what an interrupted bulk
/// load left dropped ([`crate::bulk::repair_interrupted_bulk_load`]), so every command that
/// prepares its database starts from a whole schema.
pub async fn migrate(client: &mut Client) -> Result<refinery::Report, SinkError> {
    migrate_to(client, None).await
}

/// Applies migrations up to and including `version` (all when `None`), after repairing an
/// interrupted bulk load as [`migrate`] does. Tests use it to build a database at an older
/// version and upgrade it.
pub async fn migrate_to(
    client: &mut Client,
    version: Option<i32>,
) -> Result<refinery::Report, SinkError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let target = match version {
        Some(v) => refinery::Target::Version(v),
        None => refinery::Target::Latest,
    };
    // A bulk load a dead process left unfinished is repaired before migrating, so migrations
    // meet the schema they were written against (and the record's definitions stay current).
    let result = match crate::bulk::repair_interrupted_bulk_load(client).await {
        Ok(_) => embedded::migrations::runner()
            .set_target(target)
            .run_async(client)
            .await
            .map_err(SinkError::from),
        Err(e) => Err(e),
    };
    // The lock also goes away with the session; unlocking is a courtesy to pooled sessions.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let report = result?;
    unlock?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "applied migration");
    }
    Ok(report)
}

/// The versions the embedded migrations define, ascending.
pub fn migration_versions() -> Vec<i32> {
    let mut versions: Vec<i32> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .collect();
    versions.sort_unstable();
    versions
}

/// Parses a `postgres://` URL (or key=value string).
pub fn parse_url(url: &str) -> Result<Config, SinkError> {
    url.parse::<Config>()
        .map_err(|source| SinkError::InvalidUrl {
            url: url.to_owned(),
            source,
        })
}

/// Connects with `config`, driving the connection on a tokio task.
pub async fn connect(config: &Config) -> Result<Client, SinkError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {e}");
        }
    });
    Ok(client)
}

/// The database `config` names (`postgres` libpq-style default: the user name).
pub fn database_name(config: &Config) -> String {
    config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_owned()
}

/// The same server and credentials, but the `postgres` maintenance database.
pub fn maintenance_config(config: &Config) -> Config {
    let mut admin = config.clone();
    admin.dbname("postgres");
    admin
}

/// Creates the database `config` names when the server does not have it. Returns true when it
/// was created now.
pub async fn ensure_database(config: &Config) -> Result<bool, SinkError> {
    let name = database_name(config);
    // Connecting to the database itself is the cheap, common case.
    match connect(config).await {
        Ok(_) => return Ok(false),
        Err(SinkError::Database(e)) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {}
        Err(e) => return Err(e),
    }
    let admin = connect(&maintenance_config(config)).await?;
    match admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
    {
        Ok(()) => {
            tracing::info!(database = %name, "created database");
            Ok(true)
        }
        // Someone else created it between our two connections.
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the database if needed, connects and migrates it to the latest version.
pub async fn prepare_database(config: &Config) -> Result<(), SinkError> {
    ensure_database(config).await?;
    let mut client = connect(config).await?;
    migrate(&mut client).await?;
    Ok(())
}

/// `name` quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
