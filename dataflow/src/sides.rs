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
/// friendly, by the ordered pair. [`add_killmail`] appends; [`consolidate`] sorts and sums.
pub type Weights = Vec<((Entity, Entity), i64)>;

/// Appends one killmail's hostility and friendship to `weights` and its entities to `entities`
/// (unsorted, with repeats: see [`consolidate`]).
pub fn add_killmail(km: &Killmail, weights: &mut Weights, entities: &mut Vec<Entity>) {
    let mut add = |a: Entity, b: Entity, w: f64| {
        if a == b {
            return;
        }
        let key = if a < b { (a, b) } else { (b, a) };
        weights.push((key, (w * WEIGHT_SCALE).round() as i64));
    };
    let victim = Entity::of(
        km.victim.character_id,
        km.victim.corporation_id,
        km.victim.alliance_id,
    );
    if let Some(v) = victim {
        entities.push(v);
    }
    let players: Vec<(Entity, i64)> = km
        .player_attackers()
        .filter_map(|a| {
            Entity::of(a.character_id, a.corporation_id, a.alliance_id)
                .map(|e| (e, a.damage_done.max(0)))
        })
        .collect();
    if players.is_empty() {
        return;
    }
    let total: i64 = players.iter().map(|p| p.1).sum();
    let n = players.len() as f64;
    if let Some(v) = victim {
        for (e, dmg) in &players {
            let share = if total > 0 {
                *dmg as f64 / total as f64
            } else {
                1.0 / n
            };
            add(v, *e, 0.5 / n + 0.5 * share);
        }
    }
    let top = players
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|p| p.0)
        .expect("non-empty");
    let mut others: Vec<Entity> = players.iter().map(|p| p.0).filter(|e| *e != top).collect();
    others.sort_unstable();
    others.dedup();
    let fw = FRIENDSHIP / others.len().max(1) as f64;
    for e in others {
        add(top, e, -fw);
    }
    for (e, _) in players {
        entities.push(e);
    }
}

/// Sorts weights by pair, summing each pair's, and sorts and deduplicates entities.
pub fn consolidate(weights: &mut Weights, entities: &mut Vec<Entity>) {
    weights.sort_unstable_by_key(|(pair, _)| *pair);
    weights.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 += later.1;
            true
        } else {
            false
        }
    });
    entities.sort_unstable();
    entities.dedup();
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
