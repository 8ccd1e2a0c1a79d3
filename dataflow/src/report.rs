//! What the engine decides about one battle: the `BattleReport`, whose parts map one to one onto
//! the rows of the spec's `battles`, `battle_participants`, `battle_killmails` and
//! `battle_statistics` tables. The engine emits a battle's report as a whole; a change to a
//! battle is the retraction of its old report and the insertion of its new one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::killmail::KillmailId;

/// One of the two sides of a battle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Team {
    #[serde(rename = "team_a")]
    A,
    #[serde(rename = "team_b")]
    B,
}

impl Team {
    /// The spelling of the schema and the API: `team_a` or `team_b`.
    pub fn as_str(self) -> &'static str {
        match self {
            Team::A => "team_a",
            Team::B => "team_b",
        }
    }

    pub fn other(self) -> Team {
        match self {
            Team::A => Team::B,
            Team::B => Team::A,
        }
    }
}

/// The id of the battle whose earliest killmail (by time, then id) is `killmail_id`, at `time`.
///
/// A UUIDv8 (RFC 9562, custom layout) that sorts by time: bits 127..80 are the Unix time of that
/// killmail in milliseconds, then the version (8), the killmail id's top 12 bits, the variant
/// (`10`) and ten zero bits, and its low 52 bits. So the id is deterministic (a re-run or a
/// re-clustering gives every battle the id it had), distinct for distinct killmails, and
/// battles created together have neighbouring ids: the B-tree indexes keyed by battle id take
/// a step's new rows at one edge instead of at random pages all over them (with UUIDv5 ids the
/// participants' inserts cost 2.5x as much on a table holding a month). Migration V9 renumbers
/// battles stored under the earlier UUIDv5 ids; its SQL spells the same layout.
pub fn battle_id(time: DateTime<Utc>, killmail_id: KillmailId) -> Uuid {
    const MILLIS_BITS: u128 = (1 << 48) - 1;
    const LOW_52: u64 = (1 << 52) - 1;
    let millis = time.timestamp_millis() as u128 & MILLIS_BITS;
    let id = killmail_id as u64;
    Uuid::from_u128(
        millis << 80
            | 0x8 << 76
            | u128::from(id >> 52) << 64
            | 0x800 << 52
            | u128::from(id & LOW_52),
    )
}

/// Everything known about one battle.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BattleReport {
    pub battle_id: Uuid,
    /// The killmail the id derives from: the earliest by (time, id).
    pub first_killmail_id: KillmailId,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub primary_system_id: i64,
    pub primary_system_name: String,
    pub primary_region_id: i64,
    pub primary_region_name: String,
    pub total_killmails: i32,
    pub total_pilots: i32,
    pub total_isk_destroyed: i64,
    pub team_a: TeamTotals,
    pub team_b: TeamTotals,
    pub is_decisive: bool,
    pub winning_team: Option<Team>,
    pub last_killmail_at: DateTime<Utc>,
    /// True when any killmail's ISK value is an estimate from the price table.
    pub isk_estimated: bool,
    /// Sorted by character id.
    pub participants: Vec<Participant>,
    /// Sorted by (time, killmail id).
    pub killmails: Vec<BattleKillmail>,
    pub statistics: Statistics,
}

/// Per-side sums. `team_a.isk_destroyed == team_b.isk_lost` and so on, exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamTotals {
    pub pilots: i32,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub ships_destroyed: i32,
    pub ships_lost: i32,
}

/// One character's part in a battle (a `battle_participants` row).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Participant {
    pub character_id: i64,
    /// Empty when no record named the character (ESI records carry no names).
    pub character_name: String,
    pub corporation_id: Option<i64>,
    pub corporation_name: Option<String>,
    pub alliance_id: Option<i64>,
    pub alliance_name: Option<String>,
    pub team: Team,
    /// Fought both sides; placed on the team it fought least with.
    pub third_party: bool,
    /// Ship type ids, sorted, each once.
    pub ships_flown: Vec<i64>,
    /// Final blows.
    pub kills: i32,
    pub deaths: i32,
    pub damage_done: i64,
    pub damage_received: i64,
    /// ISK of the killmails on which it landed the final blow.
    pub isk_destroyed: i64,
    pub isk_lost: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// One killmail of a battle (a `battle_killmails` row).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BattleKillmail {
    pub killmail_id: KillmailId,
    pub killmail_time: DateTime<Utc>,
    pub system_id: i64,
    pub victim_character_id: Option<i64>,
    pub victim_alliance_id: Option<i64>,
    pub victim_ship_type_id: Option<i64>,
    pub victim_team: Team,
    pub isk_destroyed: i64,
}

/// The `battle_statistics` row. Serialized with the schema's camelCase JSON field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Statistics {
    pub top_killers: Vec<TopKiller>,
    pub top_losers: Vec<TopLoser>,
    /// Ship type id -> pilots of that side that flew it.
    pub team_a_ship_types: BTreeMap<i64, i32>,
    pub team_b_ship_types: BTreeMap<i64, i32>,
    pub team_a_alliances: Vec<AllianceStats>,
    pub team_b_alliances: Vec<AllianceStats>,
    pub killmail_timeline: Vec<TimelineEntry>,
    pub systems_involved: Vec<SystemStats>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopKiller {
    pub character_id: i64,
    pub name: String,
    pub team: Team,
    pub kills: i32,
    pub isk_destroyed: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopLoser {
    pub character_id: i64,
    pub name: String,
    pub team: Team,
    pub deaths: i32,
    pub isk_lost: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllianceStats {
    pub alliance_id: i64,
    /// Empty when no record named the alliance.
    pub name: String,
    pub pilots: i32,
    pub isk_destroyed: i64,
    pub isk_lost: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub timestamp: DateTime<Utc>,
    pub killmail_id: KillmailId,
    pub victim_team: Team,
    pub isk_destroyed: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStats {
    pub system_id: i64,
    pub name: String,
    pub killmails: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn battle_ids_are_rfc_9562_version_8_and_spell_time_and_killmail() {
        let id = battle_id(at(1_764_061_200), 0x0123_4567_89AB_CDEF);
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(id.to_string(), "019aba3d-be80-8012-8003-456789abcdef");
    }

    #[test]
    fn battle_ids_sort_by_time_and_differ_for_every_killmail() {
        let ids = [
            battle_id(at(1_000), 5),
            battle_id(at(1_000), 6),
            battle_id(at(1_000), -1),
            battle_id(at(1_001), 1),
            battle_id(at(2_000_000_000), i64::MIN),
        ];
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let same_bits_high = battle_id(at(1_000), 5 | 1 << 60);
        assert_ne!(same_bits_high, ids[0]);
    }
}
