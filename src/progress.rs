//! Progress of long work, told to the log and to systemd (`STATUS=`, which
//! `systemctl status` shows).
//!
//! Owns: the reporting loop ([`run`]): while a full scan runs (the start-up scan of a large
//! tree, or a rescan of a network share in poll mode, can take minutes), a `STATUS=` line
//! at most every [`STATUS_EVERY`] and a log line after [`FIRST_LOG`], then at gaps doubling up to
//! [`LOG_EVERY`] (at 1, 3, 7, 15, 25, 35 s...), with the directories and files walked,
//! files per second and the time elapsed; when idle, a `STATUS=` summary whenever
//! it changes ("watching N files, inotify, M pending"); and the wording of both.
//! Does not own: counting (the scan thread counts into [`crate::health::ScanProgress`]),
//! the notification protocol (`sd`), the status word (`health`), or `/healthz`'s fields
//! (`health::answer`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::health::{self, Health, Progress};
use crate::index::IndexReader;
use crate::sd::Notifier;

/// How often `STATUS=` is brought up to date (sent only when it changed).
pub const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the loop looks: a scan's first log line is not a tick late, and a scan that
/// starts or ends shows in `STATUS=` at once.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// When a running full scan logs its progress first (a shorter one logs only its end).
pub const FIRST_LOG: Duration = Duration::from_secs(1);
/// The longest gap between two progress lines of one scan: a scan of minutes says where it
/// is every few seconds early on and every [`LOG_EVERY`] later, not once a second.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Reports progress and status until `token` is cancelled.
pub async fn run(
    health: Arc<Health>,
    reader: IndexReader,
    notifier: Notifier,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = String::new();
    let mut sent_at: Option<Instant> = None;
    let mut was_scanning = false;
    let mut log = LogPace::default();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let progress = health.scan().now();
        let scanning_now = progress.is_some();
        let text = match progress {
            Some(p) => {
                let what = scan_name(health.is_ready());
                if log.due(p.elapsed) {
                    tracing::info!(
                        scan = what,
                        directories = p.directories,
                        files = p.files,
                        files_per_s = p.files_per_second(),
                        elapsed_s = p.elapsed.as_secs(),
                        "scanning"
                    );
                }
                scanning(what, &p)
            }
            None => {
                log = LogPace::default();
                let (serving, word) = health::status(&health, reader.stats());
                idle(
                    serving,
                    word,
                    reader.stats().files(),
                    health.pending(),
                    health.watcher().as_str(),
                )
            }
        };
        // A scan's numbers change on every look: sent once per STATUS_EVERY, but a scan
        // starting or ending at once.
        let due = sent_at.is_none_or(|at| at.elapsed() >= STATUS_EVERY);
        if text != sent && (due || scanning_now != was_scanning) {
            notifier.status(&text);
            sent = text;
            sent_at = Some(Instant::now());
            was_scanning = scanning_now;
        }
    }
}

/// When the next progress line of the running scan is due.
#[derive(Debug)]
struct LogPace {
    /// The scan's elapsed time at which the next line is due.
    next: Duration,
    /// The gap after the next line.
    gap: Duration,
}

impl Default for LogPace {
    fn default() -> Self {
        LogPace {
            next: FIRST_LOG,
            gap: FIRST_LOG * 2,
        }
    }
}

impl LogPace {
    /// Whether a line is due at `elapsed`; if so, the next one is scheduled.
    fn due(&mut self, elapsed: Duration) -> bool {
        if elapsed < self.next {
            return false;
        }
        self.next = elapsed + self.gap;
        self.gap = (self.gap * 2).min(LOG_EVERY);
        true
    }
}

/// What the running full scan is, for a person.
fn scan_name(ready: bool) -> &'static str {
    if ready {
        "full scan"
    } else {
        "start-up scan"
    }
}

/// The status line while a full scan runs.
fn scanning(what: &str, p: &Progress) -> String {
    format!(
        "{what}: {} directories, {} files, {} files/s, {} s",
        p.directories,
        p.files,
        p.files_per_second(),
        p.elapsed.as_secs()
    )
}

/// The status line when no full scan runs.
fn idle(serving: bool, word: &str, files: u64, pending: u64, watcher: &str) -> String {
    if serving {
        format!("watching {files} files, {watcher}, {pending} pending")
    } else {
        format!("{word}: {files} files indexed, {pending} pending, watcher {watcher}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_come_often_at_first_then_every_log_every() {
        let mut pace = LogPace::default();
        let at: Vec<u64> = (0..60)
            .filter(|s| pace.due(Duration::from_secs(*s)))
            .collect();
        assert_eq!(at, vec![1, 3, 7, 15, 25, 35, 45, 55]);
    }

    #[test]
    fn the_lines_say_what_runs_and_the_numbers() {
        let p = Progress {
            directories: 12,
            files: 3000,
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!(
            scanning(scan_name(false), &p),
            "start-up scan: 12 directories, 3000 files, 2000 files/s, 1 s"
        );
        assert_eq!(
            idle(true, "ok", 7, 1, "inotify"),
            "watching 7 files, inotify, 1 pending"
        );
        assert_eq!(
            idle(false, "index_failing", 7, 0, "inotify"),
            "index_failing: 7 files indexed, 0 pending, watcher inotify"
        );
    }
}
