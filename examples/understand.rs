//! Prints what the understanding step makes of mail files:
//! `cargo run --example understand -- [--thread ID] FILE.eml...`
//! Uses the corpus context (`tests/corpus/context.json`).

use std::fs;

use rsvpd::understand::corpus::{ContextFile, MailContext};
use rsvpd::understand::understand;

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
    let base = match ContextFile::read(path.as_ref()) {
        Ok(base) => base,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut mail_context = MailContext::new(&base, &ContextFile::default());
    mail_context.thread_conference = thread;
    let ctx = mail_context.context();
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
