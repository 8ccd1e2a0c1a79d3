//! Releases the messages of several Kafka partitions in killmail-time order.
//!
//! librdkafka hands out a partition's messages a fetch (up to a megabyte) at a time, one
//! partition after another. When the topic holds a backlog, one partition's fetch can span days
//! of killmail time, and the next partition's starts again at the beginning: batches taken in
//! arrival order jump back in time at every partition, so most steps reach back into battles
//! that were already evicted and must wait for the writer and read them back from the store.
//!
//! [`TimeOrder`] buffers each partition's messages and releases them merged by killmail time, up
//! to a *horizon*: the oldest of the newest killmail times of the partitions still delivering.
//! A partition that delivered nothing for a while (caught up, or empty) holds nothing back, and
//! past `capacity` buffered messages the oldest go out whatever the horizon (until half of it
//! waits), so memory stays bounded. Each partition's messages leave in their own order, so the positions committed per
//! partition stay a prefix of what was read. The time is peeked from the payload
//! ([`peek_killmail_time`]); a message without one goes out at once (the step loop rejects it
//! with its reason).

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::source::Message;

/// One partition's buffered messages.
#[derive(Debug)]
struct Partition {
    /// (killmail time, message), in arrival order.
    queue: VecDeque<(i64, Message)>,
    /// The newest killmail time it delivered.
    newest: i64,
    /// When it last delivered.
    last_seen: Instant,
}

/// Buffers messages per partition and releases them in killmail-time order.
#[derive(Debug)]
pub struct TimeOrder {
    partitions: HashMap<i32, Partition>,
    buffered: usize,
    capacity: usize,
    idle_after: Duration,
}

impl TimeOrder {
    /// At most `capacity` messages wait; a partition silent for `idle_after` holds nothing back.
    pub fn new(capacity: usize, idle_after: Duration) -> TimeOrder {
        TimeOrder {
            partitions: HashMap::new(),
            buffered: 0,
            capacity: capacity.max(1),
            idle_after,
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    /// Buffers `message` of `partition`, received at `now`.
    pub fn push(&mut self, partition: i32, message: Message, now: Instant) {
        let time = peek_killmail_time(&message.payload).unwrap_or(i64::MIN);
        let entry = self.partitions.entry(partition).or_insert(Partition {
            queue: VecDeque::new(),
            newest: i64::MIN,
            last_seen: now,
        });
        entry.newest = entry.newest.max(time);
        entry.last_seen = now;
        entry.queue.push_back((time, message));
        self.buffered += 1;
    }

    /// Up to `max` messages that can go out at `now`, in killmail-time order.
    pub fn release(&mut self, now: Instant, max: usize) -> Vec<Message> {
        let horizon = self.horizon(now);
        let mut heads: BinaryHeap<std::cmp::Reverse<(i64, i32)>> = self
            .partitions
            .iter()
            .filter_map(|(&p, part)| part.queue.front().map(|(t, _)| std::cmp::Reverse((*t, p))))
            .collect();
        // Over capacity, the oldest go out whatever the horizon until half of it waits (a
        // whole batch at a time, not one message per poll).
        let mut over_capacity = self.buffered > self.capacity;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(std::cmp::Reverse((time, p))) = heads.pop() else {
                break;
            };
            over_capacity &= self.buffered > self.capacity / 2;
            if time > horizon && !over_capacity {
                break;
            }
            let part = self.partitions.get_mut(&p).expect("a head's partition");
            let (_, message) = part.queue.pop_front().expect("a head");
            self.buffered -= 1;
            out.push(message);
            if let Some((next, _)) = part.queue.front() {
                heads.push(std::cmp::Reverse((*next, p)));
            }
        }
        out
    }

    /// The killmail time up to which every partition still delivering has delivered.
    fn horizon(&self, now: Instant) -> i64 {
        self.partitions
            .values()
            .filter(|p| now.duration_since(p.last_seen) < self.idle_after)
            .map(|p| p.newest)
            .min()
            .unwrap_or(i64::MAX)
    }
}

/// The killmail time (Unix seconds) of a record in either input shape, found without parsing
/// the record: the first `"killmailTime"` or `"killmail_time"` key's string value.
pub fn peek_killmail_time(payload: &[u8]) -> Option<i64> {
    ["\"killmailTime\"", "\"killmail_time\""]
        .iter()
        .filter_map(|key| {
            let at = find(payload, key.as_bytes())? + key.len();
            let rest = skip_space(&payload[at..]);
            let rest = skip_space(rest.strip_prefix(b":")?);
            let rest = rest.strip_prefix(b"\"")?;
            let end = rest.iter().position(|&b| b == b'"')?;
            let text = std::str::from_utf8(&rest[..end]).ok()?;
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp())
        })
        .next()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourcePosition;

    fn message(partition: i32, offset: i64, minute: i64) -> Message {
        let time = chrono::DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap();
        Message {
            key: format!("kafka:t:{partition}"),
            offset,
            position: SourcePosition::Kafka {
                topic: "t".into(),
                partition,
                offset,
            },
            payload: format!(
                r#"{{"killmailId": {offset}, "killmailTime" : "{}"}}"#,
                time.to_rfc3339()
            )
            .into_bytes(),
        }
    }

    fn minutes(out: &[Message]) -> Vec<i64> {
        out.iter()
            .map(|m| (peek_killmail_time(&m.payload).unwrap() - 1_700_000_000) / 60)
            .collect()
    }

    #[test]
    fn peeks_both_shapes_and_gives_up_on_anything_else() {
        assert_eq!(
            peek_killmail_time(br#"{"killmail_time":"2021-11-28T17:00:00Z","x":1}"#),
            Some(1_638_118_800)
        );
        assert_eq!(
            peek_killmail_time(br#"{"a":1, "killmailTime" :  "2021-11-28T17:00:00Z"}"#),
            Some(1_638_118_800)
        );
        assert_eq!(peek_killmail_time(br#"{"killmailTime": 5}"#), None);
        assert_eq!(
            peek_killmail_time(br#"{"killmailTime": "yesterday"}"#),
            None
        );
        assert_eq!(peek_killmail_time(b"\xff\xfe"), None);
    }

    #[test]
    fn merges_partitions_by_time_up_to_the_slowest_one() {
        let now = Instant::now();
        let mut order = TimeOrder::new(1_000, Duration::from_secs(60));
        // Partition 0 delivered minutes 0..10, partition 1 only minutes 0..3 so far.
        for m in 0..10 {
            order.push(0, message(0, m, m), now);
        }
        for m in 0..3 {
            order.push(1, message(1, m, m), now);
        }
        let out = order.release(now, 100);
        assert_eq!(minutes(&out), vec![0, 0, 1, 1, 2, 2]);
        // Partition 1 goes quiet: after `idle_after` it holds nothing back.
        let later = now + Duration::from_secs(61);
        let out = order.release(later, 100);
        assert_eq!(minutes(&out), (3..10).collect::<Vec<_>>());
        assert!(order.is_empty());
    }

    #[test]
    fn keeps_each_partitions_order_and_bounds_what_waits() {
        let now = Instant::now();
        let mut order = TimeOrder::new(5, Duration::from_secs(60));
        // Partition 0 is ahead; partition 1 has delivered nothing newer than minute 0.
        for m in 0..8 {
            order.push(0, message(0, m, 10 + m), now);
        }
        order.push(1, message(1, 0, 0), now);
        let out = order.release(now, 100);
        // Over capacity: minute 0, then the oldest of partition 0 until only half of it waits.
        assert_eq!(minutes(&out), vec![0, 10, 11, 12, 13, 14, 15]);
        assert_eq!(order.len(), 2);
        // Within capacity again, the horizon (partition 1's minute 0) holds the rest back.
        assert!(order.release(now, 100).is_empty());
        // A message with no readable time goes out first.
        let mut bad = message(1, 1, 0);
        bad.payload = b"not json".to_vec();
        order.push(1, bad, now);
        let out = order.release(now, 1);
        assert_eq!(out[0].payload, b"not json");
        let offsets: Vec<i64> = order
            .release(now + Duration::from_secs(61), 100)
            .iter()
            .map(|m| m.offset)
            .collect();
        assert_eq!(offsets, vec![6, 7]);
    }
}
