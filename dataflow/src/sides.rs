//! Splitting a battle's participants into two sides.
//!
//! Sides are solved on *entities*: alliances, else (player) corporations, else characters. Each
//! killmail adds hostility between the victim's entity and each player attacker's entity
//! (weighted by damage share, half split evenly, half by damage) unless they are the same entity
//! (friendly fire), and friendship between the top-damage attacker's entity and every other
//! attacker entity (half weight: co-attackers are weaker evidence than shots). The sides are a
//! signed-graph 2-colouring maximizing satisfied weight: a greedy pass that always places the
//! entity most strongly tied to those already placed, then local search (flip while it helps).
//! Everything is ordered by weight then entity id, so the result is deterministic.
//!
//! Weights are summed as fixed-point integers ([`WEIGHT_SCALE`] units per killmail's worth of
//! hostility): integer sums do not depend on the order of addition, so a battle summarized in
//! pieces (see `summarize.rs`) gets exactly the weights, and the sides, of one pass.

use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::id_hash::IdMap;
use crate::killmail::Killmail;
use crate::link::NPC_CORPORATIONS;

/// The unit sides are solved for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Entity {
    Alliance(i64),
    Corporation(i64),
    Character(i64),
}

impl Entity {
    /// The entity of a pilot or victim; `None` for an entity-less NPC.
    pub fn of(
        character: Option<i64>,
        corporation: Option<i64>,
        alliance: Option<i64>,
    ) -> Option<Entity> {
        if let Some(a) = alliance {
            return Some(Entity::Alliance(a));
        }
        match (corporation, character) {
            (Some(c), _) if !NPC_CORPORATIONS.contains(&c) => Some(Entity::Corporation(c)),
            (_, Some(ch)) => Some(Entity::Character(ch)),
            (Some(c), None) => Some(Entity::Corporation(c)),
            (None, None) => None,
        }
    }
}

/// The solved sides: `false` and `true` are the two sides (not yet named A and B).
#[derive(Debug, Default)]
pub struct Sides {
    pub side: BTreeMap<Entity, bool>,
    /// Entities that fought both sides substantially.
    pub third_parties: BTreeMap<Entity, bool>,
}

const FRIENDSHIP: f64 = 0.5;
/// An entity is a third party when its hostility towards its own side is at least this share of
/// its hostility towards the other side.
const THIRD_PARTY_RATIO: f64 = 0.25;

/// Fixed-point units of one killmail's worth of hostility.
pub const WEIGHT_SCALE: f64 = 1_000_000.0;

/// Signed weights between entities: positive = hostile (want different sides), negative =
/// friendly, by the ordered pair, sorted by pair and each pair once.
pub type Weights = Vec<((Entity, Entity), i64)>;

/// A weight in fixed-point units.
fn units(w: f64) -> i64 {
    (w * WEIGHT_SCALE).round() as i64
}

/// Adds `w` units to the tie between two entities (none between an entity and itself).
fn add_tie(weights: &mut IdMap<(Entity, Entity), i64>, a: Entity, b: Entity, w: i64) {
    if a == b {
        return;
    }
    let key = if a < b { (a, b) } else { (b, a) };
    *weights.entry(key).or_insert(0) += w;
}

/// The hostility and friendship of a set of killmails, summed by entity pair as they are added
/// ([`Ties::add_killmail`]), and their entities. A big piece of a fight adds tens of thousands of
/// ties between a few hundred pairs: summing them in a map as they come keeps memory at the
/// pairs, where a list of every tie had to grow, be sorted and be summed.
#[derive(Default)]
pub struct Ties {
    weights: IdMap<(Entity, Entity), i64>,
    entities: IdMap<Entity, ()>,
    /// Scratch of one killmail: its player attackers' entities and damage.
    players: Vec<(Entity, i64)>,
    /// Scratch of one killmail: its attacker entities with their summed hostility, each once.
    groups: Vec<(Entity, i64)>,
}

impl Ties {
    /// Adds one killmail's hostility and friendship, and its entities. Each tie is rounded to
    /// fixed point on its own, as [`WEIGHT_SCALE`] says; a killmail's ties to one entity (its
    /// pilots in one alliance) are summed before they go into the map, once per entity.
    pub fn add_killmail(&mut self, km: &Killmail) {
        let victim = Entity::of(
            km.victim.character_id,
            km.victim.corporation_id,
            km.victim.alliance_id,
        );
        if let Some(v) = victim {
            self.entities.insert(v, ());
        }
        let players = &mut self.players;
        players.clear();
        players.extend(km.player_attackers().filter_map(|a| {
            Entity::of(a.character_id, a.corporation_id, a.alliance_id)
                .map(|e| (e, a.damage_done.max(0)))
        }));
        if players.is_empty() {
            return;
        }
        let total: i64 = players.iter().map(|p| p.1).sum();
        let n = players.len() as f64;
        let top = players
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|p| p.0)
            .expect("non-empty");
        // The killmail's hostility by attacker entity: a killmail's pilots come from a few
        // entities, so a linear search of the few seen beats sorting its pilots (the search is
        // quadratic only in one killmail's distinct attacker entities).
        let groups = &mut self.groups;
        groups.clear();
        for (e, dmg) in players.iter() {
            let share = if total > 0 {
                *dmg as f64 / total as f64
            } else {
                1.0 / n
            };
            let hostility = units(0.5 / n + 0.5 * share);
            match groups.iter_mut().find(|(g, _)| g == e) {
                Some((_, sum)) => *sum += hostility,
                None => groups.push((*e, hostility)),
            }
        }
        // The top attacker's entity is one of the groups.
        let others = groups.len() - 1;
        let friendship = units(-FRIENDSHIP / others.max(1) as f64);
        for &(e, hostility) in groups.iter() {
            self.entities.insert(e, ());
            if let Some(v) = victim {
                add_tie(&mut self.weights, v, e, hostility);
            }
            if e != top {
                add_tie(&mut self.weights, top, e, friendship);
            }
        }
    }

    /// The summed weights sorted by pair, and the entities sorted, each once.
    pub fn into_sorted(self) -> (Weights, Vec<Entity>) {
        let mut weights: Weights = self.weights.into_iter().collect();
        weights.sort_unstable_by_key(|(pair, _)| *pair);
        let mut entities: Vec<Entity> = self.entities.into_keys().collect();
        entities.sort_unstable();
        (weights, entities)
    }
}

/// Solves the sides of `entities` (sorted, each once) from the summed weights between them.
pub fn solve(entities: &[Entity], weights: &[((Entity, Entity), i64)]) -> Sides {
    // Adjacency lists with indices in entity order.
    let index: BTreeMap<Entity, usize> =
        entities.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let names: Vec<Entity> = entities.to_vec();
    let n = names.len();
    let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let mut strength = vec![0.0f64; n];
    for ((a, b), w) in weights {
        if *w == 0 {
            continue;
        }
        let w = *w as f64 / WEIGHT_SCALE;
        let (i, j) = (index[a], index[b]);
        adj[i].push((j, w));
        adj[j].push((i, w));
        strength[i] += w.abs();
        strength[j] += w.abs();
    }

    // Greedy placement: most strongly tied unplaced entity first.
    let mut side: Vec<Option<bool>> = vec![None; n];
    let mut pull = vec![0.0f64; n]; // >0: wants side false... signed preference for `false`
    let mut tie = vec![0.0f64; n]; // total |weight| to placed entities
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| strength[b].total_cmp(&strength[a]).then(a.cmp(&b)));
    #[derive(PartialEq)]
    struct Item(f64, f64, std::cmp::Reverse<usize>);
    impl Eq for Item {}
    impl PartialOrd for Item {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Item {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0
                .total_cmp(&o.0)
                .then(self.1.total_cmp(&o.1))
                .then(self.2.cmp(&o.2))
        }
    }
    let mut heap = BinaryHeap::new();
    let mut next_seed = 0;
    let mut placed = 0;
    while placed < n {
        let pick = loop {
            match heap.pop() {
                Some(Item(t, _, std::cmp::Reverse(i))) => {
                    if side[i].is_none() && (t - tie[i]).abs() < 1e-12 {
                        break i;
                    }
                }
                None => {
                    while side[order[next_seed]].is_some() {
                        next_seed += 1;
                    }
                    break order[next_seed];
                }
            }
        };
        let s = if tie[pick] == 0.0 {
            false
        } else {
            pull[pick] < 0.0
        };
        side[pick] = Some(s);
        placed += 1;
        for &(j, w) in &adj[pick] {
            if side[j].is_none() {
                // Hostile to a `s` entity pushes j towards !s; friendly towards s.
                let towards_false = if s { w } else { -w };
                pull[j] += towards_false;
                tie[j] += w.abs();
                heap.push(Item(tie[j], strength[j], std::cmp::Reverse(j)));
            }
        }
    }
    let mut side: Vec<bool> = side.into_iter().map(|s| s.expect("all placed")).collect();

    // Local search: flip an entity while that satisfies more weight.
    for _ in 0..20 {
        let mut changed = false;
        for &i in &order {
            let gain: f64 = adj[i]
                .iter()
                .map(|&(j, w)| {
                    let same = side[i] == side[j];
                    // Currently satisfied weight minus satisfied after flip.
                    if w > 0.0 {
                        if same {
                            w
                        } else {
                            -w
                        }
                    } else if same {
                        w
                    } else {
                        -w
                    }
                })
                .sum();
            if gain > 1e-9 {
                side[i] = !side[i];
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut out = Sides::default();
    for i in 0..n {
        let (mut own, mut other) = (0.0, 0.0);
        for &(j, w) in &adj[i] {
            if w > 0.0 {
                if side[i] == side[j] {
                    own += w;
                } else {
                    other += w;
                }
            }
        }
        out.side.insert(names[i], side[i]);
        out.third_parties
            .insert(names[i], own > 0.0 && own >= THIRD_PARTY_RATIO * other);
    }
    out
}
