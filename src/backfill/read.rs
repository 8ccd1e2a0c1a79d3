//! The backfill's first phase: read every input, parse records on all cores, drop exact
//! duplicates and killmails the database already holds, and keep everything else: the new
//! killmails (to be clustered in time order) and the rejections (to be stored with their
//! reasons). The reader thread hands batches of raw records to parser threads; a collector puts
//! the parsed batches back in input order, so which of two conflicting copies wins does not
//! depend on thread timing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use battles_dataflow::{Killmail, KillmailId};
use battles_sink::{RejectionRow, SourcePosition as StoredPosition};
use chrono::Utc;

use crate::ingest::{parse_record, Deduplicator, IngestContext, RejectReason, Seen, Shape};
use crate::sources::{open_sources, Origin, SourcePosition};

use super::progress::Progress;
use super::BackfillOptions;

/// Records per batch handed to a parser thread.
const BATCH: usize = 512;

/// What the read phase found.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub rejections: Vec<RejectionRow>,
    pub records: u64,
    pub bytes: u64,
    pub per_shape: BTreeMap<Shape, u64>,
    /// Exact repeats within the input.
    pub duplicates: u64,
    /// Killmails the database already held (a re-run, or an overlap with an earlier backfill).
    pub already_stored: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    /// Inputs that could not be opened or read to the end.
    pub source_errors: Vec<String>,
    /// Source key (`file:/abs/path`, `stdin`) -> records read from it.
    pub records_per_input: BTreeMap<String, u64>,
}

impl ReadOutcome {
    pub fn rejected(&self) -> u64 {
        self.rejects_by_reason.values().sum()
    }
}

/// One raw record, owned, with where it came from.
struct RawRecord {
    bytes: Vec<u8>,
    position: SourcePosition,
    oversized: bool,
}

/// A parsed record keeps its raw form until the collector knows it is not a conflicting
/// duplicate (which is rejected with its bytes and position).
type Parsed = Result<(Killmail, Shape, RawRecord), (RejectReason, RawRecord)>;

/// What the reader thread counts.
struct ReaderTally {
    records: u64,
    bytes: u64,
    per_input: BTreeMap<String, u64>,
    source_errors: Vec<String>,
}

/// Reads `options.paths` with `options.parsers` parser threads, handing the new killmails to
/// `on_batch` in batches of `options.read_batch` (the last one smaller), in input order, with
/// the number of records rejected so far. `stored` holds
/// the ids already in the database. Memory stays bounded: while `on_batch` works, the reader
/// and the parsers stop as soon as their queues are full. An error from `on_batch` stops the
/// reading and is returned.
pub fn read_inputs(
    options: &BackfillOptions,
    stored: &HashSet<KillmailId>,
    progress: &Progress,
    mut on_batch: impl FnMut(Vec<Killmail>, u64) -> anyhow::Result<()>,
) -> anyhow::Result<ReadOutcome> {
    let (ctx, max_record_bytes) = (&options.ingest, options.max_record_bytes);
    let batch_limit = options.read_batch;
    let mut sources = open_sources(&options.paths)?.with_max_record_bytes(max_record_bytes);
    let parsers = options.parsers.max(1);
    let (work_tx, work_rx) = sync_channel::<(u64, Vec<RawRecord>)>(parsers * 4);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = sync_channel::<(u64, Vec<Parsed>)>(parsers * 4);

    std::thread::scope(|scope| {
        for _ in 0..parsers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || parse_batches(&work_rx, &done_tx, ctx, max_record_bytes));
        }
        drop(done_tx);
        let reader = scope.spawn(move || {
            let mut tally = ReaderTally {
                records: 0,
                bytes: 0,
                per_input: BTreeMap::new(),
                source_errors: Vec::new(),
            };
            let mut batch = Vec::with_capacity(BATCH);
            let mut seq = 0u64;
            while let Some(next) = sources.next_record() {
                let record = match next {
                    Ok(record) => record,
                    Err(e) => {
                        tracing::error!("{e}");
                        tally.source_errors.push(e.to_string());
                        continue;
                    }
                };
                tally.records += 1;
                *tally
                    .per_input
                    .entry(source_key(record.origin))
                    .or_default() += 1;
                batch.push(RawRecord {
                    bytes: record.bytes.to_vec(),
                    position: record.position(),
                    oversized: record.oversized,
                });
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if work_tx.send((seq, full)).is_err() {
                        // The collector stopped (an error downstream): stop reading.
                        break;
                    }
                    seq += 1;
                    progress.read(tally.records, sources.bytes_read());
                }
            }
            if !batch.is_empty() {
                let _ = work_tx.send((seq, batch));
            }
            drop(work_tx);
            progress.read(tally.records, sources.bytes_read());
            tally.bytes = sources.bytes_read();
            tally
        });

        let collected = collect(done_rx, stored, batch_limit.max(1), &mut on_batch);
        let tally = reader.join().expect("reader thread");
        let mut outcome = collected?;
        outcome.records = tally.records;
        outcome.bytes = tally.bytes;
        outcome.source_errors = tally.source_errors;
        outcome.records_per_input = tally.per_input;
        Ok(outcome)
    })
}

/// The `source_offsets` key of an input.
pub fn source_key(origin: &Origin) -> String {
    match origin {
        Origin::File(path) => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            format!("file:{}", abs.display())
        }
        Origin::Stdin => "stdin".to_owned(),
    }
}

fn parse_batches(
    work: &Mutex<Receiver<(u64, Vec<RawRecord>)>>,
    done: &SyncSender<(u64, Vec<Parsed>)>,
    ctx: &IngestContext,
    max_record_bytes: usize,
) {
    loop {
        let next = work.lock().expect("work queue lock").recv();
        let Ok((seq, batch)) = next else { return };
        let parsed = batch
            .into_iter()
            .map(|raw| {
                if raw.oversized {
                    return Err((
                        RejectReason::TooLarge {
                            max_bytes: max_record_bytes,
                        },
                        raw,
                    ));
                }
                match parse_record(&raw.bytes, ctx) {
                    Ok(p) => Ok((p.killmail, p.shape, raw)),
                    Err(reason) => Err((reason, raw)),
                }
            })
            .collect();
        if done.send((seq, parsed)).is_err() {
            return;
        }
    }
}

/// Puts parsed batches back in input order, sorts each record into the outcome and hands the
/// new killmails on in batches of `batch_limit`. Returning early (on an error) drops `done`,
/// which stops the parsers and then the reader.
fn collect(
    done: Receiver<(u64, Vec<Parsed>)>,
    stored: &HashSet<KillmailId>,
    batch_limit: usize,
    on_batch: &mut impl FnMut(Vec<Killmail>, u64) -> anyhow::Result<()>,
) -> anyhow::Result<ReadOutcome> {
    let mut out = ReadOutcome::default();
    let mut killmails: Vec<Killmail> = Vec::new();
    let mut dedup = Deduplicator::new();
    let mut pending: HashMap<u64, Vec<Parsed>> = HashMap::new();
    let mut next = 0u64;
    for (seq, parsed) in done {
        pending.insert(seq, parsed);
        while let Some(batch) = pending.remove(&next) {
            next += 1;
            for item in batch {
                match item {
                    Ok((km, shape, raw)) => match dedup.observe(&km) {
                        Ok(Seen::New) if stored.contains(&km.killmail_id) => {
                            out.already_stored += 1
                        }
                        Ok(Seen::New) => {
                            *out.per_shape.entry(shape).or_default() += 1;
                            killmails.push(km);
                        }
                        Ok(Seen::Duplicate) => out.duplicates += 1,
                        Err(reason) => reject(&mut out, reason, raw),
                    },
                    Err((reason, raw)) => reject(&mut out, reason, raw),
                }
            }
            if killmails.len() >= batch_limit {
                on_batch(std::mem::take(&mut killmails), out.rejected())?;
            }
        }
    }
    if !killmails.is_empty() {
        on_batch(killmails, out.rejected())?;
    }
    Ok(out)
}

fn reject(out: &mut ReadOutcome, reason: RejectReason, raw: RawRecord) {
    *out.rejects_by_reason.entry(reason.code()).or_default() += 1;
    out.rejections.push(RejectionRow {
        raw_payload: String::from_utf8_lossy(&raw.bytes).into_owned(),
        reason_code: reason.code().to_owned(),
        reason_message: reason.to_string(),
        source: stored_position(&raw.position),
        received_at: Utc::now(),
    });
}

/// The sink's form of a source position.
pub fn stored_position(position: &SourcePosition) -> StoredPosition {
    match position {
        SourcePosition::File { path, line } => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            StoredPosition::File {
                path: abs.display().to_string(),
                line: *line,
            }
        }
        SourcePosition::Stdin { line } => StoredPosition::Other(format!("stdin:{line}")),
        SourcePosition::Kafka {
            topic,
            partition,
            offset,
        } => StoredPosition::Kafka {
            topic: topic.clone(),
            partition: *partition,
            offset: *offset,
        },
    }
}
