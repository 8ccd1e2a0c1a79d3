//! Re-clustering and retention jobs: the runner that takes `clustering_jobs` rows by priority
//! and runs them slice by slice, whoever queued them (the API, the `battle.recluster` and
//! `data.retention` topics, the daily retention schedule, the CLI).
//!
//! - A **re-clustering** job runs one UTC day of its range at a time ([`slice::plan_slice`]):
//!   the engine clusters the day's stored killmails again with the configured rule, and only the
//!   difference with the stored battles is written, in one transaction with the job's progress
//!   and cursor. So a job stopped at any moment (kill -9 too) continues at the first day not
//!   committed, and re-running a range that has not changed writes nothing.
//! - Between slices a job gives way to a pending job of higher priority, and continues at its
//!   cursor once that one is done.
//! - A **retention** job soft-deletes, a batch per transaction, the battles that ended before
//!   its cutoff (the job's `end_date`), with a `battle.deleted` event each.
//!
//! **Beside the live stream.** Only the database's writer runs jobs: in `battles run` the stream
//! loop calls [`JobRunner::step`] between its own steps, so a job never blocks the stream for
//! more than one slice, and the two never write at the same time. Before a slice reads, the
//! stream's queued steps commit ([`JobHost::before_write`]); after it, the stream's engine
//! forgets every battle the slice rewrote ([`JobHost::rewritten`]) and reads them back from the
//! store when a new killmail lands next to them, so open battles stay exact.

pub mod slice;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_dataflow::killmail::KillmailId;
use battles_dataflow::EngineConfig;
use battles_sink::{Job, JobKind, JobQueue, JobStep, Priority, Sink, StepChanges};
use chrono::{DateTime, Months, NaiveDate, Utc};

pub use slice::{plan_slice, SlicePlan};

/// Battles soft-deleted per retention transaction.
const RETENTION_BATCH: i64 = 5_000;

/// The writer a job runs inside: a live stream, or nothing (the CLI).
pub trait JobHost {
    /// Called before a job reads what it will write over: everything the host queued must be
    /// committed first.
    fn before_write(&mut self) -> anyhow::Result<()>;
    /// Called after a job rewrote the battles of `killmails`.
    fn rewritten(&mut self, killmails: &HashSet<KillmailId>) -> anyhow::Result<()>;
}

/// A host with nothing in memory (a job run from the command line).
pub struct Alone;

impl JobHost for Alone {
    fn before_write(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn rewritten(&mut self, _: &HashSet<KillmailId>) -> anyhow::Result<()> {
        Ok(())
    }
}

/// How jobs run.
#[derive(Clone, Debug)]
pub struct JobOptions {
    pub engine: EngineConfig,
    pub queue: JobQueue,
    /// How often an idle runner looks for due jobs.
    pub poll_every: Duration,
    /// The daily retention run removes battles older than this many months (0: no daily run).
    pub retention_months: u32,
    /// Write no outbox events (a re-clustering of history nobody consumes live).
    pub suppress_events: bool,
}

impl JobOptions {
    pub fn new(engine: EngineConfig) -> JobOptions {
        JobOptions {
            engine,
            queue: JobQueue::default(),
            poll_every: Duration::from_secs(5),
            retention_months: 60,
            suppress_events: false,
        }
    }
}

/// What one call of [`JobRunner::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stepped {
    /// No job was due.
    Idle,
    /// A slice of the job was applied; more follow.
    Progressed(Job),
    /// The job completed.
    Completed(Job),
    /// The job failed (and is retried after a backoff while it has attempts left).
    Failed { job: Job, error: String },
}

/// A job in progress: which slice comes next.
struct Current {
    job: Job,
    next_slice: i64,
}

/// Runs jobs one slice at a time.
pub struct JobRunner {
    options: JobOptions,
    current: Option<Current>,
    last_poll: Option<Instant>,
}

impl JobRunner {
    pub fn new(options: JobOptions) -> JobRunner {
        JobRunner {
            options,
            current: None,
            last_poll: None,
        }
    }

    /// Does one unit of work: a slice of the job in progress, or, when none is and the poll
    /// interval has passed, claims the next due job (queuing the daily retention run first
    /// when it is due).
    pub fn step(
        &mut self,
        sink: &Sink,
        runtime: &tokio::runtime::Runtime,
        host: &mut dyn JobHost,
    ) -> anyhow::Result<Stepped> {
        if self.current.is_none() {
            if self
                .last_poll
                .is_some_and(|t| t.elapsed() < self.options.poll_every)
            {
                return Ok(Stepped::Idle);
            }
            self.last_poll = Some(Instant::now());
            self.schedule_retention(sink, runtime)?;
            let Some(job) = runtime
                .block_on(sink.claim_next_job(self.options.queue))
                .context("claiming a job")?
            else {
                return Ok(Stepped::Idle);
            };
            let done = runtime
                .block_on(sink.load_offsets())
                .context("reading the job's cursor")?
                .get(&job.cursor_key())
                .copied()
                .unwrap_or(0);
            tracing::info!(
                job = %job.id,
                kind = job.job_type,
                start = %job.start_date,
                end = %job.end_date,
                priority = job.priority,
                resumed_at_slice = done,
                "job started"
            );
            self.current = Some(Current {
                job,
                next_slice: done,
            });
        }
        let outcome = self.run_slice(sink, runtime, host);
        let current = self.current.as_mut().expect("a job in progress");
        let id = current.job.id;
        match outcome {
            Ok(true) => {
                runtime.block_on(sink.complete_job(id))?;
                self.current = None;
                self.last_poll = None;
                let job = reload(sink, runtime, id)?;
                tracing::info!(
                    job = %id,
                    killmails = job.killmails_processed,
                    created = job.battles_created,
                    updated = job.battles_updated,
                    deleted = job.battles_deleted,
                    "job completed"
                );
                Ok(Stepped::Completed(job))
            }
            Ok(false) => {
                let job = reload(sink, runtime, id)?;
                if runtime.block_on(sink.yield_to_higher_priority(&job))? {
                    // Taken up again, at its cursor, once the higher ones are done.
                    tracing::info!(job = %id, "job paused for a job of higher priority");
                    self.current = None;
                    self.last_poll = None;
                } else {
                    current.job = job.clone();
                }
                Ok(Stepped::Progressed(job))
            }
            Err(failure) if failure.host => {
                self.current = None;
                Err(failure
                    .error
                    .context(format!("job {id}: the writer it runs in failed")))
            }
            Err(failure) => {
                let error = format!("{:#}", failure.error);
                self.current = None;
                let retried = runtime.block_on(sink.fail_job(
                    id,
                    &error,
                    failure.permanent,
                    self.options.queue,
                ))?;
                tracing::error!(job = %id, retried, "job failed: {error}");
                let job = reload(sink, runtime, id)?;
                Ok(Stepped::Failed { job, error })
            }
        }
    }

    /// Runs jobs until none is due (the command line, tests): returns each finished job's last
    /// state. `on_step` sees every step.
    pub fn run_due(
        &mut self,
        sink: &Sink,
        runtime: &tokio::runtime::Runtime,
        host: &mut dyn JobHost,
        mut on_step: impl FnMut(&Stepped),
    ) -> anyhow::Result<Vec<Stepped>> {
        let mut finished = Vec::new();
        loop {
            self.last_poll = None;
            let stepped = self.step(sink, runtime, host)?;
            on_step(&stepped);
            match stepped {
                Stepped::Idle => return Ok(finished),
                Stepped::Progressed(_) => {}
                done => finished.push(done),
            }
        }
    }

    /// Queues the daily retention run when it is due: none queued in the last day.
    fn schedule_retention(
        &self,
        sink: &Sink,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<()> {
        if self.options.retention_months == 0 {
            return Ok(());
        }
        let cutoff = retention_cutoff(Utc::now().date_naive(), self.options.retention_months);
        // Any retention job reaching at least this cutoff, queued in the last day, did the work.
        let last = runtime
            .block_on(sink.last_job_queued(JobKind::Retention, cutoff))
            .context("reading the last retention run")?;
        if last.is_some_and(|t| Utc::now() - t < chrono::Duration::days(1)) {
            return Ok(());
        }
        let id = runtime.block_on(sink.enqueue_job(
            JobKind::Retention,
            cutoff,
            cutoff,
            Priority::Low,
        ))?;
        tracing::info!(job = %id, %cutoff, "daily retention run queued");
        Ok(())
    }

    /// Runs the next slice of the current job; `Ok(true)` when the job is done.
    fn run_slice(
        &mut self,
        sink: &Sink,
        runtime: &tokio::runtime::Runtime,
        host: &mut dyn JobHost,
    ) -> Result<bool, Failure> {
        let current = self.current.as_mut().expect("a job in progress");
        let job = &current.job;
        match job.kind {
            None => Err(Failure::permanent(anyhow::anyhow!(
                "unknown job type {:?}",
                job.job_type
            ))),
            Some(_) if job.end_date < job.start_date => Err(Failure::permanent(anyhow::anyhow!(
                "the range ends ({}) before it starts ({})",
                job.end_date,
                job.start_date
            ))),
            Some(JobKind::Retention) => {
                let cutoff = midnight(job.end_date);
                host.before_write().map_err(Failure::host)?;
                let deleted = runtime
                    .block_on(sink.soft_delete_battles_before(
                        cutoff,
                        RETENTION_BATCH,
                        Some(job.id),
                        self.options.suppress_events,
                    ))
                    .map_err(|e| Failure::transient(e.into()))?;
                host.rewritten(&deleted.killmails).map_err(Failure::host)?;
                let n = deleted.battles.len();
                if n > 0 {
                    metrics::counter!("battle_battles_deleted_total", "reason" => "retention")
                        .increment(n as u64);
                    tracing::info!(job = %job.id, %cutoff, battles = n, "retention: battles soft-deleted");
                }
                Ok(n == 0)
            }
            Some(JobKind::Recluster) => {
                let days = (job.end_date - job.start_date).num_days() + 1;
                if current.next_slice >= days {
                    return Ok(true);
                }
                let day = job.start_date + chrono::Duration::days(current.next_slice);
                let range = midnight(day)..midnight(day + chrono::Duration::days(1));
                // The host's queued writes commit first: the slice must read the store as it
                // will be when it writes (the host queues nothing while the slice runs).
                host.before_write().map_err(Failure::host)?;
                let plan = plan_slice(sink, runtime, &self.options.engine, range)
                    .map_err(Failure::transient)?;
                let step = JobStep {
                    job_id: job.id,
                    killmails_processed: plan.killmails_in_range as i64,
                    slices_done: current.next_slice + 1,
                };
                let changes = plan.changes.len();
                runtime
                    .block_on(sink.apply(StepChanges {
                        battles: plan.changes,
                        status: plan.status,
                        suppress_events: self.options.suppress_events,
                        job: Some(step),
                        ..StepChanges::default()
                    }))
                    .map_err(|e| Failure::transient(e.into()))?;
                if changes > 0 {
                    host.rewritten(&plan.rewritten).map_err(Failure::host)?;
                }
                tracing::debug!(job = %job.id, %day, changes, clustered = plan.clustered, "re-clustered a day");
                current.next_slice += 1;
                Ok(current.next_slice >= days)
            }
        }
    }
}

/// The job's row as it is now.
fn reload(sink: &Sink, runtime: &tokio::runtime::Runtime, id: uuid::Uuid) -> anyhow::Result<Job> {
    runtime
        .block_on(sink.job(id))?
        .with_context(|| format!("job {id} vanished from clustering_jobs"))
}

/// Why a slice failed, and whether trying again can help.
struct Failure {
    error: anyhow::Error,
    permanent: bool,
    /// The host failed around a write (its writer, or forgetting what a committed slice
    /// rewrote): its memory may no longer match the store, so it must stop and start again
    /// from the store (the job stays `running` and is resumed then).
    host: bool,
}

impl Failure {
    fn permanent(error: anyhow::Error) -> Failure {
        Failure {
            error,
            permanent: true,
            host: false,
        }
    }
    fn transient(error: anyhow::Error) -> Failure {
        Failure {
            error,
            permanent: false,
            host: false,
        }
    }
    fn host(error: anyhow::Error) -> Failure {
        Failure {
            error,
            permanent: false,
            host: true,
        }
    }
}

/// 00:00 UTC of `day`.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// The retention cutoff `months` before `today`.
pub fn retention_cutoff(today: NaiveDate, months: u32) -> NaiveDate {
    today
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_accepts_exactly_the_queue_priorities() {
        let queue: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(queue, battles_api::routes::recluster::PRIORITIES.to_vec());
        assert_eq!(JobKind::parse("reclustering"), Some(JobKind::Recluster));
    }

    #[test]
    fn retention_cutoff_counts_calendar_months() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(retention_cutoff(d("2026-12-01"), 60), d("2021-12-01"));
        assert_eq!(retention_cutoff(d("2024-03-31"), 1), d("2024-02-29"));
        assert_eq!(retention_cutoff(d("2026-12-01"), 0), d("2026-12-01"));
    }
}
