//! `battles serve`: the REST API and the web pages alone (no consumer): loads the configuration, finds the
//! PostgreSQL server as the other commands do, applies pending migrations, and serves
//! `battles_api::router` on the configured `listen` address until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use battles_api::{ApiSettings, ApiState, NameResolverSettings};
use clap::Args;

use crate::config::{Config, Overrides};
use crate::postgres;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// PostgreSQL URL of the battles database [default: the configuration's `database_url`
    /// (`DATABASE_URL`), else the local server, else a private one].
    #[arg(long)]
    pub database_url: Option<String>,

    /// TOML configuration file (else $BATTLES_CONFIG, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: the configuration's `listen`, 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        listen: args.listen,
        database_url: args.database_url.clone(),
        ..Overrides::default()
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = postgres::discover(config.database_url.clone()).await?;
    let shown = postgres::redact(&server.url);
    battles_sink::prepare_database(&server.config)
        .await
        .with_context(|| format!("preparing {shown}"))?;
    let settings = api_settings(&config);
    let pool = battles_api::pool(
        server.config.clone(),
        config.pg_pool_size,
        settings.statement_timeout,
    )?;
    let state = ApiState::new(pool, settings)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    eprintln!("database: {shown}");
    eprintln!("serving the API on http://{}", listener.local_addr()?);
    battles_api::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving the API")
}

/// The API's settings from the service configuration.
pub fn api_settings(config: &Config) -> ApiSettings {
    ApiSettings {
        admin_token: config.admin_token.clone(),
        cors_origins: config.cors_origins.clone(),
        names: NameResolverSettings {
            enabled: config.resolve_names,
            esi_base_url: config.esi_base_url.clone(),
            ..NameResolverSettings::default()
        },
        ..ApiSettings::default()
    }
}
