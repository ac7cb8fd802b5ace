//! Tests of the test harness itself: the private Dovecot delivers, lists,
//! speaks TLS with its generated certificate, survives a restart and leaves
//! no process behind; smtp-sink records what lettre sends and fails on
//! command with the replies its fault flags promise.

use crate::support::process::group_members;
use crate::support::{Dovecot, HOST, SinkMessage, SmtpSink, find_binary, is_listening, smtp_data};
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn registration(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Ayşe Yılmaz <{from}>\r\n\
         To: anmeldung@example.org\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{subject}@harness.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hiermit melde ich mich an.\r\n\
         .a line that starts with a dot\r\n\
         Grüße\r\n"
    )
    .into_bytes()
}

fn text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[test]
fn dovecot_delivers_to_the_inbox_of_each_user() {
    let dovecot = Dovecot::start();
    dovecot.deliver(
        "anmeldung@example.org",
        &registration("ayse@example.net", "one"),
    );
    dovecot.deliver(
        "Info+miko2018@example.org",
        &registration("jan@example.net", "two"),
    );
    dovecot.deliver(
        "anmeldung@example.org",
        &registration("kofi@example.net", "three"),
    );

    let inbox = dovecot.list_folder("anmeldung@example.org", "INBOX");
    assert_eq!(inbox.len(), 2, "{}", dovecot.log());
    let uids: Vec<u32> = inbox.iter().map(|(uid, _, _)| *uid).collect();
    assert_eq!(uids, [1, 2]);
    let first = text(&inbox[0].2);
    assert!(first.contains("Subject: one\r\n"), "{first}");
    assert!(
        first.contains("\r\n.a line that starts with a dot\r\n"),
        "{first}"
    );
    assert!(
        first.contains("Return-Path: <harness@localhost>"),
        "{first}"
    );
    assert!(first.contains("Grüße"), "{first}");
    assert!(
        inbox[0].1.is_empty(),
        "fresh mail has no flags: {:?}",
        inbox[0].1
    );
    assert!(text(&inbox[1].2).contains("Subject: three\r\n"));

    // "+detail" is stripped and the name lower-cased on delivery.
    let info = dovecot.list_folder("info@example.org", "INBOX");
    assert_eq!(info.len(), 1, "{}", dovecot.log());
    assert!(text(&info[0].2).contains("Subject: two\r\n"));
    assert!(text(&info[0].2).contains("Delivered-To: Info+miko2018@example.org"));

    // The Maildir is where maildir_path says, INBOX mail in new/.
    let new = dovecot.maildir_path("anmeldung@example.org").join("new");
    let files = std::fs::read_dir(&new)
        .unwrap_or_else(|e| panic!("{}: {e}", new.display()))
        .count();
    assert_eq!(files, 2);
}

#[test]
fn dovecot_folders_use_dot_separator_and_flags_are_listed() {
    let dovecot = Dovecot::start();
    let user = "anmeldung@example.org";
    dovecot.deliver_from(
        "",
        user,
        &registration("mailer-daemon@example.net", "bounce"),
    );
    dovecot.create_folder(user, "rsvpd.processed");
    assert_eq!(dovecot.folders(user), ["INBOX", "rsvpd", "rsvpd.processed"]);
    assert!(dovecot.list_folder(user, "rsvpd.processed").is_empty());
    let processed = dovecot.maildir_path(user).join(".rsvpd.processed");
    assert!(processed.is_dir(), "{} missing", processed.display());

    // Flag and copy the mail the way the daemon will, then look.
    // imap 2.4.1 cannot parse the untagged "OK [PERMANENTFLAGS (...)]" that
    // Dovecot sends when a STORE creates a new keyword, so `uid_store` fails
    // on a new keyword (Error::Parse(Unexpected(..))); send it unparsed.
    let mut session = dovecot.imap_session(user);
    session.select("INBOX").expect("Dovecot IMAP: SELECT INBOX");
    session
        .run_command_and_check_ok("UID STORE 1 +FLAGS.SILENT (\\Seen $rsvpd-done)")
        .expect("Dovecot IMAP: UID STORE");
    session
        .uid_copy("1", "rsvpd.processed")
        .expect("Dovecot IMAP: UID COPY");
    session.logout().expect("Dovecot IMAP: LOGOUT");

    let inbox = dovecot.list_folder(user, "INBOX");
    assert_eq!(inbox[0].1, ["\\Seen", "$rsvpd-done"]);
    assert!(text(&inbox[0].2).starts_with("Return-Path: <>\r\n"));
    let moved = dovecot.list_folder(user, "rsvpd.processed");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].2, inbox[0].2);
}

#[test]
fn dovecot_wait_for_folder_sees_mail_that_arrives_later() {
    let dovecot = Dovecot::start();
    let user = "anmeldung@example.org";
    let seen = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            dovecot.create_folder(user, "rsvpd.review");
            dovecot.deliver(user, &registration("ayse@example.net", "late"));
        });
        // The folder does not exist at first: n = 0 waits for its creation.
        dovecot.wait_for_folder(user, "rsvpd.review", 0, WAIT);
        dovecot.wait_for_folder(user, "INBOX", 1, WAIT)
    });
    assert!(text(&seen[0].2).contains("Subject: late\r\n"));
    assert!(
        dovecot
            .try_list_folder(user, "no.such.folder")
            .is_err_and(|e| e.contains("Mailbox doesn't exist")),
    );
}

#[test]
#[should_panic(expected = "EXAMINE \"no.such.folder\"")]
fn dovecot_list_folder_of_a_missing_folder_panics_with_the_server_reply() {
    let dovecot = Dovecot::start();
    dovecot.list_folder("someone@example.org", "no.such.folder");
}

fn tls_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls: default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Connects to IMAPS, verifies the certificate for `name` and returns the
/// IMAP greeting, or the TLS error.
fn imaps_greeting(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<String, std::io::Error> {
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string())
        .unwrap_or_else(|e| panic!("bad server name {name}: {e}"));
    let connection = rustls::ClientConnection::new(config, server_name)
        .unwrap_or_else(|e| panic!("rustls client: {e}"));
    let socket = TcpStream::connect((HOST, port))?;
    socket.set_read_timeout(Some(WAIT))?;
    let mut tls = BufReader::new(rustls::StreamOwned::new(connection, socket));
    let mut greeting = String::new();
    tls.read_line(&mut greeting)?;
    Ok(greeting)
}

#[test]
fn dovecot_imaps_presents_a_certificate_signed_by_the_generated_ca() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let dovecot = Dovecot::start();
    let ca = CertificateDer::from_pem_file(dovecot.ca_cert_path())
        .unwrap_or_else(|e| panic!("{}: {e}", dovecot.ca_cert_path().display()));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("rustls accepts the generated CA");
    let trusted = tls_config(roots);

    for name in ["localhost", "127.0.0.1"] {
        let greeting = imaps_greeting(dovecot.imaps_port(), trusted.clone(), name)
            .unwrap_or_else(|e| panic!("IMAPS as {name}: {e}\n{}", dovecot.log()));
        assert!(greeting.starts_with("* OK"), "IMAPS greeting: {greeting:?}");
    }

    // Without the CA the same handshake must fail: the check above is real.
    let untrusted = tls_config(rustls::RootCertStore::empty());
    let error = imaps_greeting(dovecot.imaps_port(), untrusted, "localhost")
        .expect_err("IMAPS handshake without the CA succeeded");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    // And a name the certificate does not carry fails too.
    let error = imaps_greeting(dovecot.imaps_port(), trusted, "imap.example.org")
        .expect_err("IMAPS handshake for a wrong name succeeded");
    assert!(error.to_string().contains("not valid for name"), "{error}");
}

#[test]
fn dovecot_restart_keeps_ports_and_mail() {
    let mut dovecot = Dovecot::start();
    let user = "anmeldung@example.org";
    let ports = (
        dovecot.imap_port(),
        dovecot.imaps_port(),
        dovecot.lmtp_port(),
    );
    dovecot.deliver(user, &registration("ayse@example.net", "before"));
    let before = dovecot.list_folder(user, "INBOX");
    let old_pid = dovecot.pid();

    dovecot.restart();
    assert_ne!(dovecot.pid(), old_pid, "restart must start a new process");
    assert_eq!(
        ports,
        (
            dovecot.imap_port(),
            dovecot.imaps_port(),
            dovecot.lmtp_port()
        )
    );
    assert_eq!(dovecot.list_folder(user, "INBOX"), before);
    dovecot.deliver(user, &registration("ayse@example.net", "after"));
    let after = dovecot.list_folder(user, "INBOX");
    assert_eq!(after.len(), 2);
    assert_eq!(after[1].0, 2, "UIDs continue after a restart");

    dovecot.stop();
    assert!(!dovecot.is_running());
    assert!(
        !is_listening(dovecot.imap_port()),
        "IMAP still listens after stop()"
    );
    dovecot.restart();
    assert_eq!(dovecot.list_folder(user, "INBOX").len(), 2);

    // A crash (SIGKILL to every Dovecot process) and a restart keep the mail too.
    dovecot.kill();
    assert!(!dovecot.is_running());
    dovecot.restart();
    assert_eq!(dovecot.list_folder(user, "INBOX").len(), 2);
}

#[test]
fn dropping_the_servers_leaves_no_process() {
    let dovecot = Dovecot::start();
    dovecot.deliver("a@example.org", b"Subject: x\r\n\r\nx\r\n");
    let group = dovecot.pid().expect("Dovecot has a pid");
    // master, its workers and the watchdog
    assert!(
        group_members(group).len() >= 3,
        "{:?}",
        group_members(group)
    );
    let dir = dovecot.dir().to_path_buf();
    drop(dovecot);
    assert_eq!(
        group_members(group),
        Vec::<u32>::new(),
        "Dovecot left processes"
    );
    assert!(!dir.exists(), "Dovecot's temp dir was not removed");

    let sink = SmtpSink::start();
    let group = sink.pid();
    assert_eq!(group_members(group).len(), 2, "smtp-sink and its watchdog");
    drop(sink);
    assert_eq!(
        group_members(group),
        Vec::<u32>::new(),
        "smtp-sink left processes"
    );
}

#[test]
fn a_panicking_test_still_stops_its_servers() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let sink = SmtpSink::start();
        sender.send(sink.pid()).expect("send pid");
        panic!("deliberate panic with a running smtp-sink");
    })
    .join();
    assert!(result.is_err());
    let group = receiver.recv().expect("pid of the sink");
    assert_eq!(group_members(group), Vec::<u32>::new());
}

fn mailbox(address: &str) -> Mailbox {
    address
        .parse()
        .unwrap_or_else(|e| panic!("bad address {address}: {e}"))
}

fn send(port: u16, to: &[&str]) -> Result<(), lettre::transport::smtp::Error> {
    let mut builder = Message::builder()
        .from(mailbox("rsvpd@example.org"))
        .subject("Anmeldebestätigung")
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(mailbox(address));
    }
    let message = builder
        .body("Danke für Ihre Anmeldung.\r\n.dot first\r\n".to_string())
        .expect("lettre builds the message");
    let transport = SmtpTransport::builder_dangerous(HOST)
        .port(port)
        .timeout(Some(WAIT))
        .build();
    transport.send(&message).map(|_| ())
}

#[test]
fn smtp_sink_records_what_lettre_sends() {
    let sink = SmtpSink::start();
    assert!(sink.messages().is_empty());
    send(sink.port(), &["ayse@example.net", "jan@example.net"])
        .unwrap_or_else(|e| panic!("sending to smtp-sink failed: {e}\n{}", sink.output()));
    send(sink.port(), &["kofi@example.net"])
        .unwrap_or_else(|e| panic!("sending to smtp-sink failed: {e}\n{}", sink.output()));

    let messages = sink.wait_for(2, WAIT);
    assert_eq!(messages.len(), 2);
    let first: &SinkMessage = &messages[0];
    assert_eq!(first.mail_from, "rsvpd@example.org");
    assert_eq!(first.rcpt_to, ["ayse@example.net", "jan@example.net"]);
    assert!(first.helo.is_some());
    assert_eq!(
        first.header("To").as_deref(),
        Some("ayse@example.net, jan@example.net")
    );
    assert!(first.header("Subject").is_some());
    assert!(!first.raw.contains(&b'\r'), "smtp-sink strips CR");
    assert!(first.text().contains("\n.dot first\n"), "{}", first.text());
    assert!(!first.text().contains("X-Rcpt-Args"), "{}", first.text());
    assert!(first.text().starts_with("From: "), "{}", first.text());
    assert_eq!(messages[1].rcpt_to, ["kofi@example.net"]);
}

#[test]
#[should_panic(expected = "timed out after 200ms waiting for 1 mail(s)")]
fn smtp_sink_wait_for_panics_with_what_it_saw() {
    let sink = SmtpSink::start();
    sink.wait_for(1, Duration::from_millis(200));
}

/// What a send to a sink started with `args` must do.
enum Expect {
    /// An SMTP error reply with this code and this transient/permanent class.
    Reply(&'static str, bool),
    /// A dropped connection (no reply at all).
    Dropped,
    /// `-A`: the 550 races with the client writing the message, which may
    /// fail with a broken pipe before it reads the reply.
    ReplyOrDropped(&'static str),
}

#[test]
fn smtp_sink_fault_flags_make_sends_fail_as_documented() {
    let cases: &[(&[&str], Expect, usize)] = &[
        (&["-r", "RCPT"], Expect::Reply("450", true), 0),
        (&["-f", "RCPT"], Expect::Reply("500", false), 0),
        (
            &["-f", "RCPT", "-B", "550 5.1.1 User unknown"],
            Expect::Reply("550", false),
            0,
        ),
        (
            &["-r", "MAIL", "-b", "451 4.3.2 Try again later"],
            Expect::Reply("451", true),
            0,
        ),
        (&["-Q", "MAIL"], Expect::Reply("421", true), 0),
        (&["-r", "DATA"], Expect::Reply("450", true), 0),
        // Refused at end of data, but smtp-sink has already dumped the mail.
        (&["-f", "."], Expect::Reply("500", false), 1),
        (&["-r", "."], Expect::Reply("450", true), 1),
        (&["-A", "0"], Expect::ReplyOrDropped("550"), 0),
        (&["-q", "DATA"], Expect::Dropped, 0),
    ];
    for (args, expect, dumped) in cases {
        let sink = SmtpSink::start_with_args(args);
        let error = match send(sink.port(), &["ayse@example.net"]) {
            Ok(()) => panic!("smtp-sink {args:?}: the send succeeded"),
            Err(error) => error,
        };
        match expect {
            Expect::Reply(code, transient) => {
                let status = error.status().map(|c| c.to_string());
                assert_eq!(status.as_deref(), Some(*code), "{args:?}: {error}");
                assert_eq!(error.is_transient(), *transient, "{args:?}: {error}");
                assert_eq!(error.is_permanent(), !*transient, "{args:?}: {error}");
            }
            Expect::Dropped => {
                assert_eq!(error.status(), None, "{args:?}: {error}");
                assert!(!error.is_transient() && !error.is_permanent(), "{error}");
            }
            Expect::ReplyOrDropped(code) => {
                if let Some(status) = error.status() {
                    assert_eq!(status.to_string(), *code, "{args:?}: {error}");
                    assert!(error.is_permanent(), "{args:?}: {error}");
                } else {
                    assert!(!error.is_transient() && !error.is_permanent(), "{error}");
                }
            }
        }
        // A refused transaction leaves no dump unless it was refused at "."
        // (smtp-sink unlinks an aborted dump before closing it, and
        // messages() skips dumps it still has open, so no waiting needed).
        assert_eq!(sink.messages().len(), *dumped, "{args:?}");
    }
}

#[test]
fn smtp_sink_restart_with_args_keeps_port_and_mail() {
    let mut sink = SmtpSink::start_with_args(&["-r", "RCPT"]);
    let port = sink.port();
    let error = send(port, &["ayse@example.net"]).expect_err("450 expected");
    assert!(error.is_transient(), "{error}");

    sink.restart_with_args(&[]);
    assert_eq!(sink.port(), port);
    send(port, &["ayse@example.net"])
        .unwrap_or_else(|e| panic!("send after restart: {e}\n{}", sink.output()));
    sink.restart_with_args(&["-f", "MAIL"]);
    let error = send(port, &["jan@example.net"]).expect_err("500 expected");
    assert!(error.is_permanent(), "{error}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, ["ayse@example.net"]);
    assert_eq!(sink.args(), ["-f", "MAIL"]);
}

#[test]
fn smtp_data_stuffs_dots_and_uses_crlf() {
    assert_eq!(smtp_data(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n.\r\n");
    assert_eq!(smtp_data(b"a\r\n\r\n"), b"a\r\n\r\n.\r\n");
    assert_eq!(smtp_data(b""), b".\r\n");
}

#[test]
#[should_panic(expected = "install no-such-package: run scripts/test")]
fn a_missing_binary_names_the_package_to_install() {
    find_binary("rsvpd-no-such-binary", "no-such-package");
}
