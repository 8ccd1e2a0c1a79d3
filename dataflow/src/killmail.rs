//! The typed killmail: what ingest produces from any input shape and what the engine consumes.
//!
//! Its serde form is the enriched (camelCase) shape of `killmail-input.md`, so a stored or
//! re-published killmail is always an enriched record. Every field is always written (no
//! `skip_serializing_if`), which keeps the type usable with non-self-describing formats (bincode)
//! for timely's exchange between workers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A killmail id as ESI numbers them.
pub type KillmailId = i64;

/// One ship's (or structure's) destruction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Killmail {
    pub killmail_id: KillmailId,
    pub killmail_hash: Option<String>,
    /// When it happened (second resolution, UTC).
    pub killmail_time: DateTime<Utc>,
    pub solar_system_id: i64,
    /// From the record, else from the embedded SDE; empty when neither knows it.
    pub solar_system_name: String,
    /// From the record, else from the embedded SDE (0 when neither knows it).
    pub constellation_id: i64,
    pub region_id: i64,
    pub region_name: String,
    pub victim: Victim,
    /// At least one.
    pub attackers: Vec<Attacker>,
    /// Total ISK destroyed + dropped. From zKillboard when the record has it, else estimated from
    /// the embedded price table (then `isk_estimated` is true).
    pub isk_value: i64,
    pub isk_estimated: bool,
    pub dropped_value: Option<i64>,
    pub destroyed_value: Option<i64>,
    pub fitted_value: Option<i64>,
    pub npc: Option<bool>,
    pub solo: Option<bool>,
    pub awox: Option<bool>,
}

/// The loser of a killmail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Victim {
    /// Absent for structures and NPC losses.
    pub character_id: Option<i64>,
    pub character_name: Option<String>,
    pub corporation_id: Option<i64>,
    pub corporation_name: Option<String>,
    pub alliance_id: Option<i64>,
    pub alliance_name: Option<String>,
    pub faction_id: Option<i64>,
    pub ship_type_id: i64,
    pub ship_type_name: Option<String>,
    pub ship_group_id: Option<i64>,
    /// SDE category of the lost type (6 = ship, 65 = structure, ...), filled by ingest.
    pub ship_category_id: Option<i64>,
    pub damage_taken: i64,
}

/// One attacker on a killmail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attacker {
    /// Absent for NPCs and structures.
    pub character_id: Option<i64>,
    pub character_name: Option<String>,
    pub corporation_id: Option<i64>,
    pub corporation_name: Option<String>,
    pub alliance_id: Option<i64>,
    pub alliance_name: Option<String>,
    pub faction_id: Option<i64>,
    pub ship_type_id: Option<i64>,
    pub ship_type_name: Option<String>,
    pub weapon_type_id: Option<i64>,
    pub damage_done: i64,
    pub final_blow: bool,
}

/// The largest ISK value a killmail may carry (total, destroyed, dropped or fitted): 10^15 ISK,
/// about a hundred times the costliest loss ever recorded. Ingest rejects larger values with a
/// typed reason; the engine refuses them. Report sums are computed saturating at `i64::MAX`,
/// which with this bound takes more than 9,000 maximal killmails in one battle.
pub const MAX_ISK: i64 = 1_000_000_000_000_000;
/// The largest damage one killmail may record (taken by the victim or done by one attacker):
/// 10^12 hit points, far above any structure's.
pub const MAX_DAMAGE: i64 = 1_000_000_000_000;

/// SDE category of ships.
pub const CATEGORY_SHIP: i64 = 6;
/// SDE group of capsules (pods).
pub const GROUP_CAPSULE: i64 = 29;

impl Killmail {
    /// Seconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.killmail_time.timestamp()
    }

    /// Why the engine cannot take this killmail, if it cannot: a value outside `0..=MAX_ISK` or a
    /// damage outside `0..=MAX_DAMAGE`. Ingest checks the same bounds and rejects such records.
    pub fn bounds_error(&self) -> Option<String> {
        let isk = [
            ("iskValue", Some(self.isk_value)),
            ("droppedValue", self.dropped_value),
            ("destroyedValue", self.destroyed_value),
            ("fittedValue", self.fitted_value),
        ];
        for (field, value) in isk {
            if let Some(v) = value.filter(|v| !(0..=MAX_ISK).contains(v)) {
                return Some(format!("{field} {v} is outside 0..={MAX_ISK}"));
            }
        }
        let damages = std::iter::once(("victim.damageTaken", self.victim.damage_taken)).chain(
            self.attackers
                .iter()
                .map(|a| ("attackers.damageDone", a.damage_done)),
        );
        for (field, v) in damages {
            if !(0..=MAX_DAMAGE).contains(&v) {
                return Some(format!("{field} {v} is outside 0..={MAX_DAMAGE}"));
            }
        }
        None
    }

    /// Attackers flown by players (with a character id).
    pub fn player_attackers(&self) -> impl Iterator<Item = &Attacker> {
        self.attackers.iter().filter(|a| a.character_id.is_some())
    }

    /// The attacker with the final blow, if the record marks one.
    pub fn final_blow(&self) -> Option<&Attacker> {
        self.attackers.iter().find(|a| a.final_blow)
    }

    /// True when the loss is a capsule.
    pub fn is_pod(&self) -> bool {
        self.victim.ship_group_id == Some(GROUP_CAPSULE)
    }

    /// True when the killmail is not a fight between players: no player attacker, a pod, or a
    /// loss that is not a ship. Satellites never link killmails (see `link.rs`).
    pub fn is_satellite(&self) -> bool {
        self.attackers.iter().all(|a| a.character_id.is_none())
            || self.is_pod()
            || !self.is_ship_loss()
    }

    /// True when the loss is a ship or capsule (category 6), not a structure, deployable,
    /// fighter or other object. Unknown categories count as ships.
    pub fn is_ship_loss(&self) -> bool {
        self.victim
            .ship_category_id
            .is_none_or(|c| c == CATEGORY_SHIP)
    }
}
