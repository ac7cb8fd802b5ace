//! Scores the understanding step on a folder of blind-written mails:
//! `cargo run --release --example score -- tests/blind [--write-actual]`.
//! Each `NAME.eml` is read with the context of `context.json` in the folder
//! (or `tests/corpus/context.json` when the folder has none) and its
//! `NAME.context.json`, exactly as the corpus test reads its mails, and
//! compared with `NAME.json` by `rsvpd::understand::score`. Prints one line
//! per mail, then the totals, misfiles first. `--write-actual` also writes
//! `NAME.actual.json` (ignored by git) beside each mail that is not right.
//! Exits 0 whatever the score: it is a measure, not a test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rsvpd::understand::corpus::{ContextFile, MailContext, mails};
use rsvpd::understand::score::{Totals, score};
use rsvpd::understand::understand;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write_actual = args.iter().any(|a| a == "--write-actual");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/blind"));
    match run(&dir, write_actual) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("score: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, write_actual: bool) -> Result<(), String> {
    let own = dir.join("context.json");
    let base_path = if own.exists() {
        own
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/context.json")
    };
    let base = ContextFile::read(&base_path)?;
    let mails = mails(dir)?;
    if mails.is_empty() {
        return Err(format!("no .eml files in {}", dir.display()));
    }
    println!(
        "{} mails in {} (context {})\n",
        mails.len(),
        dir.display(),
        base_path.display()
    );
    let mut totals = Totals::default();
    for mail in &mails {
        let name = mail
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let mail_context = MailContext::new(&base, &ContextFile::beside(mail)?);
        let raw = fs::read(mail).map_err(|e| format!("{}: {e}", mail.display()))?;
        let got = understand(&raw, &mail_context.context());
        let got = serde_json::to_value(&got).map_err(|e| format!("{name}: {e}"))?;
        let expected_path = mail.with_extension("json");
        let expected = fs::read_to_string(&expected_path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
        let expected: serde_json::Value = match expected {
            Ok(v) => v,
            Err(e) => {
                println!("unscored    {name}: {}: {e}", expected_path.display());
                totals.unscored.push(name);
                continue;
            }
        };
        let s = score(&expected, &got);
        println!("{}", s.line(&name));
        let actual_path = mail.with_extension("actual.json");
        if write_actual && !s.right() {
            let pretty = serde_json::to_string_pretty(&got).map_err(|e| e.to_string())? + "\n";
            fs::write(&actual_path, pretty)
                .map_err(|e| format!("{}: {e}", actual_path.display()))?;
        } else if write_actual {
            let _ = fs::remove_file(&actual_path);
        }
        totals.add(&name, &s);
    }
    println!("\n{totals}");
    Ok(())
}
