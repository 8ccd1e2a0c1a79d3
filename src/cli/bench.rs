//! `battles bench`: the whole backfill pipeline on generated killmails (or given files) into a
//! scratch database that is created and dropped, with a table of stage throughputs and latency
//! percentiles (`--json` for the same figures as JSON).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_dataflow::EngineConfig;
use battles_sink::{Sink, SinkConfig, TestDatabase};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::backfill::progress::Progress;
use crate::backfill::{backfill, BackfillOptions, BackfillSummary, DEFAULT_CHUNK};
use crate::generate::{generate, GeneratorConfig, KILLMAILS_PER_DAY};
use crate::postgres;

/// Benchmark the backfill pipeline end to end: generate killmails, parse, cluster and commit
/// them into a scratch database (created, then dropped), and print stage throughputs and
/// per-step latency percentiles.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles bench\n  battles bench --killmails 100000 --json\n  battles bench --input ../shared/data/killmails/"
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

    /// PostgreSQL server to create the scratch database on (its database name is ignored).
    #[arg(long)]
    pub database_url: Option<String>,

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

/// What `--json` prints.
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
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let inputs = if args.input.is_empty() {
        let path = scratch.path().join("killmails.jsonl");
        let t = Instant::now();
        let n = write_generated(&args, &path)?;
        if !args.json {
            eprintln!(
                "generated {n} killmails in {:.1} s into {}",
                t.elapsed().as_secs_f64(),
                path.display()
            );
        }
        vec![path]
    } else {
        args.input.clone()
    };

    let runtime = super::database_runtime()?;
    let database_url = crate::config::Config::load(&crate::config::Overrides {
        database_url: args.database_url.clone(),
        ..Default::default()
    })?
    .database_url;
    let db = runtime.block_on(async {
        let server = postgres::discover(database_url).await?;
        let db = TestDatabase::create_on(server)
            .await
            .context("creating the scratch database")?;
        anyhow::Ok(db)
    })?;
    if !args.json {
        eprintln!("scratch database: {}", postgres::redact(&db.url));
    }
    let result = runtime.block_on(Sink::connect(SinkConfig::new(db.url.clone())));
    let outcome = result.map_err(anyhow::Error::from).and_then(|sink| {
        let options = BackfillOptions {
            engine: EngineConfig {
                workers: args.workers,
                ..EngineConfig::default()
            },
            chunk: args.chunk,
            ..BackfillOptions::new(inputs)
        };
        let progress = if args.json {
            Progress::hidden()
        } else {
            Progress::auto()
        };
        backfill(Arc::new(sink), &runtime, &options, &progress)
    });
    runtime
        .block_on(db.drop_database())
        .context("dropping the scratch database")?;
    let summary = outcome?;
    let report = report(&args, &summary);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
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
    let secs = |d: Duration| d.as_secs_f64();
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let sink_time: Duration = s.sink_steps.iter().sum();
    let (e50, e99, emax) = percentiles(&s.engine_steps);
    let (s50, s99, smax) = percentiles(&s.sink_steps);
    let n = s.killmails_written;
    BenchReport {
        killmails: n,
        records: s.records,
        battles_created: s.battles_created,
        workers: args.workers,
        chunk: args.chunk,
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        peak_resident_killmails: s.peak_resident_killmails,
        stages: vec![
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
        ],
    }
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

fn print_table(r: &BenchReport) {
    println!(
        "{} killmails ({} records), {} battles created; {} engine worker(s), steps of {}, {} cores; at most {} killmails in memory",
        r.killmails, r.records, r.battles_created, r.workers, r.chunk, r.cores, r.peak_resident_killmails
    );
    println!(
        "{:<11} {:>10} {:>9} {:>12} {:>7} {:>10} {:>10} {:>10}",
        "stage", "items", "seconds", "items/s", "steps", "p50 ms", "p99 ms", "max ms"
    );
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    for s in &r.stages {
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
