//! The sink's error type and the line between transient failures (the database went away or
//! asked us to retry: the whole transaction is retried) and permanent ones (a bug or bad schema:
//! returned to the caller).

use tokio_postgres::error::SqlState;

/// Everything the sink can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("database error: {}", describe_pg(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("could not build the connection pool: {0}")]
    PoolBuild(#[from] deadpool_postgres::BuildError),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("invalid database url {url:?}: {source}")]
    InvalidUrl {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("inconsistent step changes: {0}")]
    InconsistentChanges(String),
    #[error(
        "another process is writing battles to this database ({holder}); wait for it to \
         finish or stop it, then run again"
    )]
    WriterBusy { holder: String },
    #[error("stored killmail {killmail_id} does not decode: {source}")]
    StoredKillmail {
        killmail_id: i64,
        source: crate::record::RecordError,
    },
    #[error("stored row of battle {battle_id} does not decode: {message}")]
    StoredBattle {
        battle_id: uuid::Uuid,
        message: String,
    },
    #[error(
        "a bulk load needs this database's writer lock (Sink::lock_writer), and no session \
         holds it"
    )]
    BulkLoadWithoutWriterLock,
    #[error(
        "a bulk load is in progress or was interrupted: {objects} dropped indexes and \
         constraints are recorded in bulk_load_dropped_objects; finish it (or let the next \
         command repair it) before beginning another"
    )]
    BulkLoadPending { objects: i64 },
    #[error(
        "rebuilding the indexes and constraints a bulk load dropped failed; \
         bulk_load_dropped_objects keeps the {pending} still missing, so the rebuild is retried \
         by the next command (repair_interrupted_bulk_load) once the cause is removed: {}",
        .failures.join("; ")
    )]
    BulkRebuild { failures: Vec<String>, pending: i64 },
    #[error("bulk-load marker row {table}.{name} is not understood: {message}")]
    BulkMarker {
        table: String,
        name: String,
        message: String,
    },
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<SinkError> },
}

impl SinkError {
    /// True when retrying the same transaction later can succeed: the connection broke, the
    /// server is shutting down or starting, or it reported a serialization failure or deadlock.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Database(e) => is_transient_pg(e),
            SinkError::Pool(deadpool_postgres::PoolError::Backend(e)) => is_transient_pg(e),
            SinkError::Pool(deadpool_postgres::PoolError::Timeout(_)) => true,
            SinkError::Pool(_) => false,
            _ => false,
        }
    }
}

/// The error with the server's message, SQLSTATE and detail when there is one (the plain
/// `Display` of `tokio_postgres::Error` says only "db error").
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!("; {detail}"));
            }
            s
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Transient PostgreSQL errors: connection loss and the SQLSTATEs that mean "try again".
pub(crate) fn is_transient_pg(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection exception
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || c.starts_with("53") // insufficient resources
        }
        // No SQLSTATE: transient when it is an I/O error (refused connection, reset socket) or a
        // connect timeout; a parameter that does not serialize is a bug, not a reason to retry.
        None => {
            std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().starts_with("timeout")
        }
    }
}
