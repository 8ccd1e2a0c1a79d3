//! Measures the sink's bulk write throughput: 10,000 battles with 100,000 participants and
//! 50,000 killmails created in one step, then one participant of every battle updated in the
//! next. Prints rows per second; checks the counts landed.

mod common;

use std::time::Instant;

use battles_sink::StepChanges;
use common::*;

fn battle(i: i64) -> Vec<Km> {
    let c = 1_000_000 + i * 10; // ten characters per battle: c .. c+9
    (0..5)
        .map(|j| {
            km(
                i * 10 + j,
                j,
                c + j,
                &[c + 5 + j, c + 5 + (j + 1) % 5],
                1_000_000 * (j + 1),
            )
        })
        .collect()
}

#[tokio::test]
async fn bulk_apply_throughput() {
    // RUST_LOG=battles_sink=debug shows the time of each group of statements.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (db, sink) = fresh().await;
    let battles: Vec<Vec<Km>> = (0..10_000).map(battle).collect();
    let step = create_step(&battles);
    let participants: usize = step
        .battles
        .iter()
        .filter_map(|c| c.new_report())
        .map(|r| r.participants.len())
        .sum();
    assert_eq!(participants, 100_000);

    let started = Instant::now();
    let stats = sink.apply(step.clone()).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(stats.battles_created, 10_000);
    assert_eq!(stats.participants_written, 100_000);
    assert_eq!(stats.battle_killmails_written, 50_000);
    let rows = 10_000 * 2 + 100_000 + 50_000 * 2 + 10_000; // battles+stats, participants, killmails (both tables), events
    eprintln!(
        "create step: 10k battles, 100k participants, 50k killmails in {secs:.2}s \
         ({:.0} battles/s, {:.0} rows/s)",
        10_000.0 / secs,
        rows as f64 / secs
    );

    // The next step changes one participant of every battle.
    let mut battles_changed = Vec::new();
    for change in &step.battles {
        let old = change.new_report().expect("a created battle").clone();
        let mut new = (*old).clone();
        new.participants[0].damage_done += 1;
        battles_changed.push(battles_dataflow::BattleChange::Updated {
            old,
            new: std::sync::Arc::new(new),
        });
    }
    let started = Instant::now();
    let stats = sink
        .apply(StepChanges {
            battles: battles_changed,
            ..StepChanges::default()
        })
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(stats.participants_written, 10_000);
    assert_eq!(stats.battles_updated, 10_000);
    eprintln!(
        "update step: 10k battles with one changed participant each in {secs:.2}s ({:.0} battles/s)",
        10_000.0 / secs
    );
    drop(sink);
    db.drop_database().await.unwrap();
}
