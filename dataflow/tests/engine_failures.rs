//! The engine when things go wrong: a worker that panics surfaces as an error from `step`, never as a second panic or a wait
//! without end; killmails whose values are out of bounds are refused; sums at the bounds are
//! exact or saturate, never wrap. (A lost peer process is tested with real processes in the
//! root crate's `tests/engine_processes.rs`.)

mod common;

use battles_dataflow::killmail::{MAX_DAMAGE, MAX_ISK};
use battles_dataflow::{Engine, EngineConfig, EngineError, Team};
use common::random_history;

fn faulty(workers: usize, panic_on: i64) -> EngineConfig {
    EngineConfig {
        workers,
        panic_on_killmail: Some(panic_on),
        ..EngineConfig::default()
    }
}

fn assert_worker_failed(result: Result<battles_dataflow::StepOutput, EngineError>) -> String {
    match result {
        Err(EngineError::WorkerFailed(reason)) => reason,
        other => panic!("expected a worker failure, got {other:?}"),
    }
}

#[test]
fn a_worker_panic_is_an_error_and_the_engine_stays_failed() {
    for workers in [1, 2] {
        let kms = random_history(5, 200);
        // An odd id lands on worker 1 of 2 (killmails are exchanged by id): the panicking
        // worker is then not the one that drives.
        let victim = kms
            .iter()
            .find(|k| k.killmail_id % 2 == 1)
            .unwrap()
            .killmail_id;
        let mut engine = Engine::start(faulty(workers, victim)).unwrap();
        let before: Vec<_> = kms
            .iter()
            .filter(|k| k.killmail_id != victim)
            .cloned()
            .collect();
        engine.insert(before[..50].iter().cloned()).unwrap();
        let reason = assert_worker_failed(engine.insert(kms.iter().cloned()));
        assert!(
            reason.contains(&format!("fault injection: killmail {victim}")),
            "{workers} worker(s): {reason}"
        );
        // Every later call fails the same way, at once.
        let again = assert_worker_failed(engine.insert(before[50..60].iter().cloned()));
        assert_eq!(again, reason);
        assert!(matches!(
            engine.evict_closed(chrono::Utc::now()),
            Err(EngineError::WorkerFailed(_))
        ));
        drop(engine);
    }
}

#[test]
fn killmails_out_of_bounds_are_refused_before_anything_changes() {
    let kms = random_history(7, 20);
    let mut engine = Engine::start(EngineConfig::default()).unwrap();
    let mut too_rich = kms[3].clone();
    too_rich.isk_value = MAX_ISK + 1;
    let mut too_hard = kms[4].clone();
    too_hard.attackers[0].damage_done = MAX_DAMAGE + 1;
    let mut negative = kms[5].clone();
    negative.victim.damage_taken = -1;
    for bad in [too_rich, too_hard, negative] {
        let id = bad.killmail_id;
        let mut batch = kms.clone();
        batch.retain(|k| k.killmail_id != id);
        batch.push(bad);
        match engine.insert(batch) {
            Err(EngineError::InvalidKillmail {
                killmail_id,
                reason,
            }) => {
                assert_eq!(killmail_id, id);
                assert!(reason.contains("outside"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(engine.resident().killmails(), 0, "nothing was applied");
    }
    // The engine is still usable.
    let out = engine.insert(kms.iter().cloned()).unwrap();
    assert!(out.upserts().count() > 0);
}

#[test]
fn sums_at_the_bounds_are_exact_or_saturate_never_wrap() {
    // One fight: the same attacker kills many victims in one system 10 s apart, each
    // loss at the maximum value.
    let template = random_history(8, 1)[0].clone();
    let kill = |i: i64, isk: i64| {
        let mut k = template.clone();
        k.killmail_id = 1_000 + i;
        k.killmail_time = template.killmail_time + chrono::Duration::seconds(10 * i);
        k.isk_value = isk;
        // A ship loss to a player: a fight killmail, not a satellite.
        k.victim.ship_type_id = 587;
        k.victim.ship_group_id = Some(25);
        k.victim.ship_category_id = Some(6);
        k.victim.character_id = Some(80_000_000 + i);
        k.victim.damage_taken = MAX_DAMAGE;
        k.attackers.truncate(1);
        k.attackers[0].character_id = Some(70_000_001);
        k.attackers[0].final_blow = true;
        k.attackers[0].damage_done = MAX_DAMAGE;
        k
    };
    // Three maximal killmails: exact.
    let mut engine = Engine::start(EngineConfig::default()).unwrap();
    let out = engine.insert((0..3).map(|i| kill(i, MAX_ISK))).unwrap();
    let reports: Vec<_> = out.upserts().collect();
    assert_eq!(reports.len(), 1, "one battle");
    let r = reports[0];
    assert_eq!(r.total_isk_destroyed, 3 * MAX_ISK);
    let killer = r
        .participants
        .iter()
        .find(|p| p.character_id == 70_000_001)
        .unwrap();
    assert_eq!(killer.isk_destroyed, 3 * MAX_ISK);
    assert_eq!(killer.damage_done, 3 * MAX_DAMAGE);

    // 10,000 maximal killmails exceed i64: the sums saturate instead of wrapping.
    let mut engine = Engine::start(EngineConfig::default()).unwrap();
    let out = engine
        .insert((0..10_000).map(|i| kill(i, MAX_ISK)))
        .unwrap();
    let reports: Vec<_> = out.upserts().collect();
    assert_eq!(reports.len(), 1, "one battle");
    let r = reports[0];
    assert_eq!(r.total_isk_destroyed, i64::MAX);
    let lost = match r.participants.iter().find(|p| p.character_id == 80_000_000) {
        Some(v) => v.team,
        None => panic!("the first victim is a participant"),
    };
    let (loser, winner) = if lost == Team::A {
        (&r.team_a, &r.team_b)
    } else {
        (&r.team_b, &r.team_a)
    };
    assert_eq!(loser.isk_lost, i64::MAX);
    assert_eq!(winner.isk_destroyed, i64::MAX);
    let killer = r
        .participants
        .iter()
        .find(|p| p.character_id == 70_000_001)
        .unwrap();
    assert_eq!(killer.isk_destroyed, i64::MAX);
    assert_eq!(killer.damage_done, 10_000 * MAX_DAMAGE);
    assert_eq!(killer.kills, 10_000);
}
