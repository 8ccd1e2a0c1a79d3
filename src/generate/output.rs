//! Writes a generated run to a directory: `killmails.jsonl` (or `killmails.jsonl.gz`), one
//! enriched killmail a line in arrival order, and `truth.jsonl`, one
//! [`KillmailTruth`](super::truth::KillmailTruth) a line in the same order. Streams: memory
//! does not grow with the size of the run.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::truth::{BattleKind, KillKind};
use super::{generate, GeneratorConfig};

/// File name of the killmails.
pub const KILLMAILS_FILE: &str = "killmails.jsonl";
/// File name of the gzip-compressed killmails.
pub const KILLMAILS_GZ_FILE: &str = "killmails.jsonl.gz";
/// File name of the truth.
pub const TRUTH_FILE: &str = "truth.jsonl";

/// Failure to write a run.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub killmails: u64,
    pub killmails_path: PathBuf,
    pub truth_path: PathBuf,
    /// Killmails by the kind of their true battle (`fight`, `background`, `spam`).
    pub by_battle_kind: BTreeMap<String, u64>,
    /// Killmails by what they are (`ship`, `pod`, `npc`, ...).
    pub by_kill_kind: BTreeMap<String, u64>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The killmails file, plain or gzip-compressed.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// The serde spelling of a unit enum value (`"fight"`, `"pod"`).
fn spelling(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Generates a run into `dir` (created if missing).
pub fn write_to_dir(
    config: GeneratorConfig,
    dir: &Path,
    gzip: bool,
) -> Result<Summary, OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let killmails_path = dir.join(if gzip {
        KILLMAILS_GZ_FILE
    } else {
        KILLMAILS_FILE
    });
    let truth_path = dir.join(TRUTH_FILE);
    let file = BufWriter::with_capacity(
        1 << 20,
        File::create(&killmails_path).map_err(io(&killmails_path))?,
    );
    let mut killmails = if gzip {
        Sink::Gzip(GzEncoder::new(file, Compression::fast()))
    } else {
        Sink::Plain(file)
    };
    let mut truth =
        BufWriter::with_capacity(1 << 20, File::create(&truth_path).map_err(io(&truth_path))?);

    let mut summary = Summary {
        killmails_path: killmails_path.clone(),
        truth_path: truth_path.clone(),
        ..Summary::default()
    };
    let mut battle_kinds: BTreeMap<BattleKind, u64> = BTreeMap::new();
    let mut kill_kinds: BTreeMap<KillKind, u64> = BTreeMap::new();
    // Each line is serialized into a reused buffer, then written at once (much faster than
    // many small writes through the dynamic writer).
    let mut line = Vec::with_capacity(1 << 16);
    for g in generate(config) {
        line.clear();
        serde_json::to_writer(&mut line, &g.killmail)?;
        line.push(b'\n');
        killmails
            .writer()
            .write_all(&line)
            .map_err(io(&killmails_path))?;
        line.clear();
        serde_json::to_writer(&mut line, &g.truth)?;
        line.push(b'\n');
        truth.write_all(&line).map_err(io(&truth_path))?;
        summary.killmails += 1;
        *battle_kinds.entry(g.truth.battle_kind).or_default() += 1;
        *kill_kinds.entry(g.truth.kind).or_default() += 1;
    }
    killmails.finish().map_err(io(&killmails_path))?;
    truth.flush().map_err(io(&truth_path))?;
    summary.by_battle_kind = battle_kinds
        .into_iter()
        .map(|(k, n)| (spelling(k), n))
        .collect();
    summary.by_kill_kind = kill_kinds
        .into_iter()
        .map(|(k, n)| (spelling(k), n))
        .collect();
    Ok(summary)
}
