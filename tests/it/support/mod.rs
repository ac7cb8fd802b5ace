//! Test support for rsvpd's integration tests: real mail servers, started per
//! test on free loopback ports and torn down when the handle is dropped.
//!
//! * [`Dovecot`] — a private Dovecot 2.3 (IMAP, IMAPS with a generated CA,
//!   LMTP for delivery) with Maildir storage in a temporary directory.
//! * [`SmtpSink`] — Postfix's `smtp-sink`, an SMTP server that records every
//!   mail it accepts and can be told to fail at a chosen protocol stage.
//! * [`Postgres`] — a private PostgreSQL (initdb into a temp dir as the
//!   `postgres` user, trust authentication, a free loopback port).
//! * [`free_port`], [`find_binary`], [`wait_until`] — small shared helpers.
//!
//! Everything is plain blocking std Rust; async tests can call it from
//! `tokio::task::spawn_blocking` or simply before entering the runtime. A
//! missing server binary is a test failure ("install X: run scripts/test"),
//! never a skip. Every server runs in its own process group together with a
//! tiny watchdog, so it dies with the handle's `Drop`, during a panic's
//! unwinding, and even when the test process itself is killed.

// Each test module uses only some of these helpers; the rest would warn.
#![allow(dead_code)]

pub mod chromium;
pub mod dovecot;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod smtp_sink;

pub use dovecot::Dovecot;
pub use postgres::Postgres;
pub use smtp_sink::{SinkMessage, SmtpSink};

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The loopback address every test server listens on.
pub const HOST: &str = "127.0.0.1";

/// How long a server may take to become ready, and how long `wait_for`-style
/// helpers poll by default. Generous on purpose: CI machines are shared.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A loopback TCP port that was free a moment ago and that this test process
/// has not handed out before (so two servers started by parallel tests never
/// get the same port from us). It is picked at random *below* the kernel's
/// ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), so no
/// outgoing connection can take it as its source port before the server
/// binds it. Another process may still grab it; the server starters retry
/// with new ports when binding fails.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(20_000));
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0..1000u64 {
        let mut hasher = random.build_hasher();
        hasher.write_u64(attempt);
        let port = low + (hasher.finish() % u64::from(high - low)) as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed_out.contains(&port) || TcpListener::bind((HOST, port)).is_err() {
            continue;
        }
        handed_out.insert(port);
        return port;
    }
    panic!("no free port in {low}..{high} on {HOST} after 1000 tries");
}

/// `n` distinct free ports (see [`free_port`]).
pub fn free_ports<const N: usize>() -> [u16; N] {
    std::array::from_fn(|_| free_port())
}

/// The full path of `binary`, searched in `$PATH` and then in the sbin
/// directories (Dovecot and Postfix live in `/usr/sbin`, which is not in every
/// PATH). Panics with "install `package`: run scripts/test" when missing.
pub fn find_binary(binary: &str, package: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path_var)
        .chain(sbin)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!("`{binary}` not found in PATH or /usr/sbin: install {package}: run scripts/test")
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Polls `ready` every 25 ms until it returns `Some`, or panics after
/// `timeout` with `what` and the text `diagnose` returns (e.g. a server log).
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
    diagnose: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                diagnose()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether something listens on `HOST:port`, read from `/proc/net/tcp`
/// without connecting (a probe connection would count as an SMTP session).
pub fn is_listening(port: u16) -> bool {
    listening_socket_inode(port).is_some()
}

/// The inode of the socket listening on `HOST:port` (from `/proc/net/tcp`),
/// to match against a process's `/proc/PID/fd/*` links `socket:[INODE]`.
pub fn listening_socket_inode(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_else(|e| panic!("cannot read /proc/net/tcp: {e}"));
    // Fields: sl local_address rem_address st ... ; local is "0100007F:PORT"
    // in hex, st 0A is LISTEN, the inode is the 10th field.
    let wanted = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&"0A");
        listening.then(|| fields.get(9)?.parse().ok()).flatten()
    })
}

/// Converts a message to the SMTP/LMTP DATA wire form: every line ending
/// becomes CRLF, lines starting with "." get a second ".", a final CRLF is
/// added when missing, and the terminating ".\r\n" is appended.
pub fn smtp_data(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16 + 8);
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if !raw.is_empty() {
        for line in body.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The passwd entry (uid, gid) of a system user, e.g. `mail` or `nobody`.
pub fn system_user(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_else(|e| panic!("cannot read /etc/passwd: {e}"));
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == name)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .unwrap_or_else(|| panic!("system user `{name}` missing from /etc/passwd"))
}
