//! The `battles` service library: configuration, killmail ingest, sources and pipeline wiring.
//! `main.rs` is a thin CLI over it.

pub mod accuracy;
pub mod backfill;
pub mod cli;
pub mod config;
pub mod generate;
pub mod ingest;
pub mod memory;
pub mod postgres;
pub mod recluster;
pub mod sources;
pub mod stream;
pub mod telemetry;
