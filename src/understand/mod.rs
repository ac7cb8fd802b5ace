//! Placeholder for the understanding step (replaced by the full module).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    De,
    En,
}

#[derive(Debug, Clone)]
pub struct ConferenceRef {
    pub id: String,
    pub title: String,
    pub aliases: Vec<String>,
    pub workshops: Vec<WorkshopRef>,
    pub open: bool,
    pub address: Option<String>,
}
#[derive(Debug, Clone)]
pub struct WorkshopRef {
    pub id: String,
    pub title: String,
}

pub struct Context<'a> {
    pub conferences: &'a [ConferenceRef],
    pub mailbox_address: &'a str,
    pub thread_conference: Option<&'a str>,
    pub default_language: Language,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: String,
    pub language: Language,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Register {
        conference: String,
        attendees: Vec<Attendee>,
    },
    Update {
        conference: String,
        attendees: Vec<Attendee>,
    },
    Cancel {
        conference: String,
        email: String,
        name: Option<String>,
    },
    Confirm {
        conference: Option<String>,
        email: String,
        token: Option<String>,
    },
    Bounce {
        recipients: Vec<String>,
        permanent: bool,
        reason: String,
    },
    Ignore {
        reason: String,
    },
    Review {
        reason: String,
        conference: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attendee {
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    pub party_size: u32,
    pub companions: Vec<String>,
    pub workshops: Vec<String>,
    pub notes: Vec<String>,
    pub language: Language,
    pub address_note: Option<String>,
}

pub fn understand(raw: &[u8], ctx: &Context) -> Understood {
    let msg = mail_parser::MessageParser::default().parse(raw);
    let Some(msg) = msg else {
        return Understood {
            message_id: None,
            from: None,
            subject: String::new(),
            language: ctx.default_language,
            action: Action::Review {
                reason: "not a mail".into(),
                conference: None,
            },
        };
    };
    let from = msg
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(|a| a.to_lowercase());
    let name = msg
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.name())
        .map(|s| s.to_string());
    let subject = msg.subject().unwrap_or_default().to_string();
    let body = msg.body_text(0).map(|b| b.to_string()).unwrap_or_default();
    let lower = format!("{} {}", subject, body).to_lowercase();
    let language =
        if lower.contains("register") || lower.contains("cancel") || lower.contains("hello") {
            Language::En
        } else {
            Language::De
        };
    let auto = msg
        .header_raw("Auto-Submitted")
        .map(|v| !v.trim().eq_ignore_ascii_case("no"))
        .unwrap_or(false)
        || msg.header_raw("List-Id").is_some();
    let mut conf = ctx.thread_conference.map(str::to_string);
    if conf.is_none() {
        for c in ctx.conferences {
            if lower.contains(&c.id)
                || c.aliases.iter().any(|a| lower.contains(&a.to_lowercase()))
                || lower.contains(&c.title.to_lowercase())
            {
                conf = Some(c.id.clone());
                break;
            }
        }
    }
    if conf.is_none() {
        let open: Vec<_> = ctx.conferences.iter().filter(|c| c.open).collect();
        if open.len() == 1 {
            conf = Some(open[0].id.clone());
        }
    }
    let action = if auto {
        Action::Ignore {
            reason: "auto-reply".into(),
        }
    } else if let (Some(c), Some(email)) = (conf.clone(), from.clone()) {
        let first = body.lines().next().unwrap_or("").to_lowercase();
        if first.contains("absagen")
            || first.contains("streichen")
            || first.contains("cancel")
            || first.contains("abmelden")
        {
            Action::Cancel {
                conference: c,
                email,
                name,
            }
        } else {
            Action::Register {
                conference: c,
                attendees: vec![Attendee {
                    email,
                    name,
                    organization: None,
                    party_size: 1,
                    companions: vec![],
                    workshops: vec![],
                    notes: vec![],
                    language,
                    address_note: None,
                }],
            }
        }
    } else {
        Action::Review {
            reason: "no conference".into(),
            conference: None,
        }
    };
    Understood {
        message_id: msg.message_id().map(str::to_string),
        from,
        subject,
        language,
        action,
    }
}

pub fn thread_references(raw: &[u8]) -> Vec<String> {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return vec![];
    };
    let mut out = Vec::new();
    for h in [msg.in_reply_to(), msg.references()] {
        if let Some(list) = h.as_text_list() {
            out.extend(list.iter().map(|s| s.to_string()));
        } else if let Some(t) = h.as_text() {
            out.push(t.to_string());
        }
    }
    out
}
