//! Random killmail histories for the engine tests: a few communities of pilots in a few
//! alliances fighting in a small patch of real, gate-connected systems (crossing region
//! borders), with pods, NPC kills, structure losses and follow-up kills mixed in, and names,
//! affiliations, times and ISK values chosen so that first appearances and exact ties matter.

#![allow(dead_code)]

use std::collections::BTreeMap;

use battles_dataflow::{
    Attacker, BattleChange, BattleReport, Killmail, StepOutput, Universe, Victim,
};
use chrono::{TimeZone, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// Jita and neighbours (The Forge), plus Lonetrek systems next door across the border.
pub const SYSTEMS: &[i64] = &[
    30000142, 30000144, 30000145, 30000139, 30000140, 30000143, 30002187, 30001046,
];

/// Pilot communities: pilots, corporations and alliances of different communities are
/// disjoint, so fights of different communities stay apart unless a third party joins them.
const COMMUNITIES: i64 = 3;
const PILOTS_PER_COMMUNITY: i64 = 20;

/// A pilot of a community: (character, corporation, alliance). Five pilots a corporation, two
/// alliances a community, the last corporation of each community in none; one appearance in 20
/// flies for a community-wide corporation without alliance, so first appearances matter.
fn pilot(rng: &mut ChaCha8Rng, community: i64) -> (i64, Option<i64>, Option<i64>) {
    let member = rng.random_range(0..PILOTS_PER_COMMUNITY);
    let c = community * PILOTS_PER_COMMUNITY + member;
    if rng.random_bool(0.05) {
        return (90_000_000 + c, Some(98_100_000 + community), None);
    }
    let corp = 98_000_000 + c / 5;
    let alliance = (member / 5 != 3).then_some(99_000_000 + community * 2 + member / 10);
    (90_000_000 + c, Some(corp), alliance)
}

/// A name as records have them: absent, empty, or one of two spellings.
fn name(rng: &mut ChaCha8Rng, id: Option<i64>, prefix: &str) -> Option<String> {
    match rng.random_range(0..4) {
        0 => None,
        1 => Some(String::new()),
        _ => id.map(|i| format!("{prefix} {i}{}", ["", "'"][rng.random_range(0..2)])),
    }
}

/// ISK values: a few round values (so sums tie exactly), else anything below a billion.
fn isk(rng: &mut ChaCha8Rng) -> i64 {
    match rng.random_range(0..10) {
        0 => 0,
        1 => 50_000_000,
        _ => rng.random_range(0..1_000_000_000),
    }
}

/// `n` killmails over `1 + n / 40` hours. Half the times are whole half-minutes (exact time
/// ties). Kinds: fights inside one community (sometimes with a third party from another), NPC
/// kills, pods and structure losses shot by anyone, and follow-ups of the killmail before (the
/// same system and attackers up to 15 minutes later, the pod of its victim or another structure),
/// which make satellite runs and attachment choices at the satellite window's edge.
pub fn random_history(seed: u64, n: usize) -> Vec<Killmail> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let u = Universe::embedded();
    let mut systems: Vec<i64> = SYSTEMS.to_vec();
    // Neighbours of Jita and Perimeter, some across the region border.
    for s in [30000142i64, 30000144] {
        for nb in u.neighbours(s) {
            if !systems.contains(nb) {
                systems.push(*nb);
            }
        }
    }
    let hours = 1 + n as i64 / 40;
    let t0 = Utc
        .with_ymd_and_hms(2025, 3, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let mut out: Vec<Killmail> = Vec::with_capacity(n);
    for i in 0..n {
        let kind = rng.random_range(0..10);
        let id = 100_000 + i as i64;
        let km = match out.last() {
            Some(before) if kind == 3 => follow_up(&mut rng, before, id),
            _ => fresh_killmail(&mut rng, &systems, t0, hours, kind, id),
        };
        out.push(km);
    }
    out
}

/// A killmail of the given kind (0: NPC kill, 1: pod, 2: structure, else a ship fight).
fn fresh_killmail(
    rng: &mut ChaCha8Rng,
    systems: &[i64],
    t0: i64,
    hours: i64,
    kind: u32,
    id: i64,
) -> Killmail {
    let u = Universe::embedded();
    let system = *systems.choose(rng).unwrap();
    let s = u.system(system).unwrap();
    let time = if rng.random_bool(0.5) {
        t0 + 30 * rng.random_range(0..hours * 120)
    } else {
        t0 + rng.random_range(0..hours * 3600)
    };
    let community = rng.random_range(0..COMMUNITIES);
    let (vc, vcorp, vall) = pilot(rng, community);
    let npc_only = kind == 0;
    let pod = kind == 1;
    let structure = kind == 2;
    let satellite = npc_only || pod || structure;
    let n_att = rng.random_range(1..6);
    let mut attackers: Vec<Attacker> = (0..n_att)
        .map(|j| {
            // Fights stay in their community but for an occasional third party; satellites
            // are shot by anyone.
            let from = if satellite || rng.random_bool(0.08) {
                rng.random_range(0..COMMUNITIES)
            } else {
                community
            };
            let (c, corp, all) = pilot(rng, from);
            Attacker {
                character_id: (!npc_only).then_some(c),
                character_name: name(rng, Some(c), "Pilot"),
                corporation_id: if npc_only { Some(1_000_125) } else { corp },
                corporation_name: name(rng, corp, "Corp"),
                alliance_id: if npc_only { None } else { all },
                alliance_name: name(rng, all, "Alliance"),
                faction_id: None,
                ship_type_id: Some([587, 603, 11379][rng.random_range(0..3)]),
                ship_type_name: None,
                weapon_type_id: None,
                damage_done: rng.random_range(0..1000),
                final_blow: j == 0,
            }
        })
        .collect();
    attackers.sort_by_key(|a| (a.character_id, !a.final_blow));
    attackers.dedup_by_key(|a| a.character_id);
    if !attackers.iter().any(|a| a.final_blow) {
        attackers[0].final_blow = true;
    }
    let (ship, group, category) = if pod {
        (670, 29, 6)
    } else if structure {
        (35832, 1657, 65)
    } else {
        (587, 25, 6)
    };
    Killmail {
        killmail_id: id,
        killmail_hash: None,
        killmail_time: Utc.timestamp_opt(time, 0).unwrap(),
        solar_system_id: system,
        solar_system_name: s.name.clone(),
        constellation_id: s.constellation_id,
        region_id: s.region_id,
        region_name: u.region_name(s.region_id).unwrap_or("").to_string(),
        victim: Victim {
            character_id: if structure { None } else { Some(vc) },
            character_name: name(rng, Some(vc), "Pilot"),
            corporation_id: vcorp,
            corporation_name: name(rng, vcorp, "Corp"),
            alliance_id: vall,
            alliance_name: name(rng, vall, "Alliance"),
            faction_id: None,
            ship_type_id: ship,
            ship_type_name: None,
            ship_group_id: Some(group),
            ship_category_id: Some(category),
            damage_taken: rng.random_range(100..5000),
        },
        attackers,
        isk_value: isk(rng),
        isk_estimated: rng.random_bool(0.02),
        dropped_value: None,
        destroyed_value: None,
        fitted_value: None,
        npc: None,
        solo: None,
        awox: None,
    }
}

/// The same attackers in the same system a little later: the pod of `before`'s victim, or
/// (when it had no pilot) another structure. Gaps straddle the 450 s satellite window.
fn follow_up(rng: &mut ChaCha8Rng, before: &Killmail, id: i64) -> Killmail {
    let gap = [0, 30, 449, 450, 451, 900][rng.random_range(0..6)];
    let mut km = before.clone();
    km.killmail_id = id;
    km.killmail_time = before.killmail_time + chrono::Duration::seconds(gap);
    if km.victim.character_id.is_some() {
        km.victim.ship_type_id = 670;
        km.victim.ship_group_id = Some(29);
        km.victim.ship_category_id = Some(6);
    }
    km.isk_value = isk(rng);
    km
}

/// The battles the engine's outputs add up to, kept by applying every step's changes.
#[derive(Default)]
pub struct Replica {
    pub battles: BTreeMap<Uuid, BattleReport>,
}

impl Replica {
    pub fn apply(&mut self, out: &StepOutput) {
        let mut ids: Vec<_> = out.changes.iter().map(BattleChange::battle_id).collect();
        ids.dedup();
        assert_eq!(ids.len(), out.changes.len(), "one change per battle id");
        for change in &out.changes {
            let old = self.battles.remove(&change.battle_id());
            assert_eq!(
                old.as_ref(),
                change.old_report().map(|r| &**r),
                "a change whose old report was not current: {change:?}"
            );
        }
        for r in out.upserts() {
            self.battles.insert(r.battle_id, (**r).clone());
        }
    }

    pub fn sorted(&self) -> Vec<BattleReport> {
        self.battles.values().cloned().collect()
    }
}
