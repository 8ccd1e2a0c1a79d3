//! `battles check PATH...`: parse and validate killmail files without storing anything, then
//! print counts per input shape, duplicates and rejects per reason, and the throughput. Exits 1
//! when anything was rejected or an input could not be read, 0 otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, Overrides};
use crate::ingest::{
    parse_record, Deduplicator, IngestContext, RejectReason, Rejection, RejectsFile, Seen, Shape,
};
use crate::sources::open_sources;

/// Check killmail files: parse and validate every record, store nothing.
///
/// Accepts JSON Lines files (plain, .gz or .bz2), files holding a pretty-printed JSON object or a
/// JSON array of killmails, directories (searched recursively for .jsonl, .json, .gz and .bz2
/// files, in name order) and `-` for standard input. Each record may be an enriched killmail, an
/// ESI killmail (optionally with a zKillboard `zkb` block) or a zKillboard RedisQ package.
///
/// Prints how many records were read per shape, how many were exact duplicates, how many were
/// rejected per reason (with the first example of each), and the throughput.
/// Exit status: 0 when every record was accepted, 1 when anything was rejected or unreadable.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles check ../shared/data/killmails/*.jsonl.gz\n  battles check --rejects bad.jsonl dumps/\n  zcat day.jsonl.gz | battles check -"
)]
pub struct CheckArgs {
    /// Files, directories or `-` (standard input) to check.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Append every rejection (reason, file:line, raw record, time) to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// TOML configuration file (else $BATTLES_CONFIG, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Accept killmail times up to this many seconds in the future
    /// [default: 3600, or $BATTLES_TIME_SKEW_SECS].
    #[arg(long, value_name = "SECS")]
    pub time_skew_secs: Option<u64>,

    /// Reject records longer than this many bytes [default: 16 MiB, or $BATTLES_MAX_RECORD_BYTES].
    #[arg(long, value_name = "BYTES")]
    pub max_record_bytes: Option<usize>,

    /// Do not report exact duplicates (same killmail id, same facts) separately: count them as
    /// parsed records.
    #[arg(long)]
    pub no_dedup: bool,
}

/// Counts of one check run.
#[derive(Debug, Default)]
struct Tally {
    records: u64,
    per_shape: BTreeMap<Shape, u64>,
    duplicates: u64,
    /// code -> (count, first example "position: message").
    rejects: BTreeMap<&'static str, (u64, String)>,
    source_errors: Vec<String>,
}

impl Tally {
    fn rejected(&self) -> u64 {
        self.rejects.values().map(|(n, _)| n).sum()
    }

    fn accepted(&self) -> u64 {
        self.per_shape.values().sum()
    }
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        time_skew_secs: args.time_skew_secs,
        max_record_bytes: args.max_record_bytes,
        rejects_path: args.rejects.clone(),
        ..Overrides::default()
    })?;
    let ctx = IngestContext::new(config.time_skew_secs);
    let mut sources = open_sources(&args.paths)?.with_max_record_bytes(config.max_record_bytes);
    let mut rejects_file = match &config.rejects_path {
        Some(path) => Some(
            RejectsFile::append(path)
                .with_context(|| format!("cannot open rejects file {}", path.display()))?,
        ),
        None => None,
    };
    let mut dedup = Deduplicator::new();
    let mut tally = Tally::default();
    let started = Instant::now();

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
        let outcome = if record.oversized {
            Err(RejectReason::TooLarge {
                max_bytes: config.max_record_bytes,
            })
        } else {
            parse_record(record.bytes, &ctx).and_then(|parsed| {
                if args.no_dedup {
                    return Ok((parsed.shape, Seen::New));
                }
                dedup
                    .observe(&parsed.killmail)
                    .map(|seen| (parsed.shape, seen))
            })
        };
        match outcome {
            Ok((shape, Seen::New)) => *tally.per_shape.entry(shape).or_default() += 1,
            Ok((_, Seen::Duplicate)) => tally.duplicates += 1,
            Err(reason) => {
                let position = record.position();
                let entry = tally
                    .rejects
                    .entry(reason.code())
                    .or_insert_with(|| (0, format!("{position}: {reason}")));
                entry.0 += 1;
                if let Some(file) = rejects_file.as_mut() {
                    file.write(&Rejection::new(reason, position, record.bytes))
                        .with_context(|| format!("cannot write to {}", file.path().display()))?;
                }
            }
        }
    }
    if let Some(file) = rejects_file.as_mut() {
        file.flush()
            .with_context(|| format!("cannot write to {}", file.path().display()))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    print_report(&tally, sources.input_count(), sources.bytes_read(), elapsed);
    if let Some(file) = &rejects_file {
        println!(
            "wrote {} rejection(s) to {}",
            file.written(),
            file.path().display()
        );
    }
    Ok(if tally.rejected() == 0 && tally.source_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(t: &Tally, inputs: usize, bytes: u64, secs: f64) {
    let rate = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    println!(
        "checked {} record(s) from {} input(s) in {:.2} s: {:.0} records/s, {:.1} MB/s",
        t.records,
        inputs,
        secs,
        rate(t.records as f64),
        rate(bytes as f64) / 1e6
    );
    let shapes: Vec<String> = Shape::ALL
        .iter()
        .map(|s| format!("{s} {}", t.per_shape.get(s).copied().unwrap_or(0)))
        .collect();
    println!(
        "  accepted    {:>10}  ({})",
        t.accepted(),
        shapes.join(", ")
    );
    println!(
        "  duplicates  {:>10}  (exact repeats, ignored)",
        t.duplicates
    );
    println!("  rejected    {:>10}", t.rejected());
    for (code, (n, example)) in &t.rejects {
        println!("    {code:<22}{n:>8}  first: {example}");
    }
    if !t.source_errors.is_empty() {
        println!("  unreadable inputs {}", t.source_errors.len());
        for e in &t.source_errors {
            println!("    {e}");
        }
    }
}
