//! One fight between two hostile coalitions (and sometimes a third party): heavy-tailed size,
//! duration growing with size, waves of kills, fleets with doctrines, moves through stargates,
//! pods after ship kills, the odd awox, sentry-gun kill, structure or deployable loss. A
//! [`Staging`] lets a caller set the coalitions and the place, keep the fight away from other
//! fights, and bring in pilots who reshipped after dying in another fight (see `theatre.rs`).

use std::collections::{BTreeSet, HashMap, HashSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::catalog::{ShipClass, CAPSULE, FIGHT_DEPLOYABLES, SENTRY_GUNS, STRUCTURES};
use super::geography::Space;
use super::loss::{Loser, Loss, Shooter};
use super::population::{normal, PilotIx};
use super::truth::{BattleKind, KillKind, Side, TrueBattleId};
use super::{Draft, World};

/// Where and when a fight happened and who took part, so that background kills can be placed
/// near it with other pilots.
#[derive(Clone, Debug)]
pub struct FightWindow {
    pub start: i64,
    pub end: i64,
    pub systems: Vec<i64>,
    /// Alliance indices on any side.
    pub alliances: BTreeSet<usize>,
    /// Pilots of sides A and B who lost a ship, in the order they first died.
    pub dead: Vec<(PilotIx, Side)>,
    /// Every pilot of the fight.
    pub pilots: HashSet<PilotIx>,
}

/// Ship kills (pods not counted) of a fight: Pareto with minimum 2 and tail index 1, so most
/// fights have 2–10, one in five 10+, one in fifty 100+, one in three hundred 300+.
pub fn ship_kills(rng: &mut impl Rng, cap: usize) -> usize {
    let u = rng.random::<f64>().max(1e-9);
    ((2.0 / u).floor() as usize).clamp(2, cap.max(2))
}

/// One side's fleet.
struct Fleet {
    side: Side,
    pilots: Vec<PilotIx>,
    /// Parallel to `pilots`: the hull each flies now.
    ships: Vec<(ShipClass, i64)>,
    doctrine: Doctrine,
}

/// What a fleet flies.
#[derive(Clone, Copy)]
struct Doctrine {
    main: ShipClass,
    hull: i64,
    capitals: bool,
}

impl Doctrine {
    fn pick(rng: &mut impl Rng, kills: usize) -> Doctrine {
        use ShipClass::*;
        let small: &[ShipClass] = &[
            Frigate,
            Destroyer,
            Cruiser,
            AssaultFrigate,
            TacticalDestroyer,
            HeavyAssaultCruiser,
            StrategicCruiser,
        ];
        let large: &[ShipClass] = &[
            Battleship,
            HeavyAssaultCruiser,
            Battlecruiser,
            Cruiser,
            StrategicCruiser,
            AttackBattlecruiser,
            StealthBomber,
            CommandDestroyer,
        ];
        let list = if kills < 15 { small } else { large };
        let main = *list.choose(rng).expect("non-empty");
        let hull = *main.info().types.choose(rng).expect("non-empty");
        Doctrine {
            main,
            hull,
            capitals: kills >= 120 && rng.random_bool(0.5),
        }
    }

    /// The hull of one more pilot of this fleet.
    fn ship(&self, rng: &mut impl Rng) -> (ShipClass, i64) {
        use ShipClass::*;
        let r: f64 = rng.random();
        let class = if r < 0.62 {
            return (self.main, self.hull);
        } else if r < 0.74 {
            Logistics
        } else if r < 0.82 {
            *[Interceptor, Interdictor, HeavyInterdictor]
                .choose(rng)
                .expect("non-empty")
        } else if r < 0.88 {
            *[ForceRecon, CommandShip, CommandDestroyer]
                .choose(rng)
                .expect("non-empty")
        } else if self.capitals && r < 0.93 {
            let c: f64 = rng.random();
            if c < 0.45 {
                Dreadnought
            } else if c < 0.75 {
                Carrier
            } else if c < 0.95 {
                ForceAuxiliary
            } else if c < 0.99 {
                Supercarrier
            } else {
                Titan
            }
        } else {
            *[Frigate, Destroyer, Cruiser, Battlecruiser, StealthBomber]
                .choose(rng)
                .expect("non-empty")
        };
        (class, *class.info().types.choose(rng).expect("non-empty"))
    }
}

/// Picks `n` pilots of the given alliances who are not `busy` (all of them if fewer) in a
/// deterministic order.
fn enlist(
    world: &World,
    rng: &mut impl Rng,
    alliances: &[usize],
    n: usize,
    busy: &HashSet<PilotIx>,
) -> Vec<PilotIx> {
    let pool: Vec<PilotIx> = alliances
        .iter()
        .flat_map(|&a| world.pop.alliances[a].pilots.iter().copied())
        .filter(|p| !busy.contains(p))
        .collect();
    pool.choose_multiple(rng, n.min(pool.len()))
        .copied()
        .collect()
}

/// The alliances a coalition sends to a fight of this size.
fn contingent(world: &World, rng: &mut impl Rng, coalition: usize, kills: usize) -> Vec<usize> {
    let mut members = world.pop.coalitions[coalition].alliances.clone();
    members.shuffle(rng);
    let k = 1 + (kills / 40 + rng.random_range(0..2)).min(members.len() - 1);
    members.truncate(k);
    members.sort_unstable();
    members
}

/// Who fights where, when the caller decides it.
#[derive(Clone, Debug, Default)]
pub struct Staging {
    /// Coalitions of side A (the attacker) and side B (the defender).
    pub coalitions: (usize, usize),
    pub first_system: i64,
    /// Systems the fight never enters (those near other fights).
    pub avoid: BTreeSet<i64>,
    /// Pilots busy in other fights: not enlisted.
    pub busy: HashSet<PilotIx>,
    /// Pilots who died in another fight, reshipped and join this one on the same side.
    pub movers: Vec<(PilotIx, Side)>,
}

/// The inputs of one fight.
pub struct FightPlan {
    pub battle: TrueBattleId,
    /// Seconds since the epoch.
    pub start: i64,
    /// Ship kills (pods come on top).
    pub kills: usize,
    /// `None`: random coalitions in a random place.
    pub staging: Option<Staging>,
    /// Systems near other fights of the same hours: this fight neither starts nor goes there
    /// (two fights in one place at one time would be one battle).
    pub keep_out: BTreeSet<i64>,
}

/// `system` if it is outside `avoid`, else a random system of the same security band outside
/// it (or `system` after twenty tries).
fn away_from(world: &World, rng: &mut impl Rng, system: i64, avoid: &BTreeSet<i64>) -> i64 {
    let space = world.geo.space(system);
    let mut s = system;
    for _ in 0..20 {
        if !avoid.contains(&s) {
            return s;
        }
        s = world.geo.random_in(space, rng);
    }
    s
}

/// A random gate neighbour of `system` outside `avoid`.
fn neighbour_outside(
    world: &World,
    system: i64,
    avoid: &BTreeSet<i64>,
    rng: &mut impl Rng,
) -> Option<i64> {
    let options: Vec<i64> = world
        .geo
        .universe
        .neighbours(system)
        .iter()
        .copied()
        .filter(|s| !avoid.contains(s))
        .collect();
    options.choose(rng).copied()
}

/// Generates the killmails of one fight.
pub fn fight(world: &World, rng: &mut impl Rng, plan: &FightPlan) -> (Vec<Draft>, FightWindow) {
    let pop = &world.pop;
    let geo = &world.geo;
    let kills = plan.kills;
    let coalitions = pop.coalitions.len();
    let mut staging = plan.staging.clone().unwrap_or_default();
    staging.avoid.extend(plan.keep_out.iter().copied());
    let (ca, cb) = match &plan.staging {
        Some(s) => s.coalitions,
        None => {
            let ca = rng.random_range(0..coalitions);
            (ca, (ca + rng.random_range(1..coalitions)) % coalitions)
        }
    };

    // Where: mostly in the defender's (b's) space, sometimes the attacker's, low-sec, a wormhole.
    let theatre: f64 = rng.random();
    let home = |c: usize, rng: &mut _| {
        let regions = &pop.coalitions[c].home_regions;
        let region = *regions.choose(rng).expect("coalitions have homes");
        geo.random_in_region(region, rng)
    };
    let first_system = if plan.staging.is_some() {
        staging.first_system
    } else if theatre < 0.55 {
        home(cb, rng)
    } else if theatre < 0.70 {
        home(ca, rng)
    } else if theatre < 0.85 {
        geo.random_in(Space::Low, rng)
    } else if theatre < 0.93 {
        geo.random_in(Space::Wormhole, rng)
    } else {
        geo.random_in(Space::Null, rng)
    };
    let first_system = if plan.staging.is_some() {
        first_system
    } else {
        away_from(world, rng, first_system, &staging.avoid)
    };
    let space = geo.space(first_system);

    // Who: fleet sizes follow the outcome (the side that kills more brings more).
    let total = (3.0 + kills as f64 * rng.random_range(1.0..2.5)).round() as usize;
    let losses_b = if rng.random_bool(0.4) {
        let x = rng.random_range(0.8..0.97);
        if rng.random_bool(0.5) {
            x
        } else {
            1.0 - x
        }
    } else {
        rng.random_range(0.35..0.65)
    };
    let n_a = ((total as f64 * (0.2 + 0.6 * losses_b)).round() as usize).max(1);
    let n_b = total.saturating_sub(n_a).max(1);
    let npc_a = (n_a as f64 * 0.05).round() as usize;
    let npc_b = (n_b as f64 * 0.05).round() as usize;
    let neutrals: Vec<PilotIx> = pop
        .npc_corp_pilots
        .choose_multiple(rng, npc_a + npc_b)
        .copied()
        .filter(|p| !staging.busy.contains(p))
        .collect();
    let mut alliances = BTreeSet::new();
    let mut fleets = Vec::new();
    for (side, coalition, n, npc) in [
        (Side::A, ca, n_a, &neutrals[..npc_a.min(neutrals.len())]),
        (Side::B, cb, n_b, &neutrals[npc_a.min(neutrals.len())..]),
    ] {
        let members = contingent(world, rng, coalition, kills);
        alliances.extend(members.iter().copied());
        let mut pilots = enlist(
            world,
            rng,
            &members,
            n.saturating_sub(npc.len()).max(1),
            &staging.busy,
        );
        pilots.extend_from_slice(npc);
        let movers: Vec<PilotIx> = staging
            .movers
            .iter()
            .filter(|(p, s)| *s == side && !pilots.contains(p))
            .map(|(p, _)| *p)
            .collect();
        pilots.extend(movers);
        fleets.push(Fleet {
            side,
            pilots,
            ships: Vec::new(),
            doctrine: Doctrine::pick(rng, kills),
        });
    }
    // A third party: another coalition's gang or an independent alliance shooting everybody.
    if kills >= 8 && rng.random_bool(0.15) {
        let members = if coalitions > 2 && rng.random_bool(0.5) {
            let cc = (0..coalitions)
                .filter(|&c| c != ca && c != cb)
                .collect::<Vec<_>>();
            let c = *cc.choose(rng).expect("more than two coalitions");
            contingent(world, rng, c, kills / 4)
        } else {
            vec![*pop
                .independent_alliances
                .choose(rng)
                .expect("independent alliances exist")]
        };
        alliances.extend(members.iter().copied());
        let n = ((total as f64 * rng.random_range(0.08..0.25)).round() as usize).max(3);
        let pilots = enlist(world, rng, &members, n, &staging.busy);
        fleets.push(Fleet {
            side: Side::Third,
            pilots,
            ships: Vec::new(),
            doctrine: Doctrine::pick(rng, kills / 2),
        });
    }
    for f in &mut fleets {
        let doctrine = f.doctrine;
        f.ships = (0..f.pilots.len()).map(|_| doctrine.ship(rng)).collect();
    }
    let side_of: HashMap<PilotIx, Side> = fleets
        .iter()
        .flat_map(|f| f.pilots.iter().map(move |&p| (p, f.side)))
        .collect();
    let sizes: Vec<usize> = fleets.iter().map(|f| f.pilots.len()).collect();
    let all: usize = sizes.iter().sum();
    let third_share = sizes.get(2).map_or(0.0, |&n| n as f64 / all as f64);

    // The path: some fights move through gates (and sometimes back).
    let gated = !geo.universe.neighbours(first_system).is_empty();
    let mut path = vec![first_system];
    if gated && kills >= 4 && rng.random_bool(0.35) {
        for _ in 0..rng.random_range(1..=3) {
            let cur = *path.last().expect("non-empty");
            let next = if path.len() >= 2 && rng.random_bool(0.25) {
                path[path.len() - 2]
            } else {
                neighbour_outside(world, cur, &staging.avoid, rng).unwrap_or(cur)
            };
            path.push(next);
        }
    }
    let mut cuts: Vec<f64> = (1..path.len()).map(|_| rng.random()).collect();
    cuts.sort_by(f64::total_cmp);

    // When: waves of kills over a duration that grows with size.
    let minutes = (2.0 + 1.8 * (kills as f64).powf(0.7)) * (0.25 * normal(rng)).exp();
    let duration = (minutes * 60.0).clamp(60.0, 8.0 * 3600.0);
    let waves = 1 + (kills / 25).min(11);
    let centers: Vec<f64> = (0..waves).map(|_| rng.random()).collect();
    let spread = 0.5 / waves as f64;
    let mut fractions: Vec<f64> = (0..kills)
        .map(|_| {
            if rng.random_bool(0.25) {
                rng.random()
            } else {
                let c = *centers.choose(rng).expect("non-empty");
                (c + spread * normal(rng)).clamp(0.0, 1.0)
            }
        })
        .collect();
    fractions.sort_by(f64::total_cmp);

    let mut drafts = Vec::with_capacity(kills * 3 / 2);
    let mut dead: HashSet<PilotIx> = HashSet::new();
    let mut died: Vec<(PilotIx, Side)> = Vec::new();
    let mut ctx = KillCtx {
        world,
        battle: plan.battle,
        side_of: &side_of,
        drafts: &mut drafts,
    };
    let mut last_time = plan.start;
    for f in fractions {
        let time = plan.start + (f * duration) as i64;
        last_time = last_time.max(time);
        let leg = cuts.iter().filter(|&&c| c <= f).count();
        let mut system = path[leg];
        if gated && rng.random_bool(0.04) {
            system = neighbour_outside(world, system, &staging.avoid, rng).unwrap_or(system);
        }
        // Which fleet loses this one.
        let loser = if third_share > 0.0 && rng.random_bool(third_share * 0.8) {
            2
        } else if rng.random_bool(losses_b) {
            1
        } else {
            0
        };
        // Who shoots: the enemy fleet, the third party, or (shooting the third party) either side.
        let shooter = if loser == 2 {
            if rng.random_bool(sizes[0] as f64 / (sizes[0] + sizes[1]) as f64) {
                0
            } else {
                1
            }
        } else if third_share > 0.0 && rng.random_bool((third_share * 1.2).min(0.9)) {
            2
        } else {
            1 - loser
        };
        let roll: f64 = rng.random();
        if kills >= 20 && roll < 0.015 {
            ctx.owned_loss(rng, &fleets[loser], &fleets[shooter], time, system, true);
            continue;
        }
        if kills >= 5 && roll < 0.035 {
            ctx.owned_loss(rng, &fleets[loser], &fleets[shooter], time, system, false);
            continue;
        }

        // The victim: preferably somebody still alive; the dead reship.
        let fleet = &mut fleets[loser];
        let mut v = rng.random_range(0..fleet.pilots.len());
        for _ in 0..3 {
            if !dead.contains(&fleet.pilots[v]) {
                break;
            }
            v = rng.random_range(0..fleet.pilots.len());
        }
        if dead.insert(fleet.pilots[v]) {
            if fleet.side != Side::Third {
                died.push((fleet.pilots[v], fleet.side));
            }
        } else {
            fleet.ships[v] = fleet.doctrine.ship(rng);
        }
        let (victim_pilot, (class, ship)) = (fleet.pilots[v], fleet.ships[v]);
        let victim = Loser::Pilot {
            pilot: victim_pilot,
            class,
            ship,
        };

        let (attackers, kind) = if (0.035..0.038).contains(&roll) {
            // Awox: shot by its own alliance.
            let own = pop.alliance_of(victim_pilot);
            let mates: Vec<usize> = (0..fleets[loser].pilots.len())
                .filter(|&i| {
                    i != v && own.is_some() && pop.alliance_of(fleets[loser].pilots[i]) == own
                })
                .collect();
            if mates.is_empty() {
                (volley(rng, &fleets[shooter], 0.0), KillKind::Ship)
            } else {
                let n = rng.random_range(1..=2.min(mates.len()));
                let picked = mates
                    .choose_multiple(rng, n)
                    .map(|&i| player(&fleets[loser], i))
                    .collect();
                (picked, KillKind::Awox)
            }
        } else if matches!(space, Space::Low) && (0.038..0.05).contains(&roll) {
            let n = rng.random_range(1..=3);
            (sentries(rng, n), KillKind::Npc)
        } else {
            let mut a = volley(rng, &fleets[shooter], 0.0);
            if matches!(space, Space::Low) && rng.random_bool(0.2) {
                let n = rng.random_range(1..=3);
                a.extend(sentries(rng, n));
            }
            (a, KillKind::Ship)
        };
        ctx.push(rng, time, system, victim, attackers.clone(), kind);

        // The pod, seconds later, by a few of the same attackers.
        let pod_chance = if matches!(space, Space::Null | Space::Wormhole) {
            0.45
        } else {
            0.35
        };
        let players: Vec<Shooter> = attackers
            .iter()
            .copied()
            .filter(|s| s.pilot().is_some())
            .collect();
        if class != ShipClass::Capsule && !players.is_empty() && rng.random_bool(pod_chance) {
            let n = rng.random_range(1..=players.len().min(5));
            let podders = players.choose_multiple(rng, n).copied().collect();
            let pod_time = time + rng.random_range(3..40);
            last_time = last_time.max(pod_time);
            let pod = Loser::Pilot {
                pilot: victim_pilot,
                class: ShipClass::Capsule,
                ship: CAPSULE,
            };
            ctx.push(rng, pod_time, system, pod, podders, KillKind::Pod);
        }
    }
    let mut systems = path;
    systems.sort_unstable();
    systems.dedup();
    let window = FightWindow {
        start: plan.start,
        end: last_time,
        systems,
        alliances,
        dead: died,
        pilots: side_of.keys().copied().collect(),
    };
    (drafts, window)
}

fn player(fleet: &Fleet, i: usize) -> Shooter {
    Shooter::Player {
        pilot: fleet.pilots[i],
        class: fleet.ships[i].0,
        ship: fleet.ships[i].1,
    }
}

/// Attackers from one fleet: a handful in small fights, up to hundreds in blobs. `min_share`
/// raises the share of the fleet on the killmail (structures are shot by most of it).
fn volley(rng: &mut impl Rng, fleet: &Fleet, min_share: f64) -> Vec<Shooter> {
    let s = fleet.pilots.len();
    let share = if s <= 12 {
        rng.random_range(0.4f64..1.0)
    } else {
        // Most killmails of a blob carry a tenth of it, a few most of it.
        0.01 + 0.4 * rng.random::<f64>().powf(2.5)
    }
    .max(min_share);
    let mut n = ((s as f64 * share).round() as usize).clamp(1, s);
    if min_share == 0.0 {
        // Even in the largest blobs most killmails carry tens of attackers, a few hundreds.
        let limit = 40.0 + 900.0 * rng.random::<f64>().powi(3);
        n = n.min(limit as usize);
    }
    let idx: Vec<usize> = (0..s).collect();
    let mut picked: Vec<usize> = idx.choose_multiple(rng, n).copied().collect();
    picked.sort_unstable();
    picked.into_iter().map(|i| player(fleet, i)).collect()
}

fn sentries(rng: &mut impl Rng, n: usize) -> Vec<Shooter> {
    (0..n)
        .map(|_| Shooter::Npc {
            corporation: None,
            faction_id: None,
            type_id: *SENTRY_GUNS.choose(rng).expect("non-empty"),
        })
        .collect()
}

/// What every killmail of one fight shares.
struct KillCtx<'a> {
    world: &'a World,
    battle: TrueBattleId,
    side_of: &'a HashMap<PilotIx, Side>,
    drafts: &'a mut Vec<Draft>,
}

impl KillCtx<'_> {
    fn push(
        &mut self,
        rng: &mut impl Rng,
        time: i64,
        system: i64,
        victim: Loser,
        attackers: Vec<Shooter>,
        kind: KillKind,
    ) {
        let loss = Loss {
            time,
            system,
            victim,
            attackers,
        };
        let side_of = self.side_of;
        self.drafts.push(Draft::new(
            self.world,
            rng,
            &loss,
            self.battle,
            BattleKind::Fight,
            kind,
            |p| side_of[&p],
        ));
    }

    /// A structure or deployable of the losing fleet's corporations, shot by the other fleet.
    fn owned_loss(
        &mut self,
        rng: &mut impl Rng,
        loser: &Fleet,
        shooter: &Fleet,
        time: i64,
        system: i64,
        structure: bool,
    ) {
        let owner = *loser.pilots.choose(rng).expect("fleets are not empty");
        let corporation = self.world.pop.pilots[owner].corporation;
        let (type_id, median_isk, median_ehp, min_share, kind) = if structure {
            let &(t, isk) = STRUCTURES.choose(rng).expect("non-empty");
            (t, isk, 3.0e6, 0.3, KillKind::Structure)
        } else {
            let &(t, isk) = FIGHT_DEPLOYABLES.choose(rng).expect("non-empty");
            (t, isk, 20.0e3, 0.0, KillKind::Deployable)
        };
        let mut attackers = volley(rng, shooter, min_share);
        if !structure {
            attackers.truncate(rng.random_range(1..=10));
        }
        let victim = Loser::Owned {
            corporation,
            type_id,
            median_isk,
            median_ehp,
        };
        self.push(rng, time, system, victim, attackers, kind);
    }
}
