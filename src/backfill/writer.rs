//! The backfill's writer: a task on the database runtime that applies steps, each in its own
//! transaction, while the engine computes the next one. Steps of battles written once, when
//! final, have no order between them: several transactions stay in flight on several
//! connections, so PostgreSQL works on every core it has. A step sent in order
//! ([`Writer::send_in_order`]: one that changes stored rows) begins only once everything
//! before it has committed. The live service sends the rest of a big step in order, the
//! battles of the step that stand alone beside it, and its positions in order after both. The
//! queue holds at most two steps beyond those in flight, so a slow database slows the engine
//! down instead of filling memory. A flush waits for everything in flight.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use battles_sink::{AppliedStats, Sink, SinkError, StepChanges};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Sums of what the writer applied.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// How long each transaction took, in order.
    pub latencies: Vec<Duration>,
    pub killmails_stored: u64,
    pub battles_created: u64,
    pub battles_updated: u64,
    pub battles_ended: u64,
    pub rejections_stored: u64,
}

impl Applied {
    fn add(&mut self, s: &AppliedStats) {
        self.killmails_stored += s.killmails_stored as u64;
        self.battles_created += s.battles_created as u64;
        self.battles_updated += s.battles_updated as u64;
        self.battles_ended += s.battles_ended as u64;
        self.rejections_stored += s.rejections_stored as u64;
    }
}

enum Job {
    Apply(StepChanges),
    /// Applied once everything queued before it has committed.
    ApplyInOrder(StepChanges),
    Flush(oneshot::Sender<()>),
}

/// The service's counters of committed work (no-ops unless a Prometheus recorder is
/// installed, as `battles run` does through the API).
fn record_metrics(stats: &AppliedStats, took: Duration) {
    metrics::counter!("battle_battles_created_total").increment(stats.battles_created as u64);
    metrics::counter!("battle_battles_updated_total").increment(stats.battles_updated as u64);
    metrics::counter!("battle_battles_ended_total").increment(stats.battles_ended as u64);
    metrics::histogram!("battle_commit_duration_seconds").record(took.as_secs_f64());
}

/// The writer task: applies queued steps with up to `in_flight` transactions open.
async fn write_steps(
    sink: Arc<Sink>,
    mut queue: mpsc::Receiver<Job>,
    sums: Arc<Mutex<Applied>>,
    in_flight: usize,
) -> anyhow::Result<()> {
    let apply = |changes: StepChanges| {
        let sink = sink.clone();
        async move {
            let t = Instant::now();
            let stats = sink.apply(changes).await?;
            Ok::<_, SinkError>((stats, t.elapsed()))
        }
    };
    type Done = Result<Result<(AppliedStats, Duration), SinkError>, tokio::task::JoinError>;
    let record = |done: Done| -> anyhow::Result<()> {
        let (stats, took) = done.map_err(|e| anyhow!("a database write panicked: {e}"))??;
        record_metrics(&stats, took);
        let mut sums = sums.lock().expect("applied lock");
        sums.add(&stats);
        sums.latencies.push(took);
        Ok(())
    };
    // Each transaction in flight is a task of its own: building its rows and encoding its
    // `COPY` data are work for a core, and polled together in this one task the transactions
    // took turns on one thread while their sessions waited (docs/benchmarks.md). Dropping the
    // set (on an error) aborts the others, as dropping their futures did.
    let mut running = JoinSet::new();
    loop {
        if running.len() >= in_flight {
            if let Some(done) = running.join_next().await {
                record(done)?;
            }
            continue;
        }
        tokio::select! {
            job = queue.recv() => match job {
                Some(Job::Apply(changes)) => {
                    running.spawn(apply(changes));
                }
                Some(Job::ApplyInOrder(changes)) => {
                    while let Some(done) = running.join_next().await {
                        record(done)?;
                    }
                    running.spawn(apply(changes));
                }
                Some(Job::Flush(reply)) => {
                    while let Some(done) = running.join_next().await {
                        record(done)?;
                    }
                    let _ = reply.send(());
                }
                None => break,
            },
            Some(done) = running.join_next(), if !running.is_empty() => record(done)?,
        }
    }
    while let Some(done) = running.join_next().await {
        record(done)?;
    }
    Ok(())
}

/// Handle of the writer task.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    task: Mutex<Option<JoinHandle<anyhow::Result<()>>>>,
    applied: Arc<Mutex<Applied>>,
    runtime: tokio::runtime::Handle,
}

impl Writer {
    /// Starts a writer keeping up to `in_flight` transactions open at once (1: in order).
    pub fn start(sink: Arc<Sink>, runtime: &tokio::runtime::Runtime, in_flight: usize) -> Writer {
        let in_flight = in_flight.max(1);
        let (jobs, queue) = mpsc::channel::<Job>(2);
        let applied = Arc::new(Mutex::new(Applied::default()));
        let task = runtime.spawn(write_steps(sink, queue, applied.clone(), in_flight));
        Writer {
            jobs,
            task: Mutex::new(Some(task)),
            applied,
            runtime: runtime.handle().clone(),
        }
    }

    /// Queues a step; returns how long the queue was full. Fails when the writer stopped on an
    /// error (the error itself comes from [`Writer::finish`]).
    pub fn send(&self, changes: StepChanges) -> anyhow::Result<Duration> {
        let t = Instant::now();
        match self.jobs.blocking_send(Job::Apply(changes)) {
            Ok(()) => Ok(t.elapsed()),
            Err(_) => Err(self.failure()),
        }
    }

    /// Queues a step that begins only once every step queued before it has committed (one that
    /// updates or ends stored battles, whose aliases may point at rows an earlier step is still
    /// writing); returns how long the queue was full.
    pub fn send_in_order(&self, changes: StepChanges) -> anyhow::Result<Duration> {
        let t = Instant::now();
        match self.jobs.blocking_send(Job::ApplyInOrder(changes)) {
            Ok(()) => Ok(t.elapsed()),
            Err(_) => Err(self.failure()),
        }
    }

    /// Waits until every queued step has committed; returns how long that took.
    pub fn flush(&self) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let (done, wait) = oneshot::channel();
        if self.jobs.blocking_send(Job::Flush(done)).is_err() || wait.blocking_recv().is_err() {
            return Err(self.failure());
        }
        Ok(t.elapsed())
    }

    /// (killmails stored, battles created, battles ended) so far.
    pub fn progress(&self) -> (u64, u64, u64) {
        let a = self.applied.lock().expect("applied lock");
        (a.killmails_stored, a.battles_created, a.battles_ended)
    }

    /// Waits for every queued step and returns the sums, or the writer's error.
    pub fn finish(self) -> anyhow::Result<Applied> {
        let Writer {
            jobs,
            task,
            applied,
            runtime,
        } = self;
        drop(jobs);
        if let Some(task) = task.lock().expect("task lock").take() {
            runtime
                .block_on(task)
                .map_err(|e| anyhow!("the database writer panicked: {e}"))??;
        }
        let sums = std::mem::take(&mut *applied.lock().expect("applied lock"));
        Ok(sums)
    }

    /// The writer's error once it has stopped.
    fn failure(&self) -> anyhow::Error {
        let task = self.task.lock().expect("task lock").take();
        match task.map(|t| self.runtime.block_on(t)) {
            Some(Ok(Err(e))) => e.context("writing to PostgreSQL"),
            Some(Err(e)) => anyhow!("the database writer panicked: {e}"),
            _ => anyhow!("the database writer stopped"),
        }
    }
}
