//! Killmails that belong to no battle: solo and small-gang kills, high-sec ganks, rats killing
//! players, roaming gangs, and the occasional spam run (one pilot killing dozens of
//! deployables). Each background event is its own true battle (with the pod that may follow);
//! a roaming gang's kills in the systems it passes through, minutes apart, are separate
//! engagements and so separate true battles.
//! Events can be placed near a running fight (an adjacent system, the same constellation) but
//! always with pilots whose alliances are not in that fight.

use std::collections::BTreeSet;

use rand::seq::IndexedRandom;
use rand::Rng;

use super::catalog::{ShipClass, CAPSULE, RAT_FACTIONS, SLEEPERS, SPAM_DEPLOYABLES};
use super::geography::Space;
use super::loss::{Loser, Loss, Shooter};
use super::population::PilotIx;
use super::truth::{BattleKind, KillKind, Side, TrueBattleId};
use super::{Draft, World};

/// Where and when a background event happens, and whose alliances must stay out of it.
pub struct Placement<'a> {
    pub battle: TrueBattleId,
    pub time: i64,
    /// `None`: anywhere that suits the kind of event.
    pub system: Option<i64>,
    pub excluded_alliances: &'a BTreeSet<usize>,
}

/// A random pilot whose alliance is not excluded (gives up after a few tries: the population
/// is far larger than any fight).
pub fn outsider(world: &World, rng: &mut impl Rng, excluded: &BTreeSet<usize>) -> PilotIx {
    let n = world.pop.pilots.len();
    let mut p = rng.random_range(0..n);
    for _ in 0..20 {
        match world.pop.alliance_of(p) {
            Some(a) if excluded.contains(&a) => p = rng.random_range(0..n),
            _ => break,
        }
    }
    p
}

/// Pilots of the same group as `leader` (its alliance, else its corporation), `n` at most.
fn gang(world: &World, rng: &mut impl Rng, leader: PilotIx, n: usize) -> Vec<PilotIx> {
    let mut out = vec![leader];
    if n <= 1 {
        return out;
    }
    let mates: Vec<PilotIx> = match world.pop.alliance_of(leader) {
        Some(a) => world.pop.alliances[a].pilots.clone(),
        None => world.pop.npc_corp_pilots.clone(),
    };
    out.extend(
        mates
            .choose_multiple(rng, n.min(mates.len()))
            .copied()
            .filter(|&p| p != leader)
            .take(n - 1),
    );
    out
}

fn hull(rng: &mut impl Rng, classes: &[ShipClass]) -> (ShipClass, i64) {
    let class = *classes.choose(rng).expect("non-empty");
    (class, *class.info().types.choose(rng).expect("non-empty"))
}

fn players(rng: &mut impl Rng, pilots: &[PilotIx], classes: &[ShipClass]) -> Vec<Shooter> {
    pilots
        .iter()
        .map(|&pilot| {
            let (class, ship) = hull(rng, classes);
            Shooter::Player { pilot, class, ship }
        })
        .collect()
}

/// One background event: one kill and maybe its pod. `None` system means a suitable random one.
pub fn event(world: &World, rng: &mut impl Rng, at: &Placement<'_>) -> Vec<Draft> {
    use ShipClass::*;
    let geo = &world.geo;
    let r: f64 = rng.random();
    // Ganks need high-sec; if placed near a fight (never in high-sec here), roam instead.
    let (kind, default_space) = if r < 0.30 {
        (
            Event::Solo,
            pick_space(rng, &[(Space::Null, 0.4), (Space::Low, 0.4)]),
        )
    } else if r < 0.50 {
        (Event::Gank, Space::High)
    } else if r < 0.85 {
        (
            Event::Rats,
            pick_space(rng, &[(Space::Null, 0.6), (Space::Low, 0.2)]),
        )
    } else {
        (
            Event::Roam,
            pick_space(rng, &[(Space::Null, 0.7), (Space::Low, 0.3)]),
        )
    };
    let system = at
        .system
        .unwrap_or_else(|| geo.random_in(default_space, rng));
    let space = geo.space(system);
    let kind = match (kind, space) {
        (Event::Gank, s) if s != Space::High => Event::Solo,
        (k, _) => k,
    };
    let excluded = at.excluded_alliances;
    let victim_pilot = outsider(world, rng, excluded);
    let victim_alliance = world.pop.alliance_of(victim_pilot);
    // Attackers from another group than the victim's.
    let mut leader = outsider(world, rng, excluded);
    for _ in 0..10 {
        if leader != victim_pilot
            && (victim_alliance.is_none() || world.pop.alliance_of(leader) != victim_alliance)
        {
            break;
        }
        leader = outsider(world, rng, excluded);
    }

    let (victim_ship, attackers, kill_kind, pod_chance) = match kind {
        Event::Solo => {
            let n = rng.random_range(1..=6).min(rng.random_range(1..=6));
            let pilots = gang(world, rng, leader, n);
            let small = [Frigate, Destroyer, Cruiser, AssaultFrigate, Interceptor];
            let a = players(
                rng,
                &pilots,
                &[
                    Frigate,
                    Destroyer,
                    Cruiser,
                    TacticalDestroyer,
                    StrategicCruiser,
                ],
            );
            let victim_classes: &[ShipClass] = if space == Space::Wormhole {
                &[CovertOps, StrategicCruiser, Hauler, Cruiser]
            } else {
                &small
            };
            (hull(rng, victim_classes), a, KillKind::Ship, 0.4)
        }
        Event::Roam => {
            let n = rng.random_range(5..=25);
            let pilots = gang(world, rng, leader, n);
            let a = players(
                rng,
                &pilots,
                &[
                    HeavyAssaultCruiser,
                    Interceptor,
                    Cruiser,
                    Logistics,
                    Interdictor,
                ],
            );
            let v = hull(
                rng,
                &[Battleship, Hauler, MiningBarge, Cruiser, Carrier, Exhumer],
            );
            (v, a, KillKind::Ship, 0.5)
        }
        Event::Gank => {
            let n = rng.random_range(3..=12);
            let pilots = gang(world, rng, leader, n);
            let a = players(rng, &pilots, &[Destroyer, AttackBattlecruiser]);
            let v = hull(rng, &[Freighter, Hauler, MiningBarge, Exhumer, Exhumer]);
            (v, a, KillKind::Gank, 0.3)
        }
        Event::Rats => {
            let n = rng.random_range(1..=4);
            let a: Vec<Shooter> = if space == Space::Wormhole {
                (0..n)
                    .map(|_| Shooter::Npc {
                        corporation: None,
                        faction_id: None,
                        type_id: *SLEEPERS.choose(rng).expect("non-empty"),
                    })
                    .collect()
            } else {
                let f = RAT_FACTIONS.choose(rng).expect("non-empty");
                (0..n)
                    .map(|_| Shooter::Npc {
                        corporation: Some((f.corporation_id, f.corporation_name)),
                        faction_id: Some(f.faction_id),
                        type_id: *f.ship_types.choose(rng).expect("non-empty"),
                    })
                    .collect()
            };
            let v = hull(
                rng,
                &[
                    Battleship,
                    HeavyAssaultCruiser,
                    Cruiser,
                    MiningBarge,
                    Carrier,
                ],
            );
            (v, a, KillKind::Npc, 0.0)
        }
    };
    let side = |p: PilotIx| if p == victim_pilot { Side::B } else { Side::A };
    let loss = Loss {
        time: at.time,
        system,
        victim: Loser::Pilot {
            pilot: victim_pilot,
            class: victim_ship.0,
            ship: victim_ship.1,
        },
        attackers: attackers.clone(),
    };
    let mut out = vec![Draft::new(
        world,
        rng,
        &loss,
        at.battle,
        BattleKind::Background,
        kill_kind,
        side,
    )];
    if rng.random_bool(pod_chance) {
        let n = rng.random_range(1..=attackers.len().min(3));
        let pod = Loss {
            time: at.time + rng.random_range(3..40),
            system,
            victim: Loser::Pilot {
                pilot: victim_pilot,
                class: Capsule,
                ship: CAPSULE,
            },
            attackers: attackers.choose_multiple(rng, n).copied().collect(),
        };
        out.push(Draft::new(
            world,
            rng,
            &pod,
            at.battle,
            BattleKind::Background,
            KillKind::Pod,
            side,
        ));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    Solo,
    Gank,
    Rats,
    Roam,
}

/// A band by weight; what the weights leave over goes to wormholes.
fn pick_space(rng: &mut impl Rng, weights: &[(Space, f64)]) -> Space {
    let mut r: f64 = rng.random();
    for &(s, w) in weights {
        if r < w {
            return s;
        }
        r -= w;
    }
    Space::Wormhole
}

/// A spam run: one pilot killing 20–60 deployables of random owners in one high- or low-sec
/// system over 10–40 minutes. One true battle of kind `spam`.
pub fn spam_run(world: &World, rng: &mut impl Rng, at: &Placement<'_>) -> Vec<Draft> {
    let geo = &world.geo;
    let system = at.system.unwrap_or_else(|| {
        let space = if rng.random_bool(0.6) {
            Space::High
        } else {
            Space::Low
        };
        geo.random_in(space, rng)
    });
    let killer = outsider(world, rng, at.excluded_alliances);
    let ship = hull(rng, &[ShipClass::Destroyer, ShipClass::Cruiser]);
    let count = rng.random_range(20..=60);
    let span = rng.random_range(600..=2400);
    let mut times: Vec<i64> = (0..count)
        .map(|_| at.time + rng.random_range(0..span))
        .collect();
    times.sort_unstable();
    times
        .into_iter()
        .map(|time| {
            let owner = rng.random_range(0..world.pop.pilots.len());
            let &(type_id, median_isk) = SPAM_DEPLOYABLES.choose(rng).expect("non-empty");
            let loss = Loss {
                time,
                system,
                victim: Loser::Owned {
                    corporation: world.pop.pilots[owner].corporation,
                    type_id,
                    median_isk,
                    median_ehp: 12.0e3,
                },
                attackers: vec![Shooter::Player {
                    pilot: killer,
                    class: ship.0,
                    ship: ship.1,
                }],
            };
            Draft::new(
                world,
                rng,
                &loss,
                at.battle,
                BattleKind::Spam,
                KillKind::Deployable,
                |_| Side::A,
            )
        })
        .collect()
}

/// Time between two kills of a roaming gang, in seconds.
const ROAM_GAP_SECS: std::ops::RangeInclusive<i64> = 600..=1500;

/// A roaming gang of 5 to 15 pilots flying through gates and killing one outsider in each system
/// it passes, 10 to 25 minutes apart; the gang's `battles.len()` kills are one true battle each
/// (with the pod that may follow). `at.system` is where the gang starts.
pub fn roaming_gang(
    world: &World,
    rng: &mut impl Rng,
    at: &Placement<'_>,
    battles: &[TrueBattleId],
) -> Vec<Draft> {
    use ShipClass::*;
    let geo = &world.geo;
    let start = at
        .system
        .unwrap_or_else(|| geo.random_in(pick_space(rng, &[(Space::Null, 0.7)]), rng));
    let leader = outsider(world, rng, at.excluded_alliances);
    let size = rng.random_range(5..=15);
    let gang_pilots = gang(world, rng, leader, size);
    let gang_ships = players(
        rng,
        &gang_pilots,
        &[
            HeavyAssaultCruiser,
            Interceptor,
            Cruiser,
            Logistics,
            Interdictor,
        ],
    );
    let path = geo.walk(start, battles.len().saturating_sub(1), rng);
    let mut time = at.time;
    let mut out = Vec::new();
    for (&battle, &system) in battles.iter().zip(&path) {
        let mut victim = outsider(world, rng, at.excluded_alliances);
        for _ in 0..10 {
            if !gang_pilots.contains(&victim) {
                break;
            }
            victim = outsider(world, rng, at.excluded_alliances);
        }
        let n = rng.random_range(gang_ships.len().div_ceil(2)..=gang_ships.len());
        let attackers: Vec<Shooter> = gang_ships.choose_multiple(rng, n).copied().collect();
        let ship = hull(rng, &[Cruiser, Frigate, Hauler, Battleship, CovertOps]);
        out.extend(kill_and_pod(
            world, rng, battle, time, system, victim, ship, attackers,
        ));
        time += rng.random_range(ROAM_GAP_SECS);
    }
    out
}

/// A ship kill of `victim` in `system` at `time` and, half of the time, its pod seconds later:
/// one background battle.
#[allow(clippy::too_many_arguments)]
fn kill_and_pod(
    world: &World,
    rng: &mut impl Rng,
    battle: TrueBattleId,
    time: i64,
    system: i64,
    victim: PilotIx,
    ship: (ShipClass, i64),
    attackers: Vec<Shooter>,
) -> Vec<Draft> {
    let side = |p: PilotIx| if p == victim { Side::B } else { Side::A };
    let loss = Loss {
        time,
        system,
        victim: Loser::Pilot {
            pilot: victim,
            class: ship.0,
            ship: ship.1,
        },
        attackers: attackers.clone(),
    };
    let mut out = vec![Draft::new(
        world,
        rng,
        &loss,
        battle,
        BattleKind::Background,
        KillKind::Ship,
        side,
    )];
    if rng.random_bool(0.5) {
        let n = rng.random_range(1..=attackers.len().min(3));
        let pod = Loss {
            time: time + rng.random_range(3..40),
            system,
            victim: Loser::Pilot {
                pilot: victim,
                class: ShipClass::Capsule,
                ship: CAPSULE,
            },
            attackers: attackers.choose_multiple(rng, n).copied().collect(),
        };
        out.push(Draft::new(
            world,
            rng,
            &pod,
            battle,
            BattleKind::Background,
            KillKind::Pod,
            side,
        ));
    }
    out
}
