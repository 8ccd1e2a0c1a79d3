//! Ingest throughput on one core: killmails parsed, validated and enriched per second, for real
//! ESI records (the first 20,000 lines of the embedded sample day, decompressed in memory, so
//! ISK is estimated from item prices) and for the same killmails re-serialized as enriched
//! records. Run with `cargo bench --bench parse`.

/// The allocator `battles` ships with (src/main.rs): the benchmark measures what runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use battles::ingest::{parse_record, IngestContext};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sample/esi-2021-11-28.jsonl.gz"
);
const LINES: usize = 20_000;

/// The first `LINES` lines of the sample day.
fn esi_lines() -> Vec<Vec<u8>> {
    let file = std::fs::File::open(SAMPLE).expect("the sample day is part of the repository");
    let reader = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    reader
        .split(b'\n')
        .take(LINES)
        .map(|l| l.expect("readable sample"))
        .collect()
}

/// Parses every record once; panics on a reject (the sample is clean).
fn parse_all(records: &[Vec<u8>], ctx: &IngestContext) -> usize {
    let mut attackers = 0;
    for r in records {
        let parsed = parse_record(r, ctx).expect("sample records are valid");
        attackers += parsed.killmail.attackers.len();
    }
    attackers
}

fn report(label: &str, records: &[Vec<u8>], ctx: &IngestContext) {
    let bytes: usize = records.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed().as_secs_f64() < 2.0 {
        black_box(parse_all(records, ctx));
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (records.len() * rounds) as f64;
    println!(
        "{label}: {:.0} killmails/s, {:.0} MB/s on one core ({} records, mean {} bytes)",
        n / secs,
        (bytes * rounds) as f64 / secs / 1e6,
        records.len(),
        bytes / records.len()
    );
}

fn bench(c: &mut Criterion) {
    // As `battles backfill` runs: batch commands keep freed memory (src/memory.rs).
    battles::memory::no_transparent_huge_pages();
    battles::memory::keep_freed_memory();
    let ctx = IngestContext::default();
    let esi = esi_lines();
    let enriched: Vec<Vec<u8>> = esi
        .iter()
        .map(|r| serde_json::to_vec(&parse_record(r, &ctx).unwrap().killmail).unwrap())
        .collect();
    report("esi", &esi, &ctx);
    report("enriched", &enriched, &ctx);

    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    group.throughput(Throughput::Elements(esi.len() as u64));
    group.bench_function("esi_20k", |b| b.iter(|| parse_all(black_box(&esi), &ctx)));
    group.throughput(Throughput::Elements(enriched.len() as u64));
    group.bench_function("enriched_20k", |b| {
        b.iter(|| parse_all(black_box(&enriched), &ctx))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
