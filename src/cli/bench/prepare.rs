//! Untimed input preparation for `battles bench --peer / --incremental`, with the project's own
//! ingest: the SQL peer reads only the enriched shape, so any input (ESI, RedisQ, gzip, arrays)
//! is converted to one enriched JSONL file of its distinct valid killmails; the incremental run
//! needs the input cut at the middle of its time range (its earliest and latest 0.1% left out),
//! so every record is copied, in its own shape, to a first-half or a second-half file (records
//! that do not parse go to the first half, where the backfill rejects them as it would have).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::ingest::{parse_record, Deduplicator, IngestContext, Seen};
use crate::sources::open_sources;

/// What to prepare.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// Enriched files for the peer.
    pub peer: bool,
    /// First and second halves for the incremental run.
    pub halves: bool,
}

/// The prepared files, in the scratch directory.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Distinct valid killmails of the whole input, enriched (for the peer).
    pub peer_whole: Option<PathBuf>,
    pub halves: Option<Halves>,
}

/// The input cut at `split_at`: killmails before it in `first`, the others in `second`.
#[derive(Debug)]
pub struct Halves {
    pub split_at: DateTime<Utc>,
    pub first: PathBuf,
    pub second: PathBuf,
    pub first_records: u64,
    pub second_records: u64,
    /// Distinct valid killmails of the second half, enriched (for the peer).
    pub peer_second: Option<PathBuf>,
}

/// A JSONL file being written.
struct Lines {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

impl Lines {
    fn create(path: PathBuf) -> anyhow::Result<Lines> {
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Lines {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
        })
    }

    /// Writes one record as one line: a record read from a pretty-printed file spans lines,
    /// and JSON allows no raw line break inside a string, so breaks become spaces.
    fn raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
            let flat: Vec<u8> = bytes
                .iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                .collect();
            self.out.write_all(&flat)?;
        } else {
            self.out.write_all(bytes)?;
        }
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    fn enriched(&mut self, killmail: &battles_dataflow::Killmail) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, killmail)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<(PathBuf, u64)> {
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok((self.path, self.written))
    }
}

/// Reads `inputs` (twice when halves are wanted: once for the time range) and writes what
/// `wanted` asks for into `dir`.
pub fn prepare(
    inputs: &[PathBuf],
    dir: &Path,
    wanted: Wanted,
    ctx: &IngestContext,
    max_record_bytes: usize,
) -> anyhow::Result<Prepared> {
    if !wanted.peer && !wanted.halves {
        return Ok(Prepared::default());
    }
    let split_at = if wanted.halves {
        Some(middle_of_time_range(inputs, ctx, max_record_bytes)?)
    } else {
        None
    };
    let mut peer_whole = wanted
        .peer
        .then(|| Lines::create(dir.join("peer-whole.jsonl")))
        .transpose()?;
    let mut halves = match split_at {
        Some(_) => Some((
            Lines::create(dir.join("first-half.jsonl"))?,
            Lines::create(dir.join("second-half.jsonl"))?,
            wanted
                .peer
                .then(|| Lines::create(dir.join("peer-second-half.jsonl")))
                .transpose()?,
        )),
        None => None,
    };
    let mut seen = Deduplicator::new();
    let mut sources = open_sources(inputs)?.with_max_record_bytes(max_record_bytes);
    while let Some(record) = sources.next_record() {
        let record = record?;
        let parsed = if record.oversized {
            None
        } else {
            parse_record(record.bytes, ctx).ok().map(|p| p.killmail)
        };
        let in_second = match (&parsed, split_at) {
            (Some(km), Some(at)) => km.killmail_time >= at,
            _ => false,
        };
        if let Some((first, second, _)) = halves.as_mut() {
            if in_second { second } else { first }.raw(record.bytes)?;
        }
        let Some(km) = parsed else { continue };
        if seen.observe(&km) != Ok(Seen::New) {
            continue;
        }
        if let Some(whole) = peer_whole.as_mut() {
            whole.enriched(&km)?;
        }
        if let Some((_, _, Some(peer_second))) = halves.as_mut() {
            if in_second {
                peer_second.enriched(&km)?;
            }
        }
    }
    let peer_whole = peer_whole.map(Lines::finish).transpose()?.map(|(p, _)| p);
    let halves = match (halves, split_at) {
        (Some((first, second, peer_second)), Some(split_at)) => {
            let (first, first_records) = first.finish()?;
            let (second, second_records) = second.finish()?;
            Some(Halves {
                split_at,
                first,
                second,
                first_records,
                second_records,
                peer_second: peer_second.map(Lines::finish).transpose()?.map(|(p, _)| p),
            })
        }
        _ => None,
    };
    Ok(Prepared { peer_whole, halves })
}

/// The middle of the time range of the valid killmails of `inputs`, leaving out the earliest
/// and the latest [`TRIMMED_PER_MILLE`] per mille: a stray old or future killmail (a sample file
/// in the directory, a bad clock) would otherwise decide where the cut falls.
fn middle_of_time_range(
    inputs: &[PathBuf],
    ctx: &IngestContext,
    max_record_bytes: usize,
) -> anyhow::Result<DateTime<Utc>> {
    let mut times = Vec::new();
    let mut sources = open_sources(inputs)?.with_max_record_bytes(max_record_bytes);
    while let Some(record) = sources.next_record() {
        let record = record?;
        if record.oversized {
            continue;
        }
        if let Ok(parsed) = parse_record(record.bytes, ctx) {
            times.push(parsed.killmail.killmail_time);
        }
    }
    anyhow::ensure!(
        !times.is_empty(),
        "the input holds no valid killmail to split"
    );
    times.sort_unstable();
    let trimmed = times.len() * TRIMMED_PER_MILLE / 1000;
    Ok(middle(times[trimmed], times[times.len() - 1 - trimmed]))
}

/// Killmails per thousand left out at each end of the time range before taking its middle.
const TRIMMED_PER_MILLE: usize = 1;

/// The instant halfway from `lo` to `hi`, to the second.
fn middle(lo: DateTime<Utc>, hi: DateTime<Utc>) -> DateTime<Utc> {
    lo + chrono::Duration::seconds((hi - lo).num_seconds() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose "now" follows the test killmails.
    fn test_context() -> IngestContext {
        IngestContext {
            fixed_now: Some("2022-01-01T00:00:00Z".parse().unwrap()),
            ..IngestContext::default()
        }
    }

    fn enriched_line(id: i64, time: &str) -> String {
        serde_json::json!({
            "killmailId": id,
            "killmailTime": time,
            "solarSystemId": 30000142,
            "victim": {"characterId": 90000001, "shipTypeId": 587},
            "attackers": [{"characterId": 90000002, "shipTypeId": 587, "finalBlow": true, "damageDone": 100}],
            "iskValue": 1000
        })
        .to_string()
    }

    #[test]
    fn a_stray_killmail_does_not_move_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let mut lines = vec![enriched_line(1, "2015-01-01T00:00:00Z")];
        for i in 0..2000 {
            let day = if i < 1000 { 27 } else { 28 };
            lines.push(enriched_line(10 + i, &format!("2021-11-{day}T12:00:00Z")));
        }
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let ctx = test_context();
        let at = middle_of_time_range(&[input], &ctx, 1 << 20).unwrap();
        assert_eq!(at, "2021-11-28T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn middle_is_halfway() {
        let lo = "2021-11-27T00:00:00Z".parse().unwrap();
        let hi = "2021-11-29T00:00:00Z".parse().unwrap();
        assert_eq!(
            middle(lo, hi),
            "2021-11-28T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn cuts_at_the_middle_and_converts_for_the_peer() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let lines = [
            enriched_line(1, "2021-11-27T00:00:00Z"),
            enriched_line(3, "2021-11-28T12:00:00Z"),
            "{not json".to_owned(),
            enriched_line(2, "2021-11-27T06:00:00Z"),
            enriched_line(1, "2021-11-27T00:00:00Z"),
            enriched_line(4, "2021-11-29T00:00:00Z"),
        ];
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        let ctx = test_context();
        let wanted = Wanted {
            peer: true,
            halves: true,
        };
        let prepared = prepare(&[input], dir.path(), wanted, &ctx, 1 << 20).unwrap();
        let halves = prepared.halves.unwrap();
        assert_eq!(
            halves.split_at,
            "2021-11-28T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // The bad record and the duplicate stay in the first half, as read.
        assert_eq!((halves.first_records, halves.second_records), (4, 2));
        let ids = |path: &Path| -> Vec<i64> {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["killmailId"]
                        .as_i64()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(ids(&prepared.peer_whole.unwrap()), vec![1, 3, 2, 4]);
        assert_eq!(ids(&halves.peer_second.unwrap()), vec![3, 4]);
        assert_eq!(ids(&halves.second), vec![3, 4]);
    }
}
