//! The live service's stream path (`battles run`): messages from a [`Source`] (Kafka, or a
//! replay of files on an accelerated clock) are parsed, deduplicated against what is stored and
//! swept through the engine exactly as a backfill's batches are ([`crate::backfill`]'s sweep),
//! but each step also writes the source positions it reached and the batch's rejected records,
//! battles get `open`/`closed` from the event-time watermark, and events go to the outbox for
//! the [`relay`].
//!
//! Offsets live in PostgreSQL only, committed with the rows they produced or after them (a big
//! step commits in phases, positions last: [`battles_sink::SplitStep`]): a restart (after
//! `kill -9` too) resumes from them, so nothing is lost and nothing is counted twice.

pub mod control;
mod merge;
pub mod relay;
pub mod source;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_dataflow::{Engine, EngineConfig, Killmail};
use battles_sink::{RejectionRow, Sink, StatusRule};
use chrono::{DateTime, Utc};

use crate::backfill::progress::Progress;
use crate::backfill::read::stored_position;
use crate::backfill::{BatchExtras, Sweep, SweepOptions};
use crate::recluster::{JobHost, JobOptions, JobRunner, Stepped};
pub use source::{
    Content, Decoder, KafkaOptions, KafkaSource, Message, Poll, ReplaySource, Source,
};

/// Messages per step at most. A backlog is taken this many at a time (larger steps rewrite a
/// growing battle less often: 3.8k against 2.7k killmails/s at 5,000 in the stream bench, and
/// 50,000 was no faster); at low rates a step is whatever arrived within 100 ms.
pub const DEFAULT_BATCH: usize = 20_000;

/// How the stream runs.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub engine: EngineConfig,
    /// Messages per poll (one sweep, written in chunks of `chunk`).
    pub batch: usize,
    pub chunk: usize,
    /// Connections writing a big step's lone battles, beside the rest of the step, before its
    /// positions ([`battles_sink::StepChanges::split`]). One keeps a step in one transaction.
    /// The sink's pool needs [`pool_size_for`] sessions.
    pub writers: usize,
    /// A battle whose last killmail is this much older than the watermark is `closed`.
    pub close_after: chrono::Duration,
    /// How far behind the newest killmails a message may arrive and still find its battles in
    /// memory (older ones are read back from PostgreSQL first).
    pub lateness: chrono::Duration,
    /// Re-clustering and retention jobs run between steps (none: jobs wait for another
    /// writer).
    pub jobs: Option<JobOptions>,
    /// When a replay reaches its end, keep running jobs until stopped (the service keeps
    /// serving) instead of returning.
    pub stay_after_end: bool,
}

impl StreamOptions {
    pub fn new(engine: EngineConfig) -> StreamOptions {
        let window = engine.rule.reach();
        StreamOptions {
            engine: engine.clone(),
            batch: DEFAULT_BATCH,
            // A batch is one step: the live service writes what it changed at once (in one
            // transaction, or in the phases of a big step).
            chunk: DEFAULT_BATCH,
            writers: default_writers(),
            close_after: window,
            lateness: chrono::Duration::hours(2),
            jobs: Some(JobOptions::new(engine.clone())),
            stay_after_end: false,
        }
    }
}

/// Connections writing a big step by default: one per core, at most 4 (more than the cores
/// lost in the stream bench: docs/benchmarks.md).
pub fn default_writers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}

/// Sessions the sink's pool needs for a stream writing with `writers`: a step's rest beside its
/// `writers` parts, and one more for the outbox relay and the reads between steps.
pub fn pool_size_for(writers: usize) -> usize {
    writers.max(1) + 2
}

/// What the stream did, for the operator and the health endpoint (shared with the API).
#[derive(Debug, Default)]
pub struct StreamStatus {
    pub messages: AtomicU64,
    pub killmails: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub steps: AtomicU64,
    /// Unix milliseconds of the last committed step (0: none yet).
    pub last_step_ms: AtomicU64,
    /// Set when the step loop stopped on an error.
    pub failed: AtomicBool,
    /// Consumer lag in milliseconds, when the source knows it.
    pub lag_ms: AtomicU64,
    /// Time in steps (sort the decoded batch, cluster, hand to the writer), microseconds.
    pub step_micros: AtomicU64,
}

impl StreamStatus {
    fn count(&self, field: &AtomicU64, n: u64) {
        field.fetch_add(n, Ordering::Relaxed);
    }
}

/// The consumer is unwell when its loop stopped on an error or it lags more than this.
const UNHEALTHY_LAG_SECS: f64 = 300.0;

impl battles_api::ConsumerStatus for StreamStatus {
    fn health(&self) -> Result<(), String> {
        if self.failed.load(Ordering::SeqCst) {
            return Err("the stream stopped on an error (see the service log)".to_owned());
        }
        let lag = self.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        if lag > UNHEALTHY_LAG_SECS {
            return Err(format!("consumer lag is {lag:.0} s"));
        }
        Ok(())
    }

    fn avg_clustering_ms(&self) -> Option<f64> {
        let steps = self.steps.load(Ordering::Relaxed);
        let killmails = self.killmails.load(Ordering::Relaxed);
        (steps > 0 && killmails > 0)
            .then(|| self.step_micros.load(Ordering::Relaxed) as f64 / 1000.0 / killmails as f64)
    }
}

/// Runs the stream from `source` into `sink` until `stop` is set (or a replay ends). The
/// caller holds the database's writer lock; an error also marks `status` failed.
pub fn run_stream(
    sink: Arc<Sink>,
    runtime: &tokio::runtime::Runtime,
    source: &mut dyn Source,
    options: &StreamOptions,
    stop: &AtomicBool,
    status: &StreamStatus,
) -> anyhow::Result<()> {
    let result = stream(sink, runtime, source, options, stop, status);
    if result.is_err() {
        status.failed.store(true, Ordering::SeqCst);
    }
    result
}

fn stream(
    sink: Arc<Sink>,
    runtime: &tokio::runtime::Runtime,
    source: &mut dyn Source,
    options: &StreamOptions,
    stop: &AtomicBool,
    status: &StreamStatus,
) -> anyhow::Result<()> {
    let stored_times = runtime
        .block_on(sink.stored_killmail_times())
        .context("reading the stored killmails")?;
    let watermark_start = stored_times
        .iter()
        .map(|(t, _)| *t)
        .max()
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let engine = Engine::start(options.engine.clone()).context("starting the clustering engine")?;
    let progress = Progress::hidden();
    let mut sweep = Sweep::new(
        sink.clone(),
        runtime,
        engine,
        stored_times,
        SweepOptions {
            window: options.engine.neighbourhood_reach(),
            chunk: options.chunk,
            suppress_events: false,
            lateness: options.lateness,
            hold_until_final: false,
            writers: options.writers,
        },
        &progress,
    );
    let mut watermark = watermark_start.unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut jobs = match &options.jobs {
        Some(job_options) => {
            // The caller holds the writer lock: a job left running belongs to a dead process.
            let resumed = runtime
                .block_on(sink.resume_abandoned_jobs())
                .context("resuming abandoned jobs")?;
            if resumed > 0 {
                tracing::info!(
                    jobs = resumed,
                    "resuming jobs a stopped process left running"
                );
            }
            Some(JobRunner::new(job_options.clone()))
        }
        None => None,
    };
    let mut ended = false;
    while !stop.load(Ordering::SeqCst) {
        if let Some(runner) = jobs.as_mut() {
            run_job_step(runner, &sink, runtime, &mut sweep)?;
        }
        if ended {
            // The source is done; jobs still run until the service stops.
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let messages = match source.poll(options.batch, Duration::from_millis(200))? {
            Poll::End if options.stay_after_end => {
                ended = true;
                sweep.flush()?;
                eprintln!("the replay is complete; the API stays up until Ctrl-C");
                continue;
            }
            Poll::End => break,
            Poll::Idle => continue,
            Poll::Messages(m) => m,
        };
        if let Some(lag) = source.lag_seconds() {
            status
                .lag_ms
                .store((lag * 1000.0) as u64, Ordering::Relaxed);
            metrics::gauge!("battle_kafka_lag_seconds").set(lag);
        }
        let started = Instant::now();
        let batch = sort_batch(messages, |t, id| sweep.is_stored(t, id));
        if let Some(newest) = batch.killmails.iter().map(|k| k.killmail_time).max() {
            watermark = watermark.max(newest);
        }
        let killmails = batch.killmails.len() as u64;
        let oldest = batch.killmails.iter().map(|k| k.killmail_time).min();
        let rejected = batch.rejections.len() as u64;
        let duplicates = batch.duplicates;
        sweep.run(
            batch.killmails,
            BatchExtras {
                offsets: batch.offsets,
                rejections: batch.rejections,
                status: StatusRule::watermark(watermark, options.close_after),
            },
        )?;
        let elapsed = started.elapsed();
        tracing::debug!(
            messages = batch.messages,
            killmails,
            duplicates,
            rejected,
            oldest = ?oldest,
            %watermark,
            elapsed_ms = elapsed.as_millis() as u64,
            "step"
        );
        status.count(&status.messages, batch.messages as u64);
        status.count(&status.killmails, killmails);
        status.count(&status.duplicates, duplicates);
        status.count(&status.rejected, rejected);
        status.count(&status.steps, 1);
        status.count(&status.step_micros, elapsed.as_micros() as u64);
        status
            .last_step_ms
            .store(Utc::now().timestamp_millis() as u64, Ordering::Relaxed);
        metrics::counter!("battle_killmails_processed_total").increment(killmails);
        metrics::counter!("battle_killmails_rejected_total").increment(rejected);
        metrics::counter!("battle_killmails_duplicate_total").increment(duplicates);
        metrics::histogram!("battle_clustering_duration_seconds").record(elapsed.as_secs_f64());
        metrics::histogram!("battle_step_killmails").record(killmails as f64);
    }
    let (sweep_writer_summary, _engine) = sweep.finish()?;
    tracing::info!(
        battles_created = sweep_writer_summary.battles_created,
        battles_updated = sweep_writer_summary.battles_updated,
        "stream stopped: every step committed"
    );
    Ok(())
}

/// The stream's sweep as the writer a job runs inside.
struct StreamHost<'s, 'a>(&'s mut Sweep<'a>);

impl JobHost for StreamHost<'_, '_> {
    fn before_write(&mut self) -> anyhow::Result<()> {
        self.0.flush()
    }

    fn rewritten(&mut self, killmails: &HashSet<i64>) -> anyhow::Result<()> {
        self.0.forget(killmails)
    }
}

/// One slice of the job in progress, or a look for a due one. A job's own failure is recorded
/// on the job and the stream goes on; an error here (the queue unreachable after the sink's
/// retries, or the stream's writer failing around a slice) stops the stream as its own write
/// errors do; the next start rebuilds from the store and resumes the job.
fn run_job_step(
    runner: &mut JobRunner,
    sink: &Sink,
    runtime: &tokio::runtime::Runtime,
    sweep: &mut Sweep,
) -> anyhow::Result<()> {
    match runner.step(sink, runtime, &mut StreamHost(sweep))? {
        Stepped::Failed { job, error } => {
            metrics::counter!("battle_jobs_failed_total").increment(1);
            tracing::warn!(job = %job.id, "job failed: {error}");
        }
        Stepped::Completed(_) => metrics::counter!("battle_jobs_completed_total").increment(1),
        _ => {}
    }
    Ok(())
}

/// A batch of messages made ready for the sweep.
struct Batch {
    messages: usize,
    killmails: Vec<Killmail>,
    rejections: Vec<RejectionRow>,
    /// Per stream, the position after its last message in the batch.
    offsets: Vec<(String, i64)>,
    duplicates: u64,
}

/// Sorts decoded `messages`: killmails not stored yet (`is_stored`) and not repeated in the
/// batch, rejections with their positions, and the positions reached.
fn sort_batch(messages: Vec<Message>, is_stored: impl Fn(DateTime<Utc>, i64) -> bool) -> Batch {
    let count = messages.len();
    let mut killmails = Vec::with_capacity(count);
    let mut rejections = Vec::new();
    let mut offsets: BTreeMap<Arc<str>, i64> = BTreeMap::new();
    let mut seen: HashSet<i64> = HashSet::with_capacity(count);
    let mut duplicates = 0;
    for m in messages {
        let next = offsets.entry(m.key).or_insert(m.offset + 1);
        *next = (*next).max(m.offset + 1);
        match m.content {
            Content::Killmail(km) => {
                if is_stored(km.killmail_time, km.killmail_id) || !seen.insert(km.killmail_id) {
                    duplicates += 1;
                } else {
                    killmails.push(*km);
                }
            }
            Content::Rejected { reason, payload } => rejections.push(RejectionRow {
                raw_payload: payload,
                reason_code: reason.code().to_owned(),
                reason_message: reason.to_string(),
                source: stored_position(&m.position),
                received_at: Utc::now(),
            }),
        }
    }
    Batch {
        messages: count,
        killmails,
        rejections,
        offsets: offsets
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        duplicates,
    }
}

/// The committed positions of every stream, for sources to resume from.
pub fn committed_positions(
    sink: &Sink,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<HashMap<String, i64>> {
    Ok(runtime
        .block_on(sink.load_offsets())
        .context("reading the committed source offsets")?
        .into_iter()
        .collect())
}
