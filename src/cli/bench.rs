//! `battles bench`: the whole backfill pipeline on generated killmails (or given files) into a
//! scratch database that is created and dropped, with a table of stage throughputs, latency
//! percentiles and peak memory (`--json` for the same figures as JSON). `--incremental` adds
//! the second half of the input's time range backfilled into a database holding the first;
//! `--peer` runs the SQL peer (`benches/peer/`) on the same input in the same run.

mod memory;
mod peer;
mod prepare;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_dataflow::EngineConfig;
use battles_sink::server::Server;
use battles_sink::{Sink, SinkConfig, TestDatabase};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::backfill::progress::Progress;
use crate::backfill::{backfill, BackfillOptions, BackfillSummary, DEFAULT_CHUNK};
use crate::generate::{generate, GeneratorConfig, KILLMAILS_PER_DAY};
use crate::postgres;
use peer::PeerRun;
use prepare::{prepare, Prepared, Wanted};

/// Benchmark the backfill pipeline end to end: generate killmails, parse, cluster and commit
/// them into a scratch database (created, then dropped), and print stage throughputs,
/// per-step latency percentiles and peak memory; optionally an incremental run and the SQL
/// peer on the same input.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles bench\n  battles bench --killmails 100000 --json\n  battles bench --input ../shared/data/killmails/\n  battles bench --peer --incremental   (empty, incremental and SQL peer rows, ours/peer)"
)]
pub struct BenchArgs {
    /// Killmails to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub killmails: u64,

    /// Generated killmails per day (real EVE: 10,000 to 20,000).
    #[arg(long, default_value_t = 15_000)]
    pub per_day: u64,

    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Benchmark these files instead of generated killmails.
    #[arg(long, value_name = "PATH")]
    pub input: Vec<PathBuf>,

    /// Engine worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,

    /// Killmails per engine step and transaction.
    #[arg(long, default_value_t = DEFAULT_CHUNK)]
    pub chunk: usize,

    /// PostgreSQL server to create the scratch databases on (its database name is ignored).
    #[arg(long)]
    pub database_url: Option<String>,

    /// Also time the incremental case: cut the input at the middle of its time range (the
    /// earliest and latest 0.1% of killmails left out), backfill the first half, then time the
    /// second half into the database holding it.
    #[arg(long)]
    pub incremental: bool,

    /// Also run the SQL peer (benches/peer/sql_peer.py: COPY + SQL session windows; needs
    /// python3 and psql) on the same input, in a scratch database of its own.
    #[arg(long)]
    pub peer: bool,

    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One stage's figures.
#[derive(Debug, Serialize)]
pub struct Stage {
    pub stage: &'static str,
    pub items: u64,
    pub seconds: f64,
    pub per_second: f64,
    /// Per-step latency percentiles in milliseconds, when the stage works in steps.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub steps: Option<usize>,
}

/// What `--json` prints. The top-level figures are those of the empty-database run.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub killmails: u64,
    pub records: u64,
    pub battles_created: u64,
    pub workers: usize,
    pub chunk: usize,
    pub cores: usize,
    pub peak_resident_killmails: usize,
    pub stages: Vec<Stage>,
    /// Peak resident memory (VmHWM) of the empty-database run, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Peak resident memory of the whole bench process (all runs, input preparation).
    pub process_peak_rss_bytes: Option<u64>,
    pub incremental: Option<IncrementalReport>,
    pub peer: Option<PeerReport>,
}

/// `--incremental`: the second half of the time range into a database holding the first.
#[derive(Debug, Serialize)]
pub struct IncrementalReport {
    /// Killmails at or after this instant are the second half.
    pub split_at: String,
    pub first_half: FirstHalf,
    /// The timed run: the second half.
    pub killmails: u64,
    pub records: u64,
    pub battles_created: u64,
    pub battles_updated: u64,
    /// Stored killmails taken back into the engine to merge with.
    pub rehydrated: u64,
    pub peak_resident_killmails: usize,
    pub stages: Vec<Stage>,
    /// Peak resident memory of the second-half run, in bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// The first half's backfill into the empty database (timed apart from the second half).
#[derive(Debug, Serialize)]
pub struct FirstHalf {
    pub records: u64,
    pub killmails: u64,
    pub battles_created: u64,
    pub seconds: f64,
}

/// `--peer`: the SQL peer on the same input.
#[derive(Debug, Serialize)]
pub struct PeerReport {
    /// Why the peer did not run (python3 or psql missing), when it did not.
    pub skipped: Option<String>,
    pub runs: Vec<PeerRun>,
    /// Our seconds over the peer's, per comparison.
    pub ratios: Vec<Ratio>,
}

/// Our time over the peer's time for one comparison (below 1: we are faster).
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub ours: &'static str,
    pub peer: &'static str,
    pub ours_seconds: f64,
    pub peer_seconds: f64,
    pub ours_over_peer: f64,
}

const PEER_WHOLE: &str = "whole input";
const PEER_SECOND_HALF: &str = "second half alone";

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let inputs = if args.input.is_empty() {
        let path = scratch.path().join("killmails.jsonl");
        let t = Instant::now();
        let n = write_generated(&args, &path)?;
        note(
            &args,
            format!(
                "generated {n} killmails in {:.1} s into {}",
                t.elapsed().as_secs_f64(),
                path.display()
            ),
        );
        vec![path]
    } else {
        args.input.clone()
    };
    let options = backfill_options(&args, inputs.clone());

    let peer_missing = if args.peer {
        peer::missing_tools()
    } else {
        None
    };
    if let Some(why) = &peer_missing {
        eprintln!("SQL peer skipped: {why}; the rest of the bench runs");
    }
    let wanted = Wanted {
        peer: args.peer && peer_missing.is_none(),
        halves: args.incremental,
    };
    let t = Instant::now();
    let prepared = prepare(
        &inputs,
        scratch.path(),
        wanted,
        &options.ingest,
        options.max_record_bytes,
    )
    .context("preparing the inputs of the peer and the incremental run")?;
    if wanted.peer || wanted.halves {
        note(
            &args,
            format!(
                "prepared the peer's and the incremental run's inputs in {:.1} s (untimed)",
                t.elapsed().as_secs_f64()
            ),
        );
    }

    let runtime = super::database_runtime()?;
    let database_url = crate::config::Config::load(&crate::config::Overrides {
        database_url: args.database_url.clone(),
        ..Default::default()
    })?
    .database_url;
    let server = runtime.block_on(postgres::discover(database_url))?;

    memory::reset_peak();
    let empty = in_scratch_database(&runtime, &server, true, &args, |db| {
        let sink = Arc::new(runtime.block_on(Sink::connect(SinkConfig::new(db.url.clone())))?);
        backfill(sink, &runtime, &options, &progress(&args))
    })?;
    let empty_peak = memory::peak_resident_bytes();
    let mut process_peak = empty_peak;

    let incremental = match &prepared.halves {
        None => None,
        Some(halves) => {
            note(
                &args,
                format!(
                    "incremental: {} records before {}, {} from it",
                    halves.first_records, halves.split_at, halves.second_records
                ),
            );
            let (first, second, peak) =
                in_scratch_database(&runtime, &server, true, &args, |db| {
                    let sink =
                        Arc::new(runtime.block_on(Sink::connect(SinkConfig::new(db.url.clone())))?);
                    let first_options = backfill_options(&args, vec![halves.first.clone()]);
                    let first = backfill(sink.clone(), &runtime, &first_options, &progress(&args))?;
                    wait_for_writer_lock_release(&runtime, &sink)?;
                    memory::reset_peak();
                    let second_options = backfill_options(&args, vec![halves.second.clone()]);
                    let second = backfill(sink, &runtime, &second_options, &progress(&args))?;
                    anyhow::Ok((first, second, memory::peak_resident_bytes()))
                })?;
            process_peak = process_peak.max(peak);
            Some(incremental_report(halves, &first, &second, peak))
        }
    };

    let peer = if args.peer {
        Some(run_peer(
            &args,
            &runtime,
            &server,
            scratch.path(),
            &prepared,
            peer_missing,
        )?)
    } else {
        None
    };

    let mut report = report(&args, &empty);
    report.peak_rss_bytes = empty_peak;
    report.process_peak_rss_bytes = process_peak;
    report.incremental = incremental;
    if let Some(mut peer) = peer {
        peer.ratios = ratios(&report, &peer.runs);
        report.peer = Some(peer);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line on stderr, unless the output is JSON.
fn note(args: &BenchArgs, line: String) {
    if !args.json {
        eprintln!("{line}");
    }
}

fn progress(args: &BenchArgs) -> Progress {
    if args.json {
        Progress::hidden()
    } else {
        Progress::auto()
    }
}

fn backfill_options(args: &BenchArgs, paths: Vec<PathBuf>) -> BackfillOptions {
    BackfillOptions {
        engine: EngineConfig {
            workers: args.workers,
            ..EngineConfig::default()
        },
        chunk: args.chunk,
        ..BackfillOptions::new(paths)
    }
}

/// Runs `work` with a scratch database on `server` (migrated for ours, empty for the peer),
/// dropped afterwards whether `work` succeeded or not.
fn in_scratch_database<T>(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    migrated: bool,
    args: &BenchArgs,
    work: impl FnOnce(&TestDatabase) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let db = runtime
        .block_on(async {
            if migrated {
                TestDatabase::create_on(server.clone()).await
            } else {
                TestDatabase::create_empty_on(server.clone()).await
            }
        })
        .context("creating a scratch database")?;
    note(
        args,
        format!("scratch database: {}", postgres::redact(&db.url)),
    );
    let outcome = work(&db);
    runtime
        .block_on(db.drop_database())
        .context("dropping the scratch database")?;
    outcome
}

/// Waits (up to 30 s) until no session of the scratch database holds an advisory lock: a
/// finished backfill's writer lock goes when its connection's server session ends, which is
/// shortly after the backfill returns, and the next backfill would find it still taken.
fn wait_for_writer_lock_release(
    runtime: &tokio::runtime::Runtime,
    sink: &Sink,
) -> anyhow::Result<()> {
    const PATIENCE: Duration = Duration::from_secs(30);
    runtime.block_on(async {
        let client = sink
            .pool()
            .get()
            .await
            .context("connecting to the scratch database")?;
        let started = Instant::now();
        loop {
            let held: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .await?
                .get(0);
            if held == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < PATIENCE,
                "the first half's writer lock was still held {} s after its backfill",
                PATIENCE.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// The peer on the whole input and, with `--incremental`, on the second half alone (its method
/// reclusters from scratch: it has no database holding the first half to add to).
fn run_peer(
    args: &BenchArgs,
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    scratch: &Path,
    prepared: &Prepared,
    missing: Option<String>,
) -> anyhow::Result<PeerReport> {
    let mut report = PeerReport {
        skipped: missing,
        runs: Vec::new(),
        ratios: Vec::new(),
    };
    if report.skipped.is_some() {
        return Ok(report);
    }
    let script = peer::write_script(scratch)?;
    let mut inputs = Vec::new();
    if let Some(whole) = &prepared.peer_whole {
        inputs.push((PEER_WHOLE, whole.clone()));
    }
    if let Some(second) = prepared.halves.as_ref().and_then(|h| h.peer_second.clone()) {
        inputs.push((PEER_SECOND_HALF, second));
    }
    for (label, input) in inputs {
        note(args, format!("SQL peer on the {label}"));
        let run = in_scratch_database(runtime, server, false, args, |db| {
            peer::run(&script, &db.url, &input, label)
        })?;
        report.runs.push(run);
    }
    Ok(report)
}

/// Ours over the peer's: the empty run against the peer on the whole input; the incremental
/// run against the peer redoing the whole input (what its method needs to take in the second
/// half) and against the peer on the second half alone (a lower bound: no merge with the first).
fn ratios(report: &BenchReport, runs: &[PeerRun]) -> Vec<Ratio> {
    let peer = |label: &str| runs.iter().find(|r| r.input == label);
    let end_to_end = |stages: &[Stage]| {
        stages
            .iter()
            .find(|s| s.stage == "end-to-end")
            .map_or(0.0, |s| s.seconds)
    };
    let ratio = |ours: &'static str, ours_seconds: f64, peer_run: &PeerRun| Ratio {
        ours,
        peer: peer_run.input,
        ours_seconds,
        peer_seconds: peer_run.seconds,
        ours_over_peer: ours_seconds / peer_run.seconds.max(1e-9),
    };
    let mut out = Vec::new();
    let empty_seconds = end_to_end(&report.stages);
    if let Some(whole) = peer(PEER_WHOLE) {
        out.push(ratio("empty database", empty_seconds, whole));
    }
    if let Some(inc) = &report.incremental {
        let inc_seconds = end_to_end(&inc.stages);
        for label in [PEER_WHOLE, PEER_SECOND_HALF] {
            if let Some(run) = peer(label) {
                out.push(ratio("incremental", inc_seconds, run));
            }
        }
    }
    out
}

/// Writes `args.killmails` generated killmails (enriched shape, arrival order) to `path`.
fn write_generated(args: &BenchArgs, path: &std::path::Path) -> anyhow::Result<u64> {
    let per_day = args.per_day.max(1);
    let days = (args.killmails / per_day + 2).min(u32::MAX as u64) as u32;
    let config = GeneratorConfig {
        seed: args.seed,
        days,
        scale: per_day as f64 / KILLMAILS_PER_DAY,
        ..GeneratorConfig::default()
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1 << 16);
    let mut n = 0;
    for g in generate(config).take(args.killmails as usize) {
        line.clear();
        serde_json::to_writer(&mut line, &g.killmail)?;
        line.push(b'\n');
        out.write_all(&line)?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

fn report(args: &BenchArgs, s: &BackfillSummary) -> BenchReport {
    BenchReport {
        killmails: s.killmails_written,
        records: s.records,
        battles_created: s.battles_created,
        workers: args.workers,
        chunk: args.chunk,
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        peak_resident_killmails: s.peak_resident_killmails,
        stages: stages(s),
        peak_rss_bytes: None,
        process_peak_rss_bytes: None,
        incremental: None,
        peer: None,
    }
}

fn incremental_report(
    halves: &prepare::Halves,
    first: &BackfillSummary,
    second: &BackfillSummary,
    peak_rss_bytes: Option<u64>,
) -> IncrementalReport {
    IncrementalReport {
        split_at: halves.split_at.to_rfc3339(),
        first_half: FirstHalf {
            records: first.records,
            killmails: first.killmails_written,
            battles_created: first.battles_created,
            seconds: first.total_time.as_secs_f64(),
        },
        killmails: second.killmails_written,
        records: second.records,
        battles_created: second.battles_created,
        battles_updated: second.battles_updated,
        rehydrated: second.rehydrated,
        peak_resident_killmails: second.peak_resident_killmails,
        stages: stages(second),
        peak_rss_bytes,
    }
}

fn stages(s: &BackfillSummary) -> Vec<Stage> {
    let secs = |d: Duration| d.as_secs_f64();
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let sink_time: Duration = s.sink_steps.iter().sum();
    let (e50, e99, emax) = percentiles(&s.engine_steps);
    let (s50, s99, smax) = percentiles(&s.sink_steps);
    let n = s.killmails_written;
    vec![
        Stage {
            stage: "parse",
            items: s.records,
            seconds: secs(s.read_time),
            per_second: rate(s.records, s.read_time),
            p50_ms: None,
            p99_ms: None,
            max_ms: None,
            steps: None,
        },
        Stage {
            stage: "dataflow",
            items: n,
            seconds: secs(s.engine_time),
            per_second: rate(n, s.engine_time),
            p50_ms: e50,
            p99_ms: e99,
            max_ms: emax,
            steps: Some(s.engine_steps.len()),
        },
        Stage {
            stage: "sink",
            items: n,
            seconds: secs(sink_time),
            per_second: rate(n, sink_time),
            p50_ms: s50,
            p99_ms: s99,
            max_ms: smax,
            steps: Some(s.sink_steps.len()),
        },
        Stage {
            stage: "end-to-end",
            items: n,
            seconds: secs(s.total_time),
            per_second: rate(n, s.total_time),
            p50_ms: None,
            p99_ms: None,
            max_ms: None,
            steps: None,
        },
    ]
}

/// (p50, p99, max) in milliseconds.
fn percentiles(steps: &[Duration]) -> (Option<f64>, Option<f64>, Option<f64>) {
    if steps.is_empty() {
        return (None, None, None);
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 24 * 3_600_000_000, 3)
        .expect("valid histogram bounds");
    for d in steps {
        h.saturating_record(d.as_micros() as u64);
    }
    let ms = |us: u64| Some(us as f64 / 1000.0);
    (
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    )
}

fn print_report(r: &BenchReport) {
    let headed = r.incremental.is_some() || r.peer.is_some();
    if headed {
        println!("== empty database");
    }
    println!(
        "{} killmails ({} records), {} battles created; {} engine worker(s), steps of {}, {} cores; at most {} killmails in memory; peak RSS {}",
        r.killmails, r.records, r.battles_created, r.workers, r.chunk, r.cores, r.peak_resident_killmails, memory::human(r.peak_rss_bytes)
    );
    print_stages(&r.stages);
    if let Some(inc) = &r.incremental {
        let first = &inc.first_half;
        println!(
            "== incremental: the second half (from {}) into a database holding the first",
            inc.split_at
        );
        println!(
            "first half: {} killmails ({} records), {} battles created in {:.2} s (not in the rows below)",
            first.killmails, first.records, first.battles_created, first.seconds
        );
        println!(
            "second half: {} killmails ({} records), {} battles created, {} updated, {} stored killmails taken back; at most {} killmails in memory; peak RSS {}",
            inc.killmails, inc.records, inc.battles_created, inc.battles_updated, inc.rehydrated, inc.peak_resident_killmails, memory::human(inc.peak_rss_bytes)
        );
        print_stages(&inc.stages);
    }
    if let Some(peer) = &r.peer {
        println!("== SQL peer (benches/peer/sql_peer.py: COPY + SQL session windows, its own scratch database)");
        if let Some(why) = &peer.skipped {
            println!("skipped: {why}");
        }
        if !peer.runs.is_empty() {
            println!(
                "{:<19} {:>10} {:>9} {:>9} {:>12} {:>9}",
                "input", "killmails", "battles", "seconds", "killmails/s", "wall s"
            );
        }
        for run in &peer.runs {
            println!(
                "{:<19} {:>10} {:>9} {:>9.2} {:>12.0} {:>9.2}",
                run.input,
                run.killmails,
                run.battles,
                run.seconds,
                run.per_second,
                run.wall_seconds
            );
        }
        for ratio in &peer.ratios {
            println!(
                "ours/peer: {} {:.2} s / peer on the {} {:.2} s = {:.2}",
                ratio.ours,
                ratio.ours_seconds,
                ratio.peer,
                ratio.peer_seconds,
                ratio.ours_over_peer
            );
        }
        if peer.runs.iter().any(|r| r.input == PEER_SECOND_HALF) {
            println!("(the peer has no incremental mode: taking in the second half means redoing the whole input; on the second half alone it does not merge with the first, a lower bound)");
        }
    }
    println!(
        "peak RSS of the bench process (VmHWM, all runs): {}",
        memory::human(r.process_peak_rss_bytes)
    );
}

fn print_stages(stages: &[Stage]) {
    println!(
        "{:<11} {:>10} {:>9} {:>12} {:>7} {:>10} {:>10} {:>10}",
        "stage", "items", "seconds", "items/s", "steps", "p50 ms", "p99 ms", "max ms"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    for s in stages {
        println!(
            "{:<11} {:>10} {:>9.2} {:>12.0} {:>7} {:>10} {:>10} {:>10}",
            s.stage,
            s.items,
            s.seconds,
            s.per_second,
            s.steps.map_or("-".to_owned(), |n| n.to_string()),
            opt(s.p50_ms),
            opt(s.p99_ms),
            opt(s.max_ms)
        );
    }
    println!("(sink overlaps the dataflow; end-to-end includes parsing, sorting and waiting)");
}
