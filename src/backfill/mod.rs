//! Backfill: files of killmails, in any order, through the clustering engine into PostgreSQL.
//!
//! 1. **Read** ([`read`]): every input is parsed on all cores; exact duplicates and killmails
//!    the database already holds are dropped, rejections are kept with their reasons. The new
//!    killmails come out in read batches (200k by default), which bounds memory: a year of
//!    EVE goes through batch by batch, each merging exactly with what the earlier ones stored.
//! 2. **Sweep**: each batch, sorted by time, goes through the engine in chunks. Before a
//!    chunk, battles closed relative to its first killmail leave memory
//!    ([`Engine::evict_closed`]), so memory follows the window, not the history; when the
//!    database holds killmails near the chunk (an earlier backfill, an interrupted run, the
//!    live service), their stored battles are taken back in first ([`Engine::rehydrate`]) so
//!    the chunk merges with them exactly. Each chunk's changes are written by a writer task in
//!    one transaction with the killmails that caused them, while the engine works on the next.
//! 3. The last transaction records how many records each input had (`source_offsets`).
//!
//! Every transaction holds the killmails of the battles it writes, so whatever commits is
//! consistent, and a re-run skips what is stored: re-running the same input is a no-op, an
//! interrupted run continues, and backfilling overlapping inputs gives the battles of their
//! union.

mod pending;
pub mod progress;
pub mod read;
pub(crate) mod writer;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_dataflow::{BattleChange, BattleReport, Engine, EngineConfig, Killmail};
use battles_sink::{BulkLoad, Sink, SplitStep, StatusRule, StepChanges, WriterLock};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ingest::{IngestContext, Shape};
use pending::{Final, Pending};
use progress::Progress;
use read::read_inputs;
use writer::Writer;

/// Default killmails per engine step. Battles are written when final, and the writes of one
/// step overlap the clustering of the next: on the four real days steps of 10,000 loaded
/// 21.4k-22.5k killmails/s against 18.7k-21.3k at 20,000 (four alternating runs), even at 300k
/// generated killmails, with less memory (3.0 against 3.4 GiB).
pub const DEFAULT_CHUNK: usize = 10_000;

/// Default killmails per read batch: parsed killmails take 3 to 12 KB each (names and
/// attackers), so a batch stays within about 2.5 GB.
pub const DEFAULT_READ_BATCH: usize = 200_000;

/// Rejections per transaction when storing them.
const REJECTIONS_PER_TX: usize = 5_000;

/// Whether a backfill loads with the indexes and keys of the battle tables dropped, building
/// them at the end ([`BulkLoad`]): far faster into an empty database, and only safe while no one
/// else writes to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BulkMode {
    /// When the battle tables are empty.
    #[default]
    Auto,
    /// Always (`--bulk`): on a database holding battles, for a writer who knows no one else
    /// reads or writes it meanwhile.
    Always,
    /// Never: every index is maintained row by row.
    Never,
}

/// How a backfill runs.
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    pub paths: Vec<PathBuf>,
    pub ingest: IngestContext,
    pub max_record_bytes: usize,
    pub engine: EngineConfig,
    /// Killmails per engine step and transaction.
    pub chunk: usize,
    /// Write `battle.created` / `battle.updated` events to the outbox (off by default: history
    /// is not news).
    pub emit_events: bool,
    /// Parser threads of the read phase.
    pub parsers: usize,
    /// Killmails read before they are sorted and clustered: bounds memory (a parsed killmail
    /// takes a few KB). Inputs larger than this are clustered batch by batch, each batch
    /// merging with what the earlier ones stored, exactly.
    pub read_batch: usize,
    /// Database connections writing at once (different battles in each).
    pub writers: usize,
    /// Load with indexes and keys dropped (see [`BulkMode`]).
    pub bulk: BulkMode,
}

impl BackfillOptions {
    pub fn new(paths: Vec<PathBuf>) -> BackfillOptions {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BackfillOptions {
            paths,
            ingest: IngestContext::default(),
            max_record_bytes: crate::sources::DEFAULT_MAX_RECORD_BYTES,
            engine: EngineConfig::default(),
            chunk: DEFAULT_CHUNK,
            emit_events: false,
            parsers: cores,
            read_batch: DEFAULT_READ_BATCH,
            writers: cores.clamp(1, 4),
            bulk: BulkMode::Auto,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Default)]
pub struct BackfillSummary {
    pub records: u64,
    pub bytes: u64,
    pub per_shape: BTreeMap<Shape, u64>,
    pub duplicates: u64,
    pub already_stored: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    pub source_errors: Vec<String>,
    /// Killmails clustered and written by this run.
    pub killmails_written: u64,
    pub battles_created: u64,
    pub battles_updated: u64,
    pub battles_ended: u64,
    pub rejections_stored: u64,
    /// Stored killmails taken back into the engine to merge with.
    pub rehydrated: u64,
    pub evicted_battles: u64,
    pub peak_resident_killmails: usize,
    /// Time reading and parsing (outside the sweeps of read batches).
    pub read_time: Duration,
    /// Time in the engine (clustering, eviction, rehydration).
    pub engine_time: Duration,
    /// Time the engine waited for the writer (PostgreSQL slower than the engine).
    pub sink_wait: Duration,
    /// Duration of each clustering step (one chunk through the engine).
    pub engine_steps: Vec<Duration>,
    /// Duration of each database transaction.
    pub sink_steps: Vec<Duration>,
    pub total_time: Duration,
    /// The run loaded with the indexes and keys dropped.
    pub bulk_loaded: bool,
    /// Time rebuilding them.
    pub index_build: Duration,
    /// The largest battles this run created or changed, largest first (at most 5).
    pub largest: Vec<BattleReport>,
}

impl BackfillSummary {
    pub fn rejected(&self) -> u64 {
        self.rejects_by_reason.values().sum()
    }
}

/// Runs a backfill into `sink`; `runtime` runs the database work.
pub fn backfill(
    sink: Arc<Sink>,
    runtime: &tokio::runtime::Runtime,
    options: &BackfillOptions,
    progress: &Progress,
) -> anyhow::Result<BackfillSummary> {
    let started = Instant::now();
    // One writer per database: held until this function returns.
    let writer_lock = runtime.block_on(sink.lock_writer())?;
    let bulk = begin_bulk(&sink, runtime, &writer_lock, options.bulk)?;
    let stored_times = runtime
        .block_on(sink.stored_killmail_times())
        .context("reading the stored killmails")?;
    let stored_ids: HashSet<i64> = stored_times.iter().map(|(_, id)| *id).collect();
    let engine = Engine::start(options.engine.clone()).context("starting the clustering engine")?;
    let mut sweep = Sweep::new(
        sink.clone(),
        runtime,
        engine,
        stored_times,
        SweepOptions {
            window: options.engine.neighbourhood_reach(),
            chunk: options.chunk,
            suppress_events: !options.emit_events,
            lateness: chrono::Duration::zero(),
            hold_until_final: true,
            writers: options.writers,
        },
        progress,
    );
    sweep.bulk = bulk;
    let reading = Instant::now();
    let outcome = read_inputs(options, &stored_ids, progress, |batch, rejected| {
        sweep.rejected = rejected;
        sweep.run(batch, BatchExtras::default())
    })?;
    sweep.write_held()?;
    let read_time = reading.elapsed().saturating_sub(sweep.sweep_time);
    drop(stored_ids);

    sweep.end_bulk()?;
    let Sweep {
        writer,
        engine,
        largest,
        mut summary,
        suppress_events,
        ..
    } = sweep;
    for rejections in outcome.rejections.chunks(REJECTIONS_PER_TX) {
        summary.sink_wait += writer.send(StepChanges {
            rejections: rejections.to_vec(),
            suppress_events,
            ..StepChanges::default()
        })?;
    }
    let offsets = outcome
        .records_per_input
        .into_iter()
        .map(|(k, n)| (k, n as i64))
        .collect();
    // The record counts say the inputs are done: they commit after everything else.
    summary.sink_wait += writer.flush()?;
    summary.sink_wait += writer.send(StepChanges {
        offsets,
        ..StepChanges::default()
    })?;
    let applied = writer.finish()?;
    progress.finish();
    drop(engine);

    summary.read_time = read_time;
    summary.records = outcome.records;
    summary.bytes = outcome.bytes;
    summary.per_shape = outcome.per_shape;
    summary.duplicates = outcome.duplicates;
    summary.already_stored = outcome.already_stored;
    summary.rejects_by_reason = outcome.rejects_by_reason;
    summary.source_errors = outcome.source_errors;
    summary.killmails_written = applied.killmails_stored;
    summary.battles_created = applied.battles_created;
    summary.battles_updated = applied.battles_updated;
    summary.battles_ended = applied.battles_ended;
    summary.rejections_stored = applied.rejections_stored;
    summary.sink_steps = applied.latencies;
    summary.largest = largest.top(5);
    summary.total_time = started.elapsed();
    Ok(summary)
}

/// Begins a bulk load when `mode` asks for one (for `Auto`: when the battle tables are empty).
fn begin_bulk<'w>(
    sink: &Sink,
    runtime: &tokio::runtime::Runtime,
    lock: &'w WriterLock,
    mode: BulkMode,
) -> anyhow::Result<Option<BulkLoad<'w>>> {
    let wanted = match mode {
        BulkMode::Never => false,
        BulkMode::Always => true,
        BulkMode::Auto => runtime
            .block_on(sink.bulk_tables_empty())
            .context("checking whether the database is empty")?,
    };
    if !wanted {
        return Ok(None);
    }
    let load = runtime
        .block_on(sink.begin_bulk_load(lock))
        .context("dropping the indexes for a bulk load")?;
    tracing::info!(
        objects = load.dropped().len(),
        "bulk load: indexes and keys dropped until the end of the run"
    );
    Ok(Some(load))
}

/// How a [`Sweep`] writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SweepOptions {
    /// The engine's candidate window: stored killmails this close to a chunk are merged with.
    pub window: chrono::Duration,
    /// Killmails per engine step and transaction.
    pub chunk: usize,
    /// Write no outbox events (backfills of history).
    pub suppress_events: bool,
    /// How much earlier than a chunk's first killmail later chunks may still reach: closed
    /// battles are evicted only when they are this much older. Zero for sorted input (backfill);
    /// a stream's partitions deliver out of time order, and a killmail that reaches back into
    /// evicted battles costs a wait for the writer and a read of their rows.
    pub lateness: chrono::Duration,
    /// Write each battle once, when it is final (backfill), instead of at every step it
    /// changes in (the live service, whose readers want battles as they grow).
    pub hold_until_final: bool,
    /// Connections writing at once: a backfill's finals in any order; a live step's lone
    /// battles in parts beside the rest of it (steps stay in order).
    pub writers: usize,
}

/// What goes into the transaction of a batch's last chunk besides its battles and killmails.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchExtras {
    /// Source positions the batch reaches (committed with the killmails that came before them;
    /// so none with `hold_until_final`, which commits killmails later than their batch).
    pub offsets: Vec<(String, i64)>,
    /// The batch's records that could not become killmails.
    pub rejections: Vec<battles_sink::RejectionRow>,
    /// How written battles get their status (default: historical, for backfills).
    pub status: StatusRule,
}

/// The clustering half of a backfill, and of the live service: takes each batch, sorts it by
/// time and sweeps it through the engine in chunks, evicting and rehydrating as it goes.
pub(crate) struct Sweep<'a> {
    sink: Arc<Sink>,
    runtime: &'a tokio::runtime::Runtime,
    writer: Writer,
    /// Transactions the writer keeps in flight.
    writers: usize,
    engine: Engine,
    /// (time, id) of every stored killmail, those of earlier batches of this run included: an
    /// ordered set, since the live service adds to it at every step for as long as it runs.
    stored_times: BTreeSet<(i64, i64)>,
    window: chrono::Duration,
    lateness: chrono::Duration,
    chunk: usize,
    suppress_events: bool,
    /// With `hold_until_final`: what waits for its battle to be final.
    pending: Option<Pending>,
    /// A bulk load in progress: only new rows may be written until it ends.
    bulk: Option<BulkLoad<'a>>,
    /// Steps that update stored rows, kept for the end of the bulk load.
    deferred: Vec<Deferred>,
    largest: Largest,
    summary: BackfillSummary,
    total: u64,
    /// Records rejected so far (for the progress line).
    rejected: u64,
    progress: &'a Progress,
    /// Time spent in `run` (the rest of the read call is reading and parsing).
    sweep_time: Duration,
}

impl<'a> Sweep<'a> {
    pub(crate) fn new(
        sink: Arc<Sink>,
        runtime: &'a tokio::runtime::Runtime,
        engine: Engine,
        stored_times: Vec<(i64, i64)>,
        options: SweepOptions,
        progress: &'a Progress,
    ) -> Sweep<'a> {
        let writers = options.writers.max(1);
        Sweep {
            sink: sink.clone(),
            runtime,
            // A live step's rest runs beside its `writers` parts ([`Sweep::send_step`]).
            writer: Writer::start(
                sink,
                runtime,
                match options.hold_until_final {
                    true => writers,
                    false => writers + 1,
                },
            ),
            writers,
            engine,
            stored_times: stored_times.into_iter().collect(),
            window: options.window,
            lateness: options.lateness,
            chunk: options.chunk.max(1),
            suppress_events: options.suppress_events,
            pending: options.hold_until_final.then(Pending::default),
            bulk: None,
            deferred: Vec::new(),
            largest: Largest::default(),
            summary: BackfillSummary::default(),
            total: 0,
            rejected: 0,
            progress,
            sweep_time: Duration::ZERO,
        }
    }

    /// Queues `changes` for the writer. A step that changes stored rows (a later read batch
    /// merging with battles an earlier one wrote) needs the keys back: the bulk load ends
    /// first. Steps of only new rows (battles written once, when final) run in parallel; a
    /// step that changes stored rows begins once everything queued before it has committed: an
    /// ended battle's alias needs its successor's row, which an earlier final may still be
    /// writing on another connection.
    fn send(&mut self, changes: StepChanges) -> anyhow::Result<()> {
        let inserts_only = changes.killmails_retracted.is_empty()
            && changes
                .battles
                .iter()
                .all(|c| matches!(c, BattleChange::Created(_)));
        if !inserts_only && self.bulk.is_some() {
            let held: usize = self
                .deferred
                .iter()
                .map(|d| d.changes.killmails_inserted.len())
                .sum();
            if held + changes.killmails_inserted.len() <= MAX_DEFERRED_KILLMAILS {
                // Written after the rebuild, with its killmails: until then they are unstored,
                // so a crash loses nothing a re-run does not redo.
                self.deferred.push(Deferred::new(changes));
                return Ok(());
            }
            tracing::info!("too many steps update stored battles: ending the bulk load early");
            self.end_bulk()?;
        }
        self.summary.sink_wait += match self.pending.is_some() && inserts_only {
            true => self.writer.send(changes)?,
            false => self.writer.send_in_order(changes)?,
        };
        Ok(())
    }

    /// Queues a live step in the phases the sink cuts it into ([`SplitStep`]): the rest in
    /// order, its lone battles beside it on other connections, the positions once all of it
    /// has committed.
    fn send_step(&mut self, step: StepChanges) -> anyhow::Result<()> {
        match step.split(self.writers) {
            SplitStep::Whole(step) => self.send(step),
            SplitStep::Split {
                rest,
                parts,
                positions,
            } => {
                tracing::debug!(
                    parts = parts.len(),
                    alone = parts
                        .iter()
                        .map(|p| p.killmails_inserted.len())
                        .sum::<usize>(),
                    rest = rest.killmails_inserted.len(),
                    "step split"
                );
                self.send(rest)?;
                for part in parts {
                    self.summary.sink_wait += self.writer.send(part)?;
                }
                match positions.offsets.is_empty() && positions.rejections.is_empty() {
                    // A chunk before its batch's last carries none.
                    true => Ok(()),
                    false => self.send(*positions),
                }
            }
        }
    }

    /// True when a deferred step touches battles in `from..to`: the store does not show them
    /// as they are, so reading it there must wait for the end of the bulk load.
    fn deferred_overlap(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.deferred
            .iter()
            .any(|d| d.first <= to && d.last >= from)
    }

    /// Ends a bulk load in progress: waits for every write, then rebuilds the indexes and keys.
    pub(crate) fn end_bulk(&mut self) -> anyhow::Result<()> {
        let Some(load) = self.bulk.take() else {
            return Ok(());
        };
        self.summary.sink_wait += self.writer.flush()?;
        let report = self
            .runtime
            .block_on(load.finish())
            .context("rebuilding the indexes and keys after the bulk load")?;
        self.summary.bulk_loaded = true;
        self.summary.index_build += report.elapsed;
        for deferred in std::mem::take(&mut self.deferred) {
            self.summary.sink_wait += self.writer.send_in_order(deferred.changes)?;
        }
        Ok(())
    }

    /// Writes everything held back for its battle to be final (the end of the input: nothing
    /// can change any more).
    pub(crate) fn write_held(&mut self) -> anyhow::Result<()> {
        let Some(pending) = self.pending.as_mut() else {
            return Ok(());
        };
        let held = pending.take_all();
        self.send_final(held, StatusRule::default())
    }

    /// Queues battles that are final with their killmails: the created ones (which the sink
    /// can `COPY`) in transactions of their own, those changing stored rows in another, begun
    /// once everything before it committed ([`Sweep::send`]: their aliases may point at battles
    /// the created parts, or earlier finals, write).
    fn send_final(&mut self, mut done: Final, status: StatusRule) -> anyhow::Result<()> {
        let stored = done.split_stored();
        let suppress_events = self.suppress_events;
        // A big final (the end of the input, where everything is final at once) goes out as
        // one transaction per writer, so they run in parallel.
        let created = done.split_created(self.writers);
        for part in created.into_iter().chain([stored]) {
            if part.is_empty() {
                continue;
            }
            self.send(StepChanges {
                battles: part.battles,
                killmails_inserted: part.killmails,
                status,
                suppress_events,
                // Held killmails are unstored, and a battle is created once.
                rows_are_new: true,
                ..StepChanges::default()
            })?;
        }
        Ok(())
    }

    /// Waits until every write committed; returns what they did and the engine.
    pub(crate) fn finish(mut self) -> anyhow::Result<(writer::Applied, Engine)> {
        self.write_held()?;
        let applied = self.writer.finish()?;
        Ok((applied, self.engine))
    }

    /// Waits until every queued write has committed.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        self.summary.sink_wait += self.writer.flush()?;
        Ok(())
    }

    /// Takes the battles holding any of `killmails` out of the engine: their stored rows were
    /// rewritten by someone else (a re-clustering job), and the next chunk near them reads them
    /// back from the store.
    pub(crate) fn forget(&mut self, killmails: &HashSet<i64>) -> anyhow::Result<()> {
        let eviction = self.engine.forget(killmails)?;
        if !eviction.unexpected.changes.is_empty() {
            tracing::warn!(
                changes = eviction.unexpected.changes.len(),
                "forgetting rewritten battles changed other battles; writing the changes"
            );
            self.send(StepChanges {
                battles: eviction.unexpected.changes,
                suppress_events: self.suppress_events,
                ..StepChanges::default()
            })?;
        }
        Ok(())
    }

    /// True when the database already held `id` or an earlier batch of this sweep wrote it.
    pub(crate) fn is_stored(&self, time: DateTime<Utc>, id: i64) -> bool {
        self.stored_times.contains(&(time.timestamp(), id))
    }

    /// Clusters `killmails` (none of them stored yet) and writes the changes, with `extras` in
    /// the transaction of the last chunk.
    pub(crate) fn run(
        &mut self,
        mut killmails: Vec<Killmail>,
        extras: BatchExtras,
    ) -> anyhow::Result<()> {
        let sweep_started = Instant::now();
        killmails.sort_unstable_by_key(|k| (k.killmail_time, k.killmail_id));
        self.total += killmails.len() as u64;
        self.progress.start_clustering(self.total);
        let times: Vec<(i64, i64)> = killmails
            .iter()
            .map(|k| (k.killmail_time.timestamp(), k.killmail_id))
            .collect();
        let BatchExtras {
            offsets,
            rejections,
            status,
        } = extras;
        let mut extras = Some((offsets, rejections));
        let suppress_events = self.suppress_events;
        let mut rest = killmails;
        // Chunks are taken from the front; reversing once lets `split_off` take them cheaply.
        rest.reverse();
        while !rest.is_empty() {
            let take = self.chunk.min(rest.len());
            let mut chunk = rest.split_off(rest.len() - take);
            chunk.reverse();
            let first = chunk[0].killmail_time;

            let t = Instant::now();
            let eviction = self.engine.evict_closed(first - self.lateness)?;
            self.summary.evicted_battles += eviction.battles as u64;
            self.summary.engine_time += t.elapsed();
            if eviction.battles > 0 {
                tracing::debug!(
                    battles = eviction.battles,
                    killmails = eviction.killmails,
                    staying = self.engine.resident().killmails(),
                    renewed = eviction.renewed,
                    elapsed_ms = t.elapsed().as_millis() as u64,
                    "evicted closed battles"
                );
            }
            if !eviction.unexpected.changes.is_empty() {
                tracing::warn!(
                    changes = eviction.unexpected.changes.len(),
                    "evicting closed battles changed other battles; writing the changes"
                );
                match self.pending.as_mut() {
                    Some(pending) => pending.observe(eviction.unexpected.changes, Vec::new()),
                    None => self.send(StepChanges {
                        battles: eviction.unexpected.changes,
                        status,
                        suppress_events,
                        ..StepChanges::default()
                    })?,
                }
            }
            if let Some(pending) = self.pending.as_mut() {
                // What the eviction made final goes out with its killmails.
                let done =
                    pending.take_final(&self.engine, first - self.lateness - self.window * 2);
                self.send_final(done, status)?;
            }

            let ranges = unloaded_ranges(&self.stored_times, &chunk, self.window, &self.engine);
            if let (Some(first_range), Some(last_range)) = (ranges.first(), ranges.last()) {
                let (from, to) = (first_range.start, last_range.end);
                if ranges.iter().any(|r| self.deferred_overlap(r.start, r.end)) {
                    tracing::info!("new killmails reach battles a bulk load deferred: ending it");
                    self.end_bulk()?;
                }
                // The neighbourhood must be read after everything before it committed.
                let waited = Instant::now();
                self.summary.sink_wait += self.writer.flush()?;
                let flushed = waited.elapsed();
                let neighbourhood = self
                    .runtime
                    .block_on(self.sink.load_neighbourhood(&ranges))
                    .context("loading stored battles next to the new killmails")?;
                tracing::debug!(
                    flush_ms = flushed.as_millis() as u64,
                    read_ms = (waited.elapsed() - flushed).as_millis() as u64,
                    ranges = ranges.len(),
                    killmails = neighbourhood.len(),
                    %from,
                    %to,
                    "reading stored battles back"
                );
                let t = Instant::now();
                let before = self.engine.resident().killmails();
                let back = self.engine.rehydrate(neighbourhood)?;
                if let Some(pending) = self.pending.as_mut() {
                    pending.observe_stored(&back.changes);
                }
                self.summary.rehydrated += (self.engine.resident().killmails() - before) as u64;
                self.summary.engine_time += t.elapsed();
                if back
                    .changes
                    .iter()
                    .any(|c| !matches!(c, BattleChange::Created(_)))
                {
                    tracing::warn!(
                        "stored battles disagree with the engine (stored by another version or \
                         rule?); repair them with `battles recluster --start-date {} \
                         --end-date {}`",
                        from.date_naive(),
                        to.date_naive()
                    );
                }
            }

            // The engine and the store share the killmails: no copy of names and attackers.
            let chunk: Vec<Arc<Killmail>> = chunk.into_iter().map(Arc::new).collect();
            let for_store = chunk.clone();
            let t = Instant::now();
            let out = self.engine.insert(chunk)?;
            self.summary.engine_steps.push(t.elapsed());
            self.summary.engine_time += t.elapsed();
            self.summary.peak_resident_killmails = self
                .summary
                .peak_resident_killmails
                .max(self.engine.resident().killmails());
            self.largest.observe(&out.changes);
            if let Some(pending) = self.pending.as_mut() {
                // Written when final; the batch's extras go at its end, below.
                pending.observe(out.changes, for_store);
            } else {
                let (offsets, rejections) = match rest.is_empty() {
                    true => extras.take().unwrap_or_default(),
                    false => Default::default(),
                };
                let step = StepChanges {
                    battles: out.changes,
                    killmails_inserted: for_store,
                    offsets,
                    rejections,
                    status,
                    suppress_events,
                    // The killmails were checked against the store (`is_stored`) and a created
                    // battle is new: the sink copies them and upserts only the battles that
                    // changed (a broken promise costs a retry through the upserts).
                    rows_are_new: true,
                    ..StepChanges::default()
                };
                self.send_step(step)?;
            }
            // Progress counts what has committed, not what is queued.
            let (committed, created, ended) = self.writer.progress();
            self.progress.clustered(
                committed,
                self.total,
                created.saturating_sub(ended),
                self.rejected,
            );
        }
        if let Some((offsets, rejections)) = extras.take() {
            if !offsets.is_empty() || !rejections.is_empty() {
                self.send(StepChanges {
                    offsets,
                    rejections,
                    status,
                    suppress_events,
                    ..StepChanges::default()
                })?;
            }
        }
        // Later batches may reach back into this one's time: they must see its killmails as
        // stored.
        self.stored_times.extend(times);
        self.sweep_time += sweep_started.elapsed();
        Ok(())
    }
}

/// Killmails of steps a bulk load defers at most (beyond, it ends early).
const MAX_DEFERRED_KILLMAILS: usize = 100_000;

/// A step that updates stored rows, kept until the bulk load ends, with the time span of the
/// battles it touches.
struct Deferred {
    changes: StepChanges,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl Deferred {
    fn new(changes: StepChanges) -> Deferred {
        let reports = changes.battles.iter().flat_map(|c| match c {
            BattleChange::Created(r) => vec![r],
            BattleChange::Updated { old, new } => vec![old, new],
            BattleChange::Ended { old, .. } => vec![old],
        });
        let (mut first, mut last) = (DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC);
        for r in reports {
            first = first.min(r.started_at);
            last = last.max(r.ended_at);
        }
        for k in &changes.killmails_inserted {
            first = first.min(k.killmail_time);
            last = last.max(k.killmail_time);
        }
        Deferred {
            changes,
            first,
            last,
        }
    }
}

/// The time ranges around `chunk`'s killmails (sorted by time), each killmail's widened by the
/// link `window` and overlapping ones merged, that hold stored killmails the engine does not
/// hold: what must be read back so the chunk clusters exactly as if it had come with them.
/// Only a killmail's own window matters (nothing further away links to it), so a batch with
/// one killmail a day late reads back that killmail's hours, not the whole day in between.
fn unloaded_ranges(
    stored: &BTreeSet<(i64, i64)>,
    chunk: &[Killmail],
    window: chrono::Duration,
    engine: &Engine,
) -> Vec<std::ops::Range<DateTime<Utc>>> {
    let mut merged: Vec<std::ops::Range<DateTime<Utc>>> = Vec::new();
    for k in chunk {
        let (from, to) = (
            k.killmail_time - window,
            k.killmail_time + window + chrono::Duration::seconds(1),
        );
        match merged.last_mut() {
            Some(r) if from <= r.end => r.end = r.end.max(to),
            _ => merged.push(from..to),
        }
    }
    merged.retain(|r| has_unloaded(stored, r.start, r.end, engine));
    merged
}

/// True when the database holds killmails in `from..to` (half-open, as
/// [`Sink::load_neighbourhood`] reads it: a killmail at `to` that counted here but is never
/// read would make every later step near it wait for the writer and read again) that the
/// engine does not hold.
fn has_unloaded(
    stored: &BTreeSet<(i64, i64)>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    engine: &Engine,
) -> bool {
    let (a, b) = (from.timestamp(), to.timestamp());
    stored
        .range((a, i64::MIN)..(b, i64::MIN))
        .any(|(_, id)| !engine.resident().contains(*id))
}

/// The largest battles seen in the output, kept up to date through merges.
#[derive(Default)]
struct Largest {
    battles: BTreeMap<Uuid, Arc<BattleReport>>,
}

impl Largest {
    /// Battles this small are not kept.
    const MIN_KILLMAILS: i32 = 5;

    fn observe(&mut self, changes: &[BattleChange]) {
        for change in changes {
            self.battles.remove(&change.battle_id());
        }
        for r in changes.iter().filter_map(BattleChange::new_report) {
            if r.total_killmails >= Self::MIN_KILLMAILS {
                self.battles.insert(r.battle_id, r.clone());
            }
        }
        if self.battles.len() > 500 {
            let keep: HashSet<Uuid> = self.top(50).iter().map(|r| r.battle_id).collect();
            self.battles.retain(|id, _| keep.contains(id));
        }
    }

    fn top(&self, n: usize) -> Vec<BattleReport> {
        let mut all: Vec<&BattleReport> = self.battles.values().map(|r| &**r).collect();
        all.sort_by(|a, b| {
            b.total_killmails
                .cmp(&a.total_killmails)
                .then(a.battle_id.cmp(&b.battle_id))
        });
        all.into_iter().take(n).cloned().collect()
    }
}
