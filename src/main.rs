//! The `battles` binary: a thin shell over the library's CLI.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = battles::cli::Cli::parse();
    battles::telemetry::init(cli.log_format);
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
