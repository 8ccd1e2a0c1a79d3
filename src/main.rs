//! The `battles` binary: a thin shell over the library's CLI.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the API's many small allocations per request (rows,
/// JSON) cost a quarter of its CPU under glibc (docs/benchmarks.md, "API").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    battles::memory::no_transparent_huge_pages();
    let cli = battles::cli::Cli::parse();
    if cli.command.is_batch() {
        battles::memory::keep_freed_memory();
    }
    battles::telemetry::init(cli.log_format);
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
