//! The API over battles the real pipeline wrote: generated killmails backfilled through the
//! engine and the sink, then read back over HTTP. Checks that what the sink stores (rows and
//! statistics JSON) is what the API answers: totals agree with the tables, the largest battle's
//! detail, participants and killmails agree with its row, and every killmail finds its battle.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use battles::backfill::progress::Progress;
use battles::backfill::{backfill, BackfillOptions};
use battles::generate::output::{write_to_dir, KILLMAILS_FILE};
use battles::generate::GeneratorConfig;
use battles_api::{ApiSettings, ApiState};
use battles_dataflow::EngineConfig;
use battles_sink::TestDatabase;
use serde_json::Value;

mod common;
use common::get;

fn ok(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn generated(dir: &Path) -> std::path::PathBuf {
    let config = GeneratorConfig {
        seed: 21,
        days: 1,
        scale: 1.0,
        ..GeneratorConfig::default()
    };
    write_to_dir(config, dir, false).unwrap();
    dir.join(KILLMAILS_FILE)
}

#[test]
fn the_api_answers_what_the_backfill_wrote() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path());
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = Arc::new(rt.block_on(db.sink()).unwrap());
    let options = BackfillOptions {
        chunk: 300,
        engine: EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        ..BackfillOptions::new(vec![file])
    };
    backfill(sink, &rt, &options, &Progress::hidden()).unwrap();

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
    let client = rt.block_on(db.connect()).unwrap();
    let count = |sql: &str| -> i64 { rt.block_on(client.query_one(sql, &[])).unwrap().get(0) };

    let battles = count("SELECT count(*) FROM battles WHERE deleted_at IS NULL");
    assert!(battles > 50, "the generated day makes battles: {battles}");
    let list = ok(addr, "/api/battles?limit=100");
    assert_eq!(list["pagination"]["total"], battles);
    let stats = ok(addr, "/api/battles/stats");
    assert_eq!(stats["totalBattles"], battles);

    let largest = &ok(addr, "/api/battles?sort=-pilots&limit=1")["battles"][0];
    let id = largest["id"].as_str().unwrap();
    let pilots = largest["statistics"]["totalPilots"].as_i64().unwrap();
    assert!(pilots >= 20, "a real fight: {largest}");
    let detail = ok(addr, &format!("/api/battles/{id}"));
    let s = &detail["statistics"];
    assert_eq!(s["totalPilots"], pilots);
    assert_eq!(
        s["teamA"]["pilots"].as_i64().unwrap() + s["teamB"]["pilots"].as_i64().unwrap(),
        pilots
    );
    assert!(detail["primarySystem"]["security"].is_number());
    let killer = &s["topKillers"][0];
    assert!(
        killer["characterName"].is_string(),
        "enriched killmails carry names: {killer}"
    );
    assert!(s["teamA"]["shipTypes"]
        .as_object()
        .unwrap()
        .values()
        .all(|t| t["name"].is_string()));

    let participants = ok(addr, &format!("/api/battles/{id}/participants?limit=100"));
    assert_eq!(participants["pagination"]["total"], pilots);
    let kills: Vec<i64> = participants["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kills"].as_i64().unwrap())
        .collect();
    assert!(
        kills.windows(2).all(|w| w[0] >= w[1]),
        "sorted by -kills: {kills:?}"
    );
    assert_eq!(
        kills[0],
        killer["kills"].as_i64().unwrap(),
        "the top killer leads the participants"
    );

    let killmails = ok(addr, &format!("/api/battles/{id}/killmails?limit=100"));
    assert_eq!(killmails["pagination"]["total"], s["totalKillmails"]);
    for k in killmails["killmails"].as_array().unwrap().iter().take(20) {
        let found = ok(addr, &format!("/api/killmails/{}/battle", k["killmailId"]));
        assert_eq!(found["battleId"], id);
    }
    let aliases = rt
        .block_on(client.query(
            "SELECT ended_battle_id, battle_id FROM battle_aliases LIMIT 5",
            &[],
        ))
        .unwrap();
    for alias in aliases {
        let ended: uuid::Uuid = alias.get(0);
        let target: uuid::Uuid = alias.get(1);
        let (status, body) = get(addr, &format!("/api/battles/{ended}"));
        assert_eq!(status, 308);
        assert_eq!(body["battleId"], target.to_string());
    }
    drop(client);
    rt.block_on(db.drop_database()).unwrap();
}

#[test]
fn one_killmail_battles_answer_the_same_without_a_statistics_row() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path());
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let sink = Arc::new(rt.block_on(db.sink()).unwrap());
    let options = BackfillOptions {
        chunk: 300,
        engine: EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        ..BackfillOptions::new(vec![file])
    };
    backfill(sink.clone(), &rt, &options, &Progress::hidden()).unwrap();
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
    let client = rt.block_on(db.connect()).unwrap();

    // The one-killmail battles the sink stored without a statistics row.
    let rows = rt
        .block_on(client.query(
            "SELECT b.id, bk.killmail_id FROM battles b
             JOIN battle_killmails bk ON bk.battle_id = b.id
             WHERE b.total_killmails = 1 AND b.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM battle_statistics s WHERE s.battle_id = b.id)
             ORDER BY b.id LIMIT 200",
            &[],
        ))
        .unwrap();
    assert!(
        rows.len() >= 50,
        "{} battles without statistics",
        rows.len()
    );
    let killmails: std::collections::HashMap<i64, battles_dataflow::Killmail> = rt
        .block_on(sink.load_killmails(None))
        .unwrap()
        .into_iter()
        .map(|k| (k.killmail_id, k))
        .collect();
    for row in rows {
        let id: uuid::Uuid = row.get(0);
        let killmail = &killmails[&row.get::<_, i64>(1)];
        // What the engine makes of the battle's killmail, independently of the derivation.
        let engine = battles_dataflow::summarize::summarize(&[killmail]).statistics;
        let reports = rt.block_on(sink.load_reports_of(&[id])).unwrap();
        assert_eq!(reports[&id].0.statistics, engine, "battle {id}");

        let (status, without_row) = get(addr, &format!("/api/battles/{id}"));
        assert_eq!(status, 200, "{without_row}");
        // The row the sink wrote before it left such rows out.
        let json = |v: serde_json::Result<Value>| v.unwrap();
        rt.block_on(client.execute(
            "INSERT INTO battle_statistics (battle_id, top_killers, top_losers, team_a_ship_types,
               team_b_ship_types, team_a_alliances, team_b_alliances, killmail_timeline,
               systems_involved) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &id,
                &json(serde_json::to_value(&engine.top_killers)),
                &json(serde_json::to_value(&engine.top_losers)),
                &json(serde_json::to_value(&engine.team_a_ship_types)),
                &json(serde_json::to_value(&engine.team_b_ship_types)),
                &json(serde_json::to_value(&engine.team_a_alliances)),
                &json(serde_json::to_value(&engine.team_b_alliances)),
                &json(serde_json::to_value(&engine.killmail_timeline)),
                &json(serde_json::to_value(&engine.systems_involved)),
            ],
        ))
        .unwrap();
        let (_, with_row) = get(addr, &format!("/api/battles/{id}"));
        assert_eq!(without_row, with_row, "battle {id}");
    }
    drop(client);
    rt.block_on(db.drop_database()).unwrap();
}
