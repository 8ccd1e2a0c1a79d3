//! `battles engine-peer`: one more process for the clustering engine of a `battles backfill
//! --cluster ...` or `battles run --cluster ...` (timely's own cluster configuration). The
//! backfill or the service is process 0; each peer is started with the same address list and
//! its own process index, takes its share of the graph's work over TCP, and exits when process
//! 0's engine shuts down.

use std::process::ExitCode;

use anyhow::anyhow;
use battles_dataflow::{run_cluster_peer, Cluster, EngineConfig};
use clap::Args;

/// Run one peer process of a multi-process clustering engine.
#[derive(Debug, Args)]
#[command(
    after_help = "Example (two machines, two processes):\n  host-b$ battles engine-peer --cluster host-a:7100,host-b:7100 --process 1\n  host-a$ battles backfill --cluster host-a:7100,host-b:7100 dumps/"
)]
pub struct EnginePeerArgs {
    /// host:port of every process, process 0 (the backfill or the service) first; the same list
    /// everywhere.
    #[arg(long, value_delimiter = ',', required = true)]
    pub cluster: Vec<String>,

    /// This process's index in the list (1 or more).
    #[arg(long)]
    pub process: usize,

    /// Worker threads of this process [default: the configuration's `workers`, the number of
    /// cores, as for backfill]. Every process must run the same number: a mismatch is refused
    /// on both sides with a message naming both counts.
    #[arg(long)]
    pub workers: Option<usize>,

    /// Configuration file (TOML) [env: BATTLES_CONFIG].
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
}

pub fn run(args: EnginePeerArgs) -> anyhow::Result<ExitCode> {
    if args.process == 0 || args.process >= args.cluster.len() {
        return Err(anyhow!(
            "--process must be between 1 and {} (process 0 is the backfill or the service)",
            args.cluster.len().saturating_sub(1)
        ));
    }
    eprintln!(
        "engine peer {} of {}: waiting for the other processes",
        args.process,
        args.cluster.len()
    );
    let config = crate::config::Config::load(&crate::config::Overrides {
        config_file: args.config.clone(),
        workers: args.workers,
        ..Default::default()
    })?;
    run_cluster_peer(EngineConfig {
        cluster: Some(Cluster {
            addresses: args.cluster,
            process: args.process,
        }),
        ..config.engine_config()
    })
    .map_err(|e| anyhow!("engine peer: {e}"))?;
    eprintln!("engine peer {}: the driver finished", args.process);
    Ok(ExitCode::SUCCESS)
}
