//! `/healthz`, `/metrics` and systemd's watchdog against real servers: the
//! daemon with Dovecot and smtp-sink, an SMTP server that starts refusing our
//! sender, an IMAP server that restarts, and a worker that hangs.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::app::{CONFERENCES, MAILBOX, Rsvpd, question, registration, servers, wait_answered};
use crate::support::wait_until;
use crate::web::{free_port, http_get};

const WAIT: Duration = Duration::from_secs(60);

/// `[web] unhealthy_after` in [`config`].
const UNHEALTHY_AFTER: Duration = Duration::from_secs(3);

fn config(port: u16) -> String {
    format!(
        "{CONFERENCES}\n[web]\nlisten = \"127.0.0.1:{port}\"\nunhealthy_after = \"{}s\"\n",
        UNHEALTHY_AFTER.as_secs()
    )
}

/// The value of the first metric line that starts with `series`.
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn wait_metric(port: u16, series: &str, at_least: f64, log: impl Fn() -> String) -> String {
    wait_until(
        WAIT,
        &format!("{series} >= {at_least}"),
        || {
            let (status, body) = http_get(port, "/metrics")?;
            (status == 200 && metric(&body, series)? >= at_least).then_some(body)
        },
        log,
    )
}

#[test]
fn healthz_and_metrics_follow_the_servers() {
    let (mut dovecot, mut sink) = servers();
    let port = free_port();
    let app = Rsvpd::with_config(&dovecot, &sink, "", &config(port));
    let mut daemon = app.spawn();
    let log = || daemon.log();
    wait_until(
        WAIT,
        "/healthz to say ok",
        || http_get(port, "/healthz").filter(|r| *r == (200, "ok\n".to_string())),
        log,
    );

    // One registration and one mail that needs a human.
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "h-1@example.net"),
    );
    wait_answered(&sink, "ayse@example.net", WAIT, log);
    dovecot.deliver(MAILBOX, &question("h-2@example.com"));
    let body = wait_metric(port, "rsvpd_review_open", 1.0, log);
    assert_eq!(
        metric(&body, "rsvpd_messages_total{outcome=\"recorded\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "rsvpd_messages_total{outcome=\"review\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(metric(&body, "rsvpd_mails_sent_total"), Some(1.0), "{body}");
    assert_eq!(
        metric(&body, "rsvpd_outbox_messages{state=\"sent\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "rsvpd_outbox_messages{state=\"queued\"}"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(metric(&body, "rsvpd_sending_paused"), Some(0.0), "{body}");
    assert_eq!(
        metric(&body, "rsvpd_imap_reconnects_total"),
        Some(0.0),
        "{body}"
    );
    assert!(!body.contains("@"), "no addresses in metrics:\n{body}");

    // The IMAP server restarts: the daemon logs in again, and counts it.
    dovecot.restart();
    wait_metric(port, "rsvpd_imap_reconnects_total", 1.0, log);
    // The login is counted before the mailbox worker's first step on the new
    // session has finished; until that step clears it, the worker's failure
    // while Dovecot was down ("connection refused", since before the login)
    // stands, and /healthz reports it once it is older than `unhealthy_after`
    // — after a 3 s backoff, or a second refused connect, it already is at
    // the login. Breaking SMTP before it cleared makes the first 503 below
    // the mailbox's. An ok from /healthz more than `unhealthy_after` after the
    // login was seen proves it cleared: a failure that began before the login
    // and still stood would show by then.
    let settled = Instant::now() + UNHEALTHY_AFTER + Duration::from_millis(500);
    wait_until(
        WAIT,
        "/healthz to say ok unhealthy_after past the IMAP reconnect",
        || {
            (Instant::now() >= settled)
                .then(|| http_get(port, "/healthz"))
                .flatten()
                .filter(|r| *r == (200, "ok\n".to_string()))
        },
        log,
    );

    // The SMTP server starts refusing our sender: sending pauses; after
    // `unhealthy_after` (3 s) /healthz says so, with the reason and the fix.
    sink.restart_with_args(&["-f", "MAIL"]);
    dovecot.deliver(
        MAILBOX,
        &registration("Omar Haddad", "omar@example.com", "h-3@example.com"),
    );
    let (_, why) = wait_until(
        WAIT,
        "/healthz to turn 503",
        || http_get(port, "/healthz").filter(|r| r.0 == 503),
        log,
    );
    assert!(
        why.contains("outbox worker failing since")
            && why.contains("sender refused (MAIL FROM)")
            && why.contains("[smtp] from"),
        "{why}"
    );
    assert!(!why.contains("omar@"), "{why}");
    let body = wait_metric(port, "rsvpd_sending_paused", 1.0, log);
    assert_eq!(
        metric(&body, "rsvpd_outbox_messages{state=\"queued\"}"),
        Some(1.0),
        "{body}"
    );

    // Fixed: after the pause (30 s) the mail goes and health is back.
    sink.restart_with_args(&[]);
    wait_answered(&sink, "omar@example.com", Duration::from_secs(90), log);
    wait_until(
        WAIT,
        "/healthz to say ok again",
        || http_get(port, "/healthz").filter(|r| *r == (200, "ok\n".to_string())),
        log,
    );
    daemon.stop_cleanly(libc::SIGTERM);
}

/// What the daemon told systemd over `NOTIFY_SOCKET`, one datagram each.
struct Notifications {
    socket: UnixDatagram,
    seen: Vec<(Instant, String)>,
}

impl Notifications {
    fn bind(path: &std::path::Path) -> Notifications {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Notifications {
            socket,
            seen: Vec::new(),
        }
    }

    /// Read what arrived until `limit` passed.
    fn read_for(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                for line in text.lines() {
                    self.seen.push((Instant::now(), line.to_string()));
                }
            }
        }
    }

    fn since(&self, t: Instant) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, l)| l.as_str())
            .collect()
    }
}

/// The watchdog is fed from the workers' progress: while they report it
/// arrives every half period; once the outbox worker hangs (a debug fail
/// point) it stops, so systemd restarts the service. `STATUS=` says what the
/// daemon does.
#[test]
fn the_watchdog_stops_when_a_worker_hangs() {
    let (dovecot, sink) = servers();
    let port = free_port();
    let app = Rsvpd::with_config(&dovecot, &sink, "", &config(port));
    let text = std::fs::read_to_string(&app.config).expect("config");
    // One SMTP command may take 1 s: the hung send counts as stuck after 9 s.
    std::fs::write(
        &app.config,
        text.replace(
            "max_per_minute = 1000",
            "max_per_minute = 1000\ntimeout = \"1s\"",
        ),
    )
    .expect("write");
    let socket_path = app.dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&socket_path);
    let mut command = app.command();
    command
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env("RSVPD_FAILPOINT", "hang:before-send");
    let mut daemon = app.start_daemon(command);

    notes.read_for(Duration::from_secs(3));
    let all = notes.since(Instant::now() - Duration::from_secs(60));
    assert!(all.contains(&"READY=1"), "{all:?}\n{}", daemon.log());
    let pings = all.iter().filter(|l| **l == "WATCHDOG=1").count();
    assert!(pings >= 3, "fed every 0.5 s while healthy: {all:?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("STATUS=0 queued, no mail yet")),
        "{all:?}"
    );

    // A mail to send: the outbox worker hangs in the send.
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "w-1@example.net"),
    );
    let stuck = wait_until(
        WAIT,
        "/healthz to call the outbox worker stuck",
        || {
            http_get(port, "/healthz")
                .filter(|r| r.0 == 503 && r.1.contains("outbox worker is stuck"))
        },
        || daemon.log(),
    );
    assert!(stuck.1.contains("no progress since"), "{}", stuck.1);
    let after = Instant::now() + Duration::from_secs(1);
    notes.read_for(Duration::from_secs(4));
    let late = notes.since(after);
    assert!(
        !late.contains(&"WATCHDOG=1"),
        "a stuck worker must starve the watchdog: {late:?}"
    );
    assert!(
        late.iter()
            .any(|l| l.starts_with("STATUS=1 queued, last mail")),
        "{late:?}"
    );
    assert!(
        daemon.log().contains("systemd's watchdog is no longer fed"),
        "{}",
        daemon.log()
    );
    daemon.kill();
    assert!(sink.messages().is_empty());
}
