//! Prints what the understanding step makes of mail files:
//! `cargo run --example understand -- [--thread ID] FILE.eml...`
//! Uses the corpus context (`tests/corpus/context.json`).

use std::fs;

use rsvpd::understand::{ConferenceRef, Context, Language, WorkshopRef, understand};
use serde_json::Value;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut thread: Option<String> = None;
    if let Some(i) = args.iter().position(|a| a == "--thread") {
        if i + 1 < args.len() {
            thread = Some(args.remove(i + 1));
        }
        args.remove(i);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/context.json");
    let text = fs::read_to_string(path).expect("context.json");
    let v: Value = serde_json::from_str(&text).expect("context.json is JSON");
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let conferences: Vec<ConferenceRef> = v["conferences"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| ConferenceRef {
            id: s(&c["id"]),
            title: s(&c["title"]),
            aliases: c["aliases"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default(),
            workshops: c["workshops"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|w| WorkshopRef {
                            id: s(&w["id"]),
                            title: s(&w["title"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            open: c["open"].as_bool().unwrap_or(true),
            address: c["address"].as_str().map(str::to_string),
        })
        .collect();
    let ctx = Context {
        conferences: &conferences,
        mailbox_address: "anmeldung@example.org",
        thread_conference: thread.as_deref(),
        default_language: Language::De,
    };
    for file in args {
        match fs::read(&file) {
            Ok(raw) => {
                let u = understand(&raw, &ctx);
                println!(
                    "== {file}\n{}",
                    serde_json::to_string_pretty(&u).unwrap_or_default()
                );
            }
            Err(e) => eprintln!("{file}: {e}"),
        }
    }
}
