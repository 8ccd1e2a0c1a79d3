//! `battles recluster --start-date D --end-date D`: re-clusters a date range in the
//! foreground with a progress bar and prints what changed; `--enqueue` only queues the job for
//! the running service (`battles run`), which runs jobs between its stream steps.

use std::path::PathBuf;
use std::process::ExitCode;

use battles_sink::{JobKind, JobQueue, Priority};
use chrono::NaiveDate;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Config, Overrides};
use crate::postgres;
use crate::recluster::{Alone, JobOptions, JobRunner, Stepped};

/// Re-cluster the stored killmails of a date range (UTC days, both included) with the
/// configured rule; only battles that come out different are written.
///
/// Use it after a change to the `[clustering]` settings, after killmails were stored without
/// clustering, or to repair battles written by an older version of the rule.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles recluster --start-date 2025-11-24 --end-date 2025-11-24\n  BATTLES_CLUSTERING_SAME_SYSTEM_SECS=900 battles recluster --start-date 2025-11-01 --end-date 2025-11-30\n  battles recluster --start-date 2025-11-24 --end-date 2025-11-25 --priority high --enqueue"
)]
pub struct ReclusterArgs {
    /// First day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub start_date: NaiveDate,

    /// Last day, included (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub end_date: NaiveDate,

    /// Job priority: low, normal or high.
    #[arg(long, default_value = "normal", value_parser = parse_priority)]
    pub priority: Priority,

    /// Only queue the job for the running service, and print its id.
    #[arg(long)]
    pub enqueue: bool,

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

    /// Write no battle events to the outbox.
    #[arg(long)]
    pub no_events: bool,
}

pub fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).ok_or_else(|| format!("{s:?} is not one of low, normal, high"))
}

pub fn run(args: ReclusterArgs) -> anyhow::Result<ExitCode> {
    if args.end_date < args.start_date {
        anyhow::bail!(
            "--end-date {} is before --start-date {}",
            args.end_date,
            args.start_date
        );
    }
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        workers: args.workers,
        database_url: args.database_url.clone(),
        ..Overrides::default()
    })?;
    let runtime = super::database_runtime()?;
    let (_server, sink) = runtime.block_on(postgres::connect_sink(&config))?;
    if args.enqueue {
        let id = runtime.block_on(sink.enqueue_job(
            JobKind::Recluster,
            args.start_date,
            args.end_date,
            args.priority,
        ))?;
        println!("queued re-clustering job {id} ({} .. {}, {}): the running service takes it up between its steps",
            args.start_date, args.end_date, args.priority.as_str());
        return Ok(ExitCode::SUCCESS);
    }
    let _writer_lock =
        super::take_writer_lock(&runtime, &sink, "queue the job for it with --enqueue")?;
    runtime.block_on(sink.resume_abandoned_jobs())?;
    let id = runtime.block_on(sink.enqueue_job(
        JobKind::Recluster,
        args.start_date,
        args.end_date,
        Priority::High,
    ))?;
    let days = (args.end_date - args.start_date).num_days() as u64 + 1;
    let bar = ProgressBar::with_draw_target(Some(days), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} days  {msg}  {elapsed}")
            .expect("valid template"),
    );
    // In the foreground, a failed slice is tried again after a short pause.
    let queue = JobQueue {
        backoff: std::time::Duration::from_secs(2),
        ..JobQueue::default()
    };
    let mut runner = JobRunner::new(JobOptions {
        retention_months: 0,
        queue,
        suppress_events: args.no_events,
        ..JobOptions::new(config.engine_config())
    });
    // Runs the queue until this job is done (jobs queued before it with a higher priority
    // run first: the queue has one order).
    let started = std::time::Instant::now();
    let finished = loop {
        let stepped = runner.run_due(&sink, &runtime, &mut Alone, |s| {
            if let Stepped::Progressed(job) | Stepped::Completed(job) = s {
                if job.id == id {
                    bar.inc(1);
                    bar.set_message(format!(
                        "{} killmails, {} created, {} updated, {} deleted",
                        job.killmails_processed,
                        job.battles_created,
                        job.battles_updated,
                        job.battles_deleted
                    ));
                }
            }
        })?;
        // Done when it completed, or failed with no attempt left; a failure with attempts
        // left is tried again after the backoff, as the service would.
        if let Some(done) = stepped.into_iter().find(|s| match s {
            Stepped::Completed(j) => j.id == id,
            Stepped::Failed { job: j, .. } => j.id == id && j.retry_count >= queue.max_attempts,
            _ => false,
        }) {
            break done;
        }
        std::thread::sleep(queue.backoff);
    };
    bar.finish_and_clear();
    match finished {
        Stepped::Completed(job) => {
            println!(
                "re-clustered {} .. {} in {:.1} s: {} killmails, {} battles created, {} updated, {} deleted (job {})",
                job.start_date,
                job.end_date,
                started.elapsed().as_secs_f64(),
                job.killmails_processed,
                job.battles_created,
                job.battles_updated,
                job.battles_deleted,
                job.id
            );
            Ok(ExitCode::SUCCESS)
        }
        Stepped::Failed { job, error } => {
            eprintln!("re-clustering job {} failed: {error}", job.id);
            Ok(ExitCode::from(1))
        }
        other => anyhow::bail!("the job did not finish: {other:?}"),
    }
}
