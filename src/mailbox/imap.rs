//! The IMAP source: one blocking session (the `imap` crate), driven from a
//! blocking thread by the async worker in `mailbox`.
//!
//! TLS is rustls (implicit or STARTTLS; clear text only on loopback, which the
//! config already enforces). Every read and write has a timeout, so a server that
//! goes silent is noticed. New mail is found by UID above the last one handled,
//! with UIDVALIDITY checked. Mail is fetched and filed away in UID sets, one
//! command for many messages (a round trip per batch, not per mail). Handled
//! messages are moved with UID MOVE; a server without MOVE gets COPY plus the
//! keyword `$RsvpdDone` — never a plain EXPUNGE, which could remove other
//! people's deleted-flagged mail. The one deletion, of a person's mail on
//! request (`erase`), is by UID with UID EXPUNGE.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::pki_types::ServerName;

use crate::config::{ImapServer, Tls};

/// The keyword that marks handled mail on servers without MOVE.
pub const DONE_KEYWORD: &str = "$RsvpdDone";

/// The connection under the session, with the timeout every command gets.
pub struct Stream {
    io: Io,
    timeout: Duration,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.io {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.io {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

impl imap::extensions::idle::SetReadTimeout for Stream {
    /// The imap crate sets "no timeout" after IDLE; we restore the command
    /// timeout instead, or a server that goes silent would hang us forever.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> imap::error::Result<()> {
        let t = timeout.unwrap_or(self.timeout);
        self.tcp()
            .set_read_timeout(Some(t))
            .map_err(imap::error::Error::Io)
    }
}

pub type Session = imap::Session<Stream>;

fn wrap_tls(server: &ImapServer, tcp: TcpStream) -> anyhow::Result<Io> {
    let name = ServerName::try_from(server.host.clone())
        .map_err(|_| anyhow!("`{}` is not a valid TLS server name", server.host))?;
    let conn = rustls::ClientConnection::new(
        crate::tls::client_config("[mailbox]", server.ca_file.as_deref())?,
        name,
    )
    .context("TLS setup")?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake now, so certificate problems surface as such.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).with_context(|| {
            format!("TLS handshake with {}:{} failed", server.host, server.port)
        })?;
    }
    Ok(Io::Tls(Box::new(tls)))
}

/// Read one CRLF-terminated line from a plain stream (before the imap crate takes over).
fn read_line(tcp: &mut TcpStream) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        if tcp.read(&mut byte)? == 0 {
            bail!("the server closed the connection");
        }
        line.push(byte[0]);
        if line.len() > 8192 {
            bail!("the server sent an overlong line");
        }
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Connect, secure and log in.
pub fn connect(server: &ImapServer, timeout: Duration) -> anyhow::Result<Session> {
    // Read first: a missing credential is the thing to fix, whatever the network does.
    let password = server.password.read()?;
    let where_ = format!("{}:{}", server.host, server.port);
    let addr = (server.host.as_str(), server.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the IMAP host {}", server.host))?
        .next()
        .ok_or_else(|| anyhow!("the IMAP host {} has no address", server.host))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to the IMAP server {where_}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let io = match server.tls {
        Tls::Implicit => wrap_tls(server, tcp)?,
        Tls::None => Io::Plain(tcp),
        Tls::StartTls => {
            let greeting =
                read_line(&mut tcp).with_context(|| format!("reading the greeting of {where_}"))?;
            if !greeting.starts_with("* OK") {
                bail!("the IMAP server {where_} greeted with `{greeting}`");
            }
            tcp.write_all(b"s1 STARTTLS\r\n")?;
            loop {
                let line = read_line(&mut tcp)?;
                if line.starts_with("s1 OK") {
                    break;
                }
                if line.starts_with("s1 ") {
                    bail!(
                        "the IMAP server {where_} refused STARTTLS: `{line}`; use imaps:// if it only offers TLS on port 993"
                    );
                }
            }
            wrap_tls(server, tcp)?
        }
    };
    let mut client = imap::Client::new(Stream { io, timeout });
    if server.tls != Tls::StartTls {
        client
            .read_greeting()
            .with_context(|| format!("reading the greeting of {where_}"))?;
    }
    let session = client
        .login(&server.user, password.expose())
        .map_err(|(e, _)| {
            anyhow!(
                "the IMAP server {where_} refused the login of `{}`: {}; check the password in [mailbox] password_file (or RSVPD_IMAP_PASSWORD)",
                server.user,
                crate::mask::mask_addresses(&e.to_string())
            )
        })?;
    Ok(session)
}

/// Capabilities that change how we work.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub idle: bool,
    pub moves: bool,
    /// UID EXPUNGE (RFC 4315): the only expunge that touches no other mail.
    pub uidplus: bool,
}

pub fn capabilities(session: &mut Session) -> anyhow::Result<Caps> {
    let caps = session.capabilities().context("CAPABILITY")?;
    Ok(Caps {
        idle: caps.has_str("IDLE"),
        moves: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
    })
}

/// The server's name for `folder` ("rsvpd/processed" → "rsvpd.processed" on
/// Dovecot), created (with its parents) when missing.
pub fn ensure_folder(session: &mut Session, folder: &str) -> anyhow::Result<String> {
    // An empty pattern asks only for the hierarchy delimiter.
    let names = session.list(Some(""), None).context("LIST")?;
    let delimiter = names
        .iter()
        .next()
        .and_then(|n| n.delimiter().map(str::to_string))
        .unwrap_or_else(|| "/".into());
    let parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    let mut path = String::new();
    for part in parts {
        if !path.is_empty() {
            path.push_str(&delimiter);
        }
        path.push_str(part);
        let exists = session
            .list(Some(""), Some(&quote(&path)))
            .with_context(|| format!("LIST {path}"))?
            .iter()
            .next()
            .is_some();
        if !exists {
            session
                .create(&path)
                .with_context(|| format!("cannot create the folder `{path}`"))?;
        }
    }
    Ok(path)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// SELECT `folder`; returns its UIDVALIDITY.
pub fn select(session: &mut Session, folder: &str) -> anyhow::Result<u32> {
    let mailbox = session
        .select(folder)
        .with_context(|| format!("cannot open the folder `{folder}`"))?;
    mailbox
        .uid_validity
        .ok_or_else(|| anyhow!("the server sent no UIDVALIDITY for `{folder}`"))
}

/// UIDs above `last_uid` not yet marked done, oldest first. (FETCH FLAGS rather
/// than SEARCH UNKEYWORD: Dovecot answers a search for a keyword it does not know
/// yet with untagged FLAGS updates the imap crate cannot parse inside a SEARCH.)
/// Each comes with its size in bytes.
pub fn new_uids(session: &mut Session, last_uid: u32) -> anyhow::Result<Vec<(u32, u32)>> {
    let range = format!("{}:*", last_uid.saturating_add(1));
    let fetches = session
        .uid_fetch(range, "(UID FLAGS RFC822.SIZE)")
        .context("UID FETCH FLAGS")?;
    let mut uids: Vec<(u32, u32)> = fetches
        .iter()
        .filter(|f| {
            !f.flags().iter().any(|flag| match flag {
                ::imap::types::Flag::Deleted => true,
                ::imap::types::Flag::Custom(k) => k.eq_ignore_ascii_case(DONE_KEYWORD),
                _ => false,
            })
        })
        .filter_map(|f| f.uid.map(|u| (u, f.size.unwrap_or(0))))
        // `n:*` always includes the highest UID, even when it is below n.
        .filter(|&(u, _)| u > last_uid)
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// A UID set for a command: runs of consecutive UIDs become ranges
/// (`4:9,12,15:16`), so a batch of thousands stays a short line.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// The whole messages `uids` in one command, or only their headers (without
/// setting \Seen); a message gone meanwhile is left out.
pub fn fetch(
    session: &mut Session,
    uids: &[u32],
    header_only: bool,
) -> anyhow::Result<Vec<(u32, Vec<u8>)>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let query = if header_only {
        "(UID BODY.PEEK[HEADER])"
    } else {
        "(UID BODY.PEEK[])"
    };
    let set = uid_set(uids);
    let fetches = session
        .uid_fetch(&set, query)
        .with_context(|| format!("UID FETCH {set}"))?;
    Ok(fetches
        .iter()
        .filter_map(|f| {
            let uid = f.uid.filter(|u| uids.contains(u))?;
            let raw = if header_only { f.header() } else { f.body() }?;
            Some((uid, raw.to_vec()))
        })
        .collect())
}

/// Put the handled messages `uids` into `target` in one command (MOVE, or
/// COPY + keyword).
pub fn file_away(
    session: &mut Session,
    caps: Caps,
    uids: &[u32],
    target: &str,
) -> anyhow::Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    if caps.moves {
        session
            .uid_mv(&set, target)
            .with_context(|| format!("UID MOVE {set} to `{target}`"))?;
    } else {
        session
            .uid_copy(&set, quote(target))
            .with_context(|| format!("UID COPY {set} to `{target}`"))?;
        // Not `uid_store`: Dovecot answers a new keyword with untagged FLAGS
        // and PERMANENTFLAGS that the imap crate cannot parse there.
        session
            .run_command_and_check_ok(format!(
                "UID STORE {set} +FLAGS.SILENT (\\Seen {DONE_KEYWORD})"
            ))
            .with_context(|| format!("UID STORE {set}"))?;
    }
    Ok(())
}

/// Delete from `folder` exactly the messages whose Message-ID is in `ids`
/// (without angle brackets), by UID: UID SEARCH finds candidates (it matches
/// substrings, so each hit's own header is checked), UID STORE marks them
/// \Deleted and UID EXPUNGE removes only those. Returns the UIDs deleted per id.
/// Without UIDPLUS nothing is touched: a plain EXPUNGE would also remove
/// other mail someone marked deleted.
pub fn erase(
    session: &mut Session,
    caps: Caps,
    folder: &str,
    ids: &[&str],
) -> anyhow::Result<Vec<Vec<u32>>> {
    if !caps.uidplus {
        bail!(
            "the IMAP server does not offer UIDPLUS, so rsvpd cannot delete single messages by UID; delete the person's mail in `{folder}` by hand"
        );
    }
    select(session, folder)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let candidates: Vec<u32> = session
            .uid_search(format!("HEADER Message-ID {}", quote(id)))
            .with_context(|| format!("UID SEARCH in `{folder}`"))?
            .into_iter()
            .collect();
        let exact = fetch(session, &candidates, true)?
            .into_iter()
            .filter(|(_, header)| {
                mail_parser::MessageParser::default()
                    .parse_headers(header.as_slice())
                    .and_then(|m| {
                        m.message_id()
                            .map(|m| m.trim_matches(['<', '>']).trim() == *id)
                    })
                    .unwrap_or(false)
            })
            .map(|(uid, _)| uid)
            .collect::<Vec<_>>();
        found.push(exact);
    }
    let all: Vec<u32> = found.iter().flatten().copied().collect();
    if !all.is_empty() {
        let set = uid_set(&all);
        session
            .run_command_and_check_ok(format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))
            .with_context(|| format!("UID STORE {set} \\Deleted in `{folder}`"))?;
        session
            .uid_expunge(&set)
            .with_context(|| format!("UID EXPUNGE {set} in `{folder}`"))?;
    }
    Ok(found)
}

/// Wait in IDLE up to `timeout`; true when the server reported a change.
pub fn idle(session: &mut Session, timeout: Duration) -> anyhow::Result<bool> {
    let handle = session.idle().context("IDLE")?;
    let outcome = handle.wait_with_timeout(timeout).context("IDLE")?;
    Ok(matches!(
        outcome,
        imap::extensions::idle::WaitOutcome::MailboxChanged
    ))
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_fold_runs_into_ranges() {
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[3, 1, 2, 5, 9, 8, 8]), "1:3,5,8:9");
        assert_eq!(uid_set(&[]), "");
    }
}
