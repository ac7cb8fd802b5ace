//! Rendering: snapshots of every built-in template (kinds × languages),
//! escaping of attendee text in HTML, and organizers' overrides.
//!
//! Snapshots live in `tests/snapshots/KIND.LANG.snap` as a readable view of
//! the message (headers, then each part decoded) with Message-ID, Date, MIME
//! boundaries and DTSTAMP replaced by placeholders. A mismatch writes
//! `KIND.LANG.snap.actual` beside the snapshot and fails;
//! `RSVPD_UPDATE_SNAPSHOTS=1 cargo test --lib snapshot` rewrites them.

use std::path::PathBuf;

use mail_parser::{MimeHeaders as _, PartType};
use regex::Regex;

use super::*;
use crate::storage::{Ended, ReviewItem};
use crate::test_support::{self as t, utc};

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
    assert_eq!(local_moment(t, Language::De), "15.10.2027, 13:30 Uhr");
    assert_eq!(local_moment(t, Language::En), "15 October 2027, 13:30");
}

const CONF: &str = r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
location = "Mosaiksaal, Neues Rathaus, Trammplatz 2, 30159 Hannover"
capacity = 200
organizers = ["orga@example.org"]
workshops = [{ id = "w1", title = "Teilhabe in Gremien" }, { id = "w2", title = "Antidiskriminierung" }]
"#;

fn renderer(rest: &str) -> (tempfile::TempDir, Config, Renderer) {
    let (dir, config) = t::config(rest);
    let config = config.expect("config parses");
    let renderer = Renderer::new(&config).expect("renderer");
    (dir, config, renderer)
}

const NOW: &str = "2027-09-06T07:14:02Z";

fn registration(conf: &Conference, lang: Language) -> Registration {
    let mut r = sample_registration(conf, lang, utc(NOW));
    r.workshops = vec!["w1".into(), "w2".into()];
    r
}

fn render_kind(r: &Renderer, conf: &Conference, kind: Kind, lang: Language) -> Rendered {
    let reg = registration(conf, lang);
    let now = utc(NOW);
    match kind {
        Kind::OptIn => r
            .render_opt_in(
                conf,
                &reg,
                "K7X2Q9PF4M",
                utc("2027-09-13T07:14:02Z"),
                Some("reg-1@example.net"),
                now,
            )
            .expect("renders"),
        Kind::Digest => {
            let mut reg = reg;
            reg.registered_at = utc("2027-09-05T16:00:00Z");
            let mut d = DigestData {
                since: Some(utc("2027-09-05T06:00:00Z")),
                until: utc("2027-09-06T06:00:00Z"),
                new: vec![reg.clone()],
                ended: vec![Ended {
                    registration: Registration {
                        email: crate::domain::EmailAddress::parse("omar@example.com").unwrap(),
                        name: Some("Omar Haddad".into()),
                        party_size: 1,
                        status: Status::Cancelled,
                        ..reg.clone()
                    },
                    action: "cancel".into(),
                    at: utc("2027-09-05T15:20:00Z"),
                }],
                review: vec![ReviewItem {
                    id: 7,
                    message_id: "q-1@example.com".into(),
                    from: Some("p.schmidt@example.com".into()),
                    subject: "Frage zu Parkplätzen".into(),
                    reason: "no registration recognised".into(),
                    received_at: "2027-09-05T10:02:00Z".into(),
                    conference: None,
                    explanation: None,
                }],
                failed: vec![crate::storage::FailedMail {
                    recipient: "gone@example.com".into(),
                    kind: crate::domain::OutboxKind::Confirmation,
                    error: "127.0.0.1:25: permanent error (550): 5.1.1 User unknown".into(),
                    at: utc("2027-09-05T12:00:00Z"),
                }],
                delivery: Some(crate::storage::DeliveryPause {
                    since: utc("2027-09-06T02:10:00Z"),
                    until: utc("2027-09-06T06:10:00Z"),
                    failures: 6,
                    stage: "login".into(),
                    error: "SMTP server smtp.example.org:587: login refused: permanent error (535): 5.7.8 Authentication failed".into(),
                    fix: crate::mailer::Stage::Login.fix().into(),
                    ended_at: None,
                }),
                all: vec![reg.clone()],
            };
            d.all.push(d.ended[0].registration.clone());
            let csv = crate::export::attendees_csv(&[reg]).expect("csv");
            // Digests are written in `[defaults] language`.
            let (_dir, _config, english) =
                renderer(&format!("[defaults]\nlanguage = \"en\"\n{CONF}"));
            let r = if lang == Language::En { &english } else { r };
            r.render_digest(conf, "orga@example.org", &d, csv, now)
                .expect("renders")
        }
        _ => r
            .render(kind, conf, &reg, false, Some("reg-1@example.net"), now)
            .expect("renders"),
    }
}

/// The message as a reviewer reads it, with what changes per run replaced.
fn view(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parses");
    let mut out = String::new();
    let addr = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .map(|a| match (&a.name, &a.address) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_string(),
                _ => String::new(),
            })
    };
    for (name, value) in [
        ("From", addr(m.from())),
        ("To", addr(m.to())),
        ("Reply-To", addr(m.reply_to())),
        ("Subject", m.subject().map(str::to_string)),
    ] {
        if let Some(v) = value {
            out.push_str(&format!("{name}: {v}\n"));
        }
    }
    for name in [
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "Content-Type",
    ] {
        if let Some(v) = m.header_raw(name) {
            out.push_str(&format!("{name}: {}\n", v.trim()));
        }
    }
    for part in m.parts.iter().skip(1) {
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let ct = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
            .unwrap_or_default();
        let name = part
            .attachment_name()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        out.push_str(&format!("\n--- {ct}{name}\n"));
        let body = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            _ => String::new(),
        };
        out.push_str(&body.replace("\r\n", "\n"));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    normalize(&out)
}

fn normalize(s: &str) -> String {
    let date = Regex::new(r"(?m)^Date: .*$").unwrap();
    let id = Regex::new(r"<[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@").unwrap();
    let boundary = Regex::new(r#"boundary="?[^";\s]+"?"#).unwrap();
    let stamp = Regex::new(r"DTSTAMP:\d{8}T\d{6}Z").unwrap();
    let s = date.replace_all(s, "Date: DATE");
    let s = id.replace_all(&s, "<MESSAGE-ID@");
    let s = boundary.replace_all(&s, "boundary=\"BOUNDARY\"");
    stamp.replace_all(&s, "DTSTAMP:DTSTAMP").into_owned()
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Compare `actual` with the snapshot `name`; a mismatch writes `.actual`.
fn check_snapshot(name: &str, actual: &str) -> Result<(), String> {
    let path = snapshot_dir().join(format!("{name}.snap"));
    let actual_path = snapshot_dir().join(format!("{name}.snap.actual"));
    if std::env::var_os("RSVPD_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snapshot_dir()).expect("snapshot dir");
        std::fs::write(&path, actual).expect("write snapshot");
        let _ = std::fs::remove_file(&actual_path);
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected == actual {
        let _ = std::fs::remove_file(&actual_path);
        Ok(())
    } else {
        std::fs::write(&actual_path, actual).expect("write .actual");
        Err(format!(
            "{} differs; see {} (RSVPD_UPDATE_SNAPSHOTS=1 accepts it)",
            path.display(),
            actual_path.display()
        ))
    }
}

#[test]
fn snapshot_of_every_built_in_template() {
    let (_dir, config, r) = renderer(CONF);
    let conf = &config.conferences[0];
    let mut failures = Vec::new();
    for kind in Kind::ALL {
        for lang in LANGUAGES {
            let rendered = render_kind(&r, conf, kind, lang);
            let name = format!("{}.{}", kind.as_str(), lang.code());
            if let Err(e) = check_snapshot(&name, &view(&rendered.raw)) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invites_ride_on_confirmations_promotions_and_reminders_only() {
    let (_dir, config, r) = renderer(CONF);
    let conf = &config.conferences[0];
    for kind in Kind::ALL {
        let rendered = render_kind(&r, conf, kind, Language::De);
        let m = mail_parser::MessageParser::default()
            .parse(&rendered.raw)
            .expect("parses");
        let has_ics = m
            .attachments()
            .any(|a| a.attachment_name() == Some("miko-2027.ics"));
        assert_eq!(has_ics, kind.carries_invite(), "{kind:?}");
    }
}

#[test]
fn attendee_text_is_escaped_in_html_and_kept_in_text() {
    let (_dir, config, r) = renderer(CONF);
    let conf = &config.conferences[0];
    let mut reg = registration(conf, Language::De);
    reg.name = Some("<script>alert(1)</script>".into());
    reg.notes = vec!["\"Rollstuhl\" & <b>Hund</b>".into()];
    reg.companions = vec!["<img src=x onerror=alert(2)>".into()];
    for kind in [Kind::Confirmation, Kind::Reminder, Kind::Waitlist] {
        let rendered = r
            .render(kind, conf, &reg, false, None, utc(NOW))
            .expect("renders");
        let m = mail_parser::MessageParser::default()
            .parse(&rendered.raw)
            .expect("parses");
        let html = m.body_html(0).expect("html").into_owned();
        assert!(!html.contains("<script>"), "{kind:?}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{kind:?}: {html}"
        );
        assert!(!html.contains("<img"), "{html}");
        if kind != Kind::Reminder {
            assert!(!html.contains("<b>Hund"), "{html}");
        }
        let text = m.body_text(0).expect("text").into_owned();
        assert!(text.contains("<script>alert(1)</script>"), "{text}");
    }
}

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

#[test]
fn overrides_per_conference_then_global_then_built_in() {
    let tmp = tempfile::tempdir().expect("tmp");
    let global = tmp.path().join("global");
    let own = tmp.path().join("miko");
    write(
        &global,
        "confirmation/de/subject",
        "Global: {{ conference.title }}",
    );
    write(&own, "confirmation/de/subject", "MiKo: Danke, {{ name }}!");
    write(&own, "confirmation/de/body.html", "<p>Hallo {{ name }}</p>");
    let rest = format!(
        "[defaults]\ntemplates = \"{}\"\n{CONF}templates = \"{}\"\n\n[[conference]]\nid = \"other\"\ntitle = \"Andere\"\nstarts = \"2027-11-01T10:00\"\nends = \"2027-11-01T12:00\"\n",
        global.display(),
        own.display()
    );
    let (_dir, config, r) = renderer(&rest);
    let miko = config.conference("miko-2027").expect("miko");
    let other = config.conference("other").expect("other");
    let mut reg = registration(miko, Language::De);
    reg.name = Some("<Ayşe>".into());
    let m = r
        .render(Kind::Confirmation, miko, &reg, false, None, utc(NOW))
        .expect("renders");
    assert_eq!(m.subject, "MiKo: Danke, <Ayşe>!");
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.raw)
        .expect("parses");
    assert_eq!(
        parsed.body_html(0).expect("html").trim(),
        "<p>Hallo &lt;Ayşe&gt;</p>",
        "an overridden HTML part is escaped too"
    );
    let o = r
        .render(Kind::Confirmation, other, &reg, false, None, utc(NOW))
        .expect("renders");
    assert_eq!(o.subject, "Global: Andere");
    let en = registration(miko, Language::En);
    let e = r
        .render(Kind::Confirmation, miko, &en, false, None, utc(NOW))
        .expect("renders");
    assert_eq!(
        e.subject,
        "Registration confirmed: Vierte Migrationskonferenz"
    );
}

#[test]
fn a_broken_override_fails_at_start_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "reminder/en/body.txt", "Hello {{ nmae }}");
    let rest = format!(
        "[defaults]\ntemplates = \"{}\"\n{CONF}",
        tmp.path().display()
    );
    let (_dir, config) = t::config(&rest);
    let e = format!(
        "{:#}",
        Renderer::new(&config.expect("config"))
            .err()
            .expect("fails")
    );
    assert!(e.contains("reminder/en/body.txt"), "{e}");
    assert!(e.contains("nmae") || e.contains("undefined"), "{e}");

    let tmp = tempfile::tempdir().expect("tmp");
    write(tmp.path(), "confirmaton/de/subject", "x");
    let rest = format!(
        "[defaults]\ntemplates = \"{}\"\n{CONF}",
        tmp.path().display()
    );
    let (_dir, config) = t::config(&rest);
    let e = format!(
        "{:#}",
        Renderer::new(&config.expect("config"))
            .err()
            .expect("fails")
    );
    assert!(e.contains("`confirmaton` is not a kind of mail"), "{e}");

    let rest = format!("[defaults]\ntemplates = \"/nonexistent/rsvpd\"\n{CONF}");
    let (_dir, config) = t::config(&rest);
    let e = format!(
        "{:#}",
        Renderer::new(&config.expect("config"))
            .err()
            .expect("fails")
    );
    assert!(e.contains("/nonexistent/rsvpd"), "{e}");
}

#[test]
fn the_templates_readme_documents_every_placeholder() {
    let readme = include_str!("../../templates/README.md");
    let (_dir, config, r) = renderer(CONF);
    let conf = &config.conferences[0];
    let ctx = serde_json::to_value(r.context(conf, &registration(conf, Language::De), false))
        .expect("json");
    let digest =
        serde_json::to_value(r.digest_context(conf, &sample_digest(conf, utc(NOW)), Language::De))
            .expect("json");
    let mut missing = Vec::new();
    for value in [ctx, digest] {
        let serde_json::Value::Object(map) = value else {
            panic!("a context is an object");
        };
        for (k, v) in map {
            if !v.is_object() && !readme.contains(&format!("`{k}`")) {
                missing.push(k.clone());
            }
            if let serde_json::Value::Object(inner) = &v {
                for ik in inner.keys() {
                    if !readme.contains(&format!("`{k}.{ik}`")) {
                        missing.push(format!("{k}.{ik}"));
                    }
                }
            }
            if let serde_json::Value::Array(items) = &v {
                for item in items {
                    if let serde_json::Value::Object(inner) = item {
                        for ik in inner.keys() {
                            if !readme.contains(&format!(".{ik}`")) {
                                missing.push(format!("{k}[].{ik}"));
                            }
                        }
                    }
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "templates/README.md lacks {missing:?}");
}

/// Regression: the German digest carried the log's English texts for a
/// paused delivery ("login refused", "check the user in [smtp] url …").
#[test]
fn the_german_digest_says_what_paused_sending_in_german() {
    let (_dir, config, r) = renderer(CONF);
    let conf = &config.conferences[0];
    let rendered = render_kind(&r, conf, Kind::Digest, Language::De);
    let text = view(&rendered.raw);
    assert!(
        text.contains(
            "SMTP-Server smtp.example.org:587: Anmeldung abgelehnt: permanent error (535)"
        ),
        "{text}"
    );
    assert!(text.contains(Stage::Login.fix_in(Language::De)), "{text}");
    for english in [Stage::Login.fix(), "login refused", "SMTP server"] {
        assert!(!text.contains(english), "`{english}` in: {text}");
    }
    let rendered = render_kind(&r, conf, Kind::Digest, Language::En);
    assert!(view(&rendered.raw).contains(Stage::Login.fix()));
}

#[test]
fn every_stage_reads_back_and_has_german_words() {
    for stage in [
        Stage::Connect,
        Stage::Tls,
        Stage::Login,
        Stage::Sender,
        Stage::Data,
    ] {
        assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        assert_ne!(stage.fix_in(Language::De), stage.fix_in(Language::En));
        let error = SetupProblem::new(stage, "h:25", "535 no", true).error;
        let german = stage.error_in(&error, Language::De);
        assert!(
            german.starts_with("SMTP-Server h:25: ") && german.ends_with(": 535 no"),
            "{german}"
        );
        assert_ne!(german, error);
    }
    assert_eq!(Stage::parse("sideways"), None);
}
