//! Random killmail histories for the engine tests: a few pilots in a few alliances fighting in a
//! small patch of real, gate-connected systems (crossing a region border), with pods, NPC kills
//! and structure losses mixed in.

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

pub fn random_history(seed: u64, n: usize) -> Vec<Killmail> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let u = Universe::embedded();
    let mut systems: Vec<i64> = SYSTEMS.to_vec();
    // Add a cross-region neighbour of Jita's region if one exists near.
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
    let pilot = |rng: &mut ChaCha8Rng| -> (i64, i64, Option<i64>) {
        let c = rng.random_range(0..60i64);
        let corp = 98_000_000 + c % 12;
        let alliance = if c % 12 < 9 {
            Some(99_000_000 + c % 4)
        } else {
            None
        };
        (90_000_000 + c, corp, alliance)
    };
    (0..n)
        .map(|i| {
            let system = *systems.choose(&mut rng).unwrap();
            let s = u.system(system).unwrap();
            let time = t0 + rng.random_range(0..hours * 3600);
            let (vc, vcorp, vall) = pilot(&mut rng);
            let kind = rng.random_range(0..10);
            let npc_only = kind == 0;
            let pod = kind == 1;
            let structure = kind == 2;
            let n_att = rng.random_range(1..6);
            let mut attackers: Vec<Attacker> = (0..n_att)
                .map(|j| {
                    let (c, corp, all) = pilot(&mut rng);
                    Attacker {
                        character_id: if npc_only { None } else { Some(c) },
                        character_name: Some(format!("Pilot {c}")),
                        corporation_id: if npc_only {
                            Some(1_000_125)
                        } else {
                            Some(corp)
                        },
                        corporation_name: None,
                        alliance_id: if npc_only { None } else { all },
                        alliance_name: None,
                        faction_id: None,
                        ship_type_id: Some(587),
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
                killmail_id: 100_000 + i as i64,
                killmail_hash: None,
                killmail_time: Utc.timestamp_opt(time, 0).unwrap(),
                solar_system_id: system,
                solar_system_name: s.name.clone(),
                constellation_id: s.constellation_id,
                region_id: s.region_id,
                region_name: u.region_name(s.region_id).unwrap_or("").to_string(),
                victim: Victim {
                    character_id: if structure { None } else { Some(vc) },
                    character_name: None,
                    corporation_id: Some(vcorp),
                    corporation_name: None,
                    alliance_id: vall,
                    alliance_name: None,
                    faction_id: None,
                    ship_type_id: ship,
                    ship_type_name: None,
                    ship_group_id: Some(group),
                    ship_category_id: Some(category),
                    damage_taken: rng.random_range(100..5000),
                },
                attackers,
                isk_value: rng.random_range(0..1_000_000_000),
                isk_estimated: false,
                dropped_value: None,
                destroyed_value: None,
                fitted_value: None,
                npc: None,
                solo: None,
                awox: None,
            }
        })
        .collect()
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
