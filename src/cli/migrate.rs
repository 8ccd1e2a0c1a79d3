//! `battles migrate`: finds the PostgreSQL server (see `battles::postgres`), creates the
//! database if it does not exist and applies every schema migration not yet applied.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::postgres;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL of the battles database, e.g. postgres://postgres@127.0.0.1:5432/battles_db.
    /// Without it: the local server, else a private one when PostgreSQL is installed.
    #[arg(long)]
    pub database_url: Option<String>,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let database_url = crate::config::Config::load(&crate::config::Overrides {
        database_url: args.database_url,
        ..Default::default()
    })?
    .database_url;
    runtime.block_on(async move {
        let server = postgres::discover(database_url).await?;
        let shown = postgres::redact(&server.url);
        let created = battles_sink::ensure_database(&server.config)
            .await
            .with_context(|| format!("creating the database of {shown}"))?;
        if created {
            eprintln!("created database {}", server.database());
        }
        let mut client = battles_sink::migrate::connect(&server.config)
            .await
            .with_context(|| format!("connecting to {shown}"))?;
        let report = battles_sink::migrate(&mut client)
            .await
            .with_context(|| format!("migrating {shown}"))?;
        for m in report.applied_migrations() {
            println!("applied V{}__{}", m.version(), m.name());
        }
        let latest = battles_sink::migrate::migration_versions()
            .last()
            .copied()
            .unwrap_or(0);
        println!("{shown}: schema at version {latest}");
        Ok(ExitCode::SUCCESS)
    })
}
