//! Named crash points for the crash tests, compiled into debug builds only.
//!
//! `RSVPD_FAILPOINT=NAME` makes the process abort (like SIGKILL: no cleanup, no
//! destructors) the first time it reaches `failpoint("NAME")`;
//! `RSVPD_FAILPOINT=hang:NAME` makes the task that reaches `hang_point("NAME")`
//! wait forever (a stuck worker, for the watchdog test). Release builds
//! compile every call to nothing.

/// Abort here if `RSVPD_FAILPOINT` names this point (debug builds only).
#[inline]
pub fn failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("RSVPD_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("rsvpd: failpoint {name} reached: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Abort here like [`failpoint`], but only once no mail of this process is
/// between the SMTP server's 250 and its record (the crash points of the
/// mailbox reader: `run --once` sends while it reads, and a crash at one of
/// them is meant to test the reader's state alone; a crash that also catches a
/// send in that window is `after-send`).
pub async fn reader_failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("RSVPD_FAILPOINT").is_ok_and(|v| v == name) {
        let _turn = crate::mailer::Finishing::take().await;
        failpoint(name);
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Panic here if `RSVPD_FAILPOINT` names this point (debug builds only), to
/// prove that a panic while handling one mail is caught.
#[inline]
pub fn panic_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("RSVPD_FAILPOINT").is_ok_and(|v| v == name) {
        panic!("failpoint {name} reached");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Wait forever here if `RSVPD_FAILPOINT` is `hang:NAME` (debug builds only).
pub async fn hang_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("RSVPD_FAILPOINT").is_ok_and(|v| v.strip_prefix("hang:") == Some(name)) {
        eprintln!("rsvpd: failpoint hang:{name} reached: this task waits forever");
        std::future::pending::<()>().await;
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
