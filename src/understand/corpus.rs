//! The context a folder of test mails is read with: `context.json` (the
//! mailbox, default language and conferences) and, per mail, an optional
//! `NAME.context.json` that overrides any of `thread_conference`,
//! `default_language`, `mailbox_address`, `open` (the ids open for
//! registration, all others closed) or the whole `conferences` list. Shared
//! by the corpus test, the blind-mail scorer (`examples/score.rs`) and
//! `examples/understand.rs`, so that all three read a mail the same way.
//! Reads files only; errors name the file.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConferenceRef, Context, Language, WorkshopRef};

#[derive(Deserialize, Clone)]
struct ConferenceJson {
    id: String,
    title: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    workshops: Vec<WorkshopJson>,
    #[serde(default = "yes")]
    open: bool,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    capacity: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Clone)]
struct WorkshopJson {
    id: String,
    title: String,
}

/// One `context.json` or `NAME.context.json`; every key optional.
#[derive(Deserialize, Default, Clone)]
pub struct ContextFile {
    #[serde(default)]
    conferences: Option<Vec<ConferenceJson>>,
    #[serde(default)]
    mailbox_address: Option<String>,
    #[serde(default)]
    thread_conference: Option<String>,
    #[serde(default)]
    default_language: Option<Language>,
    /// Ids of the conferences open for registration (all others closed).
    #[serde(default)]
    open: Option<Vec<String>>,
}

impl ContextFile {
    pub fn read(path: &Path) -> Result<ContextFile, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `NAME.context.json` beside `mail`, or an empty override when there is none.
    pub fn beside(mail: &Path) -> Result<ContextFile, String> {
        let path = mail.with_extension("context.json");
        if path.exists() {
            ContextFile::read(&path)
        } else {
            Ok(ContextFile::default())
        }
    }
}

/// The context of one mail, owned; [`MailContext::context`] lends it out.
pub struct MailContext {
    pub conferences: Vec<ConferenceRef>,
    pub mailbox_address: String,
    pub thread_conference: Option<String>,
    pub default_language: Language,
}

impl MailContext {
    /// `base` with the keys of `over` put over it.
    pub fn new(base: &ContextFile, over: &ContextFile) -> MailContext {
        let list = over
            .conferences
            .clone()
            .or_else(|| base.conferences.clone())
            .unwrap_or_default();
        let conferences = list
            .into_iter()
            .map(|c| ConferenceRef {
                open: match &over.open {
                    Some(open) => open.contains(&c.id),
                    None => c.open,
                },
                id: c.id,
                title: c.title,
                aliases: c.aliases,
                workshops: c
                    .workshops
                    .into_iter()
                    .map(|w| WorkshopRef {
                        id: w.id,
                        title: w.title,
                    })
                    .collect(),
                address: c.address,
                capacity: c.capacity,
            })
            .collect();
        MailContext {
            conferences,
            mailbox_address: over
                .mailbox_address
                .clone()
                .or_else(|| base.mailbox_address.clone())
                .unwrap_or_else(|| "anmeldung@example.org".into()),
            thread_conference: over
                .thread_conference
                .clone()
                .or_else(|| base.thread_conference.clone()),
            default_language: over
                .default_language
                .or(base.default_language)
                .unwrap_or(Language::De),
        }
    }

    pub fn context(&self) -> Context<'_> {
        Context {
            conferences: &self.conferences,
            mailbox_address: &self.mailbox_address,
            thread_conference: self.thread_conference.as_deref(),
            default_language: self.default_language,
        }
    }
}

/// The `.eml` files in `dir`, sorted by name.
pub fn mails(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut mails: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    mails.sort();
    Ok(mails)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> ContextFile {
        serde_json::from_str(json).expect("test JSON")
    }

    #[test]
    fn the_override_wins_key_by_key() {
        let base = file(
            r#"{"mailbox_address": "a@example.org", "default_language": "en",
                "conferences": [{"id": "x", "title": "X"}, {"id": "y", "title": "Y", "open": false}]}"#,
        );
        let over = file(r#"{"thread_conference": "x", "open": ["y"]}"#);
        let m = MailContext::new(&base, &over);
        let ctx = m.context();
        assert_eq!(ctx.mailbox_address, "a@example.org");
        assert_eq!(ctx.default_language, Language::En);
        assert_eq!(ctx.thread_conference, Some("x"));
        let open: Vec<(&str, bool)> = ctx
            .conferences
            .iter()
            .map(|c| (c.id.as_str(), c.open))
            .collect();
        assert_eq!(open, [("x", false), ("y", true)]);
    }

    #[test]
    fn an_empty_context_has_the_corpus_defaults() {
        let m = MailContext::new(&ContextFile::default(), &ContextFile::default());
        assert_eq!(m.mailbox_address, "anmeldung@example.org");
        assert_eq!(m.default_language, Language::De);
        assert!(m.conferences.is_empty() && m.thread_conference.is_none());
    }
}
