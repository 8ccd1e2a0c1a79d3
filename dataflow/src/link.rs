//! When two killmails belong to the same battle: the link rule.
//!
//! Two killmails are *linked* when their proximity score reaches the threshold:
//!
//! `score = w_time * T + w_space * S + w_participants * P`
//!
//! - `T = max(0, 1 - |dt| / window)`: temporal proximity, linear decay over the window (1 h).
//! - `S`: spatial proximity: 1.0 same system, 0.7 stargate-adjacent, 0.5 same constellation,
//!   0.3 same region, 0 otherwise. A pair with `S = 0` is never linked.
//! - `P`: participant overlap: 1.0 when they share a character, 0.5 a (player) corporation,
//!   0.3 an alliance, 0 otherwise.
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

/// The tunable link rule. Defaults are the spec's weights, threshold and window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkRule {
    pub weight_time: f64,
    pub weight_space: f64,
    pub weight_participants: f64,
    /// Minimum score for a link.
    pub threshold: f64,
    /// Temporal window in seconds: no link beyond it.
    pub window_secs: i64,
    pub space_same_system: f64,
    pub space_adjacent: f64,
    pub space_same_constellation: f64,
    pub space_same_region: f64,
    pub share_character: f64,
    pub share_corporation: f64,
    pub share_alliance: f64,
    /// Never link two killmails that share no character, corporation or alliance, whatever the
    /// score: time and place alone are how strangers' kills next to a fight get swallowed.
    pub require_shared_participant: bool,
}

impl Default for LinkRule {
    fn default() -> Self {
        LinkRule {
            weight_time: 0.4,
            weight_space: 0.3,
            weight_participants: 0.3,
            threshold: 0.65,
            window_secs: 3600,
            space_same_system: 1.0,
            space_adjacent: 0.7,
            space_same_constellation: 0.5,
            space_same_region: 0.3,
            share_character: 1.0,
            share_corporation: 0.5,
            share_alliance: 0.3,
            require_shared_participant: true,
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

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v.dedup();
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
        let mut characters = Vec::with_capacity(km.attackers.len() + 1);
        let mut corporations = Vec::new();
        let mut alliances = Vec::new();
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

impl LinkRule {
    /// Spatial proximity `S` of two killmails.
    pub fn spatial(&self, a: &LinkRecord, b: &LinkRecord, universe: &Universe) -> f64 {
        if a.system == b.system {
            self.space_same_system
        } else if universe.are_adjacent(a.system, b.system) {
            self.space_adjacent
        } else if a.constellation == b.constellation && a.constellation != 0 {
            self.space_same_constellation
        } else if a.region == b.region {
            self.space_same_region
        } else {
            0.0
        }
    }

    /// Temporal proximity `T` for a time difference in seconds.
    pub fn temporal(&self, dt: i64) -> f64 {
        (1.0 - dt.abs() as f64 / self.window_secs as f64).max(0.0)
    }

    /// Participant overlap `P` of two killmails.
    pub fn participants(&self, a: &LinkRecord, b: &LinkRecord) -> f64 {
        if intersects(&a.characters, &b.characters) {
            self.share_character
        } else if intersects(&a.corporations, &b.corporations) {
            self.share_corporation
        } else if intersects(&a.alliances, &b.alliances) {
            self.share_alliance
        } else {
            0.0
        }
    }

    /// The full proximity score (0 when spatially unrelated, or when no one is shared and the
    /// rule requires someone shared).
    pub fn score(&self, a: &LinkRecord, b: &LinkRecord, universe: &Universe) -> f64 {
        let s = self.spatial(a, b, universe);
        let p = self.participants(a, b);
        if s <= 0.0 || (p <= 0.0 && self.require_shared_participant) {
            return 0.0;
        }
        self.weight_time * self.temporal(a.time - b.time)
            + self.weight_space * s
            + self.weight_participants * p
    }

    /// True when two killmails share anyone (character, player corporation or alliance).
    pub fn share_anyone(&self, a: &LinkRecord, b: &LinkRecord) -> bool {
        self.participants(a, b) > 0.0
    }

    /// Whether two linker killmails are linked. Equivalent to `score >= threshold` (with `S > 0`),
    /// but checks the participant sets only as far as the time and place leave undecided.
    pub fn links(&self, a: &LinkRecord, b: &LinkRecord, universe: &Universe) -> bool {
        let dt = (a.time - b.time).abs();
        if dt > self.window_secs {
            return false;
        }
        let s = self.spatial(a, b, universe);
        if s <= 0.0 {
            return false;
        }
        let base = self.weight_time * self.temporal(dt) + self.weight_space * s;
        if base >= self.threshold && !self.require_shared_participant {
            return true;
        }
        let reaches = |p: f64| base + self.weight_participants * p >= self.threshold;
        (reaches(self.share_character) && intersects(&a.characters, &b.characters))
            || (reaches(self.share_corporation) && intersects(&a.corporations, &b.corporations))
            || (reaches(self.share_alliance) && intersects(&a.alliances, &b.alliances))
    }

    /// The largest time difference at which any two killmails can still link (at most the
    /// window). The engine's time buckets are this wide.
    pub fn max_link_secs(&self) -> i64 {
        let best = self.weight_space * self.space_same_system
            + self.weight_participants
                * self
                    .share_character
                    .max(self.share_corporation)
                    .max(self.share_alliance);
        let t_min = ((self.threshold - best) / self.weight_time).max(0.0);
        (((1.0 - t_min) * self.window_secs as f64).round() as i64).clamp(1, self.window_secs)
    }

    /// How far in time a satellite looks for a battle to join (same system only): the gap at
    /// which two killmails in one system link without sharing anyone (7.5 min by default), at
    /// least one minute.
    pub fn satellite_window(&self) -> i64 {
        let t_min = ((self.threshold - self.weight_space * self.space_same_system)
            / self.weight_time)
            .clamp(0.0, 1.0);
        (((1.0 - t_min) * self.window_secs as f64).round() as i64).max(60)
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
    fn default_windows_follow_from_weights() {
        let r = LinkRule::default();
        assert_eq!(r.satellite_window(), 450);
        assert_eq!(r.max_link_secs(), 3150);
    }

    #[test]
    fn links_agrees_with_score_threshold() {
        let u = Universe::embedded();
        let r = LinkRule::default();
        let systems = [30000142, 30000144, 30000145, 30000139, 30002187, 30001046];
        let mut n = 0;
        for (i, &sa) in systems.iter().enumerate() {
            for &sb in &systems[i..] {
                for dt in [
                    0, 100, 449, 450, 451, 900, 1300, 1800, 2340, 3150, 3151, 4000,
                ] {
                    for shared in [false, true] {
                        let a = rec(1, 0, sa, &[10, 11]);
                        let b = rec(2, dt, sb, if shared { &[11, 12] } else { &[12] });
                        let by_score = r.score(&a, &b, u) >= r.threshold;
                        assert_eq!(r.links(&a, &b, u), by_score, "{sa} {sb} {dt} {shared}");
                        assert_eq!(r.links(&a, &b, u), r.links(&b, &a, u));
                        n += by_score as usize;
                    }
                }
            }
        }
        assert!(n > 10);
    }

    #[test]
    fn adjacent_strangers_do_not_link_same_system_neighbours_do() {
        let u = Universe::embedded();
        let r = LinkRule::default();
        // Jita and Perimeter are adjacent.
        assert!(!r.links(&rec(1, 0, 30000142, &[1]), &rec(2, 10, 30000144, &[2]), u));
        // Strangers in one system at one time: not by default, yes without the requirement.
        assert!(!r.links(&rec(1, 0, 30000142, &[1]), &rec(2, 300, 30000142, &[2]), u));
        let loose = LinkRule {
            require_shared_participant: false,
            ..LinkRule::default()
        };
        assert!(loose.links(&rec(1, 0, 30000142, &[1]), &rec(2, 300, 30000142, &[2]), u));
        assert!(r.links(&rec(1, 0, 30000142, &[1]), &rec(2, 1200, 30000144, &[1]), u));
        // Different regions, not adjacent: never.
        assert!(!r.links(&rec(1, 0, 30000142, &[1]), &rec(2, 0, 30001046, &[1]), u));
    }
}
