//! Decides which conference a mail is about, in the order the product
//! defines: a per-conference or plus address among the recipients, the thread
//! the mail answers, a conference id or alias in the subject, an alias or
//! title in the text, and finally the only conference open for registration.
//! Also reads the double-opt-in token from `anmeldung+confirm-TOKEN@…`.
//! Name matching is tolerant (case, umlauts, hyphens, "LIP2.0", "MiKo").

use regex::Regex;

use super::pattern::Pattern;

use super::text::{find_seq, fold, loose, match_tokens};
use super::{ConferenceRef, Context, choices};

/// What the recipient addresses say.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecipientInfo {
    pub conference: Option<String>,
    pub confirm_token: Option<String>,
    /// A plus tag that names no conference (kept for the review reason).
    pub unknown_tag: Option<String>,
}

pub fn recipient_info(recipients: &[String], ctx: &Context) -> RecipientInfo {
    let mut info = RecipientInfo::default();
    let (local, domain) = ctx
        .mailbox_address
        .split_once('@')
        .unwrap_or((ctx.mailbox_address, ""));
    let local = local.to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    for written in recipients {
        let r = written.to_ascii_lowercase();
        if let Some(c) = ctx.conferences.iter().find(|c| {
            c.address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&r))
        }) {
            info.conference.get_or_insert_with(|| c.id.clone());
            continue;
        }
        let Some((rl, rd)) = r.split_once('@') else {
            continue;
        };
        if rd != domain {
            continue;
        }
        let Some(tag) = rl.strip_prefix(&format!("{local}+")) else {
            continue;
        };
        if tag.starts_with("confirm-") || tag.starts_with("confirm+") {
            // The token as written: it may be case-sensitive.
            let token = written
                .split('@')
                .next()
                .unwrap_or("")
                .get(local.len() + 1 + "confirm-".len()..)
                .unwrap_or("");
            if !token.is_empty() && info.confirm_token.is_none() {
                info.confirm_token = Some(token.to_string());
            }
            continue;
        }
        match conference_for_tag(tag, ctx.conferences) {
            Some(id) => {
                info.conference.get_or_insert(id);
            }
            None => info.unknown_tag = Some(tag.to_string()),
        }
    }
    info
}

/// "miko-2027", "miko2027", "migrationskonferenz", "lip20", "fishbowl".
pub fn conference_for_tag(tag: &str, conferences: &[ConferenceRef]) -> Option<String> {
    let tag: String = loose(
        &fold(tag)
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>(),
    );
    if tag.is_empty() {
        return None;
    }
    let mut found: Vec<&str> = Vec::new();
    for c in conferences {
        if forms(c).iter().any(|f| f.concat() == tag) && !found.contains(&c.id.as_str()) {
            found.push(&c.id);
        }
    }
    if found.len() == 1 {
        found.first().map(|s| s.to_string())
    } else {
        None
    }
}

/// Token sequences a conference is called by: id, title, aliases, and aliases
/// without a trailing year ("MiKo 2027" → "MiKo").
pub fn forms(c: &ConferenceRef) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut add = |t: Vec<String>| {
        if !t.is_empty() && t.concat().chars().count() >= 3 && !out.contains(&t) {
            out.push(t);
        }
    };
    add(match_tokens(&c.id));
    add(match_tokens(&c.title));
    for a in &c.aliases {
        add(match_tokens(a));
    }
    for name in std::iter::once(&c.id)
        .chain(c.aliases.iter())
        .chain(std::iter::once(&c.title))
    {
        // "MiKo 2027" → "MiKo", "LIP 2.0" → "LIP": people leave out years
        // and version numbers.
        let mut t = match_tokens(name);
        while t.len() >= 2
            && t.last()
                .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
        {
            t.pop();
        }
        if t.concat().chars().count() >= 3 {
            add(t);
        }
    }
    // English writers translate the German compound: "Migrationskonferenz" →
    // "migration conference", "Fishbowl-Diskussion" → "fishbowl discussion".
    let german = out.clone();
    for f in german {
        let english: Vec<String> = f.iter().flat_map(|t| english_tokens(t)).collect();
        if english != f && !out.contains(&english) {
            out.push(english);
        }
    }
    out
}

fn english_tokens(token: &str) -> Vec<String> {
    for (de, en) in [
        ("konferenz", "conference"),
        ("diskussion", "discussion"),
        ("tagung", "conference"),
    ] {
        if token == de {
            return vec![en.to_string()];
        }
        if let Some(stem) = token.strip_suffix(de)
            && stem.chars().count() >= 3
        {
            // The linking "s" of German compounds: "Migrations|konferenz".
            let stem = stem.strip_suffix('s').unwrap_or(stem);
            return vec![stem.to_string(), en.to_string()];
        }
    }
    vec![token.to_string()]
}

/// Conferences named in a text, by id/title/alias; a form that fits several
/// conferences names none of them.
pub fn conferences_named(text: &str, conferences: &[ConferenceRef]) -> Vec<String> {
    let toks = match_tokens(text);
    let all: Vec<(usize, Vec<Vec<String>>)> = conferences
        .iter()
        .enumerate()
        .map(|(i, c)| (i, forms(c)))
        .collect();
    let mut hits: Vec<(usize, usize)> = Vec::new(); // (position, conference index)
    for (i, fs) in &all {
        for f in fs {
            let shared = all.iter().any(|(j, other)| j != i && other.contains(f));
            if shared {
                continue;
            }
            if let Some(pos) = find_seq(&toks, f) {
                hits.push((pos, *i));
            }
        }
    }
    hits.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, i) in hits {
        if let Some(c) = conferences.get(i)
            && !out.contains(&c.id)
        {
            out.push(c.id.clone());
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Found(String),
    /// Several conferences named at the same level; ids.
    Ambiguous(Vec<String>),
    NotFound,
}

pub struct RouteInput<'a> {
    pub recipient: Option<&'a str>,
    pub subject: &'a str,
    /// The writer's own text (or the forwarded registration).
    pub text: &'a str,
    /// Quoted or forwarded text, consulted after everything the writer said.
    pub quoted: &'a str,
    /// The sentences that register or cancel: when the text names several
    /// conferences, the one named where the writer acts is meant.
    pub focus: &'a str,
}

pub fn route(input: &RouteInput<'_>, ctx: &Context) -> Route {
    let known = |id: &str| ctx.conferences.iter().any(|c| c.id == id);
    if let Some(id) = input.recipient.filter(|id| known(id)) {
        return Route::Found(id.to_string());
    }
    if let Some(id) = ctx.thread_conference.filter(|id| known(id)) {
        return Route::Found(id.to_string());
    }
    for text in [input.subject, input.text] {
        let named = conferences_named(text, ctx.conferences);
        match named.len() {
            0 => {}
            1 => return Route::Found(named[0].clone()),
            _ => {
                let focused = conferences_named(input.focus, ctx.conferences);
                if focused.len() == 1 && named.contains(&focused[0]) {
                    return Route::Found(focused[0].clone());
                }
                return Route::Ambiguous(named);
            }
        }
    }
    // Workshop titles that only one conference has ("Antidiskriminierung").
    let by_workshop: Vec<&ConferenceRef> = ctx
        .conferences
        .iter()
        .filter(|c| !choices::workshops(input.text, c, false, false, true).is_empty())
        .collect();
    if by_workshop.len() == 1 {
        return Route::Found(by_workshop[0].id.clone());
    }
    let quoted = conferences_named(input.quoted, ctx.conferences);
    if quoted.len() == 1 {
        return Route::Found(quoted[0].clone());
    }
    let open: Vec<&ConferenceRef> = ctx.conferences.iter().filter(|c| c.open).collect();
    if open.len() == 1 {
        return Route::Found(open[0].id.clone());
    }
    Route::NotFound
}

/// A double-opt-in token in a subject: "[K7X2-99QF]" or "confirm-K7X2-99QF".
pub fn subject_token(subject: &str, conferences: &[ConferenceRef]) -> Option<String> {
    static BRACKET: Pattern = Pattern::new(|| {
        Regex::new(r"\[\s*(?:confirm[-: ]\s*)?([A-Za-z0-9][A-Za-z0-9_-]{5,63})\s*\]")
            .expect("regex")
    });
    static BARE: Pattern = Pattern::new(|| {
        Regex::new(r"(?i)\bconfirm-([A-Za-z0-9][A-Za-z0-9_-]{5,63})\b").expect("regex")
    });
    let looks_like_token = |t: &str| {
        t.chars().any(|c| c.is_ascii_digit())
            && t.chars().any(|c| c.is_ascii_alphabetic())
            && conference_for_tag(t, conferences).is_none()
    };
    for caps in BRACKET.captures_iter(subject) {
        if let Some(t) = caps.get(1).map(|m| m.as_str())
            && looks_like_token(t)
        {
            return Some(t.to_string());
        }
    }
    BARE.captures(subject)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .filter(|t| looks_like_token(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understand::{Language, WorkshopRef};

    fn confs() -> Vec<ConferenceRef> {
        let c = |id: &str, title: &str, aliases: &[&str], ws: &[(&str, &str)]| ConferenceRef {
            id: id.into(),
            title: title.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            workshops: ws
                .iter()
                .map(|(i, t)| WorkshopRef {
                    id: (*i).into(),
                    title: (*t).into(),
                })
                .collect(),
            open: true,
            address: None,
            capacity: None,
        };
        vec![
            c(
                "miko-2027",
                "Vierte Migrationskonferenz",
                &["Migrationskonferenz", "MiKo 2027"],
                &[("w2", "Antidiskriminierung")],
            ),
            c(
                "fishbowl-hainholz",
                "Fishbowl-Diskussion Hainholz",
                &["Fishbowl"],
                &[],
            ),
            c(
                "lip-2",
                "Auftakt LIP 2.0",
                &["LIP 2.0", "LIP-Dialogrunde", "Lokaler Integrationsplan"],
                &[("d1", "Bildung")],
            ),
        ]
    }

    #[test]
    fn names_are_found_tolerantly() {
        let c = confs();
        assert_eq!(
            conferences_named("Anmeldung zur MIGRATIONSKONFERENZ", &c),
            vec!["miko-2027"]
        );
        assert_eq!(conferences_named("Anmeldung MiKo", &c), vec!["miko-2027"]);
        assert_eq!(conferences_named("lip2.0 dialogrunde", &c), vec!["lip-2"]);
        assert_eq!(
            conferences_named("Anmeldung zum LIP-Auftakt", &c),
            vec!["lip-2"]
        );
        assert_eq!(
            conferences_named("zur Migrations-Konferenz", &c),
            vec!["miko-2027"]
        );
        assert_eq!(
            conferences_named("the fishbowl discussion", &c),
            vec!["fishbowl-hainholz"]
        );
        assert_eq!(
            conferences_named("Fishbowl und LIP 2.0", &c),
            vec!["fishbowl-hainholz", "lip-2"]
        );
    }

    #[test]
    fn plus_addresses_and_tokens() {
        let c = confs();
        let ctx = Context {
            conferences: &c,
            mailbox_address: "anmeldung@example.org",
            thread_conference: None,
            default_language: Language::De,
        };
        let r = recipient_info(&["anmeldung+miko2027@example.org".into()], &ctx);
        assert_eq!(r.conference.as_deref(), Some("miko-2027"));
        let r = recipient_info(&["anmeldung+confirm-ab12cd34@example.org".into()], &ctx);
        assert_eq!(r.confirm_token.as_deref(), Some("ab12cd34"));
        assert_eq!(
            subject_token("Re: Bitte bestätigen [K7X2-99QF]", &c).as_deref(),
            Some("K7X2-99QF")
        );
        assert_eq!(subject_token("[miko-2027] Anmeldung", &c), None);
    }
}
