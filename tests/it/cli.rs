//! The command line as operators meet it: config errors, the example config,
//! the demo.

use std::path::Path;
use std::process::Command;

use crate::app::binary;

fn rsvpd(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RSVPD_IMAP_PASSWORD")
        .env_remove("RSVPD_SMTP_PASSWORD")
        .output()
        .expect("run rsvpd")
}

fn demo_copy() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("cp")
        .arg("-r")
        .arg(root.join("config"))
        .arg(dir.path())
        .status()
        .expect("cp");
    assert!(status.success());
    // What scripts/demo does: the inbox is copied under var/, so the examples stay as they are.
    std::fs::create_dir_all(dir.path().join("var/demo")).expect("mkdir");
    let status = Command::new("cp")
        .arg("-r")
        .arg(dir.path().join("config/demo/inbox"))
        .arg(dir.path().join("var/demo/inbox"))
        .status()
        .expect("cp");
    assert!(status.success());
    dir
}

#[test]
fn demo_config_records_attendees_and_writes_confirmations() {
    let dir = demo_copy();
    let config = dir.path().join("config/demo.toml");
    let out = rsvpd(&config, &["run", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut people = 0;
    for conf in ["miko-2027", "fishbowl-hainholz", "lip-2"] {
        let out = rsvpd(&config, &["attendees", conf, "--format", "json"]);
        assert!(out.status.success());
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        people += list.len();
    }
    assert!(
        people >= 4,
        "the demo mails register at least four people, got {people}"
    );
    let sent: Vec<_> = std::fs::read_dir(dir.path().join("var/demo/sent"))
        .expect("sent folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(sent.len() >= 4, "{} confirmations written", sent.len());
    let first = std::fs::read_to_string(sent[0].path()).expect("read");
    assert!(first.contains("Auto-Submitted: auto-replied"), "{first}");
    // The examples themselves are untouched; the copy's inbox is empty now.
    assert!(
        std::fs::read_dir(dir.path().join("config/demo/inbox/new"))
            .expect("dir")
            .count()
            >= 6
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("var/demo/inbox/new"))
            .expect("dir")
            .count(),
        0
    );

    // Running again finds nothing new and sends nothing new.
    let out = rsvpd(&config, &["run", "--once"]);
    assert!(out.status.success());
    let again = std::fs::read_dir(dir.path().join("var/demo/sent"))
        .expect("dir")
        .count();
    assert_eq!(again, sent.len());
}

#[test]
fn a_typo_in_the_config_names_the_key_and_line() {
    let dir = demo_copy();
    let config = dir.path().join("config/demo.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    let text = text.replacen("poll_interval = \"5s\"", "poll_intervall = \"5s\"", 1);
    std::fs::write(&config, &text).expect("write");
    let out = rsvpd(&config, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.starts_with("poll_intervall"))
        .expect("line")
        + 1;
    assert!(err.contains("poll_intervall"), "{err}");
    assert!(err.contains(&format!("line {line}")), "{err}");
}

#[test]
fn clear_text_imap_to_a_remote_host_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("rsvpd.toml");
    std::fs::write(
        &config,
        "[mailbox]\nurl = \"imap://a%40example.org@imap.example.org?tls=none\"\n\
         [smtp]\nurl = \"file://sent\"\nfrom = \"a@example.org\"\n[database]\nurl = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let out = rsvpd(&config, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls=none is refused") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn missing_config_file_says_how_to_get_one() {
    let out = rsvpd(Path::new("/nonexistent/rsvpd.toml"), &["conferences"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/rsvpd.toml") && err.contains("default-config"),
        "{err}"
    );
}

#[test]
fn default_config_is_a_valid_config() {
    let out = Command::new(binary())
        .arg("default-config")
        .output()
        .expect("run");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("dir");
    let text = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("password_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let config = dir.path().join("rsvpd.toml");
    std::fs::write(&config, text).expect("write");
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["conferences", "--format", "json"])
        .env("RSVPD_IMAP_PASSWORD", "x")
        .env("RSVPD_SMTP_PASSWORD", "y")
        .output()
        .expect("run");
    // The example's database lives in /var/lib/rsvpd; only the parse matters here.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("line "),
        "the example config has an error: {err}"
    );
}

#[test]
fn help_documents_exit_codes() {
    let out = Command::new(binary()).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit codes"), "{text}");
}

/// Regression: the daemon and a CLI command starting at once on a fresh
/// database both tried to apply migration 1 ("table conferences already exists").
#[test]
fn processes_starting_together_on_a_fresh_database_all_succeed() {
    for _ in 0..5 {
        let dir = demo_copy();
        let config = dir.path().join("config/demo.toml");
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(binary())
                    .arg("--config")
                    .arg(&config)
                    .args(["conferences", "--format", "json"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
