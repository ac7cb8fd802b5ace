//! IMAP over TLS against Dovecot: implicit TLS (imaps://) and STARTTLS, with
//! the test CA trusted through `ca_file`, and a clear refusal without it.

use std::time::Duration;

use crate::app::{CONFERENCES, MAILBOX, Rsvpd, mail, submission};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;

fn registration() -> Vec<u8> {
    mail(
        "Ewa Kowalska",
        "ewa@example.pl",
        MAILBOX,
        "Anmeldung Migrationskonferenz",
        "tls-1@example.pl",
        "Hiermit melde ich mich zur Migrationskonferenz an.\r\n\r\nEwa Kowalska",
    )
}

fn ca_line(dovecot: &Dovecot) -> String {
    format!("ca_file = \"{}\"", dovecot.ca_cert_path().display())
}

#[test]
fn imaps_with_the_ca_from_ca_file_reads_mail() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let url = format!(
        "imaps://anmeldung%40example.org@localhost:{}",
        dovecot.imaps_port()
    );
    let app = Rsvpd::with_mailbox_url(&dovecot, &sink, &url, &ca_line(&dovecot), CONFERENCES);
    dovecot.deliver(MAILBOX, &registration());
    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.processed").len(), 1);
}

#[test]
fn starttls_on_the_plain_port_reads_mail() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let url = format!(
        "imap://anmeldung%40example.org@localhost:{}",
        dovecot.imap_port()
    );
    let app = Rsvpd::with_mailbox_url(&dovecot, &sink, &url, &ca_line(&dovecot), CONFERENCES);
    dovecot.deliver(MAILBOX, &registration());
    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
}

#[test]
fn an_untrusted_certificate_is_refused_with_a_clear_error() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let url = format!(
        "imaps://anmeldung%40example.org@localhost:{}",
        dovecot.imaps_port()
    );
    let app = Rsvpd::with_mailbox_url(&dovecot, &sink, &url, "", CONFERENCES);
    dovecot.deliver(MAILBOX, &registration());
    let out = app.output(&["run", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS handshake with localhost"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Nothing was taken out of the inbox.
    assert_eq!(dovecot.list_folder(MAILBOX, "INBOX").len(), 1);
}

fn smtp_tls_sends(scheme_port: impl Fn(u16, u16) -> String) {
    let sink = SmtpSink::start();
    let (dovecot, starttls, implicit) = submission(&sink);
    let app = Rsvpd::new(&dovecot, &sink);
    let url = scheme_port(starttls, implicit);
    app.set_smtp(&format!(
        "url = \"{url}\"\nca_file = \"{}\"",
        dovecot.ca_cert_path().display()
    ));
    dovecot.deliver(MAILBOX, &registration());
    let out = app
        .command()
        .env("RSVPD_SMTP_PASSWORD", dovecot.password())
        .args(["run", "--once"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(sent[0].rcpt_to, vec!["ewa@example.pl".to_string()]);
    assert_eq!(
        sent[0].header("In-Reply-To").as_deref(),
        Some("<tls-1@example.pl>")
    );
}

#[test]
fn smtps_with_login_sends_through_a_tls_server() {
    smtp_tls_sends(|_, implicit| format!("smtps://anmeldung%40example.org@localhost:{implicit}"));
}

#[test]
fn smtp_starttls_with_login_sends_through_a_tls_server() {
    smtp_tls_sends(|starttls, _| format!("smtp://anmeldung%40example.org@localhost:{starttls}"));
}
