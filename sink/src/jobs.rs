//! The `clustering_jobs` queue: re-clustering and retention jobs, however they were asked for
//! (`POST /api/battles/recluster`, the `battle.recluster` and `data.retention` topics, the
//! service's daily retention run, `battles recluster` / `battles retention`).
//!
//! One owner of the queue's rules:
//! - **Order**: pending jobs by priority (`high`, `normal`, `low`), then age.
//! - **Retries**: a failed job is tried again after a backoff that doubles with each attempt
//!   ([`JobQueue::backoff`]), until it has failed [`JobQueue::max_attempts`] times; a job that
//!   can never succeed (its range is invalid) fails for good at once.
//! - **Dead owners**: only the database's writer (who holds the writer lock) runs jobs, so a
//!   job found `running` when a writer starts belongs to a process that died: it is put back to
//!   `pending` ([`Sink::resume_abandoned_jobs`]) and continues where it stopped: a job's
//!   progress (`killmails_processed`, the battle counts and the slices done, kept in
//!   `source_offsets` under `job:<id>`) is written in the same transaction as the battle rows
//!   of each slice ([`JobStep`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::SinkError;
use crate::sink::{with_retry, Sink};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Re-run the engine over the stored killmails of a date range and apply the difference.
    Recluster,
    /// Soft-delete the battles that ended before a cutoff (the job's `end_date`).
    Retention,
}

impl JobKind {
    /// The `clustering_jobs.job_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Recluster => "reclustering",
            JobKind::Retention => "retention_cleanup",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "reclustering" => Some(JobKind::Recluster),
            "retention_cleanup" => Some(JobKind::Retention),
            _ => None,
        }
    }
}

/// A job's priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Normal,
    High,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Normal, Priority::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One `clustering_jobs` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    /// `None` for a job type this version does not run (it is failed with a message).
    pub kind: Option<JobKind>,
    pub job_type: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub status: String,
    pub priority: String,
    pub killmails_processed: i64,
    pub battles_created: i64,
    pub battles_updated: i64,
    pub battles_deleted: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    pub retry_count: i32,
}

impl Job {
    /// The `source_offsets` key of the job's slices done.
    pub fn cursor_key(&self) -> String {
        cursor_key(self.id)
    }
}

/// The `source_offsets` key under which a job's count of slices done is kept.
pub fn cursor_key(job_id: Uuid) -> String {
    format!("job:{job_id}")
}

/// Progress of a job written with a step's changes, in the same transaction: the job's
/// counters grow by this step's killmails and by the battles the step created, updated and
/// ended, and its cursor moves to `slices_done`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStep {
    pub job_id: Uuid,
    pub killmails_processed: i64,
    pub slices_done: i64,
}

/// The queue's retry rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobQueue {
    /// Wait before the first retry; doubles with each further failure.
    pub backoff: Duration,
    /// A job that failed this many times is not tried again.
    pub max_attempts: i32,
}

impl Default for JobQueue {
    fn default() -> Self {
        JobQueue {
            backoff: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

const JOB_COLUMNS: &str = "id, job_type, start_date, end_date, status, priority,
  coalesce(killmails_processed, 0)::int8, coalesce(battles_created, 0)::int8,
  coalesce(battles_updated, 0)::int8, coalesce(battles_deleted, 0)::int8, created_at, started_at,
  completed_at, error_message, coalesce(retry_count, 0)";

/// Ranks priorities for `ORDER BY` (unknown values last).
const PRIORITY_RANK: &str =
    "CASE priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 WHEN 'low' THEN 2 ELSE 3 END";

fn job_from_row(r: &Row) -> Job {
    let job_type: String = r.get(1);
    Job {
        id: r.get(0),
        kind: JobKind::parse(&job_type),
        job_type,
        start_date: r.get(2),
        end_date: r.get(3),
        status: r.get(4),
        priority: r.get(5),
        killmails_processed: r.get(6),
        battles_created: r.get(7),
        battles_updated: r.get(8),
        battles_deleted: r.get(9),
        created_at: r.get(10),
        started_at: r.get(11),
        completed_at: r.get(12),
        error_message: r.get(13),
        retry_count: r.get(14),
    }
}

impl Sink {
    /// Queues a job (`pending`); returns its id.
    pub async fn enqueue_job(
        &self,
        kind: JobKind,
        start_date: NaiveDate,
        end_date: NaiveDate,
        priority: Priority,
    ) -> Result<Uuid, SinkError> {
        with_retry(self.config().retry, "enqueue job", || async {
            let client = self.pool().get().await?;
            let row = client
                .query_one(
                    "INSERT INTO clustering_jobs (job_type, start_date, end_date, status, priority)
                     VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
                    &[&kind.as_str(), &start_date, &end_date, &priority.as_str()],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    /// Records a control message read from Kafka: queues its job (none for a message that was
    /// refused) and moves the partition's position (`source_key`) to `next`, in one
    /// transaction, so a restart neither loses nor repeats a request.
    pub async fn record_control_message(
        &self,
        job: Option<(JobKind, NaiveDate, NaiveDate, Priority)>,
        source_key: &str,
        next: i64,
    ) -> Result<Option<Uuid>, SinkError> {
        with_retry(self.config().retry, "record control message", || async {
            let mut client = self.pool().get().await?;
            let tx = client.transaction().await?;
            let id = match job {
                Some((kind, start, end, priority)) => Some(
                    tx.query_one(
                        "INSERT INTO clustering_jobs (job_type, start_date, end_date, status, priority)
                         VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
                        &[&kind.as_str(), &start, &end, &priority.as_str()],
                    )
                    .await?
                    .get(0),
                ),
                None => None,
            };
            tx.execute(
                "INSERT INTO source_offsets (source_key, position) VALUES ($1, $2)
                 ON CONFLICT (source_key) DO UPDATE SET position = EXCLUDED.position,
                   updated_at = NOW()",
                &[&source_key, &next],
            )
            .await?;
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    /// One job by id.
    pub async fn job(&self, id: Uuid) -> Result<Option<Job>, SinkError> {
        let client = self.pool().get().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM clustering_jobs WHERE id = $1");
        Ok(client
            .query_opt(&sql, &[&id])
            .await?
            .as_ref()
            .map(job_from_row))
    }

    /// Every job, oldest first.
    pub async fn jobs(&self) -> Result<Vec<Job>, SinkError> {
        let client = self.pool().get().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM clustering_jobs ORDER BY created_at, id");
        Ok(client
            .query(&sql, &[])
            .await?
            .iter()
            .map(job_from_row)
            .collect())
    }

    /// Puts `running` jobs back to `pending`: called by a writer that has just taken the writer
    /// lock, so they belong to a process that died. Returns how many.
    pub async fn resume_abandoned_jobs(&self) -> Result<u64, SinkError> {
        with_retry(self.config().retry, "resume abandoned jobs", || async {
            let client = self.pool().get().await?;
            Ok(client
                .execute(
                    "UPDATE clustering_jobs SET status = 'pending' WHERE status = 'running'",
                    &[],
                )
                .await?)
        })
        .await
    }

    /// Takes the next job to run, if any, and marks it `running`: a pending job, or a failed
    /// one whose backoff has passed and that has attempts left; by priority, then age.
    pub async fn claim_next_job(&self, queue: JobQueue) -> Result<Option<Job>, SinkError> {
        with_retry(self.config().retry, "claim job", || async {
            let client = self.pool().get().await?;
            let sql = format!(
                "UPDATE clustering_jobs SET status = 'running',
                   started_at = coalesce(started_at, now()), completed_at = NULL
                 WHERE id = (
                   SELECT id FROM clustering_jobs
                   WHERE status = 'pending'
                      OR (status = 'failed' AND coalesce(retry_count, 0) < $1
                          AND completed_at + $2::float8 * power(2, coalesce(retry_count, 1) - 1)
                              * interval '1 second' <= now())
                   ORDER BY {PRIORITY_RANK}, created_at, id
                   LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING {JOB_COLUMNS}"
            );
            let row = client
                .query_opt(&sql, &[&queue.max_attempts, &queue.backoff.as_secs_f64()])
                .await?;
            Ok(row.as_ref().map(job_from_row))
        })
        .await
    }

    /// Puts a running job back to `pending` (it keeps its progress and cursor) when a pending
    /// job of higher priority waits; returns whether it did. Called between slices, so a long
    /// low-priority job does not hold back a high one.
    pub async fn yield_to_higher_priority(&self, job: &Job) -> Result<bool, SinkError> {
        with_retry(self.config().retry, "job priority", || async {
            let client = self.pool().get().await?;
            let sql = format!(
                "UPDATE clustering_jobs SET status = 'pending'
                 WHERE id = $1 AND status = 'running' AND EXISTS (
                   SELECT 1 FROM clustering_jobs WHERE status = 'pending'
                     AND {PRIORITY_RANK} < CASE $2 WHEN 'high' THEN 0 WHEN 'normal' THEN 1
                                                   WHEN 'low' THEN 2 ELSE 3 END)"
            );
            Ok(client.execute(&sql, &[&job.id, &job.priority]).await? > 0)
        })
        .await
    }

    /// Marks a job `completed`.
    pub async fn complete_job(&self, id: Uuid) -> Result<(), SinkError> {
        with_retry(self.config().retry, "complete job", || async {
            let client = self.pool().get().await?;
            client
                .execute(
                    "UPDATE clustering_jobs SET status = 'completed', completed_at = now(),
                       error_message = NULL WHERE id = $1",
                    &[&id],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Marks a job `failed` with `error`; `permanent` uses up its attempts (it will not be
    /// retried). Returns whether it will be retried.
    pub async fn fail_job(
        &self,
        id: Uuid,
        error: &str,
        permanent: bool,
        queue: JobQueue,
    ) -> Result<bool, SinkError> {
        with_retry(self.config().retry, "fail job", || async {
            let client = self.pool().get().await?;
            let row = client
                .query_one(
                    "UPDATE clustering_jobs SET status = 'failed', completed_at = now(),
                       error_message = $2,
                       retry_count = CASE WHEN $3 THEN $4 ELSE coalesce(retry_count, 0) + 1 END
                     WHERE id = $1 RETURNING retry_count",
                    &[&id, &error, &permanent, &queue.max_attempts],
                )
                .await?;
            Ok(row.get::<_, i32>(0) < queue.max_attempts)
        })
        .await
    }

    /// When the last job of `kind` whose range ends on or after `end_date` was queued, if ever
    /// (the daily retention schedule).
    pub async fn last_job_queued(
        &self,
        kind: JobKind,
        end_date: NaiveDate,
    ) -> Result<Option<DateTime<Utc>>, SinkError> {
        let client = self.pool().get().await?;
        Ok(client
            .query_one(
                "SELECT max(created_at) FROM clustering_jobs WHERE job_type = $1 AND end_date >= $2",
                &[&kind.as_str(), &end_date],
            )
            .await?
            .get(0))
    }
}

/// The statement that records a [`JobStep`] in a step's transaction: `$1` job, `$2` killmails,
/// `$3`..`$5` battles created, updated, ended.
pub(crate) const RECORD_JOB_STEP: &str = "
UPDATE clustering_jobs SET
  killmails_processed = coalesce(killmails_processed, 0) + $2::int8,
  battles_created = coalesce(battles_created, 0) + $3::int8,
  battles_updated = coalesce(battles_updated, 0) + $4::int8,
  battles_deleted = coalesce(battles_deleted, 0) + $5::int8
WHERE id = $1";
