//! A private Dovecot 2.3 for one test: IMAP on 127.0.0.1 (plain, STARTTLS
//! available), IMAPS with a certificate from a CA generated at start, and LMTP
//! over TCP to deliver mail, all on free loopback ports; Maildir storage
//! (folder separator ".", so `rsvpd.processed` is a subfolder of `rsvpd`)
//! under a temporary directory that disappears with the handle.
//!
//! Any user name logs in with [`Dovecot::password`]; LMTP delivers to any
//! address. User names are full addresses, lower-cased, with a `+detail`
//! stripped on delivery: mail to `Anmeldung+miko2018@example.org` lands in the
//! INBOX of user `anmeldung@example.org`. Dovecot runs in the foreground
//! (`dovecot -F -c CONF`) as a child of the test and is stopped on drop.
//!
//! Config facts (Dovecot 2.3.19, run as root): `default_login_user =
//! dovenull`, `default_internal_user = dovecot`, mail stored as user `mail`
//! (uid 8, hence `first_valid_uid = 1`), `passdb static` with one password,
//! `userdb static` so LMTP accepts every recipient, `base_dir`, `state_dir`
//! and `log_path` inside the temp dir so instances never meet each other or
//! a system Dovecot, `disable_plaintext_auth = no` for plain IMAP on loopback.

use super::process::ServerProcess;
use super::{HOST, READY_TIMEOUT, find_binary, free_ports, smtp_data, system_user, wait_until};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The one password every user has.
const PASSWORD: &str = "rsvpd-test-password";
/// Envelope sender used by [`Dovecot::deliver`].
pub const DEFAULT_MAIL_FROM: &str = "harness@localhost";
/// Socket timeout of the helper clients, so a hung server fails the test.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One message as [`Dovecot::list_folder`] returns it: UID, flags, raw bytes.
pub type FolderMessage = (u32, Vec<String>, Vec<u8>);

/// A running private Dovecot. See the module documentation.
pub struct Dovecot {
    process: Option<ServerProcess>,
    binary: PathBuf,
    imap_port: u16,
    imaps_port: u16,
    lmtp_port: u16,
    /// Extra lines appended to the generated config (see `start_with`).
    extra_config: String,
    // Dropped last (fields drop in order, after `Drop::drop` stopped Dovecot).
    dir: TempDir,
}

impl Dovecot {
    /// Starts a fresh instance and returns once IMAP, IMAPS and LMTP accept
    /// connections (IMAP and LMTP have sent their greeting). Panics with
    /// Dovecot's log and output if it does not come up within 20 s.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Like [`Dovecot::start`], with `extra_config` appended to the generated
    /// configuration, e.g. `imap_capability = IMAP4rev1 IDLE` for a server
    /// without MOVE and UIDPLUS.
    pub fn start_with(extra_config: &str) -> Dovecot {
        let binary = find_binary("dovecot", "dovecot-imapd dovecot-lmtpd");
        check_version(&binary);
        let dir = tempfile::Builder::new()
            .prefix("rsvpd-dovecot.")
            .tempdir()
            .unwrap_or_else(|e| panic!("Dovecot: cannot create a temp dir: {e}"));
        // Dovecot's unprivileged processes (mail, dovenull) must traverse it.
        set_mode(dir.path(), 0o755);
        write_certificates(dir.path());
        let mail_root = dir.path().join("mail");
        fs::create_dir(&mail_root)
            .unwrap_or_else(|e| panic!("Dovecot: cannot create {}: {e}", mail_root.display()));
        let (uid, gid) = system_user("mail");
        std::os::unix::fs::chown(&mail_root, Some(uid), Some(gid)).unwrap_or_else(|e| {
            panic!("Dovecot: cannot chown {} to mail: {e}", mail_root.display())
        });

        let mut dovecot = Dovecot {
            process: None,
            binary,
            imap_port: 0,
            imaps_port: 0,
            lmtp_port: 0,
            extra_config: extra_config.to_string(),
            dir,
        };
        // A port can be taken by someone else between free_port and Dovecot's
        // bind; then try again with new ports.
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            [dovecot.imap_port, dovecot.imaps_port, dovecot.lmtp_port] = free_ports::<3>();
            dovecot.write_config();
            match dovecot.spawn_and_wait() {
                Ok(()) => return dovecot,
                Err(failure) if failure.contains("Address already in use") => {
                    dovecot.kill();
                    last_failure = failure;
                }
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}\n(gave up after 3 attempts with fresh ports)");
    }

    /// Port of plain IMAP (STARTTLS offered, plaintext login allowed).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// Port of IMAP over implicit TLS; trust [`Dovecot::ca_cert_path`].
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// Port of LMTP (what [`Dovecot::deliver`] talks to).
    pub fn lmtp_port(&self) -> u16 {
        self.lmtp_port
    }

    /// The password of every user.
    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// PEM file of the CA that signed the server certificate. The server
    /// certificate names `localhost` and `127.0.0.1` and is valid from
    /// 2000-01-01 to 2099-12-31, so it also verifies under `faketime`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// PEM file of the server certificate itself (leaf only).
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The Maildir of `user` (for a Maildir mailbox source): INBOX is the
    /// directory itself, folder `a.b` is its subdirectory `.a.b`. Files in it
    /// belong to user `mail`. It exists once the user got mail or logged in.
    pub fn maildir_path(&self, user: &str) -> PathBuf {
        self.dir
            .path()
            .join("mail")
            .join(user.to_lowercase())
            .join("Maildir")
    }

    /// The instance's temp directory (config, certificates, logs, mail).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log so far (the log file, then the process output).
    pub fn log(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default();
        let output = self
            .process
            .as_ref()
            .map(ServerProcess::output)
            .unwrap_or_default();
        format!("--- dovecot.log ---\n{log}--- dovecot stdout/stderr ---\n{output}")
    }

    /// The Dovecot master's process id (also its process group), if started.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| p.exit_status().is_none())
    }

    /// Delivers `raw` (any line endings; dot-stuffed here) to `rcpt` over
    /// LMTP with envelope sender [`DEFAULT_MAIL_FROM`]. Panics with the
    /// server's reply if any step is refused.
    pub fn deliver(&self, rcpt: &str, raw: &[u8]) {
        self.deliver_from(DEFAULT_MAIL_FROM, rcpt, raw);
    }

    /// Like [`Dovecot::deliver`] with an explicit envelope sender, which
    /// Dovecot records as `Return-Path:`; `""` gives the null sender `<>` of
    /// bounces.
    pub fn deliver_from(&self, mail_from: &str, rcpt: &str, raw: &[u8]) {
        self.deliver_all_from(mail_from, rcpt, [raw]);
    }

    /// Like [`Dovecot::deliver`] for many mails, in one LMTP session (a
    /// backlog of hundreds arrives in a fraction of the time).
    pub fn deliver_all<'a>(&self, rcpt: &str, raws: impl IntoIterator<Item = &'a [u8]>) {
        self.deliver_all_from(DEFAULT_MAIL_FROM, rcpt, raws);
    }

    fn deliver_all_from<'a>(
        &self,
        mail_from: &str,
        rcpt: &str,
        raws: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let mut lmtp = Lmtp::connect(self.lmtp_port);
        lmtp.expect("greeting", 220);
        lmtp.command("LHLO localhost", 250);
        for raw in raws {
            lmtp.command(&format!("MAIL FROM:<{mail_from}>"), 250);
            lmtp.command(&format!("RCPT TO:<{rcpt}>"), 250);
            lmtp.command("DATA", 354);
            lmtp.send(&smtp_data(raw));
            // LMTP answers once per recipient; we sent one.
            lmtp.expect(&format!("end of DATA for <{rcpt}>"), 250);
        }
        lmtp.command("QUIT", 221);
    }

    /// Every message in `folder` of `user` as (UID, flags, raw message),
    /// ordered by UID, read over plain IMAP with EXAMINE and BODY.PEEK[] so
    /// nothing is changed. Flags are as IMAP spells them (`\Seen`,
    /// `$Keyword`); the session flag `\Recent` is left out. Panics with the
    /// server's answer if the login or the folder fails (e.g. no such folder).
    pub fn list_folder(&self, user: &str, folder: &str) -> Vec<FolderMessage> {
        self.try_list_folder(user, folder)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Dovecot::list_folder`] that returns the server's refusal (e.g. of a
    /// folder that does not exist yet) instead of panicking. Panics only if
    /// Dovecot cannot be reached or refuses the login.
    pub fn try_list_folder(&self, user: &str, folder: &str) -> Result<Vec<FolderMessage>, String> {
        let mut session = self.imap_session(user);
        let result = list_session_folder(&mut session, user, folder);
        let _ = session.logout();
        result
    }

    /// Polls [`Dovecot::try_list_folder`] every 25 ms until `folder` of
    /// `user` exists and holds at least `n` messages (`n = 0` waits for the
    /// folder to be created) and returns them; panics on timeout with what it
    /// saw last and Dovecot's log.
    pub fn wait_for_folder(
        &self,
        user: &str,
        folder: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<FolderMessage> {
        let last = std::cell::RefCell::new(String::from("nothing yet"));
        wait_until(
            timeout,
            &format!("{n} message(s) in {folder:?} of {user:?} at Dovecot"),
            || match self.try_list_folder(user, folder) {
                Ok(messages) if messages.len() >= n => Some(messages),
                Ok(messages) => {
                    let uids: Vec<u32> = messages.iter().map(|m| m.0).collect();
                    *last.borrow_mut() = format!("{} message(s), UIDs {uids:?}", messages.len());
                    None
                }
                Err(e) => {
                    *last.borrow_mut() = e;
                    None
                }
            },
            || format!("last seen: {}\n{}", last.borrow(), self.log()),
        )
    }

    /// Names of all folders of `user` (e.g. `INBOX`, `rsvpd.processed`).
    pub fn folders(&self, user: &str) -> Vec<String> {
        let mut session = self.imap_session(user);
        let names = session
            .list(Some(""), Some("*"))
            .unwrap_or_else(|e| panic!("Dovecot IMAP: LIST as {user:?} failed: {e}"));
        let mut folders: Vec<String> = names.iter().map(|n| n.name().to_string()).collect();
        folders.sort();
        let _ = session.logout();
        folders
    }

    /// Creates `folder` (e.g. `rsvpd.processed`) for `user`.
    pub fn create_folder(&self, user: &str, folder: &str) {
        let mut session = self.imap_session(user);
        session
            .create(folder)
            .unwrap_or_else(|e| panic!("Dovecot IMAP: CREATE {folder:?} as {user:?} failed: {e}"));
        let _ = session.logout();
    }

    /// A logged-in IMAP session of `user` over plain TCP.
    pub fn imap_session(&self, user: &str) -> imap::Session<TcpStream> {
        let stream = connect(self.imap_port, "Dovecot IMAP");
        let mut client = imap::Client::new(stream);
        client.read_greeting().unwrap_or_else(|e| {
            panic!(
                "Dovecot IMAP: no greeting on {HOST}:{}: {e}",
                self.imap_port
            )
        });
        client
            .login(user, PASSWORD)
            .unwrap_or_else(|(e, _)| panic!("Dovecot IMAP: LOGIN as {user:?} failed: {e}"))
    }

    /// Stops Dovecot and starts it again on the same ports with the same
    /// config and mail; returns once it is ready again.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(failure) = self.spawn_and_wait() {
            panic!("Dovecot restart failed: {failure}");
        }
    }

    /// Stops Dovecot (SIGTERM, then SIGKILL after 10 s) and reaps it. The
    /// mail stays; [`Dovecot::restart`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
            // Keep the final output readable through `log()`.
            self.process = Some(process);
        }
    }

    /// Kills Dovecot at once (SIGKILL to all its processes), like a crash.
    /// [`Dovecot::restart`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
            self.process = Some(process);
        }
    }

    /// Run `doveadm ARGS` against this instance (as the mail server's admin
    /// would, e.g. `mailbox cache purge`); panics with its output on failure.
    pub fn doveadm(&self, args: &[&str]) -> String {
        let doveadm = find_binary("doveadm", "dovecot-core");
        let out = Command::new(doveadm)
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run doveadm: {e}"));
        assert!(
            out.status.success(),
            "doveadm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        // After a kill the old master.pid is left; if its pid has been reused
        // meanwhile, Dovecot would refuse to start ("already running").
        let _ = fs::remove_file(self.dir.path().join("run/master.pid"));
        let mut command = Command::new(&self.binary);
        command.arg("-F").arg("-c").arg(self.config_path());
        let output_path = self.dir.path().join("dovecot.out");
        self.process = Some(ServerProcess::spawn(
            "Dovecot",
            command,
            &output_path,
            self.dir.path(),
        ));
        let (imap, lmtp, imaps) = (self.imap_port, self.lmtp_port, self.imaps_port);
        let mut exited = None;
        let ready = wait_until_or_exit(|| {
            if let Some(status) = self.process.as_mut().and_then(|p| p.exit_status()) {
                exited = Some(status);
                return Some(false);
            }
            let up = greets(imap, b"* OK") && greets(lmtp, b"220") && accepts(imaps);
            up.then_some(true)
        });
        match (ready, exited) {
            (Some(true), _) => Ok(()),
            (_, Some(status)) => Err(format!(
                "Dovecot exited during start-up ({status}); config {}\n{}",
                self.config_path().display(),
                self.log()
            )),
            _ => Err(format!(
                "Dovecot did not accept connections on {HOST}:{imap} (IMAP), \
                 {HOST}:{imaps} (IMAPS) and {HOST}:{lmtp} (LMTP) within {READY_TIMEOUT:?}\n{}",
                self.log()
            )),
        }
    }

    fn write_config(&self) {
        let d = self.dir.path().display();
        let instance = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().replace('.', "-"))
            .unwrap_or_else(|| "rsvpd-dovecot".into());
        let config = format!(
            r#"# Written by rsvpd's test harness for Dovecot 2.3.
instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap lmtp
listen = {HOST}
shutdown_clients = yes

default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_uid = mail
mail_gid = mail
mail_location = maildir:{d}/mail/%u/Maildir

ssl = yes
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login

passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}

namespace inbox {{
  inbox = yes
  separator = .
}}

protocol imap {{
  mail_max_userip_connections = 100
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {imap}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {lmtp}
  }}
}}
{extra}
"#,
            extra = self.extra_config,
            imap = self.imap_port,
            imaps = self.imaps_port,
            lmtp = self.lmtp_port,
        );
        fs::write(self.config_path(), config).unwrap_or_else(|e| {
            panic!(
                "Dovecot: cannot write {}: {e}",
                self.config_path().display()
            )
        });
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGKILL, no graceful shutdown: the mail is deleted anyway, and
        // Dovecot's master takes about a second to exit after SIGTERM.
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

fn list_session_folder(
    session: &mut imap::Session<TcpStream>,
    user: &str,
    folder: &str,
) -> Result<Vec<FolderMessage>, String> {
    let mailbox = session
        .examine(folder)
        .map_err(|e| format!("Dovecot IMAP: EXAMINE {folder:?} as {user:?} failed: {e}"))?;
    let mut messages = Vec::new();
    if mailbox.exists > 0 {
        let fetches = session
            .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])")
            .map_err(|e| {
                format!("Dovecot IMAP: UID FETCH in {folder:?} as {user:?} failed: {e}")
            })?;
        for fetch in fetches.iter() {
            let uid = fetch
                .uid
                .ok_or_else(|| format!("Dovecot IMAP: FETCH response without UID in {folder:?}"))?;
            let flags = fetch
                .flags()
                .iter()
                .filter(|f| **f != imap::types::Flag::Recent)
                .map(|f| f.to_string())
                .collect();
            let raw = fetch
                .body()
                .ok_or_else(|| {
                    format!("Dovecot IMAP: FETCH of UID {uid} in {folder:?} without body")
                })?
                .to_vec();
            messages.push((uid, flags, raw));
        }
    }
    messages.sort_by_key(|(uid, _, _)| *uid);
    Ok(messages)
}

/// Polls `probe` like [`wait_until`] but returns `None` on timeout instead of
/// panicking, so the caller can add the server's log to its message.
fn wait_until_or_exit<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Panics unless the installed Dovecot is 2.3.x, the version this config is
/// written for (Debian bookworm ships 2.3.19; 2.4 changed the config syntax).
fn check_version(binary: &Path) {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{} --version`: {e}", binary.display()));
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !version.starts_with("2.3.") {
        panic!(
            "Dovecot {version:?} is installed, but the test harness writes a Dovecot 2.3 \
             config (Debian bookworm): update tests/it/support/dovecot.rs for it"
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {:o} {}: {e}", mode, path.display()));
}

/// Writes ca.pem (a throw-away CA), server.pem and server.key (signed by it,
/// for `localhost` and `127.0.0.1`) into `dir`.
fn write_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
    };
    let fail = |what: &str, e: rcgen::Error| -> ! { panic!("cannot generate the {what}: {e}") };

    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail("CA parameters", e));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rsvpd test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = date_time_ymd(2000, 1, 1);
    ca_params.not_after = date_time_ymd(2099, 12, 31);
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail("CA key", e));
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .unwrap_or_else(|e| fail("CA certificate", e));

    let mut params = CertificateParams::new(vec!["localhost".to_string(), HOST.to_string()])
        .unwrap_or_else(|e| fail("server certificate parameters", e));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
    let key = KeyPair::generate().unwrap_or_else(|e| fail("server key", e));
    let cert = params
        .signed_by(&key, &ca)
        .unwrap_or_else(|e| fail("server certificate", e));

    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("server.pem", cert.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        let path = dir.join(name);
        fs::write(&path, pem).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
    set_mode(&dir.join("server.key"), 0o600);
}

fn connect(port: u16, server: &str) -> TcpStream {
    let stream = TcpStream::connect((HOST, port))
        .unwrap_or_else(|e| panic!("{server}: cannot connect to {HOST}:{port}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .unwrap_or_else(|e| panic!("{server}: cannot set socket timeouts: {e}"));
    stream
}

/// Whether `port` accepts a TCP connection.
fn accepts(port: u16) -> bool {
    TcpStream::connect((HOST, port)).is_ok()
}

/// Whether `port` accepts a connection and greets with `prefix`.
fn greets(port: u16, prefix: &[u8]) -> bool {
    let Ok(stream) = TcpStream::connect((HOST, port)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut line = Vec::new();
    let read = BufReader::new(stream).read_until(b'\n', &mut line);
    read.is_ok() && line.starts_with(prefix)
}

/// A minimal LMTP client that panics with the server's reply on refusal.
struct Lmtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    port: u16,
}

impl Lmtp {
    fn connect(port: u16) -> Lmtp {
        let stream = connect(port, "Dovecot LMTP");
        let writer = stream
            .try_clone()
            .unwrap_or_else(|e| panic!("Dovecot LMTP: cannot clone the socket: {e}"));
        Lmtp {
            reader: BufReader::new(stream),
            writer,
            port,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("Dovecot LMTP on {HOST}:{}: write failed: {e}", self.port));
    }

    fn command(&mut self, line: &str, code: u16) {
        self.send(format!("{line}\r\n").as_bytes());
        self.expect(line, code);
    }

    /// Reads one (possibly multi-line) reply and panics unless it has `code`.
    fn expect(&mut self, after: &str, code: u16) {
        let mut reply = String::new();
        loop {
            let mut line = Vec::new();
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => panic!(
                    "Dovecot LMTP on {HOST}:{} closed the connection after {after}; it said: {reply:?}",
                    self.port
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "Dovecot LMTP on {HOST}:{}: reading the reply to {after} failed: {e}; it said: {reply:?}",
                    self.port
                ),
            }
            let line = String::from_utf8_lossy(&line);
            reply.push_str(&line);
            let last = line.as_bytes().get(3).is_none_or(|&b| b != b'-');
            if last {
                break;
            }
        }
        let got: Option<u16> = reply.get(..3).and_then(|c| c.parse().ok());
        if got != Some(code) {
            panic!(
                "Dovecot LMTP on {HOST}:{} refused {after}: expected {code}, it replied {:?}",
                self.port,
                reply.trim_end()
            );
        }
    }
}
