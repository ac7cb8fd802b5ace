//! The configuration file: the TOML contract of PRODUCT.md, parsed into types.
//!
//! Everything an operator can get wrong is caught here, at the edge, with an
//! error that names the key and the line: unknown keys, malformed URLs, `tls=none`
//! on a host that is not loopback, bad durations, time zones and dates. Secrets are
//! never read from this file: passwords come from `password_file` or from the
//! environment (`RSVPD_IMAP_PASSWORD`, `RSVPD_SMTP_PASSWORD`). This module does no
//! network I/O; relative paths are resolved against the config file's folder.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;

use crate::localtime::local_to_utc;

/// The commented example printed by `rsvpd default-config`.
pub const EXAMPLE: &str = include_str!("../config/rsvpd.example.toml");

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub mailbox: MailboxConfig,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    pub defaults: Defaults,
    pub conferences: Vec<Conference>,
    /// The HTTP server (dashboard, `/healthz`, `/metrics`); off without `[web]`.
    pub web: Option<WebConfig>,
}

/// `[web]`: where the daemon serves HTTP, and who may log in.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: std::net::SocketAddr,
    /// The address people use (behind the reverse proxy); `https` makes cookies Secure.
    pub public_url: Option<String>,
    pub users: Vec<WebUser>,
    /// `/healthz` turns 503 when a worker has failed this long.
    pub unhealthy_after: Duration,
}

/// How long a worker may fail before `/healthz` says so: long enough for a
/// server restart, short enough to page before the morning.
pub const DEFAULT_UNHEALTHY_AFTER: Duration = Duration::from_secs(5 * 60);

impl WebConfig {
    /// Whether the dashboard is reached over https (cookies get `Secure`).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// `[[web.user]]`: an organizer who may log in to the dashboard.
#[derive(Clone)]
pub struct WebUser {
    pub name: String,
    /// An argon2id PHC string from `rsvpd hash-password`.
    pub password_hash: Secret,
    /// The conference ids this user may see; `*` means all.
    pub conferences: Vec<String>,
}

impl WebUser {
    pub fn may_see(&self, conference: &str) -> bool {
        self.conferences.iter().any(|c| c == "*" || c == conference)
    }
}

impl fmt::Debug for WebUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "web user {} ({:?})", self.name, self.conferences)
    }
}

#[derive(Debug, Clone)]
pub struct MailboxConfig {
    pub source: MailboxSource,
    pub folder: String,
    pub processed_folder: String,
    pub review_folder: String,
    pub idle: bool,
    pub poll_interval: Duration,
    /// How long one IMAP command may take before the connection counts as dead.
    pub timeout: Duration,
    /// Mails larger than this are not read but put in review (bounded memory).
    pub max_message_size: u64,
    /// The address attendees write to; plus addresses of it route to a conference.
    pub address: String,
}

#[derive(Debug, Clone)]
pub enum MailboxSource {
    Imap(ImapServer),
    Maildir(PathBuf),
}

#[derive(Clone)]
pub struct ImapServer {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: String,
    /// Read when rsvpd logs in, not when the config is parsed.
    pub password: PasswordSource,
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for ImapServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imap {}@{}:{} ({:?})",
            self.user, self.host, self.port, self.tls
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (imaps, smtps).
    Implicit,
    /// Plain connect, then STARTTLS (required, never optional).
    StartTls,
    /// No encryption at all; only accepted for loopback hosts.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub transport: SmtpTransportConfig,
    pub from: lettre::message::Mailbox,
    pub max_per_minute: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum SmtpTransportConfig {
    Smtp(SmtpServer),
    /// Write each message as an `.eml` file into this folder (demo, tests).
    File(PathBuf),
}

#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: Option<String>,
    /// Read when rsvpd logs in, not when the config is parsed; None without a user.
    pub password: Option<PasswordSource>,
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.user.as_deref().unwrap_or("-");
        write!(
            f,
            "smtp {}@{}:{} ({:?})",
            user, self.host, self.port, self.tls
        )
    }
}

/// Where the database is: `[database] url`.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// `sqlite://PATH`: the embedded default, one machine.
    Sqlite { path: PathBuf },
    /// `postgres://USER@HOST:PORT/DB`: several instances. The password comes
    /// from `[database] password_file` or `RSVPD_DATABASE_PASSWORD`, none under
    /// trust or peer authentication.
    Postgres {
        url: String,
        password: Option<Secret>,
    },
}

impl DatabaseConfig {
    /// The database as a person recognises it (never with a password).
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path } => path.display().to_string(),
            DatabaseConfig::Postgres { url, .. } => url.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub timezone: Tz,
    pub language: Language,
    pub retention_days: u32,
    /// How late a missed reminder may still go out (after downtime).
    pub reminder_grace: Duration,
    /// How long a double-opt-in registration waits for the attendee's reply.
    pub opt_in_expiry: Duration,
    /// A folder of template overrides for every conference (`KIND/LANG/PART`).
    pub templates: Option<PathBuf>,
    /// Automatic answers one address gets per 24 hours at most (robots must not ping-pong).
    pub answers_per_day: u32,
}

pub use crate::understand::Language;

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "de" => Some(Language::De),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptIn {
    Single,
    Double,
}

#[derive(Debug, Clone)]
pub struct Conference {
    pub id: String,
    pub title: String,
    pub aliases: Vec<String>,
    pub timezone: Tz,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    pub location: String,
    pub capacity: Option<u32>,
    pub opt_in: OptIn,
    pub organizers: Vec<String>,
    pub workshops: Vec<Workshop>,
    pub address: Option<String>,
    pub reminders: Vec<Reminder>,
    pub digests: Vec<Digest>,
    /// A folder of template overrides for this conference (`KIND/LANG/PART`).
    pub templates: Option<PathBuf>,
    /// How late a missed reminder of this conference may still go out.
    pub reminder_grace: Duration,
}

impl Conference {
    /// Open for registration: it has not started yet.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        now < self.starts
    }
    pub fn local_starts(&self) -> DateTime<Tz> {
        self.starts.with_timezone(&self.timezone)
    }
    pub fn local_ends(&self) -> DateTime<Tz> {
        self.ends.with_timezone(&self.timezone)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workshop {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminder {
    pub before: HumanDuration,
    pub at: Option<LocalTime>,
}

impl Reminder {
    /// Names the rule in the database (`reminders_sent.rule_key`): a changed
    /// rule is a new rule, an unchanged one is never sent twice.
    pub fn key(&self) -> String {
        let at = self
            .at
            .map(|t| t.0.format("%H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        format!("before={}s at={at}", self.before.0.as_secs())
    }

    /// When this rule fires for a conference starting at `starts` in `tz`:
    /// `before` off the local wall-clock start, then `at` as the local time of
    /// day on that date (DST-correct; see `localtime::before_at`).
    pub fn due(&self, tz: Tz, starts: DateTime<Utc>) -> DateTime<Utc> {
        crate::localtime::before_at(tz, starts, self.before.0, self.at.map(|a| a.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    pub cron: CronSchedule,
}

impl Digest {
    /// Names the rule in the database (`digest_runs.rule_key`).
    pub fn key(&self) -> String {
        self.cron.expression.trim().to_string()
    }
}

/// A password or other secret: never printed, never logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a server password comes from. The file is read only when a command
/// connects (`run`, `check`, `ingest` do; `attendees`, `review`, … never do),
/// so organizers can use the database commands without the service's
/// credentials, and a rotated password file is picked up at the next login.
#[derive(Clone)]
pub struct PasswordSource {
    /// "[mailbox]" or "[smtp]", for messages.
    section: &'static str,
    from: PasswordFrom,
}

#[derive(Clone)]
enum PasswordFrom {
    File(PathBuf),
    /// The environment variable's name and the value it had.
    Env(&'static str, Secret),
}

impl PasswordSource {
    /// The password, read now.
    pub fn read(&self) -> anyhow::Result<Secret> {
        match &self.from {
            PasswordFrom::Env(_, s) => Ok(s.clone()),
            PasswordFrom::File(p) => {
                let s = std::fs::read_to_string(p).with_context(|| {
                    format!(
                        "{} cannot read password_file {}; only commands that connect need it (run as the service's user, where systemd's LoadCredential provides it)",
                        self.section,
                        p.display()
                    )
                })?;
                let s = s.trim_end_matches(['\r', '\n']).to_string();
                if s.is_empty() {
                    bail!(
                        "{} password_file {} is empty; put the password in it",
                        self.section,
                        p.display()
                    );
                }
                Ok(Secret(s))
            }
        }
    }

    /// What the password is read from, for `check --offline`.
    pub fn describe(&self) -> String {
        match &self.from {
            PasswordFrom::File(p) => format!("password_file {}", p.display()),
            PasswordFrom::Env(name, _) => format!("the environment variable {name}"),
        }
    }
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password from {}", self.describe())
    }
}

// ---------------------------------------------------------------------------
// The file as written. Values that can be checked on their own are parsed by
// their `Deserialize` impl, so the toml crate attaches the line to the error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mailbox: RawMailbox,
    smtp: RawSmtp,
    database: RawDatabase,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default, rename = "conference")]
    conferences: Vec<RawConference>,
    web: Option<RawWeb>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Spanned<String>,
    public_url: Option<Spanned<String>>,
    #[serde(default = "default_unhealthy_after")]
    unhealthy_after: HumanDuration,
    #[serde(default, rename = "user")]
    users: Vec<RawWebUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebUser {
    name: Spanned<String>,
    password_hash: Spanned<String>,
    conferences: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    url: Spanned<MailboxUrl>,
    password_file: Option<String>,
    #[serde(default = "default_folder")]
    folder: String,
    #[serde(default = "default_processed")]
    processed_folder: String,
    #[serde(default = "default_review")]
    review_folder: String,
    #[serde(default = "yes")]
    idle: bool,
    #[serde(default = "default_poll")]
    poll_interval: HumanDuration,
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
    #[serde(default = "default_max_size")]
    max_message_size: ByteSize,
    address: Option<Spanned<String>>,
    ca_file: Option<String>,
}

fn default_unhealthy_after() -> HumanDuration {
    HumanDuration(DEFAULT_UNHEALTHY_AFTER)
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "rsvpd/processed".into()
}
fn default_review() -> String {
    "rsvpd/review".into()
}
fn yes() -> bool {
    true
}
fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_max_size() -> ByteSize {
    ByteSize(25 * 1024 * 1024)
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    url: Spanned<SmtpUrl>,
    password_file: Option<String>,
    from: Spanned<String>,
    #[serde(default = "default_rate")]
    max_per_minute: u32,
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
    ca_file: Option<String>,
}

fn default_rate() -> u32 {
    60
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Spanned<String>,
    password_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default = "berlin")]
    timezone: TimeZoneName,
    #[serde(default = "german")]
    language: Language,
    #[serde(default = "default_retention")]
    retention_days: u32,
    #[serde(default = "default_grace")]
    reminder_grace: HumanDuration,
    #[serde(default = "default_expiry")]
    opt_in_expiry: HumanDuration,
    templates: Option<String>,
    #[serde(default = "default_answers")]
    answers_per_day: u32,
}

impl Default for RawDefaults {
    fn default() -> Self {
        RawDefaults {
            timezone: berlin(),
            language: german(),
            retention_days: default_retention(),
            reminder_grace: default_grace(),
            opt_in_expiry: default_expiry(),
            templates: None,
            answers_per_day: default_answers(),
        }
    }
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(6 * 3600))
}
fn default_expiry() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86400))
}

fn berlin() -> TimeZoneName {
    TimeZoneName(chrono_tz::Europe::Berlin)
}
fn german() -> Language {
    Language::De
}
fn default_answers() -> u32 {
    5
}
fn default_retention() -> u32 {
    90
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConference {
    id: Spanned<ConferenceIdStr>,
    title: String,
    #[serde(default)]
    aliases: Vec<String>,
    timezone: Option<TimeZoneName>,
    starts: Spanned<LocalDateTime>,
    ends: Spanned<LocalDateTime>,
    #[serde(default)]
    location: String,
    capacity: Option<u32>,
    #[serde(default = "single")]
    opt_in: OptIn,
    #[serde(default)]
    organizers: Vec<String>,
    #[serde(default)]
    workshops: Vec<Workshop>,
    address: Option<String>,
    #[serde(default, rename = "reminder")]
    reminders: Vec<Reminder>,
    #[serde(default, rename = "digest")]
    digests: Vec<Digest>,
    templates: Option<String>,
    reminder_grace: Option<HumanDuration>,
}

fn single() -> OptIn {
    OptIn::Single
}

// ---------------------------------------------------------------------------
// Value types that validate themselves while being deserialized.

/// "90s", "15m", "6h", "7d", or combinations like "1d12h".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration; write e.g. \"60s\", \"15m\", \"6h\" or \"7d\"".into());
        }
        let mut total: u64 = 0;
        let mut number = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 7 * 86400,
                _ => {
                    return Err(format!(
                        "`{s}` is not a duration: unknown unit `{c}`; use s, m, h, d or w"
                    ));
                }
            };
            let n: u64 = number
                .parse()
                .map_err(|_| format!("`{s}` is not a duration; write e.g. \"60s\" or \"7d\""))?;
            total = total.saturating_add(n.saturating_mul(unit));
            number.clear();
        }
        if !number.is_empty() {
            return Err(format!(
                "`{s}` has no unit; write e.g. \"{s}s\" for seconds"
            ));
        }
        Ok(HumanDuration(Duration::from_secs(total)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(de::Error::custom)
    }
}

/// "25MB", "512KB", "1GB" or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let unit = t[digits.len()..].trim().to_ascii_uppercase();
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a size; write e.g. \"25MB\""))?;
        let factor = match unit.as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1024,
            "M" | "MB" | "MIB" => 1024 * 1024,
            "G" | "GB" | "GIB" => 1024 * 1024 * 1024,
            _ => return Err(format!("`{s}`: unknown unit `{unit}`; use KB, MB or GB")),
        };
        Ok(ByteSize(n.saturating_mul(factor)))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"25MB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LocalTime(pub NaiveTime);

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M")
            .map(LocalTime)
            .map_err(|_| {
                de::Error::custom(format!("`{s}` is not a time of day; write e.g. \"09:00\""))
            })
    }
}

#[derive(Debug, Clone, Copy)]
struct LocalDateTime(NaiveDateTime);

impl<'de> Deserialize<'de> for LocalDateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S"))
            .map(LocalDateTime)
            .map_err(|_| {
                de::Error::custom(format!(
                    "`{s}` is not a local date and time; write e.g. \"2027-10-15T13:30\" (the conference's time zone applies)"
                ))
            })
    }
}

#[derive(Debug, Clone, Copy)]
struct TimeZoneName(Tz);

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Tz>().map(TimeZoneName).map_err(|_| {
            de::Error::custom(format!(
                "`{s}` is not a time zone; write an IANA name such as \"Europe/Berlin\""
            ))
        })
    }
}

#[derive(Debug, Clone)]
struct ConferenceIdStr(String);

impl<'de> Deserialize<'de> for ConferenceIdStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.'
            });
        if ok {
            Ok(ConferenceIdStr(s))
        } else {
            Err(de::Error::custom(format!(
                "conference id `{s}` may only hold lowercase letters, digits, `-`, `_` and `.` (it is used in plus addresses)"
            )))
        }
    }
}

#[derive(Debug, Clone)]
pub struct CronSchedule {
    pub expression: String,
    pub schedule: cron::Schedule,
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<cron::Schedule>()
            .map(|schedule| CronSchedule {
                expression: s.clone(),
                schedule,
            })
            .map_err(|e| {
                de::Error::custom(format!(
                    "`{s}` is not a cron expression ({e}); write seconds minutes hours day month weekday, e.g. \"0 0 8 * * Mon-Fri\""
                ))
            })
    }
}

#[derive(Debug, Clone)]
enum MailboxUrl {
    Imap {
        host: String,
        port: u16,
        tls: Tls,
        user: String,
    },
    Maildir(String),
}

impl<'de> Deserialize<'de> for MailboxUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_mailbox_url(&s).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone)]
enum SmtpUrl {
    Smtp {
        host: String,
        port: u16,
        tls: Tls,
        user: Option<String>,
    },
    File(String),
}

impl<'de> Deserialize<'de> for SmtpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_smtp_url(&s).map_err(de::Error::custom)
    }
}

/// The parts of a `scheme://user@host:port?tls=…` URL.
struct ServerUrl {
    scheme: String,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    tls_none: bool,
}

/// `s` with the password of its user part replaced by `***`, if it has one
/// (`imap://user:secret@host`); None when there is none.
fn url_without_password(s: &str) -> Option<String> {
    let start = s.find("://").map(|i| i + 3).unwrap_or(0);
    let end = s[start..]
        .find(['/', '?'])
        .map(|i| start + i)
        .unwrap_or(s.len());
    let at = start + s[start..end].rfind('@')?;
    let colon = start + s[start..at].find(':')?;
    Some(format!("{}:***{}", &s[..colon], &s[at..]))
}

fn parse_server_url(s: &str) -> Result<ServerUrl, String> {
    // Before any message that quotes the URL: the password must not be repeated.
    if let Some(shown) = url_without_password(s) {
        return Err(format!(
            "`{shown}` contains a password; passwords never sit in the config file: remove it from the URL and put it into password_file (e.g. a systemd credential) or the environment variable"
        ));
    }
    let (scheme, rest) = s.split_once("://").ok_or_else(|| {
        format!("`{s}` is not a URL; it must start with a scheme such as imaps://")
    })?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(percent_decode(u)?), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        // [::1]:143
        let (h, after) = stripped
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed `[` in the host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| format!("`{s}`: `{p}` is not a port number"))?,
            ),
            None => None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(
                    p.parse()
                        .map_err(|_| format!("`{s}`: `{p}` is not a port number"))?,
                ),
            ),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{s}` names no host"));
    }
    let mut tls_none = false;
    if let Some(q) = query {
        for pair in q.split('&') {
            match pair {
                "tls=none" => tls_none = true,
                other => {
                    return Err(format!(
                        "`{s}`: unknown URL option `{other}`; the only option is `tls=none` (loopback hosts only)"
                    ));
                }
            }
        }
    }
    if tls_none && !is_loopback(&host) {
        return Err(format!(
            "`{s}`: tls=none is refused for `{host}` because it is not a loopback address; passwords and attendee data would cross the network in clear text. Use {scheme}s:// or STARTTLS"
        ));
    }
    Ok(ServerUrl {
        scheme: scheme.to_string(),
        user,
        host,
        port,
        tls_none,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("`{s}`: bad percent escape; write `@` in a user name as `%40`")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}`: the user name is not UTF-8"))
}

pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn parse_mailbox_url(s: &str) -> Result<MailboxUrl, String> {
    if let Some(path) = s.strip_prefix("maildir://") {
        if path.is_empty() {
            return Err("maildir:// needs a path, e.g. maildir:///var/lib/rsvpd/inbox".into());
        }
        return Ok(MailboxUrl::Maildir(path.to_string()));
    }
    let u = parse_server_url(s)?;
    let (tls, default_port) = match (u.scheme.as_str(), u.tls_none) {
        ("imaps", false) => (Tls::Implicit, 993),
        ("imaps", true) => {
            return Err(format!(
                "`{s}`: imaps:// with tls=none contradicts itself; use imap://…?tls=none"
            ));
        }
        ("imap", false) => (Tls::StartTls, 143),
        ("imap", true) => (Tls::None, 143),
        (other, _) => {
            return Err(format!(
                "`{s}`: unknown scheme `{other}`; use imaps://, imap:// (STARTTLS) or maildir://"
            ));
        }
    };
    let user = u.user.ok_or_else(|| {
        format!("`{s}` names no user; write imaps://USER@HOST (an `@` in USER as %40)")
    })?;
    Ok(MailboxUrl::Imap {
        host: u.host,
        port: u.port.unwrap_or(default_port),
        tls,
        user,
    })
}

fn parse_smtp_url(s: &str) -> Result<SmtpUrl, String> {
    if let Some(path) = s.strip_prefix("file://") {
        if path.is_empty() {
            return Err("file:// needs a folder, e.g. file:///var/lib/rsvpd/sent".into());
        }
        return Ok(SmtpUrl::File(path.to_string()));
    }
    let u = parse_server_url(s)?;
    let (tls, default_port) = match (u.scheme.as_str(), u.tls_none) {
        ("smtps", false) => (Tls::Implicit, 465),
        ("smtps", true) => {
            return Err(format!(
                "`{s}`: smtps:// with tls=none contradicts itself; use smtp://…?tls=none"
            ));
        }
        ("smtp", false) => (Tls::StartTls, 587),
        ("smtp", true) => (Tls::None, 25),
        (other, _) => {
            return Err(format!(
                "`{s}`: unknown scheme `{other}`; use smtps://, smtp:// (STARTTLS) or file://"
            ));
        }
    };
    Ok(SmtpUrl::Smtp {
        host: u.host,
        port: u.port.unwrap_or(default_port),
        tls,
        user: u.user,
    })
}

// ---------------------------------------------------------------------------

/// Where to look for the config: `--config`, then `$RSVPD_CONFIG`, then /etc.
pub fn resolve_path(arg: Option<&Path>) -> PathBuf {
    if let Some(p) = arg {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("RSVPD_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from("/etc/rsvpd/rsvpd.toml")
}

/// `msg` about the value at `offset`, led by its key and table when the
/// message does not name them ("invalid type: string \"200\", expected u32"
/// becomes "[[conference]] capacity: …; write the number without quotes").
fn with_key(text: &str, offset: usize, msg: &str) -> String {
    static KEY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"([A-Za-z0-9_.-]+|"[^"]*")\s*=\s*[\[{]?\s*$"#).expect("a valid regex")
    });
    static TABLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?m)^\s*(\[\[?[^\]]+\]\]?)").expect("a valid regex")
    });
    let offset = offset.min(text.len());
    if msg.contains("field `") || !text.is_char_boundary(offset) {
        // serde already named it ("unknown field `x`", "missing field `url`").
        return msg.to_string();
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let Some(key) = KEY
        .captures(&text[line_start..offset])
        .map(|c| c[1].to_string())
    else {
        return msg.to_string();
    };
    let table = TABLE
        .captures_iter(&text[..line_start])
        .last()
        .map(|c| format!("{} ", &c[1]))
        .unwrap_or_default();
    let number = ["u8", "u16", "u32", "u64", "i64", "integer"]
        .iter()
        .any(|t| msg.ends_with(&format!("expected {t}")));
    let hint = if msg.starts_with("invalid type: string") && number {
        format!("; write the number without quotes, e.g. {key} = 200")
    } else {
        String::new()
    };
    format!("{table}{key}: {msg}{hint}")
}

/// A config problem located in the file: "FILE line N: message".
fn at_line(path: &Path, text: &str, offset: usize, msg: impl fmt::Display) -> anyhow::Error {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    anyhow::anyhow!("{} line {}: {}", path.display(), line, msg)
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the config file {}; pass --config PATH or set RSVPD_CONFIG (`rsvpd default-config` prints an example)",
                path.display()
            )
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parse `text` as if read from `path`; `env` looks up environment variables.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        // Only the message and our own wording: toml's Display quotes the
        // line, which may hold a secret someone pasted by mistake.
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            match e.span() {
                Some(span) => at_line(path, text, span.start, with_key(text, span.start, &msg)),
                None => anyhow::anyhow!("{}: {}", path.display(), msg),
            }
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        // [mailbox]
        let m = raw.mailbox;
        let url_offset = m.url.span().start;
        let source = match m.url.into_inner() {
            MailboxUrl::Maildir(p) => MailboxSource::Maildir(resolve(&p)),
            MailboxUrl::Imap {
                host,
                port,
                tls,
                user,
            } => {
                let password = password_source("[mailbox]", m.password_file.as_deref(), "RSVPD_IMAP_PASSWORD", &resolve, env)
                    .ok_or_else(|| {
                        at_line(
                            path,
                            text,
                            url_offset,
                            "[mailbox] has no password: set `password_file` (e.g. a systemd credential) or the environment variable RSVPD_IMAP_PASSWORD",
                        )
                    })?;
                MailboxSource::Imap(ImapServer {
                    host,
                    port,
                    tls,
                    user,
                    password,
                    ca_file: m.ca_file.as_deref().map(&resolve),
                })
            }
        };
        let address = match m.address {
            Some(a) => {
                let off = a.span().start;
                let a = a.into_inner();
                if !looks_like_address(&a) {
                    return Err(at_line(
                        path,
                        text,
                        off,
                        format!("[mailbox] address `{a}` is not an email address"),
                    ));
                }
                a.to_lowercase()
            }
            None => String::new(),
        };

        // [smtp]
        let s = raw.smtp;
        let smtp_offset = s.url.span().start;
        let transport = match s.url.into_inner() {
            SmtpUrl::File(p) => SmtpTransportConfig::File(resolve(&p)),
            SmtpUrl::Smtp {
                host,
                port,
                tls,
                user,
            } => {
                let password = password_source(
                    "[smtp]",
                    s.password_file.as_deref(),
                    "RSVPD_SMTP_PASSWORD",
                    &resolve,
                    env,
                );
                if user.is_some() && password.is_none() {
                    return Err(at_line(
                        path,
                        text,
                        smtp_offset,
                        "[smtp] names a user but no password: set `password_file` or the environment variable RSVPD_SMTP_PASSWORD",
                    ));
                }
                SmtpTransportConfig::Smtp(SmtpServer {
                    password: password.filter(|_| user.is_some()),
                    host,
                    port,
                    tls,
                    user,
                    ca_file: s.ca_file.as_deref().map(&resolve),
                })
            }
        };
        let from_offset = s.from.span().start;
        let from: lettre::message::Mailbox = s.from.into_inner().parse().map_err(|e| {
            at_line(
                path,
                text,
                from_offset,
                format!("[smtp] from is not a mail address ({e}); write e.g. \"Anmeldung <anmeldung@example.org>\""),
            )
        })?;
        let address = if address.is_empty() {
            from.email.to_string().to_lowercase()
        } else {
            address
        };

        // [database]
        let db_offset = raw.database.url.span().start;
        let db_url = raw.database.url.into_inner();
        let database = if let Some(p) = db_url.strip_prefix("sqlite://") {
            DatabaseConfig::Sqlite { path: resolve(p) }
        } else if let Some(p) = db_url.strip_prefix("sqlite:") {
            DatabaseConfig::Sqlite { path: resolve(p) }
        } else if db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") {
            let bad =
                |what: String| at_line(path, text, db_offset, format!("[database] url: {what}"));
            // Before any message that quotes the URL.
            if let Some(shown) = url_without_password(&db_url) {
                return Err(bad(format!(
                    "`{shown}` contains a password; it does not belong in the file: put it in [database] password_file or RSVPD_DATABASE_PASSWORD"
                )));
            }
            let parsed = url::Url::parse(&db_url).map_err(|e| {
                bad(format!(
                    "`{db_url}` is not a URL ({e}); write postgres://USER@HOST:PORT/DB"
                ))
            })?;
            if parsed.password().is_some() {
                return Err(bad(
                    "a password does not belong in the file; put it in [database] password_file or RSVPD_DATABASE_PASSWORD".into(),
                ));
            }
            if parsed.host_str().is_none_or(str::is_empty)
                || parsed.path().trim_matches('/').is_empty()
            {
                return Err(bad(format!(
                    "`{db_url}` names no server or no database; write postgres://USER@HOST:PORT/DB"
                )));
            }
            let password = read_secret(
                raw.database.password_file.as_deref(),
                "RSVPD_DATABASE_PASSWORD",
                &resolve,
                env,
            )
            .map_err(|e| at_line(path, text, db_offset, format!("[database] {e}")))?;
            DatabaseConfig::Postgres {
                url: db_url.clone(),
                password,
            }
        } else {
            return Err(at_line(
                path,
                text,
                db_offset,
                format!(
                    "[database] url `{db_url}` is not a database URL; write sqlite:///var/lib/rsvpd/rsvpd.db or postgres://USER@HOST:PORT/DB"
                ),
            ));
        };
        if raw.database.password_file.is_some() && matches!(database, DatabaseConfig::Sqlite { .. })
        {
            return Err(at_line(
                path,
                text,
                db_offset,
                "[database] password_file is for PostgreSQL; a SQLite database has no password",
            ));
        }

        let defaults = Defaults {
            timezone: raw.defaults.timezone.0,
            language: raw.defaults.language,
            retention_days: raw.defaults.retention_days,
            reminder_grace: raw.defaults.reminder_grace.0,
            opt_in_expiry: raw.defaults.opt_in_expiry.0,
            templates: raw.defaults.templates.as_deref().map(&resolve),
            answers_per_day: raw.defaults.answers_per_day,
        };
        if defaults.opt_in_expiry.is_zero() {
            return Err(anyhow::anyhow!(
                "{}: [defaults] opt_in_expiry must be longer than 0s; write e.g. \"7d\"",
                path.display()
            ));
        }

        // [[conference]]
        let mut conferences = Vec::new();
        for c in raw.conferences {
            let id_offset = c.id.span().start;
            let id = c.id.into_inner().0;
            if conferences.iter().any(|o: &Conference| o.id == id) {
                return Err(at_line(
                    path,
                    text,
                    id_offset,
                    format!("conference id `{id}` appears twice"),
                ));
            }
            let tz = c.timezone.map(|t| t.0).unwrap_or(defaults.timezone);
            let starts_offset = c.starts.span().start;
            let ends_offset = c.ends.span().start;
            let starts = local_to_utc(tz, c.starts.into_inner().0).map_err(|e| {
                at_line(
                    path,
                    text,
                    starts_offset,
                    format!("conference `{id}` starts: {e}"),
                )
            })?;
            let ends = local_to_utc(tz, c.ends.into_inner().0).map_err(|e| {
                at_line(
                    path,
                    text,
                    ends_offset,
                    format!("conference `{id}` ends: {e}"),
                )
            })?;
            if ends <= starts {
                return Err(at_line(
                    path,
                    text,
                    ends_offset,
                    format!("conference `{id}` ends before it starts"),
                ));
            }
            for o in &c.organizers {
                if !looks_like_address(o) {
                    return Err(at_line(
                        path,
                        text,
                        id_offset,
                        format!("conference `{id}`: organizer `{o}` is not an email address"),
                    ));
                }
            }
            if !c.digests.is_empty() && c.organizers.is_empty() {
                return Err(at_line(
                    path,
                    text,
                    id_offset,
                    format!(
                        "conference `{id}` has a [[conference.digest]] but no organizers to send it to; add organizers = [\"orga@example.org\"]"
                    ),
                ));
            }
            for r in &c.reminders {
                let due = r.due(tz, starts);
                if due >= starts {
                    return Err(at_line(
                        path,
                        text,
                        id_offset,
                        format!(
                            "conference `{id}`: the reminder `{}` would fire at {} or later, when the conference has started; give a larger `before` or an earlier `at`",
                            r.key(),
                            starts.with_timezone(&tz).format("%Y-%m-%d %H:%M")
                        ),
                    ));
                }
            }
            conferences.push(Conference {
                templates: c.templates.as_deref().map(&resolve),
                reminder_grace: c
                    .reminder_grace
                    .map(|g| g.0)
                    .unwrap_or(defaults.reminder_grace),
                id,
                title: c.title,
                aliases: c.aliases,
                timezone: tz,
                starts,
                ends,
                location: c.location,
                capacity: c.capacity,
                opt_in: c.opt_in,
                organizers: c.organizers,
                workshops: c.workshops,
                address: c.address.map(|a| a.to_lowercase()),
                reminders: c.reminders,
                digests: c.digests,
            });
        }

        let web = match raw.web {
            None => None,
            Some(w) => Some(parse_web(path, text, w, &conferences)?),
        };

        Ok(Config {
            path: path.to_path_buf(),
            mailbox: MailboxConfig {
                source,
                folder: m.folder,
                processed_folder: m.processed_folder,
                review_folder: m.review_folder,
                idle: m.idle,
                poll_interval: m.poll_interval.0,
                timeout: m.timeout.0,
                max_message_size: m.max_message_size.0,
                address,
            },
            smtp: SmtpConfig {
                transport,
                from,
                max_per_minute: s.max_per_minute.max(1),
                timeout: s.timeout.0,
            },
            database,
            defaults,
            conferences,
            web,
        })
    }

    pub fn conference(&self, id: &str) -> Option<&Conference> {
        self.conferences.iter().find(|c| c.id == id)
    }
}

fn parse_web(
    path: &Path,
    text: &str,
    w: RawWeb,
    conferences: &[Conference],
) -> anyhow::Result<WebConfig> {
    let off = w.listen.span().start;
    let listen_text = w.listen.into_inner();
    let listen: std::net::SocketAddr = listen_text.parse().map_err(|_| {
        at_line(
            path,
            text,
            off,
            format!("[web] listen `{listen_text}` is not an address and port; write e.g. \"127.0.0.1:8080\""),
        )
    })?;
    let public_url = match w.public_url {
        None => None,
        Some(u) => {
            let off = u.span().start;
            let u = u.into_inner();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(at_line(
                    path,
                    text,
                    off,
                    format!(
                        "[web] public_url `{u}` must start with https:// (or http://); write e.g. \"https://anmeldung.example.org/\""
                    ),
                ));
            }
            Some(u)
        }
    };
    let mut users: Vec<WebUser> = Vec::new();
    for u in w.users {
        let name_off = u.name.span().start;
        let name = u.name.into_inner();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(at_line(
                path,
                text,
                name_off,
                "[[web.user]] name must be a non-empty word without control characters",
            ));
        }
        if users.iter().any(|o| o.name == name) {
            return Err(at_line(
                path,
                text,
                name_off,
                format!("[[web.user]] `{name}` appears twice"),
            ));
        }
        let hash_off = u.password_hash.span().start;
        let hash = u.password_hash.into_inner();
        if !hash.starts_with("$argon2id$") {
            return Err(at_line(
                path,
                text,
                hash_off,
                format!(
                    "[[web.user]] `{name}`: password_hash is not an argon2id hash; create one with `rsvpd hash-password` (it reads the password on stdin)"
                ),
            ));
        }
        for c in &u.conferences {
            if c != "*" && !conferences.iter().any(|k| &k.id == c) {
                return Err(at_line(
                    path,
                    text,
                    name_off,
                    format!(
                        "[[web.user]] `{name}`: conference `{c}` is not configured; use a [[conference]] id or \"*\" for all"
                    ),
                ));
            }
        }
        users.push(WebUser {
            name,
            password_hash: Secret(hash),
            conferences: u.conferences,
        });
    }
    Ok(WebConfig {
        listen,
        public_url,
        users,
        unhealthy_after: w.unhealthy_after.0,
    })
}

fn looks_like_address(s: &str) -> bool {
    s.parse::<lettre::Address>().is_ok()
}

/// Where the password of `section` comes from: `password_file` (read later,
/// when a command connects), else the environment variable `env_name`.
fn password_source(
    section: &'static str,
    file: Option<&str>,
    env_name: &'static str,
    resolve: &dyn Fn(&str) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PasswordSource> {
    let from = match file {
        Some(f) => PasswordFrom::File(resolve(f)),
        None => PasswordFrom::Env(env_name, Secret(env(env_name).filter(|s| !s.is_empty())?)),
    };
    Some(PasswordSource { section, from })
}

/// The database password, read now: every command that uses the database
/// connects to it at once (the mail servers' passwords wait, see
/// `PasswordSource`).
fn read_secret(
    file: Option<&str>,
    env_name: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Secret>> {
    if let Some(f) = file {
        let p = resolve(f);
        let s = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read password_file {}", p.display()))?;
        let s = s.trim_end_matches(['\r', '\n']).to_string();
        if s.is_empty() {
            bail!("password_file {} is empty", p.display());
        }
        return Ok(Some(Secret(s)));
    }
    Ok(env(env_name).filter(|s| !s.is_empty()).map(Secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[mailbox]
url = "imap://anmeldung%40example.org@127.0.0.1:1143?tls=none"
[smtp]
url = "smtp://127.0.0.1:2525?tls=none"
from = "Anmeldung <anmeldung@example.org>"
[database]
url = "sqlite://rsvpd.db"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
[[conference.reminder]]
before = "7d"
at = "09:00"
"#;

    fn env(name: &str) -> Option<String> {
        (name == "RSVPD_IMAP_PASSWORD").then(|| "pw".to_string())
    }

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse(Path::new("/etc/rsvpd/rsvpd.toml"), text, &env)
    }

    #[test]
    fn good_config_parses() {
        let c = parse(GOOD).expect("parses");
        match &c.mailbox.source {
            MailboxSource::Imap(s) => {
                assert_eq!(s.user, "anmeldung@example.org");
                assert_eq!(s.port, 1143);
                assert_eq!(s.tls, Tls::None);
                assert_eq!(s.password.read().expect("env password").expose(), "pw");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&c.database, DatabaseConfig::Sqlite { path } if path == Path::new("/etc/rsvpd/rsvpd.db")),
            "{:?}",
            c.database
        );
        assert_eq!(c.mailbox.address, "anmeldung@example.org");
        // 13:30 CEST is 11:30 UTC.
        assert_eq!(
            c.conferences[0].starts.to_rfc3339(),
            "2027-10-15T11:30:00+00:00"
        );
    }

    #[test]
    fn a_type_error_names_the_key_its_table_and_the_line() {
        let text = GOOD.replace(
            "ends = \"2027-10-15T19:30\"",
            "ends = \"2027-10-15T19:30\"\ncapacity = \"200\"",
        );
        let e = format!("{:#}", parse(&text).expect_err("must fail"));
        assert!(
            e.contains("line 14")
                && e.contains("[[conference]] capacity: invalid type: string \"200\"")
                && e.contains("without quotes"),
            "{e}"
        );
        let text = GOOD.replace("[smtp]\n", "[smtp]\nmax_per_minute = true\n");
        let e = format!("{:#}", parse(&text).expect_err("must fail"));
        assert!(
            e.contains("[smtp] max_per_minute: invalid type: boolean"),
            "{e}"
        );
    }

    #[test]
    fn a_password_in_a_url_is_refused_without_repeating_it() {
        for (from, to) in [
            (
                "imap://anmeldung%40example.org@127.0.0.1:1143?tls=none",
                "imap://anmeldung%40example.org:Geheim%2F123@127.0.0.1:1143?tls=none",
            ),
            (
                "smtp://127.0.0.1:2525?tls=none",
                "smtp://orga:Geheim%2F123@127.0.0.1:2525?tls=none",
            ),
        ] {
            let e = format!(
                "{:#}",
                parse(&GOOD.replace(from, to)).expect_err("must fail")
            );
            assert!(
                e.contains("contains a password") && e.contains("password_file"),
                "{e}"
            );
            assert!(!e.contains("Geheim"), "{e}");
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = GOOD.replace("title = \"Vierte", "titel = \"x\"\ntitle = \"Vierte");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("titel"), "{e}");
        assert!(e.contains("line 11"), "{e}");
    }

    #[test]
    fn tls_none_refused_off_loopback() {
        let text = GOOD.replace("127.0.0.1:1143", "imap.example.org:143");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("tls=none is refused"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn missing_password_is_explained() {
        let e = Config::parse(Path::new("x.toml"), GOOD, &|_| None).unwrap_err();
        assert!(format!("{e:#}").contains("RSVPD_IMAP_PASSWORD"));
    }

    #[test]
    fn bad_duration_and_date_name_the_line() {
        let text = GOOD.replace("before = \"7d\"", "before = \"7 days\"");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("line 15"), "{e}");
        let text = GOOD.replace("2027-10-15T19:30", "15.10.2027 19:30");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            e.contains("line 13") && e.contains("2027-10-15T13:30"),
            "{e}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("25MB").unwrap().0, 25 * 1024 * 1024);
        assert_eq!(ByteSize::parse("512 kb").unwrap().0, 512 * 1024);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("5 TB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(HumanDuration::parse("90s").unwrap().0.as_secs(), 90);
        assert_eq!(HumanDuration::parse("1d12h").unwrap().0.as_secs(), 129600);
        assert!(HumanDuration::parse("12").is_err());
        assert!(HumanDuration::parse("3x").is_err());
    }

    #[test]
    fn example_config_parses() {
        let e = |n: &str| Some(format!("secret-{n}"));
        // The credential files exist only under systemd; the environment stands in.
        let text: String = EXAMPLE
            .lines()
            .filter(|l| !l.starts_with("password_file"))
            .map(|l| format!("{l}\n"))
            .collect();
        let c =
            Config::parse(Path::new("/etc/rsvpd/rsvpd.toml"), &text, &e).expect("example parses");
        assert!(!c.conferences.is_empty());
    }

    #[test]
    fn notify_keys_parse_with_defaults_and_overrides() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.defaults.reminder_grace, Duration::from_secs(6 * 3600));
        assert_eq!(c.defaults.opt_in_expiry, Duration::from_secs(7 * 86400));
        assert!(c.defaults.templates.is_none());
        assert_eq!(c.conferences[0].reminder_grace, c.defaults.reminder_grace);
        let text = GOOD
            .replace(
                "[[conference]]",
                "[defaults]\nreminder_grace = \"2h\"\nopt_in_expiry = \"3d\"\ntemplates = \"tpl\"\n[[conference]]",
            )
            .replace(
                "ends = \"2027-10-15T19:30\"",
                "ends = \"2027-10-15T19:30\"\nreminder_grace = \"30m\"\ntemplates = \"tpl/miko\"",
            );
        let c = parse(&text).unwrap();
        assert_eq!(c.defaults.reminder_grace, Duration::from_secs(7200));
        assert_eq!(c.defaults.opt_in_expiry, Duration::from_secs(3 * 86400));
        assert_eq!(
            c.defaults.templates.as_deref(),
            Some(Path::new("/etc/rsvpd/tpl"))
        );
        assert_eq!(c.conferences[0].reminder_grace, Duration::from_secs(1800));
        assert_eq!(
            c.conferences[0].templates.as_deref(),
            Some(Path::new("/etc/rsvpd/tpl/miko"))
        );
        assert_eq!(
            c.conferences[0].reminders[0].key(),
            "before=604800s at=09:00"
        );
    }

    #[test]
    fn a_digest_without_organizers_is_refused() {
        let text = format!("{GOOD}[[conference.digest]]\ncron = \"0 0 8 * * *\"\n");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("no organizers") && e.contains("line 10"), "{e}");
    }

    #[test]
    fn a_reminder_after_the_start_is_refused() {
        let text = GOOD.replace(
            "before = \"7d\"\nat = \"09:00\"",
            "before = \"1h\"\nat = \"14:00\"",
        );
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("when the conference has started"), "{e}");
    }

    #[test]
    fn secret_is_not_printed() {
        let c = parse(GOOD).unwrap();
        assert!(!format!("{c:?}").contains("\"pw\""));
    }

    const WEB: &str = r#"
[web]
listen = "127.0.0.1:8080"
public_url = "https://anmeldung.example.org/"
[[web.user]]
name = "orga"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
conferences = ["miko-2027"]
"#;

    #[test]
    fn web_section_parses() {
        let c = parse(&format!("{GOOD}{WEB}")).expect("parses");
        let web = c.web.expect("web");
        assert_eq!(web.listen.to_string(), "127.0.0.1:8080");
        assert!(web.secure_cookies());
        assert_eq!(web.users.len(), 1);
        assert!(web.users[0].may_see("miko-2027"));
        assert!(!web.users[0].may_see("fishbowl"));
        assert!(parse(GOOD).expect("parses").web.is_none());
    }

    #[test]
    fn web_section_errors_name_key_and_line() {
        let text = format!("{GOOD}{WEB}").replace("127.0.0.1:8080", "localhost");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("[web] listen") && e.contains("line 19"), "{e}");
        let text = format!("{GOOD}{WEB}").replace("$argon2id$v=19", "plaintext");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            e.contains("rsvpd hash-password") && e.contains("line 23"),
            "{e}"
        );
        let text = format!("{GOOD}{WEB}").replace("[\"miko-2027\"]", "[\"miko-2028\"]");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            e.contains("miko-2028") && e.contains("not configured"),
            "{e}"
        );
        let text = format!("{GOOD}{WEB}").replace("public_url", "publik_url");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(e.contains("publik_url"), "{e}");
    }
}
