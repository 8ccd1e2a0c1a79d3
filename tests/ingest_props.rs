//! Property tests of ingest: arbitrary bytes, truncated and mutated real records never panic and
//! every refusal carries a reason; valid killmails serialized as enriched JSON parse back equal.

use battles::ingest::{parse_record, IngestContext, RejectReason, Rejection, Shape};
use battles::sources::SourcePosition;
use battles_dataflow::{Attacker, Killmail, Victim};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

const FIXTURES: [&str; 5] = [
    include_str!("fixtures/esi_96953365.json"),
    include_str!("fixtures/esi_nested_96954164.json"),
    include_str!("fixtures/esi_zkb_78560358.json"),
    include_str!("fixtures/redisq_78560358.json"),
    include_str!("fixtures/enriched_spec_example.json"),
];

fn ctx() -> IngestContext {
    let mut ctx = IngestContext::new(3600);
    ctx.fixed_now = Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    ctx
}

/// A refusal is a usable dead letter: it has a code, a message, and serializes.
fn assert_usable(reason: &RejectReason, raw: &[u8]) {
    assert!(!reason.code().is_empty());
    assert!(!reason.to_string().is_empty());
    let rejection = Rejection::new(reason.clone(), SourcePosition::Stdin { line: 1 }, raw);
    let json = serde_json::to_string(&rejection).unwrap();
    let back: Rejection = serde_json::from_str(&json).unwrap();
    assert_eq!(&back.reason, reason);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_are_rejected_with_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let reason = parse_record(&bytes, &ctx()).expect_err("random bytes are no killmail");
        assert_usable(&reason, &bytes);
    }

    #[test]
    fn truncated_real_records_are_invalid_json(which in 0..FIXTURES.len(), cut in 0.0..1.0f64) {
        let record = FIXTURES[which].trim_end().as_bytes();
        let len = ((record.len() as f64) * cut) as usize;
        let reason = parse_record(&record[..len], &ctx()).expect_err("a strict prefix is incomplete");
        prop_assert_eq!(reason.code(), "invalid_json");
        assert_usable(&reason, &record[..len]);
    }

    #[test]
    fn mutated_real_records_never_panic(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((0.0..1.0f64, any::<u8>()), 1..6),
    ) {
        let mut record = FIXTURES[which].as_bytes().to_vec();
        for (at, byte) in edits {
            let last = record.len() - 1;
            let i = ((record.len() as f64) * at) as usize;
            record[i.min(last)] = byte;
        }
        match parse_record(&record, &ctx()) {
            Ok(p) => prop_assert!(p.killmail.killmail_id > 0 && !p.killmail.attackers.is_empty()),
            Err(reason) => assert_usable(&reason, &record),
        }
    }

    #[test]
    fn mutated_json_values_never_panic(which in 0..FIXTURES.len(), path_pick in any::<u64>(), replacement in json_scalar()) {
        let mut v: serde_json::Value = serde_json::from_str(FIXTURES[which]).unwrap();
        replace_one_leaf(&mut v, path_pick, replacement);
        let bytes = v.to_string().into_bytes();
        match parse_record(&bytes, &ctx()) {
            Ok(p) => prop_assert!(p.killmail.killmail_id > 0),
            Err(reason) => assert_usable(&reason, &bytes),
        }
    }

    #[test]
    fn enriched_serialization_round_trips(km in killmail()) {
        let json = serde_json::to_vec(&km).unwrap();
        let parsed = parse_record(&json, &ctx());
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&json))))?;
        prop_assert_eq!(parsed.shape, Shape::Enriched);
        prop_assert_eq!(parsed.killmail, km);
    }
}

/// Scalars of every JSON type, including the awkward ones.
fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

/// Replaces the `pick`-th leaf (modulo the number of leaves) of `v`.
fn replace_one_leaf(v: &mut serde_json::Value, pick: u64, with: serde_json::Value) {
    fn leaves(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::Array(a) => a.iter().map(leaves).sum::<u64>().max(1),
            serde_json::Value::Object(o) => o.values().map(leaves).sum::<u64>().max(1),
            _ => 1,
        }
    }
    fn go(v: &mut serde_json::Value, mut n: u64, with: serde_json::Value) {
        let children: Vec<&mut serde_json::Value> = match v {
            serde_json::Value::Array(a) if !a.is_empty() => a.iter_mut().collect(),
            serde_json::Value::Object(o) if !o.is_empty() => o.values_mut().collect(),
            _ => {
                *v = with;
                return;
            }
        };
        for child in children {
            let size = leaves(child);
            if n < size {
                return go(child, n, with);
            }
            n -= size;
        }
    }
    let total = leaves(v);
    go(v, pick % total, with);
}

fn name() -> impl Strategy<Value = String> {
    // Non-empty names with quotes, backslashes, unicode and control characters.
    "[a-zA-Z0-9 '\"\\\\\u{e9}\u{4e2d}\u{1f680}\n\t-]{1,24}"
}

fn id() -> impl Strategy<Value = i64> {
    1i64..4_000_000_000
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    let launch = Utc
        .with_ymd_and_hms(2003, 5, 6, 0, 0, 0)
        .unwrap()
        .timestamp();
    let end = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    (launch..=end).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
}

fn isk() -> impl Strategy<Value = i64> {
    0i64..=battles_dataflow::killmail::MAX_ISK
}

prop_compose! {
    fn victim()(
        character in proptest::option::of((id(), proptest::option::of(name()))),
        corporation in proptest::option::of((id(), proptest::option::of(name()))),
        alliance in proptest::option::of((id(), proptest::option::of(name()))),
        faction_id in proptest::option::of(id()),
        ship in (id(), name(), id(), id()),
        damage_taken in 0i64..10_000_000,
    ) -> Victim {
        Victim {
            character_id: character.as_ref().map(|c| c.0),
            character_name: character.and_then(|c| c.1),
            corporation_id: corporation.as_ref().map(|c| c.0),
            corporation_name: corporation.and_then(|c| c.1),
            alliance_id: alliance.as_ref().map(|c| c.0),
            alliance_name: alliance.and_then(|c| c.1),
            faction_id,
            ship_type_id: ship.0,
            ship_type_name: Some(ship.1),
            ship_group_id: Some(ship.2),
            ship_category_id: Some(ship.3),
            damage_taken,
        }
    }
}

prop_compose! {
    fn attacker()(
        character in proptest::option::of((id(), proptest::option::of(name()))),
        corporation in proptest::option::of((id(), proptest::option::of(name()))),
        alliance in proptest::option::of((id(), proptest::option::of(name()))),
        faction_id in proptest::option::of(id()),
        ship in proptest::option::of((id(), name())),
        weapon_type_id in proptest::option::of(id()),
        damage_done in 0i64..10_000_000,
        final_blow in any::<bool>(),
    ) -> Attacker {
        Attacker {
            character_id: character.as_ref().map(|c| c.0),
            character_name: character.and_then(|c| c.1),
            corporation_id: corporation.as_ref().map(|c| c.0),
            corporation_name: corporation.and_then(|c| c.1),
            alliance_id: alliance.as_ref().map(|c| c.0),
            alliance_name: alliance.and_then(|c| c.1),
            faction_id,
            ship_type_id: ship.as_ref().map(|s| s.0),
            ship_type_name: ship.map(|s| s.1),
            weapon_type_id,
            damage_done,
            final_blow,
        }
    }
}

prop_compose! {
    fn killmail()(
        killmail_id in id(),
        killmail_hash in proptest::option::of("[0-9a-f]{40}"),
        killmail_time in time(),
        system in (30_000_001i64..33_000_000, name(), 20_000_001i64..20_100_000, 10_000_001i64..10_100_000, name()),
        victim in victim(),
        attackers in proptest::collection::vec(attacker(), 1..6),
        values in (isk(), any::<bool>(), proptest::option::of(isk()), proptest::option::of(isk()), proptest::option::of(isk())),
        flags in (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>())),
    ) -> Killmail {
        Killmail {
            killmail_id,
            killmail_hash,
            killmail_time,
            solar_system_id: system.0,
            solar_system_name: system.1,
            constellation_id: system.2,
            region_id: system.3,
            region_name: system.4,
            victim,
            attackers,
            isk_value: values.0,
            isk_estimated: values.1,
            dropped_value: values.2,
            destroyed_value: values.3,
            fitted_value: values.4,
            npc: flags.0,
            solo: flags.1,
            awox: flags.2,
        }
    }
}
