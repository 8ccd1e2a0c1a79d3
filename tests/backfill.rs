//! Backfill into the real PostgreSQL: the tables hold exactly the battles the engine computes;
//! halves, reverse order and repeats give identical tables; `kill -9` at any moment followed by a
//! re-run gives the tables of an uninterrupted run; the real days load with zero rejects.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use battles::backfill::progress::Progress;
use battles::backfill::{backfill, BackfillOptions, BackfillSummary, BulkMode};
use battles_dataflow::{reference, EngineConfig};
use battles_sink::{BattleStatus, TestDatabase};
use common::{assert_same_tables, generated, parse_all, read_lines, runtime, write_lines, Status};

fn run(
    rt: &tokio::runtime::Runtime,
    db: &TestDatabase,
    paths: &[PathBuf],
    chunk: usize,
) -> BackfillSummary {
    run_batched(rt, db, paths, chunk, usize::MAX)
}

fn run_batched(
    rt: &tokio::runtime::Runtime,
    db: &TestDatabase,
    paths: &[PathBuf],
    chunk: usize,
    read_batch: usize,
) -> BackfillSummary {
    run_with(rt, db, paths, chunk, read_batch, BulkMode::Auto)
}

fn run_with(
    rt: &tokio::runtime::Runtime,
    db: &TestDatabase,
    paths: &[PathBuf],
    chunk: usize,
    read_batch: usize,
    bulk: BulkMode,
) -> BackfillSummary {
    let options = BackfillOptions {
        chunk,
        read_batch,
        bulk,
        engine: EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        ..BackfillOptions::new(paths.to_vec())
    };
    run_options(rt, db, &options)
}

fn run_options(
    rt: &tokio::runtime::Runtime,
    db: &TestDatabase,
    options: &BackfillOptions,
) -> BackfillSummary {
    let sink = Arc::new(rt.block_on(db.sink()).unwrap());
    backfill(sink, rt, options, &Progress::hidden()).unwrap()
}

/// Every row of the battle tables, as JSON text without the columns that legitimately differ
/// between runs (row timestamps and random row ids), sorted.
#[test]
fn backfill_stores_exactly_the_battles_the_engine_computes() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 11, 1);
    let lines = read_lines(&file);
    let killmails = parse_all(&lines);
    let db = rt.block_on(TestDatabase::create()).unwrap();

    let summary = run(&rt, &db, std::slice::from_ref(&file), 400);
    assert_eq!(summary.rejected(), 0);
    assert_eq!(summary.killmails_written, killmails.len() as u64);
    assert!(
        summary.evicted_battles > 0,
        "a day in chunks of 400 evicts closed battles"
    );

    let expected = reference::battles(&killmails, &EngineConfig::default());
    let sink = rt.block_on(db.sink()).unwrap();
    let stored = rt.block_on(sink.load_reports()).unwrap();
    assert_eq!(stored.len(), expected.len());
    for report in &expected {
        let (got, status) = &stored[&report.battle_id];
        assert_eq!(*status, BattleStatus::Historical);
        assert_eq!(got, report, "battle {}", report.battle_id);
    }
    let offsets = rt.block_on(sink.load_offsets()).unwrap();
    let key = format!("file:{}", std::path::absolute(&file).unwrap().display());
    assert_eq!(offsets.get(&key), Some(&(lines.len() as i64)));
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn halves_reverse_order_and_repeats_give_identical_tables() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 12, 1);
    let lines = read_lines(&file);
    let mid = lines.len() / 2;
    let first = write_lines(&dir.path().join("first.jsonl"), &lines[..mid]);
    let second = write_lines(&dir.path().join("second.jsonl"), &lines[mid..]);
    let mut reversed_lines = lines.clone();
    reversed_lines.reverse();
    let reversed = write_lines(&dir.path().join("reversed.jsonl"), &reversed_lines);

    let whole = rt.block_on(TestDatabase::create()).unwrap();
    run(&rt, &whole, std::slice::from_ref(&file), 500);
    let expected = rt.block_on(common::dump(&whole, Status::Compared));
    assert!(expected["battles"].len() > 100);

    // The second half first, then the first half: the first half lands before and among
    // stored battles, which must be taken back in and merged.
    let halves = rt.block_on(TestDatabase::create()).unwrap();
    run(&rt, &halves, std::slice::from_ref(&second), 300);
    let s = run(&rt, &halves, std::slice::from_ref(&first), 300);
    assert!(
        s.rehydrated > 0,
        "the second run merged with stored battles"
    );
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&halves, Status::Compared)),
        "halves",
    );

    // Reverse order, twice: the second run changes nothing.
    let twice = rt.block_on(TestDatabase::create()).unwrap();
    run(&rt, &twice, std::slice::from_ref(&reversed), 700);
    let again = run(&rt, &twice, std::slice::from_ref(&reversed), 700);
    assert_eq!(again.killmails_written, 0);
    assert_eq!(again.already_stored, lines.len() as u64);
    assert_eq!(again.battles_created + again.battles_updated, 0);
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&twice, Status::Compared)),
        "reverse, twice",
    );

    // Reverse order in read batches of 300: each batch is sorted and swept on its own, and
    // merges with what the earlier (later in time) batches stored.
    let batched = rt.block_on(TestDatabase::create()).unwrap();
    let s = run_batched(&rt, &batched, std::slice::from_ref(&reversed), 200, 300);
    assert!(s.rehydrated > 0, "later batches merged with earlier ones");
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&batched, Status::Compared)),
        "read batches",
    );

    for db in [whole, halves, twice, batched] {
        rt.block_on(db.drop_database()).unwrap();
    }
}

#[test]
fn read_batches_merge_exactly_when_small_components_are_not_battles() {
    // With `min_linked_killmails`, the killmails of components too small to be battles are
    // stored in no battle, so they are not read back whole with one: a later read batch must
    // still read back enough around its killmails to give the sequential reference's battles.
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 15, 1);
    let lines = read_lines(&file);
    let killmails = parse_all(&lines);
    let mut reversed_lines = lines.clone();
    reversed_lines.reverse();
    let reversed = write_lines(&dir.path().join("reversed.jsonl"), &reversed_lines);
    let engine = EngineConfig {
        workers: 2,
        min_linked_killmails: 4,
        ..EngineConfig::default()
    };
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let s = run_options(
        &rt,
        &db,
        &BackfillOptions {
            chunk: 200,
            read_batch: 300,
            engine: engine.clone(),
            ..BackfillOptions::new(vec![reversed])
        },
    );
    assert!(s.rehydrated > 0, "later batches merged with earlier ones");

    let expected = reference::battles(&killmails, &engine);
    assert!(
        expected.len() < killmails.len() / 2,
        "the threshold leaves small components out"
    );
    let sink = rt.block_on(db.sink()).unwrap();
    let stored = rt.block_on(sink.load_reports()).unwrap();
    assert_eq!(stored.len(), expected.len());
    for report in &expected {
        assert_eq!(
            &stored[&report.battle_id].0, report,
            "battle {}",
            report.battle_id
        );
    }
    drop(sink);
    rt.block_on(db.drop_database()).unwrap();
}

/// The schema as the catalog describes it (indexes, keys, foreign keys, triggers, columns).
fn fingerprint(rt: &tokio::runtime::Runtime, db: &TestDatabase) -> Vec<String> {
    rt.block_on(async {
        let client = db.connect().await.unwrap();
        battles_sink::schema_fingerprint(&client).await.unwrap()
    })
}

#[test]
fn bulk_loads_and_row_by_row_loads_give_identical_tables_and_the_migrated_schema() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 14, 2);
    let lines = read_lines(&file);
    let mid = lines.len() / 2;
    let first = write_lines(&dir.path().join("first.jsonl"), &lines[..mid]);
    let second = write_lines(&dir.path().join("second.jsonl"), &lines[mid..]);
    let fresh = rt.block_on(TestDatabase::create()).unwrap();
    let migrated = fingerprint(&rt, &fresh);

    let rows = rt.block_on(TestDatabase::create()).unwrap();
    let s = run_with(
        &rt,
        &rows,
        std::slice::from_ref(&file),
        400,
        usize::MAX,
        BulkMode::Never,
    );
    assert!(!s.bulk_loaded);
    let expected = rt.block_on(common::dump(&rows, Status::Compared));
    assert!(expected["battles"].len() > 100);

    // Into an empty database, `auto` bulk-loads.
    let bulk = rt.block_on(TestDatabase::create()).unwrap();
    let s = run_with(
        &rt,
        &bulk,
        std::slice::from_ref(&file),
        400,
        usize::MAX,
        BulkMode::Auto,
    );
    assert!(s.bulk_loaded, "an empty database is bulk-loaded");
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&bulk, Status::Compared)),
        "bulk",
    );
    assert_eq!(
        fingerprint(&rt, &bulk),
        migrated,
        "the schema after a bulk load"
    );

    // Incremental: the first half (bulk), then the second into the database holding it, once
    // row by row (`auto` on a non-empty database) and once forced in bulk; in read batches
    // that merge with what earlier batches wrote (the bulk load ends at the first update).
    for (name, mode) in [("auto", BulkMode::Auto), ("always", BulkMode::Always)] {
        let db = rt.block_on(TestDatabase::create()).unwrap();
        run_with(
            &rt,
            &db,
            std::slice::from_ref(&first),
            300,
            usize::MAX,
            BulkMode::Auto,
        );
        let s = run_with(&rt, &db, std::slice::from_ref(&second), 300, 500, mode);
        assert_eq!(s.bulk_loaded, mode == BulkMode::Always, "{name}");
        assert!(
            s.rehydrated > 0,
            "{name}: the second half merged with the first"
        );
        assert_same_tables(
            &expected,
            &rt.block_on(common::dump(&db, Status::Compared)),
            &format!("incremental, {name}"),
        );
        assert_eq!(fingerprint(&rt, &db), migrated, "incremental, {name}");
        rt.block_on(db.drop_database()).unwrap();
    }
    for db in [fresh, rows, bulk] {
        rt.block_on(db.drop_database()).unwrap();
    }
}

#[test]
fn kill_9_mid_backfill_then_rerun_gives_the_uninterrupted_tables() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 13, 2);
    let reference_db = rt.block_on(TestDatabase::create()).unwrap();
    run(&rt, &reference_db, std::slice::from_ref(&file), 100);
    let expected = rt.block_on(common::dump(&reference_db, Status::Compared));

    let backfill_cmd = |db: &TestDatabase| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_battles"));
        c.args(["backfill", "--quiet", "--chunk", "100", "--workers", "2"])
            .arg(&file)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let stored_count = |db: &TestDatabase| -> i64 {
        rt.block_on(async {
            let c = db.connect().await.unwrap();
            c.query_one("SELECT count(*) FROM killmails", &[])
                .await
                .unwrap()
                .get(0)
        })
    };
    let total = expected["killmails"].len() as i64;
    // Each round kills the process once the store has passed another fifth of the input, a
    // few milliseconds after the commit that got it there (sometimes mid-transaction): the
    // kills land mid-run whatever the machine's speed. Returns the kills and whether one left
    // a partial store.
    let kill_rounds = |db: &TestDatabase| -> (u32, bool) {
        let mut killed = 0;
        let mut partial_seen = false;
        for round in 1..=4i64 {
            let target = total * round / 5;
            let mut child = backfill_cmd(db).spawn().unwrap();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if stored_count(db) >= target {
                    std::thread::sleep(Duration::from_millis(7 * round as u64));
                    // SIGKILL: no chance to clean up.
                    if child.kill().is_ok() {
                        killed += 1;
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(3));
            }
            child.wait().unwrap();
            let stored = stored_count(db);
            if stored > 0 && stored < total {
                partial_seen = true;
            }
        }
        (killed, partial_seen)
    };
    // On a busy machine every kill of an attempt can come after its run finished (CI saw it
    // once): then a fresh database gets another attempt, up to three.
    let mut attempt = 0;
    let (db, killed, partial_seen) = loop {
        attempt += 1;
        let db = rt.block_on(TestDatabase::create()).unwrap();
        let (killed, partial_seen) = kill_rounds(&db);
        if partial_seen || attempt == 3 {
            break (db, killed, partial_seen);
        }
        rt.block_on(db.drop_database()).unwrap();
    };
    let status = backfill_cmd(&db).status().unwrap();
    assert!(status.success());
    assert!(killed > 0, "no run was killed: the delays are too long");
    assert!(
        partial_seen,
        "no kill landed mid-run; the test did not exercise a partial state"
    );
    assert_same_tables(
        &expected,
        &rt.block_on(common::dump(&db, Status::Compared)),
        "after kill -9",
    );
    // The first run bulk-loaded an empty database and died without its indexes: the next
    // start repaired them.
    assert_eq!(
        fingerprint(&rt, &db),
        fingerprint(&rt, &reference_db),
        "the schema after kill -9 of bulk loads"
    );
    rt.block_on(db.drop_database()).unwrap();
    rt.block_on(reference_db.drop_database()).unwrap();
}

#[test]
fn an_engine_over_two_processes_gives_the_same_tables() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 14, 1);
    let single = rt.block_on(TestDatabase::create()).unwrap();
    run(&rt, &single, std::slice::from_ref(&file), 400);

    let cluster = format!(
        "127.0.0.1:{},127.0.0.1:{}",
        common::free_port(),
        common::free_port()
    );
    let mut peer = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args([
            "engine-peer",
            "--cluster",
            &cluster,
            "--process",
            "1",
            "--workers",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let multi = rt.block_on(TestDatabase::create()).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["backfill", "--quiet", "--chunk", "400", "--workers", "2"])
        .args(["--cluster", &cluster])
        .arg(&file)
        .env("DATABASE_URL", &multi.url)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        peer.wait().unwrap().success(),
        "the peer exits with the driver"
    );
    assert_same_tables(
        &rt.block_on(common::dump(&single, Status::Compared)),
        &rt.block_on(common::dump(&multi, Status::Compared)),
        "two processes",
    );
    for db in [single, multi] {
        rt.block_on(db.drop_database()).unwrap();
    }
}

#[test]
fn real_days_load_with_zero_rejects_and_jorund_is_one_battle() {
    let days = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/killmails");
    assert!(
        days.is_dir(),
        "{} is missing: the real-data tests need ../shared/data beside the project",
        days.display()
    );
    let files: Vec<PathBuf> = (27..=30)
        .map(|d| days.join(format!("esi-2021-11-{d}.jsonl.gz")))
        .collect();
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let summary = run(&rt, &db, &files, 20_000);
    assert_eq!(summary.records, 57_461);
    assert_eq!(summary.rejected(), 0, "{:?}", summary.rejects_by_reason);
    assert_eq!(summary.killmails_written, 57_461);
    let (battles, jorund_battles, jorund_kills): (i64, i64, i64) = rt.block_on(async {
        let c = db.connect().await.unwrap();
        let battles: i64 = c
            .query_one("SELECT count(*) FROM battles", &[])
            .await
            .unwrap()
            .get(0);
        // Jorund killmails of the fight's hours with a player attacker (NPC kills of the
        // same hours are not part of the fight), read back from the killmail store, and the
        // battles holding them.
        let fight =
            "2021-11-28T10:30:00Z".parse().unwrap().."2021-11-28T14:10:01Z".parse().unwrap();
        let sink = db.sink().await.unwrap();
        let jorund: Vec<i64> = sink
            .load_killmails(Some(fight))
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.solar_system_id == 30001046 && k.player_attackers().next().is_some())
            .map(|k| k.killmail_id)
            .collect();
        let row = c
            .query_one(
                "SELECT count(DISTINCT battle_id), count(*) FROM battle_killmails
                 WHERE killmail_id = ANY($1)",
                &[&jorund],
            )
            .await
            .unwrap();
        (battles, row.get(0), row.get(1))
    });
    assert!(battles > 10_000, "{battles} battles");
    assert!(jorund_kills > 900, "{jorund_kills} Jorund killmails");
    assert_eq!(jorund_battles, 1, "the Jorund fight is split");
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn bad_records_are_stored_with_reason_and_position_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 15, 1);
    let mut lines = read_lines(&file);
    let good = lines.len();
    lines.insert(3, "{not json".to_owned());
    lines.insert(10, r#"{"killmail_id": 5}"#.to_owned());
    lines.push("[1, 2, 3]".to_owned());
    let mixed = write_lines(&dir.path().join("mixed.jsonl"), &lines);
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let first = run(&rt, &db, std::slice::from_ref(&mixed), 500);
    assert_eq!(first.rejected(), 3, "{:?}", first.rejects_by_reason);
    assert_eq!(first.killmails_written, good as u64, "nothing good is lost");
    let again = run(&rt, &db, std::slice::from_ref(&mixed), 500);
    assert_eq!(again.rejected(), 3, "a re-run sees the same bad records");
    let rows: Vec<(String, i64, String)> = rt.block_on(async {
        let c = db.connect().await.unwrap();
        c.query(
            "SELECT reason_code, source_line, raw_payload FROM rejected_killmails
             ORDER BY source_line",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    });
    assert_eq!(rows.len(), 3, "stored once, not once per run: {rows:?}");
    assert_eq!(rows[0].1, 4);
    assert_eq!(rows[0].2, "{not json");
    assert_eq!(rows[1].1, 11);
    assert_eq!(rows[2].1, lines.len() as i64);
    assert!(rows.iter().all(|(code, _, _)| !code.is_empty()));
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn backfill_sample_prints_the_largest_battles_with_their_sides() {
    let rt = runtime();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["backfill", "--sample", "--quiet"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("17047 new killmail(s)"), "{text}");
    assert!(text.contains("largest battles:"), "{text}");
    let first = text
        .lines()
        .find(|l| l.starts_with("1. "))
        .expect("a first battle");
    assert!(first.contains("Jorund"), "{first}");
    assert!(
        text.contains("team A:") && text.contains("team B:"),
        "{text}"
    );
    // A second run finds everything stored.
    let again = Command::new(env!("CARGO_BIN_EXE_battles"))
        .args(["backfill", "--sample", "--quiet"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("0 new killmail(s)"), "{text}");
    assert!(text.contains("17047 already stored"), "{text}");
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn a_second_writer_is_refused_with_a_clear_message() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 16, 1);
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = rt.block_on(db.sink()).unwrap();
    let held = rt.block_on(sink.lock_writer()).unwrap();
    let options = BackfillOptions::new(vec![file.clone()]);
    let err = backfill(Arc::new(sink), &rt, &options, &Progress::hidden()).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("another process is writing battles") && message.contains("pid"),
        "{message}"
    );
    drop(held);
    let s = run(&rt, &db, std::slice::from_ref(&file), 1_000);
    assert!(
        s.killmails_written > 0,
        "the lock is free once its holder is gone"
    );
    rt.block_on(db.drop_database()).unwrap();
}
