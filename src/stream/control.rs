//! The service's control topics: `battle.recluster` (a date range to re-cluster) and
//! `data.retention` (`data.retention_cleanup`: a cutoff date) become `clustering_jobs` rows
//! that the job runner takes up between stream steps.
//!
//! A consumer thread of its own assigns every partition of both topics at the position stored
//! in PostgreSQL (`source_offsets`, `kafka:<topic>:<partition>`), and each message's job is
//! queued in one transaction with the next position: a restart neither loses nor repeats a
//! request. A message that is not a valid request is logged and counted
//! (`battle_control_messages_rejected_total`) and skipped; the others flow. A topic that does
//! not exist yet, or a partition added, is picked up within 30 s.
//!
//! Accepted shapes (the spec names the events without fixing their fields), bare or inside the
//! event envelope's `data`:
//! - `battle.recluster`: `{"startDate": "2025-11-24", "endDate": "2025-11-24", "priority": "high"}`
//!   (priority optional, `normal` by default; dates may also be RFC 3339 times);
//! - `data.retention`: `{"cutoffDate": "2021-01-01"}` (or `cutoff`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use battles_sink::{JobKind, Priority, Sink};
use chrono::NaiveDate;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use super::source::kafka_key;

/// The two control topics.
#[derive(Clone, Debug)]
pub struct ControlTopics {
    pub brokers: String,
    pub group_id: String,
    pub recluster: String,
    pub retention: String,
}

/// A job request read from a control topic.
pub type Request = (JobKind, NaiveDate, NaiveDate, Priority);

/// How often missing topics are looked for again.
const RESCAN: Duration = Duration::from_secs(30);

/// Starts the control consumer thread; it stops when `stop` is set.
pub fn spawn(
    topics: ControlTopics,
    sink: Arc<Sink>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &topics.brokers)
        .set("group.id", format!("{}-control", topics.group_id))
        // Positions live in PostgreSQL with the jobs they queued.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating the control topics' consumer")?;
    Ok(std::thread::Builder::new()
        .name("kafka-control".into())
        .spawn(move || consume(consumer, topics, sink, runtime, stop))?)
}

fn consume(
    consumer: BaseConsumer,
    topics: ControlTopics,
    sink: Arc<Sink>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    let names = [topics.recluster.clone(), topics.retention.clone()];
    let mut assigned: Vec<(String, i32)> = Vec::new();
    let mut last_scan: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        if last_scan.is_none_or(|t| t.elapsed() >= RESCAN) {
            last_scan = Some(Instant::now());
            match partitions(&consumer, &names) {
                // Topics or partitions appeared (or a failure asked for a fresh start): assign
                // them all at their stored positions.
                Ok(now) if now != assigned => match assign(&consumer, &now, &sink, &runtime) {
                    Ok(()) => {
                        tracing::info!(partitions = ?now, "consuming control topics");
                        assigned = now;
                    }
                    Err(e) => tracing::warn!("control topics: {e:#}; trying again in 30 s"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!("control topics: {e:#}; trying again in 30 s"),
            }
        }
        if assigned.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match result {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("control topics: {e}");
                continue;
            }
        };
        let topic = message.topic().to_owned();
        let key = kafka_key(&topic, message.partition());
        let at = format!("{key}:{}", message.offset());
        let kind = match topic == topics.recluster {
            true => JobKind::Recluster,
            false => JobKind::Retention,
        };
        let request = parse_request(kind, message.payload().unwrap_or_default());
        if let Err(reason) = &request {
            metrics::counter!("battle_control_messages_rejected_total").increment(1);
            tracing::warn!(message = at, "control message refused: {reason}");
        }
        let recorded =
            runtime.block_on(sink.record_control_message(request.ok(), &key, message.offset() + 1));
        match recorded {
            Ok(Some(job)) => tracing::info!(message = at, %job, "job queued from {topic}"),
            Ok(None) => {}
            Err(e) => {
                // Not recorded: read it again from the stored position once PostgreSQL is back.
                tracing::error!(message = at, "could not queue the job: {e}");
                std::thread::sleep(Duration::from_secs(1));
                assigned.clear();
                last_scan = None;
            }
        }
    }
}

/// The partitions of the topics that exist, sorted.
fn partitions(consumer: &BaseConsumer, names: &[String]) -> anyhow::Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    for name in names {
        let metadata = consumer
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .with_context(|| format!("reading the metadata of {name}"))?;
        for t in metadata.topics() {
            if t.name() == name && t.error().is_none() {
                out.extend(t.partitions().iter().map(|p| (name.clone(), p.id())));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Assigns `partitions` at their stored positions (the beginning when none is stored).
fn assign(
    consumer: &BaseConsumer,
    partitions: &[(String, i32)],
    sink: &Sink,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let stored: HashMap<String, i64> = runtime
        .block_on(sink.load_offsets())
        .context("reading the control topics' positions")?
        .into_iter()
        .collect();
    let mut list = TopicPartitionList::new();
    for (name, p) in partitions {
        let offset = match stored.get(&kafka_key(name, *p)) {
            Some(&next) => Offset::Offset(next),
            None => Offset::Beginning,
        };
        list.add_partition_offset(name, *p, offset)?;
    }
    consumer
        .assign(&list)
        .context("assigning control partitions")?;
    Ok(())
}

/// The job a control message asks for, or why it is refused.
pub fn parse_request(kind: JobKind, payload: &[u8]) -> Result<Request, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let body = match value.get("data") {
        Some(data @ Value::Object(_)) => data,
        _ => &value,
    };
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    match kind {
        JobKind::Recluster => {
            let start = date(body, &["startDate", "start_date"])?;
            let end = date(body, &["endDate", "end_date"])?;
            if end < start {
                return Err(format!("endDate {end} is before startDate {start}"));
            }
            let priority = match body.get("priority") {
                None | Some(Value::Null) => Priority::Normal,
                Some(Value::String(p)) => Priority::parse(p)
                    .ok_or_else(|| format!("priority {p:?} is not one of low, normal, high"))?,
                Some(other) => return Err(format!("priority {other} is not a string")),
            };
            Ok((kind, start, end, priority))
        }
        JobKind::Retention => {
            let cutoff = date(body, &["cutoffDate", "cutoff_date", "cutoff"])?;
            Ok((kind, cutoff, cutoff, Priority::Normal))
        }
    }
}

/// A date field (a day, or the day of an RFC 3339 time) under any of `names`.
fn date(body: &Value, names: &[&str]) -> Result<NaiveDate, String> {
    let (name, value) = names
        .iter()
        .find_map(|n| body.get(*n).map(|v| (*n, v)))
        .ok_or_else(|| format!("{} is missing", names[0]))?;
    let text = value
        .as_str()
        .ok_or_else(|| format!("{name} is not a string"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text).map(|t| t.naive_utc().date()))
        .map_err(|_| format!("{name} {text:?} is not a date (YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn recluster_requests_bare_or_in_the_envelope() {
        let bare = br#"{"startDate":"2025-11-24","endDate":"2025-11-25","priority":"high"}"#;
        assert_eq!(
            parse_request(JobKind::Recluster, bare),
            Ok((
                JobKind::Recluster,
                day("2025-11-24"),
                day("2025-11-25"),
                Priority::High
            ))
        );
        let wrapped = br#"{"eventType":"battle.recluster","data":{"startDate":"2025-11-24T00:00:00Z","endDate":"2025-11-24"}}"#;
        assert_eq!(
            parse_request(JobKind::Recluster, wrapped),
            Ok((
                JobKind::Recluster,
                day("2025-11-24"),
                day("2025-11-24"),
                Priority::Normal
            ))
        );
    }

    #[test]
    fn bad_requests_say_why() {
        let cases: [(&[u8], &str); 5] = [
            (b"nope", "not JSON"),
            (br#"{"endDate":"2025-11-24"}"#, "startDate is missing"),
            (
                br#"{"startDate":"2025-11-25","endDate":"2025-11-24"}"#,
                "before",
            ),
            (
                br#"{"startDate":"2025-13-01","endDate":"2025-11-24"}"#,
                "not a date",
            ),
            (
                br#"{"startDate":"2025-11-24","endDate":"2025-11-24","priority":"urgent"}"#,
                "urgent",
            ),
        ];
        for (payload, reason) in cases {
            let err = parse_request(JobKind::Recluster, payload).unwrap_err();
            assert!(err.contains(reason), "{err} should contain {reason}");
        }
        assert!(parse_request(JobKind::Retention, br#"{"data":{}}"#)
            .unwrap_err()
            .contains("cutoffDate is missing"));
    }

    #[test]
    fn retention_requests_carry_the_cutoff() {
        let r = parse_request(
            JobKind::Retention,
            br#"{"eventType":"data.retention_cleanup","data":{"cutoffDate":"2021-01-01"}}"#,
        );
        assert_eq!(
            r,
            Ok((
                JobKind::Retention,
                day("2021-01-01"),
                day("2021-01-01"),
                Priority::Normal
            ))
        );
    }
}
