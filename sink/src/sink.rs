//! The `Sink`: a connection pool to the battles database and `apply`, which writes one step's
//! changes in one transaction and retries the whole transaction with bounded exponential backoff
//! while PostgreSQL is unreachable, so a restarting database pauses the pipeline instead of
//! failing it.

use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Config, NoTls};

use crate::changes::StepChanges;
use crate::copy::Writes;
use crate::error::SinkError;
use crate::migrate::{parse_url, prepare_database};
use crate::write::{write, AppliedStats, ReferenceChecks};

/// How `apply` retries transient failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Transactions tried at most (the first one included).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Up to 12 attempts, 100 ms doubling to 10 s: about a minute of outage is ridden out.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 12,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Where and how the sink connects.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// `postgres://user@host:port/battles_db`
    pub database_url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    pub retry: RetryPolicy,
}

impl SinkConfig {
    pub fn new(database_url: impl Into<String>) -> SinkConfig {
        SinkConfig {
            database_url: database_url.into(),
            pool_size: 4,
            retry: RetryPolicy::default(),
        }
    }
}

/// The advisory lock key that makes one process the battles writer of a database.
pub(crate) const WRITER_LOCK_KEY: i64 = 0x0062_6174_746c_6573; // "battles"

/// Held while this process is the database's battles writer; dropping it closes its own
/// connection, which releases the lock (so does the process dying).
pub struct WriterLock {
    _client: tokio_postgres::Client,
}

/// Writes battle changes to PostgreSQL.
pub struct Sink {
    pool: Pool,
    config: SinkConfig,
    pg_config: Config,
    checks: ReferenceChecks,
}

impl Sink {
    /// Creates the database if it does not exist, migrates it to the latest schema and opens
    /// the pool. Retries (per the retry policy) while the server does not answer.
    pub async fn connect(config: SinkConfig) -> Result<Sink, SinkError> {
        let pg_config = parse_url(&config.database_url)?;
        let retry = config.retry;
        with_retry(retry, "prepare database", || prepare_database(&pg_config)).await?;
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()?;
        let checks = with_retry(retry, "connect", || async {
            let client = crate::migrate::connect(&pg_config).await?;
            Ok(ReferenceChecks::allowed(&client).await)
        })
        .await?;
        Ok(Sink {
            pool,
            config,
            pg_config,
            checks,
        })
    }

    /// Takes the database's writer lock, a session advisory lock on a connection of its own:
    /// two writers (two backfills, a backfill and the live service) would interleave changes
    /// computed from different views of the same battles. Fails at once with
    /// [`SinkError::WriterBusy`], naming the holder, when another session has it.
    pub async fn lock_writer(&self) -> Result<WriterLock, SinkError> {
        let client = with_retry(self.config.retry, "connect for the writer lock", || {
            crate::migrate::connect(&self.pg_config)
        })
        .await?;
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK_KEY])
            .await?
            .get(0);
        if taken {
            return Ok(WriterLock { _client: client });
        }
        let holder = client
            .query_opt(
                "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'),
                        a.backend_start::text
                 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND ((l.classid::int8 << 32) | l.objid::int8) = $1
                 LIMIT 1",
                &[&WRITER_LOCK_KEY],
            )
            .await?
            .map(|r| {
                format!(
                    "backend pid {}, application {:?}, from {}, connected {}",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3)
                )
            })
            .unwrap_or_else(|| "holder unknown".to_owned());
        Err(SinkError::WriterBusy { holder })
    }

    /// Whether the child rows this sink copies skip their foreign-key checks: decided once, by
    /// what the role may do, when the sink connects.
    pub fn reference_checks(&self) -> ReferenceChecks {
        self.checks
    }

    /// The same sink, checking every copied row's references whatever the role may skip.
    pub fn checking_every_reference(self) -> Sink {
        Sink {
            checks: ReferenceChecks::Always,
            ..self
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn config(&self) -> &SinkConfig {
        &self.config
    }

    pub fn pg_config(&self) -> &Config {
        &self.pg_config
    }

    /// Writes everything of one step in one transaction: battles and their rows, aliases,
    /// stored and retracted killmails, rejections, source offsets and outbox events. Either all
    /// of it commits or none of it does. Transient failures retry the whole transaction;
    /// permanent ones (inconsistent input, constraint violations) are returned.
    pub async fn apply(&self, changes: StepChanges) -> Result<AppliedStats, SinkError> {
        let started = Instant::now();
        let writes = Writes::of(&changes)?;
        let mut attempts = 0;
        let first = with_retry(self.config.retry, "apply step", || {
            attempts += 1;
            self.apply_once(&writes)
        })
        .await;
        let mut stats = match first {
            Err(e) if writes.copies() && crate::copy::is_broken_promise(&e) => {
                tracing::warn!("rows promised new were stored already ({e}); upserting them");
                let upserts = Writes::upserting(&changes)?;
                with_retry(self.config.retry, "apply step", || {
                    attempts += 1;
                    self.apply_once(&upserts)
                })
                .await?
            }
            other => other?,
        };
        stats.attempts = attempts;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            ?stats,
            "applied step"
        );
        Ok(stats)
    }

    async fn apply_once(&self, writes: &Writes) -> Result<AppliedStats, SinkError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = chrono::Utc::now();
        let mut stats = AppliedStats::default();
        if let Some(plan) = &writes.copied {
            stats.add(&write(&tx, plan, now, true, self.checks).await?);
        }
        if let Some(plan) = &writes.upserted {
            stats.add(&write(&tx, plan, now, false, self.checks).await?);
        }
        tx.commit().await?;
        Ok(stats)
    }
}

/// Runs `op` until it succeeds, fails permanently, or `policy.max_attempts` is reached; logs
/// each retry.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    what: &str,
    mut op: F,
) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SinkError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < policy.max_attempts => {
                let pause = policy.backoff(attempt);
                tracing::warn!(
                    attempt,
                    max_attempts = policy.max_attempts,
                    retry_in_ms = pause.as_millis() as u64,
                    "{what}: PostgreSQL unavailable ({e}); retrying"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(e) if e.is_transient() => {
                return Err(SinkError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 50,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(800));
        assert_eq!(p.backoff(6), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(2));
    }
}
