//! The `battles` binary: a thin shell over the library's CLI.

use clap::Parser;

fn main() -> std::process::ExitCode {
    battles::telemetry::init();
    match battles::cli::Cli::parse().run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
