//! Re-clustering benchmark: killmails/s of `battles recluster` over a day and a week of
//! generated data at real density (scale 10, about 14k killmails a day), backfilled first into
//! a scratch database on the local PostgreSQL.
//!
//! For each range: **unchanged** (the rule the battles were written with: everything is read
//! and clustered again, nothing is written) and **rule change** (a shorter same-system link:
//! the battles that split are written), then back to the default rule (they merge again).
//!
//! `cargo bench --bench recluster` (`BENCH_DAYS`, default 7; `BENCH_RUNS`, default 3, runs of
//! each unchanged measurement).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use battles::backfill::progress::Progress;
use battles::backfill::{backfill, BackfillOptions};
use battles::generate::{generate_all, GeneratorConfig};
use battles::recluster::{Alone, JobOptions, JobRunner, Stepped};
use battles_dataflow::{EngineConfig, LinkRule};
use battles_sink::{JobKind, Priority, Sink, TestDatabase};
use chrono::NaiveDate;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one re-clustering job over `start..=end` with `rule`; prints and returns killmails/s.
fn recluster(
    sink: &Sink,
    rt: &tokio::runtime::Runtime,
    label: &str,
    (start, end): (NaiveDate, NaiveDate),
    rule: &LinkRule,
) -> f64 {
    rt.block_on(sink.enqueue_job(JobKind::Recluster, start, end, Priority::High))
        .unwrap();
    let mut runner = JobRunner::new(JobOptions {
        retention_months: 0,
        suppress_events: true,
        ..JobOptions::new(EngineConfig {
            rule: rule.clone(),
            ..EngineConfig::default()
        })
    });
    let t = Instant::now();
    let finished = runner.run_due(sink, rt, &mut Alone, |_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let Some(Stepped::Completed(job)) = finished.last() else {
        panic!("the job did not complete: {finished:?}");
    };
    let rate = job.killmails_processed as f64 / secs;
    println!(
        "{label:<34} {:>8} killmails {secs:>7.2} s {rate:>9.0} killmails/s  created {:>5} updated {:>5} deleted {:>5}",
        job.killmails_processed, job.battles_created, job.battles_updated, job.battles_deleted
    );
    rate
}

fn main() {
    let days: u32 = env("BENCH_DAYS", 7);
    let runs: usize = env("BENCH_RUNS", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let generated = generate_all(GeneratorConfig {
        seed: 11,
        days,
        scale: 10.0,
        ..GeneratorConfig::default()
    });
    let first = generated
        .killmails
        .iter()
        .map(|k| k.killmail_time)
        .min()
        .unwrap()
        .date_naive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killmails.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for k in &generated.killmails {
            serde_json::to_writer(&mut out, k).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    let total = generated.killmails.len();
    drop(generated);
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = Arc::new(rt.block_on(db.sink()).unwrap());
    let t = Instant::now();
    backfill(
        sink.clone(),
        &rt,
        &BackfillOptions::new(vec![file]),
        &Progress::hidden(),
    )
    .unwrap();
    println!(
        "backfilled {total} generated killmails ({days} days) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let default = LinkRule::default();
    let shorter = LinkRule {
        same_system_secs: 300,
        adjacent_secs: 120,
        adjacent_anyone_secs: 120,
        ..LinkRule::default()
    };
    let middle = first + chrono::Duration::days(i64::from(days / 2));
    let day = (middle, middle);
    let week = (first, first + chrono::Duration::days(i64::from(days) - 1));
    for run in 1..=runs {
        recluster(
            &sink,
            &rt,
            &format!("day, unchanged (run {run})"),
            day,
            &default,
        );
    }
    recluster(&sink, &rt, "day, rule change", day, &shorter);
    recluster(&sink, &rt, "day, back to the default rule", day, &default);
    for run in 1..=runs {
        recluster(
            &sink,
            &rt,
            &format!("{days} days, unchanged (run {run})"),
            week,
            &default,
        );
    }
    recluster(
        &sink,
        &rt,
        &format!("{days} days, rule change"),
        week,
        &shorter,
    );
    recluster(
        &sink,
        &rt,
        &format!("{days} days, back to the default rule"),
        week,
        &default,
    );
    drop(sink);
    rt.block_on(db.drop_database()).unwrap();
}
