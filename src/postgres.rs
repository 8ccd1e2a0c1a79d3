//! Where the service's PostgreSQL comes from: `DATABASE_URL`, else the local server
//! (127.0.0.1:5432, user `postgres`), else a private server started under `.battles/pgdata`
//! when the PostgreSQL binaries are installed, else a clear error. The machinery lives in
//! `battles_sink::server` (the sink crate owns everything PostgreSQL); this module is the
//! service's door to it, plus `TestDatabase` for tests.

pub use battles_sink::server::{
    find_binaries, redact, replace_database, Discovery, DiscoveryError, PrivateServer, Server,
    ServerOrigin, DEFAULT_DATABASE, FORCE_PRIVATE_ENV, LOCAL_URL, PRIVATE_DIR_ENV,
};
pub use battles_sink::testdb::{TestDatabase, TestDatabaseError};

/// Finds the server the service should use: `database_url` (the configuration's, which
/// already folds in `DATABASE_URL` and `--database-url`) when given, else the local server,
/// else a private one. The other discovery options come from the environment.
pub async fn discover(database_url: Option<String>) -> Result<Server, DiscoveryError> {
    let mut discovery = Discovery::from_env();
    discovery.database_url = database_url;
    discovery.discover().await
}

/// Finds the server as [`discover`] does for `config`, says which one on stderr, and connects
/// a sink of `config.pg_pool_size` sessions to it (creating and migrating the database first).
pub async fn connect_sink(
    config: &crate::config::Config,
) -> anyhow::Result<(Server, battles_sink::Sink)> {
    use anyhow::Context;
    let server = discover(config.database_url.clone()).await?;
    let shown = redact(&server.url);
    eprintln!("database: {shown}");
    let sink = battles_sink::Sink::connect(battles_sink::SinkConfig {
        pool_size: config.pg_pool_size,
        ..battles_sink::SinkConfig::new(server.url.clone())
    })
    .await
    .with_context(|| format!("connecting to {shown}"))?;
    Ok((server, sink))
}
