//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default: `info`, with the
//! migration and PostgreSQL client libraries at `warn`), as text or as JSON lines.
//!
//! Text has colours only when stderr is a terminal, so logs piped to a file or a log shipper
//! carry no escape codes. `--log-format json` (or `BATTLES_LOG_FORMAT=json`) writes one JSON
//! object per line, with the span fields of each event, for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The default filter when `RUST_LOG` is unset: our INFO, the libraries' warnings only
/// (refinery reports every check of its history table at INFO).
pub const DEFAULT_FILTER: &str = "info,refinery_core=warn,refinery=warn,tokio_postgres=warn";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text, in colour when stderr is a terminal.
    #[default]
    Auto,
    /// Plain text, never coloured.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
