//! The web pages rendered from a seeded database (the API's fixture): the list with its
//! filters, sorts and bad input; the report with both sides, alliances, corporations, ships,
//! timeline, systems, top combatants, third parties and zKillboard links; the characters and
//! kills pages; the search box; 400/404/308 as pages.

mod common;

use common::*;
use reqwest::StatusCode;

/// GET `path` expecting `status` and an HTML page; its text.
async fn page(api: &TestApi, path: &str, status: StatusCode) -> String {
    let response = api.get(path).await;
    assert_eq!(response.status(), status, "GET {path}");
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/html"), "GET {path}: {kind}");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<!DOCTYPE html>"), "GET {path}: {body}");
    body
}

/// The battle ids of the main list table (`#battles`), in order.
fn listed(body: &str) -> Vec<String> {
    let main = &body[body.find("id=\"battles\"").expect("the battles section")..];
    main.split("data-id=\"")
        .skip(1)
        .map(|s| s[..36].to_owned())
        .collect()
}

/// The text of the element with `id` up to the next section (enough to check a side).
fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &body[start..];
    let end = rest[1..].find("<section").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[tokio::test]
async fn the_list_shows_visible_battles_filters_and_sorts() {
    let api = TestApi::seeded().await;
    let front = page(&api, "/", StatusCode::OK).await;
    assert_eq!(listed(&front), [AMARR, JITA, OIVNH, JORUND]);
    assert!(!front.contains(DELETED), "a deleted battle is never shown");
    for text in [
        "Largest battles",
        "Recent battles",
        "Jita",
        "The Forge",
        "Jorund",
        "Curse",
    ] {
        assert!(front.contains(text), "{text}");
    }
    let largest = section(&front, "largest");
    let jita = largest.find(JITA).expect("Jita among the largest");
    let amarr = largest.find(AMARR).expect("Amarr among the largest");
    assert!(jita < amarr, "largest first");

    let cases: [(&str, &[&str]); 7] = [
        ("/?regionId=10000012", &[JORUND]),
        ("/?systemId=30000142", &[JITA]),
        ("/?allianceId=99001234&status=closed", &[JITA]),
        ("/?minIsk=100000000", &[JITA, JORUND]),
        ("/?minPilots=4&sort=pilots", &[OIVNH, JITA]),
        ("/?startDate=2025-01-01&endDate=&regionId=", &[AMARR, JITA]),
        ("/?sort=-isk_destroyed", &[JITA, JORUND, OIVNH, AMARR]),
    ];
    for (path, expected) in cases {
        let body = page(&api, path, StatusCode::OK).await;
        assert_eq!(listed(&body), expected, "{path}");
        assert!(
            !body.contains("Largest battles"),
            "{path}: only the front page"
        );
    }
    let filtered = page(&api, "/?regionId=10000012&status=closed", StatusCode::OK).await;
    assert!(
        filtered.contains("name=\"regionId\" value=\"10000012\""),
        "the form keeps the filter"
    );
    assert!(filtered.contains("<option value=\"closed\" selected>"));
    let paged = page(&api, "/?limit=2", StatusCode::OK).await;
    assert_eq!(listed(&paged), [AMARR, JITA]);
    assert!(
        paged.contains("href=\"?limit=2&amp;offset=2\""),
        "next page link"
    );
    let second = page(&api, "/?limit=2&offset=2", StatusCode::OK).await;
    assert_eq!(listed(&second), [OIVNH, JORUND]);
    assert!(second.contains("rel=\"prev\""));
    assert!(!second.contains("rel=\"next\""));
    api.stop().await;
}

#[tokio::test]
async fn bad_list_input_is_a_400_page_naming_the_parameter() {
    let api = TestApi::seeded().await;
    for (path, parameter) in [
        ("/?limit=0", "limit"),
        ("/?limit=101", "limit"),
        ("/?startDate=yesterday", "startDate"),
        ("/?startDate=2025-11-26&endDate=2025-11-25", "endDate"),
        ("/?regionId=abc", "regionId"),
        ("/?status=lost", "status"),
        ("/?sort=name", "sort"),
        ("/?bogus=1", "bogus"),
        ("/?minIsk=-5", "minIsk"),
    ] {
        let body = page(&api, path, StatusCode::BAD_REQUEST).await;
        assert!(
            body.contains(&format!("<code class=\"param\">{parameter}</code>")),
            "{path}: {body}"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn the_report_shows_both_sides_and_every_section() {
    let api = TestApi::seeded().await;
    let db = api.db.connect().await.unwrap();
    db.execute(
        "INSERT INTO battle_third_parties (battle_id, character_id) VALUES ($1::text::uuid, 87654321)",
        &[&JITA],
    )
    .await
    .unwrap();
    let body = page(&api, &format!("/battles/{JITA}"), StatusCode::OK).await;
    for text in [
        "Battle in Jita",
        "The Forge",
        "2025-11-25 09:00",
        "2025-11-25 10:30",
        "1h 30m",
        "Decisive: Team A won",
    ] {
        assert!(body.contains(text), "header: {text}");
    }
    let a = section(&body, "team-a");
    assert!(
        a.contains("<dd class=\"isk-destroyed\">120.00b</dd>"),
        "{a}"
    );
    assert!(a.contains("<dd class=\"isk-lost\">30.00b</dd>"), "{a}");
    assert!(a.contains("<dd class=\"efficiency\">80.0%</dd>"), "{a}");
    assert!(a.contains("<dd class=\"pilots\">3</dd>"), "{a}");
    assert!(a.contains("winner"), "{a}");
    assert!(a.contains("Rifter"), "ship fielded: {a}");
    let b = section(&body, "team-b");
    assert!(b.contains("<dd class=\"isk-destroyed\">30.00b</dd>"), "{b}");
    assert!(b.contains("<dd class=\"efficiency\">20.0%</dd>"), "{b}");
    assert!(b.contains("<dd class=\"ships-lost\">3</dd>"), "{b}");
    assert!(b.contains("Capsule"), "ship lost: {b}");

    let alliances = section(&body, "alliances");
    assert!(alliances.contains("href=\"/?allianceId=99001234\">Test Alliance</a>"));
    assert!(alliances.contains("Enemy Alliance"));
    let corporations = section(&body, "corporations");
    assert!(
        corporations.contains("<td>Test Corp</td><td class=\"num\">2</td>"),
        "{corporations}"
    );
    assert!(corporations.contains("<td>Enemy Corp</td><td class=\"num\">2</td>"));
    assert!(corporations.contains("<td>NPC Corp</td><td class=\"num\">1</td>"));

    let timeline = section(&body, "timeline");
    assert!(timeline.contains("id=\"timeline-kills\""));
    assert!(timeline.contains("id=\"timeline-isk\""));
    assert_eq!(
        timeline.matches("class=\"bar-a\"").count(),
        6,
        "3 minutes with team A kills, twice"
    );
    assert_eq!(timeline.matches("class=\"bar-b\"").count(), 2);
    assert!(timeline.contains("09:15 team A: 1"), "{timeline}");
    assert!(timeline.contains("09:30 team B: 30.00b"), "{timeline}");

    let systems = section(&body, "systems");
    assert!(systems.contains("href=\"/?systemId=30000142\">Jita</a>"));
    assert!(
        systems.contains("<td class=\"num\">0.9</td><td class=\"num\">4</td>"),
        "{systems}"
    );
    let top = section(&body, "top");
    assert!(top.contains("Jane Smith") && top.contains("Bob Jones"));
    let third = section(&body, "third-parties");
    assert!(
        third.contains("3rd party") && third.contains("Bob Jones"),
        "{third}"
    );
    assert!(
        top.contains("Bob Jones</a> <span class=\"badge third\""),
        "marked in the tables: {top}"
    );
    let kills = section(&body, "top-kills");
    assert!(kills.contains("href=\"https://zkillboard.com/kill/123456703/\""));
    assert!(
        kills.find("123456703").unwrap() < kills.find("123456701").unwrap(),
        "most valuable first"
    );
    assert!(kills.contains("Bob Jones"), "victims named");
    api.stop().await;
}

#[tokio::test]
async fn unnamed_entities_show_their_ids() {
    let api = TestApi::seeded().await;
    let body = page(&api, &format!("/battles/{JORUND}"), StatusCode::OK).await;
    assert!(body.contains("Battle in Jorund"));
    assert!(body.contains("#99003581"), "unnamed alliance as its id");
    assert!(body.contains("#98000001"), "unnamed corporation as its id");
    assert!(body.contains("#2112625428"), "unnamed pilot as its id");
    assert!(body.contains("Indecisive"));
    api.stop().await;
}

#[tokio::test]
async fn ids_404_merged_308_bad_400() {
    let api = TestApi::seeded().await;
    let response = api.get(&format!("/battles/{MERGED_INTO_JITA}")).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        format!("/battles/{JITA}").as_str()
    );
    let response = api
        .get(&format!(
            "/battles/{MERGED_INTO_JITA}/characters?team=team_a"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        format!("/battles/{JITA}/characters?team=team_a").as_str()
    );
    let response = api.get(&format!("/battles/{MERGED_INTO_JITA}/kills")).await;
    assert_eq!(
        response.headers()["location"],
        format!("/battles/{JITA}/kills").as_str()
    );
    for path in [
        format!("/battles/{DELETED}"),
        format!("/battles/{MERGED_INTO_DELETED}"),
        "/battles/99999999-9999-9999-9999-999999999999".to_owned(),
        format!("/battles/{DELETED}/kills"),
        "/no/such/page".to_owned(),
    ] {
        page(&api, &path, StatusCode::NOT_FOUND).await;
    }
    let api_404 = api.get("/api/battles/x/y/z").await;
    assert_eq!(api_404.status(), StatusCode::NOT_FOUND);
    assert!(api_404.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    for (path, parameter) in [
        ("/battles/not-a-uuid".to_owned(), "id"),
        (format!("/battles/{JITA}?tab=1"), "tab"),
        (format!("/battles/{JITA}/kills?team=team_c"), "team"),
        (format!("/battles/{JITA}/kills?limit=1000"), "limit"),
        (format!("/battles/{JITA}/characters?sort=name"), "sort"),
        (
            format!("/battles/{JITA}/characters?allianceId=x"),
            "allianceId",
        ),
        ("/search".to_owned(), "q"),
        ("/search?q=1&x=2".to_owned(), "x"),
    ] {
        let body = page(&api, &path, StatusCode::BAD_REQUEST).await;
        assert!(
            body.contains(&format!("<code class=\"param\">{parameter}</code>")),
            "{path}: {body}"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn characters_and_kills_pages() {
    let api = TestApi::seeded().await;
    let all = page(&api, &format!("/battles/{JITA}/characters"), StatusCode::OK).await;
    for name in [
        "Jane Smith",
        "John Doe",
        "Solo Pilot",
        "Bob Jones",
        "Alice Enemy",
    ] {
        assert!(all.contains(name), "{name}");
    }
    assert!(
        all.find("Jane Smith").unwrap() < all.find("John Doe").unwrap(),
        "most kills first"
    );
    assert!(all.contains("Rifter, Hyperion"), "ships flown");
    let b = page(
        &api,
        &format!("/battles/{JITA}/characters?team=team_b&team_x=1"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(b.contains("team_x"));
    let b = page(
        &api,
        &format!("/battles/{JITA}/characters?team=team_b"),
        StatusCode::OK,
    )
    .await;
    assert!(b.contains("Bob Jones") && b.contains("Alice Enemy"));
    assert!(!b.contains("Jane Smith"));
    let paged = page(
        &api,
        &format!("/battles/{JITA}/characters?limit=2&offset=2"),
        StatusCode::OK,
    )
    .await;
    assert!(paged.contains("3–4 of 5"), "{paged}");

    let kills = page(&api, &format!("/battles/{JITA}/kills"), StatusCode::OK).await;
    assert_eq!(kills.matches("<tr class=\"kill ").count(), 4);
    for id in [123456701, 123456702, 123456703, 123456704] {
        assert!(
            kills.contains(&format!("href=\"https://zkillboard.com/kill/{id}/\"")),
            "{id}"
        );
    }
    let a_losses = page(
        &api,
        &format!("/battles/{JITA}/kills?team=team_a"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(a_losses.matches("<tr class=\"kill ").count(), 1);
    assert!(a_losses.contains("Solo Pilot"));
    api.stop().await;
}

#[tokio::test]
async fn search_finds_killmails_systems_alliances_and_battles() {
    let api = TestApi::seeded().await;
    for (q, location) in [
        ("123456702", format!("/battles/{JITA}")),
        ("96000001", format!("/battles/{JORUND}")),
        ("jita", "/?systemId=30000142".to_owned()),
        ("  Jorund ", "/?systemId=30001046".to_owned()),
        ("30002187", "/?systemId=30002187".to_owned()),
        ("99001234", "/?allianceId=99001234".to_owned()),
        ("test alliance", "/?allianceId=99001234".to_owned()),
        (JORUND, format!("/battles/{JORUND}")),
    ] {
        let query: String = form_urlencoded_q(q);
        let response = api.get(&format!("/search?q={query}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{q}");
        assert_eq!(response.headers()["location"], location.as_str(), "{q}");
    }
    for q in ["no-such-place", "98000001", "0"] {
        page(&api, &format!("/search?q={q}"), StatusCode::NOT_FOUND).await;
    }
    api.stop().await;
}

fn form_urlencoded_q(q: &str) -> String {
    q.replace(' ', "+")
}
