//! `battles backfill PATH...` / `battles backfill --sample`: loads killmail files into the
//! battles database through the clustering engine (see [`crate::backfill`]), then prints a
//! summary and the largest battles with their sides.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use battles_dataflow::{BattleReport, Team};
use clap::Args;

use crate::backfill::progress::Progress;
use crate::backfill::{
    backfill, BackfillOptions, BackfillSummary, BulkMode, DEFAULT_CHUNK, DEFAULT_READ_BATCH,
};
use crate::config::{Config, Overrides};
use crate::ingest::IngestContext;
use crate::postgres;

/// The real day of killmails bundled with the project (2021-11-28, with the Jorund fight).
pub const SAMPLE: &str = "data/sample/esi-2021-11-28.jsonl.gz";

/// Load killmail files into the battles database.
///
/// Inputs are JSON Lines files (plain, .gz or .bz2), JSON files, directories (searched
/// recursively) or `-` for standard input, in any order. Killmails the database already holds
/// are skipped, so re-running the same input is a no-op and an interrupted run continues where
/// it stopped; overlapping inputs merge into the battles of their union. Rejected records are
/// stored in `rejected_killmails` with their reason and position.
///
/// PostgreSQL: --database-url, else $DATABASE_URL, else the local server on 127.0.0.1:5432,
/// else a private server started under .battles/pgdata when PostgreSQL is installed.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles backfill --sample\n  battles backfill ../shared/data/killmails/\n  zcat day.jsonl.gz | battles backfill -"
)]
pub struct BackfillArgs {
    /// Files, directories or `-` (standard input).
    #[arg(value_name = "PATH", required_unless_present = "sample")]
    pub paths: Vec<PathBuf>,

    /// Load the real day bundled with the project (data/sample/esi-2021-11-28.jsonl.gz).
    #[arg(long)]
    pub sample: bool,

    /// PostgreSQL URL of the battles database [default: the configuration's `database_url`
    /// (`DATABASE_URL`), else the local server, else a private one].
    #[arg(long)]
    pub database_url: Option<String>,

    /// TOML configuration file (else $BATTLES_CONFIG, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Engine worker threads [default: the configuration's `workers`].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Run the engine over several processes: host:port of every process, this one first.
    /// Start the others with `battles engine-peer --cluster <same list> --process N`.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    pub cluster: Vec<String>,

    /// Killmails per engine step and per transaction.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CHUNK)]
    pub chunk: usize,

    /// Killmails read, sorted and clustered at a time (bounds memory: a parsed killmail takes a
    /// few KB). Larger inputs go batch by batch, each merging exactly with the ones before.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_READ_BATCH)]
    pub read_batch: usize,

    /// Database connections writing at once [default: the number of cores, at most 4].
    #[arg(long, value_name = "N")]
    pub writers: Option<usize>,

    /// Load with the battle tables' indexes and keys dropped, building them at the end: `auto`
    /// when the tables are empty, `always` (only on a database no one else reads or writes
    /// meanwhile), `never`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Bulk::Auto)]
    pub bulk: Bulk,

    /// Also write battle.created / battle.updated events to the outbox.
    #[arg(long)]
    pub emit_events: bool,

    /// Accept killmail times up to this many seconds in the future [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub time_skew_secs: Option<u64>,

    /// Print no progress (log lines or bar).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--bulk` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Bulk {
    Auto,
    Always,
    Never,
}

pub fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        time_skew_secs: args.time_skew_secs,
        workers: args.workers,
        database_url: args.database_url.clone(),
        ..Overrides::default()
    })?;
    let mut paths = args.paths.clone();
    if args.sample {
        paths.push(sample_path()?);
    }
    let runtime = super::database_runtime()?;
    let (_server, sink) = runtime.block_on(postgres::connect_sink(&config))?;
    let options = BackfillOptions {
        paths,
        ingest: IngestContext::new(config.time_skew_secs),
        max_record_bytes: config.max_record_bytes,
        engine: config.driver_engine_config(&args.cluster),
        chunk: args.chunk,
        read_batch: args.read_batch,
        emit_events: args.emit_events,
        ..BackfillOptions::new(Vec::new())
    };
    let options = BackfillOptions {
        writers: args.writers.unwrap_or(options.writers),
        bulk: match args.bulk {
            Bulk::Auto => BulkMode::Auto,
            Bulk::Always => BulkMode::Always,
            Bulk::Never => BulkMode::Never,
        },
        ..options
    };
    let progress = if args.quiet {
        Progress::hidden()
    } else {
        Progress::auto()
    };
    let summary = backfill(Arc::new(sink), &runtime, &options, &progress)?;
    print_summary(&summary);
    Ok(if summary.source_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The bundled sample: beside the sources this binary was built from, else under the working
/// directory.
pub fn sample_path() -> anyhow::Result<PathBuf> {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SAMPLE);
    let candidates = [built, PathBuf::from(SAMPLE)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!("the bundled sample {SAMPLE} is missing; run from the project directory")
        })
}

fn print_summary(s: &BackfillSummary) {
    let secs = s.total_time.as_secs_f64().max(1e-9);
    println!(
        "backfilled {} record(s) in {:.1} s: {} new killmail(s), {:.0} killmails/s end to end",
        s.records,
        secs,
        s.killmails_written,
        s.killmails_written as f64 / secs
    );
    println!(
        "  reading   {:.1} s ({:.0} records/s, {:.0} MB)",
        s.read_time.as_secs_f64(),
        s.records as f64 / s.read_time.as_secs_f64().max(1e-9),
        s.bytes as f64 / 1e6
    );
    println!(
        "  skipped   {} already stored, {} exact duplicate(s)",
        s.already_stored, s.duplicates
    );
    println!(
        "  rejected  {} (stored in rejected_killmails)",
        s.rejected()
    );
    for (code, n) in &s.rejects_by_reason {
        println!("    {code:<22}{n:>8}");
    }
    println!(
        "  battles   {} created, {} updated, {} merged away; {} stored battle killmail(s) taken back in",
        s.battles_created, s.battles_updated, s.battles_ended, s.rehydrated
    );
    println!(
        "  engine    {:.1} s; waited {:.1} s for PostgreSQL; at most {} killmails in memory",
        s.engine_time.as_secs_f64(),
        s.sink_wait.as_secs_f64(),
        s.peak_resident_killmails
    );
    if s.bulk_loaded {
        println!(
            "  bulk      loaded with indexes and keys dropped; rebuilt them in {:.1} s",
            s.index_build.as_secs_f64()
        );
    }
    for e in &s.source_errors {
        println!("  unreadable: {e}");
    }
    if !s.largest.is_empty() {
        println!("\nlargest battles:");
        for (i, r) in s.largest.iter().enumerate() {
            print!("{}", describe(i + 1, r));
        }
    }
}

/// A few lines about one battle: where, when, size, outcome and who fought on each side.
pub fn describe(rank: usize, r: &BattleReport) -> String {
    let end = if r.ended_at.date_naive() == r.started_at.date_naive() {
        r.ended_at.format("%H:%M").to_string()
    } else {
        r.ended_at.format("%Y-%m-%d %H:%M").to_string()
    };
    let mut out = format!(
        "{rank}. {} – {end} UTC, {} ({}): {} killmails, {} pilots, {} ISK destroyed{}\n   id {}\n",
        r.started_at.format("%Y-%m-%d %H:%M"),
        r.primary_system_name,
        r.primary_region_name,
        r.total_killmails,
        r.total_pilots,
        isk(r.total_isk_destroyed),
        match (r.is_decisive, r.winning_team) {
            (true, Some(Team::A)) => ", decisive: team A won",
            (true, Some(Team::B)) => ", decisive: team B won",
            _ => ", not decisive",
        },
        r.battle_id
    );
    for (name, team, alliances) in [
        ("A", &r.team_a, &r.statistics.team_a_alliances),
        ("B", &r.team_b, &r.statistics.team_b_alliances),
    ] {
        let mut top: Vec<_> = alliances.iter().collect();
        top.sort_by(|a, b| {
            b.pilots
                .cmp(&a.pilots)
                .then(a.alliance_id.cmp(&b.alliance_id))
        });
        let names: Vec<String> = top
            .iter()
            .take(3)
            .map(|a| {
                let n = if a.name.is_empty() {
                    format!("alliance {}", a.alliance_id)
                } else {
                    a.name.clone()
                };
                format!("{n} ({})", a.pilots)
            })
            .collect();
        out.push_str(&format!(
            "   team {name}: {} pilots, lost {} ships / {} ISK; {}\n",
            team.pilots,
            team.ships_lost,
            isk(team.isk_lost),
            if names.is_empty() {
                "no alliance".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    out
}

/// 1234567890 -> "1.23B".
fn isk(v: i64) -> String {
    let f = v as f64;
    if f >= 1e12 {
        format!("{:.2}T", f / 1e12)
    } else if f >= 1e9 {
        format!("{:.2}B", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}M", f / 1e6)
    } else {
        format!("{v}")
    }
}
