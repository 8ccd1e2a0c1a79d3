//! The battle endpoints on a real PostgreSQL with seeded battles: every filter and sort of the
//! list, paging edges and totals, the detail, participants and killmails with their shapes
//! checked against the spec's examples, and the 400/404/308 paths.

mod common;

use common::spec;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn example(text: &str) -> Value {
    serde_json::from_str(text).expect("spec example parses")
}

#[tokio::test]
async fn list_sorts_on_every_key_in_both_directions() {
    let api = TestApi::seeded().await;
    let cases: [(&str, [&str; 4]); 7] = [
        ("", [AMARR, JITA, OIVNH, JORUND]),
        ("?sort=-started_at", [AMARR, JITA, OIVNH, JORUND]),
        ("?sort=started_at", [JORUND, OIVNH, JITA, AMARR]),
        ("?sort=-isk_destroyed", [JITA, JORUND, OIVNH, AMARR]),
        ("?sort=isk_destroyed", [AMARR, OIVNH, JORUND, JITA]),
        ("?sort=-pilots", [JITA, OIVNH, JORUND, AMARR]),
        ("?sort=pilots", [AMARR, JORUND, OIVNH, JITA]),
    ];
    for (query, expected) in cases {
        let ids = api.battle_ids(&format!("/api/battles{query}")).await;
        assert_eq!(ids, expected, "{query}");
    }
    api.stop().await;
}

#[tokio::test]
async fn list_filters_each_and_combined_and_never_shows_deleted_battles() {
    let api = TestApi::seeded().await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("startDate=2025-01-01", vec![AMARR, JITA]),
        ("endDate=2024-12-31", vec![OIVNH, JORUND]),
        ("startDate=2025-11-25&endDate=2025-11-25", vec![JITA]),
        (
            "startDate=2025-11-25T09:00:00Z&endDate=2025-11-25T09:00:00Z",
            vec![JITA],
        ),
        ("startDate=2025-11-25T09:00:01Z", vec![AMARR]),
        ("systemId=30000142", vec![JITA]),
        ("regionId=10000012", vec![JORUND]),
        ("allianceId=99001234", vec![AMARR, JITA]),
        ("minIsk=100000000", vec![JITA, JORUND]),
        ("minPilots=4", vec![JITA, OIVNH]),
        ("status=open", vec![AMARR]),
        ("status=closed", vec![JITA, JORUND]),
        ("status=historical", vec![OIVNH]),
        ("allianceId=99001234&status=closed", vec![JITA]),
        ("regionId=10000002&minIsk=1", vec![JITA]),
        ("systemId=30000001", vec![]),
    ];
    for (query, expected) in cases {
        let body = api
            .json(&format!("/api/battles?{query}"), StatusCode::OK)
            .await;
        assert_eq!(ids(&body["battles"], "id"), expected, "{query}");
        assert_eq!(body["pagination"]["total"], expected.len(), "{query}");
        assert_eq!(body["pagination"]["hasMore"], false, "{query}");
        assert!(!ids(&body["battles"], "id").contains(&DELETED.to_owned()));
    }
    api.stop().await;
}

#[tokio::test]
async fn list_paging_edges() {
    let api = TestApi::seeded().await;
    let page = |q: &'static str| {
        let api = &api;
        async move { api.json(&format!("/api/battles?{q}"), StatusCode::OK).await }
    };
    let first = page("limit=1").await;
    assert_eq!(ids(&first["battles"], "id"), [AMARR]);
    assert_eq!(
        first["pagination"],
        json!({"total": 4, "limit": 1, "offset": 0, "hasMore": true})
    );
    let last = page("limit=1&offset=3").await;
    assert_eq!(ids(&last["battles"], "id"), [JORUND]);
    assert_eq!(last["pagination"]["hasMore"], false);
    let past = page("offset=4").await;
    assert_eq!(past["battles"], json!([]));
    assert_eq!(
        past["pagination"],
        json!({"total": 4, "limit": 50, "offset": 4, "hasMore": false})
    );
    let filtered_past = page("minPilots=4&offset=10").await;
    assert_eq!(filtered_past["battles"], json!([]));
    assert_eq!(filtered_past["pagination"]["total"], 2);
    let full = page("limit=100").await;
    assert_eq!(full["pagination"]["limit"], 100);
    assert_eq!(full["battles"].as_array().unwrap().len(), 4);
    let mut walked = Vec::new();
    for offset in 0..4 {
        let p = api
            .json(
                &format!("/api/battles?sort=-pilots&limit=1&offset={offset}"),
                StatusCode::OK,
            )
            .await;
        walked.extend(ids(&p["battles"], "id"));
    }
    assert_eq!(walked, [JITA, OIVNH, JORUND, AMARR]);
    api.stop().await;
}

#[tokio::test]
async fn list_answers_the_spec_shape_field_for_field() {
    let api = TestApi::seeded().await;
    let body = api
        .json("/api/battles?systemId=30000142", StatusCode::OK)
        .await;
    assert_shape(&example(spec::LIST), &body, "");
    let jita = &body["battles"][0];
    assert_eq!(
        *jita,
        json!({
            "id": JITA,
            "startedAt": "2025-11-25T09:00:00Z",
            "endedAt": "2025-11-25T10:30:00Z",
            "duration": 5400,
            "primarySystem": {"id": 30000142, "name": "Jita"},
            "primaryRegion": {"id": 10000002, "name": "The Forge"},
            "statistics": {
                "totalKillmails": 4, "totalPilots": 5, "totalIskDestroyed": 150000000000i64,
                "teamA": {"pilots": 3, "iskDestroyed": 120000000000i64, "iskLost": 30000000000i64, "shipsDestroyed": 3, "shipsLost": 1},
                "teamB": {"pilots": 2, "iskDestroyed": 30000000000i64, "iskLost": 120000000000i64, "shipsDestroyed": 1, "shipsLost": 3}
            },
            "outcome": {"isDecisive": true, "winningTeam": "team_a"},
            "status": "closed"
        })
    );
    let jorund = api
        .json("/api/battles?regionId=10000012", StatusCode::OK)
        .await;
    assert_eq!(
        jorund["battles"][0]["outcome"],
        json!({"isDecisive": false, "winningTeam": null})
    );
    api.stop().await;
}

#[tokio::test]
async fn detail_is_complete_and_named() {
    let api = TestApi::seeded().await;
    let body = api
        .json(&format!("/api/battles/{JITA}"), StatusCode::OK)
        .await;
    assert_shape(&example(spec::DETAIL), &body, "");
    assert_eq!(body["primarySystem"]["name"], "Jita");
    assert!((body["primarySystem"]["security"].as_f64().unwrap() - 0.946).abs() < 1e-9);
    assert_eq!(
        body["primaryRegion"],
        json!({"id": 10000002, "name": "The Forge"})
    );
    let team_a = &body["statistics"]["teamA"];
    assert_eq!(
        team_a["topAlliances"],
        json!([{"allianceId": 99001234, "allianceName": "Test Alliance", "pilots": 2, "iskDestroyed": 120000000000i64, "iskLost": 0}])
    );
    assert_eq!(
        team_a["shipTypes"],
        json!({"587": {"name": "Rifter", "count": 2}, "599": {"name": "Burst", "count": 1}, "24690": {"name": "Hyperion", "count": 1}})
    );
    assert_eq!(
        body["statistics"]["teamB"]["shipTypes"]["670"],
        json!({"name": "Capsule", "count": 1})
    );
    assert_eq!(
        body["statistics"]["topKillers"][0],
        json!({"characterId": 12345678, "characterName": "Jane Smith", "team": "team_a", "kills": 2, "iskDestroyed": 100000000000i64})
    );
    assert_eq!(
        body["statistics"]["topLosers"][0],
        json!({"characterId": 87654321, "characterName": "Bob Jones", "team": "team_b", "deaths": 2, "iskLost": 80000000000i64})
    );
    assert_eq!(
        body["outcome"],
        json!({"isDecisive": true, "winningTeam": "team_a"})
    );
    assert_eq!(body["status"], "closed");
    assert_eq!(body["lastKillmailAt"], "2025-11-25T10:28:00Z");
    assert_eq!(body["createdAt"], "2025-11-25T09:05:00Z");
    assert_eq!(body["updatedAt"], "2025-11-25T10:35:00Z");
    api.stop().await;
}

#[tokio::test]
async fn unnamed_entities_are_null_without_a_resolver() {
    let api = TestApi::seeded().await;
    let body = api
        .json(&format!("/api/battles/{JORUND}"), StatusCode::OK)
        .await;
    assert_shape(&example(spec::DETAIL), &body, "");
    assert_eq!(
        body["statistics"]["topKillers"][0]["characterName"],
        Value::Null
    );
    assert_eq!(
        body["statistics"]["topLosers"][0]["characterName"],
        Value::Null
    );
    assert_eq!(
        body["statistics"]["teamA"]["topAlliances"][0]["allianceName"],
        Value::Null
    );
    assert_eq!(
        body["statistics"]["teamA"]["shipTypes"]["11567"]["name"],
        "Avatar"
    );
    let people = api
        .json(
            &format!("/api/battles/{JORUND}/participants"),
            StatusCode::OK,
        )
        .await;
    let first = &people["participants"][0];
    assert_eq!(first["characterName"], Value::Null);
    assert_eq!(first["corporation"], json!({"id": 98000001, "name": null}));
    assert_eq!(first["alliance"], json!({"id": 99003581, "name": null}));
    // A battle of one killmail without a statistics row answers with the statistics its
    // participant and killmail rows imply (the sink leaves such rows out).
    let bare = api
        .json(&format!("/api/battles/{AMARR}"), StatusCode::OK)
        .await;
    assert_eq!(
        bare["statistics"]["topKillers"],
        json!([{"characterId": 1001, "characterName": "Ganker", "iskDestroyed": 5000000,
                "kills": 1, "team": "team_a"}])
    );
    api.stop().await;
}

#[tokio::test]
async fn participants_sort_filter_and_page() {
    let api = TestApi::seeded().await;
    let cases: [(&str, &[&str]); 8] = [
        (
            "",
            &["12345678", "12345679", "87654321", "12345680", "87654322"],
        ),
        (
            "?sort=-kills",
            &["12345678", "12345679", "87654321", "12345680", "87654322"],
        ),
        (
            "?sort=kills",
            &["12345680", "87654322", "12345679", "87654321", "12345678"],
        ),
        (
            "?sort=deaths",
            &["12345678", "12345679", "12345680", "87654322", "87654321"],
        ),
        (
            "?sort=-deaths",
            &["87654321", "12345680", "87654322", "12345678", "12345679"],
        ),
        (
            "?sort=-isk_destroyed",
            &["12345678", "87654321", "12345679", "12345680", "87654322"],
        ),
        ("?team=team_b", &["87654321", "87654322"]),
        (
            "?allianceId=99001234&sort=isk_destroyed",
            &["12345679", "12345678"],
        ),
    ];
    for (query, expected) in cases {
        let body = api
            .json(
                &format!("/api/battles/{JITA}/participants{query}"),
                StatusCode::OK,
            )
            .await;
        assert_eq!(
            ids(&body["participants"], "characterId"),
            expected,
            "{query}"
        );
        assert_eq!(body["pagination"]["total"], expected.len(), "{query}");
    }
    let page = api
        .json(
            &format!("/api/battles/{JITA}/participants?limit=2&offset=1"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        ids(&page["participants"], "characterId"),
        ["12345679", "87654321"]
    );
    assert_eq!(
        page["pagination"],
        json!({"total": 5, "limit": 2, "offset": 1})
    );
    let past = api
        .json(
            &format!("/api/battles/{JITA}/participants?offset=5"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(past["participants"], json!([]));
    assert_eq!(past["pagination"]["total"], 5);
    let none = api
        .json(
            &format!("/api/battles/{JITA}/participants?allianceId=1"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(none["pagination"]["total"], 0);
    api.stop().await;
}

#[tokio::test]
async fn participants_answer_the_spec_shape() {
    let api = TestApi::seeded().await;
    let body = api
        .json(&format!("/api/battles/{JITA}/participants"), StatusCode::OK)
        .await;
    assert_shape(&example(spec::PARTICIPANTS), &body, "");
    assert_eq!(
        body["participants"][0],
        json!({
            "characterId": 12345678,
            "characterName": "Jane Smith",
            "corporation": {"id": 87654321, "name": "Test Corp"},
            "alliance": {"id": 99001234, "name": "Test Alliance"},
            "team": "team_a",
            "shipsFlown": [{"shipTypeId": 587, "shipTypeName": "Rifter"}, {"shipTypeId": 24690, "shipTypeName": "Hyperion"}],
            "kills": 2, "deaths": 0, "damageDone": 15000000, "damageReceived": 0,
            "iskDestroyed": 100000000000i64, "iskLost": 0,
            "firstSeenAt": "2025-11-25T09:05:00Z", "lastSeenAt": "2025-11-25T10:25:00Z"
        })
    );
    let solo = &body["participants"][3];
    assert_eq!(solo["characterId"], 12345680);
    assert_eq!(
        solo["alliance"],
        Value::Null,
        "no alliance is null, not an empty object"
    );
    api.stop().await;
}

#[tokio::test]
async fn killmails_sort_filter_page_and_shape() {
    let api = TestApi::seeded().await;
    let cases: [(&str, &[&str]); 5] = [
        ("", &["123456701", "123456702", "123456703", "123456704"]),
        (
            "?sort=time",
            &["123456701", "123456702", "123456703", "123456704"],
        ),
        (
            "?sort=-time",
            &["123456704", "123456703", "123456702", "123456701"],
        ),
        (
            "?sort=-isk_destroyed",
            &["123456703", "123456701", "123456702", "123456704"],
        ),
        ("?team=team_a", &["123456702"]),
    ];
    for (query, expected) in cases {
        let body = api
            .json(
                &format!("/api/battles/{JITA}/killmails{query}"),
                StatusCode::OK,
            )
            .await;
        assert_eq!(ids(&body["killmails"], "killmailId"), expected, "{query}");
        assert_eq!(body["pagination"]["total"], expected.len(), "{query}");
    }
    let body = api
        .json(
            &format!("/api/battles/{JITA}/killmails?limit=1&offset=2"),
            StatusCode::OK,
        )
        .await;
    assert_shape(&example(spec::KILLMAILS), &body, "");
    assert_eq!(
        body,
        json!({
            "killmails": [{
                "killmailId": 123456703, "killmailTime": "2025-11-25T10:00:00Z", "systemId": 30000142,
                "victimCharacterId": 87654321, "victimAllianceId": 99005678, "victimShipTypeId": 638,
                "victimTeam": "team_b", "iskDestroyed": 70000000000i64
            }],
            "pagination": {"total": 4, "limit": 1, "offset": 2}
        })
    );
    api.stop().await;
}

#[tokio::test]
async fn killmail_lookup_finds_its_battle() {
    let api = TestApi::seeded().await;
    let body = api
        .json("/api/killmails/123456703/battle", StatusCode::OK)
        .await;
    assert_eq!(body, json!({"killmailId": 123456703, "battleId": JITA}));
    api.json("/api/killmails/98000001/battle", StatusCode::NOT_FOUND)
        .await;
    api.json("/api/killmails/1/battle", StatusCode::NOT_FOUND)
        .await;
    api.bad_request("/api/killmails/abc/battle", "id").await;
    api.bad_request("/api/killmails/-5/battle", "id").await;
    api.stop().await;
}

#[tokio::test]
async fn a_merged_battle_redirects_to_the_one_that_continues_it() {
    let api = TestApi::seeded().await;
    for (suffix, query) in [
        ("", ""),
        ("/participants", "?team=team_a"),
        ("/killmails", "?sort=-time"),
    ] {
        let response = api
            .get(&format!("/api/battles/{MERGED_INTO_JITA}{suffix}{query}"))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::PERMANENT_REDIRECT,
            "{suffix}"
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("/api/battles/{JITA}{suffix}{query}"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["battleId"], JITA);
        assert_eq!(body["error"], "merged");
        api.json(&location, StatusCode::OK).await;
    }
    api.stop().await;
}

#[tokio::test]
async fn unknown_and_deleted_battles_are_404() {
    let api = TestApi::seeded().await;
    let unknown = "00000000-0000-0000-0000-000000000001";
    for id in [unknown, DELETED, MERGED_INTO_DELETED] {
        for suffix in ["", "/participants", "/killmails"] {
            let body = api
                .json(&format!("/api/battles/{id}{suffix}"), StatusCode::NOT_FOUND)
                .await;
            assert_eq!(body["error"], "not_found", "{id}{suffix}");
        }
    }
    let body = api.json("/api/nothing/here", StatusCode::NOT_FOUND).await;
    assert_eq!(body["error"], "not_found");
    api.stop().await;
}

#[tokio::test]
async fn malformed_parameters_are_400_naming_the_parameter() {
    let api = TestApi::seeded().await;
    let cases = [
        ("/api/battles?limit=101", "limit"),
        ("/api/battles?limit=0", "limit"),
        ("/api/battles?limit=ten", "limit"),
        ("/api/battles?offset=-1", "offset"),
        ("/api/battles?sort=duration", "sort"),
        ("/api/battles?sort=-", "sort"),
        ("/api/battles?status=finished", "status"),
        ("/api/battles?startDate=2025-02-30", "startDate"),
        ("/api/battles?endDate=tomorrow", "endDate"),
        (
            "/api/battles?startDate=2025-11-26&endDate=2025-11-25",
            "endDate",
        ),
        ("/api/battles?systemId=Jita", "systemId"),
        ("/api/battles?regionId=1.5", "regionId"),
        ("/api/battles?allianceId=0", "allianceId"),
        ("/api/battles?minIsk=-1", "minIsk"),
        ("/api/battles?minPilots=99999999999", "minPilots"),
        ("/api/battles?bogus=1", "bogus"),
        ("/api/battles?limit=1&limit=2", "limit"),
        ("/api/battles?systemId=", "systemId"),
        ("/api/battles/not-a-uuid", "id"),
        ("/api/battles/12345/participants", "id"),
        ("/api/battles/zzz/killmails", "id"),
        (&format!("/api/battles/{JITA}?x=1"), "x"),
        (
            &format!("/api/battles/{JITA}/participants?team=team_c"),
            "team",
        ),
        (
            &format!("/api/battles/{JITA}/participants?sort=time"),
            "sort",
        ),
        (
            &format!("/api/battles/{JITA}/participants?allianceId=x"),
            "allianceId",
        ),
        (
            &format!("/api/battles/{JITA}/participants?limit=500"),
            "limit",
        ),
        (&format!("/api/battles/{JITA}/killmails?sort=kills"), "sort"),
        (&format!("/api/battles/{JITA}/killmails?team=a"), "team"),
        (&format!("/api/battles/{JITA}/killmails?offset=x"), "offset"),
        ("/api/battles/health?verbose=1", "verbose"),
    ];
    for (path, parameter) in cases {
        api.bad_request(path, parameter).await;
    }
    api.stop().await;
}
