//! Whether the daemon works, as the workers report it: the state behind
//! `GET /healthz`, systemd's watchdog and its `STATUS=` line.
//!
//! Every worker (mailbox, schedule, outbox) says before each step or wait by
//! when it will report again ([`Health::alive`]); one that misses its own
//! deadline is hung. A worker whose steps fail (the IMAP server is gone, the
//! SMTP server refuses our login) reports that too, with the time it began.
//! Health is false when a worker is hung, or has failed for longer than
//! `unhealthy_after`. The watchdog is only fed while no worker is hung: a
//! restart cures a stuck task, not a wrong password. This module keeps the
//! state and decides; it does no I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The workers whose health counts.
pub const WORKERS: [&str; 3] = ["mailbox", "schedule", "outbox"];

#[derive(Debug, Clone)]
struct Worker {
    /// When it said it would report again (monotonic: a clock jump does not matter).
    deadline: Instant,
    /// When it last finished a step or a wait.
    last_progress: DateTime<Utc>,
    /// Since when and why its steps fail.
    failing: Option<(DateTime<Utc>, String)>,
}

/// The workers' reports; shared by the workers, the HTTP handlers and the
/// watchdog task, and kept across SIGHUP reloads.
#[derive(Debug)]
pub struct Health {
    workers: Mutex<BTreeMap<&'static str, Worker>>,
    unhealthy_after: Duration,
    started: DateTime<Utc>,
}

impl Health {
    pub fn new(unhealthy_after: Duration) -> Arc<Health> {
        Arc::new(Health {
            workers: Mutex::new(BTreeMap::new()),
            unhealthy_after,
            started: Utc::now(),
        })
    }

    fn update(&self, worker: &'static str, f: impl FnOnce(&mut Worker)) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let w = workers.entry(worker).or_insert_with(|| Worker {
            deadline: Instant::now(),
            last_progress: Utc::now(),
            failing: None,
        });
        f(w);
    }

    /// `worker` begins something that ends (or reports again) within `within`.
    pub fn alive(&self, worker: &'static str, within: Duration) {
        let deadline = Instant::now() + within;
        self.update(worker, |w| w.deadline = deadline);
    }

    /// `worker` finished a step that worked.
    pub fn progress(&self, worker: &'static str) {
        self.update(worker, |w| {
            w.last_progress = Utc::now();
            w.failing = None;
        });
    }

    /// `worker`'s step failed; `since` is when the failures began (the first
    /// report's time is kept when None).
    pub fn failing(&self, worker: &'static str, since: Option<DateTime<Utc>>, error: &str) {
        let now = Utc::now();
        self.update(worker, |w| {
            w.last_progress = now;
            let began = since.or(w.failing.as_ref().map(|f| f.0)).unwrap_or(now);
            w.failing = Some((began, error.to_string()));
        });
    }

    /// The workers that missed their deadline, with what to say about them.
    fn hung(&self, now: Instant) -> Vec<String> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .iter()
            .filter(|(_, w)| now > w.deadline)
            .map(|(name, w)| {
                format!(
                    "{name} worker is stuck: no progress since {} (it should have reported {} s ago)",
                    w.last_progress.format("%Y-%m-%d %H:%M:%S UTC"),
                    (now - w.deadline).as_secs()
                )
            })
            .collect()
    }

    /// Whether every worker keeps its deadlines: feeds the watchdog.
    pub fn all_alive(&self) -> bool {
        self.hung(Instant::now()).is_empty()
    }

    /// Ok, or why not (one line per problem): what `/healthz` answers.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        let mut problems = self.hung(Instant::now());
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let limit = chrono::Duration::from_std(self.unhealthy_after).unwrap_or_default();
        for name in WORKERS {
            match workers.get(name) {
                // Just started: give it the same grace as a failure.
                None if now - self.started > limit => {
                    problems.push(format!("{name} worker has not started"));
                }
                None => {}
                Some(w) => {
                    if let Some((since, error)) = &w.failing
                        && now - *since > limit
                    {
                        problems.push(format!(
                            "{name} worker failing since {}: {error}",
                            since.format("%Y-%m-%d %H:%M:%S UTC")
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// systemd's `STATUS=` line: "3 queued, last mail 2 min ago".
pub fn status_line(
    queued: i64,
    last_mail: Option<DateTime<Utc>>,
    paused: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let last = match last_mail {
        None => "no mail yet".to_string(),
        Some(t) => format!("last mail {}", ago(now - t)),
    };
    let mut line = format!("{queued} queued, {last}");
    if let Some(why) = paused {
        line.push_str(&format!(", sending paused ({why})"));
    }
    line
}

fn ago(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_deadline_is_a_stuck_worker_and_stops_the_watchdog() {
        let h = Health::new(Duration::from_secs(300));
        for w in WORKERS {
            h.alive(w, Duration::from_secs(60));
        }
        assert!(h.all_alive());
        assert_eq!(h.check(Utc::now()), Ok(()));
        h.alive("mailbox", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!h.all_alive());
        let why = h.check(Utc::now()).expect_err("stuck");
        assert!(why.starts_with("mailbox worker is stuck"), "{why}");
    }

    #[test]
    fn failing_counts_only_after_the_threshold_and_progress_clears_it() {
        let h = Health::new(Duration::from_secs(300));
        for w in WORKERS {
            h.alive(w, Duration::from_secs(60));
        }
        let now = Utc::now();
        h.failing(
            "outbox",
            Some(now - chrono::Duration::seconds(60)),
            "login refused",
        );
        assert_eq!(h.check(now), Ok(()), "a minute is within the threshold");
        h.failing(
            "outbox",
            Some(now - chrono::Duration::seconds(600)),
            "login refused",
        );
        let why = h.check(now).expect_err("ten minutes is not");
        assert!(
            why.contains("outbox worker failing since") && why.contains("login refused"),
            "{why}"
        );
        assert!(
            h.all_alive(),
            "failing is not stuck: the watchdog is still fed"
        );
        h.progress("outbox");
        assert_eq!(h.check(now), Ok(()));
    }

    #[test]
    fn the_first_failure_time_is_kept() {
        let h = Health::new(Duration::from_secs(1));
        for w in WORKERS {
            h.alive(w, Duration::from_secs(60));
        }
        let start = Utc::now() - chrono::Duration::seconds(10);
        h.failing("mailbox", Some(start), "connection refused");
        h.failing("mailbox", None, "connection refused again");
        let why = h.check(Utc::now()).expect_err("failing");
        assert!(why.contains(&start.format("%H:%M:%S").to_string()), "{why}");
        assert!(why.contains("again"), "the newest error: {why}");
    }

    #[test]
    fn a_worker_that_never_reported_is_unhealthy_after_the_grace() {
        let h = Health::new(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let why = h.check(Utc::now()).expect_err("nobody reported");
        assert!(why.contains("mailbox worker has not started"), "{why}");
    }

    #[test]
    fn status_line_reads_like_a_sentence() {
        let now = Utc::now();
        assert_eq!(
            status_line(3, Some(now - chrono::Duration::seconds(150)), None, now),
            "3 queued, last mail 2 min ago"
        );
        assert_eq!(
            status_line(0, None, Some("login refused"), now),
            "0 queued, no mail yet, sending paused (login refused)"
        );
    }
}
