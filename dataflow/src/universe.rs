//! Reference data of New Eden (from the embedded SDE tables in `data/`): solar systems with
//! their constellation, region and security, region names, stargate adjacency, and item types.
//! Loaded once per process (`Universe::embedded()`), all lookups O(1).

use std::collections::HashMap;
use std::sync::OnceLock;

/// A solar system.
#[derive(Clone, Debug, PartialEq)]
pub struct SolarSystem {
    pub id: i64,
    pub name: String,
    pub security: f64,
    pub constellation_id: i64,
    pub region_id: i64,
}

/// An item type (ship, module, structure, NPC, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemType {
    pub id: i64,
    pub name: String,
    pub group_id: i64,
    pub category_id: i64,
}

/// The static map and type tables.
#[derive(Debug, Default)]
pub struct Universe {
    systems: HashMap<i64, SolarSystem>,
    regions: HashMap<i64, String>,
    constellations: HashMap<i64, (i64, String)>,
    neighbours: HashMap<i64, Vec<i64>>,
    types: HashMap<i64, ItemType>,
    groups: HashMap<i64, String>,
}

const SYSTEMS: &str = include_str!("../../data/sde/systems.csv");
const REGIONS: &str = include_str!("../../data/sde/regions.csv");
const CONSTELLATIONS: &str = include_str!("../../data/sde/constellations.csv");
const JUMPS: &str = include_str!("../../data/sde/jumps.csv");
const TYPES: &str = include_str!("../../data/sde/types.csv");
const GROUPS: &str = include_str!("../../data/sde/groups.csv");

/// Rows of an embedded CSV table without its header, each split into at most `n` fields (the
/// last field keeps any commas: names come last).
fn rows(table: &'static str, n: usize) -> impl Iterator<Item = Vec<&'static str>> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(move |l| l.splitn(n, ',').collect())
}

fn int(field: &str) -> i64 {
    field
        .parse()
        .expect("embedded SDE table holds integers here")
}

impl Universe {
    /// The universe compiled into the binary, parsed on first use.
    pub fn embedded() -> &'static Universe {
        static UNIVERSE: OnceLock<Universe> = OnceLock::new();
        UNIVERSE.get_or_init(Universe::load_embedded)
    }

    fn load_embedded() -> Universe {
        let mut u = Universe::default();
        for r in rows(REGIONS, 2) {
            u.regions.insert(int(r[0]), r[1].to_string());
        }
        for r in rows(CONSTELLATIONS, 3) {
            u.constellations
                .insert(int(r[0]), (int(r[1]), r[2].to_string()));
        }
        for r in rows(SYSTEMS, 5) {
            let s = SolarSystem {
                id: int(r[0]),
                constellation_id: int(r[1]),
                region_id: int(r[2]),
                security: r[3].parse().expect("embedded security is a number"),
                name: r[4].to_string(),
            };
            u.systems.insert(s.id, s);
        }
        for r in rows(JUMPS, 2) {
            let (a, b) = (int(r[0]), int(r[1]));
            u.neighbours.entry(a).or_default().push(b);
            u.neighbours.entry(b).or_default().push(a);
        }
        for list in u.neighbours.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        for r in rows(GROUPS, 3) {
            u.groups.insert(int(r[0]), r[2].to_string());
        }
        for r in rows(TYPES, 4) {
            let t = ItemType {
                id: int(r[0]),
                group_id: int(r[1]),
                category_id: int(r[2]),
                name: r[3].to_string(),
            };
            u.types.insert(t.id, t);
        }
        u
    }

    pub fn system(&self, id: i64) -> Option<&SolarSystem> {
        self.systems.get(&id)
    }

    /// Every solar system, in no particular order.
    pub fn systems(&self) -> impl Iterator<Item = &SolarSystem> {
        self.systems.values()
    }

    pub fn region_name(&self, id: i64) -> Option<&str> {
        self.regions.get(&id).map(String::as_str)
    }

    pub fn constellation_name(&self, id: i64) -> Option<&str> {
        self.constellations.get(&id).map(|(_, n)| n.as_str())
    }

    /// Systems one stargate jump away, sorted by id (empty for wormholes and unknown systems).
    pub fn neighbours(&self, system_id: i64) -> &[i64] {
        self.neighbours
            .get(&system_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn are_adjacent(&self, a: i64, b: i64) -> bool {
        self.neighbours(a).binary_search(&b).is_ok()
    }

    pub fn item_type(&self, id: i64) -> Option<&ItemType> {
        self.types.get(&id)
    }

    pub fn group_name(&self, id: i64) -> Option<&str> {
        self.groups.get(&id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_load_with_known_facts() {
        let u = Universe::embedded();
        let jita = u.system(30000142).expect("Jita");
        assert_eq!(jita.name, "Jita");
        assert_eq!(jita.region_id, 10000002);
        assert_eq!(u.region_name(10000002), Some("The Forge"));
        assert!(u.are_adjacent(30000142, 30000144), "Jita - Perimeter");
        assert!(u.are_adjacent(30000144, 30000142));
        assert!(!u.are_adjacent(30000142, 30002187), "Jita - Amarr");
        let rifter = u.item_type(587).expect("Rifter");
        assert_eq!((rifter.name.as_str(), rifter.category_id), ("Rifter", 6));
        assert_eq!(u.systems().count(), 8436);
        let jorund = u.system(30001046).expect("Jorund");
        assert_eq!(u.region_name(jorund.region_id), Some("Curse"));
    }
}
