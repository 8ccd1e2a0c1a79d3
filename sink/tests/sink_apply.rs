//! `Sink::apply` against a real PostgreSQL: a battle created, updated (only the changed
//! participant row is rewritten), merged into another (alias written, ended battle gone with its
//! rows), everything retracted (tables empty); a failing statement leaves nothing of its step
//! visible; replays change nothing; the watermark closes quiet battles; bad input is refused.

mod common;

use std::collections::BTreeMap;

use battles_dataflow::changes::classify;
use battles_dataflow::BattleChange;
use battles_sink::tokio_postgres::Client;
use battles_sink::{
    BattleStatus, ReferenceChecks, RejectionRow, SinkError, SourcePosition, SplitStep, StatusRule,
    StepChanges, TestDatabase,
};
use chrono::Duration;
use common::*;
use uuid::Uuid;

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn participant_times(
    client: &Client,
    battle: Uuid,
) -> BTreeMap<i64, (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    client
        .query(
            "SELECT character_id, created_at, updated_at FROM battle_participants
             WHERE battle_id = $1",
            &[&battle],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn battle_a() -> Vec<Km> {
    vec![
        km(1, 0, 2001, &[1000, 1002], 10_000_000),
        km(2, 3, 1003, &[2002, 2001], 25_000_000),
    ]
}

fn battle_b() -> Vec<Km> {
    vec![
        km(10, 5, 3001, &[3000], 5_000_000),
        km(11, 8, 3002, &[3000, 3004], 7_000_000),
    ]
}

#[tokio::test]
async fn created_updated_merged_retracted() {
    let (db, sink) = fresh().await;
    let client = db.connect().await.unwrap();

    // Created.
    let mut step = create_step(&[battle_a(), battle_b()]);
    step.offsets = vec![("file:/data/day.jsonl.gz".into(), 4)];
    step.rejections = vec![RejectionRow {
        raw_payload: "{not json".into(),
        reason_code: "invalid_json".into(),
        reason_message: "expected value at line 1".into(),
        source: SourcePosition::File {
            path: "/data/day.jsonl.gz".into(),
            line: 3,
        },
        received_at: t0(),
    }];
    let stats = sink.apply(step).await.unwrap();
    assert_eq!(stats.battles_created, 2);
    assert_eq!(stats.battles_updated, 0);
    assert_eq!(stats.killmails_stored, 4);
    assert_eq!(stats.rejections_stored, 1);
    assert_eq!(stats.events_written, 2);
    assert_eq!(stats.attempts, 1);

    let a = report(&battle_a());
    let b = report(&battle_b());
    let stored = sink.load_reports().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[&a.battle_id],
        ((*a).clone(), BattleStatus::Historical)
    );
    assert_eq!(
        stored[&b.battle_id],
        ((*b).clone(), BattleStatus::Historical)
    );
    assert_eq!(
        sink.load_offsets().await.unwrap(),
        BTreeMap::from([("file:/data/day.jsonl.gz".to_string(), 4)])
    );
    let kms = sink.load_killmails(None).await.unwrap();
    assert_eq!(
        kms,
        [battle_a(), battle_b()]
            .concat()
            .iter()
            .map(killmail)
            .collect::<Vec<_>>()
    );
    let range = t0()..t0() + Duration::minutes(4);
    assert_eq!(sink.load_killmails(Some(range)).await.unwrap().len(), 2);
    let rejected = client
        .query_one(
            "SELECT reason_code, source_kind, source_file, source_line, source_position
             FROM rejected_killmails",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rejected.get::<_, String>(0), "invalid_json");
    assert_eq!(rejected.get::<_, String>(1), "file");
    assert_eq!(
        rejected.get::<_, Option<String>>(2).unwrap(),
        "/data/day.jsonl.gz"
    );
    assert_eq!(rejected.get::<_, Option<i64>>(3), Some(3));
    assert_eq!(rejected.get::<_, String>(4), "file:/data/day.jsonl.gz:3");
    // The spec's statistics shapes.
    let top: serde_json::Value = client
        .query_one(
            "SELECT top_killers FROM battle_statistics WHERE battle_id = $1",
            &[&a.battle_id],
        )
        .await
        .unwrap()
        .get(0);
    let first = &top[0];
    for key in ["characterId", "name", "kills", "iskDestroyed"] {
        assert!(first.get(key).is_some(), "{key} missing in {top}");
    }
    let event: serde_json::Value = client
        .query_one(
            "SELECT payload FROM battle_events_outbox WHERE battle_id = $1",
            &[&a.battle_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(event["eventType"], "battle.created");
    assert_eq!(event["source"], "battle-service");
    assert_eq!(event["data"]["battleId"], a.battle_id.to_string());
    assert_eq!(event["data"]["primarySystemId"], "30000142");
    assert_eq!(event["data"]["totalKillmails"], 2);
    assert_eq!(event["data"]["status"], "historical");

    // Updated: one participant's name changes and one becomes a third party; nothing else.
    let before = participant_times(&client, a.battle_id).await;
    let battle_before: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = {
        let r = client
            .query_one(
                "SELECT created_at, updated_at FROM battles WHERE id = $1",
                &[&a.battle_id],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    let mut a2 = a.clone();
    let renamed = std::sync::Arc::make_mut(&mut a2)
        .participants
        .iter_mut()
        .find(|p| p.character_id == 1002)
        .unwrap();
    renamed.character_name = "Renamed Pilot".into();
    renamed.third_party = true;
    let stats = sink
        .apply(StepChanges {
            battles: classify(vec![(a.clone(), -1), (a2.clone(), 1)]).unwrap(),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.participants_written, 1);
    assert_eq!(stats.battles_created, 0);
    assert_eq!(stats.battles_updated, 1);
    let after = participant_times(&client, a.battle_id).await;
    assert_eq!(before.len(), after.len());
    for (c, (created, updated)) in &after {
        assert_eq!(*created, before[c].0, "created_at of {c} moved");
        if *c == 1002 {
            assert!(
                *updated > before[c].1,
                "updated_at of the changed row did not move"
            );
        } else {
            assert_eq!(*updated, before[c].1, "updated_at of unchanged {c} moved");
        }
    }
    let r = client
        .query_one(
            "SELECT created_at, updated_at FROM battles WHERE id = $1",
            &[&a.battle_id],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get(0), r.get(1)),
        battle_before,
        "the unchanged battle row moved"
    );
    assert_eq!(sink.load_reports().await.unwrap()[&a.battle_id].0, *a2);

    // Merged: B's killmails join A; B ends and points at A.
    let merged_kms = [battle_a(), battle_b()].concat();
    let mut merged = report(&merged_kms);
    std::sync::Arc::make_mut(&mut merged)
        .participants
        .iter_mut()
        .find(|p| p.character_id == 1002)
        .unwrap()
        .character_name = "Renamed Pilot".into();
    assert_eq!(merged.battle_id, a.battle_id);
    let stats = sink
        .apply(StepChanges {
            battles: classify(vec![(a2.clone(), -1), (b.clone(), -1), (merged.clone(), 1)])
                .unwrap(),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.battles_ended, 1);
    assert_eq!(stats.battles_updated, 1);
    assert_eq!(stats.aliases_written, 1);
    let stored = sink.load_reports().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[&a.battle_id].0, *merged);
    assert_eq!(
        sink.load_aliases().await.unwrap(),
        BTreeMap::from([(b.battle_id, a.battle_id)])
    );
    for table in [
        "battle_participants",
        "battle_killmails",
        "battle_statistics",
    ] {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE battle_id = $1"),
                &[&b.battle_id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} still holds rows of the ended battle");
    }
    let deleted: serde_json::Value = client
        .query_one(
            "SELECT payload FROM battle_events_outbox WHERE event_type = 'battle.deleted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted["data"]["battleId"], b.battle_id.to_string());
    assert_eq!(
        deleted["data"]["continuingBattleId"],
        a.battle_id.to_string()
    );

    // Everything retracted: nothing left.
    let all_ids: Vec<i64> = merged_kms.iter().map(|k| k.id).collect();
    let stats = sink
        .apply(StepChanges {
            battles: classify(vec![(merged.clone(), -1)]).unwrap(),
            killmails_retracted: all_ids,
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.battles_ended, 1);
    assert_eq!(stats.killmails_removed, 4);
    for table in [
        "battles",
        "battle_participants",
        "battle_killmails",
        "battle_statistics",
        "battle_aliases",
        "battle_third_parties",
        "killmails",
    ] {
        assert_eq!(
            count(&client, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} not empty"
        );
    }
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_failing_statement_leaves_nothing_of_the_step() {
    let (db, sink) = fresh().await;
    let client = db.connect().await.unwrap();
    // The offsets statement runs after battles, participants and killmails: make it fail.
    client
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
             CREATE TRIGGER refuse_offsets BEFORE INSERT ON source_offsets
               FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    let mut step = create_step(&[battle_a(), battle_b()]);
    step.offsets = vec![("kafka:killmail.enriched:0".into(), 17)];
    let err = sink.apply(step.clone()).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("refused by test"), "{err}");
    for table in [
        "battles",
        "battle_participants",
        "battle_killmails",
        "battle_statistics",
        "killmails",
        "source_offsets",
        "battle_events_outbox",
    ] {
        assert_eq!(
            count(&client, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} holds rows of a failed step"
        );
    }
    // Once the cause is gone the same step goes through whole.
    client
        .batch_execute("DROP TRIGGER refuse_offsets ON source_offsets")
        .await
        .unwrap();
    sink.apply(step).await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM battles").await, 2);
    assert_eq!(
        sink.load_offsets().await.unwrap()["kafka:killmail.enriched:0"],
        17
    );
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn replaying_a_step_changes_nothing() {
    let (db, sink) = fresh().await;
    let client = db.connect().await.unwrap();
    let step = create_step(&[battle_a(), battle_b()]);
    sink.apply(step.clone()).await.unwrap();
    let stamps = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.get::<_, Uuid>(0),
                        r.get::<_, chrono::DateTime<chrono::Utc>>(1),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let battles = stamps("SELECT id, updated_at FROM battles ORDER BY id").await;
    let people = stamps("SELECT id, updated_at FROM battle_participants ORDER BY id").await;
    // A restart re-emits every battle as created and re-delivers the killmails.
    let stats = sink.apply(step).await.unwrap();
    assert_eq!(stats.battles_created, 0);
    assert_eq!(stats.battles_updated, 0);
    assert_eq!(stats.participants_written, 0);
    assert_eq!(stats.killmails_stored, 0);
    assert_eq!(stats.killmails_duplicate, 4);
    assert_eq!(stats.events_written, 0);
    assert_eq!(
        stamps("SELECT id, updated_at FROM battles ORDER BY id").await,
        battles
    );
    assert_eq!(
        stamps("SELECT id, updated_at FROM battle_participants ORDER BY id").await,
        people
    );
    // A battle re-created with fewer participants than stored loses the stale rows.
    let shrunk = vec![km(1, 0, 2001, &[1000], 10_000_000)];
    let stats = sink
        .apply(StepChanges {
            battles: classify(vec![(report(&shrunk), 1)]).unwrap(),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.battles_updated, 1);
    let id = battle_of(&shrunk[0]);
    assert_eq!(sink.load_reports().await.unwrap()[&id].0, *report(&shrunk));
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_watermark_opens_and_closes_battles() {
    let (db, sink) = fresh().await;
    let a = report(&battle_a());
    let rule = |minutes: i64| {
        StatusRule::watermark(t0() + Duration::minutes(minutes), Duration::minutes(30))
    };
    let mut step = create_step(&[battle_a()]);
    step.status = rule(10);
    sink.apply(step).await.unwrap();
    assert_eq!(
        sink.load_reports().await.unwrap()[&a.battle_id].1,
        BattleStatus::Open
    );
    // Time passes without killmails: the battle closes, and an event says so.
    let stats = sink
        .apply(StepChanges {
            status: rule(34),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.battles_closed, 1);
    assert_eq!(stats.events_written, 1);
    assert_eq!(
        sink.load_reports().await.unwrap()[&a.battle_id].1,
        BattleStatus::Closed
    );
    let client = db.connect().await.unwrap();
    let last: serde_json::Value = client
        .query_one(
            "SELECT payload FROM battle_events_outbox ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(last["eventType"], "battle.updated");
    assert_eq!(last["data"]["status"], "closed");
    // Closing again is a no-op.
    let stats = sink
        .apply(StepChanges {
            status: rule(40),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(stats.battles_closed, 0);
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn inconsistent_changes_are_refused_and_nul_is_stored() {
    let (db, sink) = fresh().await;
    let a = report(&battle_a());
    // The engine's typed changes come from consolidated diffs; anything else is refused there.
    assert!(classify(vec![(a.clone(), 2)]).is_err());
    assert!(classify(vec![(a.clone(), 1), (a.clone(), 1)]).is_err());
    // A report that lists a pilot twice cannot be written row by row.
    let mut twice = (*a).clone();
    twice.participants.push(twice.participants[0].clone());
    let err = sink
        .apply(StepChanges {
            battles: vec![BattleChange::Created(std::sync::Arc::new(twice))],
            ..StepChanges::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::InconsistentChanges(_)), "{err}");

    // NUL cannot be stored in PostgreSQL text; it becomes U+FFFD instead of failing the step.
    // Killmail records are bytes and keep it exactly.
    let mut kms = battle_a();
    kms[0].victim = 2001;
    let mut step = create_step(&[kms]);
    let BattleChange::Created(created) = &mut step.battles[0] else {
        unreachable!("create_step creates")
    };
    std::sync::Arc::make_mut(created).participants[0].character_name = "bad\0name".into();
    std::sync::Arc::make_mut(&mut step.killmails_inserted[0]).solar_system_name = "J\0ita".into();
    step.rejections = vec![RejectionRow {
        raw_payload: "\0\0".into(),
        reason_code: "invalid_json".into(),
        reason_message: "nul".into(),
        source: SourcePosition::Other("stdin:1".into()),
        received_at: t0(),
    }];
    let stats = sink.apply(step).await.unwrap();
    assert_eq!(stats.rejections_stored, 1);
    let stored = sink.load_reports().await.unwrap();
    assert_eq!(
        stored[&a.battle_id].0.participants[0].character_name,
        "bad\u{FFFD}name"
    );
    assert_eq!(
        sink.load_killmails(None).await.unwrap()[0].solar_system_name,
        "J\0ita"
    );
    drop(sink);
    db.drop_database().await.unwrap();
}

/// A merge made by the real engine: the battle it says continues the ended one is the alias
/// target and the `battle.deleted` event's `continuingBattleId`, and nothing else decides.
/// The second merge retracts the ended battle's first killmail, so the continuation comes from
/// the rule's second clause (the battle holding most of its killmails).
#[tokio::test]
async fn engine_merges_give_aliases_and_events_that_agree() {
    let (db, sink) = fresh().await;
    let client = db.connect().await.unwrap();
    let mut engine = battles_dataflow::Engine::start(Default::default()).unwrap();
    // Two fights in one system by different people, then a killmail that bridges them.
    let fight_a = [km(1, 0, 2001, &[1001], 10), km(2, 1, 2002, &[1001], 10)];
    let fight_b = [km(3, 2, 3001, &[4001], 10), km(4, 3, 3002, &[4001], 10)];
    let bridge = [km(5, 4, 4001, &[1001], 10)];
    let mut expected_aliases = BTreeMap::new();
    for step in [&fight_a[..], &fight_b[..], &bridge[..]] {
        let out = engine.insert(step.iter().map(killmail)).unwrap();
        for (ended, continued_by) in out.ended() {
            expected_aliases.insert(ended, continued_by.expect("a merge continues"));
        }
        sink.apply(StepChanges {
            battles: out.changes,
            killmails_inserted: step.iter().map(killmail).map(Into::into).collect(),
            ..StepChanges::default()
        })
        .await
        .unwrap();
    }
    let b = battle_of(&fight_b[0]);
    assert_eq!(
        expected_aliases,
        BTreeMap::from([(b, battle_of(&fight_a[0]))]),
        "B merged into A"
    );
    assert_eq!(sink.load_aliases().await.unwrap(), expected_aliases);
    let events = client
        .query(
            "SELECT payload FROM battle_events_outbox WHERE event_type = 'battle.deleted'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let data: serde_json::Value = events[0].get(0);
    assert_eq!(data["data"]["battleId"], b.to_string());
    assert_eq!(
        data["data"]["continuingBattleId"],
        battle_of(&fight_a[0]).to_string()
    );
    drop(client);
    drop(sink);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn one_killmail_battles_have_no_statistics_row_and_read_back_whole() {
    use battles_dataflow::summarize::summarize;
    use std::sync::Arc;
    let (db, sink) = fresh().await;
    let client = db.connect().await.unwrap();
    let first = killmail(&km(1, 0, 2001, &[1000, 1002], 10_000_000));
    let second = killmail(&km(2, 3, 1003, &[2002, 2001], 25_000_000));
    let one = Arc::new(summarize(&[&first]));
    let two = Arc::new(summarize(&[&first, &second]));
    assert_eq!(one.battle_id, two.battle_id);
    assert!(battles_sink::derived::statistics_are_derived(&one));
    let statistics_rows = "SELECT count(*) FROM battle_statistics";

    // Created with one killmail: no statistics row, and the report reads back whole.
    sink.apply(StepChanges {
        battles: vec![BattleChange::Created(one.clone())],
        killmails_inserted: vec![first.clone().into()],
        ..StepChanges::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&client, statistics_rows).await, 0);
    assert_eq!(sink.load_reports().await.unwrap()[&one.battle_id].0, *one);

    // Grown to two killmails: the row is written.
    sink.apply(StepChanges {
        battles: classify(vec![(one.clone(), -1), (two.clone(), 1)]).unwrap(),
        killmails_inserted: vec![second.clone().into()],
        ..StepChanges::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&client, statistics_rows).await, 1);
    assert_eq!(sink.load_reports().await.unwrap()[&two.battle_id].0, *two);

    // Back to one (the second retracted): the row goes, the report still reads back whole.
    sink.apply(StepChanges {
        battles: classify(vec![(two.clone(), -1), (one.clone(), 1)]).unwrap(),
        killmails_retracted: vec![second.killmail_id],
        ..StepChanges::default()
    })
    .await
    .unwrap();
    assert_eq!(count(&client, statistics_rows).await, 0);
    assert_eq!(sink.load_reports().await.unwrap()[&one.battle_id].0, *one);
    drop(client);
    db.drop_database().await.unwrap();
}

/// Every table a step writes, as text rows without the columns stamped at write time.
async fn contents(client: &Client) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for table in [
        "battles",
        "battle_participants",
        "battle_killmails",
        "battle_statistics",
        "battle_third_parties",
        "battle_aliases",
        "killmails",
        "source_offsets",
        "rejected_killmails",
    ] {
        let sql = format!(
            "SELECT (to_jsonb(t) - ARRAY['id', 'created_at', 'updated_at', 'received_at'])::text
             FROM {table} t ORDER BY 1"
        );
        let rows = client.query(&sql, &[]).await.unwrap();
        out.insert(table, rows.iter().map(|r| r.get(0)).collect());
    }
    // Counts are kept in shards (by transaction): their sums by status are what must agree.
    let counts = client
        .query(
            "SELECT status || ' ' || sum(battles) FROM battle_counts GROUP BY status
             HAVING sum(battles) <> 0 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    out.insert("battle_counts", counts.iter().map(|r| r.get(0)).collect());
    let events = client
        .query(
            "SELECT event_type || ' ' || battle_id FROM battle_events_outbox ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    out.insert(
        "battle_events_outbox",
        events.iter().map(|r| r.get(0)).collect(),
    );
    out
}

#[tokio::test]
async fn steps_promising_new_rows_copy_them_and_upsert_the_rest_with_the_same_tables() {
    let (db_copy, copying) = fresh().await;
    let (db_upsert, upserting) = fresh().await;
    let (db_checked, checked) = fresh().await;
    // The tests' role is a superuser: its copies skip the foreign-key checks, and a sink told
    // to check them all must write the same tables.
    assert_eq!(copying.reference_checks(), ReferenceChecks::SkipForCopies);
    let checked = checked.checking_every_reference();
    assert_eq!(checked.reference_checks(), ReferenceChecks::Always);
    let mut engine = battles_dataflow::Engine::start(Default::default()).unwrap();
    // A fight; a second one and a third by other people; then a killmail bridging the first two
    // (the second ends into the first, which grows) beside a new fourth fight: the last step
    // creates, updates and ends battles at once.
    let steps = [
        vec![km(1, 0, 2001, &[1001], 10), km(2, 1, 2002, &[1001], 10)],
        vec![
            km(3, 2, 3001, &[4001], 10),
            km(4, 3, 3002, &[4001], 10),
            km(6, 5, 5001, &[6001], 10),
            km(7, 6, 5002, &[6001], 10),
        ],
        vec![km(5, 4, 4001, &[1001], 10), km(8, 7, 7001, &[8001], 10)],
    ];
    let mut last = None;
    for (i, kms) in steps.iter().enumerate() {
        let out = engine.insert(kms.iter().map(killmail)).unwrap();
        let step = |rows_are_new| StepChanges {
            battles: out.changes.clone(),
            killmails_inserted: kms.iter().map(killmail).map(Into::into).collect(),
            offsets: vec![("kafka:killmail.enriched:0".into(), i as i64 + 1)],
            status: StatusRule::watermark(t0() + Duration::minutes(10), Duration::minutes(60)),
            rows_are_new,
            ..StepChanges::default()
        };
        let copied = copying.apply(step(true)).await.unwrap();
        let upserted = upserting.apply(step(false)).await.unwrap();
        assert_eq!(copied, upserted, "step {i}: the same work either way");
        assert_eq!(checked.apply(step(true)).await.unwrap(), copied);
        last = Some(step(true));
    }
    let (a, b) = (
        db_copy.connect().await.unwrap(),
        db_upsert.connect().await.unwrap(),
    );
    let copied = contents(&a).await;
    assert_eq!(copied, contents(&b).await);
    let c = db_checked.connect().await.unwrap();
    assert_eq!(copied, contents(&c).await);
    // Every copied child row has its battle.
    for table in [
        "battle_participants",
        "battle_killmails",
        "battle_statistics",
        "battle_third_parties",
    ] {
        let orphans = format!(
            "SELECT count(*) FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM battles b WHERE b.id = t.battle_id)"
        );
        assert_eq!(count(&a, &orphans).await, 0, "{table}");
    }
    assert_eq!(
        copied["battle_aliases"].len(),
        1,
        "the merge left its alias"
    );
    assert_eq!(copied["battles"].len(), 3);

    // The last step again, still promising new rows: its created battle and killmails are
    // stored, COPY breaks the promise, and the upserts it falls back to change nothing.
    let replayed = copying.apply(last.unwrap()).await.unwrap();
    assert_eq!(replayed.attempts, 2);
    assert_eq!(contents(&a).await, copied);
    drop((a, b, c, copying, upserting, checked));
    db_copy.drop_database().await.unwrap();
    db_upsert.drop_database().await.unwrap();
    db_checked.drop_database().await.unwrap();
}

/// The session's `session_replication_role`.
async fn replication_role(client: &Client) -> String {
    client
        .query_one("SHOW session_replication_role", &[])
        .await
        .unwrap()
        .get(0)
}

/// A role that is neither a superuser nor granted `SET` on `session_replication_role` keeps
/// every foreign-key check, and its session is left as it was.
#[tokio::test]
async fn a_role_that_may_not_skip_reference_checks_checks_them() {
    let db = TestDatabase::create().await.expect("test database");
    let admin = db.connect().await.unwrap();
    let role = format!("battles_plain_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    let mut config = db.config().clone();
    config.user(&role);
    let (plain, connection) = config
        .connect(battles_sink::tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    assert_eq!(
        ReferenceChecks::allowed(&plain).await,
        ReferenceChecks::Always
    );
    assert_eq!(replication_role(&plain).await, "origin");
    // The superuser may, and its session is put back too.
    assert_eq!(
        ReferenceChecks::allowed(&admin).await,
        ReferenceChecks::SkipForCopies
    );
    assert_eq!(replication_role(&admin).await, "origin");
    drop(plain);
    driver.await.unwrap().unwrap();
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    drop(admin);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_step_split_into_lone_battles_and_the_rest_writes_the_tables_of_the_whole_step() {
    let (db_whole, whole) = fresh().await;
    let (db_split, split) = fresh().await;
    let mut engine = battles_dataflow::Engine::start(Default::default()).unwrap();
    // Three fights, stored open; then a step with one more killmail of the first, a killmail
    // bridging the first two (the second ends into the first), nothing of the third (which
    // the step's watermark closes), and 4,400 killmails of strangers, each a battle of its own
    // that stands alone.
    let first = vec![
        km(1, 0, 2001, &[1001], 10),
        km(2, 1, 2002, &[1001], 10),
        km(4, 3, 3001, &[4001], 10),
        km(6, 1, 5001, &[6001], 10),
    ];
    let mut second = vec![
        km(3, 2, 2003, &[1001], 10),
        km(5, 4, 4002, &[1001, 4001], 10),
    ];
    second.extend(
        (0..4_400).map(|i| km(100 + i, 50 + i / 100, 10_000 + 2 * i, &[10_001 + 2 * i], 7)),
    );
    for (i, (kms, watermark)) in [(first, 5), (second, 200)].iter().enumerate() {
        let out = engine.insert(kms.iter().map(killmail)).unwrap();
        let step = StepChanges {
            battles: out.changes.clone(),
            killmails_inserted: kms.iter().map(killmail).map(Into::into).collect(),
            offsets: vec![("kafka:killmail.enriched:0".into(), i as i64 + 1)],
            status: StatusRule::watermark(
                t0() + Duration::minutes(*watermark),
                Duration::minutes(30),
            ),
            rows_are_new: true,
            ..StepChanges::default()
        };
        whole.apply(step.clone()).await.unwrap();

        let (rest, parts, positions) = match step.clone().split(2) {
            SplitStep::Whole(whole) => {
                assert_eq!(i, 0, "4,400 lone battles are cut for two connections");
                split.apply(whole).await.unwrap();
                continue;
            }
            SplitStep::Split {
                rest,
                parts,
                positions,
            } => (rest, parts, positions),
        };
        assert_eq!(i, 1, "four killmails do not pay for a second connection");
        assert_eq!(parts.len(), 2);
        let in_rest: Vec<i64> = rest
            .killmails_inserted
            .iter()
            .map(|k| k.killmail_id)
            .collect();
        assert_eq!(in_rest, [3, 5], "the fights' killmails stay with the rest");
        assert_eq!(positions.offsets, step.offsets, "the positions go last");
        assert!(positions.battles.is_empty() && positions.killmails_inserted.is_empty());
        assert!(rest.offsets.is_empty());
        for part in &parts {
            assert!(part.offsets.is_empty() && part.rejections.is_empty());
            assert!(part
                .battles
                .iter()
                .all(|c| matches!(c, BattleChange::Created(_))));
            let mut held: Vec<i64> = part
                .battles
                .iter()
                .flat_map(|c| {
                    c.new_report()
                        .unwrap()
                        .killmails
                        .iter()
                        .map(|k| k.killmail_id)
                })
                .collect();
            let mut stored: Vec<i64> = part
                .killmails_inserted
                .iter()
                .map(|k| k.killmail_id)
                .collect();
            held.sort();
            stored.sort();
            assert_eq!(
                held, stored,
                "a part stores exactly the killmails of its battles"
            );
            assert!(
                (2_000..=2_400).contains(&held.len()),
                "{} killmails",
                held.len()
            );
            assert!(
                matches!(
                    part.status,
                    StatusRule::Watermark {
                        close_stored: false,
                        ..
                    }
                ),
                "only the rest closes stored battles"
            );
        }
        let total = parts.iter().map(|p| p.battles.len()).sum::<usize>() + rest.battles.len();
        assert_eq!(total, step.battles.len());

        // The rest and a part at once, then the other part, then the positions: what a crash
        // leaves between them is battles with all of their killmails and the positions before.
        let client = db_split.connect().await.unwrap();
        let consistent = || async {
            assert_eq!(
                count(
                    &client,
                    "SELECT count(*) FROM killmails k WHERE NOT EXISTS (
                       SELECT 1 FROM battle_killmails b WHERE b.killmail_id = k.killmail_id)"
                )
                .await,
                0,
                "every stored killmail is in a stored battle"
            );
            assert_eq!(
                count(&client, "SELECT max(position) FROM source_offsets").await,
                1
            );
        };
        let mut parts = parts.into_iter();
        let (a, b) = tokio::join!(split.apply(rest), split.apply(parts.next().unwrap()));
        assert_eq!(
            a.unwrap().battles_closed,
            1,
            "the rest closes the third fight"
        );
        assert_eq!(b.unwrap().battles_closed, 0);
        consistent().await;
        split.apply(parts.next().unwrap()).await.unwrap();
        consistent().await;
        split.apply(*positions).await.unwrap();
    }
    let (a, b) = (
        db_whole.connect().await.unwrap(),
        db_split.connect().await.unwrap(),
    );
    let tables = contents(&a).await;
    assert_eq!(contents(&b).await, tables);
    assert_eq!(
        tables["battle_aliases"].len(),
        1,
        "the bridged fight ended into the first"
    );
    assert!(tables["battles"]
        .iter()
        .any(|r| r.contains("\"status\": \"closed\"")));
    drop((a, b, whole, split));
    db_whole.drop_database().await.unwrap();
    db_split.drop_database().await.unwrap();
}
