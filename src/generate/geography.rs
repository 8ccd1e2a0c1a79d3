//! Where generated kills happen: the real solar systems of the embedded SDE, sorted into
//! high-, low- and null-security k-space with stargates and wormhole systems without gates, with
//! stargate walks along real adjacency. Every list is sorted by id so that choices depend only
//! on the random stream, never on hash-map order.

use std::collections::{BTreeMap, BTreeSet};

use battles_dataflow::universe::SolarSystem;
use battles_dataflow::Universe;
use rand::seq::IndexedRandom;
use rand::Rng;

/// Security band of a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    High,
    Low,
    Null,
    Wormhole,
}

/// The map as the generator uses it.
#[derive(Debug)]
pub struct Geography {
    pub universe: &'static Universe,
    pub high: Vec<i64>,
    pub low: Vec<i64>,
    pub null: Vec<i64>,
    pub wormholes: Vec<i64>,
    /// Null-sec systems with gates by region.
    pub null_by_region: BTreeMap<i64, Vec<i64>>,
    /// Systems of each constellation, for picking something "nearby".
    pub by_constellation: BTreeMap<i64, Vec<i64>>,
}

/// Pochven: gated, but not held by coalitions.
const POCHVEN: i64 = 10000070;

impl Geography {
    /// Sorts the embedded universe's systems into the bands the generator draws from.
    pub fn new(universe: &'static Universe) -> Geography {
        let mut systems: Vec<&SolarSystem> = universe.systems().collect();
        systems.sort_by_key(|s| s.id);
        let mut g = Geography {
            universe,
            high: Vec::new(),
            low: Vec::new(),
            null: Vec::new(),
            wormholes: Vec::new(),
            null_by_region: BTreeMap::new(),
            by_constellation: BTreeMap::new(),
        };
        for s in systems {
            let gated = !universe.neighbours(s.id).is_empty();
            if (31_000_000..32_000_000).contains(&s.id) {
                g.wormholes.push(s.id);
            } else if !(30_000_000..31_000_000).contains(&s.id) || !gated {
                continue; // abyssal pockets, unreachable systems
            } else if s.security >= 0.45 {
                g.high.push(s.id);
            } else if s.security > 0.0 {
                g.low.push(s.id);
            } else {
                g.null.push(s.id);
                if s.region_id != POCHVEN {
                    g.null_by_region.entry(s.region_id).or_default().push(s.id);
                }
            }
            g.by_constellation
                .entry(s.constellation_id)
                .or_default()
                .push(s.id);
        }
        g
    }

    /// Null-sec regions big enough to be somebody's home (sorted by id).
    pub fn home_regions(&self) -> Vec<i64> {
        self.null_by_region
            .iter()
            .filter(|(_, systems)| systems.len() >= 40)
            .map(|(&r, _)| r)
            .collect()
    }

    pub fn space(&self, system: i64) -> Space {
        if (31_000_000..32_000_000).contains(&system) {
            return Space::Wormhole;
        }
        match self.universe.system(system).map(|s| s.security) {
            Some(s) if s >= 0.45 => Space::High,
            Some(s) if s > 0.0 => Space::Low,
            _ => Space::Null,
        }
    }

    /// A random system of the band.
    pub fn random_in(&self, space: Space, rng: &mut impl Rng) -> i64 {
        let list = match space {
            Space::High => &self.high,
            Space::Low => &self.low,
            Space::Null => &self.null,
            Space::Wormhole => &self.wormholes,
        };
        *list
            .choose(rng)
            .expect("the embedded universe has systems of every band")
    }

    /// A random null-sec system of a region (any null-sec system if the region has none).
    pub fn random_in_region(&self, region: i64, rng: &mut impl Rng) -> i64 {
        match self.null_by_region.get(&region) {
            Some(list) if !list.is_empty() => *list.choose(rng).expect("non-empty"),
            _ => self.random_in(Space::Null, rng),
        }
    }

    /// A random system one stargate jump away, if the system has gates.
    pub fn random_neighbour(&self, system: i64, rng: &mut impl Rng) -> Option<i64> {
        self.universe.neighbours(system).choose(rng).copied()
    }

    /// Systems at most `jumps` stargate jumps from any of `from` (`from` included).
    pub fn within_jumps(&self, from: &[i64], jumps: usize) -> BTreeSet<i64> {
        let mut seen: BTreeSet<i64> = from.iter().copied().collect();
        let mut frontier: Vec<i64> = seen.iter().copied().collect();
        for _ in 0..jumps {
            let mut next = Vec::new();
            for s in frontier {
                for &n in self.universe.neighbours(s) {
                    if seen.insert(n) {
                        next.push(n);
                    }
                }
            }
            frontier = next;
        }
        seen
    }

    /// A random walk of `steps` gate jumps from `from` that never enters a system twice (it
    /// stops early in a dead end).
    pub fn walk(&self, from: i64, steps: usize, rng: &mut impl Rng) -> Vec<i64> {
        let mut path = vec![from];
        for _ in 0..steps {
            let cur = *path.last().expect("non-empty");
            let options: Vec<i64> = self
                .universe
                .neighbours(cur)
                .iter()
                .copied()
                .filter(|s| !path.contains(s))
                .collect();
            match options.choose(rng) {
                Some(&next) => path.push(next),
                None => break,
            }
        }
        path
    }

    /// A system near `system` but not `system` itself: a gate neighbour, or another system of
    /// its constellation (wormholes have neither gates nor reachable neighbours: another
    /// wormhole of the constellation).
    pub fn nearby(&self, system: i64, rng: &mut impl Rng) -> i64 {
        if rng.random_bool(0.6) {
            if let Some(n) = self.random_neighbour(system, rng) {
                return n;
            }
        }
        let constellation = self
            .universe
            .system(system)
            .map(|s| s.constellation_id)
            .unwrap_or_default();
        let others: Vec<i64> = self
            .by_constellation
            .get(&constellation)
            .map(|l| l.iter().copied().filter(|&s| s != system).collect())
            .unwrap_or_default();
        others
            .choose(rng)
            .copied()
            .or_else(|| self.random_neighbour(system, rng))
            .unwrap_or(system)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn bands_are_filled_from_the_real_map() {
        let g = Geography::new(Universe::embedded());
        assert!(g.high.contains(&30000142), "Jita is high-sec");
        assert!(g.null.len() > 2000 && g.low.len() > 500 && g.wormholes.len() > 2000);
        assert!(g.home_regions().contains(&10000060), "Delve");
        for &w in g.wormholes.iter().take(100) {
            assert!(g.universe.neighbours(w).is_empty());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let s = g.random_in(Space::Null, &mut rng);
            let n = g.random_neighbour(s, &mut rng).expect("gated");
            assert!(g.universe.are_adjacent(s, n));
            assert_ne!(g.nearby(s, &mut rng), s);
            let walk = g.walk(s, 4, &mut rng);
            let distinct: BTreeSet<i64> = walk.iter().copied().collect();
            assert_eq!(distinct.len(), walk.len(), "a walk never revisits");
            assert!(walk.windows(2).all(|w| g.universe.are_adjacent(w[0], w[1])));
            let near = g.within_jumps(&[s], 1);
            assert!(near.contains(&s) && near.contains(&n));
            assert!(near.len() == 1 + g.universe.neighbours(s).len());
        }
    }
}
