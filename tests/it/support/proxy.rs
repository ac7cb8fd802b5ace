//! A TCP proxy on a free loopback port that can make a connection go silent
//! without a reset — the failure a timeout has to catch (a NAT box that forgot
//! the connection, a server that hangs). Threads only, stopped on drop.
//!
//! `freeze()` silences every connection open at that moment: the server's
//! bytes are no longer passed on and the client's are swallowed, but both
//! sockets stay open. `freeze_after(n)` does the same to a connection once it
//! has passed `n` more bytes from the server (to cut a FETCH in the middle).
//! New connections work normally.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::HOST;

struct Conn {
    frozen: AtomicBool,
    /// Bytes passed from the server to the client so far.
    from_server: AtomicU64,
    /// Freeze once `from_server` reaches this.
    freeze_at: AtomicU64,
}

pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
}

impl Proxy {
    /// Forward a free loopback port to `target_port` on loopback.
    pub fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind((HOST, 0)).unwrap_or_else(|e| panic!("proxy: bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy: local_addr: {e}"))
            .port();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("proxy: nonblocking: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Arc<Conn>>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        {
            let (stop, conns, accepted) = (stop.clone(), conns.clone(), accepted.clone());
            let (open, max_open) = (open.clone(), max_open.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let Ok(server) = TcpStream::connect((HOST, target_port)) else {
                                let _ = client.shutdown(Shutdown::Both);
                                continue;
                            };
                            accepted.fetch_add(1, Ordering::SeqCst);
                            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                            max_open.fetch_max(now_open, Ordering::SeqCst);
                            let conn = Arc::new(Conn {
                                frozen: AtomicBool::new(false),
                                from_server: AtomicU64::new(0),
                                freeze_at: AtomicU64::new(u64::MAX),
                            });
                            if let Ok(mut list) = conns.lock() {
                                list.push(conn.clone());
                            }
                            pump_pair(client, server, conn, stop.clone(), open.clone());
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Proxy {
            port,
            stop,
            conns,
            accepted,
            open,
            max_open,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The most connections that were open at the same time.
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }

    /// Silence every connection open now.
    pub fn freeze(&self) {
        for c in self.conns.lock().map(|l| l.clone()).unwrap_or_default() {
            c.frozen.store(true, Ordering::SeqCst);
        }
    }

    /// Silence every connection open now once it has passed `bytes` more from the server.
    pub fn freeze_after(&self, bytes: u64) {
        for c in self.conns.lock().map(|l| l.clone()).unwrap_or_default() {
            let at = c.from_server.load(Ordering::SeqCst).saturating_add(bytes);
            c.freeze_at.store(at, Ordering::SeqCst);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A connection counts as open until the client side is gone.
fn pump_pair(
    client: TcpStream,
    server: TcpStream,
    conn: Arc<Conn>,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
) {
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        open.fetch_sub(1, Ordering::SeqCst);
        return;
    };
    {
        let (conn, stop) = (conn.clone(), stop.clone());
        thread::spawn(move || {
            pump(client, server2, conn, stop, false);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    thread::spawn(move || pump(server, client2, conn, stop, true));
}

/// Copy `from` → `to` until either side closes or the proxy stops.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    conn: Arc<Conn>,
    stop: Arc<AtomicBool>,
    server_side: bool,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        if server_side && conn.frozen.load(Ordering::SeqCst) {
            // Silent: the server's bytes stay unread, nothing reaches the client.
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        if server_side {
            // Pass on only up to the freeze point.
            let before = conn.from_server.load(Ordering::SeqCst);
            let at = conn.freeze_at.load(Ordering::SeqCst);
            let allowed = at.saturating_sub(before).min(n as u64) as usize;
            conn.from_server.fetch_add(allowed as u64, Ordering::SeqCst);
            if allowed < n {
                conn.frozen.store(true, Ordering::SeqCst);
            }
            if to.write_all(&buf[..allowed]).is_err() {
                break;
            }
        } else if !conn.frozen.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if !conn.frozen.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Both);
    }
}
