//! Runs every mail of the corpus (`tests/corpus/*.eml`) through [`understand`]
//! and compares the result with the expected `NAME.json` beside it. The
//! context is `tests/corpus/context.json`, overridden per mail by an optional
//! `NAME.context.json` (any of `thread_conference`, `default_language`,
//! `mailbox_address`, `open` — the ids open for registration — or a whole
//! `conferences` list). A mismatch writes `NAME.actual.json` beside the mail;
//! `UPDATE_CORPUS=1` writes the expected files instead (read them before
//! committing: an expected file with a wrong answer is a bug).

use std::fs;
use std::path::{Path, PathBuf};

use super::corpus::{ContextFile, MailContext, mails};
use super::understand;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
}

fn read_context(path: &Path) -> ContextFile {
    ContextFile::read(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn corpus() {
    let dir = corpus_dir();
    let base = read_context(&dir.join("context.json"));
    let update = std::env::var("UPDATE_CORPUS").is_ok_and(|v| v == "1");
    let mails = mails(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!mails.is_empty(), "no corpus mails in {}", dir.display());

    let mut failures = Vec::new();
    for mail in &mails {
        let stem = mail
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let over = ContextFile::beside(mail).unwrap_or_else(|e| panic!("{e}"));
        let mail_context = MailContext::new(&base, &over);
        let ctx = mail_context.context();
        let raw = fs::read(mail).expect("read mail");
        let mut got = understand(&raw, &ctx);
        if let Some(missing) = unexplained(&got) {
            failures.push(format!("{stem} (no explanation: {missing})"));
        }
        // The expected files hold the decision; the explanation is checked
        // above and in unit tests, so rewording a rule does not touch them.
        got.explanation = Default::default();
        if let Some(bad) = multi_line_field(&got) {
            failures.push(format!("{stem} (a field contains a line break: {bad:?})"));
        }
        let got_json = serde_json::to_string_pretty(&got).expect("serialize") + "\n";
        let expected_path = dir.join(format!("{stem}.json"));
        let actual_path = dir.join(format!("{stem}.actual.json"));
        if update {
            fs::write(&expected_path, &got_json).expect("write expected");
            let _ = fs::remove_file(&actual_path);
            continue;
        }
        let expected = fs::read_to_string(&expected_path).ok();
        let same = expected
            .as_deref()
            .and_then(|e| serde_json::from_str::<super::Understood>(e).ok())
            .is_some_and(|e| e == got);
        if same {
            let _ = fs::remove_file(&actual_path);
        } else {
            fs::write(&actual_path, &got_json).expect("write actual");
            failures.push(if expected.is_none() {
                format!("{stem} (no expected .json)")
            } else {
                stem
            });
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus mails differ from their expected .json (see NAME.actual.json):\n  {}",
        failures.len(),
        mails.len(),
        failures.join("\n  ")
    );
}

/// Mangled versions of every corpus mail (truncated, bytes flipped, line
/// endings mixed, NULs inserted) must never panic. Calls the inner function
/// directly, so that `catch_unwind` in `understand` cannot hide a panic.
#[test]
fn mangled_corpus_never_panics() {
    let dir = corpus_dir();
    let base = read_context(&dir.join("context.json"));
    let mail_context = MailContext::new(&base, &ContextFile::default());
    let ctx = mail_context.context();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for mail in mails(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let raw = fs::read(&mail).expect("read mail");
        if raw.len() > 100_000 {
            continue;
        }
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for cut in [
            1,
            7,
            raw.len() / 3,
            raw.len() / 2,
            raw.len().saturating_sub(3),
        ] {
            variants.push(raw[..cut.min(raw.len())].to_vec());
        }
        // MANGLE_ROUNDS=200 for a longer fuzzing run by hand.
        let rounds: usize = std::env::var("MANGLE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6);
        for _ in 0..rounds {
            let mut v = raw.clone();
            for _ in 0..8 {
                if v.is_empty() {
                    break;
                }
                let i = (next() as usize) % v.len();
                v[i] = match next() % 4 {
                    0 => 0,
                    1 => b'\n',
                    2 => b'=',
                    _ => (next() & 0xff) as u8,
                };
            }
            variants.push(v);
        }
        variants.push(
            raw.iter()
                .flat_map(|&b| if b == b'\n' { vec![b'\r'] } else { vec![b] })
                .collect(),
        );
        for v in variants {
            let mut u = super::run(&v, &ctx, &super::vocab::BUILTIN_VOCABULARY);
            super::single_lines(&mut u);
            if let Some(bad) = multi_line_field(&u) {
                panic!("{}: a field contains a line break: {bad:?}", mail.display());
            }
            let _ = super::mime::thread_references(&v);
        }
    }
}

/// A registration, change, cancellation or confirmation names the sentence
/// that made it so.
fn unexplained(u: &super::Understood) -> Option<&'static str> {
    use super::Action;
    let needs_sentence = matches!(
        u.action,
        Action::Register { .. } | Action::Update { .. } | Action::Cancel { .. }
    );
    if needs_sentence && !u.explanation.steps.iter().any(|s| s.text.is_some()) {
        return Some("no sentence named for a registration, change or cancellation");
    }
    None
}

/// Every string the module returns is one line: a CR or LF in a name or a
/// reason could be injected into a mail header or a log line later.
fn multi_line_field(u: &super::Understood) -> Option<String> {
    fn walk(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) if s.contains(['\r', '\n', '\0']) => Some(s.clone()),
            serde_json::Value::Array(a) => a.iter().find_map(walk),
            serde_json::Value::Object(o) => o.values().find_map(walk),
            _ => None,
        }
    }
    walk(&serde_json::to_value(u).ok()?)
}
