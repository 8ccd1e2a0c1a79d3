//! `battles run`: the live service. Killmails from Kafka (`kafka_brokers`), or with no brokers
//! configured a replay of the bundled real day (or the files given) on an accelerated clock,
//! through the engine into PostgreSQL, offsets committed with the rows; the event relay
//! publishes `battle.events`; the REST API is served on `listen`. SIGINT or SIGTERM: the step in
//! progress commits, the relay publishes what is left, the API finishes its requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use battles_api::ApiState;
use clap::Args;

use crate::cli::backfill::sample_path;
use crate::cli::serve::api_settings;
use crate::config::{Config, Overrides};
use crate::ingest::IngestContext;
use crate::postgres;
use crate::recluster::JobOptions;
use crate::stream::control::{self, ControlTopics};
use crate::stream::{
    committed_positions, default_writers, pool_size_for, relay, run_stream, Decoder, KafkaOptions,
    KafkaSource, ReplaySource, Source, StreamOptions, StreamStatus,
};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  battles run                                  # replay the bundled day at 60x, serve the API\n  battles run --speed 600 day1.jsonl.gz        # replay files instead\n  battles run --kafka-brokers localhost:9092   # consume killmail.enriched"
)]
pub struct RunArgs {
    /// Files to replay when no Kafka brokers are configured [default: the bundled real day].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Kafka bootstrap servers [default: the configuration's `kafka_brokers`; none: replay].
    #[arg(long, value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,

    /// Replay speed: killmail time passes this many times faster than real time.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,

    /// PostgreSQL URL of the battles database [default: the configuration's `database_url`
    /// (`DATABASE_URL`), else the local server, else a private one].
    #[arg(long)]
    pub database_url: Option<String>,

    /// TOML configuration file (else $BATTLES_CONFIG, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address of the API [default: the configuration's `listen`, 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,

    /// Engine worker threads [default: the configuration's `workers`].
    #[arg(long)]
    pub workers: Option<usize>,

    /// Run the clustering engine over several processes: host:port of every process, this one
    /// first. Start the others with `battles engine-peer --cluster <same list> --process N`;
    /// they stop when this service stops, and start again with it. This process still consumes
    /// every partition and writes every step (one writer per database): the others share the
    /// clustering.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    pub cluster: Vec<String>,

    /// Messages per step at most (a backlog goes this many at a time; at low rates a step is
    /// what arrived within 100 ms).
    #[arg(long, default_value_t = crate::stream::DEFAULT_BATCH)]
    pub batch: usize,

    /// Database connections writing a big step's battles that stand alone, beside the rest of
    /// the step, before its positions (the pool grows to hold them) [default: the number of
    /// cores, at most 4].
    #[arg(long, value_name = "N")]
    pub writers: Option<usize>,

    /// Stop when a replay reaches its end (by default the API stays up until Ctrl-C).
    #[arg(long)]
    pub exit_at_end: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Overrides {
        config_file: args.config.clone(),
        listen: args.listen,
        database_url: args.database_url.clone(),
        workers: args.workers,
        kafka_brokers: args.kafka_brokers.clone(),
        ..Overrides::default()
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Listening for SIGINT and SIGTERM before anything else: a signal while the service starts
    // stops it cleanly, instead of killing it: once the stage in progress is over (connecting,
    // taking the lock), or at once while it waits for the brokers' metadata.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(&runtime, stop.clone(), stop_tx.clone())?;
    let stopped_early = || {
        let stopped = stop.load(Ordering::SeqCst);
        if stopped {
            eprintln!("stopped before the stream started");
        }
        stopped
    };
    let writers = args.writers.unwrap_or_else(default_writers).max(1);
    // The configured pool, or more when the stream's writers need more sessions at once (a
    // part waiting for a session would time out after 30 s).
    let sink_config = Config {
        pg_pool_size: config.pg_pool_size.max(pool_size_for(writers)),
        ..config.clone()
    };
    let (server, sink) = runtime.block_on(postgres::connect_sink(&sink_config))?;
    let sink = Arc::new(sink);
    if stopped_early() {
        return Ok(ExitCode::SUCCESS);
    }
    // One writer per database, held until the stream has stopped.
    let _writer_lock = runtime.block_on(sink.lock_writer())?;

    let decoder = Decoder {
        ingest: IngestContext::new(config.time_skew_secs),
        max_record_bytes: config.max_record_bytes,
    };
    let resume = committed_positions(&sink, &runtime)?;
    let mut source: Box<dyn Source> = match &config.kafka_brokers {
        Some(brokers) => {
            // Opening waits up to 10 s for the topic's metadata when the brokers are away: it
            // runs on a thread of its own, so a signal meanwhile stops the service at once (the
            // thread ends with the process).
            let options = KafkaOptions {
                brokers: brokers.clone(),
                topic: config.killmail_topic.clone(),
                group_id: config.kafka_group_id.clone(),
                batch: args.batch,
                read_ahead: 2,
                decoder,
            };
            let positions = resume.clone();
            let opening = std::thread::Builder::new()
                .name("kafka-open".into())
                .spawn(move || KafkaSource::open(&options, &positions))
                .context("starting the thread that opens the Kafka source")?;
            while !opening.is_finished() {
                if stopped_early() {
                    return Ok(ExitCode::SUCCESS);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let opened = opening
                .join()
                .map_err(|_| anyhow::anyhow!("opening the Kafka source panicked"))?;
            if stopped_early() {
                return Ok(ExitCode::SUCCESS);
            }
            Box::new(opened?)
        }
        None => {
            let paths = match args.paths.is_empty() {
                true => vec![sample_path()?],
                false => args.paths.clone(),
            };
            Box::new(ReplaySource::open(&paths, args.speed, &decoder, &resume)?)
        }
    };
    eprintln!("{}", source.describe());

    let status = Arc::new(StreamStatus::default());
    let api = runtime.block_on(start_api(&config, &server, status.clone(), stop_rx.clone()))?;
    let relay = match &config.kafka_brokers {
        Some(brokers) => {
            let producer = relay::producer(brokers)?;
            eprintln!("publishing battle events to {}", config.events_topic);
            Some(runtime.spawn(relay::run(
                sink.clone(),
                producer,
                config.events_topic.clone(),
                stop_rx.clone(),
            )))
        }
        None => {
            eprintln!("no Kafka brokers: battle events stay in the outbox (battle_events_outbox)");
            None
        }
    };
    let control = match &config.kafka_brokers {
        Some(brokers) => {
            eprintln!(
                "taking re-clustering requests from {} and retention requests from {}",
                config.recluster_topic, config.retention_topic
            );
            Some(control::spawn(
                ControlTopics {
                    brokers: brokers.clone(),
                    group_id: config.kafka_group_id.clone(),
                    recluster: config.recluster_topic.clone(),
                    retention: config.retention_topic.clone(),
                },
                sink.clone(),
                runtime.handle().clone(),
                stop.clone(),
            )?)
        }
        None => None,
    };

    // Only the stream's engine is spread over the cluster: a job's engine runs in this
    // process (`recluster::slice::plan_slice` starts it without the cluster).
    let defaults = StreamOptions::new(config.driver_engine_config(&args.cluster));
    let options = StreamOptions {
        batch: args.batch,
        writers,
        jobs: Some(JobOptions {
            // A replay is history played back (the bundled day is from 2021): the daily
            // retention run would delete it as it arrives, so it runs on live Kafka only.
            retention_months: match config.kafka_brokers {
                Some(_) => config.retention_months,
                None => 0,
            },
            ..JobOptions::new(config.engine_config())
        }),
        // After a replay, jobs (re-clustering from the API, say) still run until Ctrl-C.
        stay_after_end: !args.exit_at_end,
        ..defaults
    };
    let result = run_stream(
        sink.clone(),
        &runtime,
        source.as_mut(),
        &options,
        &stop,
        &status,
    );
    drop(source);
    let _ = stop_tx.send(true);
    stop.store(true, Ordering::SeqCst);
    if let Some(control) = control {
        let _ = control.join();
    }
    runtime.block_on(async {
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        let _ = api.await;
    });
    result?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Binds the API's listener and serves it until `stop` turns true.
async fn start_api(
    config: &Config,
    server: &battles_sink::server::Server,
    status: Arc<StreamStatus>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let settings = api_settings(config);
    let pool = battles_api::pool(
        server.config.clone(),
        config.pg_pool_size,
        settings.statement_timeout,
    )?;
    let state = ApiState::new(pool, settings)?.with_consumer(status);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    eprintln!("serving the API on http://{address}/api/battles (health: /api/battles/health, metrics: /metrics)");
    Ok(tokio::spawn(battles_api::serve(
        listener,
        state,
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        },
    )))
}

/// Sets `stop` on SIGINT or SIGTERM from now on: the handlers are in place when this returns,
/// and a task on `runtime` waits for the first signal.
fn stop_on_signal(
    runtime: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    tx: tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let _entered = runtime.enter();
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    runtime.spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("stopping: finishing the step in progress");
        stop.store(true, Ordering::SeqCst);
        let _ = tx.send(true);
    });
    Ok(())
}
