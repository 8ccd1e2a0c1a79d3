//! Turns one described loss (who died in what, who shot, where and when) into a full enriched
//! [`Killmail`]: names from the population and the SDE, damage split among attackers with a
//! final blow, ISK values drawn log-normally around the class price, and zKillboard-like flags.
//! The killmail id and hash are left empty (0 / `None`): ids are handed out later, in time order.

use battles_dataflow::{Attacker, Killmail, Victim};
use chrono::DateTime;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::catalog::{weapons, ShipClass};
use super::population::{lognormal, PilotIx, Population};
use super::World;

/// Who or what was destroyed.
#[derive(Clone, Copy, Debug)]
pub enum Loser {
    /// A character's ship or capsule.
    Pilot {
        pilot: PilotIx,
        class: ShipClass,
        ship: i64,
    },
    /// A structure or deployable owned by a corporation (index in the population).
    Owned {
        corporation: usize,
        type_id: i64,
        median_isk: f64,
        median_ehp: f64,
    },
}

/// One attacker.
#[derive(Clone, Copy, Debug)]
pub enum Shooter {
    Player {
        pilot: PilotIx,
        class: ShipClass,
        ship: i64,
    },
    /// A rat or sentry gun: no character.
    Npc {
        corporation: Option<(i64, &'static str)>,
        faction_id: Option<i64>,
        type_id: i64,
    },
}

impl Shooter {
    pub fn pilot(&self) -> Option<PilotIx> {
        match self {
            Shooter::Player { pilot, .. } => Some(*pilot),
            Shooter::Npc { .. } => None,
        }
    }
}

/// A loss to turn into a killmail.
#[derive(Clone, Debug)]
pub struct Loss {
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub system: i64,
    pub victim: Loser,
    /// At least one.
    pub attackers: Vec<Shooter>,
}

fn type_name(world: &World, id: i64) -> Option<String> {
    world.geo.universe.item_type(id).map(|t| t.name.clone())
}

/// Builds the killmail of a loss.
pub fn build(world: &World, rng: &mut impl Rng, loss: &Loss) -> Killmail {
    assert!(!loss.attackers.is_empty(), "a loss has attackers");
    let pop: &Population = &world.pop;
    let universe = world.geo.universe;
    let system = universe.system(loss.system);

    let (victim, median_isk, median_ehp) = match loss.victim {
        Loser::Pilot { pilot, class, ship } => {
            let p = &pop.pilots[pilot];
            let corp = &pop.corporations[p.corporation];
            let alliance = corp.alliance.map(|a| &pop.alliances[a]);
            let info = class.info();
            let median_isk = if class == ShipClass::Capsule && rng.random_bool(0.15) {
                // Implants: a pod can be worth more than the ship.
                lognormal(rng, 300.0e6, 1.0)
            } else {
                info.median_isk
            };
            (
                victim_of(
                    world,
                    Some((p.character_id, p.name.clone())),
                    corp.id,
                    corp.name.clone(),
                    alliance.map(|a| (a.id, a.name.clone())),
                    ship,
                ),
                median_isk,
                info.median_ehp,
            )
        }
        Loser::Owned {
            corporation,
            type_id,
            median_isk,
            median_ehp,
        } => {
            let corp = &pop.corporations[corporation];
            let alliance = corp.alliance.map(|a| &pop.alliances[a]);
            (
                victim_of(
                    world,
                    None,
                    corp.id,
                    corp.name.clone(),
                    alliance.map(|a| (a.id, a.name.clone())),
                    type_id,
                ),
                median_isk,
                median_ehp,
            )
        }
    };
    let damage_taken = lognormal(rng, median_ehp, 0.4).max(1.0) as i64;
    let attackers = split_damage(world, rng, &loss.attackers, damage_taken);

    let isk_value = lognormal(rng, median_isk, 0.5).max(1_000.0) as i64;
    let dropped = (isk_value as f64 * rng.random_range(0.0..0.5)) as i64;
    let fitted = (isk_value as f64 * rng.random_range(0.8..1.0)) as i64;
    let players: Vec<PilotIx> = loss.attackers.iter().filter_map(Shooter::pilot).collect();
    let victim_alliance = victim.alliance_id;
    let awox = victim_alliance.is_some()
        && players
            .iter()
            .any(|&p| pop.alliance_of(p).map(|a| pop.alliances[a].id) == victim_alliance);

    Killmail {
        killmail_id: 0,
        killmail_hash: None,
        killmail_time: DateTime::from_timestamp(loss.time, 0).expect("generated times are valid"),
        solar_system_id: loss.system,
        solar_system_name: system.map(|s| s.name.clone()).unwrap_or_default(),
        constellation_id: system.map(|s| s.constellation_id).unwrap_or_default(),
        region_id: system.map(|s| s.region_id).unwrap_or_default(),
        region_name: system
            .and_then(|s| universe.region_name(s.region_id))
            .unwrap_or_default()
            .to_string(),
        victim: Victim {
            damage_taken,
            ..victim
        },
        attackers,
        isk_value,
        isk_estimated: false,
        dropped_value: Some(dropped),
        destroyed_value: Some(isk_value - dropped),
        fitted_value: Some(fitted),
        npc: Some(players.is_empty()),
        solo: Some(players.len() == 1 && loss.attackers.len() == 1),
        awox: Some(awox),
    }
}

fn victim_of(
    world: &World,
    character: Option<(i64, String)>,
    corporation_id: i64,
    corporation_name: String,
    alliance: Option<(i64, String)>,
    ship: i64,
) -> Victim {
    let t = world.geo.universe.item_type(ship);
    let (character_id, character_name) = character.unzip();
    let (alliance_id, alliance_name) = alliance.unzip();
    Victim {
        character_id,
        character_name,
        corporation_id: Some(corporation_id),
        corporation_name: Some(corporation_name),
        alliance_id,
        alliance_name,
        faction_id: None,
        ship_type_id: ship,
        ship_type_name: t.map(|t| t.name.clone()),
        ship_group_id: t.map(|t| t.group_id),
        ship_category_id: t.map(|t| t.category_id),
        damage_taken: 0,
    }
}

/// Attackers with damage summing to `total`, one final blow, sorted by damage (as ESI does).
fn split_damage(
    world: &World,
    rng: &mut impl Rng,
    shooters: &[Shooter],
    total: i64,
) -> Vec<Attacker> {
    let weights: Vec<f64> = shooters
        .iter()
        .map(|s| {
            let base = match s {
                Shooter::Player { class, .. } => class.info().dps.max(0.05),
                Shooter::Npc { .. } => 1.0,
            };
            // Tacklers and e-war pilots often do no damage at all.
            if shooters.len() > 1 && rng.random_bool(0.1) {
                0.0
            } else {
                base * lognormal(rng, 1.0, 0.6)
            }
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut damage: Vec<i64> = if sum > 0.0 {
        weights
            .iter()
            .map(|w| (total as f64 * w / sum) as i64)
            .collect()
    } else {
        let mut d = vec![0; shooters.len()];
        d[0] = total;
        d
    };
    let assigned: i64 = damage.iter().sum();
    let top = (0..damage.len()).max_by_key(|&i| damage[i]).unwrap_or(0);
    damage[top] += total - assigned;
    let dealers: Vec<usize> = (0..damage.len()).filter(|&i| damage[i] > 0).collect();
    let final_blow = dealers
        .choose_weighted(rng, |&i| damage[i] as f64)
        .copied()
        .unwrap_or(top);

    let pop = &world.pop;
    let mut out: Vec<Attacker> = shooters
        .iter()
        .zip(&damage)
        .enumerate()
        .map(|(i, (s, &damage_done))| match *s {
            Shooter::Player { pilot, class, ship } => {
                let p = &pop.pilots[pilot];
                let corp = &pop.corporations[p.corporation];
                let alliance = corp.alliance.map(|a| &pop.alliances[a]);
                let weapon = if class.info().dps == 0.0 {
                    ship
                } else {
                    *weapons(class.info().weapons)
                        .choose(rng)
                        .expect("weapon lists are not empty")
                };
                Attacker {
                    character_id: Some(p.character_id),
                    character_name: Some(p.name.clone()),
                    corporation_id: Some(corp.id),
                    corporation_name: Some(corp.name.clone()),
                    alliance_id: alliance.map(|a| a.id),
                    alliance_name: alliance.map(|a| a.name.clone()),
                    faction_id: None,
                    ship_type_id: Some(ship),
                    ship_type_name: type_name(world, ship),
                    weapon_type_id: Some(weapon),
                    damage_done,
                    final_blow: i == final_blow,
                }
            }
            Shooter::Npc {
                corporation,
                faction_id,
                type_id,
            } => Attacker {
                character_id: None,
                character_name: None,
                corporation_id: corporation.map(|c| c.0),
                corporation_name: corporation.map(|c| c.1.to_string()),
                alliance_id: None,
                alliance_name: None,
                faction_id,
                ship_type_id: Some(type_id),
                ship_type_name: type_name(world, type_id),
                weapon_type_id: Some(type_id),
                damage_done,
                final_blow: i == final_blow,
            },
        })
        .collect();
    out.sort_by_key(|a| std::cmp::Reverse(a.damage_done));
    out
}
