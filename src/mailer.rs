//! Outgoing mail: rendering templates into complete messages, and handing
//! rendered messages to a transport (SMTP via lettre, or `.eml` files).
//!
//! Rendering is pure and happens when a mail is queued, inside the transaction
//! that records its cause; the outbox then stores the finished bytes, so a retry
//! sends exactly the same message with the same Message-ID. Templates live as
//! files per kind and language (`templates/KIND/LANG/{subject,body.txt,body.html}`)
//! and are built into the binary; HTML parts escape every value. This module does
//! not decide *whether* to send anything, and never logs a full address.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

use crate::config::{Conference, Config, Language, SmtpConfig, SmtpTransportConfig, Tls};
use crate::storage::Registration;

/// The kinds of mail rsvpd writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirmation,
    Waitlist,
    Promotion,
    Cancellation,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Confirmation => "confirmation",
            Kind::Waitlist => "waitlist",
            Kind::Promotion => "promotion",
            Kind::Cancellation => "cancellation",
        }
    }
    const ALL: [Kind; 4] = [
        Kind::Confirmation,
        Kind::Waitlist,
        Kind::Promotion,
        Kind::Cancellation,
    ];
}

macro_rules! builtin {
    ($kind:literal, $lang:literal) => {
        [
            (
                concat!($kind, ".", $lang, ".subject"),
                include_str!(concat!("../templates/", $kind, "/", $lang, "/subject")),
            ),
            (
                concat!($kind, ".", $lang, ".txt"),
                include_str!(concat!("../templates/", $kind, "/", $lang, "/body.txt")),
            ),
            (
                concat!($kind, ".", $lang, ".html"),
                include_str!(concat!("../templates/", $kind, "/", $lang, "/body.html")),
            ),
        ]
    };
}

const BUILTIN: [[(&str, &str); 3]; 8] = [
    builtin!("confirmation", "de"),
    builtin!("confirmation", "en"),
    builtin!("waitlist", "de"),
    builtin!("waitlist", "en"),
    builtin!("promotion", "de"),
    builtin!("promotion", "en"),
    builtin!("cancellation", "de"),
    builtin!("cancellation", "en"),
];

/// `Auto-Submitted` (RFC 3834): tells other robots not to answer us.
#[derive(Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A finished message, ready for the outbox.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Without angle brackets.
    pub message_id: String,
    pub subject: String,
    pub raw: Vec<u8>,
}

#[derive(Serialize)]
struct ConferenceView<'a> {
    id: &'a str,
    title: &'a str,
    date: String,
    time: String,
    location: &'a str,
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    name: Option<&'a str>,
    email: &'a str,
    conference: ConferenceView<'a>,
    party_size: u32,
    companions: &'a [String],
    workshops: Vec<String>,
    notes: &'a [String],
    updated: bool,
    sender: String,
}

pub struct Renderer {
    env: minijinja::Environment<'static>,
    from: Mailbox,
    domain: String,
}

const WEEKDAYS_DE: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "Freitag, 15. Oktober 2027" / "Friday, 15 October 2027".
pub fn local_date(t: DateTime<Tz>, lang: Language) -> String {
    let wd = t.weekday().num_days_from_monday() as usize;
    let m = t.month0() as usize;
    match lang {
        Language::De => format!(
            "{}, {}. {} {}",
            WEEKDAYS_DE[wd],
            t.day(),
            MONTHS_DE[m],
            t.year()
        ),
        Language::En => format!(
            "{}, {} {} {}",
            WEEKDAYS_EN[wd],
            t.day(),
            MONTHS_EN[m],
            t.year()
        ),
    }
}

/// "13:30–19:30 Uhr" / "13:30–19:30".
pub fn local_time_range(from: DateTime<Tz>, to: DateTime<Tz>, lang: Language) -> String {
    let range = format!(
        "{:02}:{:02}–{:02}:{:02}",
        from.hour(),
        from.minute(),
        to.hour(),
        to.minute()
    );
    match lang {
        Language::De => format!("{range} Uhr"),
        Language::En => format!("{range} ({})", from.format("%Z")),
    }
}

/// A name as it may appear in a header: no control characters, bounded length.
pub fn header_safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    cleaned.chars().take(120).collect()
}

impl Renderer {
    pub fn new(config: &Config) -> anyhow::Result<Renderer> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for set in BUILTIN {
            for (name, source) in set {
                env.add_template(name, source)
                    .with_context(|| format!("built-in template {name}"))?;
            }
        }
        // Every kind must exist in every language.
        for kind in Kind::ALL {
            for lang in ["de", "en"] {
                env.get_template(&format!("{}.{lang}.subject", kind.as_str()))
                    .with_context(|| format!("template {} {lang} is missing", kind.as_str()))?;
            }
        }
        let from = config.smtp.from.clone();
        let domain = from.email.domain().to_string();
        Ok(Renderer { env, from, domain })
    }

    pub fn new_message_id(&self) -> String {
        format!("{}@{}", uuid::Uuid::new_v4(), self.domain)
    }

    /// Render `kind` for `reg`, as an answer to the attendee's `in_reply_to` message.
    pub fn render(
        &self,
        kind: Kind,
        conference: &Conference,
        reg: &Registration,
        updated: bool,
        in_reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        let lang = reg.language;
        let workshops = reg
            .workshops
            .iter()
            .map(|id| {
                conference
                    .workshops
                    .iter()
                    .find(|w| &w.id == id)
                    .map(|w| w.title.clone())
                    .unwrap_or_else(|| id.clone())
            })
            .collect();
        let ctx = TemplateContext {
            name: reg.name.as_deref(),
            email: &reg.email,
            conference: ConferenceView {
                id: &conference.id,
                title: &conference.title,
                date: local_date(conference.local_starts(), lang),
                time: local_time_range(conference.local_starts(), conference.local_ends(), lang),
                location: &conference.location,
            },
            party_size: reg.party_size,
            companions: &reg.companions,
            workshops,
            notes: &reg.notes,
            updated,
            sender: self
                .from
                .name
                .clone()
                .unwrap_or_else(|| self.from.email.to_string()),
        };
        let name = |part: &str| format!("{}.{}.{}", kind.as_str(), lang.code(), part);
        let render = |part: &str| -> anyhow::Result<String> {
            self.env
                .get_template(&name(part))
                .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
                .with_context(|| format!("rendering template {}", name(part)))
        };
        let subject = header_safe(&render("subject")?);
        let text = render("txt")?;
        let html = render("html")?;

        let to_name = reg
            .name
            .as_deref()
            .map(header_safe)
            .filter(|n| !n.is_empty());
        let to_addr: lettre::Address = reg
            .email
            .parse()
            .map_err(|e| anyhow!("the attendee address is not usable for sending ({e})"))?;
        let message_id = self.new_message_id();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(to_name, to_addr))
            .subject(subject.clone())
            .date(now.into())
            .message_id(Some(format!("<{message_id}>")))
            .header(AutoSubmitted("auto-replied".into()));
        if let Some(parent) = in_reply_to {
            builder = builder
                .in_reply_to(format!("<{parent}>"))
                .references(format!("<{parent}>"));
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            );
        let message = builder.multipart(body).context("building the mail")?;
        Ok(Rendered {
            message_id,
            subject,
            raw: message.formatted(),
        })
    }
}

/// Why a send did not succeed.
#[derive(Debug)]
pub enum SendError {
    /// Worth another try later (4xx, connection trouble).
    Transient(String),
    /// The server refused for good (5xx).
    Permanent(String),
}

/// Where rendered mail goes.
#[derive(Clone)]
pub enum Transport {
    /// The transport, and "host:port" for messages.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, String),
    File(PathBuf),
}

impl Transport {
    pub fn new(smtp: &SmtpConfig) -> anyhow::Result<Transport> {
        match &smtp.transport {
            SmtpTransportConfig::File(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the mail folder {}", dir.display()))?;
                Ok(Transport::File(dir.clone()))
            }
            SmtpTransportConfig::Smtp(server) => {
                let tls_params = || -> anyhow::Result<TlsParameters> {
                    let mut b = TlsParameters::builder(server.host.clone());
                    if let Some(ca) = &server.ca_file {
                        let pem = std::fs::read(ca).with_context(|| {
                            format!("[smtp] ca_file {} cannot be read", ca.display())
                        })?;
                        let cert = Certificate::from_pem(&pem).with_context(|| {
                            format!("[smtp] ca_file {} is not a PEM certificate", ca.display())
                        })?;
                        b = b.add_root_certificate(cert);
                    }
                    b.build_rustls().context("setting up TLS for SMTP")
                };
                let tls = match server.tls {
                    Tls::Implicit => LettreTls::Wrapper(tls_params()?),
                    Tls::StartTls => LettreTls::Required(tls_params()?),
                    Tls::None => LettreTls::None,
                };
                let mut b =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
                        .port(server.port)
                        .tls(tls)
                        .timeout(Some(smtp.timeout));
                if let (Some(user), Some(pw)) = (&server.user, &server.password) {
                    b = b.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
                }
                Ok(Transport::Smtp(
                    b.build(),
                    format!("{}:{}", server.host, server.port),
                ))
            }
        }
    }

    /// Check that the server answers and accepts our login.
    pub async fn check(&self) -> anyhow::Result<String> {
        match self {
            Transport::File(dir) => {
                let probe = dir.join(".rsvpd-write-test");
                std::fs::write(&probe, b"").with_context(|| {
                    format!("cannot write into the mail folder {}", dir.display())
                })?;
                let _ = std::fs::remove_file(probe);
                Ok(format!("mail is written as files into {}", dir.display()))
            }
            Transport::Smtp(t, server) => {
                let ok = tokio::time::timeout(Duration::from_secs(60), t.test_connection())
                    .await
                    .map_err(|_| anyhow!("the SMTP server {server} did not answer within 60 s"))?
                    .map_err(|e| {
                        anyhow!("the SMTP server {server}: {}", describe_smtp_error(&e))
                    })?;
                if ok {
                    Ok(format!(
                        "SMTP server {server} answered and accepted the login"
                    ))
                } else {
                    Err(anyhow!(
                        "the SMTP server {server} did not accept the connection"
                    ))
                }
            }
        }
    }

    pub async fn send(
        &self,
        from: &lettre::Address,
        to: &str,
        raw: &[u8],
    ) -> Result<(), SendError> {
        let to: lettre::Address = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient address is not valid: {e}")))?;
        match self {
            Transport::File(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    Utc::now().format("%Y%m%dT%H%M%S%.3f"),
                    uuid::Uuid::new_v4().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                let path = dir.join(&name);
                let write = std::fs::write(&tmp, raw).and_then(|_| std::fs::rename(&tmp, &path));
                write.map_err(|e| {
                    SendError::Transient(format!("cannot write {}: {e}", path.display()))
                })
            }
            Transport::Smtp(t, server) => {
                let envelope = lettre::address::Envelope::new(Some(from.clone()), vec![to])
                    .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
                match t.send_raw(&envelope, raw).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                        "{server}: {}",
                        describe_smtp_error(&e)
                    ))),
                    Err(e) => Err(SendError::Transient(format!(
                        "{server}: {}",
                        describe_smtp_error(&e)
                    ))),
                }
            }
        }
    }
}

/// The whole chain of a lettre error: what the server said, or why it could not be reached.
pub fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safe_removes_line_breaks() {
        assert_eq!(
            header_safe("Eve\r\nBcc: victim@example.org"),
            "Eve Bcc: victim@example.org"
        );
        assert_eq!(header_safe("  Ayşe   Yılmaz "), "Ayşe Yılmaz");
    }

    #[test]
    fn dates_in_both_languages() {
        use chrono::TimeZone;
        let t = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2027, 10, 15, 13, 30, 0)
            .unwrap();
        assert_eq!(local_date(t, Language::De), "Freitag, 15. Oktober 2027");
        assert_eq!(local_date(t, Language::En), "Friday, 15 October 2027");
    }
}
