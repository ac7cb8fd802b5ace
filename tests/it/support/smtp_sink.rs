//! Postfix's `smtp-sink` as the SMTP server rsvpd sends to: it accepts mail
//! on a free loopback port and dumps every transaction to a file
//! (`-d DIR/%Y%m%d%H/%M.`, one file per mail, written as user `nobody`), which
//! [`SmtpSink::messages`] parses back into envelope and message.
//!
//! Fault injection ([`SmtpSink::start_with_args`]), verified in
//! `tests/it/harness.rs` against lettre:
//!
//! | flag            | effect                                                         |
//! |-----------------|----------------------------------------------------------------|
//! | `-r CMD,...`    | answer CMD with the soft error `450 4.3.0 Error: command failed` |
//! | `-f CMD,...`    | answer CMD with the hard error `500 5.3.0 Error: command failed` |
//! | `-b "4xx text"` | replace the soft error reply (must start with 4 and 3 digits)  |
//! | `-B "5xx text"` | replace the hard error reply (must start with 5 and 3 digits)  |
//! | `-Q CMD,...`    | answer CMD with `421 4.0.0 Server closing connection`, hang up |
//! | `-q CMD,...`    | hang up without any reply after CMD                            |
//! | `-A SECS`       | SECS after the 354 to DATA: `550 This violates SMTP`, hang up; |
//! |                 | a client still writing the message may see a broken pipe first |
//! | `-w SECS`       | delay the reply to DATA (for timeouts; not exercised here)     |
//!
//! CMD is one of CONNECT, EHLO, HELO, MAIL, RCPT, DATA, `.` (end of data),
//! RSET, NOOP, QUIT. A mail refused at `.` (`-r .` / `-f .`) is still dumped,
//! because smtp-sink writes the file before it replies. `-R` (chroot) and
//! `-D` (shared dump file) are not fault flags; `-d`, `-D`, `-u`, `-R` and
//! `-S` are owned by the harness and refused.

use super::process::ServerProcess;
use super::{HOST, READY_TIMEOUT, find_binary, free_port, listening_socket_inode, wait_until};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

/// One mail transaction as smtp-sink recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMessage {
    /// Envelope sender without angle brackets (`""` for the null sender).
    pub mail_from: String,
    /// Envelope recipients without angle brackets, in RCPT order.
    pub rcpt_to: Vec<String>,
    /// The argument of the client's EHLO/HELO, if it sent one.
    pub helo: Option<String>,
    /// The message as received, dot-unstuffed. smtp-sink drops every CR, so
    /// lines end in LF here even though the client sent CRLF.
    pub raw: Vec<u8>,
    /// When smtp-sink finished writing it (the dump's modification time,
    /// about when it answered 250 to the data); the epoch if unknown.
    pub received: SystemTime,
}

impl SinkMessage {
    /// The message as text (lossy UTF-8), for assertions and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The first header `name` (case-insensitive), unfolded, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\n\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.lines() {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_string());
            }
        }
        value
    }
}

/// A running smtp-sink. See the module documentation.
pub struct SmtpSink {
    process: Option<ServerProcess>,
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    dump_dir: PathBuf,
    // Dropped after `Drop::drop` stopped the process.
    dir: TempDir,
}

impl SmtpSink {
    /// Starts smtp-sink on a free loopback port, accepting every mail.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with_args(&[])
    }

    /// Starts smtp-sink with extra options, e.g. `&["-r", "RCPT"]` to answer
    /// every RCPT with 450 (see the module documentation for the flags).
    /// Returns once the port listens; panics with smtp-sink's output if it
    /// exits or does not listen within 20 s.
    pub fn start_with_args(args: &[&str]) -> SmtpSink {
        check_args(args);
        let binary = find_binary("smtp-sink", "postfix");
        let dir = tempfile::Builder::new()
            .prefix("rsvpd-smtp-sink.")
            .tempdir()
            .unwrap_or_else(|e| panic!("smtp-sink: cannot create a temp dir: {e}"));
        let dump_dir = dir.path().join("dump");
        fs::create_dir(&dump_dir)
            .unwrap_or_else(|e| panic!("smtp-sink: cannot create {}: {e}", dump_dir.display()));
        // smtp-sink writes as user nobody: it must reach and write the dump dir.
        for (path, mode) in [(dir.path(), 0o755), (dump_dir.as_path(), 0o777)] {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("smtp-sink: cannot chmod {}: {e}", path.display()));
        }
        let mut sink = SmtpSink {
            process: None,
            binary,
            args: Vec::new(),
            port: 0,
            dump_dir,
            dir,
        };
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            match sink.spawn(free_port(), args) {
                Ok(()) => return sink,
                Err(failure) => {
                    let port_taken = failure.contains("Address already in use");
                    last_failure = failure;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("{last_failure}");
    }

    /// Replaces the running smtp-sink by one with other options on the same
    /// port, keeping the mails received so far: e.g. first `-r RCPT` (450),
    /// then `&[]` to test that a sender retries and gets through. Mail in
    /// transit at that moment is cut off.
    pub fn restart_with_args(&mut self, args: &[&str]) {
        check_args(args);
        if let Some(mut old) = self.process.take() {
            // Freeze it, note the dumps of transactions in progress, kill it,
            // and delete those partial dumps (a finished mail's dump is closed
            // before smtp-sink replies 250, so none of those is lost).
            // SAFETY: kill(2) on our own, not yet reaped child.
            unsafe { libc::kill(old.pid() as i32, libc::SIGSTOP) };
            let partial = open_files(old.pid());
            old.kill();
            for path in partial.iter().filter(|p| p.starts_with(&self.dump_dir)) {
                let _ = fs::remove_file(path);
            }
        }
        if let Err(failure) = self.spawn(self.port, args) {
            panic!("smtp-sink restart: {failure}");
        }
    }

    /// The options the running smtp-sink was given by the test.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    fn spawn(&mut self, port: u16, args: &[&str]) -> Result<(), String> {
        let template = format!("{}/%Y%m%d%H/%M.", self.dump_dir.display());
        let output_path = self.dir.path().join("smtp-sink.out");
        let mut command = Command::new(&self.binary);
        command
            .args(["-u", "nobody", "-d", &template])
            .args(args)
            .arg(format!("{HOST}:{port}"))
            .arg("100");
        let mut process = ServerProcess::spawn("smtp-sink", command, &output_path, self.dir.path());
        let deadline = Instant::now() + READY_TIMEOUT;
        let failure = loop {
            if let Some(status) = process.exit_status() {
                break format!("exited during start-up ({status})");
            }
            // Listening, and on a socket of this process, not a port thief's.
            if is_listening_by(process.pid(), port) {
                self.process = Some(process);
                self.port = port;
                self.args = args.iter().map(|a| a.to_string()).collect();
                return Ok(());
            }
            if Instant::now() >= deadline {
                break format!("did not listen within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = process.output();
        process.kill();
        Err(format!(
            "smtp-sink {args:?} on {HOST}:{port} {failure}; it printed: {output}"
        ))
    }

    /// The SMTP port on [`HOST`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every completed mail so far, oldest first (by the time smtp-sink
    /// finished writing it). Transactions still in progress are left out.
    pub fn messages(&self) -> Vec<SinkMessage> {
        // Order matters: list the dumps, then see which are still open.
        let mut dumps = Vec::new();
        collect_files(&self.dump_dir, &mut dumps);
        let open = open_files(self.pid());
        let mut complete: Vec<(SystemTime, PathBuf)> = dumps
            .into_iter()
            .filter(|path| !open.contains(path))
            .map(|path| {
                let modified = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (modified, path)
            })
            .collect();
        complete.sort();
        complete
            .iter()
            .filter_map(|(modified, path)| match fs::read(path) {
                Ok(bytes) => Some(SinkMessage {
                    received: *modified,
                    ..parse_dump(&bytes)
                        .unwrap_or_else(|e| panic!("smtp-sink dump {}: {e}", path.display()))
                }),
                // An aborted transaction: smtp-sink unlinks its dump, then
                // closes it (completed dumps are never removed).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("smtp-sink: cannot read dump {}: {e}", path.display()),
            })
            .collect()
    }

    /// [`SmtpSink::messages`] as the raw message bytes only.
    pub fn raw_messages(&self) -> Vec<Vec<u8>> {
        self.messages().into_iter().map(|m| m.raw).collect()
    }

    /// Polls every 25 ms until at least `n` mails arrived and returns all of
    /// them; panics on timeout, listing what did arrive and smtp-sink's output.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SinkMessage> {
        let mut seen = Vec::new();
        wait_until(
            timeout,
            &format!("{n} mail(s) at smtp-sink on {HOST}:{}", self.port),
            || {
                seen = self.messages();
                (seen.len() >= n).then(|| seen.clone())
            },
            || self.describe(&self.messages()),
        )
    }

    /// What smtp-sink printed so far (warnings, fatal errors).
    pub fn output(&self) -> String {
        std::fs::read(self.dir.path().join("smtp-sink.out"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The directory with the raw dump files.
    pub fn dump_dir(&self) -> &Path {
        &self.dump_dir
    }

    /// The sink's temp directory (dumps and smtp-sink's output).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The smtp-sink process id (also its process group).
    pub fn pid(&self) -> u32 {
        self.process
            .as_ref()
            .map(ServerProcess::pid)
            .unwrap_or_else(|| panic!("smtp-sink is not running"))
    }

    fn describe(&self, messages: &[SinkMessage]) -> String {
        let mut text = format!("smtp-sink has {} mail(s):\n", messages.len());
        for m in messages {
            text.push_str(&format!(
                "  from <{}> to {:?}, Subject: {:?}\n",
                m.mail_from,
                m.rcpt_to,
                m.header("Subject").unwrap_or_default()
            ));
        }
        text.push_str(&format!("smtp-sink output:\n{}", self.output()));
        text
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// Refuses the options the harness sets itself.
fn check_args(args: &[&str]) {
    for owned in ["-d", "-D", "-u", "-R", "-S"] {
        if args.iter().any(|a| a.starts_with(owned)) {
            panic!("SmtpSink: {owned} is set by the harness, not by tests");
        }
    }
}

/// Whether process `pid` holds a socket listening on `HOST:port`.
fn is_listening_by(pid: u32, port: u16) -> bool {
    let Some(inode) = listening_socket_inode(port) else {
        return false;
    };
    let socket = PathBuf::from(format!("socket:[{inode}]"));
    open_files(pid).contains(&socket)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => panic!("smtp-sink: cannot list {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Files the process `pid` has open (smtp-sink keeps a dump open until the
/// transaction ends, and deletes it if the transaction is aborted).
fn open_files(pid: u32) -> BTreeSet<PathBuf> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .collect()
}

/// Splits a dump file into the envelope records smtp-sink writes first
/// (`X-Client-Addr`, `X-Client-Proto`, `X-Helo-Args`, `X-Mail-Args`,
/// `X-Rcpt-Args`, a 3-line `Received:`) and the message, which is followed by
/// one empty line of its own.
pub fn parse_dump(bytes: &[u8]) -> Result<SinkMessage, String> {
    let mut rest = bytes;
    let mut mail_args = None;
    let mut rcpt_to = Vec::new();
    let mut helo = None;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("no Received: line from smtp-sink")?;
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        let (record, value) = line.split_once(": ").unwrap_or((line.as_str(), ""));
        match record {
            "X-Mail-Args" => mail_args = Some(value.to_string()),
            "X-Rcpt-Args" => rcpt_to.push(envelope_address(value)),
            "X-Helo-Args" => helo = Some(value.to_string()),
            "X-Client-Addr" | "X-Client-Proto" => {}
            "Received" => {
                // Two continuation lines: "\tby HOST (smtp-sink) ..." and the date.
                for _ in 0..2 {
                    if !rest.starts_with(b"\t") {
                        return Err("short Received: record from smtp-sink".into());
                    }
                    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    rest = &rest[(end + 1).min(rest.len())..];
                }
                break;
            }
            _ => return Err(format!("unexpected smtp-sink record {line:?}")),
        }
    }
    let mail_args = mail_args.ok_or("no X-Mail-Args record")?;
    let raw = rest.strip_suffix(b"\n").unwrap_or(rest).to_vec();
    Ok(SinkMessage {
        mail_from: envelope_address(&mail_args),
        rcpt_to,
        helo,
        raw,
        received: SystemTime::UNIX_EPOCH,
    })
}

/// `<a@b> SIZE=12` → `a@b`.
fn envelope_address(args: &str) -> String {
    let first = args.split_whitespace().next().unwrap_or("");
    first
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(first)
        .to_string()
}
