//! The engine meets its accuracy targets (`battles::accuracy::Targets`) on a small sparse and a
//! small dense generated run: a rule change that chains concurrent fights, swallows bystanders
//! or splits moving fights turns this red.

use std::collections::BTreeMap;

use battles::accuracy::{evaluate, Accuracy, Prediction, Targets};
use battles::generate::{generate_all, Density, GeneratorConfig};
use battles_dataflow::{Engine, EngineConfig};

/// Clusters a generated run with the default engine, fed in arrival order in steps of 5,000.
fn accuracy_of(density: Density, days: u32, seed: u64) -> Accuracy {
    let run = generate_all(GeneratorConfig {
        seed,
        days,
        density,
        ..GeneratorConfig::default()
    });
    let mut engine = Engine::start(EngineConfig::default()).unwrap();
    let mut battles = BTreeMap::new();
    for chunk in run.killmails.chunks(5_000) {
        engine
            .insert(chunk.iter().cloned())
            .unwrap()
            .apply_to(&mut battles);
    }
    evaluate(
        &run.truth,
        &Prediction::from_reports(battles.values().map(|r| &**r)),
    )
}

fn assert_meets_targets(density: Density, accuracy: &Accuracy) {
    let targets = Targets::for_density(density);
    println!("{density:?}:\n{accuracy}");
    let misses = targets.misses(accuracy);
    assert!(
        misses.is_empty(),
        "{density:?} misses {targets}: {misses:?}"
    );
}

#[test]
fn sparse_days_meet_the_sparse_targets() {
    let accuracy = accuracy_of(Density::Sparse, 4, 5);
    assert!(accuracy.big_battles >= 40, "{}", accuracy.big_battles);
    assert_meets_targets(Density::Sparse, &accuracy);
}

#[test]
fn a_day_at_real_density_meets_the_dense_targets() {
    let accuracy = accuracy_of(Density::Real, 1, 5);
    assert!(accuracy.killmails >= 12_000, "{}", accuracy.killmails);
    assert!(accuracy.big_battles >= 50, "{}", accuracy.big_battles);
    assert_meets_targets(Density::Real, &accuracy);
}
