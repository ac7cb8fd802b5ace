//! Recognises mail that is not written by a person to us and must never be
//! answered: delivery failures (RFC 3464 reports and the free-text notices of
//! MAILER-DAEMON/postmaster) become [`Action::Bounce`]; auto-replies, mailing
//! lists, newsletters and bulk mail become [`Action::Ignore`]. Looks at headers
//! first and only at the text when a system sender says it is a bounce.

use regex::Regex;

use super::pattern::Pattern;

use super::Action;
use super::mime::Mail;
use super::text::{self, fold};
use super::vocab::Vocabulary;

/// Bounce or ignore verdict, or `None` for mail a person wrote.
pub fn classify(mail: &Mail, mailbox: &str, v: &Vocabulary) -> Option<Action> {
    if let Some(b) = bounce(mail, mailbox) {
        return Some(b);
    }
    auto_reply(mail, mailbox)
        .or_else(|| machine_mail(mail, v))
        .map(|reason| Action::Ignore { reason })
}

/// Calendar replies and mailing-list digests that carry no header saying so.
fn machine_mail(mail: &Mail, v: &Vocabulary) -> Option<String> {
    let calendar_part = mail.content_type == "text/calendar"
        || mail.calendar_method.is_some()
        || mail
            .attachments
            .iter()
            .any(|a| a.contains("text/calendar") || a.ends_with(".ics"));
    let reply_method = mail
        .content_type_params
        .iter()
        .any(|(n, val)| n == "method" && !val.eq_ignore_ascii_case("publish"))
        || mail.calendar_method.as_deref() == Some("reply")
        || mail.body.contains("METHOD:REPLY");
    let says_reply = v.is_match("calendar_reply", &fold(&mail.subject))
        || v.is_match(
            "calendar_reply",
            &fold(&mail.body.chars().take(500).collect::<String>()),
        );
    if (calendar_part && (reply_method || says_reply))
        || (says_reply && mail.body.contains("Invitation from Google Calendar"))
    {
        return Some("a calendar reply (accepted/declined), not written by a person".into());
    }
    let head: String = mail.body.chars().take(2000).collect();
    if v.is_match("list_digest", &fold(&mail.subject)) || v.is_match("list_digest", &fold(&head)) {
        return Some("a mailing-list digest".into());
    }
    None
}

fn auto_reply(mail: &Mail, mailbox: &str) -> Option<String> {
    if mail.content_type == "multipart/report"
        && mail.content_type_params.iter().any(|(n, v)| {
            n == "report-type" && v.to_ascii_lowercase().contains("disposition-notification")
        })
    {
        return Some("read receipt (disposition notification)".into());
    }
    for (name, value) in &mail.headers {
        let v = value.trim().to_ascii_lowercase();
        match name.as_str() {
            "auto-submitted" => {
                let kind = v.split(';').next().unwrap_or("").trim();
                if kind != "no" && !kind.is_empty() {
                    return Some(format!("automatic message (Auto-Submitted: {kind})"));
                }
            }
            "x-autoreply" | "x-autorespond" | "x-autoresponder" | "x-auto-reply"
                if v != "no" && v != "false" =>
            {
                return Some(format!("auto-reply ({name} header)"));
            }
            "precedence" => {
                let kind = v.split(';').next().unwrap_or("").trim();
                if matches!(kind, "bulk" | "list" | "junk" | "auto_reply" | "auto-reply") {
                    return Some(format!("bulk or automatic mail (Precedence: {kind})"));
                }
            }
            "list-id" | "list-unsubscribe" | "list-post" => {
                return Some(format!("mailing list or newsletter ({name} header)"));
            }
            "x-campaign" | "x-mailchimp-campaign" | "x-campaignid" => {
                return Some("newsletter (campaign header)".into());
            }
            _ => {}
        }
    }
    let (bare, _, _) = text::strip_subject_prefixes(&mail.subject);
    let subject = fold(&mail.subject);
    let bare_f = fold(&bare);
    static AUTO_SUBJECT: Pattern = Pattern::new(|| {
        Regex::new(
            r"^\s*(?:automatische antwort|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|abwesenheitsnotiz|abwesenheit|abwesend|out of (?:the )?office|ooo\b|urlaubsabwesenheit|reponse automatique|otomatik yanit|automatyczna odpowiedz|autosvar|automatisch antwoord|risposta automatica|respuesta automatica|gelesen:|ungelesen:|nicht gelesen:|read:|not read:|zugestellt:|delivered:|lesebestaetigung|read receipt|empfangsbestaetigung)",
        )
        .expect("regex")
    });
    if AUTO_SUBJECT.is_match(&subject)
        || AUTO_SUBJECT.is_match(&bare_f)
        || subject.contains("abwesenheitsnotiz")
        || subject.contains("out of office")
        || subject.contains("autoreply")
    {
        return Some(format!(
            "auto-reply (subject \"{}\")",
            short(&mail.subject, 80)
        ));
    }
    if let Some(from) = &mail.from
        && from.address.eq_ignore_ascii_case(mailbox)
    {
        return Some("sent from the registration mailbox itself (mail loop)".into());
    }
    None
}

static STATUS_CODE: Pattern =
    Pattern::new(|| Regex::new(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b").expect("regex"));

fn bounce(mail: &Mail, mailbox: &str) -> Option<Action> {
    let report = mail.content_type == "multipart/report"
        && mail
            .content_type_params
            .iter()
            .any(|(n, v)| n == "report-type" && v.to_ascii_lowercase().contains("delivery-status"));
    if (report || !mail.delivery_status.is_empty())
        && let Some(action) = from_delivery_status(mail)
    {
        return Some(action);
    }
    if is_system_sender(mail) {
        return from_notice_text(mail, mailbox);
    }
    None
}

/// Reads the per-recipient fields of RFC 3464 delivery-status parts.
fn from_delivery_status(mail: &Mail) -> Option<Action> {
    let mut failed: Vec<String> = Vec::new();
    let mut permanent = false;
    let mut any_failure = false;
    let mut delivered = false;
    let mut reasons: Vec<String> = Vec::new();
    for part in &mail.delivery_status {
        // Per-recipient groups are separated by blank lines.
        let unfolded = unfold_fields(part);
        for group in unfolded.split("\n\n") {
            let mut recipient: Option<String> = None;
            let mut original: Option<String> = None;
            let mut action = String::new();
            let mut status = String::new();
            let mut diagnostic = String::new();
            for line in group.lines() {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "final-recipient" => recipient = address_field(v),
                    "original-recipient" => original = address_field(v),
                    "action" => action = v.to_ascii_lowercase(),
                    "status" => status = v.split_whitespace().next().unwrap_or("").to_string(),
                    "diagnostic-code" => {
                        diagnostic = v.split_once(';').map_or(v, |(_, d)| d).trim().to_string()
                    }
                    _ => {}
                }
            }
            let Some(addr) = recipient.or(original) else {
                continue;
            };
            let is_failure = action.starts_with("failed")
                || action.starts_with("delayed")
                || status.starts_with('5')
                || status.starts_with('4');
            if !is_failure {
                if action.starts_with("delivered")
                    || action.starts_with("relayed")
                    || action.starts_with("expanded")
                {
                    delivered = true;
                }
                continue;
            }
            any_failure = true;
            if status.starts_with('5') || (action.starts_with("failed") && !status.starts_with('4'))
            {
                permanent = true;
            }
            if !failed.contains(&addr) {
                failed.push(addr);
            }
            let reason = match (status.is_empty(), diagnostic.is_empty()) {
                (false, false) if diagnostic.contains(&status) => diagnostic.clone(),
                (false, false) => format!("{status} {diagnostic}"),
                (false, true) => format!("{status} {}", status_text(&status)),
                (true, false) => diagnostic.clone(),
                (true, true) => action.clone(),
            };
            let reason = short(&text::one_line(&reason), 200);
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    if any_failure {
        return Some(Action::Bounce {
            recipients: failed,
            permanent,
            reason: short(&reasons.join("; "), 300),
        });
    }
    if delivered {
        return Some(Action::Ignore {
            reason: "delivery report: the message was delivered".into(),
        });
    }
    None
}

fn unfold_fields(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            out.push(' ');
            out.push_str(line.trim());
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

fn address_field(v: &str) -> Option<String> {
    let v = v.split_once(';').map_or(v, |(_, a)| a);
    text::addresses(v).into_iter().next()
}

fn status_text(status: &str) -> &'static str {
    match status {
        "5.1.1" => "mailbox does not exist",
        "5.1.2" => "domain does not exist",
        "5.2.1" => "mailbox disabled",
        "5.2.2" | "4.2.2" => "mailbox full",
        "5.7.1" => "delivery not authorized",
        s if s.starts_with('4') => "temporary failure",
        s if s.starts_with('5') => "permanent failure",
        _ => "",
    }
}

fn is_system_sender(mail: &Mail) -> bool {
    let from = mail.from.as_ref();
    let local = from
        .map(|f| f.address.split('@').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let name = from
        .and_then(|f| f.name.as_deref())
        .map(fold)
        .unwrap_or_default();
    let daemon = matches!(
        local.as_str(),
        "mailer-daemon" | "postmaster" | "mail-daemon" | "mailerdaemon"
    ) || name.contains("mail delivery")
        || name.contains("mailer-daemon")
        || name.contains("e-mail-zustellsystem");
    static BOUNCE_SUBJECT: Pattern = Pattern::new(|| {
        Regex::new(
            r"(?:undeliver|undelivered mail|returned mail|delivery status notification|delivery failure|failure notice|mail delivery failed|delivery has failed|unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|unzustellbare|nachricht konnte nicht zugestellt|non remis|mail system error|message not delivered)",
        )
        .expect("regex")
    });
    let bounce_subject = BOUNCE_SUBJECT.is_match(&fold(&mail.subject));
    let automatic = mail.has_header("auto-submitted") || mail.from.is_none();
    daemon || (bounce_subject && automatic) || (bounce_subject && local.contains("daemon"))
}

/// A free-text bounce: the failed address is one in the explanation before the
/// returned copy of the original message that is neither ours nor the daemon's.
fn from_notice_text(mail: &Mail, mailbox: &str) -> Option<Action> {
    let body = &mail.body;
    static COPY_START: Pattern = Pattern::new(|| {
        Regex::new(
            r"(?im)^(?:[-\s]*(?:this is a copy of|original message|ursprüngliche nachricht|original-nachricht|a copy of the original message|the original message)|-+ ?(?:original message|below this line).*|return-path:|received:|message-id:|reporting-mta:|final-recipient:|diagnostic information for administrators|diagnoseinformationen für administratoren)",
        )
        .expect("regex")
    });
    let explain_end = COPY_START.find(body).map_or(body.len(), |m| m.start());
    let explain = &body[..explain_end];
    let (mailbox_local, mailbox_domain) = mailbox.split_once('@').unwrap_or((mailbox, ""));
    let sender = mail
        .from
        .as_ref()
        .map(|f| f.address.clone())
        .unwrap_or_default();
    let ours = |a: &str| {
        let (l, d) = a.split_once('@').unwrap_or((a, ""));
        let l = l.split('+').next().unwrap_or(l);
        (l.eq_ignore_ascii_case(mailbox_local) && d.eq_ignore_ascii_case(mailbox_domain))
            || a == sender
            || l.eq_ignore_ascii_case("mailer-daemon")
            || l.eq_ignore_ascii_case("postmaster")
    };
    // Exim names the failed addresses in a header.
    let mut recipients: Vec<String> = mail
        .headers
        .iter()
        .filter(|(n, _)| n == "x-failed-recipients")
        .flat_map(|(_, v)| text::addresses(v))
        .filter(|a| !ours(a))
        .collect();
    if recipients.is_empty() {
        recipients = text::addresses(explain)
            .into_iter()
            .filter(|a| !ours(a))
            .collect();
    }
    if recipients.is_empty() {
        // Exchange puts the address only in the diagnostic part below.
        recipients = text::addresses(body)
            .into_iter()
            .filter(|a| !ours(a) && !a.contains("prod.outlook") && !a.contains(".local"))
            .take(1)
            .collect();
    }
    let lower = fold(body);
    let code = STATUS_CODE.captures(body);
    let temporary_words = [
        "delayed",
        "will retry",
        "will be retried",
        "temporar",
        "verzoegert",
        "voruebergehend",
        "noch nicht zugestellt",
        "still trying",
        "weiterhin versucht",
    ];
    let permanent = match code.as_ref().and_then(|c| c.get(1)).map(|m| m.as_str()) {
        Some("5") => true,
        Some("4") => false,
        _ => !temporary_words.iter().any(|w| lower.contains(w)),
    };
    if recipients.is_empty() {
        return Some(Action::Review {
            reason:
                "looks like a delivery failure notice, but the failed address could not be found"
                    .into(),
            conference: None,
        });
    }
    let reason = failure_line(explain, recipients.first().map(String::as_str))
        .or_else(|| {
            code.and_then(|c| c.get(0))
                .map(|m| format!("{} {}", m.as_str(), status_text(m.as_str())))
        })
        .unwrap_or_else(|| short(&text::one_line(&mail.subject), 120));
    Some(Action::Bounce {
        recipients,
        permanent,
        reason: short(&text::one_line(&reason), 200),
    })
}

/// The most telling line of a free-text bounce explanation.
fn failure_line(explain: &str, recipient: Option<&str>) -> Option<String> {
    static KEY: Pattern = Pattern::new(|| {
        Regex::new(
            r"(?i)(\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b|user unknown|unknown user|does not exist|doesn't exist|no such user|mailbox (?:is )?(?:full|unavailable|not found)|not found|existiert nicht|unbekannt|quota|address rejected|recipient rejected|could not be delivered|couldn't be delivered|konnte nicht zugestellt|delayed|verzögert)",
        )
        .expect("regex")
    });
    let lines: Vec<&str> = explain
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // Prefer a line with a status code, then one with a failure phrase.
    static SMTP_CODE: Pattern = Pattern::new(|| Regex::new(r"\b[45]\d\d\b").expect("regex"));
    // Bounces put the reason on the failed address's line or right below it.
    if let Some(r) = recipient
        && let Some(at) = lines.iter().position(|l| l.to_lowercase().contains(r))
    {
        let near = &lines[at..lines.len().min(at + 4)];
        let with_code = near
            .iter()
            .find(|l| STATUS_CODE.is_match(l) || SMTP_CODE.is_match(l));
        let after_address = lines[at]
            .to_lowercase()
            .split(r)
            .nth(1)
            .map(|rest| rest.trim_matches(|c: char| !c.is_alphanumeric()).len() > 3)
            .unwrap_or(false);
        let line = with_code.or(if after_address {
            Some(&lines[at])
        } else {
            lines.get(at + 1)
        });
        if let Some(line) = line {
            return Some(line.to_string());
        }
    }
    let with_code = lines
        .iter()
        .find(|l| STATUS_CODE.is_match(l) || SMTP_CODE.is_match(l));
    let line = with_code.or_else(|| lines.iter().find(|l| KEY.is_match(l)))?;
    Some(line.to_string())
}

pub fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_string();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understand::mime::Mailbox;

    fn mail(headers: &[(&str, &str)], subject: &str) -> Mail {
        Mail {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            subject: subject.into(),
            from: Some(Mailbox {
                address: "p@example.com".into(),
                name: None,
                name_broken: false,
            }),
            ..Mail::default()
        }
    }

    fn classify_t(mail: &Mail, mailbox: &str) -> Option<Action> {
        classify(mail, mailbox, &crate::understand::vocab::BUILTIN_VOCABULARY)
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        assert!(classify_t(&mail(&[("auto-submitted", "no")], "Anmeldung"), "a@b").is_none());
        assert!(classify_t(&mail(&[("auto-submitted", "auto-replied")], "x"), "a@b").is_some());
        assert!(
            classify_t(
                &mail(&[("x-auto-response-suppress", "All")], "Anmeldung"),
                "a@b"
            )
            .is_none()
        );
        assert!(classify_t(&mail(&[], "Automatische Antwort: Anmeldung"), "a@b").is_some());
        assert!(classify_t(&mail(&[("precedence", "bulk")], "x"), "a@b").is_some());
    }

    #[test]
    fn short_cuts_on_chars() {
        assert_eq!(short("äöü", 2), "ä…");
    }
}
