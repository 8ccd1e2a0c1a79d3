//! Memory follows the live window, not the history: evicting closed battles and taking stored
//! battles back in for late killmails gives exactly the battles of one engine that saw
//! everything, at several worker counts, whether an eviction retracts the leaving killmails or
//! starts the graph again with the staying ones (a renewal).

mod common;

use std::collections::{BTreeMap, HashSet};

use battles_dataflow::{reference, BattleChange, Engine, EngineConfig, Killmail, KillmailId};
use chrono::Duration;
use common::{random_history, Replica};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(workers: usize) -> EngineConfig {
    EngineConfig {
        workers,
        ..EngineConfig::default()
    }
}

/// The eviction settings the lifecycle tests run with: never renew, or renew whenever most
/// resident killmails leave (the default waits for a thousand).
const RENEWALS: [usize; 2] = [usize::MAX, 1];

fn renewing(workers: usize, renewal_min_leaving: usize) -> EngineConfig {
    EngineConfig {
        renewal_min_leaving,
        ..config(workers)
    }
}

/// What a [`sweep`] saw.
struct Swept {
    store: Replica,
    /// The largest number of resident killmails.
    peak: usize,
    /// Battles evicted.
    evicted: usize,
    /// Evictions done by renewal.
    renewals: usize,
}

/// Feeds `kms` in time order, in random chunks, evicting closed battles before each chunk with
/// the chunk's first time as the horizon. The store holds every report ever written and not
/// retracted.
fn sweep(engine: &mut Engine, kms: &[Killmail], rng: &mut ChaCha8Rng) -> Swept {
    let mut sorted = kms.to_vec();
    sorted.sort_by_key(|k| (k.killmail_time, k.killmail_id));
    let mut store = Replica::default();
    let mut rest = &sorted[..];
    let mut peak = 0;
    let mut evicted = 0;
    let mut renewals = 0;
    while !rest.is_empty() {
        // Now and then a big chunk, after which most resident killmails are closed (as a
        // backfill's batches do), so that evictions may renew.
        let most = if rng.random_ratio(1, 8) { 300 } else { 40 };
        let take = rng.random_range(1..=rest.len().min(most));
        let (chunk, tail) = rest.split_at(take);
        let eviction = engine.evict_closed(chunk[0].killmail_time).unwrap();
        assert!(
            eviction.unexpected.changes.is_empty(),
            "evicting closed battles changed others: {:?}",
            eviction.unexpected.changes
        );
        evicted += eviction.battles;
        renewals += usize::from(eviction.renewed);
        store.apply(&engine.insert(chunk.iter().cloned()).unwrap());
        peak = peak.max(engine.resident().killmails());
        rest = tail;
    }
    Swept {
        store,
        peak,
        evicted,
        renewals,
    }
}

#[test]
fn evicting_closed_battles_changes_no_battle() {
    for (workers, renewal) in [1, 2].into_iter().flat_map(|w| RENEWALS.map(|r| (w, r))) {
        let mut renewals = 0;
        for seed in 0..6u64 {
            let kms = random_history(seed, 600);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut engine = Engine::start(renewing(workers, renewal)).unwrap();
            let swept = sweep(&mut engine, &kms, &mut rng);
            let expected = reference::battles(&kms, &config(1));
            let case = format!("seed {seed}, {workers} worker(s), renewal from {renewal}");
            assert_eq!(swept.store.sorted(), expected, "{case}");
            assert!(swept.evicted > 0, "{case}: nothing was ever evicted");
            assert!(
                swept.peak < kms.len(),
                "{case}: {} of {} killmails resident at the peak",
                swept.peak,
                kms.len()
            );
            renewals += swept.renewals;
        }
        if renewal == usize::MAX {
            assert_eq!(
                renewals, 0,
                "{workers} worker(s) renewed though told never to"
            );
        } else {
            assert!(renewals > 0, "{workers} worker(s) never renewed");
        }
    }
}

#[test]
fn late_killmails_take_their_stored_neighbourhood_back() {
    for (workers, renewal) in [1, 2].into_iter().flat_map(|w| RENEWALS.map(|r| (w, r))) {
        for seed in 0..6u64 {
            let kms = random_history(100 + seed, 600);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut on_time = kms.clone();
            on_time.shuffle(&mut rng);
            let late = on_time.split_off(on_time.len() * 85 / 100);
            let by_id: BTreeMap<KillmailId, Killmail> =
                kms.iter().map(|k| (k.killmail_id, k.clone())).collect();

            let mut engine = Engine::start(renewing(workers, renewal)).unwrap();
            let mut store = sweep(&mut engine, &on_time, &mut rng).store;
            // Everything closed leaves memory, as after a long quiet spell.
            let end = kms.iter().map(|k| k.killmail_time).max().unwrap() + Duration::days(1);
            let eviction = engine.evict_closed(end).unwrap();
            assert!(eviction.unexpected.changes.is_empty());
            assert_eq!(
                eviction.renewed,
                renewal != usize::MAX && eviction.killmails > 0
            );
            assert_eq!(engine.resident().killmails(), 0);

            let mut rest = &late[..];
            while !rest.is_empty() {
                let take = rng.random_range(1..=rest.len().min(5));
                let (batch, tail) = rest.split_at(take);
                // The stored battles with a killmail within the window of a late one.
                let window = Duration::seconds(3600);
                let mut neighbourhood: HashSet<KillmailId> = HashSet::new();
                for report in store.battles.values() {
                    let near = report.killmails.iter().any(|bk| {
                        let t = by_id[&bk.killmail_id].killmail_time;
                        batch.iter().any(|l| (l.killmail_time - t).abs() <= window)
                    });
                    if near {
                        neighbourhood.extend(report.killmails.iter().map(|k| k.killmail_id));
                    }
                }
                let back = engine
                    .rehydrate(neighbourhood.iter().map(|id| by_id[id].clone()))
                    .unwrap();
                for change in &back.changes {
                    let BattleChange::Created(report) = change else {
                        panic!("rehydration changed a battle: {change:?}");
                    };
                    assert_eq!(
                        store.battles.get(&report.battle_id),
                        Some(&**report),
                        "a rehydrated battle differs from the stored one"
                    );
                }
                store.apply(&engine.insert(batch.iter().cloned()).unwrap());
                rest = tail;
            }
            let expected = reference::battles(&kms, &config(1));
            assert_eq!(
                store.sorted(),
                expected,
                "seed {seed}, {workers} worker(s), renewal from {renewal}"
            );
        }
    }
}

#[test]
fn repeated_insertions_and_absent_retractions_are_ignored() {
    let kms = random_history(7, 80);
    let mut engine = Engine::start(config(1)).unwrap();
    let mut store = Replica::default();
    store.apply(&engine.insert(kms.iter().cloned()).unwrap());
    let again = engine.insert(kms.iter().take(10).cloned()).unwrap();
    assert_eq!(again.ignored, 10);
    assert!(again.changes.is_empty());
    let gone = engine.retract(kms.iter().take(5).cloned()).unwrap();
    store.apply(&gone);
    let twice = engine.retract(kms.iter().take(5).cloned()).unwrap();
    assert_eq!(twice.ignored, 5);
    assert!(twice.changes.is_empty());
    assert_eq!(store.sorted(), reference::battles(&kms[5..], &config(1)));
}
