//! Stream benchmark: `battles run`'s path from a Kafka topic to committed rows, against
//! rdkafka's in-process mock broker and the local PostgreSQL (a scratch database per phase).
//!
//! 1. **Sustained**: `BENCH_KILLMAILS` (default 100k) generated killmails are produced first
//!    (`BENCH_PARTITIONS`, default 256, round robin: the mock broker keeps only ~5 MB per
//!    partition, counted compressed, so `BENCH_COMPRESSION=gzip` or `lz4` fits them on fewer), then the
//!    stream consumes them; killmails/s from the first poll to the last commit.
//! 2. **Latency**: the stream runs on an empty topic while killmails are produced at a steady
//!    `BENCH_RATE` per second (default 1,000) for `BENCH_SECONDS` (20); for each killmail, the
//!    time from its produce call to its row's `received_at` (the committing transaction's
//!    start, PostgreSQL's `now()`), as p50/p95/p99/max.
//!
//! `cargo bench --bench stream` (`BENCH_MODES=sustained` or `latency` for one phase;
//! `BENCH_TIMESTAMPS=arrival` stamps the sustained phase's messages in arrival order, as a
//! backlog produced over time is, instead of the time of the burst that produced them;
//! `BENCH_LATENESS_SECS` overrides the stream's lateness allowance, `BENCH_BATCH` its
//! messages per step and `BENCH_WRITERS` its connections writing a step, for A/B runs). The mock
//! broker runs in this process and shares its cores.

/// The allocator `battles` ships with (src/main.rs): the benchmark measures what runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use battles::generate::{generate_all, GeneratorConfig};
use battles::stream::{
    committed_positions, run_stream, Decoder, KafkaOptions, KafkaSource, StreamOptions,
    StreamStatus,
};
use battles_dataflow::EngineConfig;
use battles_sink::{Sink, SinkConfig, TestDatabase};
use hdrhistogram::Histogram;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// The mock broker keeps about 5 MB per partition: enough partitions that nothing is dropped.
const PARTITIONS: i32 = 256;

/// Partitions of the steady-rate topic (a few MB each at 20k messages).
const STEADY_PARTITIONS: i32 = 64;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn payloads(n: usize) -> Vec<(i64, String)> {
    // Scale 10 gives about 14k killmails a day (benches/engine.rs).
    let days = n.div_ceil(14_000).max(1) as u32;
    let generated = generate_all(GeneratorConfig {
        seed: 7,
        days,
        scale: 10.0,
        ..GeneratorConfig::default()
    });
    generated
        .killmails
        .into_iter()
        .take(n)
        .map(|k| (k.killmail_id, serde_json::to_string(&k).unwrap()))
        .collect()
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "1")
        // The mock broker counts its 5 MB per partition in stored (compressed) bytes.
        .set(
            "compression.type",
            env("BENCH_COMPRESSION", "none".to_owned()),
        )
        .create()
        .unwrap()
}

/// Produces `payload` on `partition`, stamped `timestamp_ms` (`None`: the time of sending).
fn send(
    producer: &BaseProducer,
    topic: &str,
    partition: i32,
    payload: &str,
    timestamp_ms: Option<i64>,
) {
    loop {
        let mut record = BaseRecord::<(), str>::to(topic)
            .partition(partition)
            .payload(payload);
        if let Some(ms) = timestamp_ms {
            record = record.timestamp(ms);
        }
        match producer.send(record) {
            Ok(()) => return,
            Err(_) => {
                producer.poll(Duration::from_millis(5));
            }
        }
    }
}

/// Runs the stream on `topic` into a fresh database until `stop`; returns the database.
fn start_stream(
    bootstrap: String,
    topic: String,
    stop: Arc<AtomicBool>,
) -> (TestDatabase, std::thread::JoinHandle<()>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDatabase::create()).unwrap();
    let url = db.url.clone();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sink = Arc::new(
            runtime
                .block_on(Sink::connect(SinkConfig::new(url)))
                .unwrap(),
        );
        let _lock = runtime.block_on(sink.lock_writer()).unwrap();
        let resume: HashMap<String, i64> = committed_positions(&sink, &runtime).unwrap();
        let mut source = KafkaSource::open(
            &KafkaOptions {
                brokers: bootstrap,
                topic,
                group_id: "bench".into(),
                batch: env("BENCH_BATCH", battles::stream::DEFAULT_BATCH),
                read_ahead: 2,
                decoder: Decoder::default(),
            },
            &resume,
        )
        .unwrap();
        let mut options = StreamOptions::new(EngineConfig {
            workers: 1,
            ..EngineConfig::default()
        });
        options.batch = env("BENCH_BATCH", options.batch);
        options.writers = env("BENCH_WRITERS", options.writers);
        if let Ok(secs) = std::env::var("BENCH_LATENESS_SECS") {
            options.lateness = chrono::Duration::seconds(secs.parse().unwrap());
        }
        run_stream(
            sink,
            &runtime,
            &mut source,
            &options,
            &stop,
            &StreamStatus::default(),
        )
        .unwrap();
    });
    (db, handle)
}

/// Fails when the mock broker dropped the start of a partition (it keeps about 5 MB each).
fn assert_nothing_dropped(p: &BaseProducer, topic: &str, partitions: i32) {
    let dropped: i64 = (0..partitions)
        .map(|partition| {
            p.client()
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .unwrap()
                .0
        })
        .sum();
    assert_eq!(
        dropped, 0,
        "the mock broker dropped messages: more partitions needed"
    );
}

/// Waits until the stream on `stream` has committed the positions of `messages` messages;
/// panics if the stream's thread ends first (a failed stream would otherwise be waited for
/// for ever). Returns when the first commit was seen and the positions it had committed.
fn wait_for_positions(
    db: &TestDatabase,
    messages: i64,
    stream: &std::thread::JoinHandle<()>,
) -> (Instant, i64) {
    let mut first_commit = None;
    loop {
        let committed = query_i64(
            db,
            "SELECT coalesce(sum(position), 0)::int8 FROM source_offsets",
        );
        if committed > 0 && first_commit.is_none() {
            first_commit = Some((Instant::now(), committed));
        }
        if committed >= messages {
            return first_commit.expect("seen above");
        }
        assert!(
            !stream.is_finished(),
            "the stream stopped before committing every message (its error is above)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn query_i64(db: &TestDatabase, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = db.connect().await.unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    })
}

fn sustained(cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>) {
    let n = env("BENCH_KILLMAILS", 100_000usize);
    let topic = "sustained";
    let partitions = env("BENCH_PARTITIONS", PARTITIONS);
    cluster.create_topic(topic, partitions, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let records = payloads(n);
    let p = producer(&bootstrap);
    // `BENCH_TIMESTAMPS=arrival` stamps the messages one millisecond apart in arrival order, as
    // a backlog produced while the killmails came in would be; by default they carry the time
    // of this burst of sending, which says nothing of their order across partitions.
    let arrival = env("BENCH_TIMESTAMPS", String::new()) == "arrival";
    let first_ms = chrono::Utc::now().timestamp_millis() - records.len() as i64;
    for (i, (_, payload)) in records.iter().enumerate() {
        let stamp = arrival.then_some(first_ms + i as i64);
        send(&p, topic, i as i32 % partitions, payload, stamp);
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).unwrap();
    assert_nothing_dropped(&p, topic, partitions);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (db, handle) = start_stream(bootstrap, topic.into(), stop.clone());
    let (first_at, first_committed) = wait_for_positions(&db, records.len() as i64, &handle);
    let elapsed = started.elapsed().as_secs_f64();
    // From the first commit to the last: the stream's steady rate, without the start (a fresh
    // database and its migrations, the lock, the assignment, the engine's start) and the first
    // step, which the whole-run figure above pays.
    let steady = (records.len() as i64 - first_committed) as f64 / first_at.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    handle.join().unwrap();
    let stored = query_i64(&db, "SELECT count(*) FROM killmails");
    assert_eq!(
        stored as usize,
        records.len(),
        "every message became a stored killmail"
    );
    println!(
        "sustained: {} messages on {partitions} partitions ({stored} killmails stored) in {elapsed:.2} s: {:.0} killmails/s (start, assignment and engine start included); from the first commit ({first_committed} messages) to the last: {steady:.0} killmails/s",
        records.len(),
        records.len() as f64 / elapsed
    );
    drop_db(db);
}

fn latency(cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>) {
    let rate = env("BENCH_RATE", 1_000u64);
    let seconds = env("BENCH_SECONDS", 20u64);
    let topic = "steady";
    cluster.create_topic(topic, STEADY_PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let records = payloads((rate * seconds) as usize);
    let stop = Arc::new(AtomicBool::new(false));
    let (db, handle) = start_stream(bootstrap.clone(), topic.into(), stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    let p = producer(&bootstrap);
    let mut sent_at: HashMap<i64, chrono::DateTime<chrono::Utc>> = HashMap::new();
    let started = Instant::now();
    for (i, (id, payload)) in records.iter().enumerate() {
        let due = Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        sent_at.insert(*id, chrono::Utc::now());
        send(&p, topic, i as i32 % STEADY_PARTITIONS, payload, None);
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).unwrap();
    let produced = started.elapsed().as_secs_f64();
    assert_nothing_dropped(&p, topic, STEADY_PARTITIONS);
    wait_for_positions(&db, records.len() as i64, &handle);
    stop.store(true, Ordering::SeqCst);
    handle.join().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let client = db.connect().await.unwrap();
        client
            .query("SELECT killmail_id, received_at FROM killmails", &[])
            .await
            .unwrap()
    });
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for row in &rows {
        let id: i64 = row.get(0);
        let at: chrono::DateTime<chrono::Utc> = row.get(1);
        if let Some(sent) = sent_at.get(&id) {
            let micros = (at - *sent).num_microseconds().unwrap_or(0).max(0) as u64;
            histogram.record(micros.max(1)).unwrap();
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency at {rate}/s for {produced:.1} s ({} killmails): produce to commit p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        histogram.len(),
        ms(0.5),
        ms(0.95),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
    drop_db(db);
}

fn drop_db(db: TestDatabase) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(db.drop_database()).unwrap();
}

fn main() {
    // As every `battles` command runs (src/memory.rs).
    battles::memory::no_transparent_huge_pages();
    // `RUST_LOG=battles=debug` shows each step and transaction (the bench prints its figures
    // either way).
    battles::telemetry::init(battles::telemetry::LogFormat::Text);
    let cluster = MockCluster::new(1).unwrap();
    let modes = env("BENCH_MODES", "sustained,latency".to_owned());
    if modes.contains("sustained") {
        sustained(&cluster);
    }
    if modes.contains("latency") {
        latency(&cluster);
    }
}
