//! The engine against the sequential reference on random histories: any arrival order, any
//! batching, any worker count gives the reference's battles, ids, sides and statistics.

mod common;

use battles_dataflow::{reference, BattleReport, Engine, EngineConfig, Team};
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

fn run_in_batches(
    kms: &[battles_dataflow::Killmail],
    workers: usize,
    seed: u64,
) -> Vec<BattleReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = kms.to_vec();
    order.shuffle(&mut rng);
    let mut engine = Engine::start(config(workers));
    let mut replica = Replica::default();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let take = rng.random_range(1..=rest.len().min(60));
        let (batch, tail) = rest.split_at(take);
        replica.apply(&engine.insert(batch.iter().cloned()));
        rest = tail;
    }
    replica.sorted()
}

fn check_invariants(reports: &[BattleReport]) {
    for r in reports {
        assert_eq!(r.team_a.isk_destroyed, r.team_b.isk_lost);
        assert_eq!(r.team_b.isk_destroyed, r.team_a.isk_lost);
        assert_eq!(r.team_a.ships_destroyed, r.team_b.ships_lost);
        assert_eq!(r.team_a.pilots + r.team_b.pilots, r.total_pilots);
        assert_eq!(r.killmails.len() as i32, r.total_killmails);
        assert_eq!(r.team_a.isk_lost + r.team_b.isk_lost, r.total_isk_destroyed);
        assert!(r.team_a.pilots >= r.team_b.pilots);
        assert!(r.started_at <= r.ended_at);
        assert_eq!(
            battles_dataflow::battle_id(r.first_killmail_id),
            r.battle_id
        );
        let a = r.participants.iter().filter(|p| p.team == Team::A).count() as i32;
        assert_eq!(a, r.team_a.pilots);
    }
}

#[test]
fn engine_equals_reference_on_random_histories() {
    for seed in 0..12u64 {
        let kms = random_history(seed, 40 + 15 * seed as usize);
        let expected = reference::battles(&kms, &EngineConfig::default());
        check_invariants(&expected);
        let got = run_in_batches(&kms, 1, seed + 100);
        assert_eq!(got.len(), expected.len(), "seed {seed}: battle count");
        assert_eq!(got, expected, "seed {seed}");
    }
}

#[test]
fn order_batching_and_workers_do_not_change_the_result() {
    let kms = random_history(77, 300);
    let expected = reference::battles(&kms, &EngineConfig::default());
    assert!(expected.len() > 3, "the history has battles");
    for (workers, seed) in [(1, 1), (2, 2), (4, 3), (2, 4)] {
        assert_eq!(
            run_in_batches(&kms, workers, seed),
            expected,
            "{workers} workers"
        );
    }
}

#[test]
fn retracting_everything_leaves_nothing_and_partial_retraction_matches_reference() {
    let kms = random_history(5, 200);
    let mut engine = Engine::start(config(2));
    let mut replica = Replica::default();
    replica.apply(&engine.insert(kms.iter().cloned()));
    assert!(!replica.battles.is_empty());
    // Retract every third killmail: the rest must be what the reference makes of it.
    let (gone, kept): (Vec<_>, Vec<_>) = kms
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 3 == 0);
    let gone: Vec<_> = gone.into_iter().map(|(_, k)| k).collect();
    let kept: Vec<_> = kept.into_iter().map(|(_, k)| k).collect();
    replica.apply(&engine.retract(gone.clone()));
    assert_eq!(
        replica.sorted(),
        reference::battles(&kept, &EngineConfig::default())
    );
    replica.apply(&engine.retract(kept));
    assert!(
        replica.battles.is_empty(),
        "nothing left after retracting all"
    );
}

#[test]
fn merges_report_the_continuing_battle() {
    // Two groups that a bridging killmail later joins.
    let kms = random_history(9, 400);
    let mut engine = Engine::start(config(1));
    let mut replica = Replica::default();
    let mut ended_any = false;
    for chunk in kms.chunks(25) {
        let out = engine.insert(chunk.iter().cloned());
        for e in &out.ended {
            ended_any = true;
            let cont = e
                .continued_by
                .expect("a merge keeps the killmails somewhere");
            assert!(out.upserts().any(|r| r.battle_id == cont));
        }
        replica.apply(&out);
    }
    assert!(ended_any, "this history merges battles as it grows");
}
