//! The event relay: publishes the outbox to the `battle.events` topic after the transactions
//! that wrote it committed. One relay per database (it runs in the process holding the writer
//! lock), oldest events first, keyed by battle id so one battle's events stay in order on one
//! partition; a row is marked published only after the broker acknowledged it (at-least-once;
//! consumers deduplicate by `eventId`). Updates pending for one battle are coalesced to the
//! newest.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use battles_sink::Sink;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Events read from the outbox per round.
const BATCH: i64 = 1_000;

/// How long the relay waits when the outbox is empty or the broker failed.
const IDLE: Duration = Duration::from_millis(200);

/// A producer for `brokers`: idempotent, acknowledged by all in-sync replicas.
pub fn producer(brokers: &str) -> anyhow::Result<FutureProducer> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the Kafka producer")
}

/// Publishes the outbox until `stop` resolves, then publishes what is left once more.
pub async fn run(
    sink: Arc<Sink>,
    producer: FutureProducer,
    topic: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let published = publish_round(&sink, &producer, &topic).await;
        let stopping = *stop.borrow();
        match published {
            Ok(0) if stopping => return,
            Ok(n) => {
                metrics::counter!("battle_events_published_total").increment(n);
                if n > 0 {
                    continue;
                }
            }
            Err(e) => tracing::warn!("event relay: {e:#}; retrying"),
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One round: reads, sends and marks a batch. Returns the outbox rows published.
pub async fn publish_round(
    sink: &Sink,
    producer: &FutureProducer,
    topic: &str,
) -> anyhow::Result<u64> {
    let pending = sink.pending_events(BATCH).await?;
    if pending.row_ids.len() < BATCH as usize {
        metrics::gauge!("battle_outbox_backlog").set(pending.row_ids.len() as f64);
    } else if let Ok(backlog) = sink.outbox_backlog().await {
        metrics::gauge!("battle_outbox_backlog").set(backlog as f64);
    }
    if pending.row_ids.is_empty() {
        return Ok(0);
    }
    let payloads: Vec<(String, String)> = pending
        .events
        .iter()
        .map(|e| (e.battle_id.to_string(), e.payload.to_string()))
        .collect();
    let sends = payloads.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
    });
    for result in futures_util::future::join_all(sends).await {
        if let Err((e, _)) = result {
            // Nothing of this round is marked: the whole round is sent again.
            anyhow::bail!("publishing to {topic}: {e}");
        }
    }
    sink.mark_published(&pending.row_ids).await?;
    Ok(pending.row_ids.len() as u64)
}
