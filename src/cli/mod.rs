//! The `battles` command line: one subcommand per job. Each subcommand lives in its own module
//! with its clap arguments and its `run` function.

pub mod accuracy;
pub mod backfill;
pub mod bench;
pub mod check;
pub mod engine_peer;
pub mod generate;
pub mod migrate;
pub mod recluster;
pub mod retention;
pub mod run;
pub mod serve;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Clusters EVE Online killmails into battle reports.
#[derive(Debug, Parser)]
#[command(name = "battles", version, about, long_about = None)]
pub struct Cli {
    /// Log lines on stderr: `auto` (text, coloured only on a terminal), `text` or `json`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "BATTLES_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate killmail files without storing anything; print counts per input shape
    /// and per reject reason; exit non-zero if anything was rejected.
    Check(check::CheckArgs),
    /// Write realistic synthetic killmails (enriched shape, arrival order) with ground truth.
    Generate(generate::GenerateArgs),
    /// Cluster a generated run and score the battles and sides against its ground truth.
    Accuracy(accuracy::AccuracyArgs),
    /// Load killmail files (or the bundled sample day) into the battles database through the
    /// clustering engine; print the largest battles found with their sides.
    Backfill(backfill::BackfillArgs),
    /// Benchmark the backfill pipeline on generated killmails into a scratch database: stage
    /// throughputs and latency percentiles.
    Bench(bench::BenchArgs),
    /// Run one more process of a multi-process clustering engine (see `backfill --cluster`).
    EnginePeer(engine_peer::EnginePeerArgs),
    /// Create the battles database if needed and apply the schema migrations not yet applied.
    Migrate(migrate::MigrateArgs),
    /// Serve the REST API (battles_api) on the configured address, reading PostgreSQL only.
    Serve(serve::ServeArgs),
    /// Re-cluster the stored killmails of a date range with the configured rule, writing only
    /// the battles that change (or queue the job for the running service with --enqueue).
    Recluster(recluster::ReclusterArgs),
    /// Soft-delete battles that ended before a cutoff, or purge soft-deleted ones for good.
    Retention(retention::RetentionArgs),
    /// The live service: killmails from Kafka (or a replay of the bundled day) through the
    /// engine into PostgreSQL, battle events to Kafka, and the REST API.
    Run(run::RunArgs),
}

impl Command {
    /// A job that ends when its input is done (not the long-running `run` or `serve`): its
    /// process keeps freed memory for reuse ([`crate::memory`]).
    pub fn is_batch(&self) -> bool {
        !matches!(self, Command::Run(_) | Command::Serve(_))
    }
}

impl Cli {
    /// Runs the chosen subcommand; the process exit code comes from its result.
    pub fn run(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Check(args) => check::run(args),
            Command::Generate(args) => generate::run(args),
            Command::Accuracy(args) => accuracy::run(args),
            Command::Migrate(args) => migrate::run(args),
            Command::Backfill(args) => backfill::run(args),
            Command::Bench(args) => bench::run(args),
            Command::EnginePeer(args) => engine_peer::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Run(args) => run::run(args),
            Command::Recluster(args) => recluster::run(args),
            Command::Retention(args) => retention::run(args),
        }
    }
}

/// The async runtime of a command whose database work runs beside the engine: one thread, as
/// the engine and the parsers take the cores.
pub(crate) fn database_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Takes the database's writer lock for a command that must not run beside the service; when
/// another process holds it, the error says who and `if_service` what to do if it is
/// `battles run`.
pub(crate) fn take_writer_lock(
    runtime: &tokio::runtime::Runtime,
    sink: &battles_sink::Sink,
    if_service: &str,
) -> anyhow::Result<battles_sink::WriterLock> {
    match runtime.block_on(sink.lock_writer()) {
        Ok(lock) => Ok(lock),
        Err(battles_sink::SinkError::WriterBusy { holder }) => anyhow::bail!(
            "another process is writing battles to this database ({holder}); if it is the \
             service (`battles run`), {if_service}"
        ),
        Err(e) => Err(e.into()),
    }
}
