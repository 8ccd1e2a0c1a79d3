//! Where the live service's messages come from: a Kafka topic ([`KafkaSource`]) or a replay of
//! killmail files on an accelerated clock ([`ReplaySource`], the embedded default). Both hand
//! out [`Message`]s in batches with the position each one reaches, so the step loop, the
//! offsets it commits and the rejections it keeps are the same whichever feeds it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::ingest::{parse_record, IngestContext};
use crate::sources::{open_sources, SourcePosition};

/// One record of a source.
#[derive(Clone, Debug)]
pub struct Message {
    /// The `source_offsets` key of the stream it belongs to (`kafka:topic:partition`,
    /// `replay:...`).
    pub key: String,
    /// Its offset in that stream; the position committed after it is `offset + 1`.
    pub offset: i64,
    /// Where it was read, for rejections.
    pub position: SourcePosition,
    pub payload: Vec<u8>,
}

/// What a poll found.
#[derive(Debug)]
pub enum Poll {
    /// Messages, in the order of each stream.
    Messages(Vec<Message>),
    /// Nothing yet.
    Idle,
    /// The source has ended (a replay that reached its end; Kafka never ends).
    End,
}

/// A source of messages. `resume` gives the positions committed in PostgreSQL (`source_offsets`),
/// and a source starts each of its streams there.
pub trait Source: Send {
    /// Up to `max` messages, waiting at most `wait` for the first.
    fn poll(&mut self, max: usize, wait: Duration) -> anyhow::Result<Poll>;

    /// Seconds between now and the newest message not yet consumed, when known (0 when
    /// caught up).
    fn lag_seconds(&self) -> Option<f64> {
        None
    }

    /// One line saying what this source reads, for the operator.
    fn describe(&self) -> String;
}

/// The `source_offsets` key of a replay of `paths`.
pub fn replay_key(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect();
    format!("replay:{}", names.join(","))
}

/// Killmail files replayed as a live stream: records in killmail-time order, each released when
/// an accelerated clock (`speed` times real time, from the first record's time) reaches it.
/// Offsets count records in that order, so a restarted replay continues where it committed.
pub struct ReplaySource {
    key: String,
    description: String,
    records: Vec<(DateTime<Utc>, Message)>,
    next: usize,
    speed: f64,
    started: Instant,
    /// Replay time at `started`.
    origin: Option<DateTime<Utc>>,
}

impl ReplaySource {
    /// Reads `paths` whole (a day of EVE is ~17k records), orders them by killmail time (records
    /// that do not parse keep their place at the start: they are rejected as soon as they come
    /// out) and starts at the committed `resume` position of this replay's key.
    pub fn open(
        paths: &[PathBuf],
        speed: f64,
        ctx: &IngestContext,
        max_record_bytes: usize,
        resume: &HashMap<String, i64>,
    ) -> anyhow::Result<ReplaySource> {
        let key = replay_key(paths);
        let mut sources = open_sources(paths)?.with_max_record_bytes(max_record_bytes);
        let mut records = Vec::new();
        while let Some(record) = sources.next_record() {
            let record = record?;
            let time = parse_record(record.bytes, ctx)
                .map(|p| p.killmail.killmail_time)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            records.push((
                time,
                Message {
                    key: key.clone(),
                    offset: 0,
                    position: record.position(),
                    payload: record.bytes.to_vec(),
                },
            ));
        }
        records.sort_by_key(|(time, _)| *time);
        for (i, (_, m)) in records.iter_mut().enumerate() {
            m.offset = i as i64;
        }
        let next = resume
            .get(&key)
            .map_or(0, |p| (*p).clamp(0, records.len() as i64) as usize);
        let description = format!(
            "replaying {} records of {} at {speed}x{}",
            records.len(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            match next {
                0 => String::new(),
                n => format!(", resuming after record {n}"),
            }
        );
        Ok(ReplaySource {
            key,
            description,
            records,
            next,
            speed: speed.max(f64::MIN_POSITIVE),
            started: Instant::now(),
            origin: None,
        })
    }

    /// The replay clock: the time of the first record still to come, plus the accelerated time
    /// since the replay started.
    fn replay_now(&mut self) -> Option<DateTime<Utc>> {
        let first = self
            .records
            .get(self.next..)?
            .iter()
            .map(|(t, _)| *t)
            .find(|t| *t > DateTime::<Utc>::MIN_UTC)?;
        let origin = *self.origin.get_or_insert(first);
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed;
        let elapsed = chrono::Duration::milliseconds((elapsed * 1000.0).min(1e15) as i64);
        Some(origin + elapsed)
    }

    /// This replay's key in `source_offsets`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Source for ReplaySource {
    fn poll(&mut self, max: usize, wait: Duration) -> anyhow::Result<Poll> {
        if self.next >= self.records.len() {
            return Ok(Poll::End);
        }
        let deadline = Instant::now() + wait;
        loop {
            let now = self.replay_now().unwrap_or(DateTime::<Utc>::MAX_UTC);
            let due = self.records[self.next..]
                .iter()
                .take(max.max(1))
                .take_while(|(t, _)| *t <= now)
                .count();
            if due > 0 {
                let out = self.records[self.next..self.next + due]
                    .iter()
                    .map(|(_, m)| m.clone())
                    .collect();
                self.next += due;
                return Ok(Poll::Messages(out));
            }
            if Instant::now() >= deadline {
                return Ok(Poll::Idle);
            }
            std::thread::sleep(Duration::from_millis(20).min(wait));
        }
    }

    fn lag_seconds(&self) -> Option<f64> {
        Some(0.0)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// How the Kafka source connects.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    /// Messages per batch handed to the step loop.
    pub batch: usize,
    /// Batches read ahead of the step loop; when they are all waiting, the consumer thread stops
    /// polling (back-pressure: memory stays bounded while PostgreSQL is slow or away).
    pub read_ahead: usize,
}

/// A Kafka topic, every partition of it assigned to this process at the offsets committed in
/// PostgreSQL (Kafka's own commits are not used), consumed by a thread of its own.
pub struct KafkaSource {
    batches: std::sync::mpsc::Receiver<anyhow::Result<Vec<Message>>>,
    lag: std::sync::Arc<std::sync::Mutex<Option<f64>>>,
    description: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _consumer_thread: std::thread::JoinHandle<()>,
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl KafkaSource {
    /// Connects, assigns every partition of the topic at its committed position (the beginning
    /// when none is stored) and starts the consumer thread.
    pub fn open(options: &KafkaOptions, resume: &HashMap<String, i64>) -> anyhow::Result<Self> {
        use anyhow::Context;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Offset, TopicPartitionList};

        let consumer: BaseConsumer = kafka_consumer_config(options)
            .create()
            .context("creating the Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(&options.topic), Duration::from_secs(10))
            .with_context(|| format!("reading the metadata of topic {}", options.topic))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == options.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            anyhow::bail!(
                "topic {} has no partitions on {} (does it exist?)",
                options.topic,
                options.brokers
            );
        }
        let mut assignment = TopicPartitionList::new();
        let mut resumed = 0;
        for &p in &partitions {
            let offset = match resume.get(&kafka_key(&options.topic, p)) {
                Some(&next) => {
                    resumed += 1;
                    Offset::Offset(next)
                }
                None => Offset::Beginning,
            };
            assignment.add_partition_offset(&options.topic, p, offset)?;
        }
        consumer
            .assign(&assignment)
            .context("assigning partitions")?;
        let description = format!(
            "consuming {} ({} partitions, {resumed} resumed from PostgreSQL) on {}",
            options.topic,
            partitions.len(),
            options.brokers
        );
        let (tx, batches) = std::sync::mpsc::sync_channel(options.read_ahead.max(1));
        let lag = std::sync::Arc::new(std::sync::Mutex::new(None));
        let thread_lag = lag.clone();
        let topic = options.topic.clone();
        let batch = options.batch.max(1);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_stop = stop.clone();
        let consumer_thread = std::thread::Builder::new()
            .name("kafka-consumer".into())
            .spawn(move || {
                consume(
                    consumer,
                    topic,
                    partitions,
                    batch,
                    tx,
                    thread_lag,
                    thread_stop,
                )
            })?;
        Ok(KafkaSource {
            batches,
            lag,
            description,
            stop,
            _consumer_thread: consumer_thread,
        })
    }
}

/// The `source_offsets` key of a Kafka partition.
pub fn kafka_key(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}:{partition}")
}

/// The consumer's librdkafka settings.
fn kafka_consumer_config(options: &KafkaOptions) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("group.id", &options.group_id)
        // Offsets live in PostgreSQL, committed with the rows they produced: Kafka's commits
        // would be a second, disagreeing owner of the position.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka backs off 1 s by default when its prefetch queue was full; after the
        // step loop drains a batch we want the next one at once.
        .set("fetch.queue.backoff.ms", "10")
        // A fetch returns after 100 ms even when it found less than fetch.min.bytes: bounds the
        // latency at low rates.
        .set("fetch.wait.max.ms", "100")
        // Prefetch up to 64 MB per partition queue: enough to keep steps full at 10k+/s, bounded.
        .set("queued.max.messages.kbytes", "65536")
        .set("queued.min.messages", "20000");
    config
}

/// The consumer thread: polls batches and hands them over until the receiver goes away.
fn consume(
    consumer: rdkafka::consumer::BaseConsumer,
    topic: String,
    partitions: Vec<i32>,
    batch: usize,
    tx: std::sync::mpsc::SyncSender<anyhow::Result<Vec<Message>>>,
    lag: std::sync::Arc<std::sync::Mutex<Option<f64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message as _;

    let mut newest: HashMap<i32, (i64, Option<i64>)> = HashMap::new();
    let mut lag_checked = Instant::now() - Duration::from_secs(60);
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut out = Vec::new();
        let started = Instant::now();
        while out.len() < batch && started.elapsed() < Duration::from_millis(100) {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    newest.insert(m.partition(), (m.offset(), m.timestamp().to_millis()));
                    out.push(Message {
                        key: kafka_key(&topic, m.partition()),
                        offset: m.offset(),
                        position: SourcePosition::Kafka {
                            topic: topic.clone(),
                            partition: m.partition(),
                            offset: m.offset(),
                        },
                        payload: m.payload().unwrap_or_default().to_vec(),
                    });
                }
                // The broker away, a partition error: librdkafka reconnects by itself; the
                // stream goes on when it is back.
                Some(Err(e)) => tracing::warn!("kafka: {e}"),
                None if out.is_empty() => {}
                None => break,
            }
        }
        // A broker round trip per partition, stopping at the first one behind; short timeouts
        // keep the check from stalling consumption.
        if lag_checked.elapsed() >= Duration::from_secs(5) {
            lag_checked = Instant::now();
            let behind = partitions.iter().any(|&p| {
                let next = newest.get(&p).map_or(0, |(o, _)| o + 1);
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_millis(200))
                    .is_ok_and(|(_, high)| next < high)
            });
            let seconds = match behind {
                false => 0.0,
                true => newest
                    .values()
                    .filter_map(|(_, ts)| *ts)
                    .max()
                    .map_or(0.0, |ms| {
                        ((Utc::now().timestamp_millis() - ms).max(0) as f64) / 1000.0
                    }),
            };
            if let Ok(mut l) = lag.lock() {
                *l = Some(seconds);
            }
        }
        if !out.is_empty() && tx.send(Ok(out)).is_err() {
            return;
        }
    }
}

impl Source for KafkaSource {
    fn poll(&mut self, _max: usize, wait: Duration) -> anyhow::Result<Poll> {
        use std::sync::mpsc::RecvTimeoutError;
        match self.batches.recv_timeout(wait) {
            Ok(batch) => Ok(Poll::Messages(batch?)),
            Err(RecvTimeoutError::Timeout) => Ok(Poll::Idle),
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the Kafka consumer thread stopped")
            }
        }
    }

    fn lag_seconds(&self) -> Option<f64> {
        self.lag.lock().ok().and_then(|l| *l)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
