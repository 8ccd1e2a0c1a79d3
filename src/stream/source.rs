//! Where the live service's messages come from: a Kafka topic ([`KafkaSource`]) or a replay of
//! killmail files on an accelerated clock ([`ReplaySource`], the embedded default). Both hand
//! out [`Message`]s in batches with the position each one reaches, so the step loop, the
//! offsets it commits and the rejections it keeps are the same whichever feeds it.
//!
//! A source decodes its messages ([`Decoder`]) before it hands them over: the Kafka source on
//! its consumer thread, beside the step in progress, straight from librdkafka's buffers (no copy
//! of a payload that parses), the replay once when it reads its files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use battles_dataflow::Killmail;
use chrono::{DateTime, Utc};

use super::merge::TimeMerge;
use crate::ingest::{parse_record, IngestContext, RejectReason};
use crate::sources::{open_sources, SourcePosition};

/// One record of a source.
#[derive(Debug)]
pub struct Message {
    /// The `source_offsets` key of the stream it belongs to (`kafka:topic:partition`,
    /// `replay:...`).
    pub key: Arc<str>,
    /// Its offset in that stream; the position committed after it is `offset + 1`.
    pub offset: i64,
    /// Where it was read, for rejections.
    pub position: SourcePosition,
    pub content: Content,
}

/// What a message holds, decoded.
#[derive(Debug)]
pub enum Content {
    Killmail(Box<Killmail>),
    /// Not a valid killmail: why, and its bytes (at most the record limit, invalid UTF-8
    /// replaced) for `rejected_killmails`.
    Rejected {
        reason: RejectReason,
        payload: String,
    },
}

/// How a source decodes a message's bytes: parsed, validated and enriched as backfill input is,
/// and refused when larger than `max_record_bytes`.
#[derive(Clone, Debug)]
pub struct Decoder {
    pub ingest: IngestContext,
    pub max_record_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            ingest: IngestContext::default(),
            max_record_bytes: crate::sources::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl Decoder {
    pub fn decode(&self, bytes: &[u8]) -> Content {
        if bytes.len() > self.max_record_bytes {
            return self.too_large(bytes);
        }
        match parse_record(bytes, &self.ingest) {
            Ok(p) => Content::Killmail(Box::new(p.killmail)),
            Err(reason) => self.rejected(reason, bytes),
        }
    }

    /// A record over the limit, whose reader already cut it (`bytes` may be its first part).
    pub fn too_large(&self, bytes: &[u8]) -> Content {
        let reason = RejectReason::TooLarge {
            max_bytes: self.max_record_bytes,
        };
        self.rejected(reason, bytes)
    }

    fn rejected(&self, reason: RejectReason, bytes: &[u8]) -> Content {
        let kept = &bytes[..bytes.len().min(self.max_record_bytes)];
        Content::Rejected {
            reason,
            payload: String::from_utf8_lossy(kept).into_owned(),
        }
    }
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
    /// The records still to come, oldest first.
    records: std::collections::VecDeque<(DateTime<Utc>, Message)>,
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
        decoder: &Decoder,
        resume: &HashMap<String, i64>,
    ) -> anyhow::Result<ReplaySource> {
        let key = replay_key(paths);
        let shared_key: Arc<str> = Arc::from(key.as_str());
        let mut sources = open_sources(paths)?.with_max_record_bytes(decoder.max_record_bytes);
        let mut records = Vec::new();
        while let Some(record) = sources.next_record() {
            let record = record?;
            // The reader cut a record over the limit: rejected as too large, as backfill does.
            let content = match record.oversized {
                true => decoder.too_large(record.bytes),
                false => decoder.decode(record.bytes),
            };
            let time = match &content {
                Content::Killmail(k) => k.killmail_time,
                Content::Rejected { .. } => DateTime::<Utc>::MIN_UTC,
            };
            records.push((
                time,
                Message {
                    key: shared_key.clone(),
                    offset: 0,
                    position: record.position(),
                    content,
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
        let total = records.len();
        let mut records: std::collections::VecDeque<_> = records.into();
        records.drain(..next);
        let description = format!(
            "replaying {total} records of {} at {speed}x{}",
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
        if self.records.is_empty() {
            return Ok(Poll::End);
        }
        let deadline = Instant::now() + wait;
        loop {
            let now = self.replay_now().unwrap_or(DateTime::<Utc>::MAX_UTC);
            let due = self
                .records
                .iter()
                .take(max.max(1))
                .take_while(|(t, _)| *t <= now)
                .count();
            if due > 0 {
                let out = self.records.drain(..due).map(|(_, m)| m).collect();
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
    /// Decodes each message on the consumer thread.
    pub decoder: Decoder,
}

/// A Kafka topic, every partition of it assigned to this process at the offsets committed in
/// PostgreSQL (Kafka's own commits are not used), consumed by a thread of its own.
pub struct KafkaSource {
    batches: std::sync::mpsc::Receiver<anyhow::Result<Vec<Message>>>,
    /// A batch received but not taken: it did not fit in the last step.
    held: Option<Vec<Message>>,
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

        let consumer: BaseConsumer<WatermarkContext> = kafka_consumer_config(options)
            .create_with_context(WatermarkContext::new(&options.topic))
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
        // Per partition, the offset of the next message to consume (unknown until the first
        // message when it starts at the beginning).
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        for &p in &partitions {
            let offset = match resume.get(&kafka_key(&options.topic, p)) {
                Some(&next) => {
                    next_offsets.insert(p, next);
                    Offset::Offset(next)
                }
                None => Offset::Beginning,
            };
            assignment.add_partition_offset(&options.topic, p, offset)?;
        }
        let resumed = next_offsets.len();
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
        let decoder = options.decoder.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_stop = stop.clone();
        let consumer_thread = std::thread::Builder::new()
            .name("kafka-consumer".into())
            .spawn(move || {
                consume(
                    consumer,
                    Feed {
                        topic,
                        partitions,
                        decoder,
                    },
                    next_offsets,
                    batch,
                    tx,
                    thread_lag,
                    thread_stop,
                )
            })?;
        Ok(KafkaSource {
            batches,
            held: None,
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
        // Each partition has a queue of its own (the merge takes them oldest first), so these
        // are per partition: 2 MB ahead of each (about 600 enriched killmails) keeps steps full
        // at 10k+/s and bounds memory by the partition count (0.5 GB at 256).
        .set("queued.max.messages.kbytes", "2048")
        .set("queued.min.messages", "2000")
        // The lag check reads the partitions' high watermarks from librdkafka's statistics
        // (taken from fetch responses, no request of their own) instead of asking the broker
        // partition by partition, which stalled consumption for a round trip per partition.
        .set("statistics.interval.ms", LAG_CHECK_MS.to_string());
    config
}

/// How often the consumer's lag is computed (and librdkafka reports its statistics).
const LAG_CHECK_MS: u64 = 5_000;

/// The consumer's librdkafka context: keeps the (low, high) watermarks of each partition of
/// the topic from the statistics librdkafka hands to the polling thread.
struct WatermarkContext {
    topic: String,
    watermarks: std::sync::Mutex<HashMap<i32, (i64, i64)>>,
}

impl WatermarkContext {
    fn new(topic: &str) -> WatermarkContext {
        WatermarkContext {
            topic: topic.to_owned(),
            watermarks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Per partition, (low, high) watermarks as last reported.
    fn watermarks(&self) -> HashMap<i32, (i64, i64)> {
        self.watermarks
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }
}

impl rdkafka::ClientContext for WatermarkContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        if let Ok(mut watermarks) = self.watermarks.lock() {
            // Partition -1 is librdkafka's own; -1 offsets are "not known yet".
            for (&p, partition) in &topic.partitions {
                if p >= 0 && partition.hi_offset >= 0 {
                    watermarks.insert(p, (partition.lo_offset.max(0), partition.hi_offset));
                }
            }
        }
    }
}

impl rdkafka::consumer::ConsumerContext for WatermarkContext {}

/// Messages of one partition the consumer takes from its queue (and decodes) ahead of the merge
/// at most. The first look at a backlog decodes this many of every partition before the first
/// batch goes out: 64 of each of the stream bench's 256 partitions is about one batch.
const MERGE_AHEAD: usize = 64;

/// The consumer's pause between two looks at its queues when nothing arrived: 2 ms after a
/// message, doubling while the topic stays quiet, up to [`IDLE_PAUSE_MAX`]. Each look polls
/// every partition's queue, so an idle service looking every 2 ms spent its CPU on nothing;
/// the first message after a quiet spell waits at most that much longer.
fn idle_pause(quiet_looks: u32) -> Duration {
    Duration::from_millis(2)
        .saturating_mul(1u32 << quiet_looks.min(4))
        .min(IDLE_PAUSE_MAX)
}

/// The longest [`idle_pause`].
const IDLE_PAUSE_MAX: Duration = Duration::from_millis(25);

/// How long the merge waits for a partition that is behind but whose queue ran dry (between
/// two fetches) before it goes on without it.
const MERGE_WAIT: Duration = Duration::from_millis(30);

/// What the consumer thread reads, and how it decodes it.
struct Feed {
    topic: String,
    partitions: Vec<i32>,
    decoder: Decoder,
}

/// The consumer thread: polls batches, decodes them and hands them over until the receiver goes
/// away. Each partition has a queue of its own, and a batch takes their messages oldest first
/// ([`PartitionFeeds`]).
fn consume(
    consumer: rdkafka::consumer::BaseConsumer<WatermarkContext>,
    feed: Feed,
    mut next_offsets: HashMap<i32, i64>,
    batch: usize,
    tx: std::sync::mpsc::SyncSender<anyhow::Result<Vec<Message>>>,
    lag: std::sync::Arc<std::sync::Mutex<Option<f64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use rdkafka::consumer::Consumer;
    let mut feeds = PartitionFeeds::split(consumer, feed, &next_offsets);
    // Per partition, the broker timestamp (ms) of the newest message consumed.
    let mut newest_ms: HashMap<i32, i64> = HashMap::new();
    let mut lag_checked = Instant::now();
    // Looks at the queues that found nothing since the last message.
    let mut quiet_looks = 0u32;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut out = Vec::new();
        let started = Instant::now();
        let mut last_arrival = started;
        loop {
            let arrived = feeds.fill();
            if arrived {
                last_arrival = Instant::now();
                quiet_looks = 0;
            }
            while out.len() < batch {
                let Some((partition, m)) = feeds.next() else {
                    break;
                };
                next_offsets.insert(partition, m.message.offset + 1);
                if let Some(ms) = m.timestamp_ms {
                    let newest = newest_ms.entry(partition).or_insert(ms);
                    *newest = (*newest).max(ms);
                }
                out.push(m.message);
            }
            // A batch ends when full, after 100 ms, or when 50 ms passed without a message.
            if out.len() >= batch
                || started.elapsed() >= Duration::from_millis(100)
                || (!out.is_empty() && last_arrival.elapsed() >= Duration::from_millis(50))
                || stop.load(std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
            if !arrived {
                // Short while a batch is being gathered, longer while the topic is quiet.
                let pause = match out.is_empty() {
                    true => idle_pause(quiet_looks),
                    false => idle_pause(0),
                };
                quiet_looks = quiet_looks.saturating_add(1);
                std::thread::sleep(pause);
            }
        }
        if lag_checked.elapsed() >= Duration::from_millis(LAG_CHECK_MS) {
            lag_checked = Instant::now();
            let seconds = lag_seconds(
                &next_offsets,
                &feeds.consumer.context().watermarks(),
                &newest_ms,
                Utc::now().timestamp_millis(),
            );
            if let Ok(mut l) = lag.lock() {
                *l = seconds;
            }
        }
        if !out.is_empty() && tx.send(Ok(out)).is_err() {
            return;
        }
    }
}

type PartitionQueue = rdkafka::consumer::base_consumer::PartitionQueue<WatermarkContext>;

/// The topic's partitions, each through a queue of its own, merged oldest first.
struct PartitionFeeds {
    consumer: std::sync::Arc<rdkafka::consumer::BaseConsumer<WatermarkContext>>,
    topic: String,
    topic_c: std::ffi::CString,
    decoder: Decoder,
    /// Per partition, its `source_offsets` key, shared by its messages.
    keys: HashMap<i32, Arc<str>>,
    queues: Vec<(i32, PartitionQueue)>,
    merge: TimeMerge<Merged>,
    /// Per partition, the offset after the newest message taken from its queue.
    fetched_to: HashMap<i32, i64>,
}

impl PartitionFeeds {
    /// Splits every partition off into its own queue (before the first poll, so every message
    /// comes through one); `next_offsets` where they resume.
    fn split(
        consumer: rdkafka::consumer::BaseConsumer<WatermarkContext>,
        feed: Feed,
        next_offsets: &HashMap<i32, i64>,
    ) -> PartitionFeeds {
        let consumer = std::sync::Arc::new(consumer);
        let topic = feed.topic;
        let queues = feed
            .partitions
            .iter()
            .filter_map(|&p| consumer.split_partition_queue(&topic, p).map(|q| (p, q)))
            .collect();
        let keys = feed
            .partitions
            .iter()
            .map(|&p| (p, Arc::from(kafka_key(&topic, p).as_str())))
            .collect();
        PartitionFeeds {
            consumer,
            topic_c: std::ffi::CString::new(topic.as_str()).unwrap_or_default(),
            topic,
            decoder: feed.decoder,
            keys,
            queues,
            merge: TimeMerge::new(MERGE_WAIT),
            fetched_to: next_offsets.clone(),
        }
    }

    /// Serves the main queue and takes what every partition's queue has ready; true when any
    /// message arrived.
    fn fill(&mut self) -> bool {
        // The main queue serves librdkafka's callbacks (statistics) and its errors; a message
        // there is one fetched before its partition was split off.
        let mut arrived = false;
        while let Some(polled) = self.consumer.poll(Duration::ZERO) {
            match polled {
                Ok(m) => {
                    let (partition, timestamp, message) = self.decoded(&m);
                    self.fetched_to
                        .insert(partition, message.message.offset + 1);
                    self.merge.push(partition, timestamp, message);
                    arrived = true;
                }
                // The broker away, a partition error: librdkafka reconnects by itself; the
                // stream goes on when it is back.
                Err(e) => tracing::warn!("kafka: {e}"),
            }
        }
        for i in 0..self.queues.len() {
            arrived |= self.refill(i);
        }
        arrived
    }

    /// The oldest message waiting, unless the merge waits for a partition that is behind.
    fn next(&mut self) -> Option<(i32, Merged)> {
        let (partition, m) = self.merge.pop(Instant::now())?;
        if self.merge.buffered(partition) == 0 {
            if let Some(i) = self.queues.iter().position(|(p, _)| *p == partition) {
                self.refill(i);
            }
        }
        Some((partition, m))
    }

    /// Takes what the `i`th queue has ready into the merge, up to [`MERGE_AHEAD`] waiting;
    /// true when it took any. When the queue is empty and its partition is behind (the broker
    /// has more), the merge waits a little for it.
    fn refill(&mut self, i: usize) -> bool {
        let partition = self.queues[i].0;
        let mut took = false;
        while self.merge.buffered(partition) < MERGE_AHEAD {
            match self.queues[i].1.poll(Duration::ZERO) {
                Some(Ok(m)) => {
                    let (p, timestamp, message) = self.decoded(&m);
                    self.fetched_to.insert(p, message.message.offset + 1);
                    self.merge.push(p, timestamp, message);
                    took = true;
                }
                Some(Err(e)) => {
                    tracing::warn!("kafka: {e}");
                    break;
                }
                None => {
                    if self.behind(partition) {
                        self.merge.ran_dry(partition, Instant::now());
                    }
                    break;
                }
            }
        }
        took
    }

    /// True when the broker holds messages of `partition` beyond what its queue gave so far,
    /// going by the high watermark librdkafka took from its last fetch response (a local read,
    /// no request). Unknown counts as not behind: the merge never waits on a guess.
    fn behind(&self, partition: i32) -> bool {
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer lives as long as `self.consumer`, `topic_c` is
        // NUL-terminated, and `low`/`high` are valid for writes; librdkafka reads its own
        // cached offsets.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                rdkafka::consumer::Consumer::client(&*self.consumer).native_ptr(),
                self.topic_c.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
            return false;
        }
        let next = self
            .fetched_to
            .get(&partition)
            .copied()
            .unwrap_or(low.max(0));
        next < high
    }

    /// A Kafka message as the stream's own, decoded from librdkafka's buffer: its partition,
    /// timestamp and [`Merged`] message.
    fn decoded(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> (i32, Option<i64>, Merged) {
        use rdkafka::Message as _;
        let timestamp = m.timestamp().to_millis();
        let partition = m.partition();
        let key = match self.keys.get(&partition) {
            Some(key) => key.clone(),
            None => Arc::from(kafka_key(&self.topic, partition).as_str()),
        };
        let message = Message {
            key,
            offset: m.offset(),
            position: SourcePosition::Kafka {
                topic: self.topic.clone(),
                partition,
                offset: m.offset(),
            },
            content: self.decoder.decode(m.payload().unwrap_or_default()),
        };
        (
            partition,
            timestamp,
            Merged {
                timestamp_ms: timestamp,
                message,
            },
        )
    }
}

/// A message on its way through the merge, with its Kafka timestamp (ms).
struct Merged {
    timestamp_ms: Option<i64>,
    message: Message,
}

/// The consumer's lag: 0 when every partition is consumed up to its high watermark, else the
/// largest age, among the partitions behind, of the newest message consumed from each
/// (`now_ms - newest_ms`), so one stuck partition shows however busy the others are; a
/// partition behind that gave nothing yet counts the newest message of any. Unknown until
/// librdkafka has reported watermarks. A partition never consumed from counts from its low
/// watermark.
fn lag_seconds(
    next_offsets: &HashMap<i32, i64>,
    watermarks: &HashMap<i32, (i64, i64)>,
    newest_ms: &HashMap<i32, i64>,
    now_ms: i64,
) -> Option<f64> {
    if watermarks.is_empty() {
        return None;
    }
    let newest_of_any = newest_ms.values().max().copied();
    // A position below the low watermark (the service was away longer than the topic's
    // retention) starts at the low watermark.
    let behind_since = watermarks
        .iter()
        .filter(|(p, &(low, high))| next_offsets.get(p).map_or(low, |&n| n.max(low)) < high)
        // Behind before any message arrived: how old is unknown, counted as 0.
        .filter_map(|(p, _)| newest_ms.get(p).copied().or(newest_of_any))
        .min();
    Some(behind_since.map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0))
}

impl Source for KafkaSource {
    fn poll(&mut self, max: usize, wait: Duration) -> anyhow::Result<Poll> {
        use std::sync::mpsc::RecvTimeoutError;
        let mut messages = match self.held.take() {
            Some(held) => held,
            None => match self.batches.recv_timeout(wait) {
                Ok(batch) => batch?,
                Err(RecvTimeoutError::Timeout) => return Ok(Poll::Idle),
                Err(RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the Kafka consumer thread stopped")
                }
            },
        };
        // Batches that queued up while the last step ran join this one, up to `max`: a bigger
        // step rewrites a growing battle less often, and while the fetches ramp up (at the
        // start, after a pause) the consumer hands over small batches.
        while messages.len() < max {
            let Ok(next) = self.batches.try_recv() else {
                break;
            };
            let next = next?;
            if messages.len() + next.len() > max {
                self.held = Some(next);
                break;
            }
            messages.extend(next);
        }
        Ok(Poll::Messages(messages))
    }

    fn lag_seconds(&self) -> Option<f64> {
        self.lag.lock().ok().and_then(|l| *l)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(max_record_bytes: usize) -> Decoder {
        Decoder {
            ingest: IngestContext::default(),
            max_record_bytes,
        }
    }

    /// A generated killmail as the enriched JSON a producer would send.
    fn enriched_record() -> (Killmail, Vec<u8>) {
        let generated = crate::generate::generate_all(crate::generate::GeneratorConfig {
            days: 1,
            ..crate::generate::GeneratorConfig::default()
        });
        let k = generated.killmails.into_iter().next().expect("a killmail");
        let json = serde_json::to_vec(&k).unwrap();
        (k, json)
    }

    #[test]
    fn a_valid_record_decodes_to_its_killmail() {
        let (k, json) = enriched_record();
        match decoder(json.len()).decode(&json) {
            Content::Killmail(decoded) => assert_eq!(decoded.killmail_id, k.killmail_id),
            Content::Rejected { reason, .. } => panic!("rejected: {reason}"),
        }
    }

    #[test]
    fn a_record_over_the_limit_is_rejected_with_its_first_bytes_kept() {
        let (_, json) = enriched_record();
        let limit = json.len() - 1;
        match decoder(limit).decode(&json) {
            Content::Rejected { reason, payload } => {
                assert_eq!(reason, RejectReason::TooLarge { max_bytes: limit });
                assert_eq!(payload.as_bytes(), &json[..limit]);
            }
            Content::Killmail(_) => panic!("a record over the limit was accepted"),
        }
    }

    #[test]
    fn an_undecodable_record_is_rejected_with_its_bytes_made_text() {
        let bytes = b"{\"killmail_id\": 5, \xff";
        match decoder(1024).decode(bytes) {
            Content::Rejected { payload, .. } => {
                assert_eq!(payload, String::from_utf8_lossy(bytes));
                assert!(payload.contains('\u{fffd}'));
            }
            Content::Killmail(_) => panic!("an undecodable record was accepted"),
        }
    }

    #[test]
    fn a_replayed_record_over_the_limit_is_rejected_as_too_large() {
        let (k, json) = enriched_record();
        let limit = json.len() + 10;
        let long = format!("{{\"killmail_id\": 1, \"pad\": \"{}\"}}", "x".repeat(limit));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("killmails.jsonl");
        let mut text = String::from_utf8(json).unwrap();
        text.push('\n');
        text.push_str(&long);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        let mut replay =
            ReplaySource::open(&[path], 1e12, &decoder(limit), &HashMap::new()).unwrap();
        let Poll::Messages(messages) = replay.poll(10, Duration::from_secs(1)).unwrap() else {
            panic!("the replay gave no messages");
        };
        let contents: Vec<_> = messages.into_iter().map(|m| m.content).collect();
        assert!(matches!(
            &contents[..],
            [
                Content::Rejected { reason: RejectReason::TooLarge { max_bytes }, .. },
                Content::Killmail(decoded),
            ] if *max_bytes == limit && decoded.killmail_id == k.killmail_id
        ));
        assert!(matches!(
            replay.poll(10, Duration::ZERO).unwrap(),
            Poll::End
        ));
    }

    #[test]
    fn the_idle_pause_grows_from_2_ms_to_its_cap() {
        let pauses: Vec<u64> = (0..8).map(|n| idle_pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [2, 4, 8, 16, 25, 25, 25, 25]);
        assert_eq!(idle_pause(u32::MAX), IDLE_PAUSE_MAX);
    }

    #[test]
    fn lag_is_zero_when_every_partition_is_at_its_high_watermark() {
        let next = HashMap::from([(0, 10), (1, 7)]);
        let marks = HashMap::from([(0, (0, 10)), (1, (3, 7))]);
        assert_eq!(
            lag_seconds(
                &next,
                &marks,
                &HashMap::from([(0, 1_000), (1, 1_000)]),
                61_000
            ),
            Some(0.0)
        );
    }

    #[test]
    fn lag_is_the_age_of_the_newest_message_when_a_partition_is_behind() {
        let next = HashMap::from([(0, 10), (1, 5)]);
        let marks = HashMap::from([(0, (0, 10)), (1, (0, 7))]);
        assert_eq!(
            lag_seconds(
                &next,
                &marks,
                &HashMap::from([(0, 1_000), (1, 1_000)]),
                61_000
            ),
            Some(60.0)
        );
    }

    #[test]
    fn an_unconsumed_partition_counts_from_its_low_watermark() {
        // Partition 1 was never read: empty (low == high) is caught up, holding messages is not.
        let next = HashMap::from([(0, 10)]);
        let empty = HashMap::from([(0, (0, 10)), (1, (4, 4))]);
        assert_eq!(
            lag_seconds(&next, &empty, &HashMap::from([(0, 0)]), 5_000),
            Some(0.0)
        );
        let holding = HashMap::from([(0, (0, 10)), (1, (4, 6))]);
        assert_eq!(
            lag_seconds(&next, &holding, &HashMap::from([(0, 0)]), 5_000),
            Some(5.0)
        );
    }

    #[test]
    fn a_position_the_topic_no_longer_holds_counts_from_the_low_watermark() {
        // Resumed at 3, but the broker deleted everything before 9 and holds nothing newer.
        let next = HashMap::from([(0, 3)]);
        let marks = HashMap::from([(0, (9, 9))]);
        assert_eq!(
            lag_seconds(&next, &marks, &HashMap::new(), 5_000),
            Some(0.0)
        );
    }

    #[test]
    fn a_stuck_partition_shows_however_fresh_the_others_are() {
        // Partition 1 last gave a message at 1 s and is behind; partition 0 is caught up at 60 s.
        let next = HashMap::from([(0, 10), (1, 5)]);
        let marks = HashMap::from([(0, (0, 10)), (1, (0, 7))]);
        let newest = HashMap::from([(0, 60_000), (1, 1_000)]);
        assert_eq!(lag_seconds(&next, &marks, &newest, 61_000), Some(60.0));
    }

    #[test]
    fn lag_is_unknown_before_the_first_statistics() {
        assert_eq!(
            lag_seconds(&HashMap::new(), &HashMap::new(), &HashMap::new(), 0),
            None
        );
    }
}
