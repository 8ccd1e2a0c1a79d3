//! Duplicate detection in memory: killmail id -> fingerprint of the killmail's facts. The same
//! killmail arrives more than once in practice (ESI and zKillboard feeds overlap, backfills
//! repeat, Kafka redelivers); an exact repeat is a no-op, while the same id with different facts
//! is a [`RejectReason::ConflictingDuplicate`].
//!
//! The fingerprint covers what CCP's killmail states (time, system, victim, attackers with their
//! ids, ships, weapons and damage), not what sources add around it (names, zKillboard values,
//! the hash), so an ESI record and the enriched record of the same kill are duplicates, not a
//! conflict.

use std::hash::{BuildHasher, Hash, Hasher};

use battles_dataflow::id_hash::IdMap;
use battles_dataflow::{Killmail, KillmailId};

use super::RejectReason;

/// What the deduplicator made of a killmail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time this id is seen.
    New,
    /// Seen before with the same facts: nothing to do.
    Duplicate,
}

/// Ids seen so far with their fingerprints (16 bytes per killmail plus map overhead).
#[derive(Debug, Default)]
pub struct Deduplicator {
    seen: IdMap<KillmailId, u64>,
}

impl Deduplicator {
    pub fn new() -> Deduplicator {
        Deduplicator::default()
    }

    /// Records `km` and says whether it is new, an exact duplicate, or a conflicting one (which
    /// leaves the first version in place).
    pub fn observe(&mut self, km: &Killmail) -> Result<Seen, RejectReason> {
        let fp = fingerprint(km);
        match self.seen.insert(km.killmail_id, fp) {
            None => Ok(Seen::New),
            Some(prev) if prev == fp => Ok(Seen::Duplicate),
            Some(prev) => {
                self.seen.insert(km.killmail_id, prev);
                Err(RejectReason::ConflictingDuplicate(km.killmail_id))
            }
        }
    }

    /// Distinct killmail ids seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The seed of [`fingerprint`]: any constant, so equal facts give equal fingerprints in every
/// run.
const FINGERPRINT_SEED: u64 = 0x6b69_6c6c_6d61_696c;

/// A hash of the killmail's facts (stable within one build of the program). foldhash's quality
/// variant: fingerprints are compared, not trusted against an adversary, and SipHash was 8% of
/// `battles check`'s instructions (docs/benchmarks.md).
pub fn fingerprint(km: &Killmail) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(FINGERPRINT_SEED).build_hasher();
    km.killmail_time.timestamp().hash(&mut h);
    km.solar_system_id.hash(&mut h);
    let v = &km.victim;
    (
        v.character_id,
        v.corporation_id,
        v.alliance_id,
        v.faction_id,
        v.ship_type_id,
        v.damage_taken,
    )
        .hash(&mut h);
    km.attackers.len().hash(&mut h);
    for a in &km.attackers {
        (
            a.character_id,
            a.corporation_id,
            a.alliance_id,
            a.faction_id,
            a.ship_type_id,
            a.weapon_type_id,
            a.damage_done,
            a.final_blow,
        )
            .hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use battles_dataflow::{Attacker, Victim};
    use chrono::{TimeZone, Utc};

    fn km(id: i64, damage: i64) -> Killmail {
        Killmail {
            killmail_id: id,
            killmail_hash: None,
            killmail_time: Utc.with_ymd_and_hms(2021, 11, 28, 10, 0, 0).unwrap(),
            solar_system_id: 30001046,
            solar_system_name: "Jorund".into(),
            constellation_id: 0,
            region_id: 10000012,
            region_name: "Curse".into(),
            victim: Victim {
                character_id: Some(1),
                character_name: None,
                corporation_id: Some(2),
                corporation_name: None,
                alliance_id: None,
                alliance_name: None,
                faction_id: None,
                ship_type_id: 587,
                ship_type_name: None,
                ship_group_id: None,
                ship_category_id: None,
                damage_taken: damage,
            },
            attackers: vec![Attacker {
                character_id: Some(3),
                character_name: None,
                corporation_id: Some(4),
                corporation_name: None,
                alliance_id: None,
                alliance_name: None,
                faction_id: None,
                ship_type_id: Some(638),
                ship_type_name: None,
                weapon_type_id: None,
                damage_done: damage,
                final_blow: true,
            }],
            isk_value: 1,
            isk_estimated: true,
            dropped_value: None,
            destroyed_value: None,
            fitted_value: None,
            npc: None,
            solo: None,
            awox: None,
        }
    }

    #[test]
    fn new_duplicate_and_conflict() {
        let mut d = Deduplicator::new();
        assert_eq!(d.observe(&km(1, 100)), Ok(Seen::New));
        assert_eq!(d.observe(&km(2, 100)), Ok(Seen::New));
        assert_eq!(d.observe(&km(1, 100)), Ok(Seen::Duplicate));
        assert_eq!(
            d.observe(&km(1, 101)),
            Err(RejectReason::ConflictingDuplicate(1))
        );
        // The first version stays the reference.
        assert_eq!(d.observe(&km(1, 100)), Ok(Seen::Duplicate));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn names_and_values_do_not_make_a_conflict() {
        let mut d = Deduplicator::new();
        let plain = km(7, 10);
        let mut enriched = plain.clone();
        enriched.victim.character_name = Some("Pilot".into());
        enriched.isk_value = 123_456;
        enriched.isk_estimated = false;
        enriched.killmail_hash = Some("abc".into());
        assert_eq!(d.observe(&plain), Ok(Seen::New));
        assert_eq!(d.observe(&enriched), Ok(Seen::Duplicate));
    }
}
