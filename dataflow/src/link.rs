//! When two killmails belong to the same battle: the link rule.
//!
//! Battles stay local. Two linker killmails are *linked* when
//!
//! - they are in the **same system**, at most [`LinkRule::same_system_secs`] (20 min) apart, and
//!   share anyone: an alliance, a player corporation or a character; or
//! - they are in **neighbouring systems** (at most [`LinkRule::gate_jumps`], 2, stargate jumps
//!   apart) and either at most [`LinkRule::adjacent_secs`] (8 min) apart sharing at least
//!   [`LinkRule::adjacent_min_characters`] (2) characters (the fleet itself took the gate), or
//!   at most [`LinkRule::adjacent_anyone_secs`] (7.5 min) apart sharing anyone (a small gang's
//!   next kill right after it jumped).
//!
//! Nothing else links: not the same constellation, not the same region. In a war the same
//! coalitions fight in several constellations of a region within the hour, and a pilot who died
//! in one fight and joined the next would glue them together (the spec's weighted score linked
//! a shared character across a region within 21 minutes; `docs/clustering.md` has the measured
//! effect). Roaming gangs killing in neighbouring systems 10 or more minutes apart are separate
//! engagements, so the adjacent window is short.
//!
//! Battles are the connected components of linked *linker* killmails. Killmails that are not
//! fights between players (no player attacker, pods, non-ship losses) are *satellites*: they never
//! link, they only attach to one nearby battle (see [`LinkRule::satellite_window`]), so they can
//! never glue two fights together. `docs/clustering.md` explains the choices.

use serde::{Deserialize, Serialize};

use crate::killmail::{Killmail, KillmailId};
use crate::universe::Universe;

/// NPC corporations (pilots in them have no shared allegiance).
pub const NPC_CORPORATIONS: std::ops::Range<i64> = 1_000_000..2_000_000;

/// The tunable link rule. Missing fields take their defaults when deserialized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkRule {
    /// The longest reach in time of anything a killmail does (links, attachments): the engine
    /// keeps a battle in memory until this long after its last killmail.
    pub window_secs: i64,
    /// Same system: the largest gap at which two killmails sharing anyone link.
    pub same_system_secs: i64,
    /// Systems at most this many stargate jumps apart (a fleet often jumps twice between two
    /// kills) count as neighbours for the two rules below.
    pub gate_jumps: usize,
    /// Neighbour systems: the largest gap at which two killmails can link.
    pub adjacent_secs: i64,
    /// Stargate-adjacent systems: characters two killmails must share to link.
    pub adjacent_min_characters: usize,
    /// Stargate-adjacent systems: the largest gap at which two killmails that share anyone
    /// (fewer characters than `adjacent_min_characters`, or only a corporation or alliance)
    /// link: a small gang's kills right after it jumped.
    pub adjacent_anyone_secs: i64,
    /// How far in time a satellite looks for a battle to join (same system only).
    pub satellite_secs: i64,
    /// Width of the engine's time buckets (at least the longest link). Satellite runs are
    /// grouped inside one bucket, so a run longer than this comes out in pieces.
    pub bucket_secs: i64,
}

impl Default for LinkRule {
    fn default() -> Self {
        LinkRule {
            window_secs: 3600,
            same_system_secs: 1200,
            gate_jumps: 2,
            adjacent_secs: 480,
            adjacent_min_characters: 2,
            adjacent_anyone_secs: 450,
            satellite_secs: 450,
            bucket_secs: 3150,
        }
    }
}

/// What the link rule needs of a killmail: where, when, and who (sorted, deduplicated ids).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinkRecord {
    pub time: i64,
    pub id: KillmailId,
    pub system: i64,
    pub constellation: i64,
    pub region: i64,
    pub satellite: bool,
    /// Victim character (if any) first, then nothing else: used to prefer the battle a pod's
    /// pilot was just in.
    pub victim_character: Option<i64>,
    pub characters: Vec<i64>,
    pub corporations: Vec<i64>,
    pub alliances: Vec<i64>,
}

/// Sorted and deduplicated, sized to fit: a record lives as long as its killmail in the graph.
fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
    v
}

/// True when two sorted slices share an element.
pub(crate) fn intersects(a: &[i64], b: &[i64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

impl LinkRecord {
    /// The linking features of a killmail.
    pub fn of(km: &Killmail) -> LinkRecord {
        let players = km.attackers.len() + 1;
        let mut characters = Vec::with_capacity(players);
        let mut corporations = Vec::with_capacity(players);
        let mut alliances = Vec::with_capacity(players);
        let mut player = |ch: Option<i64>, corp: Option<i64>, all: Option<i64>| {
            if let Some(c) = ch {
                characters.push(c);
                if let Some(corp) = corp.filter(|c| !NPC_CORPORATIONS.contains(c)) {
                    corporations.push(corp);
                }
                if let Some(a) = all {
                    alliances.push(a);
                }
            }
        };
        player(
            km.victim.character_id,
            km.victim.corporation_id,
            km.victim.alliance_id,
        );
        for a in &km.attackers {
            player(a.character_id, a.corporation_id, a.alliance_id);
        }
        LinkRecord {
            time: km.timestamp(),
            id: km.killmail_id,
            system: km.solar_system_id,
            constellation: km.constellation_id,
            region: km.region_id,
            satellite: km.is_satellite(),
            victim_character: km.victim.character_id,
            characters: sorted(characters),
            corporations: sorted(corporations),
            alliances: sorted(alliances),
        }
    }

    /// The (time, id) order in which battles pick their first killmail.
    pub fn key(&self) -> (i64, KillmailId) {
        (self.time, self.id)
    }
}

/// How many elements two sorted slices share, counting no further than `enough`.
pub(crate) fn shared_count(a: &[i64], b: &[i64], enough: usize) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() && n < enough {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// True when `b` is at most `jumps` stargate jumps from `a` (and not `a` itself).
pub fn within_jumps(universe: &Universe, a: i64, b: i64, jumps: usize) -> bool {
    match jumps {
        0 => false,
        1 => universe.are_adjacent(a, b),
        2 => {
            universe.are_adjacent(a, b)
                || intersects(universe.neighbours(a), universe.neighbours(b))
        }
        _ => a != b && systems_within(universe, a, jumps).binary_search(&b).is_ok(),
    }
}

/// Every system at most `jumps` stargate jumps from `from`, `from` included, sorted.
pub fn systems_within(universe: &Universe, from: i64, jumps: usize) -> Vec<i64> {
    let mut seen = vec![from];
    let mut frontier = vec![from];
    for _ in 0..jumps {
        let mut next = Vec::new();
        for s in frontier {
            for &n in universe.neighbours(s) {
                if !seen.contains(&n) {
                    seen.push(n);
                    next.push(n);
                }
            }
        }
        frontier = next;
    }
    seen.sort_unstable();
    seen
}

impl LinkRule {
    /// True when two killmails share anyone (character, player corporation or alliance).
    pub fn share_anyone(&self, a: &LinkRecord, b: &LinkRecord) -> bool {
        intersects(&a.characters, &b.characters)
            || intersects(&a.corporations, &b.corporations)
            || intersects(&a.alliances, &b.alliances)
    }

    /// Whether two linker killmails are linked (see the module doc).
    pub fn links(&self, a: &LinkRecord, b: &LinkRecord, universe: &Universe) -> bool {
        let dt = (a.time - b.time).abs();
        if a.system == b.system {
            dt <= self.same_system_secs && self.share_anyone(a, b)
        } else if dt > self.adjacent_secs.max(self.adjacent_anyone_secs)
            || !within_jumps(universe, a.system, b.system, self.gate_jumps)
        {
            false
        } else if dt <= self.adjacent_anyone_secs && self.share_anyone(a, b) {
            true
        } else {
            dt <= self.adjacent_secs
                && shared_count(&a.characters, &b.characters, self.adjacent_min_characters)
                    >= self.adjacent_min_characters
        }
    }

    /// The largest time difference at which any two killmails can still link (at most the
    /// window).
    pub fn max_link_secs(&self) -> i64 {
        self.same_system_secs
            .max(self.adjacent_secs)
            .max(self.adjacent_anyone_secs)
            .clamp(1, self.window_secs.max(1))
    }

    /// The width of the engine's time buckets: [`LinkRule::bucket_secs`], at least the longest
    /// link, so that linked killmails are in the same or consecutive buckets.
    pub fn bucket_width(&self) -> i64 {
        self.bucket_secs.max(self.max_link_secs())
    }

    /// How far in time a satellite looks for a battle to join (same system only), at least one
    /// second and at most the window.
    pub fn satellite_window(&self) -> i64 {
        self.satellite_secs.clamp(1, self.window_secs.max(1))
    }

    /// [`LinkRule::window_secs`] as a duration (at least a second): no killmail further than
    /// this in time from a battle can change it, so drivers read stored killmails this far
    /// around new ones, and re-clustering this far around a range.
    pub fn reach(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.window_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, time: i64, system: i64, chars: &[i64]) -> LinkRecord {
        let u = Universe::embedded();
        let s = u.system(system).unwrap();
        LinkRecord {
            time,
            id,
            system,
            constellation: s.constellation_id,
            region: s.region_id,
            satellite: false,
            victim_character: chars.first().copied(),
            characters: chars.to_vec(),
            corporations: vec![],
            alliances: vec![],
        }
    }

    #[test]
    fn default_windows() {
        let r = LinkRule::default();
        assert_eq!(r.satellite_window(), 450);
        assert_eq!(r.max_link_secs(), 1200);
        assert_eq!(r.bucket_width(), 3150);
        let partial: LinkRule = serde_json::from_str(r#"{"adjacent_secs": 600}"#).unwrap();
        assert_eq!(partial.adjacent_secs, 600);
        assert_eq!(partial.same_system_secs, r.same_system_secs);
    }

    #[test]
    fn same_system_links_on_anyone_shared_within_twenty_minutes() {
        let u = Universe::embedded();
        let r = LinkRule::default();
        let jita = 30000142;
        assert!(r.links(&rec(1, 0, jita, &[1]), &rec(2, 1200, jita, &[1]), u));
        assert!(!r.links(&rec(1, 0, jita, &[1]), &rec(2, 1201, jita, &[1]), u));
        // Strangers in one system at one time do not link.
        assert!(!r.links(&rec(1, 0, jita, &[1]), &rec(2, 10, jita, &[2]), u));
        // A shared alliance (or corporation) is enough in one system.
        let mut a = rec(1, 0, jita, &[1]);
        let mut b = rec(2, 600, jita, &[2]);
        a.alliances = vec![99_000_001];
        b.alliances = vec![99_000_001];
        assert!(r.links(&a, &b, u) && r.links(&b, &a, u));
        a.alliances.clear();
        b.alliances.clear();
        a.corporations = vec![98_000_001];
        b.corporations = vec![98_000_001];
        assert!(r.links(&a, &b, u));
    }

    #[test]
    fn neighbours_need_two_pilots_within_eight_minutes_or_anyone_within_seven_and_a_half() {
        let u = Universe::embedded();
        let r = LinkRule::default();
        // Jita and Perimeter are adjacent.
        let (jita, perimeter) = (30000142, 30000144);
        assert!(u.are_adjacent(jita, perimeter));
        let two = |id, t, sys| rec(id, t, sys, &[1, 2, 3]);
        assert!(r.links(&two(1, 0, jita), &two(2, 480, perimeter), u));
        assert!(!r.links(&two(1, 0, jita), &two(2, 481, perimeter), u));
        // One shared pilot, or only an alliance, across a gate: within 7.5 minutes only.
        let one = |t| rec(2, t, perimeter, &[2, 9]);
        assert!(r.links(&rec(1, 0, jita, &[1, 2]), &one(450), u));
        assert!(!r.links(&rec(1, 0, jita, &[1, 2]), &one(451), u));
        let mut a = rec(1, 0, jita, &[1]);
        let mut b = rec(2, 200, perimeter, &[2]);
        a.alliances = vec![99_000_001];
        b.alliances = vec![99_000_001];
        assert!(r.links(&a, &b, u));
        b.time = 451;
        assert!(!r.links(&a, &b, u));
        // Strangers across a gate never link.
        assert!(!r.links(&rec(1, 0, jita, &[1]), &rec(2, 10, perimeter, &[2]), u));
    }

    #[test]
    fn two_jumps_link_three_jumps_never() {
        let u = Universe::embedded();
        let r = LinkRule::default();
        let jita = 30000142;
        let near = systems_within(u, jita, 2);
        let far = systems_within(u, jita, 3);
        let two_jumps = *near
            .iter()
            .find(|s| !u.are_adjacent(jita, **s) && **s != jita)
            .unwrap();
        let three_jumps = *far.iter().find(|s| !near.contains(s)).unwrap();
        assert!(within_jumps(u, jita, two_jumps, 2) && !within_jumps(u, jita, two_jumps, 1));
        assert!(within_jumps(u, jita, three_jumps, 3) && !within_jumps(u, jita, three_jumps, 2));
        let pilots = |id, t, sys| rec(id, t, sys, &[1, 2, 3]);
        assert!(r.links(&pilots(1, 0, jita), &pilots(2, 60, two_jumps), u));
        assert!(!r.links(&pilots(1, 0, jita), &pilots(2, 60, three_jumps), u));
        // Different regions, far apart: never, whoever is shared.
        assert!(!r.links(&pilots(1, 0, jita), &pilots(2, 0, 30001046), u));
    }

    #[test]
    fn shared_count_stops_at_enough() {
        assert_eq!(shared_count(&[1, 2, 3, 4], &[2, 3, 4], 2), 2);
        assert_eq!(shared_count(&[1, 2, 3, 4], &[2, 3, 4], 9), 3);
        assert_eq!(shared_count(&[1, 5], &[2, 3, 4], 2), 0);
    }
}
