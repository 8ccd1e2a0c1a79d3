//! `battles generate`: writes realistic synthetic killmails (enriched shape, arrival order)
//! together with their ground truth (true battle and true side of every pilot).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

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
    /// Write `killmails.jsonl.gz` instead of `killmails.jsonl`.
    #[arg(long)]
    pub gzip: bool,
}

/// Runs `battles generate`.
pub fn run(_args: GenerateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("battles generate is being written")
}
