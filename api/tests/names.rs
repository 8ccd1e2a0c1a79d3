//! The optional ESI names resolver against a local fake of `POST /universe/names/`: unnamed
//! entities get names, batches stay within the limit, a refused batch is split until the bad
//! id stands alone, answers are cached (refusals too), and a failing ESI leaves names `null`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::{Json, Router};
use battles_api::names::NameResolver;
use battles_api::{ApiSettings, NameResolverSettings};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What the fake ESI knows and every batch it was asked.
#[derive(Clone, Default)]
struct FakeEsi {
    known: Arc<HashMap<i64, (&'static str, &'static str)>>,
    batches: Arc<Mutex<Vec<Vec<i64>>>>,
    failing: bool,
}

async fn names(State(esi): State<FakeEsi>, Json(ids): Json<Vec<i64>>) -> (AxumStatus, Json<Value>) {
    esi.batches.lock().unwrap().push(ids.clone());
    if esi.failing {
        return (AxumStatus::BAD_GATEWAY, Json(json!({"error": "upstream"})));
    }
    if ids.len() > 1000 || ids.iter().any(|id| !esi.known.contains_key(id)) {
        return (
            AxumStatus::NOT_FOUND,
            Json(json!({"error": "Ensure all IDs are valid before resolving."})),
        );
    }
    let found: Vec<Value> = ids
        .iter()
        .map(|id| {
            let (name, category) = esi.known[id];
            json!({"id": id, "name": name, "category": category})
        })
        .collect();
    (AxumStatus::OK, Json(Value::Array(found)))
}

/// Serves `esi` on 127.0.0.1:0; its base URL.
async fn serve_fake(esi: FakeEsi) -> String {
    let app = Router::new()
        .route("/universe/names/", post(names))
        .with_state(esi);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn jorund_names() -> FakeEsi {
    let known = HashMap::from([
        (2112625428, ("Kill Leader", "character")),
        (95465499, ("Unlucky Pilot", "character")),
        (98000001, ("Jorund Holders", "corporation")),
        (98000002, ("Visitors Inc", "corporation")),
        (99003581, ("Curse Alliance", "alliance")),
    ]);
    FakeEsi {
        known: Arc::new(known),
        ..FakeEsi::default()
    }
}

fn resolving(base: &str, batch_size: usize) -> ApiSettings {
    ApiSettings {
        names: NameResolverSettings {
            enabled: true,
            esi_base_url: base.to_owned(),
            batch_size,
            ..NameResolverSettings::default()
        },
        ..settings()
    }
}

#[tokio::test]
async fn unnamed_entities_are_resolved_split_and_cached() {
    let esi = jorund_names();
    let base = serve_fake(esi.clone()).await;
    let api = TestApi::start(FIXTURE, resolving(&base, 2)).await;
    let detail = api
        .json(&format!("/api/battles/{JORUND}"), StatusCode::OK)
        .await;
    assert_eq!(
        detail["statistics"]["topKillers"][0]["characterName"],
        "Kill Leader"
    );
    assert_eq!(
        detail["statistics"]["topLosers"][0]["characterName"],
        "Unlucky Pilot"
    );
    assert_eq!(
        detail["statistics"]["teamA"]["topAlliances"][0]["allianceName"],
        "Curse Alliance"
    );

    let people = api
        .json(
            &format!("/api/battles/{JORUND}/participants"),
            StatusCode::OK,
        )
        .await;
    let by_id: HashMap<i64, &Value> = people["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["characterId"].as_i64().unwrap(), p))
        .collect();
    assert_eq!(
        by_id[&2112625428]["corporation"],
        json!({"id": 98000001, "name": "Jorund Holders"})
    );
    assert_eq!(by_id[&2112625428]["alliance"]["name"], "Curse Alliance");
    assert_eq!(by_id[&95465499]["corporation"]["name"], "Visitors Inc");
    assert_eq!(
        by_id[&2112625429]["characterName"],
        Value::Null,
        "ESI does not know it"
    );

    let batches = esi.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|b| b.len() <= 2), "{batches:?}");
    assert!(
        batches.contains(&vec![2112625429]),
        "the bad id was isolated: {batches:?}"
    );

    let client = api.db.connect().await.unwrap();
    let refused: Option<String> = client
        .query_one("SELECT name FROM entity_names WHERE id = 2112625429", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(refused, None, "the refusal is cached as a NULL name");
    let asked = esi.batches.lock().unwrap().len();
    api.json(
        &format!("/api/battles/{JORUND}/participants"),
        StatusCode::OK,
    )
    .await;
    api.json(&format!("/api/battles/{JORUND}"), StatusCode::OK)
        .await;
    assert_eq!(
        esi.batches.lock().unwrap().len(),
        asked,
        "answered from the cache"
    );
    // Stored names are never replaced by resolved ones.
    let jita = api
        .json(&format!("/api/battles/{JITA}"), StatusCode::OK)
        .await;
    assert_eq!(
        jita["statistics"]["topKillers"][0]["characterName"],
        "Jane Smith"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_refused_batch_is_halved_until_the_bad_id_stands_alone() {
    let esi = jorund_names();
    let base = serve_fake(esi.clone()).await;
    let resolver = NameResolver::new(&NameResolverSettings {
        enabled: true,
        esi_base_url: base,
        ..NameResolverSettings::default()
    })
    .unwrap();
    let ids = [2112625428, 95465499, 7, 98000001, 98000002, 99003581];
    let resolution = resolver.ask_esi(&ids).await.unwrap();
    let mut found: Vec<i64> = resolution.found.iter().map(|n| n.id).collect();
    found.sort_unstable();
    assert_eq!(found, [95465499, 98000001, 98000002, 99003581, 2112625428]);
    assert_eq!(resolution.refused, [7]);
    let batches = esi.batches.lock().unwrap().clone();
    assert_eq!(batches[0].len(), 6);
    assert_eq!(batches.iter().filter(|b| b.as_slice() == [7]).count(), 1);
    assert!(
        batches.len() <= 1 + 2 * 3,
        "halving, not one by one: {batches:?}"
    );

    let many: Vec<i64> = (1..=2500).collect();
    let everyone = FakeEsi {
        known: Arc::new(
            many.iter()
                .map(|&id| (id, ("Pilot", "character")))
                .collect(),
        ),
        ..FakeEsi::default()
    };
    let base = serve_fake(everyone.clone()).await;
    let resolver = NameResolver::new(&NameResolverSettings {
        enabled: true,
        esi_base_url: base,
        ..NameResolverSettings::default()
    })
    .unwrap();
    let resolution = resolver.ask_esi(&many).await.unwrap();
    assert_eq!(resolution.found.len(), 2500);
    let sizes: Vec<usize> = everyone
        .batches
        .lock()
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [1000, 1000, 500], "batches of at most 1,000 ids");
}

#[tokio::test]
async fn a_failing_esi_leaves_names_null_and_answers() {
    let esi = FakeEsi {
        failing: true,
        ..jorund_names()
    };
    let base = serve_fake(esi.clone()).await;
    let api = TestApi::start(FIXTURE, resolving(&base, 1000)).await;
    let detail = api
        .json(&format!("/api/battles/{JORUND}"), StatusCode::OK)
        .await;
    assert_eq!(
        detail["statistics"]["topKillers"][0]["characterName"],
        Value::Null
    );
    assert_eq!(esi.batches.lock().unwrap().len(), 1);
    api.json(
        &format!("/api/battles/{JORUND}/participants"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        esi.batches.lock().unwrap().len(),
        1,
        "paused after a failure"
    );
    let client = api.db.connect().await.unwrap();
    let cached: i64 = client
        .query_one("SELECT count(*) FROM entity_names", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cached, 0, "a failure caches nothing");
    api.stop().await;
}
