//! `battles accuracy`: generates a run with ground truth, clusters it with the engine in arrival
//! order, and prints how well the battles and sides match the truth (B-cubed F1, big-battle
//! recovery, pilot side accuracy), with the engine's throughput.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use battles_dataflow::{Engine, EngineConfig, LinkRule};
use clap::Args;

use crate::accuracy::{evaluate, Prediction, Targets};
use crate::cli::generate::GenerateArgs;
use crate::generate::{generate_all, Density};

/// Arguments of `battles accuracy`.
#[derive(Debug, Args)]
pub struct AccuracyArgs {
    /// Seed of the generated run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days to generate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Volume multiplier (1.0 is about 1,500 killmails a day, times ten at `--density real`).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// `sparse` (fights far apart) or `real` (concurrent fights of the same coalitions in one
    /// region, roaming gangs and ganks beside them, about 15,000 killmails a day).
    #[arg(long, value_enum, default_value_t = Density::Sparse)]
    pub density: Density,
    /// Killmails per engine step, fed in arrival order.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Engine worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Link rule fields to change, as JSON (for instance `{"adjacent_secs": 600}`); the others
    /// keep their defaults.
    #[arg(long)]
    pub rule: Option<String>,
    /// Exit non-zero unless the density's targets are met (see `accuracy::Targets`).
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
        density: args.density,
        gzip: false,
    }
    .config()?;
    let generated = generate_all(config);
    let n = generated.killmails.len();
    let rule: LinkRule = match &args.rule {
        Some(json) => serde_json::from_str(json).context("--rule is not a link rule")?,
        None => LinkRule::default(),
    };
    let mut engine = Engine::start(EngineConfig {
        workers: args.workers.max(1),
        rule,
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
        "generated {n} killmails (seed {}, {} days, scale {}, density {:?}); engine: {} battles \
         in {:.2}s ({:.0} killmails/s, batches of {}, {} workers)",
        args.seed,
        args.days,
        args.scale,
        args.density,
        battles.len(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        args.batch,
        args.workers
    );
    println!("{accuracy}");
    let targets = Targets::for_density(args.density);
    let misses = targets.misses(&accuracy);
    let met = misses.is_empty();
    println!(
        "targets ({targets}): {}",
        if met {
            "met".to_string()
        } else {
            format!("NOT met: {}", misses.join("; "))
        }
    );
    Ok(if met || !args.require_targets {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
