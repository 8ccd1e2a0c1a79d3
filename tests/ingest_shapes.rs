//! Ingest of real records in each input shape (fixtures copied from ../shared/data): shape
//! detection, field mapping, SDE enrichment, ISK from zKillboard or estimated from prices, and
//! typed rejections of bad records.

use battles::ingest::value::Prices;
use battles::ingest::{parse_record, IngestContext, Parsed, RejectReason, Shape};
use chrono::{TimeZone, Utc};
use serde_json::Value;

const ESI: &str = include_str!("fixtures/esi_96953365.json");
const ESI_NESTED: &str = include_str!("fixtures/esi_nested_96954164.json");
const ESI_ZKB: &str = include_str!("fixtures/esi_zkb_78560358.json");
const REDISQ: &str = include_str!("fixtures/redisq_78560358.json");
const ENRICHED: &str = include_str!("fixtures/enriched_spec_example.json");

fn ctx() -> IngestContext {
    let mut ctx = IngestContext::new(3600);
    ctx.fixed_now = Some(Utc.with_ymd_and_hms(2025, 11, 27, 0, 0, 0).unwrap());
    ctx
}

fn parse(s: &str) -> Parsed {
    parse_record(s.as_bytes(), &ctx()).unwrap_or_else(|e| panic!("rejected: {e}"))
}

fn reject(s: &str) -> RejectReason {
    parse_record(s.as_bytes(), &ctx()).expect_err("should be rejected")
}

/// The record with `edit` applied to its JSON tree (for building bad variants of real records).
fn edited(s: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(s).unwrap();
    edit(&mut v);
    v.to_string()
}

/// Sum of (destroyed + dropped) x price over items, containers included: an oracle independent
/// of the parser's streaming valuation.
fn item_value(items: &Value) -> (f64, f64) {
    let prices = Prices::embedded();
    let mut totals = (0.0, 0.0);
    for item in items.as_array().into_iter().flatten() {
        let price = prices
            .get(item["item_type_id"].as_i64().unwrap())
            .unwrap_or(0.0);
        totals.0 += item["quantity_destroyed"].as_i64().unwrap_or(0) as f64 * price;
        totals.1 += item["quantity_dropped"].as_i64().unwrap_or(0) as f64 * price;
        let inner = item_value(&item["items"]);
        totals.0 += inner.0;
        totals.1 += inner.1;
    }
    totals
}

#[test]
fn esi_record_is_enriched_from_the_sde_and_valued_from_prices() {
    let p = parse(ESI);
    assert_eq!(p.shape, Shape::Esi);
    let km = p.killmail;
    let raw: Value = serde_json::from_str(ESI).unwrap();
    assert_eq!(km.killmail_id, 96953365);
    assert_eq!(
        km.killmail_hash.as_deref(),
        Some("5d858e4f11120522d957c684fe545a1e33b90d20")
    );
    assert_eq!(
        km.killmail_time,
        Utc.with_ymd_and_hms(2021, 11, 27, 0, 0, 0).unwrap()
    );
    assert_eq!(km.solar_system_id, 30002765);
    let u = battles_dataflow::Universe::embedded();
    let sys = u.system(30002765).unwrap();
    assert_eq!(km.solar_system_name, sys.name);
    assert_eq!(km.constellation_id, sys.constellation_id);
    assert_eq!(km.region_id, sys.region_id);
    assert_eq!(Some(km.region_name.as_str()), u.region_name(sys.region_id));
    let ship = u.item_type(606).unwrap();
    assert_eq!(km.victim.ship_type_id, 606);
    assert_eq!(
        km.victim.ship_type_name.as_deref(),
        Some(ship.name.as_str())
    );
    assert_eq!(km.victim.ship_group_id, Some(ship.group_id));
    assert_eq!(km.victim.ship_category_id, Some(6));
    assert_eq!(km.victim.character_id, Some(2117917582));
    assert_eq!(km.victim.alliance_id, Some(99010931));
    assert_eq!(km.victim.damage_taken, 627);
    assert_eq!(km.victim.character_name, None, "ESI carries no names");
    assert_eq!(km.attackers.len(), 1);
    let a = &km.attackers[0];
    assert_eq!(
        (a.character_id, a.ship_type_id, a.weapon_type_id),
        (Some(148333785), Some(3756), Some(3146))
    );
    assert_eq!(
        a.ship_type_name.as_deref(),
        Some(u.item_type(3756).unwrap().name.as_str())
    );
    assert!(a.final_blow);
    assert_eq!(a.damage_done, 627);

    let (destroyed, dropped) = item_value(&raw["victim"]["items"]);
    let hull = Prices::embedded().get(606).unwrap();
    assert!(km.isk_estimated);
    assert_eq!(km.isk_value, (hull + destroyed + dropped).round() as i64);
    assert_eq!(km.destroyed_value, Some((hull + destroyed).round() as i64));
    assert_eq!(km.dropped_value, Some(dropped.round() as i64));
    assert_eq!((km.npc, km.solo, km.awox), (None, None, None));
}

#[test]
fn items_inside_containers_are_valued() {
    let km = parse(ESI_NESTED).killmail;
    let raw: Value = serde_json::from_str(ESI_NESTED).unwrap();
    let (destroyed, dropped) = item_value(&raw["victim"]["items"]);
    let hull = Prices::embedded().get(653).unwrap();
    assert_eq!(km.isk_value, (hull + destroyed + dropped).round() as i64);
    // The container's contents (9,750 units of type 16273) are part of it.
    let contents = 9750.0 * Prices::embedded().get(16273).unwrap();
    assert!(contents > 0.0);
    let (top_destroyed, _) = {
        let mut flat = raw["victim"]["items"].clone();
        for item in flat.as_array_mut().unwrap() {
            item.as_object_mut().unwrap().remove("items");
        }
        item_value(&flat)
    };
    assert_eq!(
        km.destroyed_value,
        Some((hull + top_destroyed + contents).round() as i64)
    );
}

#[test]
fn esi_with_zkb_block_takes_zkillboard_values() {
    let p = parse(ESI_ZKB);
    assert_eq!(p.shape, Shape::Esi);
    let km = p.killmail;
    assert_eq!(km.killmail_id, 78560358);
    assert!(!km.isk_estimated);
    assert_eq!(km.isk_value, 7_359_611, "totalValue 7359611.48 rounded");
    assert_eq!(km.fitted_value, Some(2_243_974));
    assert_eq!(
        km.killmail_hash.as_deref(),
        Some("7a942007d806fb9723c7b7234dab0e1045b5f59b")
    );
    assert_eq!(
        (km.npc, km.solo, km.awox),
        (Some(true), Some(false), Some(false))
    );
    // An attacker without character (an NPC) stays without one.
    assert_eq!(km.attackers[1].character_id, None);
    assert_eq!(km.attackers[1].faction_id, Some(500024));
}

#[test]
fn redisq_package_reads_like_esi_with_zkb() {
    let p = parse(REDISQ);
    assert_eq!(p.shape, Shape::RedisQ);
    let esi = parse(ESI_ZKB).killmail;
    assert_eq!(p.killmail, esi);
}

#[test]
fn enriched_record_keeps_its_names_and_values() {
    let p = parse(ENRICHED);
    assert_eq!(p.shape, Shape::Enriched);
    let km = p.killmail;
    assert_eq!(km.killmail_id, 130016217);
    assert_eq!(km.solar_system_name, "Jita");
    assert_eq!((km.constellation_id, km.region_id), (20000020, 10000002));
    assert_eq!(km.region_name, "The Forge");
    assert_eq!(km.victim.character_name.as_deref(), Some("Some Pilot"));
    assert_eq!(km.victim.ship_type_name.as_deref(), Some("Rifter"));
    assert_eq!(km.victim.ship_group_id, Some(25));
    assert_eq!(km.victim.ship_category_id, Some(6), "filled from the SDE");
    assert_eq!(
        km.attackers[0].alliance_name.as_deref(),
        Some("Other Alliance")
    );
    assert_eq!(km.isk_value, 309_823_801);
    assert!(!km.isk_estimated);
    assert_eq!(km.dropped_value, Some(82_017_734));
    assert_eq!(km.solo, Some(true));
}

#[test]
fn enriched_record_without_names_or_value_is_completed() {
    let bare = edited(ENRICHED, |v| {
        for key in [
            "solarSystemName",
            "constellationId",
            "regionId",
            "regionName",
            "iskValue",
            "droppedValue",
            "destroyedValue",
            "fittedValue",
        ] {
            v.as_object_mut().unwrap().remove(key);
        }
        v["victim"].as_object_mut().unwrap().remove("shipTypeName");
        v["attackers"][0]
            .as_object_mut()
            .unwrap()
            .remove("shipTypeName");
    });
    let km = parse(&bare).killmail;
    assert_eq!(km.solar_system_name, "Jita");
    assert_eq!(km.region_id, 10000002);
    assert_eq!(km.region_name, "The Forge");
    assert_eq!(km.victim.ship_type_name.as_deref(), Some("Rifter"));
    assert_eq!(km.attackers[0].ship_type_name.as_deref(), Some("Raven"));
    assert!(km.isk_estimated);
    assert_eq!(km.isk_value, 314_000, "hull price only: no items listed");
    assert_eq!(km.dropped_value, None);
}

#[test]
fn unknown_system_needs_a_region() {
    let unknown = edited(ENRICHED, |v| {
        v["solarSystemId"] = 31999999.into();
        v.as_object_mut().unwrap().remove("regionId");
    });
    assert_eq!(reject(&unknown), RejectReason::UnknownSystem(31999999));
    let with_region = edited(ENRICHED, |v| v["solarSystemId"] = 31999999.into());
    let km = parse(&with_region).killmail;
    assert_eq!((km.solar_system_id, km.region_id), (31999999, 10000002));
    let esi_unknown = edited(ESI, |v| v["solar_system_id"] = 31999999.into());
    assert_eq!(reject(&esi_unknown), RejectReason::UnknownSystem(31999999));
}

#[test]
fn bad_records_get_typed_reasons() {
    let cases: Vec<(String, RejectReason)> = vec![
        (
            ESI[..100].to_string(),
            RejectReason::InvalidJson(String::new()),
        ),
        (
            edited(ESI, |v| {
                v.as_object_mut().unwrap().remove("killmail_time");
            }),
            RejectReason::MissingField("killmail_time".into()),
        ),
        (
            edited(ENRICHED, |v| {
                v.as_object_mut().unwrap().remove("victim");
            }),
            RejectReason::MissingField("victim".into()),
        ),
        (
            edited(ESI, |v| {
                v["victim"].as_object_mut().unwrap().remove("ship_type_id");
            }),
            RejectReason::MissingField("victim.ship_type_id".into()),
        ),
        (
            edited(ENRICHED, |v| {
                v["victim"]["shipTypeId"] = Value::Null;
            }),
            RejectReason::MissingField("victim.shipTypeId".into()),
        ),
        (
            edited(ESI, |v| v["solar_system_id"] = "Jita".into()),
            RejectReason::WrongType("solar_system_id".into()),
        ),
        (
            edited(ESI, |v| v["attackers"][0]["damage_done"] = 1.5.into()),
            RejectReason::WrongType("attackers[0].damage_done".into()),
        ),
        (
            edited(ESI, |v| v["killmail_time"] = "last tuesday".into()),
            RejectReason::InvalidTimestamp("last tuesday".into()),
        ),
        (
            edited(ESI, |v| v["attackers"] = Value::Array(vec![])),
            RejectReason::NoAttackers,
        ),
        (
            edited(ESI, |v| v["victim"]["damage_taken"] = (-5).into()),
            RejectReason::NegativeValue("victim.damage_taken".into()),
        ),
        (
            edited(ENRICHED, |v| v["iskValue"] = (-1.0).into()),
            RejectReason::NegativeValue("iskValue".into()),
        ),
        (
            edited(ESI_ZKB, |v| v["zkb"]["totalValue"] = (-1.0).into()),
            RejectReason::NegativeValue("zkb.totalValue".into()),
        ),
        (
            edited(ESI, |v| {
                v["victim"]["items"][0]["quantity_dropped"] = (-1).into()
            }),
            RejectReason::NegativeValue("victim.items.quantity_destroyed/quantity_dropped".into()),
        ),
        (
            edited(ESI, |v| v["killmail_id"] = 0.into()),
            RejectReason::NonPositiveId("killmail_id".into()),
        ),
        (
            r#"{"hello": "world"}"#.to_string(),
            RejectReason::UnknownShape(String::new()),
        ),
        (
            "[1,2,3]".to_string(),
            RejectReason::UnknownShape(String::new()),
        ),
        (
            r#"{"package": null}"#.to_string(),
            RejectReason::EmptyPackage,
        ),
        (
            r#"{"package": {"killID": 5, "zkb": {"totalValue": 1}}}"#.to_string(),
            RejectReason::ZkbOnly { killmail_id: 5 },
        ),
        (
            r#"{"killmail_id": 5, "zkb": {"totalValue": 1}}"#.to_string(),
            RejectReason::ZkbOnly { killmail_id: 5 },
        ),
    ];
    for (record, expected) in cases {
        let got = reject(&record);
        match (&expected, &got) {
            (RejectReason::InvalidJson(_), RejectReason::InvalidJson(_))
            | (RejectReason::UnknownShape(_), RejectReason::UnknownShape(_)) => {}
            _ => assert_eq!(got, expected, "record: {record}"),
        }
        assert!(!got.to_string().is_empty());
    }
}

#[test]
fn times_outside_eve_history_are_rejected() {
    let before = edited(ESI, |v| v["killmail_time"] = "2003-05-05T23:59:59Z".into());
    assert_eq!(reject(&before).code(), "time_out_of_range");
    // fixed now is 2025-11-27T00:00:00Z; skew one hour.
    let within = edited(ESI, |v| v["killmail_time"] = "2025-11-27T00:59:59Z".into());
    parse(&within);
    let beyond = edited(ESI, |v| v["killmail_time"] = "2025-11-27T01:00:01Z".into());
    assert!(matches!(
        reject(&beyond),
        RejectReason::TimeOutOfRange {
            max_skew_secs: 3600,
            ..
        }
    ));
    let mut lenient = ctx();
    lenient.max_future_skew = chrono::Duration::days(1);
    assert!(parse_record(beyond.as_bytes(), &lenient).is_ok());
}

#[test]
fn mixed_shapes_are_refused() {
    let both = edited(ESI, |v| v["killmailId"] = 96953365.into());
    assert_eq!(reject(&both).code(), "unknown_shape");
}

/// ISK and damage are bounded where they enter: the documented maximum is accepted exactly,
/// anything above it (the 9.2e18 that once wrapped a battle's sums) is rejected with a typed
/// reason naming the field and the maximum.
#[test]
fn values_above_the_documented_maximum_are_rejected_at_the_bounds() {
    use battles_dataflow::killmail::{MAX_DAMAGE, MAX_ISK};
    let at_max = parse(&edited(ENRICHED, |v| v["iskValue"] = MAX_ISK.into()));
    assert_eq!(at_max.killmail.isk_value, MAX_ISK);
    for (edit, field, max) in [
        (
            edited(ENRICHED, |v| v["iskValue"] = 9.2e18.into()),
            "iskValue",
            MAX_ISK,
        ),
        (
            edited(ENRICHED, |v| v["iskValue"] = (MAX_ISK + 1).into()),
            "iskValue",
            MAX_ISK,
        ),
        (
            edited(ESI_ZKB, |v| v["zkb"]["totalValue"] = 9.2e18.into()),
            "zkb.totalValue",
            MAX_ISK,
        ),
        (
            edited(ESI, |v| {
                v["victim"]["damage_taken"] = (MAX_DAMAGE + 1).into()
            }),
            "victim.damage_taken",
            MAX_DAMAGE,
        ),
        (
            edited(ESI, |v| {
                v["attackers"][0]["damage_done"] = (MAX_DAMAGE + 1).into()
            }),
            "attackers.damage_done",
            MAX_DAMAGE,
        ),
    ] {
        let reason = reject(&edit);
        assert_eq!(
            reason,
            RejectReason::ValueTooLarge {
                field: field.into(),
                max
            }
        );
        assert_eq!(reason.code(), "value_too_large");
    }
    let at_max = parse(&edited(ESI, |v| {
        v["victim"]["damage_taken"] = MAX_DAMAGE.into()
    }));
    assert_eq!(at_max.killmail.victim.damage_taken, MAX_DAMAGE);
}
