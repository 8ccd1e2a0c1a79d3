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

/// Finds the server the service should use: `database_url` when given (a `--database-url`
/// flag), else whatever `Discovery::from_env()` finds.
pub async fn discover(database_url: Option<String>) -> Result<Server, DiscoveryError> {
    let mut discovery = Discovery::from_env();
    if database_url.is_some() {
        discovery.database_url = database_url;
    }
    discovery.discover().await
}
