//! Outgoing mail: rendering templates into complete messages, and handing
//! rendered messages to a transport (SMTP via lettre, or `.eml` files).
//!
//! Rendering is pure and happens when a mail is queued, inside the transaction
//! that records its cause; the outbox then stores the finished bytes, so a retry
//! sends exactly the same message with the same Message-ID. Templates live as
//! files per kind and language (`templates/KIND/LANG/{subject,body.txt,body.html}`)
//! and are built into the binary; an organizer can override any of them, for all
//! conferences (`[defaults] templates`) or one (`[[conference]] templates`), and
//! every override is tried once at start so a typo fails then, naming the file.
//! HTML parts escape every value. Confirmations, promotions and reminders carry
//! the calendar invite (`calendar`). This module does not decide *whether* to
//! send anything, and never logs a full address.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use serde::Serialize;

use crate::calendar;
use crate::config::{Conference, Config, Language, SmtpConfig, SmtpTransportConfig, Tls};
use crate::storage::{Ended, Registration, ReviewItem, Status, parse_ts};

/// The kinds of mail rsvpd writes from its own templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Confirmation,
    Waitlist,
    Promotion,
    Cancellation,
    /// Before the conference, per `[[conference.reminder]]` rule.
    Reminder,
    /// Double opt-in: "please confirm by replying".
    OptIn,
    /// To the organizers, per `[[conference.digest]]` rule.
    Digest,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Confirmation => "confirmation",
            Kind::Waitlist => "waitlist",
            Kind::Promotion => "promotion",
            Kind::Cancellation => "cancellation",
            Kind::Reminder => "reminder",
            Kind::OptIn => "opt_in",
            Kind::Digest => "digest",
        }
    }
    pub const ALL: [Kind; 7] = [
        Kind::Confirmation,
        Kind::Waitlist,
        Kind::Promotion,
        Kind::Cancellation,
        Kind::Reminder,
        Kind::OptIn,
        Kind::Digest,
    ];
    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// The outbox kind of a mail of this kind.
    pub fn outbox_kind(self) -> crate::domain::OutboxKind {
        use crate::domain::OutboxKind as O;
        match self {
            Kind::Confirmation => O::Confirmation,
            Kind::Waitlist => O::Waitlist,
            Kind::Promotion => O::Promotion,
            Kind::Cancellation => O::Cancellation,
            Kind::Reminder => O::Reminder,
            Kind::OptIn => O::OptIn,
            Kind::Digest => O::Digest,
        }
    }
    /// Mails that put the event into the attendee's calendar.
    pub fn carries_invite(self) -> bool {
        matches!(self, Kind::Confirmation | Kind::Promotion | Kind::Reminder)
    }
    /// RFC 3834: an answer to the attendee's mail, or sent on rsvpd's own schedule.
    fn auto_submitted(self) -> &'static str {
        match self {
            Kind::Reminder | Kind::Digest => "auto-generated",
            _ => "auto-replied",
        }
    }
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

const BUILTIN: [[(&str, &str); 3]; 14] = [
    builtin!("confirmation", "de"),
    builtin!("confirmation", "en"),
    builtin!("waitlist", "de"),
    builtin!("waitlist", "en"),
    builtin!("promotion", "de"),
    builtin!("promotion", "en"),
    builtin!("cancellation", "de"),
    builtin!("cancellation", "en"),
    builtin!("reminder", "de"),
    builtin!("reminder", "en"),
    builtin!("opt_in", "de"),
    builtin!("opt_in", "en"),
    builtin!("digest", "de"),
    builtin!("digest", "en"),
];

/// The files of one template, and the name each has in the environment.
/// Names end in `.html` only for the HTML part, which turns on minijinja's
/// auto-escaping there (and only there).
const PARTS: [(&str, &str); 3] = [
    ("subject", "subject"),
    ("body.txt", "txt"),
    ("body.html", "html"),
];

const LANGUAGES: [Language; 2] = [Language::De, Language::En];

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

/// A file attached to a mail.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Everything about one outgoing mail except its rendering.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The Message-ID (without brackets) this mail answers or continues.
    pub in_reply_to: Option<String>,
    pub reply_to: Option<Mailbox>,
    /// `auto-replied` for answers, `auto-generated` for mail on rsvpd's own schedule.
    pub auto_submitted: &'static str,
    pub attachments: Vec<Attachment>,
}

/// The conference as templates see it (`conference.*`).
#[derive(Debug, Clone, Serialize)]
pub struct ConferenceView {
    pub id: String,
    pub title: String,
    /// "Freitag, 15. Oktober 2027" / "Friday, 15 October 2027"
    pub date: String,
    /// "13:30–19:30 Uhr" / "13:30–19:30 (CEST)"
    pub time: String,
    pub location: String,
    /// "2027-10-15T13:30", local
    pub starts: String,
    pub timezone: String,
}

/// What the templates of registration mails see. Every key is always
/// present (null when it does not apply), so that a typo in an organizer's
/// template is caught when rsvpd starts, not when a mail is due.
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    pub name: Option<String>,
    pub email: String,
    pub organization: Option<String>,
    pub conference: ConferenceView,
    pub party_size: u32,
    pub companions: Vec<String>,
    /// Workshop titles.
    pub workshops: Vec<String>,
    pub notes: Vec<String>,
    /// confirmed | waitlisted | pending | cancelled
    pub status: String,
    pub updated: bool,
    pub sender: String,
    /// Double opt-in: the token, the address to reply to, and until when.
    pub token: Option<String>,
    pub confirm_address: Option<String>,
    pub expires: Option<String>,
}

/// The data of an organizers' digest.
#[derive(Debug, Clone)]
pub struct DigestData {
    /// The previous digest's time; None for the first.
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub new: Vec<Registration>,
    pub ended: Vec<Ended>,
    pub review: Vec<ReviewItem>,
    /// Mails that failed for good in the period (the address is marked undeliverable).
    pub failed: Vec<crate::storage::FailedMail>,
    /// Sending paused during the period because the server or our setup refused mail.
    pub delivery: Option<crate::storage::DeliveryPause>,
    /// Every registration (cancelled ones included), for the numbers.
    pub all: Vec<Registration>,
}

#[derive(Debug, Clone, Serialize)]
struct DigestFailed {
    recipient: String,
    kind: String,
    error: String,
    at: String,
}

#[derive(Debug, Clone, Serialize)]
struct DigestDelivery {
    since: String,
    /// When it ended; None while it lasts.
    ended: Option<String>,
    error: String,
    fix: String,
}

#[derive(Debug, Clone, Serialize)]
struct DigestEntry {
    name: Option<String>,
    email: String,
    party_size: u32,
    status: String,
    /// local "2027-09-06 09:14"
    at: String,
    /// cancel | expire for ended registrations
    action: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct DigestReview {
    id: i64,
    from: Option<String>,
    subject: String,
    reason: String,
    received: String,
}

#[derive(Debug, Clone, Serialize)]
struct DigestContext {
    conference: ConferenceView,
    sender: String,
    since: Option<String>,
    until: String,
    new: Vec<DigestEntry>,
    ended: Vec<DigestEntry>,
    review: Vec<DigestReview>,
    failed: Vec<DigestFailed>,
    delivery: Option<DigestDelivery>,
    /// Confirmed registrations, and the people in them.
    confirmed: u32,
    people: u32,
    waitlisted: u32,
    pending: u32,
    capacity: Option<u32>,
}

pub struct Renderer {
    env: minijinja::Environment<'static>,
    from: Mailbox,
    domain: String,
    /// "CONF/KIND.LANG.PART" of every per-conference override.
    conference_overrides: HashSet<String>,
    /// The address attendees write to, for `anmeldung+confirm-TOKEN@…`.
    mailbox_address: String,
    language: Language,
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

/// "15.10.2027, 13:30 Uhr" / "15 October 2027, 13:30" — a moment in the conference's zone.
pub fn local_moment(t: DateTime<Tz>, lang: Language) -> String {
    match lang {
        Language::De => t.format("%d.%m.%Y, %H:%M Uhr").to_string(),
        Language::En => format!(
            "{} {} {}, {:02}:{:02}",
            t.day(),
            MONTHS_EN[t.month0() as usize],
            t.year(),
            t.hour(),
            t.minute()
        ),
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

/// Read the override folder `dir` into `env` under `prefix` (e.g. "miko-2027/");
/// returns the names added. Every file must be a known kind, language and part.
fn load_overrides(
    env: &mut minijinja::Environment<'static>,
    dir: &Path,
    prefix: &str,
) -> anyhow::Result<Vec<(String, PathBuf, Kind)>> {
    let what = "a template folder holds KIND/LANG/{subject,body.txt,body.html}";
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the templates folder {}; create it or fix `templates` in the config ({what})",
            dir.display()
        )
    })?;
    let mut added = Vec::new();
    let mut kinds: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    kinds.sort();
    for kind_dir in kinds {
        let file_name = kind_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if file_name.starts_with('.') || file_name.eq_ignore_ascii_case("README.md") {
            continue;
        }
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        let kind = Kind::parse(&file_name).ok_or_else(|| {
            anyhow!(
                "{}: `{file_name}` is not a kind of mail; known: {} ({what})",
                kind_dir.display(),
                known.join(", ")
            )
        })?;
        for lang_dir in sorted_dir(&kind_dir)? {
            let lang_name = lang_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if lang_name.starts_with('.') {
                continue;
            }
            let lang = Language::parse(&lang_name).ok_or_else(|| {
                anyhow!(
                    "{}: `{lang_name}` is not a language; use de or en ({what})",
                    lang_dir.display()
                )
            })?;
            for file in sorted_dir(&lang_dir)? {
                let fname = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                if fname.starts_with('.') {
                    continue;
                }
                let Some((_, part)) = PARTS.iter().find(|(f, _)| *f == fname) else {
                    bail!(
                        "{}: unknown template file `{fname}`; the files are subject, body.txt and body.html",
                        file.display()
                    );
                };
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read the template {}", file.display()))?;
                let name = format!("{prefix}{}.{}.{part}", kind.as_str(), lang.code());
                env.add_template_owned(name.clone(), source)
                    .with_context(|| format!("the template {} does not parse", file.display()))?;
                added.push((name, file, kind));
            }
        }
    }
    Ok(added)
}

fn sorted_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
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
            for lang in LANGUAGES {
                env.get_template(&format!("{}.{}.subject", kind.as_str(), lang.code()))
                    .with_context(|| {
                        format!("template {} {} is missing", kind.as_str(), lang.code())
                    })?;
            }
        }
        let mut loaded = Vec::new();
        if let Some(dir) = &config.defaults.templates {
            loaded.extend(load_overrides(&mut env, dir, "")?);
        }
        let mut conference_overrides = HashSet::new();
        for c in &config.conferences {
            if let Some(dir) = &c.templates {
                let added = load_overrides(&mut env, dir, &format!("{}/", c.id))?;
                conference_overrides.extend(added.iter().map(|(n, _, _)| n.clone()));
                loaded.extend(added);
            }
        }
        let from = config.smtp.from.clone();
        let domain = from.email.domain().to_string();
        let renderer = Renderer {
            env,
            from,
            domain,
            conference_overrides,
            mailbox_address: config.mailbox.address.clone(),
            language: config.defaults.language,
        };
        // Render every override once now: a placeholder that does not exist
        // fails here, naming the file, instead of when a mail is due.
        for (name, file, kind) in loaded {
            renderer
                .check_template(&name, kind, config)
                .with_context(|| {
                    format!(
                        "the template {} does not render (templates/README.md lists every placeholder)",
                        file.display()
                    )
                })?;
        }
        Ok(renderer)
    }

    fn check_template(&self, name: &str, kind: Kind, config: &Config) -> anyhow::Result<()> {
        let t = self.env.get_template(name)?;
        let conf = config
            .conferences
            .iter()
            .find(|c| name.starts_with(&format!("{}/", c.id)))
            .or(config.conferences.first());
        let Some(conf) = conf else {
            return Ok(());
        };
        let lang = if name.contains(".en.") {
            Language::En
        } else {
            Language::De
        };
        let now = Utc::now();
        if kind == Kind::Digest {
            let ctx = self.digest_context(conf, &sample_digest(conf, now), lang);
            t.render(minijinja::value::Serde(&ctx))?;
        } else {
            let reg = sample_registration(conf, lang, now);
            let mut ctx = self.context(conf, &reg, false);
            ctx.token = Some("K7X2Q9PF4M".into());
            ctx.confirm_address = Some(self.confirm_address("K7X2Q9PF4M"));
            ctx.expires = Some(local_moment(now.with_timezone(&conf.timezone), lang));
            t.render(minijinja::value::Serde(&ctx))?;
        }
        Ok(())
    }

    pub fn new_message_id(&self) -> String {
        format!("{}@{}", uuid::Uuid::new_v4(), self.domain)
    }

    /// The domain of the sender address (Message-IDs, calendar UIDs).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `anmeldung+confirm-TOKEN@example.org` for the mailbox attendees write to.
    pub fn confirm_address(&self, token: &str) -> String {
        let (local, domain) = self
            .mailbox_address
            .split_once('@')
            .unwrap_or((self.mailbox_address.as_str(), self.domain.as_str()));
        format!("{local}+confirm-{token}@{domain}")
    }

    fn sender(&self) -> String {
        self.from
            .name
            .clone()
            .unwrap_or_else(|| self.from.email.to_string())
    }

    pub fn conference_view(&self, conference: &Conference, lang: Language) -> ConferenceView {
        ConferenceView {
            id: conference.id.clone(),
            title: conference.title.clone(),
            date: local_date(conference.local_starts(), lang),
            time: local_time_range(conference.local_starts(), conference.local_ends(), lang),
            location: conference.location.clone(),
            starts: conference
                .local_starts()
                .format("%Y-%m-%dT%H:%M")
                .to_string(),
            timezone: conference.timezone.name().to_string(),
        }
    }

    /// The template context for a mail to `reg` (opt-in fields empty).
    pub fn context(
        &self,
        conference: &Conference,
        reg: &Registration,
        updated: bool,
    ) -> MailContext {
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
        MailContext {
            name: reg.name.clone(),
            email: reg.email.to_string(),
            organization: reg.organization.clone(),
            conference: self.conference_view(conference, lang),
            party_size: reg.party_size,
            companions: reg.companions.clone(),
            workshops,
            notes: reg.notes.clone(),
            status: reg.status.as_str().to_string(),
            updated,
            sender: self.sender(),
            token: None,
            confirm_address: None,
            expires: None,
        }
    }

    /// The environment name of a template part: the conference's own
    /// override, else the global override or built-in (same name).
    fn template_name(&self, conference: &str, kind: Kind, lang: Language, part: &str) -> String {
        let base = format!("{}.{}.{part}", kind.as_str(), lang.code());
        let own = format!("{conference}/{base}");
        if self.conference_overrides.contains(&own) {
            own
        } else {
            base
        }
    }

    fn render_parts<S: Serialize>(
        &self,
        conference: &str,
        kind: Kind,
        lang: Language,
        ctx: &S,
    ) -> anyhow::Result<(String, String, String)> {
        let render = |part: &str| -> anyhow::Result<String> {
            let name = self.template_name(conference, kind, lang, part);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(minijinja::value::Serde(ctx)))
                .with_context(|| format!("rendering template {name}"))
        };
        Ok((
            header_safe(&render("subject")?),
            render("txt")?,
            render("html")?,
        ))
    }

    fn attendee_mailbox(&self, reg: &Registration) -> anyhow::Result<Mailbox> {
        let to_name = reg
            .name
            .as_deref()
            .map(header_safe)
            .filter(|n| !n.is_empty());
        let to_addr: lettre::Address = reg
            .email
            .parse()
            .map_err(|e| anyhow!("the attendee address is not usable for sending ({e})"))?;
        Ok(Mailbox::new(to_name, to_addr))
    }

    /// The calendar invite for `conference`, as an attachment.
    pub fn invite(&self, conference: &Conference, now: DateTime<Utc>) -> Attachment {
        let organizer = match conference.organizers.first() {
            Some(o) => calendar::Organizer {
                name: None,
                email: o.clone(),
            },
            None => calendar::Organizer {
                name: self.from.name.clone(),
                email: self.from.email.to_string(),
            },
        };
        Attachment {
            filename: format!("{}.ics", conference.id),
            content_type: calendar::CONTENT_TYPE.to_string(),
            body: calendar::invite(conference, &organizer, &self.domain, now).into_bytes(),
        }
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
        let ctx = self.context(conference, reg, updated);
        self.render_with(kind, conference, reg, &ctx, in_reply_to, None, now)
    }

    /// The double-opt-in request: the token in the subject (`[TOKEN]`) and in
    /// the Reply-To plus address, so that a plain "reply" confirms.
    pub fn render_opt_in(
        &self,
        conference: &Conference,
        reg: &Registration,
        token: &str,
        expires_at: DateTime<Utc>,
        in_reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        let mut ctx = self.context(conference, reg, false);
        let address = self.confirm_address(token);
        ctx.token = Some(token.to_string());
        ctx.confirm_address = Some(address.clone());
        ctx.expires = Some(local_moment(
            expires_at.with_timezone(&conference.timezone),
            reg.language,
        ));
        let reply_to: lettre::Address = address.parse().map_err(|e| {
            anyhow!(
                "the confirmation address {address} is not usable ({e}); check [mailbox] address"
            )
        })?;
        let reply_to = Mailbox::new(self.from.name.clone(), reply_to);
        self.render_with(
            Kind::OptIn,
            conference,
            reg,
            &ctx,
            in_reply_to,
            Some(reply_to),
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn render_with(
        &self,
        kind: Kind,
        conference: &Conference,
        reg: &Registration,
        ctx: &MailContext,
        in_reply_to: Option<&str>,
        reply_to: Option<Mailbox>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        let (subject, text, html) = self.render_parts(&conference.id, kind, reg.language, ctx)?;
        let attachments = if kind.carries_invite() {
            vec![self.invite(conference, now)]
        } else {
            vec![]
        };
        self.compose(
            Envelope {
                to: self.attendee_mailbox(reg)?,
                subject,
                text,
                html: Some(html),
                in_reply_to: in_reply_to.map(str::to_string),
                reply_to,
                auto_submitted: kind.auto_submitted(),
                attachments,
            },
            now,
        )
    }

    fn digest_context(
        &self,
        conference: &Conference,
        d: &DigestData,
        lang: Language,
    ) -> DigestContext {
        let tz = conference.timezone;
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
        let entry = |r: &Registration, at: DateTime<Utc>, action: Option<String>| DigestEntry {
            name: r.name.clone(),
            email: r.email.to_string(),
            party_size: r.party_size,
            status: r.status.as_str().to_string(),
            at: local(at),
            action,
        };
        let count = |s: Status| d.all.iter().filter(|r| r.status == s).count() as u32;
        DigestContext {
            conference: self.conference_view(conference, lang),
            sender: self.sender(),
            since: d.since.map(local),
            until: local(d.until),
            new: d
                .new
                .iter()
                .map(|r| entry(r, r.registered_at, None))
                .collect(),
            ended: d
                .ended
                .iter()
                .map(|e| entry(&e.registration, e.at, Some(e.action.clone())))
                .collect(),
            review: d
                .review
                .iter()
                .map(|i| DigestReview {
                    id: i.id,
                    from: i.from.clone(),
                    subject: i.subject.clone(),
                    reason: i.reason.clone(),
                    received: local(parse_ts(&i.received_at)),
                })
                .collect(),
            failed: d
                .failed
                .iter()
                .map(|f| DigestFailed {
                    recipient: f.recipient.clone(),
                    kind: f.kind.to_string(),
                    error: f.error.clone(),
                    at: local(f.at),
                })
                .collect(),
            // The pause is stored in the log's English; the digest speaks
            // the organizers' language.
            delivery: d.delivery.as_ref().map(|p| {
                let stage = Stage::parse(&p.stage);
                DigestDelivery {
                    since: local(p.since),
                    ended: p.ended_at.map(local),
                    error: stage.map_or_else(|| p.error.clone(), |s| s.error_in(&p.error, lang)),
                    fix: stage.map_or_else(|| p.fix.clone(), |s| s.fix_in(lang).to_string()),
                }
            }),
            confirmed: count(Status::Confirmed),
            people: d
                .all
                .iter()
                .filter(|r| r.status == Status::Confirmed)
                .map(|r| r.party_size)
                .sum(),
            waitlisted: count(Status::Waitlisted),
            pending: count(Status::Pending),
            capacity: conference.capacity,
        }
    }

    /// The organizers' digest to `to`, with the attendee list as CSV.
    pub fn render_digest(
        &self,
        conference: &Conference,
        to: &str,
        data: &DigestData,
        csv: Vec<u8>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        let lang = self.language;
        let ctx = self.digest_context(conference, data, lang);
        let (subject, text, html) = self.render_parts(&conference.id, Kind::Digest, lang, &ctx)?;
        let to: lettre::Address = to
            .parse()
            .map_err(|e| anyhow!("the organizer address `{to}` is not usable ({e})"))?;
        let stamp = data
            .until
            .with_timezone(&conference.timezone)
            .format("%Y-%m-%d");
        self.compose(
            Envelope {
                to: Mailbox::new(None, to),
                subject,
                text,
                html: Some(html),
                in_reply_to: None,
                reply_to: None,
                auto_submitted: Kind::Digest.auto_submitted(),
                attachments: vec![Attachment {
                    filename: format!("{}-attendees-{stamp}.csv", conference.id),
                    content_type: "text/csv; charset=utf-8".into(),
                    body: csv,
                }],
            },
            now,
        )
    }

    /// A mail to `reg` whose subject and body an organizer wrote (broadcast):
    /// plain text, sent on rsvpd's own account, not threaded.
    pub fn compose_to(
        &self,
        reg: &Registration,
        subject: &str,
        text: String,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Rendered> {
        self.compose(
            Envelope {
                to: self.attendee_mailbox(reg)?,
                subject: header_safe(subject),
                text,
                html: None,
                in_reply_to: None,
                reply_to: None,
                auto_submitted: "auto-generated",
                attachments: vec![],
            },
            now,
        )
    }

    /// Build the complete message: headers, text (+ HTML) alternative, attachments.
    pub fn compose(&self, e: Envelope, now: DateTime<Utc>) -> anyhow::Result<Rendered> {
        let message_id = self.new_message_id();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(e.to)
            .subject(e.subject.clone())
            .date(now.into())
            .message_id(Some(format!("<{message_id}>")))
            .header(AutoSubmitted(e.auto_submitted.into()));
        if let Some(r) = e.reply_to {
            builder = builder.reply_to(r);
        }
        if let Some(parent) = &e.in_reply_to {
            builder = builder
                .in_reply_to(format!("<{parent}>"))
                .references(format!("<{parent}>"));
        }
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(e.text);
        let message = match (e.html, e.attachments.is_empty()) {
            (Some(html), no_attachments) => {
                let alt = MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                );
                if no_attachments {
                    builder.multipart(alt)
                } else {
                    let mut mixed = MultiPart::mixed().multipart(alt);
                    for a in e.attachments {
                        mixed = mixed.singlepart(attachment_part(a)?);
                    }
                    builder.multipart(mixed)
                }
            }
            (None, true) => builder.singlepart(text),
            (None, false) => {
                let mut mixed = MultiPart::mixed().singlepart(text);
                for a in e.attachments {
                    mixed = mixed.singlepart(attachment_part(a)?);
                }
                builder.multipart(mixed)
            }
        }
        .context("building the mail")?;
        Ok(Rendered {
            message_id,
            subject: e.subject,
            raw: message.formatted(),
        })
    }
}

fn attachment_part(a: Attachment) -> anyhow::Result<SinglePart> {
    let ct = ContentType::parse(&a.content_type)
        .map_err(|e| anyhow!("attachment type `{}`: {e}", a.content_type))?;
    Ok(lettre::message::Attachment::new(a.filename).body(a.body, ct))
}

/// A registration with every field filled, to try templates on.
pub fn sample_registration(
    conference: &Conference,
    lang: Language,
    now: DateTime<Utc>,
) -> Registration {
    Registration {
        id: 1,
        conference_id: conference.id.clone(),
        email: crate::domain::EmailAddress::parse("ayse.yilmaz@example.net").unwrap(),
        name: Some("Ayşe Yılmaz".into()),
        organization: Some("Verein Brückenbau e.V.".into()),
        party_size: 2,
        companions: vec!["Mehmet Yılmaz".into()],
        workshops: conference
            .workshops
            .iter()
            .take(1)
            .map(|w| w.id.clone())
            .collect(),
        notes: vec!["Rollstuhl".into()],
        status: Status::Confirmed,
        language: lang,
        registered_at: now,
        updated_at: now,
        last_message_id: Some("reg-1@example.net".into()),
    }
}

fn sample_digest(conference: &Conference, now: DateTime<Utc>) -> DigestData {
    let reg = sample_registration(conference, Language::De, now);
    DigestData {
        since: Some(now - chrono::Duration::days(1)),
        until: now,
        new: vec![reg.clone()],
        ended: vec![Ended {
            registration: reg.clone(),
            action: "cancel".into(),
            at: now,
        }],
        review: vec![ReviewItem {
            id: 7,
            message_id: "q-1@example.com".into(),
            from: Some("p.schmidt@example.com".into()),
            subject: "Frage".into(),
            reason: "no registration recognised".into(),
            received_at: crate::storage::ts(now),
            conference: Some(conference.id.clone()),
            explanation: None,
        }],
        failed: vec![],
        delivery: Some(crate::storage::DeliveryPause {
            since: now - chrono::Duration::hours(2),
            until: now,
            failures: 3,
            stage: "login".into(),
            error:
                "SMTP server smtp.example.org:587: login refused: 535 5.7.8 Authentication failed"
                    .into(),
            fix: Stage::Login.fix().into(),
            ended_at: None,
        }),
        all: vec![reg],
    }
}

/// Why a send did not succeed, by whom it concerns.
#[derive(Debug)]
pub enum SendError {
    /// Worth another try later for this message (a 4xx to RCPT TO or DATA,
    /// the connection lost in the middle of the message).
    Transient(String),
    /// The server refused this recipient for good (a 5xx to RCPT TO, or a
    /// 5.1.x to DATA): the address is marked undeliverable.
    Recipient(String),
    /// The server or our setup refuses mail (connection, TLS, login, sender,
    /// a 5xx to DATA that is not about the recipient): the queue pauses and
    /// no address is marked.
    Setup(SetupProblem),
}

/// Where the SMTP dialogue failed before the recipient mattered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Tls,
    Login,
    /// MAIL FROM
    Sender,
    /// DATA or the end of the message, not about the recipient
    Data,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Tls => "tls",
            Stage::Login => "login",
            Stage::Sender => "sender",
            Stage::Data => "data",
        }
    }

    /// The stage as `as_str` spells it (the stored pause); None for an unknown one.
    pub fn parse(s: &str) -> Option<Stage> {
        [
            Stage::Connect,
            Stage::Tls,
            Stage::Login,
            Stage::Sender,
            Stage::Data,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    fn what(self) -> &'static str {
        self.what_in(Language::En)
    }

    /// What failed, in `lang` (the log is English; the digest speaks the
    /// organizers' language).
    fn what_in(self, lang: Language) -> &'static str {
        match (self, lang) {
            (Stage::Connect, Language::En) => "cannot connect",
            (Stage::Connect, Language::De) => "keine Verbindung",
            (Stage::Tls, Language::En) => "TLS failed",
            (Stage::Tls, Language::De) => "TLS fehlgeschlagen",
            (Stage::Login, Language::En) => "login refused",
            (Stage::Login, Language::De) => "Anmeldung abgelehnt",
            (Stage::Sender, Language::En) => "sender refused (MAIL FROM)",
            (Stage::Sender, Language::De) => "Absender abgelehnt (MAIL FROM)",
            (Stage::Data, Language::En) => "message refused (DATA), not because of the recipient",
            (Stage::Data, Language::De) => "Nachricht abgelehnt (DATA), nicht wegen des Empfängers",
        }
    }

    /// What an operator does about it.
    pub fn fix(self) -> &'static str {
        self.fix_in(Language::En)
    }

    /// What an operator does about it, in `lang`.
    pub fn fix_in(self, lang: Language) -> &'static str {
        match (self, lang) {
            (Stage::Connect, Language::En) => {
                "check the host and port in [smtp] url and that the server is up and reachable from this machine"
            }
            (Stage::Connect, Language::De) => {
                "Host und Port in [smtp] url prüfen, und ob der Server läuft und von diesem Rechner aus erreichbar ist"
            }
            (Stage::Tls, Language::En) => {
                "check the scheme in [smtp] url (smtps:// is TLS from the first byte, smtp:// uses STARTTLS) and, for a private CA, [smtp] ca_file"
            }
            (Stage::Tls, Language::De) => {
                "das Schema in [smtp] url prüfen (smtps:// ist TLS vom ersten Byte an, smtp:// nutzt STARTTLS) und, bei einer eigenen CA, [smtp] ca_file"
            }
            (Stage::Login, Language::En) => {
                "check the user in [smtp] url and the password in [smtp] password_file (or RSVPD_SMTP_PASSWORD): was it changed on the server? `rsvpd check` tries the login"
            }
            (Stage::Login, Language::De) => {
                "den Benutzer in [smtp] url und das Passwort in [smtp] password_file (oder RSVPD_SMTP_PASSWORD) prüfen: wurde es auf dem Server geändert? `rsvpd check` probiert die Anmeldung aus"
            }
            (Stage::Sender, Language::En) => {
                "the server does not let this account send as [smtp] from: allow that address for the account on the server, or change [smtp] from"
            }
            (Stage::Sender, Language::De) => {
                "der Server lässt dieses Konto nicht als [smtp] from senden: die Adresse für das Konto auf dem Server erlauben oder [smtp] from ändern"
            }
            (Stage::Data, Language::En) => {
                "read the server's answer (size limit, content filter, sending quota) and its log; the mail stays in the outbox (`rsvpd outbox`)"
            }
            (Stage::Data, Language::De) => {
                "die Antwort des Servers (Größenlimit, Inhaltsfilter, Versandkontingent) und sein Log lesen; die Mail bleibt im Postausgang (`rsvpd outbox`)"
            }
        }
    }

    /// The stored error (`SetupProblem::error`, written for the log in
    /// English) with its own words in `lang`; the server's answer stays as
    /// the server said it.
    pub fn error_in(self, error: &str, lang: Language) -> String {
        let english = format!(": {}: ", self.what());
        match (lang, error.strip_prefix("SMTP server ")) {
            (Language::De, Some(rest)) if rest.contains(&english) => format!(
                "SMTP-Server {}",
                rest.replacen(&english, &format!(": {}: ", self.what_in(lang)), 1)
            ),
            _ => error.to_string(),
        }
    }
}

/// A problem of the SMTP server or of our setup, with what to do about it.
#[derive(Debug, Clone)]
pub struct SetupProblem {
    pub stage: Stage,
    /// "SMTP server 127.0.0.1:587: login refused: permanent error (535): …"
    pub error: String,
    /// The server answered 5xx: the same will happen until someone fixes it.
    pub permanent: bool,
}

impl SetupProblem {
    pub fn new(stage: Stage, server: &str, said: &str, permanent: bool) -> SetupProblem {
        SetupProblem {
            stage,
            error: format!("SMTP server {server}: {}: {said}", stage.what()),
            permanent,
        }
    }

    pub fn fix(&self) -> &'static str {
        self.stage.fix()
    }
}

impl std::fmt::Display for SetupProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.error, self.fix())
    }
}

mod smtp;

/// Where rendered mail goes.
#[derive(Clone)]
pub enum Transport {
    Smtp(std::sync::Arc<smtp::SmtpSender>),
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
                // lettre's TLS parameters serve STARTTLS only.
                let tls_parameters = match server.tls {
                    Tls::None | Tls::Implicit => None,
                    Tls::StartTls => {
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
                        Some(b.build_rustls().context("setting up TLS for SMTP")?)
                    }
                };
                // Implicit TLS (smtps) is set up by us on our own socket (see
                // `smtp`); STARTTLS stays lettre's.
                let implicit = match server.tls {
                    Tls::Implicit => Some(crate::tls::client_config(
                        "[smtp]",
                        server.ca_file.as_deref(),
                    )?),
                    _ => None,
                };
                Ok(Transport::Smtp(smtp::SmtpSender::new(
                    server,
                    tls_parameters,
                    implicit,
                    smtp.timeout,
                )))
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
            Transport::Smtp(sender) => {
                sender.probe().await.map_err(|p| anyhow!("{p}"))?;
                Ok(format!(
                    "SMTP server {} answered and accepted the login",
                    sender.server()
                ))
            }
        }
    }

    /// Send `raw` to `to`. On success the caller holds the [`Finishing`]
    /// turn until it has recorded the mail as sent: while one mail is between
    /// the server's 250 and that record, no other mail of this process can
    /// be (the other connections wait before their message's final `.`), so
    /// a crash sends at most one mail twice however many connections send.
    pub async fn send(
        &self,
        from: &lettre::Address,
        to: &str,
        raw: &[u8],
    ) -> Result<Finishing, SendError> {
        let to: lettre::Address = to
            .parse()
            .map_err(|e| SendError::Recipient(format!("recipient address is not valid: {e}")))?;
        match self {
            Transport::File(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    Utc::now().format("%Y%m%dT%H%M%S%.3f"),
                    uuid::Uuid::new_v4().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                let path = dir.join(&name);
                let failed =
                    |e| SendError::Transient(format!("cannot write {}: {e}", path.display()));
                std::fs::write(&tmp, raw).map_err(failed)?;
                let turn = Finishing::take().await;
                std::fs::rename(&tmp, &path).map_err(failed)?;
                Ok(turn)
            }
            Transport::Smtp(sender) => sender.send(from, &to, raw).await,
        }
    }
}

/// The turn to finish a message (its final `.`, or the rename of its file)
/// and record it as sent; one at a time per process (see [`Transport::send`]).
/// Dropping it gives the turn to the next sender.
pub struct Finishing {
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static FINISHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Finishing {
    pub async fn take() -> Finishing {
        Finishing {
            _turn: FINISHING.lock().await,
        }
    }
}

/// The whole chain of a lettre error: what the server said, or why it could not be reached.
pub fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        // lettre's errors print their source already; say each part once.
        let part = inner.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests;
