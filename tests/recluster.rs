//! Re-clustering and retention jobs against the real PostgreSQL: an unchanged range writes
//! nothing; late killmails and a changed rule give the tables of a fresh backfill; jobs run by
//! priority; a job stopped after a slice and resumed counts every killmail once; a malformed job
//! fails for good without blocking the queue; retention soft-deletes exactly the battles that
//! ended before the cutoff, the API hides them, and a purge removes them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use battles::backfill::progress::Progress;
use battles::backfill::{backfill, BackfillOptions};
use battles::recluster::{midnight, Alone, JobOptions, JobRunner, Stepped};
use battles_api::{ApiSettings, ApiState};
use battles_dataflow::{EngineConfig, LinkRule};
use battles_sink::tokio_postgres::Client;
use battles_sink::{Job, JobKind, JobQueue, Priority, Sink, TestDatabase};
use chrono::{NaiveDate, Utc};
use common::{
    assert_same_tables, dump, generated, get, parse_all, read_lines, runtime, write_lines, Status,
};
use uuid::Uuid;

fn engine(rule: LinkRule) -> EngineConfig {
    EngineConfig {
        workers: 2,
        rule,
        ..EngineConfig::default()
    }
}

/// A narrower rule than the default: fewer links, so battles split.
fn narrow_rule() -> LinkRule {
    LinkRule {
        same_system_secs: 300,
        adjacent_secs: 120,
        adjacent_anyone_secs: 120,
        ..LinkRule::default()
    }
}

fn runner(rule: LinkRule) -> JobRunner {
    JobRunner::new(JobOptions {
        retention_months: 0,
        poll_every: Duration::ZERO,
        ..JobOptions::new(engine(rule))
    })
}

fn run_backfill(rt: &tokio::runtime::Runtime, db: &TestDatabase, file: &Path, rule: LinkRule) {
    let sink = Arc::new(rt.block_on(db.sink()).unwrap());
    let options = BackfillOptions {
        chunk: 500,
        engine: engine(rule),
        ..BackfillOptions::new(vec![file.to_owned()])
    };
    let summary = backfill(sink, rt, &options, &Progress::hidden()).unwrap();
    assert_eq!(summary.rejected(), 0);
}

fn count(rt: &tokio::runtime::Runtime, client: &Client, sql: &str) -> i64 {
    rt.block_on(client.query_one(sql, &[])).unwrap().get(0)
}

fn ids(rt: &tokio::runtime::Runtime, client: &Client, sql: &str) -> BTreeSet<Uuid> {
    rt.block_on(client.query(sql, &[]))
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The UTC days of the stored killmails, first and last.
fn stored_days(rt: &tokio::runtime::Runtime, client: &Client) -> (NaiveDate, NaiveDate) {
    let row = rt
        .block_on(client.query_one(
            "SELECT (min(killmail_time) AT TIME ZONE 'UTC')::date,
                    (max(killmail_time) AT TIME ZONE 'UTC')::date FROM killmails",
            &[],
        ))
        .unwrap();
    (row.get(0), row.get(1))
}

fn max_outbox_id(rt: &tokio::runtime::Runtime, client: &Client) -> i64 {
    count(
        rt,
        client,
        "SELECT coalesce(max(id), 0) FROM battle_events_outbox",
    )
}

/// Queues a re-clustering of `start..=end` and runs the queue dry; the job's last state.
fn recluster(
    rt: &tokio::runtime::Runtime,
    sink: &Sink,
    rule: LinkRule,
    start: NaiveDate,
    end: NaiveDate,
) -> Job {
    let id = rt
        .block_on(sink.enqueue_job(JobKind::Recluster, start, end, Priority::Normal))
        .unwrap();
    let done = runner(rule).run_due(sink, rt, &mut Alone, |_| {}).unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    let Stepped::Completed(job) = &done[0] else {
        panic!("the job did not complete: {done:?}");
    };
    assert_eq!(job.id, id);
    assert_eq!(job.status, "completed");
    job.clone()
}

fn completed(done: &[Stepped]) -> Vec<Job> {
    done.iter()
        .map(|s| match s {
            Stepped::Completed(job) => job.clone(),
            other => panic!("not completed: {other:?}"),
        })
        .collect()
}

#[test]
fn an_unchanged_range_writes_nothing() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 31, 3);
    let db = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &db, &file, LinkRule::default());
    let sink = rt.block_on(db.sink()).unwrap();
    let client = rt.block_on(db.connect()).unwrap();

    let before = rt.block_on(dump(&db, Status::Compared));
    assert!(before["battles"].len() > 100);
    let updated_at = |client: &Client| -> Option<chrono::DateTime<Utc>> {
        rt.block_on(client.query_one("SELECT max(updated_at) FROM battles", &[]))
            .unwrap()
            .get(0)
    };
    let updated_before = updated_at(&client);
    assert!(updated_before.is_some());
    let outbox_before = count(&rt, &client, "SELECT count(*) FROM battle_events_outbox");
    let killmails = count(&rt, &client, "SELECT count(*) FROM killmails");
    let (start, end) = stored_days(&rt, &client);
    assert!(end > start, "{start}..{end}");

    let job = recluster(&rt, &sink, LinkRule::default(), start, end);
    assert_eq!(
        (
            job.battles_created,
            job.battles_updated,
            job.battles_deleted
        ),
        (0, 0, 0),
        "{job:?}"
    );
    assert_eq!(job.killmails_processed, killmails);
    assert_same_tables(
        &before,
        &rt.block_on(dump(&db, Status::Compared)),
        "re-clustered, unchanged",
    );
    assert_eq!(updated_at(&client), updated_before);
    assert_eq!(
        count(&rt, &client, "SELECT count(*) FROM battle_events_outbox"),
        outbox_before
    );
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn late_killmails_give_the_tables_of_a_fresh_backfill() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 32, 2);
    let lines = read_lines(&file);
    // Every 7th killmail arrives late.
    let is_late = |i: usize| i % 7 == 3;
    let kept: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_late(*i))
        .map(|(_, l)| l.clone())
        .collect();
    let late: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| is_late(*i))
        .map(|(_, l)| l.clone())
        .collect();
    assert!(late.len() > 100);
    let kept_file = write_lines(&dir.path().join("kept.jsonl"), &kept);

    let fresh = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &fresh, &file, LinkRule::default());
    let expected = rt.block_on(dump(&fresh, Status::Compared));

    let db = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &db, &kept_file, LinkRule::default());
    let client = rt.block_on(db.connect()).unwrap();
    // The late killmails stored without clustering, as the sink writes them.
    let late = parse_all(&late);
    let ids: Vec<i64> = late.iter().map(|k| k.killmail_id).collect();
    let hashes: Vec<Option<String>> = late.iter().map(|k| k.killmail_hash.clone()).collect();
    let times: Vec<chrono::DateTime<Utc>> = late.iter().map(|k| k.killmail_time).collect();
    let systems: Vec<i64> = late.iter().map(|k| k.solar_system_id).collect();
    let regions: Vec<i64> = late.iter().map(|k| k.region_id).collect();
    let records: Vec<Vec<u8>> = late.iter().map(battles_sink::record::encode).collect();
    let estimated: Vec<bool> = late.iter().map(|k| k.isk_estimated).collect();
    let inserted = rt
        .block_on(client.execute(
            "INSERT INTO killmails (killmail_id, killmail_hash, killmail_time, solar_system_id,
               region_id, record, isk_estimated)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[], $4::int8[],
               $5::int8[], $6::bytea[], $7::bool[])",
            &[
                &ids, &hashes, &times, &systems, &regions, &records, &estimated,
            ],
        ))
        .unwrap();
    assert_eq!(inserted, late.len() as u64);
    assert_ne!(
        rt.block_on(dump(&db, Status::Compared))["battles"],
        expected["battles"],
        "the late killmails are missing from the battles before re-clustering"
    );

    let sink = rt.block_on(db.sink()).unwrap();
    let (start, end) = stored_days(&rt, &client);
    let job = recluster(&rt, &sink, LinkRule::default(), start, end);
    assert_eq!(job.killmails_processed, lines.len() as i64);
    assert!(
        job.battles_created + job.battles_updated + job.battles_deleted > 0,
        "{job:?}"
    );
    assert_same_tables(
        &expected,
        &rt.block_on(dump(&db, Status::Compared)),
        "late killmails re-clustered",
    );
    rt.block_on(db.drop_database()).unwrap();
    rt.block_on(fresh.drop_database()).unwrap();
}

/// Battles that ended in a re-clustering (in `before`, not in `after`): each has one
/// `battle.deleted` event after `outbox_mark` and an alias to a live battle.
fn check_ended(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    before: &BTreeSet<Uuid>,
    after: &BTreeSet<Uuid>,
    outbox_mark: i64,
) -> usize {
    let ended: Vec<Uuid> = before.difference(after).copied().collect();
    let mut events: BTreeMap<Uuid, i64> = BTreeMap::new();
    for r in rt
        .block_on(client.query(
            "SELECT battle_id, count(*) FROM battle_events_outbox
             WHERE event_type = 'battle.deleted' AND id > $1 GROUP BY battle_id",
            &[&outbox_mark],
        ))
        .unwrap()
    {
        events.insert(r.get(0), r.get(1));
    }
    let aliases: BTreeMap<Uuid, Uuid> = rt
        .block_on(client.query("SELECT ended_battle_id, battle_id FROM battle_aliases", &[]))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for id in &ended {
        assert_eq!(events.get(id), Some(&1), "battle.deleted events of {id}");
        let target = aliases
            .get(id)
            .unwrap_or_else(|| panic!("ended battle {id} has no alias"));
        assert!(after.contains(target), "{id} aliases {target}, not live");
    }
    for (id, target) in &aliases {
        assert!(
            after.contains(target),
            "alias {id} -> {target}: not a live battle"
        );
        assert!(!after.contains(id), "alias {id} is a live battle");
    }
    ended.len()
}

#[test]
fn a_changed_rule_gives_the_tables_of_a_fresh_backfill() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 33, 2);

    let fresh = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &fresh, &file, narrow_rule());
    let expected_narrow = rt.block_on(dump(&fresh, Status::Compared));

    let db = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &db, &file, LinkRule::default());
    let expected_default = rt.block_on(dump(&db, Status::Compared));
    assert_ne!(expected_default["battles"], expected_narrow["battles"]);
    let sink = rt.block_on(db.sink()).unwrap();
    let client = rt.block_on(db.connect()).unwrap();
    let live = "SELECT id FROM battles WHERE deleted_at IS NULL";
    let (start, end) = stored_days(&rt, &client);

    // Default -> narrow: battles split.
    let before = ids(&rt, &client, live);
    let mark = max_outbox_id(&rt, &client);
    let job = recluster(&rt, &sink, narrow_rule(), start, end);
    assert!(
        job.battles_created > 0 && job.battles_updated > 0,
        "{job:?}"
    );
    assert_same_tables(
        &expected_narrow,
        &rt.block_on(dump(&db, Status::Compared)),
        "re-clustered with a narrower rule",
    );
    let after = ids(&rt, &client, live);
    let ended = check_ended(&rt, &client, &before, &after, mark);
    assert_eq!(ended as i64, job.battles_deleted, "{job:?}");

    // Narrow -> default again: battles merge back, the merged ones end with an alias.
    let mark = max_outbox_id(&rt, &client);
    let job = recluster(&rt, &sink, LinkRule::default(), start, end);
    assert_same_tables(
        &expected_default,
        &rt.block_on(dump(&db, Status::Compared)),
        "re-clustered back with the default rule",
    );
    let back = ids(&rt, &client, live);
    let ended = check_ended(&rt, &client, &after, &back, mark);
    assert!(ended > 0, "merging back ends battles");
    assert_eq!(ended as i64, job.battles_deleted, "{job:?}");
    rt.block_on(db.drop_database()).unwrap();
    rt.block_on(fresh.drop_database()).unwrap();
}

#[test]
fn jobs_run_by_priority() {
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = rt.block_on(db.sink()).unwrap();
    let day = |d: u32| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
    let mut queued = Vec::new();
    for (d, priority) in [
        (1, Priority::Low),
        (2, Priority::Normal),
        (3, Priority::High),
    ] {
        queued.push(
            rt.block_on(sink.enqueue_job(JobKind::Recluster, day(d), day(d), priority))
                .unwrap(),
        );
    }
    let done = completed(
        &runner(LinkRule::default())
            .run_due(&sink, &rt, &mut Alone, |_| {})
            .unwrap(),
    );
    let order: Vec<Uuid> = done.iter().map(|j| j.id).collect();
    assert_eq!(order, vec![queued[2], queued[1], queued[0]]);
    let priorities: Vec<&str> = done.iter().map(|j| j.priority.as_str()).collect();
    assert_eq!(priorities, ["high", "normal", "low"]);
    let mut jobs = rt.block_on(sink.jobs()).unwrap();
    assert!(jobs.iter().all(|j| j.status == "completed"), "{jobs:?}");
    jobs.sort_by_key(|j| j.completed_at);
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), order);
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn a_running_job_gives_way_to_a_higher_priority_between_slices() {
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = rt.block_on(db.sink()).unwrap();
    let day = |d: u32| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
    let low = rt
        .block_on(sink.enqueue_job(JobKind::Recluster, day(1), day(3), Priority::Low))
        .unwrap();
    let mut runner = runner(LinkRule::default());
    match runner.step(&sink, &rt, &mut Alone).unwrap() {
        Stepped::Progressed(job) => assert_eq!(job.id, low),
        other => panic!("expected a first slice of the low job: {other:?}"),
    }
    let high = rt
        .block_on(sink.enqueue_job(JobKind::Recluster, day(5), day(5), Priority::High))
        .unwrap();
    let done = completed(&runner.run_due(&sink, &rt, &mut Alone, |_| {}).unwrap());
    let order: Vec<Uuid> = done.iter().map(|j| j.id).collect();
    assert_eq!(
        order,
        vec![high, low],
        "the high job overtakes the running low one"
    );
    // The low job continued at its cursor: three days, each done once.
    let offsets = rt.block_on(sink.load_offsets()).unwrap();
    assert_eq!(offsets[&format!("job:{low}")], 3);
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn a_job_resumed_after_a_crash_counts_every_killmail_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 35, 2);

    // Uninterrupted: backfill with the default rule, re-cluster with the narrow one.
    let whole = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &whole, &file, LinkRule::default());
    let whole_client = rt.block_on(whole.connect()).unwrap();
    let (start, end) = stored_days(&rt, &whole_client);
    assert!(end > start, "{start}..{end}");
    let whole_job = recluster(
        &rt,
        &rt.block_on(whole.sink()).unwrap(),
        narrow_rule(),
        start,
        end,
    );
    let expected = rt.block_on(dump(&whole, Status::Compared));

    let db = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &db, &file, LinkRule::default());
    let sink = rt.block_on(db.sink()).unwrap();
    let client = rt.block_on(db.connect()).unwrap();
    let killmails = count(&rt, &client, "SELECT count(*) FROM killmails");
    let id = rt
        .block_on(sink.enqueue_job(JobKind::Recluster, start, end, Priority::Normal))
        .unwrap();
    let mut first = runner(narrow_rule());
    let mut steps = 0;
    let progressed = loop {
        steps += 1;
        assert!(steps < 10, "no progress");
        match first.step(&sink, &rt, &mut Alone).unwrap() {
            Stepped::Idle => continue,
            Stepped::Progressed(job) => break job,
            other => panic!("before the first day was applied: {other:?}"),
        }
    };
    assert_eq!(progressed.id, id);
    assert!(progressed.killmails_processed > 0);
    assert!(progressed.killmails_processed < killmails);
    drop(first);
    // As a dead process leaves it.
    rt.block_on(client.execute(
        "UPDATE clustering_jobs SET status = 'running' WHERE id = $1",
        &[&id],
    ))
    .unwrap();
    assert_eq!(rt.block_on(sink.resume_abandoned_jobs()).unwrap(), 1);
    assert_eq!(
        rt.block_on(sink.job(id)).unwrap().unwrap().status,
        "pending"
    );

    let done = completed(
        &runner(narrow_rule())
            .run_due(&sink, &rt, &mut Alone, |_| {})
            .unwrap(),
    );
    assert_eq!(done.len(), 1);
    let job = &done[0];
    assert_eq!(job.id, id);
    assert_eq!(job.status, "completed");
    assert_eq!(job.killmails_processed, killmails);
    assert_eq!(
        (
            job.battles_created,
            job.battles_updated,
            job.battles_deleted
        ),
        (
            whole_job.battles_created,
            whole_job.battles_updated,
            whole_job.battles_deleted
        ),
        "resumed {job:?}, uninterrupted {whole_job:?}"
    );
    assert_same_tables(
        &expected,
        &rt.block_on(dump(&db, Status::Compared)),
        "resumed after a crash",
    );
    rt.block_on(db.drop_database()).unwrap();
    rt.block_on(whole.drop_database()).unwrap();
}

#[test]
fn a_malformed_job_fails_for_good_and_the_queue_goes_on() {
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = rt.block_on(db.sink()).unwrap();
    let client = rt.block_on(db.connect()).unwrap();
    let bad: Uuid = rt
        .block_on(client.query_one(
            "INSERT INTO clustering_jobs (job_type, start_date, end_date, status, priority)
             VALUES ($1, '2025-01-03', '2025-01-01', 'pending', 'normal') RETURNING id",
            &[&JobKind::Recluster.as_str()],
        ))
        .unwrap()
        .get(0);
    let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let good = rt
        .block_on(sink.enqueue_job(JobKind::Recluster, day, day, Priority::Normal))
        .unwrap();

    let done = runner(LinkRule::default())
        .run_due(&sink, &rt, &mut Alone, |_| {})
        .unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    let Stepped::Failed { job, error } = &done[0] else {
        panic!("the malformed job did not fail: {done:?}");
    };
    assert_eq!(job.id, bad);
    assert!(
        error.contains("2025-01-01") && error.contains("2025-01-03"),
        "{error}"
    );
    assert!(matches!(&done[1], Stepped::Completed(j) if j.id == good));

    let bad_job = rt.block_on(sink.job(bad)).unwrap().unwrap();
    assert_eq!(bad_job.status, "failed");
    let message = bad_job.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("2025-01-01") && message.contains("2025-01-03"),
        "{message}"
    );
    assert_eq!(bad_job.retry_count, JobQueue::default().max_attempts);
    // Not retried, even once its backoff has passed.
    let now = JobQueue {
        backoff: Duration::ZERO,
        ..JobQueue::default()
    };
    assert_eq!(rt.block_on(sink.claim_next_job(now)).unwrap(), None);
    let again = runner(LinkRule::default())
        .run_due(&sink, &rt, &mut Alone, |_| {})
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        rt.block_on(sink.job(good)).unwrap().unwrap().status,
        "completed"
    );
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn retention_soft_deletes_what_ended_before_the_cutoff_and_purge_removes_it() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 37, 2);
    let db = rt.block_on(TestDatabase::create()).unwrap();
    run_backfill(&rt, &db, &file, LinkRule::default());
    let sink = rt.block_on(db.sink()).unwrap();
    let client = rt.block_on(db.connect()).unwrap();
    let (start, end) = stored_days(&rt, &client);
    assert!(end > start);
    let cutoff = start + chrono::Duration::days(1);
    let at = midnight(cutoff);

    let all = ids(&rt, &client, "SELECT id FROM battles");
    let expected: BTreeSet<Uuid> = rt
        .block_on(client.query(
            "SELECT id FROM battles WHERE deleted_at IS NULL AND ended_at < $1",
            &[&at],
        ))
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let kept: BTreeSet<Uuid> = all.difference(&expected).copied().collect();
    assert!(expected.len() > 20 && kept.len() > 20, "{expected:?}");
    let expected_ids: Vec<Uuid> = expected.iter().copied().collect();
    let their_killmails: i64 = rt
        .block_on(client.query_one(
            "SELECT count(*) FROM battle_killmails WHERE battle_id = ANY($1)",
            &[&expected_ids],
        ))
        .unwrap()
        .get(0);
    let killmails_before = count(&rt, &client, "SELECT count(*) FROM killmails");
    let mark = max_outbox_id(&rt, &client);

    let id = rt
        .block_on(sink.enqueue_job(JobKind::Retention, cutoff, cutoff, Priority::Normal))
        .unwrap();
    let done = completed(
        &runner(LinkRule::default())
            .run_due(&sink, &rt, &mut Alone, |_| {})
            .unwrap(),
    );
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, id);
    assert_eq!(done[0].battles_deleted, expected.len() as i64);

    let deleted = ids(
        &rt,
        &client,
        "SELECT id FROM battles WHERE deleted_at IS NOT NULL",
    );
    assert_eq!(deleted, expected);
    assert_eq!(
        ids(
            &rt,
            &client,
            "SELECT id FROM battles WHERE deletion_reason = 'retention'"
        ),
        expected
    );
    let events: Vec<(Uuid, String)> = rt
        .block_on(client.query(
            "SELECT battle_id, event_type FROM battle_events_outbox WHERE id > $1",
            &[&mark],
        ))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        events.iter().all(|(_, t)| t == "battle.deleted"),
        "{events:?}"
    );
    let evented: BTreeSet<Uuid> = events.iter().map(|(b, _)| *b).collect();
    assert_eq!(events.len(), expected.len());
    assert_eq!(evented, expected);

    // The API hides them.
    let addr = rt.block_on(async {
        let pool = battles_api::pool(
            db.config().clone(),
            2,
            ApiSettings::default().statement_timeout,
        )
        .unwrap();
        let state = ApiState::new(pool, ApiSettings::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(battles_api::serve(listener, state, std::future::pending()));
        addr
    });
    let mut listed = BTreeSet::new();
    let mut offset = 0;
    loop {
        let path = format!("/api/battles?limit=100&offset={offset}");
        let (status, page) = get(addr, &path);
        assert_eq!(status, 200, "GET {path}: {page}");
        assert_eq!(page["pagination"]["total"], kept.len() as i64, "{path}");
        let battles = page["battles"].as_array().unwrap();
        if battles.is_empty() {
            break;
        }
        for b in battles {
            listed.insert(Uuid::parse_str(b["id"].as_str().unwrap()).unwrap());
        }
        offset += 100;
    }
    assert_eq!(listed, kept);
    let gone = expected.iter().next().unwrap();
    let (status, body) = get(addr, &format!("/api/battles/{gone}"));
    assert_eq!(status, 404, "{body}");
    let live = kept.iter().next().unwrap();
    let (status, body) = get(addr, &format!("/api/battles/{live}"));
    assert_eq!(status, 200, "{body}");

    // The purge removes them and their killmails, and nothing else.
    let purged = rt
        .block_on(sink.purge_deleted_battles(Utc::now() + chrono::Duration::seconds(1), 10_000))
        .unwrap();
    assert_eq!(purged.battles, expected.len() as u64);
    assert_eq!(purged.killmails, their_killmails as u64);
    assert_eq!(ids(&rt, &client, "SELECT id FROM battles"), kept);
    assert_eq!(
        count(&rt, &client, "SELECT count(*) FROM killmails"),
        killmails_before - their_killmails
    );
    assert_eq!(
        count(
            &rt,
            &client,
            "SELECT count(*) FROM killmails k WHERE NOT EXISTS
               (SELECT 1 FROM battle_killmails bk WHERE bk.killmail_id = k.killmail_id)"
        ),
        0
    );
    let (status, _) = get(addr, &format!("/api/battles/{live}"));
    assert_eq!(status, 200);
    rt.block_on(db.drop_database()).unwrap();
}
