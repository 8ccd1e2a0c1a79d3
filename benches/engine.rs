//! Engine benchmark: killmails/s through the clustering graph in bulk (one step, as backfill
//! feeds it) and in small steps (as the stream feeds it: 100 killmails a step, arrival order)
//! with per-step latency percentiles, at 1 and 2 workers; and the process's peak memory.
//!
//! `cargo bench --bench engine` (env `BENCH_DAYS`, `BENCH_SCALE`, `BENCH_STEP` to change the
//! generated run: default 7 days at scale 10, about 100k killmails, steps of 100;
//! `BENCH_MODES` to run only some of `bulk`, `warm` (a second bulk step in the same process,
//! on memory the first freed, as a backfill's later batches run), `stream`, `evict`,
//! comma-separated, and
//! `BENCH_WORKERS` to run only some worker counts, e.g. `1`, when profiling).
//!
//! `BENCH_MODES=stages` cuts the graph after each of its stages (`dataflow/src/graph.rs`) and
//! times one bulk step through it with one worker, each cut in a process of its own so that its
//! memory growth is its own: where a bulk step's time and memory go.

/// The allocator `battles` ships with (src/main.rs): the benchmark measures what runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::time::Instant;

use battles::generate::{generate_all, GeneratorConfig};
use battles_dataflow::graph;
use battles_dataflow::shared::Shared;
use battles_dataflow::{Engine, EngineConfig, Killmail};
use differential_dataflow::input::Input;
use hdrhistogram::Histogram;
use timely::dataflow::operators::Probe;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM:`, `VmRSS:`), in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// The cuts of the graph `BENCH_MODES=stages` measures, in order: each adds one stage.
const STAGES: [&str; 5] = [
    "place killmails in cells",
    "+ cluster cells",
    "+ label killmails (propagation, joins)",
    "+ battle pieces",
    "+ battle reports (the whole graph)",
];

/// One bulk step of all `killmails` through the graph cut after stage `cut` (1-based), one
/// worker: the seconds it took and the resident memory it added, in MiB.
fn bulk_through_stage(killmails: &[Killmail], cut: usize) -> (f64, f64) {
    let config = std::sync::Arc::new(EngineConfig::default());
    let owned: Vec<Shared<Killmail>> = killmails.iter().cloned().map(Shared::new).collect();
    let before = status_mib("VmRSS:");
    let started = Instant::now();
    // Timed to the end of the step (the probe), not the dataflow's teardown.
    let secs = timely::execute_directly(move |worker| {
        let (mut input, probe) = worker.dataflow::<graph::Epoch, _, _>(|scope| {
            let (input, killmails) = scope.new_collection::<Shared<Killmail>, isize>();
            let placed = graph::place_killmails(killmails, &config);
            let labels = |placed| graph::label_killmails(graph::cluster_cells(placed, &config));
            let probe = match cut {
                1 => placed.inner.probe().0,
                2 => graph::cluster_cells(placed, &config).inner.probe().0,
                3 => labels(placed).arrange_by_key().stream.probe().0,
                4 => graph::battle_pieces(labels(placed)).inner.probe().0,
                _ => {
                    let pieces = graph::battle_pieces(labels(placed));
                    let reports = graph::battle_reports(pieces, config.min_linked_killmails);
                    reports.inner.probe().0
                }
            };
            (input, probe)
        });
        for km in owned {
            input.update(km, 1);
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));
        started.elapsed().as_secs_f64()
    });
    (secs, status_mib("VmRSS:") - before)
}

/// `BENCH_MODES=stages`: every cut in a process of its own (this bench again, with
/// `BENCH_STAGE`), so the memory each adds is measured from the same start.
fn stages() {
    for cut in 1..=STAGES.len() {
        let out = std::process::Command::new(std::env::current_exe().expect("bench path"))
            .env("BENCH_STAGE", cut.to_string())
            .output()
            .expect("run a stage");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            panic!("cut {cut} ({}) failed: {}", STAGES[cut - 1], out.status);
        }
    }
}

fn bulk(killmails: &[Killmail], workers: usize) -> (f64, usize) {
    let mut engine = Engine::start(EngineConfig {
        workers,
        ..EngineConfig::default()
    })
    .expect("engine step");
    // The caller owns the killmails it feeds (backfill parses them): copying them is not
    // the engine's work.
    let owned = killmails.to_vec();
    let started = Instant::now();
    let out = engine.insert(owned).expect("engine step");
    let secs = started.elapsed().as_secs_f64();
    (secs, out.upserts().count())
}

/// Stream steps in arrival order. With `evict`, closed battles leave memory after each step,
/// as in a live service: the horizon is the latest killmail time seen minus one hour of
/// allowed lateness. Returns the time, the step latencies and the most killmails resident.
fn stream(
    killmails: &[Killmail],
    workers: usize,
    step: usize,
    evict: bool,
) -> (f64, Histogram<u64>, usize) {
    let mut engine = Engine::start(EngineConfig {
        workers,
        ..EngineConfig::default()
    })
    .expect("engine step");
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut battles = BTreeMap::new();
    let mut latest = None;
    let mut peak = 0;
    let batches: Vec<Vec<Killmail>> = killmails.chunks(step).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    for batch in batches {
        let t = Instant::now();
        latest = batch.iter().map(|k| k.killmail_time).chain(latest).max();
        engine
            .insert(batch)
            .expect("engine step")
            .apply_to(&mut battles);
        if let (true, Some(latest)) = (evict, latest) {
            engine
                .evict_closed(latest - chrono::Duration::hours(1))
                .expect("engine step");
        }
        hist.record(t.elapsed().as_micros() as u64).expect("record");
        peak = peak.max(engine.resident().killmails());
    }
    (started.elapsed().as_secs_f64(), hist, peak)
}

fn main() {
    // As `battles backfill` runs: batch commands keep freed memory (src/memory.rs).
    battles::memory::no_transparent_huge_pages();
    battles::memory::keep_freed_memory();
    let days: u32 = env("BENCH_DAYS", 7);
    let scale: f64 = env("BENCH_SCALE", 10.0);
    let step: usize = env("BENCH_STEP", 100);
    let generated = generate_all(GeneratorConfig {
        days,
        scale,
        ..GeneratorConfig::default()
    });
    let kms = generated.killmails;
    let n = kms.len();
    if let Some(cut) = std::env::var("BENCH_STAGE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        assert!(
            (1..=STAGES.len()).contains(&cut),
            "BENCH_STAGE is 1 to {}",
            STAGES.len()
        );
        let (secs, mib) = bulk_through_stage(&kms, cut);
        println!(
            "| {cut} | {} | {:.0} | {secs:.2} | {:.1} |",
            STAGES[cut - 1],
            n as f64 / secs,
            mib * 1024.0 / n as f64
        );
        return;
    }
    let modes: String = env("BENCH_MODES", "bulk,warm,stream,evict".to_string());
    let modes: Vec<&str> = modes.split(',').map(str::trim).collect();
    if modes.contains(&"stages") {
        println!("engine stages: {n} generated killmails ({days} days, scale {scale}), one bulk step, one worker");
        println!("| cut | stages | killmails/s | seconds | memory added, KiB per killmail |");
        println!("|---:|---|---:|---:|---:|");
        stages();
        return;
    }
    println!("engine benchmark: {n} generated killmails ({days} days, scale {scale})");
    println!("| mode | workers | killmails/s | battles | step p50 | step p99 | step max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let worker_counts: String = env("BENCH_WORKERS", "1,2".to_string());
    let worker_counts: Vec<usize> = worker_counts
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    for &workers in worker_counts.iter().filter(|_| modes.contains(&"bulk")) {
        let (secs, battles) = bulk(&kms, workers);
        println!(
            "| bulk (1 step) | {workers} | {:.0} | {battles} | | | |",
            n as f64 / secs
        );
    }
    // The same bulk step again in this process: the memory the first engine freed is kept
    // (as `battles backfill` keeps it), so this step pays no first-touch page faults. A
    // backfill's every read batch after its first runs like this one.
    for &workers in worker_counts.iter().filter(|_| modes.contains(&"warm")) {
        let _first = bulk(&kms, workers);
        let (secs, battles) = bulk(&kms, workers);
        println!(
            "| bulk, warm (1 step, memory reused) | {workers} | {:.0} | {battles} | | | |",
            n as f64 / secs
        );
    }
    let streams = [(1, false), (2, false), (1, true), (2, true)]
        .into_iter()
        .filter(|(w, evict)| {
            worker_counts.contains(w) && modes.contains(&if *evict { "evict" } else { "stream" })
        });
    for (workers, evict) in streams {
        let (secs, h, peak) = stream(&kms, workers, step, evict);
        println!(
            "| stream ({step}/step{}) | {workers} | {:.0} | | {:.1} ms | {:.1} ms | {:.1} ms | {peak} resident at most |",
            if evict { ", evicting" } else { "" },
            n as f64 / secs,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    println!(
        "peak RSS {:.0} MiB for {n} killmails held ({:.1} KiB per killmail, generator included)",
        peak_rss_mib(),
        peak_rss_mib() * 1024.0 / n as f64
    );
}
