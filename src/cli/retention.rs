//! `battles retention --cutoff D`: soft-deletes the battles that ended before a date, with
//! their participants, killmails and statistics (hidden from the API at once), and writes a
//! `battle.deleted` event for each; `battles retention --purge --older-than DAYS` removes
//! battles soft-deleted more than DAYS ago for good, with their stored killmails.

use std::path::PathBuf;
use std::process::ExitCode;

use battles_sink::{JobKind, Priority};
use chrono::{NaiveDate, Utc};
use clap::Args;

use crate::config::{Config, Overrides};
use crate::postgres;
use crate::recluster::{retention_cutoff, Alone, JobOptions, JobRunner, Stepped};

/// Battles removed per purge transaction.
const PURGE_BATCH: i64 = 5_000;

/// Soft-delete battles that ended before a cutoff, or purge soft-deleted ones for good.
///
/// The service (`battles run`) does the soft delete daily for battles older than
/// `retention_months` (60 by default) and on `data.retention` messages; purging is only ever
/// done by this command.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles retention --cutoff 2021-01-01\n  battles retention                    # the configured retention_months\n  battles retention --purge --older-than 30"
)]
pub struct RetentionArgs {
    /// Soft-delete battles that ended before this day (YYYY-MM-DD, UTC) [default: today minus
    /// the configuration's `retention_months`].
    #[arg(long, value_name = "DATE", conflicts_with = "purge")]
    pub cutoff: Option<NaiveDate>,

    /// Remove for good the battles soft-deleted more than --older-than days ago.
    #[arg(long, requires = "older_than")]
    pub purge: bool,

    /// With --purge: days since the soft delete.
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,

    /// Only queue the soft delete for the running service, and print the job's id.
    #[arg(long, conflicts_with = "purge")]
    pub enqueue: bool,

    /// PostgreSQL URL of the battles database [default: the configuration's `database_url`
    /// (`DATABASE_URL`), else the local server, else a private one].
    #[arg(long)]
    pub database_url: Option<String>,

    /// TOML configuration file (else $BATTLES_CONFIG, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: RetentionArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        database_url: args.database_url.clone(),
        ..Overrides::default()
    })?;
    let runtime = super::database_runtime()?;
    let (_server, sink) = runtime.block_on(postgres::connect_sink(&config))?;
    let cutoff = match args.cutoff {
        Some(c) => c,
        None if config.retention_months == 0 && !args.purge => anyhow::bail!(
            "retention_months is 0 (keep everything): give --cutoff DATE to delete anyway"
        ),
        None => retention_cutoff(Utc::now().date_naive(), config.retention_months),
    };
    if args.enqueue {
        let id = runtime.block_on(sink.enqueue_job(
            JobKind::Retention,
            cutoff,
            cutoff,
            Priority::Normal,
        ))?;
        println!("queued retention job {id} (battles ended before {cutoff}): the running service takes it up between its steps");
        return Ok(ExitCode::SUCCESS);
    }
    let _writer_lock = super::take_writer_lock(
        &runtime,
        &sink,
        "queue the soft delete for it with --enqueue (purging needs the service stopped)",
    )?;
    if args.purge {
        let days = args.older_than.unwrap_or_default();
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        let (mut battles, mut killmails) = (0, 0);
        loop {
            let purged = runtime.block_on(sink.purge_deleted_battles(before, PURGE_BATCH))?;
            battles += purged.battles;
            killmails += purged.killmails;
            if purged.battles == 0 {
                break;
            }
        }
        tracing::info!(battles, killmails, "purged soft-deleted battles");
        println!("purged {battles} battles soft-deleted before {before} and {killmails} stored killmails");
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(sink.resume_abandoned_jobs())?;
    let id =
        runtime.block_on(sink.enqueue_job(JobKind::Retention, cutoff, cutoff, Priority::High))?;
    let mut runner = JobRunner::new(JobOptions {
        retention_months: 0,
        ..JobOptions::new(config.engine_config())
    });
    let finished = runner.run_due(&sink, &runtime, &mut Alone, |_| {})?;
    match finished.into_iter().find(|s| match s {
        Stepped::Completed(j) | Stepped::Failed { job: j, .. } => j.id == id,
        _ => false,
    }) {
        Some(Stepped::Completed(job)) => {
            println!(
                "soft-deleted {} battles that ended before {cutoff} (job {})",
                job.battles_deleted, job.id
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Stepped::Failed { error, .. }) => {
            eprintln!("retention job {id} failed: {error}");
            Ok(ExitCode::from(1))
        }
        _ => anyhow::bail!("retention job {id} did not finish"),
    }
}
