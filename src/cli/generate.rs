//! `battles generate`: writes realistic synthetic killmails (enriched shape, arrival order)
//! together with their ground truth (true battle and true side of every pilot); see
//! [`crate::generate`] for what is generated and [`crate::generate::truth`] for the truth format.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;

use crate::generate::output::write_to_dir;
use crate::generate::{Density, GeneratorConfig};

/// Arguments of `battles generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Seed of the deterministic random generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of days to generate.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Start of the generated period (RFC 3339).
    #[arg(long, default_value = "2025-01-01T00:00:00Z")]
    pub start: String,
    /// Volume multiplier: 1.0 is about 1,500 killmails a day, 10 about real EVE volume.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// How busy the universe is: `sparse` (fights far apart) or `real` (ten times the volume,
    /// concurrent fights of the same coalitions per region, roaming gangs and ganks beside
    /// them).
    #[arg(long, value_enum, default_value_t = Density::Sparse)]
    pub density: Density,
    /// Write `killmails.jsonl.gz` instead of `killmails.jsonl`.
    #[arg(long)]
    pub gzip: bool,
}

impl GenerateArgs {
    /// The generator configuration these arguments ask for.
    pub fn config(&self) -> anyhow::Result<GeneratorConfig> {
        let start: DateTime<Utc> = DateTime::parse_from_rfc3339(&self.start)
            .with_context(|| format!("--start {:?} is not an RFC 3339 time", self.start))?
            .with_timezone(&Utc);
        anyhow::ensure!(
            self.scale.is_finite() && self.scale > 0.0,
            "--scale must be a positive number, got {}",
            self.scale
        );
        Ok(GeneratorConfig {
            seed: self.seed,
            days: self.days,
            start,
            scale: self.scale,
            density: self.density,
        })
    }
}

/// Runs `battles generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let started = Instant::now();
    let summary = write_to_dir(config, &args.out, args.gzip)
        .with_context(|| format!("generating into {}", args.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} killmails to {} and their truth to {} in {:.2} s ({:.0} killmails/s)",
        summary.killmails,
        summary.killmails_path.display(),
        summary.truth_path.display(),
        seconds,
        summary.killmails as f64 / seconds.max(1e-9)
    )?;
    for (kind, n) in &summary.by_battle_kind {
        writeln!(out, "  {kind:<12} battles' killmails {n:>10}")?;
    }
    for (kind, n) in &summary.by_kill_kind {
        writeln!(out, "  {kind:<12} killmails {n:>19}")?;
    }
    Ok(ExitCode::SUCCESS)
}
