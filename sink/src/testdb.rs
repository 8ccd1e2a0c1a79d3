//! Test support: `TestDatabase::create()` makes a uniquely named, migrated database on the
//! discovered server (DATABASE_URL, the local server, or a private server when PostgreSQL is
//! installed but not running) and drops it again, so tests never touch a database they did not
//! create.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::{Client, Config};

use crate::error::SinkError;
use crate::migrate::{connect, maintenance_config, migrate, parse_url, quote_ident};
use crate::server::{Discovery, DiscoveryError, Server};
use crate::sink::{Sink, SinkConfig};

#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub server: Server,
    config: Config,
    dropped: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// Creates and migrates a fresh database on the server `Discovery::from_env()` finds. The
    /// private server, when needed, lives in the system temp directory and is shared by tests.
    pub async fn create() -> Result<TestDatabase, TestDatabaseError> {
        let mut discovery = Discovery::from_env();
        if discovery.private_dir.is_none() {
            discovery.private_dir = Some(std::env::temp_dir().join("battles-test-pgdata"));
        }
        Self::create_on(discovery.discover().await?).await
    }

    /// Creates and migrates a fresh database on `server`.
    pub async fn create_on(server: Server) -> Result<TestDatabase, TestDatabaseError> {
        let db = Self::create_empty_on(server).await?;
        let mut client = db.connect().await?;
        migrate(&mut client).await?;
        Ok(db)
    }

    /// Creates a fresh database without running migrations (for migration tests).
    pub async fn create_empty_on(server: Server) -> Result<TestDatabase, TestDatabaseError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "battles_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let admin = connect(&maintenance_config(&server.config)).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .map_err(SinkError::from)?;
        let url = server.url_for(&name);
        let config = parse_url(&url)?;
        Ok(TestDatabase {
            name,
            url,
            server,
            config,
            dropped: false,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new connection to the test database.
    pub async fn connect(&self) -> Result<Client, SinkError> {
        connect(&self.config).await
    }

    /// A sink on the test database.
    pub async fn sink(&self) -> Result<Sink, SinkError> {
        Sink::connect(SinkConfig::new(self.url.clone())).await
    }

    /// Drops the database (sessions still connected are terminated).
    pub async fn drop_database(mut self) -> Result<(), SinkError> {
        self.dropped = true;
        drop_named(&self.config, &self.name).await
    }
}

async fn drop_named(config: &Config, name: &str) -> Result<(), SinkError> {
    let admin = connect(&maintenance_config(config)).await?;
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await?;
    Ok(())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside a runtime: do the async work on a thread with its own.
        let config = self.config.clone();
        let name = self.name.clone();
        let result = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(drop_named(&config, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: thread panicked",
                self.name
            ),
        }
    }
}
