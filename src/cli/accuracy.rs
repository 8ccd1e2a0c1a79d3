//! `battles accuracy`: generates a run with ground truth, clusters it with the engine in arrival
//! order, and prints how well the battles and sides match the truth (B-cubed F1, big-battle
//! recovery, pilot side accuracy), with the engine's throughput.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use battles_dataflow::{Engine, EngineConfig};
use clap::Args;

use crate::accuracy::{evaluate, Prediction};
use crate::cli::generate::GenerateArgs;
use crate::generate::generate_all;

/// Arguments of `battles accuracy`.
#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Seed of the generated run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days to generate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Volume multiplier (1.0 is about 1,500 killmails a day).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Killmails per engine step, fed in arrival order.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Engine worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Exit non-zero unless B-cubed F1 >= 0.98, big-battle recovery >= 0.95 and side accuracy
    /// >= 0.99 (the engine's accuracy targets).
    #[arg(long)]
    pub require_targets: bool,
}

/// Runs `battles accuracy`.
pub fn run(args: AccuracyArgs) -> anyhow::Result<ExitCode> {
    let config = GenerateArgs {
        seed: args.seed,
        days: args.days,
        out: Default::default(),
        start: "2025-01-01T00:00:00Z".into(),
        scale: args.scale,
        gzip: false,
    }
    .config()?;
    let generated = generate_all(config);
    let n = generated.killmails.len();
    let mut engine = Engine::start(EngineConfig {
        workers: args.workers.max(1),
        ..EngineConfig::default()
    })?;
    let started = Instant::now();
    let mut battles = BTreeMap::new();
    for batch in generated.killmails.chunks(args.batch.max(1)) {
        engine.insert(batch.iter().cloned())?.apply_to(&mut battles);
    }
    let elapsed = started.elapsed();
    let accuracy = evaluate(
        &generated.truth,
        &Prediction::from_reports(battles.values().map(|r| &**r)),
    );
    println!(
        "generated {n} killmails (seed {}, {} days, scale {}); engine: {} battles in {:.2}s \
         ({:.0} killmails/s, batches of {}, {} workers)",
        args.seed,
        args.days,
        args.scale,
        battles.len(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        args.batch,
        args.workers
    );
    println!("{accuracy}");
    let met = accuracy.bcubed_f1 >= 0.98
        && accuracy.big_battle_recovery() >= 0.95
        && accuracy.side_accuracy() >= 0.99;
    println!(
        "targets (F1 >= 0.98, recovery >= 0.95, sides >= 0.99): {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(if met || !args.require_targets {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
