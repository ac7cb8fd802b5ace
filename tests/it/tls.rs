//! IMAP over TLS against Dovecot: implicit TLS (imaps://) and STARTTLS, with
//! the test CA trusted through `ca_file`, and a clear refusal without it.

use crate::app::{CONFERENCES, MAILBOX, Rsvpd, mail};
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
