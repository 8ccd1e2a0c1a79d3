//! The SQL peer of `battles bench --peer`: `benches/peer/sql_peer.py` (embedded here) run with
//! `python3` on one enriched JSONL file against a scratch database, and its summary line
//! (`N killmails -> B battles in Xs ...`) read back. The peer needs `python3` and `psql`;
//! [`missing_tools`] says which is absent so the bench can go on without it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

/// The peer's script, shipped with the project (see `benches/peer/README.md`).
pub const SQL_PEER_SCRIPT: &str = include_str!("../../../benches/peer/sql_peer.py");

/// File name the script is written to before it runs.
pub const SQL_PEER_FILE: &str = "sql_peer.py";

/// One run of the peer.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRun {
    /// What the run was given (`whole input`, `second half alone`).
    pub input: &'static str,
    pub killmails: u64,
    pub battles: u64,
    /// The peer's own time: reading the file in Python, both COPYs and the clustering query.
    pub seconds: f64,
    pub per_second: f64,
    /// From starting `python3` to its exit (interpreter start-up included).
    pub wall_seconds: f64,
}

/// `None` when `python3` and `psql` both run, else what is missing.
pub fn missing_tools() -> Option<String> {
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = ["python3", "psql"]
        .into_iter()
        .filter(|p| !runs(p))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "{} not found on the PATH (the SQL peer needs python3 and psql)",
            missing.join(" and ")
        ))
    }
}

/// Writes the embedded script into `dir` and returns its path.
pub fn write_script(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(SQL_PEER_FILE);
    std::fs::write(&path, SQL_PEER_SCRIPT)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs the peer's `script` on `input` (enriched JSONL) against the database at `dsn`.
pub fn run(script: &Path, dsn: &str, input: &Path, label: &'static str) -> anyhow::Result<PeerRun> {
    let started = Instant::now();
    let output = Command::new("python3")
        .arg(script)
        .arg("--dsn")
        .arg(dsn)
        .arg("--input")
        .arg(input)
        .stdin(Stdio::null())
        .output()
        .context("starting python3 for the SQL peer")?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the SQL peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let (killmails, battles, seconds) = parse_summary(&stdout)
        .with_context(|| format!("the SQL peer printed no summary line: {}", stdout.trim()))?;
    Ok(PeerRun {
        input: label,
        killmails,
        battles,
        seconds,
        per_second: killmails as f64 / seconds.max(1e-9),
        wall_seconds,
    })
}

/// (killmails, battles, seconds) of the peer's `N killmails -> B battles in Xs (...)` line.
fn parse_summary(stdout: &str) -> Option<(u64, u64, f64)> {
    let line = stdout.lines().find(|l| l.contains(" killmails -> "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [n, "killmails", "->", b, "battles", "in", secs, ..] => Some((
            n.parse().ok()?,
            b.parse().ok()?,
            secs.strip_suffix('s')?.parse().ok()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line() {
        let out = "57461 killmails -> 9001 battles in 4.25s (13520 killmails/s, COPY + SQL session windows)\n";
        assert_eq!(parse_summary(out), Some((57461, 9001, 4.25)));
        assert_eq!(parse_summary("nothing here\n"), None);
        assert_eq!(parse_summary("1 killmails -> x battles in 1s\n"), None);
    }

    #[test]
    fn the_embedded_script_is_the_peer() {
        assert!(SQL_PEER_SCRIPT.contains("COPY + SQL session windows"));
        assert!(SQL_PEER_SCRIPT.contains("--input"));
    }
}
