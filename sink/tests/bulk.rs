//! Bulk-load mode against a real PostgreSQL (`TestDatabase`): the catalog after a bulk load
//! (finished, interrupted and repaired, or failed on a duplicate and repaired) equals that of a
//! freshly migrated database, `battle_counts` stays exact, a running bulk load is not "repaired"
//! under its writer, and the lock of another database does not authorize one. The ignored
//! `bulk_load_copy_timings` measures COPY with and without bulk mode.

use std::time::{Duration, Instant};

use battles_sink::tokio_postgres::Client;
use battles_sink::{
    migrate, repair_interrupted_bulk_load, schema_fingerprint, DroppedKind, RepairOutcome,
    SinkError, TestDatabase,
};
use bytes::Bytes;
use futures_util::{pin_mut, SinkExt, TryStreamExt};

/// Battles `from..=to` with 5 participants, 3 killmails, statistics, some third parties and
/// aliases each; every third status, every seventh battle soft-deleted.
async fn fill(client: &Client, from: i64, to: i64) {
    client
        .batch_execute(&format!(
            "INSERT INTO battles (id, started_at, ended_at, primary_system_id, primary_system_name,
                                  primary_region_id, primary_region_name, status, deleted_at)
             SELECT md5('b' || g)::uuid, t, t + interval '10 min', 30000000 + g % 50, 'S',
                    10000000 + g % 5, 'R', (ARRAY['open', 'closed', 'historical'])[1 + g % 3],
                    CASE WHEN g % 7 = 0 THEN now() END
             FROM generate_series({from}, {to}) g,
                  LATERAL (SELECT timestamptz '2025-01-01' + g * interval '1 hour' AS t) x;
             INSERT INTO battle_participants (battle_id, character_id, character_name, team,
                                              first_seen_at, last_seen_at)
             SELECT md5('b' || g)::uuid, 90000000 + g * 10 + c, 'pilot',
                    CASE WHEN c % 2 = 0 THEN 'team_a' ELSE 'team_b' END, now(), now()
             FROM generate_series({from}, {to}) g, generate_series(1, 5) c;
             INSERT INTO killmails (killmail_id, killmail_time, solar_system_id, region_id, record)
             SELECT g * 10 + k, now(), 30000000, 10000000, '\\x7b7d'::bytea
             FROM generate_series({from}, {to}) g, generate_series(1, 3) k;
             INSERT INTO battle_killmails (battle_id, killmail_id, killmail_time, system_id, victim_team)
             SELECT md5('b' || g)::uuid, g * 10 + k, now(), 30000000, 'team_a'
             FROM generate_series({from}, {to}) g, generate_series(1, 3) k;
             INSERT INTO battle_statistics (battle_id)
             SELECT md5('b' || g)::uuid FROM generate_series({from}, {to}) g;
             INSERT INTO battle_third_parties (battle_id, character_id)
             SELECT md5('b' || g)::uuid, 90000000 + g * 10 + 1
             FROM generate_series({from}, {to}) g WHERE g % 4 = 0;
             INSERT INTO battle_aliases (ended_battle_id, battle_id)
             SELECT md5('a' || g)::uuid, md5('b' || g)::uuid
             FROM generate_series({from}, {to}) g WHERE g % 10 = 0;"
        ))
        .await
        .unwrap();
}

/// Waits until no session holds a writer lock (an advisory lock) in `client`'s database: a
/// dropped client closes its session asynchronously, as a killed process's does.
async fn wait_for_writer_gone(client: &Client) {
    for _ in 0..100 {
        let held: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if !held {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the writer lock was not released");
}

async fn marker_rows(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM bulk_load_dropped_objects", &[])
        .await
        .unwrap()
        .get(0)
}

/// `battle_counts` (non-zero rows) and the count it keeps, by status.
async fn battle_counts(client: &Client) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let kept = client
        .query(
            "SELECT status, sum(battles)::BIGINT FROM battle_counts GROUP BY status
             HAVING sum(battles) <> 0 ORDER BY status",
            &[],
        )
        .await
        .unwrap();
    let counted = client
        .query(
            "SELECT status, count(*) FROM battles WHERE deleted_at IS NULL
             GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .unwrap();
    let pairs = |rows: Vec<battles_sink::tokio_postgres::Row>| {
        rows.iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>()
    };
    (pairs(kept), pairs(counted))
}

#[tokio::test]
async fn finished_bulk_load_restores_the_schema_and_the_counts() {
    let db = TestDatabase::create().await.unwrap();
    let client = db.connect().await.unwrap();
    let migrated = schema_fingerprint(&client).await.unwrap();
    let sink = db.sink().await.unwrap();
    assert!(sink.bulk_tables_empty().await.unwrap());
    // Battles from before the load, so the counts have something to continue from.
    fill(&client, 1, 20).await;
    assert!(!sink.bulk_tables_empty().await.unwrap());

    let writer = sink.lock_writer().await.unwrap();
    let bulk = sink.begin_bulk_load(&writer).await.unwrap();
    let dropped = bulk.dropped().to_vec();
    for kind in [
        DroppedKind::Index,
        DroppedKind::PrimaryKey,
        DroppedKind::Unique,
        DroppedKind::ForeignKey,
    ] {
        assert!(dropped.iter().any(|o| o.kind == kind), "no {kind} dropped");
    }
    assert!(dropped
        .iter()
        .any(|o| o.table == "battle_aliases" && o.kind == DroppedKind::ForeignKey));
    assert_eq!(marker_rows(&client).await, dropped.len() as i64);
    let during = schema_fingerprint(&client).await.unwrap();
    assert_ne!(during, migrated);
    assert!(!during
        .iter()
        .any(|l| l.contains("idx_battles_visible_started")));
    // A second bulk load cannot begin over the first.
    assert!(matches!(
        sink.begin_bulk_load(&writer).await,
        Err(SinkError::BulkLoadPending { .. })
    ));

    fill(&client, 21, 400).await;
    let report = bulk.finish().await.unwrap();
    assert_eq!(report.objects.len(), dropped.len());
    assert!(report.objects.iter().all(|o| !o.already_present));
    assert!(report.connections >= 2);
    assert_eq!(marker_rows(&client).await, 0);
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);

    let (kept, counted) = battle_counts(&client).await;
    assert_eq!(kept, counted);
    assert_eq!(counted.iter().map(|(_, n)| n).sum::<i64>(), 400 - 400 / 7);
    // The rebuilt keys hold: a duplicate participant is refused again.
    let duplicate = client
        .execute(
            "INSERT INTO battle_participants (battle_id, character_id, character_name, team,
                                              first_seen_at, last_seen_at)
             SELECT battle_id, character_id, 'again', team, now(), now()
             FROM battle_participants LIMIT 1",
            &[],
        )
        .await;
    assert!(duplicate.is_err());
    drop(writer);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn interrupted_bulk_load_is_repaired_by_the_next_command() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let migrated = schema_fingerprint(&client).await.unwrap();
    {
        let sink = db.sink().await.unwrap();
        let writer = sink.lock_writer().await.unwrap();
        let bulk = sink.begin_bulk_load(&writer).await.unwrap();
        fill(&client, 1, 300).await;
        // The process dies: no finish, its connections (the writer lock's too) close.
        drop(bulk);
        drop(writer);
    }
    wait_for_writer_gone(&client).await;
    assert!(marker_rows(&client).await > 0);
    assert_ne!(schema_fingerprint(&client).await.unwrap(), migrated);

    // The next command starts: connecting a sink migrates, which repairs first.
    let sink = db.sink().await.unwrap();
    assert_eq!(marker_rows(&client).await, 0);
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    let (kept, counted) = battle_counts(&client).await;
    assert_eq!(kept, counted);
    assert!(matches!(
        repair_interrupted_bulk_load(&mut client).await.unwrap(),
        RepairOutcome::NothingToRepair
    ));
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn repair_skips_what_a_rebuild_restored_before_it_died() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let migrated = schema_fingerprint(&client).await.unwrap();
    let sink = db.sink().await.unwrap();
    let writer = sink.lock_writer().await.unwrap();
    let bulk = sink.begin_bulk_load(&writer).await.unwrap();
    let dropped = bulk.dropped().to_vec();
    fill(&client, 1, 200).await;
    drop(bulk);
    drop(writer);
    wait_for_writer_gone(&client).await;

    // A rebuild that got part of the way: one plain index built, the battles key's index built
    // but not attached, one foreign key added but not validated.
    let index = dropped
        .iter()
        .find(|o| o.kind == DroppedKind::Index)
        .unwrap();
    client
        .batch_execute(index.index_definition.as_deref().unwrap())
        .await
        .unwrap();
    let battles_key = dropped
        .iter()
        .find(|o| o.kind == DroppedKind::PrimaryKey && o.table == "battles")
        .unwrap();
    client
        .batch_execute(battles_key.index_definition.as_deref().unwrap())
        .await
        .unwrap();
    client
        .batch_execute(
            "ALTER TABLE battles ADD CONSTRAINT battles_pkey PRIMARY KEY USING INDEX battles_pkey;
             ALTER TABLE battle_statistics ADD CONSTRAINT battle_statistics_battle_id_fkey
               FOREIGN KEY (battle_id) REFERENCES battles(id) ON DELETE CASCADE NOT VALID",
        )
        .await
        .unwrap();

    let RepairOutcome::Repaired(report) = repair_interrupted_bulk_load(&mut client).await.unwrap()
    else {
        panic!("nothing repaired");
    };
    assert_eq!(report.objects.len(), dropped.len());
    let present: Vec<&str> = report
        .objects
        .iter()
        .filter(|o| o.already_present)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(present.len(), 2, "{present:?}");
    assert!(present.contains(&index.name.as_str()));
    assert!(present.contains(&"battles_pkey"));
    assert_eq!(marker_rows(&client).await, 0);
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    // Running it again finds nothing; so does the hook.
    assert!(matches!(
        repair_interrupted_bulk_load(&mut client).await.unwrap(),
        RepairOutcome::NothingToRepair
    ));
    migrate(&mut client).await.unwrap();
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_running_bulk_load_is_not_repaired_under_its_writer() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let migrated = schema_fingerprint(&client).await.unwrap();
    let sink = db.sink().await.unwrap();
    let writer = sink.lock_writer().await.unwrap();
    let bulk = sink.begin_bulk_load(&writer).await.unwrap();
    let pending = marker_rows(&client).await;

    // Another command starting meanwhile (migrating) leaves the load alone.
    migrate(&mut client).await.unwrap();
    assert_eq!(
        repair_interrupted_bulk_load(&mut client).await.unwrap(),
        RepairOutcome::WriterActive { pending }
    );
    assert_eq!(marker_rows(&client).await, pending);
    fill(&client, 1, 50).await;
    bulk.finish().await.unwrap();
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    drop(writer);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_let_in_fails_the_rebuild_and_keeps_the_marker() {
    let db = TestDatabase::create().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let migrated = schema_fingerprint(&client).await.unwrap();
    let sink = db.sink().await.unwrap();
    let writer = sink.lock_writer().await.unwrap();
    let bulk = sink.begin_bulk_load(&writer).await.unwrap();
    fill(&client, 1, 100).await;
    client
        .batch_execute(
            "INSERT INTO battle_participants (battle_id, character_id, character_name, team,
                                              first_seen_at, last_seen_at)
             VALUES (md5('b7')::uuid, 90000071, 'twice', 'team_a', now(), now())",
        )
        .await
        .unwrap();

    let error = bulk.finish().await.unwrap_err();
    let message = error.to_string();
    let SinkError::BulkRebuild { failures, pending } = &error else {
        panic!("not a rebuild failure: {error}");
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        message.contains("unique_battle_character") && message.contains("is duplicated"),
        "{message}"
    );
    // The other indexes were built; the key and every foreign key are still recorded.
    let recorded: Vec<String> = client
        .query(
            "SELECT object_name FROM bulk_load_dropped_objects ORDER BY object_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded.len() as i64, *pending);
    assert!(recorded.contains(&"unique_battle_character".to_owned()));
    assert!(recorded.contains(&"battle_participants_battle_id_fkey".to_owned()));
    assert!(!recorded.contains(&"idx_battles_visible_started".to_owned()));

    // The writer gives up (its process ends). While the duplicate is there, a repair fails
    // the same way and changes nothing.
    drop(writer);
    wait_for_writer_gone(&client).await;
    assert!(matches!(
        repair_interrupted_bulk_load(&mut client).await,
        Err(SinkError::BulkRebuild { .. })
    ));
    assert_eq!(marker_rows(&client).await, *pending);
    client
        .batch_execute("DELETE FROM battle_participants WHERE character_name = 'twice'")
        .await
        .unwrap();
    assert!(matches!(
        repair_interrupted_bulk_load(&mut client).await.unwrap(),
        RepairOutcome::Repaired(_)
    ));
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_writer_lock_of_another_database_does_not_allow_a_bulk_load() {
    let db = TestDatabase::create().await.unwrap();
    let other = TestDatabase::create().await.unwrap();
    let sink = db.sink().await.unwrap();
    let other_sink = other.sink().await.unwrap();
    let other_writer = other_sink.lock_writer().await.unwrap();
    assert!(matches!(
        sink.begin_bulk_load(&other_writer).await,
        Err(SinkError::BulkLoadWithoutWriterLock)
    ));
    let client = db.connect().await.unwrap();
    assert_eq!(marker_rows(&client).await, 0);
    drop(other_writer);
    db.drop_database().await.unwrap();
    other.drop_database().await.unwrap();
}

/// Binary COPY of the rows of `query` (a SELECT), as the server sends them.
async fn copy_out(client: &Client, query: &str) -> Vec<Bytes> {
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
        .await
        .unwrap();
    pin_mut!(stream);
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.try_next().await.unwrap() {
        chunks.push(chunk);
    }
    chunks
}

/// Sends `chunks` (binary COPY data) into `target` (`table (columns)`); the time it took.
async fn copy_in(client: &Client, target: &str, chunks: &[Bytes]) -> Duration {
    let started = Instant::now();
    let sink = client
        .copy_in(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
        .await
        .unwrap();
    pin_mut!(sink);
    for chunk in chunks {
        sink.send(chunk.clone()).await.unwrap();
    }
    sink.finish().await.unwrap();
    started.elapsed()
}

const BATTLE_COLUMNS: &str = "battles (id, started_at, ended_at, primary_system_id, \
     primary_system_name, primary_region_id, primary_region_name, status)";
const PARTICIPANT_COLUMNS: &str = "battle_participants (id, battle_id, character_id, \
     character_name, corporation_id, corporation_name, alliance_id, alliance_name, team, \
     ships_flown, kills, deaths, damage_done, damage_received, isk_destroyed, isk_lost, \
     first_seen_at, last_seen_at)";

/// 25,000 battles with 12 participants each (300,000 rows), copied into a database with all
/// its indexes and into one in bulk mode; prints the times and the rebuild of each object.
#[tokio::test]
#[ignore = "measurement: cargo test -p battles-sink --test bulk -- --ignored --nocapture"]
async fn bulk_load_copy_timings() {
    const BATTLES: i64 = 25_000;
    const PER_BATTLE: i64 = 12;
    let source = TestDatabase::create().await.unwrap();
    let source_client = source.connect().await.unwrap();
    let migrated = schema_fingerprint(&source_client).await.unwrap();
    let battles = copy_out(
        &source_client,
        &format!(
            "SELECT md5('b' || g)::uuid, timestamptz '2025-01-01' + g * interval '1 min',
                    timestamptz '2025-01-01' + g * interval '1 min' + interval '10 min',
                    (30000000 + g % 5000)::bigint, 'S' || g % 5000, (10000000 + g % 100)::bigint,
                    'R' || g % 100, 'closed'
             FROM generate_series(1, {BATTLES}) g"
        ),
    )
    .await;
    let participants = copy_out(
        &source_client,
        &format!(
            "SELECT gen_random_uuid(), md5('b' || g)::uuid, (90000000 + g * {PER_BATTLE} + c)::bigint,
                    'pilot ' || c, (98000000 + c % 1000)::bigint, 'corp',
                    (99000000 + (g + c) % 300)::bigint, 'alliance',
                    CASE WHEN c % 2 = 0 THEN 'team_a' ELSE 'team_b' END, '[587]'::jsonb,
                    c % 5, c % 2, (c * 10)::bigint, (c * 7)::bigint, (c * 1000)::bigint,
                    (c * 900)::bigint, now(), now()
             FROM generate_series(1, {BATTLES}) g, generate_series(1, {PER_BATTLE}) c"
        ),
    )
    .await;
    let rows = BATTLES * PER_BATTLE;

    let indexed = TestDatabase::create().await.unwrap();
    let client = indexed.connect().await.unwrap();
    copy_in(&client, BATTLE_COLUMNS, &battles).await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    let with_indexes = copy_in(&client, PARTICIPANT_COLUMNS, &participants).await;
    eprintln!(
        "COPY of {rows} participants with every index and key: {:.2} s",
        with_indexes.as_secs_f64()
    );
    drop(client);
    indexed.drop_database().await.unwrap();

    let bulk_db = TestDatabase::create().await.unwrap();
    let client = bulk_db.connect().await.unwrap();
    let sink = bulk_db.sink().await.unwrap();
    let writer = sink.lock_writer().await.unwrap();
    let began = Instant::now();
    let bulk = sink.begin_bulk_load(&writer).await.unwrap();
    let begin_took = began.elapsed();
    copy_in(&client, BATTLE_COLUMNS, &battles).await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    let in_bulk_mode = copy_in(&client, PARTICIPANT_COLUMNS, &participants).await;
    let report = bulk.finish().await.unwrap();
    eprintln!(
        "bulk mode: begin {:.3} s, COPY of {rows} participants {:.2} s, rebuild {:.2} s over {} \
         connections",
        begin_took.as_secs_f64(),
        in_bulk_mode.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        report.connections
    );
    for object in &report.objects {
        eprintln!(
            "  {:<22} {:<40} {:<18} {:>7.3} s",
            object.table,
            object.name,
            object.kind.to_string(),
            object.elapsed.as_secs_f64()
        );
    }
    assert_eq!(schema_fingerprint(&client).await.unwrap(), migrated);
    let copied: i64 = client
        .query_one("SELECT count(*) FROM battle_participants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(copied, rows);
    drop(writer);
    drop(sink);
    bulk_db.drop_database().await.unwrap();
    source.drop_database().await.unwrap();
}
