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

pub(crate) fn demo_copy() -> tempfile::TempDir {
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

/// A config in a fresh dir whose IMAP and SMTP passwords are files that an
/// organizer cannot read (here: that do not exist), with servers nobody runs.
fn organizer_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let [imap, smtp] = crate::support::free_ports::<2>();
    let config = dir.path().join("rsvpd.toml");
    std::fs::write(
        &config,
        format!(
            r#"[mailbox]
url = "imap://anmeldung%40example.org@127.0.0.1:{imap}?tls=none"
password_file = "credentials/imap"
[smtp]
url = "smtp://anmeldung%40example.org@127.0.0.1:{smtp}?tls=none"
password_file = "credentials/smtp"
from = "Anmeldung <anmeldung@example.org>"
[database]
url = "sqlite://rsvpd.db"
{conferences}"#,
            conferences = crate::app::CONFERENCES
        ),
    )
    .expect("write config");
    (dir, config)
}

/// Run rsvpd, insist that it fails, and that its stderr says every one of `needles`.
fn fails_saying(config: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = rsvpd(config, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    assert!(needles.iter().all(|n| err.contains(n)), "{args:?}: {err}");
    err
}

fn assert_ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// PRODUCT.md: the database commands need no mailbox or SMTP password, so an
/// organizer can run them without the service's credentials; the commands
/// that connect say which file they could not read.
#[test]
fn database_commands_work_without_the_password_files() {
    let (dir, config) = organizer_config();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "Liebe/r {{ name }}, der Raum hat sich geändert.").expect("write");
    let body = body.to_str().expect("utf-8 path");
    for args in [
        &["conferences"][..],
        &[
            "add",
            "miko-2027",
            "ayse@example.net",
            "--name",
            "Ayşe Yılmaz",
        ],
        &[
            "add",
            "miko-2027",
            "omar@example.com",
            "--name",
            "Omar Haddad",
        ],
        &["attendees", "miko-2027", "--format", "csv"],
        &["review"],
        &["outbox"],
        &[
            "send",
            "miko-2027",
            "--subject",
            "Raum",
            "--body-file",
            body,
            "--dry-run",
        ],
        &[
            "send",
            "miko-2027",
            "--subject",
            "Raum",
            "--body-file",
            body,
        ],
        &["cancel", "miko-2027", "omar@example.com"],
        &["person", "ayse@example.net"],
        &["forget", "ayse@example.net"],
    ] {
        assert_ok(&rsvpd(&config, args), &format!("{args:?}"));
    }
    let list = assert_ok(
        &rsvpd(
            &config,
            &["attendees", "miko-2027", "--all", "--format", "json"],
        ),
        "attendees",
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).expect("json");
    assert_eq!(list.len(), 1, "{list:#?}");

    // The daemon connects: it needs the password and names the file it could not read.
    fails_saying(
        &config,
        &["run", "--once"],
        &["password_file", "credentials/imap"],
    );
}

/// `check --offline` (the unit's ExecStartPre) validates without contacting
/// a server: servers down at boot do not stop the start; a missing
/// credential or a broken template does.
#[test]
fn check_offline_validates_without_connecting() {
    let (dir, config) = organizer_config();
    fails_saying(
        &config,
        &["check", "--offline"],
        &["cannot read password_file", "credentials/imap"],
    );

    std::fs::create_dir(dir.path().join("credentials")).expect("mkdir");
    std::fs::write(dir.path().join("credentials/imap"), "imap-secret\n").expect("write");
    std::fs::write(dir.path().join("credentials/smtp"), "smtp-secret\n").expect("write");
    let out = rsvpd(&config, &["check", "--offline"]);
    let text = assert_ok(&out, "check --offline");
    assert!(
        text.contains("not contacted") && text.contains("templates   ok"),
        "{text}"
    );
    assert!(!text.contains("secret") && !String::from_utf8_lossy(&out.stderr).contains("secret"));
    // Without --offline the same config fails: nobody listens on those ports.
    let out = rsvpd(&config, &["check"]);
    assert!(!out.status.success());

    // A template that does not render fails --offline too.
    let templates = dir.path().join("templates/confirmation/de");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(templates.join("subject"), "{{ no_such_placeholder }}").expect("write");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace(
            "[database]",
            "[defaults]\ntemplates = \"templates\"\n[database]",
        ),
    )
    .expect("write");
    fails_saying(
        &config,
        &["check", "--offline"],
        &["subject", "does not render"],
    );
}

#[test]
fn a_password_in_the_url_is_refused_and_never_repeated() {
    let (_dir, config) = organizer_config();
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace(
            "anmeldung%40example.org@127.0.0.1",
            "anmeldung%40example.org:Sommer2027!@127.0.0.1",
        ),
    )
    .expect("write");
    for args in [
        &["conferences"][..],
        &["check", "--offline"],
        &["run", "--once"],
    ] {
        let err = fails_saying(&config, args, &["contains a password", "line 2"]);
        assert!(!err.contains("Sommer2027"), "{err}");
        assert!(rsvpd(&config, args).stdout.is_empty());
    }
}

#[test]
fn a_format_a_command_does_not_have_is_refused() {
    let (_dir, config) = organizer_config();
    for args in [
        &["conferences", "--format", "csv"][..],
        &["review", "--format", "csv"],
        &["outbox", "--format", "csv"],
        &["attendees", "miko-2027", "--format", "xlsx"],
    ] {
        fails_saying(&config, args, &["invalid value", "possible values"]);
        assert_eq!(rsvpd(&config, args).status.code(), Some(2), "{args:?}");
    }
}

/// `rsvpd attendees … | head -1`: the reader closes the pipe early; rsvpd
/// stops quietly with success instead of "Broken pipe" or a panic.
#[test]
fn a_closed_pipe_is_not_an_error() {
    let (_dir, config) = organizer_config();
    assert_ok(
        &rsvpd(&config, &["add", "miko-2027", "ayse@example.net"]),
        "add",
    );
    for format in ["table", "csv", "json"] {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&config)
            .args(["attendees", "miko-2027", "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before rsvpd has written anything (it still
        // reads its config and opens the database): every write meets EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{format}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{format}");
    }
    // The same through a real shell pipe into `head -1`.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' --config '{}' attendees miko-2027 | head -1",
            binary(),
            config.display()
        ))
        .output()
        .expect("sh");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("EMAIL"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// `run --once` on the demo with stderr into a file; its log, after `setup`
/// adjusted the command (environment) given the log file's path.
fn demo_log(setup: impl FnOnce(&mut Command, &Path)) -> String {
    let dir = demo_copy();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(dir.path().join("config/demo.toml"))
        .args(["run", "--once"])
        .env_remove("JOURNAL_STREAM")
        .env_remove("RSVPD_LOG_FORMAT")
        .env_remove("RSVPD_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    setup(&mut cmd, &log);
    let status = cmd.status().expect("run");
    let text = std::fs::read_to_string(&log).expect("read log");
    assert!(status.success(), "{text}");
    text
}

/// `JOURNAL_STREAM=DEVICE:INODE` of the file `log`, as systemd sets it.
fn journal_stream(log: &Path) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(log).expect("stat");
    format!("{}:{}", m.dev(), m.ino())
}

#[test]
fn logs_for_the_journal_carry_priorities_and_no_colour() {
    let journal = demo_log(|cmd, log| {
        cmd.env("JOURNAL_STREAM", journal_stream(log));
    });
    assert!(!journal.contains('\u{1b}'), "{journal}");
    assert!(
        journal
            .lines()
            .all(|l| l.len() > 3 && l.starts_with('<') && l.as_bytes()[2] == b'>'),
        "every line has a priority:\n{journal}"
    );
    let line = |needle: &str| {
        journal
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{journal}"))
            .to_string()
    };
    assert!(line("message handled").starts_with("<6>"), "{journal}");
    assert!(
        line("message needs a human").starts_with("<4>"),
        "{journal}"
    );
    // The journal stamps lines itself.
    assert!(!line("message handled").contains("Z "), "{journal}");

    // A JOURNAL_STREAM inherited by a process whose stderr is elsewhere: plain text.
    let plain = demo_log(|cmd, _| {
        cmd.env("JOURNAL_STREAM", "8:12345");
    });
    assert!(
        !plain.contains('\u{1b}') && !plain.starts_with('<'),
        "{plain}"
    );
    assert!(plain.contains(" WARN ") && plain.contains("Z "), "{plain}");

    // JSON on request, also under the journal.
    let json = demo_log(|cmd, log| {
        cmd.env("JOURNAL_STREAM", journal_stream(log))
            .env("RSVPD_LOG_FORMAT", "json");
    });
    for l in json.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
}

#[test]
fn colour_only_on_a_terminal() {
    // `script` runs the command on a pseudo-terminal.
    let dir = demo_copy();
    let cmd = format!(
        "'{}' --config '{}' run --once >/dev/null",
        binary(),
        dir.path().join("config/demo.toml").display()
    );
    let out = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env_remove("JOURNAL_STREAM")
        .env_remove("RSVPD_LOG_FORMAT")
        .output()
        .expect("script (util-linux)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\u{1b}["), "a terminal gets colour:\n{text}");
    let piped = demo_log(|_, _| {});
    assert!(!piped.contains('\u{1b}'), "{piped}");
}

/// CSV injection: an organisation such as `=HYPERLINK(…)` (from an
/// "Organisation:" line of a stranger's mail) reaches the organizer's
/// spreadsheet as text, not as a formula.
#[test]
fn the_csv_export_escapes_cells_that_start_a_formula() {
    let (_dir, config) = organizer_config();
    let evil = "=HYPERLINK(\"http://evil.example/\",\"Details\")";
    assert_ok(
        &rsvpd(
            &config,
            &[
                "add",
                "miko-2027",
                "ayse@example.net",
                "--name",
                "@Ayşe",
                "--organization",
                evil,
                "--note=-Rollstuhl",
            ],
        ),
        "add",
    );
    let csv = assert_ok(
        &rsvpd(&config, &["attendees", "miko-2027", "--format", "csv"]),
        "attendees --format csv",
    );
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().expect("a row").expect("parses");
    assert_eq!(&row[1], "'@Ayşe");
    assert_eq!(&row[2], format!("'{evil}"));
    assert_eq!(&row[8], "'-Rollstuhl");
}
