//! The `id` of a `battle_participants` or `battle_killmails` row, chosen by the sink instead of
//! the column's `gen_random_uuid()` default.
//!
//! Why: a random primary key puts every new row on a random page of its index, and on tables
//! holding a month that index maintenance is a large share of a write (issue 13). A row's id
//! here begins with the first half of its battle's id, which begins with the battle's start in
//! milliseconds ([`battles_dataflow::battle_id`]), so a step's new rows land together at the
//! index's recent edge. The second half is a hash of the battle's id and the row's key
//! (character or killmail id): the id is deterministic, so a battle written twice, or by two
//! runs, has the same row ids. It is a UUIDv8 (RFC 9562): version 8 comes from the battle id's
//! first half, and the variant bits are set here.
//!
//! Two rows collide only if their battles' ids share the first 64 bits (the same millisecond
//! and the same top 12 bits of the first killmail's id) and the 62-bit hashes of their keys
//! agree.

use uuid::Uuid;

/// The id of battle `battle`'s participant row for character `character_id`.
pub fn participant_row_id(battle: Uuid, character_id: i64) -> Uuid {
    row_id(battle, 0x7061_7274, character_id)
}

/// The id of battle `battle`'s row for killmail `killmail_id`.
pub fn battle_killmail_row_id(battle: Uuid, killmail_id: i64) -> Uuid {
    row_id(battle, 0x6b69_6c6c, killmail_id)
}

fn row_id(battle: Uuid, table: u64, key: i64) -> Uuid {
    const VARIANT: u64 = 0b10 << 62;
    const TAIL: u64 = (1 << 62) - 1;
    let battle = battle.as_u128();
    let head = (battle >> 64) as u64;
    let tail = mix(mix(battle as u64 ^ table) ^ key as u64);
    Uuid::from_u128(u128::from(head) << 64 | u128::from(VARIANT | tail & TAIL))
}

/// SplitMix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn row_ids_follow_their_battle_and_differ_by_key_and_table() {
        let early = battles_dataflow::battle_id(Utc.timestamp_opt(1_000, 0).unwrap(), 7);
        let late = battles_dataflow::battle_id(Utc.timestamp_opt(1_001, 0).unwrap(), 3);
        let mut ids = std::collections::HashSet::new();
        for c in 0..10_000 {
            let a = participant_row_id(early, c);
            let b = participant_row_id(late, c);
            assert!(a < b, "rows sort by their battle's start");
            assert_eq!(a.get_version_num(), 8);
            assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(a, participant_row_id(early, c), "deterministic");
            assert!(ids.insert(a) && ids.insert(b) && ids.insert(battle_killmail_row_id(early, c)));
        }
    }
}
