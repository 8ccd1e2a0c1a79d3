//! The `battles` service library: configuration, killmail ingest, sources and pipeline wiring.
//! `main.rs` is a thin CLI over it.

pub mod cli;
pub mod telemetry;
