//! Wall-clock arithmetic in a conference's time zone: a local time as UTC
//! (strict for what a person wrote in the config, forgiving for a computed
//! reminder time), and "so long before, at that time of day".
//!
//! `config` (which checks a reminder fires before the start) and `schedule`
//! (which fires it) both need it; it depends on neither, and on nothing but
//! chrono.

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Offset as _, TimeZone as _, Utc};
use chrono_tz::Tz;

/// A local wall-clock time in `tz` as UTC; a time that does not exist (spring
/// forward) is an error rather than a guess, one that exists twice (fall
/// back) is the first.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, String> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, _) => Ok(a.with_timezone(&Utc)),
        chrono::LocalResult::None => Err(format!(
            "{local} does not exist in {tz} (clocks jump forward then)"
        )),
    }
}

/// A local time as UTC; a time in a gap is read with the offset before the gap.
pub fn local_to_utc_forward(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // Half a day earlier is safely before the gap (gaps last an hour or so).
            let probe = local - Duration::hours(12);
            let offset = tz.offset_from_utc_datetime(&probe).fix().local_minus_utc();
            Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset))))
        }
    }
}

/// `before` taken off the local wall-clock time of `start`, then (with `at`)
/// that local time of day on the resulting date. A local time that does not
/// exist (spring forward) moves forward by the gap; one that exists twice
/// (fall back) is the first.
pub fn before_at(
    tz: Tz,
    start: DateTime<Utc>,
    before: std::time::Duration,
    at: Option<NaiveTime>,
) -> DateTime<Utc> {
    let local_start = start.with_timezone(&tz).naive_local();
    let before = Duration::from_std(before).unwrap_or(Duration::MAX);
    let mut target = local_start
        .checked_sub_signed(before)
        .unwrap_or(NaiveDateTime::MIN);
    if let Some(at) = at {
        target = target.date().and_time(at);
    }
    local_to_utc_forward(tz, target)
}
