//! The sequential reference: the same battles as the dataflow, computed the simple way (all pairs
//! of linkers within reach through union-find, then satellites attached to the nearest linker,
//! then runs of the satellites left over).
//! Tests check the engine against it; it is too slow for production on busy data.

use std::collections::BTreeMap;

use crate::cell::{satellite_bucket, shares_character};
use crate::killmail::{Killmail, KillmailId};
use crate::link::{LinkRecord, LinkRule};
use crate::report::BattleReport;
use crate::summarize::summarize;
use crate::universe::Universe;
use crate::EngineConfig;

/// True when two sorted id lists have at least `n` ids in common.
fn have_in_common(a: &[i64], b: &[i64], n: usize) -> bool {
    let b: std::collections::BTreeSet<i64> = b.iter().copied().collect();
    a.iter().filter(|x| b.contains(x)).count() >= n
}

/// Someone (character, player corporation or alliance) is on both killmails.
fn share_anyone(a: &LinkRecord, b: &LinkRecord) -> bool {
    have_in_common(&a.characters, &b.characters, 1)
        || have_in_common(&a.corporations, &b.corporations, 1)
        || have_in_common(&a.alliances, &b.alliances, 1)
}

/// Stargate jumps from `a` to `b` by breadth-first search, if at most `limit`.
fn jumps_between(universe: &Universe, a: i64, b: i64, limit: usize) -> Option<usize> {
    let mut seen = std::collections::BTreeSet::from([a]);
    let mut frontier = vec![a];
    for distance in 0..=limit {
        if frontier.contains(&b) {
            return Some(distance);
        }
        frontier = frontier
            .iter()
            .flat_map(|s| universe.neighbours(*s).iter().copied())
            .filter(|n| seen.insert(*n))
            .collect();
    }
    None
}

/// The link rule, written out from its fields: same system within `same_system_secs` sharing
/// anyone; systems 1 to `gate_jumps` jumps apart within `adjacent_anyone_secs` sharing anyone,
/// or within `adjacent_secs` sharing `adjacent_min_characters` characters.
fn linked(rule: &LinkRule, a: &LinkRecord, b: &LinkRecord, universe: &Universe) -> bool {
    let gap = (a.time - b.time).abs();
    if a.system == b.system {
        return gap <= rule.same_system_secs && share_anyone(a, b);
    }
    if jumps_between(universe, a.system, b.system, rule.gate_jumps).is_none() {
        return false;
    }
    (gap <= rule.adjacent_anyone_secs && share_anyone(a, b))
        || (gap <= rule.adjacent_secs
            && have_in_common(&a.characters, &b.characters, rule.adjacent_min_characters))
}

/// The battles of a set of killmails (each id once), sorted by battle id.
pub fn battles(killmails: &[Killmail], config: &EngineConfig) -> Vec<BattleReport> {
    let universe = Universe::embedded();
    let rule = &config.rule;
    let mut recs: Vec<LinkRecord> = killmails.iter().map(LinkRecord::of).collect();
    recs.sort_by_key(|r| r.key());
    let linkers: Vec<&LinkRecord> = recs.iter().filter(|r| !r.satellite).collect();
    let n = linkers.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for j in 0..n {
        for i in (0..j).rev() {
            if linkers[j].time - linkers[i].time > rule.window_secs {
                break;
            }
            if linked(rule, linkers[i], linkers[j], universe) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<KillmailId>> = BTreeMap::new();
    let mut linked_count: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, linker) in linkers.iter().enumerate() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(linker.id);
        *linked_count.entry(root).or_default() += 1;
    }
    let window = rule.satellite_window();
    let mut loose: Vec<&LinkRecord> = Vec::new();
    for sat in recs.iter().filter(|r| r.satellite) {
        let best = (0..n)
            .filter(|&i| {
                linkers[i].system == sat.system
                    && (linkers[i].time - sat.time).abs() <= window
                    && share_anyone(linkers[i], sat)
            })
            .min_by_key(|&i| {
                let r = linkers[i];
                let shares = sat
                    .victim_character
                    .is_some_and(|c| r.characters.binary_search(&c).is_ok());
                (!shares, (r.time - sat.time).abs(), r.key())
            });
        match best {
            Some(i) => {
                let root = find(&mut parent, i);
                groups.entry(root).or_default().push(sat.id);
            }
            None => loose.push(sat),
        }
    }
    // Satellites that joined no fight: runs of the same system, within the satellite window of
    // each other, sharing a character, attached in the same (region, satellite bucket).
    let width = rule.bucket_width();
    let mut sp: Vec<usize> = (0..loose.len()).collect();
    for j in 0..loose.len() {
        for i in 0..j {
            let (a, b) = (loose[i], loose[j]);
            let same_cell = a.region == b.region
                && satellite_bucket(a.time, width, window)
                    == satellite_bucket(b.time, width, window);
            if same_cell
                && a.system == b.system
                && (b.time - a.time).abs() <= window
                && shares_character(a, b)
            {
                let (x, y) = (find(&mut sp, i), find(&mut sp, j));
                sp[x.max(y)] = x.min(y);
            }
        }
    }
    let mut runs: BTreeMap<usize, Vec<KillmailId>> = BTreeMap::new();
    for (i, sat) in loose.iter().enumerate() {
        runs.entry(find(&mut sp, i)).or_default().push(sat.id);
    }
    let lone: Vec<Vec<KillmailId>> = runs.into_values().collect();
    let by_id: BTreeMap<KillmailId, &Killmail> =
        killmails.iter().map(|k| (k.killmail_id, k)).collect();
    let mut out: Vec<BattleReport> = groups
        .into_iter()
        .filter(|(root, _)| linked_count[root] >= config.min_linked_killmails)
        .map(|(_, ids)| ids)
        .chain(
            lone.into_iter()
                .filter(|_| config.min_linked_killmails == 0),
        )
        .map(|ids| {
            let kms: Vec<&Killmail> = ids.iter().map(|id| by_id[id]).collect();
            summarize(&kms)
        })
        .collect();
    out.sort_by_key(|r| r.battle_id);
    out
}
