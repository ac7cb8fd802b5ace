//! Where logs go and how they look: for a person at a terminal (colour), for
//! the systemd journal (a `<N>` priority on every line, so `journalctl -p
//! warning` works; no colour, no timestamp — the journal adds its own), or
//! JSON lines on request (`RSVPD_LOG_FORMAT=json`).
//!
//! systemd sets `JOURNAL_STREAM=DEVICE:INODE` for a service whose stderr is
//! the journal; it counts only when stderr still is that stream (a child
//! with redirected stderr inherits the variable). Prefixes are the
//! `sd-daemon(3)` way: simpler than the native protocol, and the same when
//! stderr is a file. What is logged is decided elsewhere; addresses are
//! masked where they are written (`crate::mask`).

use std::fmt;
use std::io::IsTerminal as _;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Human text with colour (stderr is a terminal).
    Terminal,
    /// Human text without colour (a file, a pipe).
    Plain,
    /// `<N>`-prefixed lines for the journal.
    Journal,
    /// One JSON object per line.
    Json,
}

/// The style for this process: `RSVPD_LOG_FORMAT=json` wins, then the journal,
/// then whether stderr is a terminal.
pub fn style() -> Style {
    if std::env::var("RSVPD_LOG_FORMAT").as_deref() == Ok("json") {
        Style::Json
    } else if stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()) {
        Style::Journal
    } else if std::io::stderr().is_terminal() {
        Style::Terminal
    } else {
        Style::Plain
    }
}

/// Whether `journal_stream` ("DEVICE:INODE") names our stderr.
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some((dev, ino)) = journal_stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .or_else(|_| std::fs::metadata("/dev/stderr"))
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Install the global subscriber: level from `RSVPD_LOG` (default info),
/// output to stderr in [`style`].
pub fn init() {
    let filter = EnvFilter::try_from_env("RSVPD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match style() {
        Style::Json => builder.json().init(),
        Style::Journal => builder
            .with_ansi(false)
            .event_format(Journal(format().without_time().with_target(false)))
            .init(),
        Style::Terminal => builder.with_ansi(true).init(),
        Style::Plain => builder.with_ansi(false).init(),
    }
}

fn format() -> format::Format {
    format::Format::default()
}

/// syslog priority of a tracing level (`sd-daemon(3)`).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Formats an event with the inner format, then puts `<N>` before every line
/// of it: a value with a line break must not become a line of priority info.
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let p = priority(event.metadata().level());
        for line in text.lines() {
            writeln!(writer, "<{p}>{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_counts_only_when_it_is_our_stderr() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:1")));
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata("/proc/self/fd/2").expect("stderr");
        assert!(stderr_is_journal(Some(&format!("{}:{}", m.dev(), m.ino()))));
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(
            [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG].map(|l| priority(&l)),
            [3, 4, 6, 7]
        );
    }
}
