//! Backfill progress: a live bar on a terminal (records or killmails per second, battles,
//! rejects, ETA), plain log lines every few seconds otherwise (CI, `nohup`, a pipe), nothing
//! when hidden (tests, `battles bench`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between plain log lines.
const LOG_EVERY: Duration = Duration::from_secs(5);

enum Mode {
    Bar(ProgressBar),
    Log(Mutex<LogState>),
    Hidden,
}

struct LogState {
    last: Instant,
}

/// Reports backfill progress.
pub struct Progress {
    mode: Mode,
    started: Instant,
}

impl Progress {
    /// A bar when standard error is a terminal, log lines otherwise.
    pub fn auto() -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} reading  {human_pos} records  {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Mode::Bar(bar)
        } else {
            Mode::Log(Mutex::new(LogState {
                last: Instant::now(),
            }))
        };
        Progress {
            mode,
            started: Instant::now(),
        }
    }

    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress {
            mode: Mode::Hidden,
            started: Instant::now(),
        }
    }

    /// Records read so far and decompressed bytes.
    pub fn read(&self, records: u64, bytes: u64) {
        match &self.mode {
            Mode::Bar(bar) => {
                bar.set_position(records);
                bar.set_message(format!(
                    "{:.0}/s  {:.0} MB",
                    records as f64 / self.started.elapsed().as_secs_f64().max(1e-3),
                    bytes as f64 / 1e6
                ));
            }
            Mode::Log(state) => self.log(state, || {
                format!("reading: {records} records, {:.0} MB", bytes as f64 / 1e6)
            }),
            Mode::Hidden => {}
        }
    }

    /// The clustering phase starts with `total` killmails to go.
    pub fn start_clustering(&self, total: u64) {
        if let Mode::Bar(bar) = &self.mode {
            let done = bar.length().map_or(0, |_| bar.position());
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message("");
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {human_pos}/{human_len} killmails  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
        }
    }

    /// Killmails committed so far (clustered and written).
    pub fn clustered(&self, done: u64, total: u64, battles: u64, rejects: u64) {
        match &self.mode {
            Mode::Bar(bar) => {
                bar.set_position(done);
                bar.set_message(format!(
                    "{:.0} killmails/s  {battles} battles  {rejects} rejects",
                    bar.per_sec()
                ));
            }
            Mode::Log(state) => self.log(state, || {
                let secs = self.started.elapsed().as_secs_f64();
                format!(
                    "clustered {done}/{total} killmails ({:.0}%), {battles} battles, {rejects} rejects, {secs:.0} s",
                    100.0 * done as f64 / total.max(1) as f64
                )
            }),
            Mode::Hidden => {}
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn log(&self, state: &Mutex<LogState>, line: impl FnOnce() -> String) {
        let mut state = state.lock().expect("progress lock");
        if state.last.elapsed() >= LOG_EVERY {
            state.last = Instant::now();
            tracing::info!("{}", line());
        }
    }
}
