//! The HTTP server inside the daemon (`[web]`): it is served by `rsvpd run`
//! itself, refuses to start on a port in use, and stops with the daemon.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::app::{CONFERENCES, Rsvpd, servers};
use crate::support::wait_until;

/// A free loopback port (bound and released; good enough for one test).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `GET path` over plain HTTP/1.1; (status, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn web_config(port: u16) -> String {
    format!("{CONFERENCES}\n[web]\nlisten = \"127.0.0.1:{port}\"\n")
}

#[test]
fn the_daemon_serves_http_on_web_listen_and_stops_with_it() {
    let (dovecot, sink) = servers();
    let port = free_port();
    let app = Rsvpd::with_config(&dovecot, &sink, "", &web_config(port));
    let mut daemon = app.spawn();
    let (status, _) = wait_until(
        Duration::from_secs(20),
        "the HTTP server to answer",
        || http_get(port, "/no-such-page"),
        || daemon.log(),
    );
    assert_eq!(status, 404, "{}", daemon.log());
    daemon.stop_cleanly(libc::SIGTERM);
    assert!(
        http_get(port, "/no-such-page").is_none(),
        "the port still answers after the daemon stopped"
    );
}

#[test]
fn a_web_port_in_use_stops_the_start_with_a_clear_message() {
    let (dovecot, sink) = servers();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let app = Rsvpd::with_config(&dovecot, &sink, "", &web_config(port));
    let out = app.output(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[web] listen") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
}
