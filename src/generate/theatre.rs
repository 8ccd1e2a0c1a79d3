//! A theatre of war: the same two coalitions fighting several engagements at once in one region
//! (the defender's home), each in its own part of the region, starting within the same hour.
//! Pilots who lose a ship in one engagement reship and join a later one on the same side, so
//! concurrent engagements share pilots, corporations and alliances. Each engagement is its own
//! true battle: a reader of battle reports expects separate fights to be separate battles even
//! when the same people fought in both.

use std::collections::{BTreeSet, HashSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::fight::{self, FightPlan, FightWindow, Staging};
use super::population::PilotIx;
use super::truth::{Side, TrueBattleId};
use super::{Draft, World};

/// Gate jumps kept free between the systems of two engagements of one theatre.
const SEPARATION_JUMPS: usize = 3;
/// Latest start of an engagement after the theatre's first one, in seconds.
const STAGGER_SECS: i64 = 2700;

/// One engagement to generate: its true battle and its ship kills.
#[derive(Clone, Copy, Debug)]
pub struct Engagement {
    pub battle: TrueBattleId,
    pub kills: usize,
}

/// Generates the engagements of one theatre starting at `start`, away from the systems in
/// `keep_out` (other fights of the same hours); returns their killmails and their windows.
pub fn theatre(
    world: &World,
    rng: &mut impl Rng,
    start: i64,
    engagements: &[Engagement],
    keep_out: &BTreeSet<i64>,
) -> (Vec<Draft>, Vec<FightWindow>) {
    let coalitions = world.pop.coalitions.len();
    let attacker = rng.random_range(0..coalitions);
    let defender = (attacker + rng.random_range(1..coalitions)) % coalitions;
    let region = *world.pop.coalitions[defender]
        .home_regions
        .choose(rng)
        .expect("coalitions have homes");
    let mut drafts = Vec::new();
    let mut windows: Vec<FightWindow> = Vec::new();
    for (k, engagement) in engagements.iter().enumerate() {
        let taken: Vec<i64> = windows.iter().flat_map(|w| w.systems.clone()).collect();
        let mut avoid = world.geo.within_jumps(&taken, SEPARATION_JUMPS);
        avoid.extend(keep_out.iter().copied());
        let used_constellations: BTreeSet<i64> = taken
            .iter()
            .filter_map(|s| world.geo.universe.system(*s))
            .map(|s| s.constellation_id)
            .collect();
        let first_system = place(world, rng, region, &avoid, &used_constellations);
        let movers = reshipped(rng, &windows);
        let mover_set: HashSet<PilotIx> = movers.iter().map(|(p, _)| *p).collect();
        let busy: HashSet<PilotIx> = windows
            .iter()
            .flat_map(|w| w.pilots.iter().copied())
            .filter(|p| !mover_set.contains(p))
            .collect();
        let plan = FightPlan {
            battle: engagement.battle,
            start: if k == 0 {
                start
            } else {
                start + rng.random_range(0..STAGGER_SECS)
            },
            kills: engagement.kills,
            keep_out: BTreeSet::new(),
            staging: Some(Staging {
                coalitions: (attacker, defender),
                first_system,
                avoid,
                busy,
                movers,
            }),
        };
        let (mut fight_drafts, window) = fight::fight(world, rng, &plan);
        drafts.append(&mut fight_drafts);
        windows.push(window);
    }
    (drafts, windows)
}

/// A null-sec system of `region` outside `avoid`, in a constellation not used yet when there is
/// one; anywhere in null-sec outside `avoid` when the region is full.
fn place(
    world: &World,
    rng: &mut impl Rng,
    region: i64,
    avoid: &BTreeSet<i64>,
    used_constellations: &BTreeSet<i64>,
) -> i64 {
    let free: Vec<i64> = world
        .geo
        .null_by_region
        .get(&region)
        .map(|systems| {
            systems
                .iter()
                .copied()
                .filter(|s| !avoid.contains(s))
                .collect()
        })
        .unwrap_or_default();
    let fresh: Vec<i64> = free
        .iter()
        .copied()
        .filter(|s| {
            world
                .geo
                .universe
                .system(*s)
                .is_some_and(|s| !used_constellations.contains(&s.constellation_id))
        })
        .collect();
    if let Some(&s) = fresh.choose(rng).or_else(|| free.choose(rng)) {
        return s;
    }
    loop {
        let s = *world.geo.null.choose(rng).expect("null-sec exists");
        if !avoid.contains(&s) {
            return s;
        }
    }
}

/// Pilots who died in the theatre's earlier engagements and come back in a new ship: 3 to 10%
/// of the dead of each side, at least one when anyone died.
fn reshipped(rng: &mut impl Rng, earlier: &[FightWindow]) -> Vec<(PilotIx, Side)> {
    let mut dead: Vec<(PilotIx, Side)> = earlier.iter().flat_map(|w| w.dead.clone()).collect();
    let mut seen = HashSet::new();
    dead.retain(|(p, _)| seen.insert(*p));
    if dead.is_empty() {
        return Vec::new();
    }
    let share = rng.random_range(0.03..0.10);
    let n = ((dead.len() as f64 * share).round() as usize).clamp(1, dead.len());
    dead.shuffle(rng);
    dead.truncate(n);
    dead
}
