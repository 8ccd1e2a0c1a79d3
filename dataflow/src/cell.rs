//! Cells: the unit of sequential clustering inside the dataflow.
//!
//! A cell is a (region, time bucket). Buckets are [`LinkRule::bucket_width`] wide, at least the
//! longest link, so every linked pair of killmails is in the same or consecutive buckets. Each killmail is a *home*
//! member of its own cell and a *guest* of the next bucket's cell of its region (and, when
//! systems of other regions are within [`LinkRule::gate_jumps`] jumps of it, of those regions'
//! cells of the same and next bucket). Inside a cell, [`cluster_cell`] links home killmails
//! with each other and with guests by the link rule and solves the local components with union-find. A guest that lands in a
//! local component is the bridge between its home cell's component and this one; the dataflow
//! joins such local components globally (see `graph.rs`).
//!
//! Satellites are attached in exactly one cell: their home cell when they lie in the first
//! satellite window of the bucket (where the previous bucket's guests are visible), else the
//! next bucket's cell, where they are a guest and everything within the window is visible.

use serde::{Deserialize, Serialize};

use crate::id_hash::{id_map_with_capacity, IdMap};
use crate::killmail::KillmailId;
use crate::link::{systems_within, LinkRecord, LinkRule};
use crate::universe::Universe;

/// A (region, bucket) cell.
pub type Cell = (i64, i64);

/// A local component of a cell, named by its cell and its first member's (time, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Node {
    pub region: i64,
    pub bucket: i64,
    pub time: i64,
    pub id: KillmailId,
}

impl Node {
    /// The label the node starts label propagation with: its first member.
    pub fn label(&self) -> (i64, KillmailId) {
        (self.time, self.id)
    }
}

/// How a killmail appears in a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Home,
    Guest,
}

/// A killmail's membership in a local component. Every killmail has exactly one *primary*
/// membership (its home cell for linkers, its attaching cell for satellites); secondary ones
/// connect local components across cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub killmail: KillmailId,
    pub node: Node,
    pub primary: bool,
}

/// The bucket of a time for a bucket width.
pub fn bucket(time: i64, width: i64) -> i64 {
    time.div_euclid(width)
}

/// For every solar system, the regions that have a system within [`LinkRule::gate_jumps`] jumps
/// of it (its own included), sorted: a linker of that system is also a guest of those other
/// than the killmail's region.
/// Computed once per graph, so placing a killmail looks its neighbourhood up instead of walking
/// the stargates again.
#[derive(Debug, Default)]
pub struct NearbyRegions {
    by_system: IdMap<i64, Vec<i64>>,
}

impl NearbyRegions {
    pub fn new(universe: &Universe, gate_jumps: usize) -> NearbyRegions {
        let mut by_system = id_map_with_capacity(universe.systems().count());
        for system in universe.systems() {
            let mut regions: Vec<i64> = systems_within(universe, system.id, gate_jumps)
                .iter()
                .filter_map(|s| universe.system(*s).map(|s| s.region_id))
                .collect();
            regions.sort_unstable();
            regions.dedup();
            by_system.insert(system.id, regions);
        }
        NearbyRegions { by_system }
    }

    /// The regions near `system` other than `own_region` (none for an unknown system).
    pub fn of(&self, system: i64, own_region: i64) -> impl Iterator<Item = i64> + '_ {
        self.by_system
            .get(&system)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(move |r| *r != own_region)
    }
}

/// The cells a killmail appears in, with its role there.
pub fn cells_of(
    record: &LinkRecord,
    width: i64,
    nearby_regions: &NearbyRegions,
) -> impl Iterator<Item = (Cell, Role)> {
    let b = bucket(record.time, width);
    let mut cells = vec![
        ((record.region, b), Role::Home),
        ((record.region, b + 1), Role::Guest),
    ];
    if !record.satellite {
        for r in nearby_regions.of(record.system, record.region) {
            cells.push(((r, b), Role::Guest));
            cells.push(((r, b + 1), Role::Guest));
        }
    }
    cells.into_iter()
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    /// Joins two sets; the smaller index becomes the root, so roots are deterministic.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

/// The first (time, id) of the satellite run each satellite belongs to. Satellites that
/// attach to no fight group with each other when they are in the same system, within the
/// satellite window of each other and share a character: a spam run by one pilot, or a ship
/// and its pod both killed by rats. Only satellites attached in the same cell group, so a run
/// never reaches a fight and a run longer than a bucket comes out in bucket-long pieces.
/// `satellites` is in (time, id) order, each with its index among the cell's members (not used
/// here); attached ones keep their own key (unused).
fn satellite_runs(
    satellites: &[(&LinkRecord, usize)],
    attached: &[(usize, Option<usize>)],
    sat_window: i64,
) -> Vec<(i64, KillmailId)> {
    let loose: Vec<usize> = attached
        .iter()
        .filter(|(_, best)| best.is_none())
        .map(|(s, _)| *s)
        .collect();
    let mut uf = UnionFind::new(loose.len());
    for j in 0..loose.len() {
        let b = satellites[loose[j]].0;
        for i in (0..j).rev() {
            let a = satellites[loose[i]].0;
            if b.time - a.time > sat_window {
                break;
            }
            if a.system == b.system && shares_character(a, b) {
                uf.union(i, j);
            }
        }
    }
    let mut key: Vec<(i64, KillmailId)> = satellites.iter().map(|(r, _)| r.key()).collect();
    // Roots are the smallest index of their set, which is the earliest (time, id).
    for (i, &s) in loose.iter().enumerate() {
        key[s] = satellites[loose[uf.find(i)]].0.key();
    }
    key
}

/// True when two link records share a character (victim or attacker).
pub fn shares_character(a: &LinkRecord, b: &LinkRecord) -> bool {
    crate::link::intersects(&a.characters, &b.characters)
}

/// The bucket of the cell in which a satellite at `time` is attached (see the module doc):
/// the buckets of satellites are shifted by the satellite window.
pub fn satellite_bucket(time: i64, width: i64, sat_window: i64) -> i64 {
    (time - sat_window).div_euclid(width) + 1
}

/// The index in `lo..hi` of `linkers` (in (time, id) order) that satisfies `wanted` and is
/// nearest in time to `time`, ties to the smaller (time, id). Scans outwards from `time`, so it
/// stops as soon as nothing nearer is left.
fn nearest(
    linkers: &[(Role, &LinkRecord, usize)],
    time: i64,
    lo: usize,
    hi: usize,
    wanted: impl Fn(usize) -> bool,
) -> Option<usize> {
    let pos = lo + linkers[lo..hi].partition_point(|(_, r, _)| r.time < time);
    let (mut left, mut right) = (pos, pos);
    let mut best: Option<(i64, (i64, KillmailId), usize)> = None;
    loop {
        let dl = (left > lo).then(|| time - linkers[left - 1].1.time);
        let dr = (right < hi).then(|| linkers[right].1.time - time);
        let (d, i) = match (dl, dr) {
            (Some(dl), Some(dr)) if dl <= dr => (dl, left - 1),
            (Some(dl), None) => (dl, left - 1),
            (_, Some(dr)) => (dr, right),
            (None, None) => break,
        };
        if best.is_some_and(|(bd, _, _)| d > bd) {
            break;
        }
        if i < pos {
            left -= 1;
        } else {
            right += 1;
        }
        if wanted(i) {
            let found = (d, linkers[i].1.key(), i);
            if best.is_none_or(|b| (found.0, found.1) < (b.0, b.1)) {
                best = Some(found);
            }
        }
    }
    best.map(|(_, _, i)| i)
}

/// Clusters one cell. `members` holds the cell's records with their roles, in any order.
/// Returns the memberships the cell decides (see [`Membership`]), each with the index in
/// `members` of the killmail it is of.
pub fn cluster_cell(
    cell: Cell,
    members: &[(&Role, &LinkRecord)],
    rule: &LinkRule,
    universe: &Universe,
) -> Vec<(Membership, usize)> {
    let width = rule.bucket_width();
    let reach = rule.max_link_secs();
    let sat_window = rule.satellite_window();
    let cell_start = cell.1 * width;
    // Linkers in time order; satellites this cell attaches.
    let mut linkers: Vec<(Role, &LinkRecord, usize)> = Vec::with_capacity(members.len());
    let mut satellites: Vec<(&LinkRecord, usize)> = Vec::new();
    for (m, (role, rec)) in members.iter().enumerate() {
        if !rec.satellite {
            linkers.push((**role, rec, m));
        } else {
            let attach_here = match role {
                Role::Home => rec.time < cell_start + sat_window,
                Role::Guest => rec.time >= (cell.1 - 1) * width + sat_window,
            };
            if attach_here {
                satellites.push((rec, m));
            }
        }
    }
    linkers.sort_by_key(|(_, r, _)| r.key());
    satellites.sort_by_key(|(r, _)| r.key());

    // Union-find over linkers: every pair within reach that is not home-guest-less (two guests
    // are linked, if at all, in their own home cell).
    let n = linkers.len();
    let mut uf = UnionFind::new(n);
    for j in 0..n {
        let (role_j, b, _) = linkers[j];
        for i in (0..j).rev() {
            let (role_i, a, _) = linkers[i];
            if b.time - a.time > reach {
                break;
            }
            if role_i == Role::Guest && role_j == Role::Guest {
                continue;
            }
            if uf.find(i) == uf.find(j) {
                continue;
            }
            if rule.links(a, b, universe) {
                uf.union(i, j);
            }
        }
    }

    // Satellites attach to the nearest linker of their system within the window that shares
    // anyone with them, preferring one that has the satellite's victim in it (a pod and its
    // pilot's ship); ties go to the earlier (time, id).
    let mut attached: Vec<(usize, Option<usize>)> = Vec::with_capacity(satellites.len());
    for (s, &(sat, _)) in satellites.iter().enumerate() {
        let lo = linkers.partition_point(|(_, r, _)| r.time < sat.time - sat_window);
        let hi = linkers.partition_point(|(_, r, _)| r.time <= sat.time + sat_window);
        let candidate = |i: usize| {
            let r = linkers[i].1;
            r.system == sat.system && rule.share_anyone(r, sat)
        };
        let best = sat
            .victim_character
            .and_then(|c| {
                nearest(&linkers, sat.time, lo, hi, |i| {
                    linkers[i].1.characters.binary_search(&c).is_ok() && candidate(i)
                })
            })
            .or_else(|| nearest(&linkers, sat.time, lo, hi, candidate));
        attached.push((s, best));
    }

    // Name each local component by its first member (time, id), satellites included.
    let mut first: Vec<(i64, KillmailId)> = vec![(i64::MAX, i64::MAX); n];
    let mut size = vec![0usize; n];
    for (i, (_, rec, _)) in linkers.iter().enumerate() {
        let root = uf.find(i);
        first[root] = first[root].min(rec.key());
        size[root] += 1;
    }
    for (s, best) in &attached {
        if let Some(i) = best {
            let root = uf.find(*i);
            first[root] = first[root].min(satellites[*s].0.key());
            size[root] += 1;
        }
    }
    let node_of = |key: (i64, KillmailId)| Node {
        region: cell.0,
        bucket: cell.1,
        time: key.0,
        id: key.1,
    };

    let mut out = Vec::with_capacity(n + satellites.len());
    for (i, &(role, rec, m)) in linkers.iter().enumerate() {
        let root = uf.find(i);
        let membership = |primary| Membership {
            killmail: rec.id,
            node: node_of(first[root]),
            primary,
        };
        match role {
            Role::Home => out.push((membership(true), m)),
            Role::Guest if size[root] > 1 => out.push((membership(false), m)),
            Role::Guest => {}
        }
    }
    let runs = satellite_runs(&satellites, &attached, sat_window);
    for (s, best) in attached {
        let key = match best {
            Some(i) => first[uf.find(i)],
            None => runs[s],
        };
        let (sat, m) = satellites[s];
        let membership = Membership {
            killmail: sat.id,
            node: node_of(key),
            primary: true,
        };
        out.push((membership, m));
    }
    out
}
