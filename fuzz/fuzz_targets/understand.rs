//! Fuzz target: the understanding step must never panic, hang or return a name
//! with a line break, whatever bytes arrive. Seeded with tests/corpus (see scripts/fuzz).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsvpd::understand::{Action, ConferenceRef, Context, Language, WorkshopRef, understand};

fn conferences() -> Vec<ConferenceRef> {
    let ws = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(id, title)| WorkshopRef { id: id.to_string(), title: title.to_string() })
            .collect()
    };
    vec![
        ConferenceRef {
            id: "miko-2027".into(),
            title: "Vierte Migrationskonferenz".into(),
            aliases: vec!["Migrationskonferenz".into(), "MiKo 2027".into()],
            workshops: ws(&[("w1", "Teilhabe in Gremien"), ("w2", "Antidiskriminierung"), ("w3", "Bildung und Sprache")]),
            open: true,
            address: None,
            capacity: Some(30),
        },
        ConferenceRef {
            id: "lip-2".into(),
            title: "Auftakt LIP 2.0".into(),
            aliases: vec!["LIP 2.0".into(), "LIP-Dialogrunde".into()],
            workshops: ws(&[("d1", "Bildung"), ("d2", "Jugend")]),
            open: true,
            address: Some("lip@example.org".into()),
            capacity: None,
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let conferences = conferences();
    let ctx = Context {
        conferences: &conferences,
        mailbox_address: "anmeldung@example.org",
        thread_conference: None,
        default_language: Language::De,
    };
    let u = understand(data, &ctx);
    if let Action::Register { attendees, .. } | Action::Update { attendees, .. } = &u.action {
        for a in attendees {
            if let Some(n) = &a.name {
                assert!(!n.contains('\n') && !n.contains('\r'), "a name with a line break: {n:?}");
            }
            assert!(a.party_size >= 1);
        }
    }
});
