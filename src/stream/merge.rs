//! The partitions of a topic merged into one stream in the order their messages were produced.
//!
//! librdkafka hands a consumer each partition's messages in fetched chunks (a producer's whole
//! record batch, up to a megabyte), in whatever order the fetch responses come. On a backlog one
//! partition could then run days ahead of another: each step's killmails spanned the whole
//! backlog, every step touched battles all over it, and none became final until the end. The
//! consumer keeps a few messages of each partition here and takes them oldest first by their
//! Kafka timestamp (the time the producer sent them, close to the order killmails arrived in), so
//! a step's killmails are close in time however many partitions there are. Within a partition
//! the order stays the partition's own (offsets), whatever its timestamps say.
//!
//! A partition whose queue ran dry may only be between two fetches: the merge waits for it a
//! little ([`TimeMerge::new`]'s `wait`, as Kafka Streams' `max.task.idle.ms` does) before it
//! goes on without it, so that a partition fetched late does not fall behind the others.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

/// Per partition, messages taken from its queue and not handed out yet.
#[derive(Debug)]
pub(crate) struct TimeMerge<T> {
    buffers: BTreeMap<i32, VecDeque<(i64, T)>>,
    /// (timestamp, partition) of the first message of every partition holding any, oldest on
    /// top: a pop looks at one entry, not at every partition (a scan of 256 partitions per
    /// message was 1.3% of the stream bench's process).
    fronts: BinaryHeap<Reverse<(i64, i32)>>,
    /// Partitions whose buffer and queue are empty, since when.
    dry_since: BTreeMap<i32, Instant>,
    wait: Duration,
}

impl<T> TimeMerge<T> {
    /// A merge that waits up to `wait` for a partition that ran dry.
    pub fn new(wait: Duration) -> TimeMerge<T> {
        TimeMerge {
            buffers: BTreeMap::new(),
            fronts: BinaryHeap::new(),
            dry_since: BTreeMap::new(),
            wait,
        }
    }

    /// Adds the next message of `partition`, produced at `timestamp` (ms; messages without one
    /// go first).
    pub fn push(&mut self, partition: i32, timestamp: Option<i64>, item: T) {
        self.dry_since.remove(&partition);
        let timestamp = timestamp.unwrap_or(i64::MIN);
        let buffer = self.buffers.entry(partition).or_default();
        if buffer.is_empty() {
            self.fronts.push(Reverse((timestamp, partition)));
        }
        buffer.push_back((timestamp, item));
    }

    /// Records that `partition` had nothing more at `now` (its buffer is empty and so was its
    /// queue): the merge waits for it until `wait` has passed.
    pub fn ran_dry(&mut self, partition: i32, now: Instant) {
        if self.buffered(partition) == 0 {
            self.dry_since.entry(partition).or_insert(now);
        }
    }

    /// True while a partition that ran dry less than `wait` before `now` holds the merge.
    pub fn waiting(&self, now: Instant) -> bool {
        self.dry_since
            .values()
            .any(|since| now.saturating_duration_since(*since) < self.wait)
    }

    /// Messages of `partition` waiting.
    pub fn buffered(&self, partition: i32) -> usize {
        self.buffers.get(&partition).map_or(0, VecDeque::len)
    }

    /// The oldest first message among the partitions holding any (ties: the lowest
    /// partition), with its partition; none while [`TimeMerge::waiting`] at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<(i32, T)> {
        if self.waiting(now) {
            return None;
        }
        let Reverse((_, partition)) = self.fronts.pop()?;
        let buffer = self.buffers.get_mut(&partition)?;
        let (_, item) = buffer.pop_front()?;
        if let Some((next, _)) = buffer.front() {
            self.fronts.push(Reverse((*next, partition)));
        }
        Some((partition, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(merge: &mut TimeMerge<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| merge.pop(Instant::now()).map(|(_, m)| m)).collect()
    }

    fn merge() -> TimeMerge<&'static str> {
        TimeMerge::new(Duration::from_millis(50))
    }

    #[test]
    fn partitions_come_out_oldest_first_and_each_in_its_own_order() {
        let mut merge = merge();
        merge.push(0, Some(10), "p0 a");
        merge.push(0, Some(40), "p0 b");
        merge.push(1, Some(20), "p1 a");
        merge.push(1, Some(30), "p1 b");
        merge.push(2, Some(5), "p2 a");
        assert_eq!(merge.buffered(1), 2);
        assert_eq!(drain(&mut merge), ["p2 a", "p0 a", "p1 a", "p1 b", "p0 b"]);
        assert_eq!(merge.buffered(1), 0);
    }

    /// Many partitions, pushes and pops interleaved: every pop is the oldest first message
    /// among the partitions (ties: the lowest partition), found here by looking at them all.
    #[test]
    fn interleaved_pushes_and_pops_take_the_oldest_front_of_all_partitions() {
        /// A message: its partition and its place in the pushes.
        type Sent = (i32, u32);
        let mut merge: TimeMerge<Sent> = TimeMerge::new(Duration::ZERO);
        let mut reference: BTreeMap<i32, VecDeque<(i64, Sent)>> = BTreeMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for i in 0..20_000u32 {
            if next(3) > 0 {
                let partition = next(64) as i32;
                let timestamp = (next(50) > 0).then(|| next(1_000) as i64);
                merge.push(partition, timestamp, (partition, i));
                reference
                    .entry(partition)
                    .or_default()
                    .push_back((timestamp.unwrap_or(i64::MIN), (partition, i)));
            } else {
                let expected = reference
                    .iter()
                    .filter_map(|(p, b)| b.front().map(|(t, _)| (*t, *p)))
                    .min()
                    .map(|(_, p)| reference.get_mut(&p).unwrap().pop_front().unwrap().1);
                let got = merge.pop(Instant::now()).map(|(_, m)| m);
                assert_eq!(got, expected, "pop {i}");
            }
        }
    }

    #[test]
    fn a_partition_keeps_its_offsets_order_when_its_timestamps_go_back() {
        let mut merge = merge();
        merge.push(0, Some(50), "p0 first");
        merge.push(0, Some(1), "p0 second");
        merge.push(1, Some(20), "p1");
        merge.push(1, None, "p1 untimed");
        assert_eq!(
            drain(&mut merge),
            ["p1", "p1 untimed", "p0 first", "p0 second"]
        );
    }

    #[test]
    fn ties_go_to_the_lowest_partition() {
        let mut merge = merge();
        merge.push(3, Some(7), "p3");
        merge.push(1, Some(7), "p1");
        let now = Instant::now();
        assert_eq!(merge.pop(now), Some((1, "p1")));
        assert_eq!(merge.pop(now), Some((3, "p3")));
        assert_eq!(merge.pop(now), None);
    }

    #[test]
    fn a_partition_that_ran_dry_holds_the_merge_until_it_has_more_or_the_wait_is_over() {
        let mut merge = merge();
        let start = Instant::now();
        merge.push(0, Some(10), "p0 a");
        merge.push(0, Some(30), "p0 b");
        merge.ran_dry(1, start);
        // Partition 1 may be between fetches: nothing goes past it yet.
        assert!(merge.waiting(start + Duration::from_millis(49)));
        assert_eq!(merge.pop(start + Duration::from_millis(49)), None);
        // Its message arrives, older than partition 0's second one.
        merge.push(1, Some(20), "p1 a");
        assert!(!merge.waiting(start + Duration::from_millis(49)));
        let later = start + Duration::from_millis(49);
        assert_eq!(merge.pop(later), Some((0, "p0 a")));
        assert_eq!(merge.pop(later), Some((1, "p1 a")));
        // Dry again; after the wait the merge goes on without it.
        merge.ran_dry(1, later);
        assert_eq!(merge.pop(later + Duration::from_millis(10)), None);
        assert_eq!(
            merge.pop(later + Duration::from_millis(50)),
            Some((0, "p0 b"))
        );
        // A partition with messages waiting never counts as dry.
        merge.push(2, Some(1), "p2 a");
        merge.ran_dry(2, later + Duration::from_millis(60));
        assert!(!merge.waiting(later + Duration::from_millis(61)));
    }
}
