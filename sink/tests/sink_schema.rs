//! The migrated schema against the specification: every column (name, type, default,
//! nullability, generated), constraint and index of the spec's five tables, read back from the
//! catalog and compared with the lists below, which are transcribed from the spec's DDL text.
//! Also: migrations are idempotent and a database at V1 upgrades in place.

mod common;

use std::collections::BTreeSet;

use battles_sink::migrate::{migrate, migrate_to, migration_versions};
use battles_sink::server::Discovery;
use battles_sink::TestDatabase;

/// table | column | data_type | default | nullable — transcribed from battle-service-spec.md.
const SPEC_COLUMNS: &str = "
battles|id|uuid|gen_random_uuid()|NO
battles|started_at|timestamp with time zone||NO
battles|ended_at|timestamp with time zone||NO
battles|duration_seconds|integer||YES
battles|primary_system_id|bigint||NO
battles|primary_system_name|text||NO
battles|primary_region_id|bigint||NO
battles|primary_region_name|text||NO
battles|total_killmails|integer|0|YES
battles|total_pilots|integer|0|YES
battles|total_isk_destroyed|bigint|0|YES
battles|team_a_pilots|integer|0|YES
battles|team_a_isk_destroyed|bigint|0|YES
battles|team_a_isk_lost|bigint|0|YES
battles|team_a_ships_destroyed|integer|0|YES
battles|team_a_ships_lost|integer|0|YES
battles|team_b_pilots|integer|0|YES
battles|team_b_isk_destroyed|bigint|0|YES
battles|team_b_isk_lost|bigint|0|YES
battles|team_b_ships_destroyed|integer|0|YES
battles|team_b_ships_lost|integer|0|YES
battles|is_decisive|boolean|false|YES
battles|winning_team|text||YES
battles|status|text|'open'::text|NO
battles|last_killmail_at|timestamp with time zone||YES
battles|deleted_at|timestamp with time zone||YES
battles|deletion_reason|text||YES
battles|created_at|timestamp with time zone|now()|YES
battles|updated_at|timestamp with time zone|now()|YES
battle_participants|id|uuid|gen_random_uuid()|NO
battle_participants|battle_id|uuid||NO
battle_participants|character_id|bigint||NO
battle_participants|character_name|text||NO
battle_participants|corporation_id|bigint||YES
battle_participants|corporation_name|text||YES
battle_participants|alliance_id|bigint||YES
battle_participants|alliance_name|text||YES
battle_participants|team|text||NO
battle_participants|ships_flown|jsonb|'[]'::jsonb|YES
battle_participants|kills|integer|0|YES
battle_participants|deaths|integer|0|YES
battle_participants|damage_done|bigint|0|YES
battle_participants|damage_received|bigint|0|YES
battle_participants|isk_destroyed|bigint|0|YES
battle_participants|isk_lost|bigint|0|YES
battle_participants|first_seen_at|timestamp with time zone||NO
battle_participants|last_seen_at|timestamp with time zone||NO
battle_participants|created_at|timestamp with time zone|now()|YES
battle_participants|updated_at|timestamp with time zone|now()|YES
battle_killmails|id|uuid|gen_random_uuid()|NO
battle_killmails|battle_id|uuid||NO
battle_killmails|killmail_id|bigint||NO
battle_killmails|killmail_time|timestamp with time zone||NO
battle_killmails|system_id|bigint||NO
battle_killmails|victim_character_id|bigint||YES
battle_killmails|victim_alliance_id|bigint||YES
battle_killmails|victim_ship_type_id|bigint||YES
battle_killmails|victim_team|text||NO
battle_killmails|isk_destroyed|bigint|0|YES
battle_killmails|created_at|timestamp with time zone|now()|YES
battle_statistics|battle_id|uuid||NO
battle_statistics|top_killers|jsonb|'[]'::jsonb|YES
battle_statistics|top_losers|jsonb|'[]'::jsonb|YES
battle_statistics|team_a_ship_types|jsonb|'{}'::jsonb|YES
battle_statistics|team_b_ship_types|jsonb|'{}'::jsonb|YES
battle_statistics|team_a_alliances|jsonb|'[]'::jsonb|YES
battle_statistics|team_b_alliances|jsonb|'[]'::jsonb|YES
battle_statistics|killmail_timeline|jsonb|'[]'::jsonb|YES
battle_statistics|systems_involved|jsonb|'[]'::jsonb|YES
battle_statistics|updated_at|timestamp with time zone|now()|YES
clustering_jobs|id|uuid|gen_random_uuid()|NO
clustering_jobs|job_type|text||NO
clustering_jobs|start_date|date||NO
clustering_jobs|end_date|date||NO
clustering_jobs|status|text||NO
clustering_jobs|priority|text|'normal'::text|NO
clustering_jobs|killmails_processed|integer|0|YES
clustering_jobs|battles_created|integer|0|YES
clustering_jobs|battles_updated|integer|0|YES
clustering_jobs|battles_deleted|integer|0|YES
clustering_jobs|created_at|timestamp with time zone|now()|YES
clustering_jobs|started_at|timestamp with time zone||YES
clustering_jobs|completed_at|timestamp with time zone||YES
clustering_jobs|error_message|text||YES
clustering_jobs|retry_count|integer|0|YES
";

/// table | constraint definition, from the spec's PRIMARY KEY / REFERENCES / CONSTRAINT clauses.
const SPEC_CONSTRAINTS: &str = "
battles|PRIMARY KEY (id)
battle_participants|PRIMARY KEY (id)
battle_participants|FOREIGN KEY (battle_id) REFERENCES battles(id) ON DELETE CASCADE
battle_participants|unique_battle_character UNIQUE (battle_id, character_id)
battle_killmails|PRIMARY KEY (id)
battle_killmails|FOREIGN KEY (battle_id) REFERENCES battles(id) ON DELETE CASCADE
battle_killmails|unique_battle_killmail UNIQUE (battle_id, killmail_id)
battle_statistics|PRIMARY KEY (battle_id)
battle_statistics|FOREIGN KEY (battle_id) REFERENCES battles(id) ON DELETE CASCADE
clustering_jobs|PRIMARY KEY (id)
";

/// The spec's CREATE INDEX statements: name | table | column list | WHERE clause.
/// Indexes the service adds to the spec's tables (`migrations/V4__api.sql`,
/// `V5__api_indexes.sql`): keyset-friendly paging over visible battles and participants by kills.
const SERVICE_INDEXES: &str = "
idx_battles_visible_started|battles|started_at DESC, id DESC|deleted_at IS NULL
idx_battles_visible_isk|battles|total_isk_destroyed DESC, id DESC|deleted_at IS NULL
idx_battles_visible_pilots|battles|total_pilots DESC, id DESC|deleted_at IS NULL
idx_battles_visible_system|battles|primary_system_id, started_at DESC, id DESC|deleted_at IS NULL
idx_battles_visible_region|battles|primary_region_id, started_at DESC, id DESC|deleted_at IS NULL
idx_battle_participants_kills|battle_participants|battle_id, kills DESC, character_id|
";

const SPEC_INDEXES: &str = "
idx_battles_started_at|battles|started_at DESC|
idx_battles_ended_at|battles|ended_at DESC|
idx_battles_system|battles|primary_system_id|
idx_battles_region|battles|primary_region_id|
idx_battles_isk_destroyed|battles|total_isk_destroyed DESC|
idx_battles_status|battles|status|
idx_battles_deleted_at|battles|deleted_at|deleted_at IS NOT NULL
idx_battles_date_system|battles|started_at DESC, primary_system_id|
idx_battle_participants_battle|battle_participants|battle_id|
idx_battle_participants_character|battle_participants|character_id|
idx_battle_participants_alliance|battle_participants|alliance_id|
idx_battle_participants_team|battle_participants|battle_id, team|
idx_battle_killmails_battle|battle_killmails|battle_id|
idx_battle_killmails_killmail|battle_killmails|killmail_id|
idx_battle_killmails_time|battle_killmails|battle_id, killmail_time|
idx_clustering_jobs_status|clustering_jobs|status|
idx_clustering_jobs_dates|clustering_jobs|start_date, end_date|
";

const SPEC_TABLES: [&str; 5] = [
    "battles",
    "battle_participants",
    "battle_killmails",
    "battle_statistics",
    "clustering_jobs",
];

fn lines(s: &str) -> BTreeSet<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tables() -> Vec<String> {
    SPEC_TABLES.iter().map(|t| t.to_string()).collect()
}

#[tokio::test]
async fn schema_matches_the_spec() {
    let db = TestDatabase::create().await.unwrap();
    let client = db.connect().await.unwrap();

    let rows = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text,
                    coalesce(column_default, ''), is_nullable::text
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = ANY($1)",
            &[&tables()],
        )
        .await
        .unwrap();
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}|{}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4)
            )
        })
        .collect();
    let want = lines(SPEC_COLUMNS);
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "columns not in the spec"
    );
    assert_eq!(
        want.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "spec columns missing"
    );

    // The one generated column, and that it computes what the spec says.
    let generated = client
        .query(
            "SELECT table_name::text, column_name::text, generation_expression::text
             FROM information_schema.columns
             WHERE table_schema = 'public' AND is_generated = 'ALWAYS' AND table_name = ANY($1)",
            &[&tables()],
        )
        .await
        .unwrap();
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].get::<_, String>(1), "duration_seconds");
    let expr: String = generated[0].get(2);
    assert!(
        expr.contains("EXTRACT(epoch FROM (ended_at - started_at))"),
        "{expr}"
    );
    client
        .execute(
            "INSERT INTO battles (started_at, ended_at, primary_system_id, primary_system_name,
               primary_region_id, primary_region_name)
             VALUES ('2025-11-25T09:00:00Z', '2025-11-25T10:30:00Z', 1, 's', 2, 'r')",
            &[],
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT duration_seconds, status FROM battles", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(5400));
    assert_eq!(row.get::<_, String>(1), "open");

    let rows = client
        .query(
            "SELECT c.conrelid::regclass::text, c.conname::text, c.contype::text,
                    pg_get_constraintdef(c.oid)
             FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
             WHERE n.nspname = 'public' AND c.conrelid::regclass::text = ANY($1)",
            &[&tables()],
        )
        .await
        .unwrap();
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| {
            let (table, name, kind, def): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            // The spec names its UNIQUE constraints; primary and foreign keys get default names.
            if kind == "u" {
                format!("{table}|{name} {def}")
            } else {
                format!("{table}|{def}")
            }
        })
        .collect();
    assert_eq!(got, lines(SPEC_CONSTRAINTS));

    let rows = client
        .query(
            "SELECT indexname::text, tablename::text, indexdef FROM pg_indexes
             WHERE schemaname = 'public' AND tablename = ANY($1)",
            &[&tables()],
        )
        .await
        .unwrap();
    let mut got = BTreeSet::new();
    for r in &rows {
        let (name, table, def): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        // Indexes backing constraints are checked with the constraints.
        if name.ends_with("_pkey") || name.starts_with("unique_") {
            continue;
        }
        let cols_start = def.find("USING btree (").expect("btree") + "USING btree (".len();
        let cols_end = def[cols_start..].find(')').unwrap() + cols_start;
        let cols = &def[cols_start..cols_end];
        let predicate = def
            .split_once(" WHERE ")
            .map(|(_, w)| w.trim_start_matches('(').trim_end_matches(')'))
            .unwrap_or("");
        got.insert(format!("{name}|{table}|{cols}|{predicate}"));
    }
    // The spec's indexes exactly, plus the service's own (the API's paging and sorting
    // indexes of V4 and V5), and nothing else.
    let spec = lines(SPEC_INDEXES);
    assert!(spec.is_subset(&got), "missing: {:?}", spec.difference(&got));
    let extra: BTreeSet<String> = got.difference(&spec).cloned().collect();
    assert_eq!(extra, lines(SERVICE_INDEXES));
    db.drop_database().await.unwrap();
}

async fn has(client: &battles_sink::tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get::<_, bool>(0)
}

#[tokio::test]
async fn migrations_are_idempotent_and_upgrade_in_place() {
    let server = Discovery::from_env().discover().await.unwrap();
    let db = TestDatabase::create_empty_on(server).await.unwrap();
    let mut client = db.connect().await.unwrap();

    // A database at V1 only: the spec's tables, none of the service tables.
    let report = migrate_to(&mut client, Some(1)).await.unwrap();
    assert_eq!(report.applied_migrations().len(), 1);
    assert!(has(&client, "battles").await);
    assert!(!has(&client, "killmails").await);
    client
        .execute(
            "INSERT INTO battles (started_at, ended_at, primary_system_id, primary_system_name,
               primary_region_id, primary_region_name)
             VALUES (now(), now(), 1, 's', 2, 'r')",
            &[],
        )
        .await
        .unwrap();

    // Upgrade in place: the rest is applied, the data stays.
    let report = migrate(&mut client).await.unwrap();
    let versions = migration_versions();
    assert!(versions.len() >= 2);
    assert_eq!(report.applied_migrations().len(), versions.len() - 1);
    for t in [
        "killmails",
        "rejected_killmails",
        "battle_aliases",
        "source_offsets",
        "battle_events_outbox",
        "battle_third_parties",
    ] {
        assert!(has(&client, t).await, "{t} missing after upgrade");
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM battles", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Again: nothing to do.
    let report = migrate(&mut client).await.unwrap();
    assert!(report.applied_migrations().is_empty());
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied as usize, versions.len());
    drop(client);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn the_database_is_created_when_missing() {
    let server = Discovery::from_env().discover().await.unwrap();
    let name = format!("battles_test_create_{}", std::process::id());
    let url = server.url_for(&name);
    let config = battles_sink::migrate::parse_url(&url).unwrap();
    assert!(battles_sink::ensure_database(&config).await.unwrap());
    assert!(!battles_sink::ensure_database(&config).await.unwrap());
    battles_sink::prepare_database(&config).await.unwrap();
    let admin = battles_sink::migrate::connect(&battles_sink::migrate::maintenance_config(&config))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn killmail_records_of_before_v7_stay_readable_with_their_isk_flag() {
    let server = Discovery::from_env().discover().await.unwrap();
    let db = TestDatabase::create_empty_on(server).await.unwrap();
    let mut client = db.connect().await.unwrap();
    migrate_to(&mut client, Some(6)).await.unwrap();
    // Two killmails as V3 to V6 stored them: their JSON text, one with an estimated value and
    // a NUL in a name (escaped in the JSON).
    let mut estimated = common::killmail(&common::km(1, 0, 2001, &[1000], 10_000_000));
    estimated.isk_estimated = true;
    estimated.solar_system_name = "Jo\0rund".into();
    let given = common::killmail(&common::km(2, 1, 2002, &[1001], 20_000_000));
    for k in [&estimated, &given] {
        client
            .execute(
                "INSERT INTO killmails (killmail_id, killmail_hash, killmail_time,
                   solar_system_id, region_id, record) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &k.killmail_id,
                    &k.killmail_hash,
                    &k.killmail_time,
                    &k.solar_system_id,
                    &k.region_id,
                    &serde_json::to_vec(k).unwrap(),
                ],
            )
            .await
            .unwrap();
    }
    migrate(&mut client).await.unwrap();
    let flags: Vec<(i64, bool)> = client
        .query(
            "SELECT killmail_id, isk_estimated FROM killmails ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(flags, [(1, true), (2, false)]);
    let sink = db.sink().await.unwrap();
    assert_eq!(sink.load_killmails(None).await.unwrap(), [estimated, given]);
    drop(client);
    db.drop_database().await.unwrap();
}

/// The battle id of before V9: the UUIDv5 of the earliest killmail's id.
fn v5_battle_id(killmail_id: i64) -> uuid::Uuid {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6261_7474_6c65_7300_8000_0000_0000_0001);
    uuid::Uuid::new_v5(&NAMESPACE, &killmail_id.to_be_bytes())
}

/// Battles stored under the UUIDv5 ids of before V9 are renumbered by it: each comes back whole
/// under the engine's id, its old id (and an alias that named it) redirects to the new one, and
/// a `battle.deleted` event tells consumers where each visible battle went.
#[tokio::test]
async fn v9_renumbers_battles_stored_under_uuid_v5_ids() {
    use common::{battle_of, create_step, km, report};
    let db = TestDatabase::create().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let sink = db.sink().await.unwrap();
    let a = vec![
        km(1, 0, 2001, &[1000, 1001], 10),
        km(2, 3, 2002, &[1000], 20),
    ];
    // B's id has bits above the low 52, which go to the id's second field.
    let b = vec![km(1_234_567_890_123_456_789, 30, 3001, &[4000], 30)];
    // The rows a V7 sink wrote: the same battles under their old ids.
    let mut step = create_step(&[a.clone(), b.clone()]);
    for change in &mut step.battles {
        let battles_dataflow::BattleChange::Created(r) = change else {
            unreachable!()
        };
        std::sync::Arc::make_mut(r).battle_id = v5_battle_id(r.first_killmail_id);
    }
    sink.apply(step).await.unwrap();
    let (old_a, old_b, merged_away) = (v5_battle_id(1), v5_battle_id(b[0].id), v5_battle_id(5));
    client
        .execute(
            "INSERT INTO battle_aliases (ended_battle_id, battle_id) VALUES ($1, $2)",
            &[&merged_away, &old_a],
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "DELETE FROM battle_events_outbox;
             DELETE FROM refinery_schema_history WHERE version >= 9",
        )
        .await
        .unwrap();

    let report_of_v9 = migrate(&mut client).await.unwrap();
    assert_eq!(report_of_v9.applied_migrations().len(), 1);

    let (new_a, new_b) = (battle_of(&a[0]), battle_of(&b[0]));
    let stored = sink.load_reports().await.unwrap();
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), [new_a, new_b]);
    assert_eq!(stored[&new_a].0, *report(&a), "A moved whole");
    assert_eq!(stored[&new_b].0, *report(&b), "B moved whole");
    assert_eq!(
        sink.load_aliases().await.unwrap(),
        std::collections::BTreeMap::from([(old_a, new_a), (old_b, new_b), (merged_away, new_a)])
    );
    let events: Vec<serde_json::Value> = client
        .query(
            "SELECT payload FROM battle_events_outbox WHERE event_type = 'battle.deleted'
             ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let moves: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["battleId"].as_str().unwrap().to_owned(),
                d["continuingBattleId"].as_str().unwrap().to_owned(),
                d["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (
                old_a.to_string(),
                new_a.to_string(),
                "renumbered".to_owned()
            ),
            (
                old_b.to_string(),
                new_b.to_string(),
                "renumbered".to_owned()
            )
        ]
    );
    let counted: i64 = client
        .query_one("SELECT sum(battles)::BIGINT FROM battle_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 2, "the battle counts are unchanged");

    // Again: nothing to renumber.
    client
        .batch_execute("DELETE FROM refinery_schema_history WHERE version >= 9")
        .await
        .unwrap();
    migrate(&mut client).await.unwrap();
    let events_after: i64 = client
        .query_one("SELECT count(*) FROM battle_events_outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events_after, 2);
    drop((client, sink));
    db.drop_database().await.unwrap();
}
