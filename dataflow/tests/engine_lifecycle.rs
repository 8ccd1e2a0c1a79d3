//! Memory follows the live window, not the history: evicting closed battles and taking stored
//! battles back in for late killmails gives exactly the battles of one engine that saw
//! everything, at several worker counts.

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

/// Feeds `kms` in time order, in random chunks, evicting closed battles before each chunk with
/// the chunk's first time as the horizon. Returns the store (every report ever written and not
/// retracted) and the largest number of resident killmails seen.
fn sweep(engine: &mut Engine, kms: &[Killmail], rng: &mut ChaCha8Rng) -> (Replica, usize, usize) {
    let mut sorted = kms.to_vec();
    sorted.sort_by_key(|k| (k.killmail_time, k.killmail_id));
    let mut store = Replica::default();
    let mut rest = &sorted[..];
    let mut peak = 0;
    let mut evicted = 0;
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(40));
        let (chunk, tail) = rest.split_at(take);
        let eviction = engine.evict_closed(chunk[0].killmail_time).unwrap();
        assert!(
            eviction.unexpected.changes.is_empty(),
            "evicting closed battles changed others: {:?}",
            eviction.unexpected.changes
        );
        evicted += eviction.battles;
        store.apply(&engine.insert(chunk.iter().cloned()).unwrap());
        peak = peak.max(engine.resident().killmails());
        rest = tail;
    }
    (store, peak, evicted)
}

#[test]
fn evicting_closed_battles_changes_no_battle() {
    for workers in [1, 2] {
        for seed in 0..6u64 {
            let kms = random_history(seed, 600);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut engine = Engine::start(config(workers)).unwrap();
            let (store, peak, evicted) = sweep(&mut engine, &kms, &mut rng);
            let expected = reference::battles(&kms, &config(1));
            assert_eq!(store.sorted(), expected, "seed {seed}, {workers} worker(s)");
            assert!(evicted > 0, "seed {seed}: nothing was ever evicted");
            assert!(
                peak < kms.len(),
                "seed {seed}: {peak} of {} killmails resident at the peak",
                kms.len()
            );
        }
    }
}

#[test]
fn late_killmails_take_their_stored_neighbourhood_back() {
    for workers in [1, 2] {
        for seed in 0..6u64 {
            let kms = random_history(100 + seed, 600);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut on_time = kms.clone();
            on_time.shuffle(&mut rng);
            let late = on_time.split_off(on_time.len() * 85 / 100);
            let by_id: BTreeMap<KillmailId, Killmail> =
                kms.iter().map(|k| (k.killmail_id, k.clone())).collect();

            let mut engine = Engine::start(config(workers)).unwrap();
            let (mut store, _, _) = sweep(&mut engine, &on_time, &mut rng);
            // Everything closed leaves memory, as after a long quiet spell.
            let end = kms.iter().map(|k| k.killmail_time).max().unwrap() + Duration::days(1);
            let eviction = engine.evict_closed(end).unwrap();
            assert!(eviction.unexpected.changes.is_empty());
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
            assert_eq!(store.sorted(), expected, "seed {seed}, {workers} worker(s)");
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
