//! Calendar invites: the `.ics` (RFC 5545) attached to confirmations,
//! promotions and reminders.
//!
//! It owns the iCalendar text and nothing else: which mail carries it is the
//! mailer's decision. The event is METHOD:PUBLISH with a UID that is stable per
//! conference (so a second invite updates the first in the attendee's
//! calendar rather than adding a copy), DTSTART/DTEND in the conference's own
//! zone with a VTIMEZONE built from chrono-tz's rules for the years around the
//! event (no RRULE: every transition is spelled out, so no client has to guess
//! a rule), LOCATION, SUMMARY and an ORGANIZER address that a person reads.
//! Written by hand rather than with a generator crate: the VTIMEZONE has to be
//! derived from chrono-tz's rules anyway, and the rest of the format is small.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset as _, TimeZone as _, Utc};
use chrono_tz::{OffsetComponents as _, OffsetName as _, Tz};

use crate::config::Conference;

/// The MIME type of the attachment, with the method the body declares.
pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8; method=PUBLISH";

/// Who organizes the event: a name (optional) and an address that is read.
#[derive(Debug, Clone)]
pub struct Organizer {
    pub name: Option<String>,
    pub email: String,
}

/// The stable UID of `conference`'s event: the same in every invite.
pub fn uid(conference: &Conference, domain: &str) -> String {
    format!("{}@{}", conference.id, domain)
}

/// The `.ics` text (CRLF line ends, folded at 75 octets) for `conference`.
pub fn invite(
    conference: &Conference,
    organizer: &Organizer,
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let tz = conference.timezone;
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        format!("PRODID:-//rsvpd//rsvpd {}//EN", env!("CARGO_PKG_VERSION")),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
    ];
    lines.extend(vtimezone(
        tz,
        conference.starts.with_timezone(&tz).year() - 1,
        conference.ends.with_timezone(&tz).year(),
    ));
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y%m%dT%H%M%S").to_string();
    lines.extend([
        "BEGIN:VEVENT".into(),
        format!("UID:{}", uid(conference, domain)),
        format!("DTSTAMP:{}", now.format("%Y%m%dT%H%M%SZ")),
        format!("DTSTART;TZID={}:{}", tz.name(), local(conference.starts)),
        format!("DTEND;TZID={}:{}", tz.name(), local(conference.ends)),
        format!("SUMMARY:{}", text(&conference.title)),
    ]);
    if !conference.location.trim().is_empty() {
        lines.push(format!("LOCATION:{}", text(&conference.location)));
    }
    let cn = organizer
        .name
        .as_deref()
        .map(|n| format!(";CN={}", param(n)))
        .unwrap_or_default();
    lines.extend([
        format!("ORGANIZER{cn}:mailto:{}", organizer.email),
        "STATUS:CONFIRMED".into(),
        "TRANSP:OPAQUE".into(),
        "END:VEVENT".into(),
        "END:VCALENDAR".into(),
    ]);
    let mut out = String::new();
    for l in lines {
        out.push_str(&fold(&l));
        out.push_str("\r\n");
    }
    out
}

/// A VTIMEZONE with every offset change of `tz` from `from_year` to `to_year`,
/// computed once per zone and years: finding the transitions takes tens of
/// thousands of offset lookups, which the profile showed as the largest CPU
/// cost of a confirmation, and the answer never changes.
fn vtimezone(tz: Tz, from_year: i32, to_year: i32) -> Vec<String> {
    type Cache = std::collections::HashMap<(Tz, i32, i32), Vec<String>>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .get_or_insert_with(Cache::new)
        .entry((tz, from_year, to_year))
        .or_insert_with(|| build_vtimezone(tz, from_year, to_year))
        .clone()
}

fn build_vtimezone(tz: Tz, from_year: i32, to_year: i32) -> Vec<String> {
    let mut lines = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{}", tz.name())];
    let start = NaiveDate::from_ymd_opt(from_year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let end = NaiveDate::from_ymd_opt(to_year + 1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .unwrap_or(start);
    let transitions = transitions(tz, start, end);
    if transitions.is_empty() {
        let o = tz.offset_from_utc_datetime(&start.naive_utc());
        let off = offset(o.fix().local_minus_utc());
        lines.push("BEGIN:STANDARD".into());
        lines.push("DTSTART:19700101T000000".into());
        lines.push(format!("TZOFFSETFROM:{off}"));
        lines.push(format!("TZOFFSETTO:{off}"));
        if let Some(name) = o.abbreviation() {
            lines.push(format!("TZNAME:{}", text(name)));
        }
        lines.push("END:STANDARD".into());
    }
    for at in transitions {
        let before = tz.offset_from_utc_datetime(&(at - Duration::seconds(1)).naive_utc());
        let after = tz.offset_from_utc_datetime(&at.naive_utc());
        let from = before.fix().local_minus_utc();
        let kind = if after.dst_offset().is_zero() {
            "STANDARD"
        } else {
            "DAYLIGHT"
        };
        // The onset is written in the local time in force *before* the change.
        let onset = (at + Duration::seconds(i64::from(from))).naive_utc();
        lines.push(format!("BEGIN:{kind}"));
        lines.push(format!("DTSTART:{}", onset.format("%Y%m%dT%H%M%S")));
        lines.push(format!("TZOFFSETFROM:{}", offset(from)));
        lines.push(format!(
            "TZOFFSETTO:{}",
            offset(after.fix().local_minus_utc())
        ));
        if let Some(name) = after.abbreviation() {
            lines.push(format!("TZNAME:{}", text(name)));
        }
        lines.push(format!("END:{kind}"));
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

/// The instants in [start, end) at which `tz` changes its UTC offset.
fn transitions(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let off = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let mut found = Vec::new();
    let mut t = start;
    let mut current = off(t);
    // Hour steps find every change (no zone changes twice within an hour); a
    // binary search then pins each one to the second.
    while t < end {
        let next = t + Duration::hours(1);
        let o = off(next);
        if o != current {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if off(mid) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            found.push(hi);
            current = o;
        }
        t = next;
    }
    found
}

/// "+0200" for 7200 seconds east of UTC.
fn offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.unsigned_abs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// A TEXT value: backslash, `;`, `,` escaped, line breaks as `\n`, no controls.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted, without the characters a quoted value cannot hold.
fn param(s: &str) -> String {
    let cleaned: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    format!("\"{cleaned}\"")
}

/// Fold a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn berlin_transitions_are_found_to_the_second() {
        let t = transitions(
            chrono_tz::Europe::Berlin,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        assert_eq!(
            t,
            vec![utc("2027-03-28T01:00:00Z"), utc("2027-10-31T01:00:00Z")]
        );
    }

    #[test]
    fn vtimezone_writes_onsets_in_the_old_local_time() {
        let v = vtimezone(chrono_tz::Europe::Berlin, 2027, 2027).join("\n");
        assert!(
            v.contains(
                "BEGIN:DAYLIGHT\nDTSTART:20270328T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST"
            ),
            "{v}"
        );
        assert!(
            v.contains(
                "BEGIN:STANDARD\nDTSTART:20271031T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET"
            ),
            "{v}"
        );
    }

    #[test]
    fn a_zone_without_dst_has_one_standard_observance() {
        let v = vtimezone(chrono_tz::Asia::Tokyo, 2027, 2027).join("\n");
        assert!(
            v.contains("DTSTART:19700101T000000\nTZOFFSETFROM:+0900\nTZOFFSETTO:+0900"),
            "{v}"
        );
    }

    /// Parse `ics` with the independent `ical` crate and read the event's
    /// start through its own VTIMEZONE: (UID, start in UTC, LOCATION, ORGANIZER, METHOD).
    fn read_with_ical(ics: &str) -> (String, DateTime<Utc>, String, String, String) {
        let mut parser = ical::IcalParser::new(std::io::BufReader::new(ics.as_bytes()));
        let cal = parser
            .next()
            .expect("one calendar")
            .expect("the ical crate parses it");
        assert!(parser.next().is_none(), "exactly one calendar");
        let prop = |props: &[ical::property::Property], name: &str| {
            props
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .clone()
        };
        let method = prop(&cal.properties, "METHOD").value.unwrap_or_default();
        assert_eq!(cal.events.len(), 1);
        let ev = &cal.events[0];
        let start = prop(&ev.properties, "DTSTART");
        let tzid = start
            .params
            .as_ref()
            .and_then(|ps| ps.iter().find(|(k, _)| k == "TZID"))
            .map(|(_, v)| v.join(","))
            .expect("DTSTART has a TZID");
        let tz = cal
            .timezones
            .iter()
            .find(|z| prop(&z.properties, "TZID").value.as_deref() == Some(tzid.as_str()))
            .expect("a VTIMEZONE for the TZID of DTSTART");
        let local = chrono::NaiveDateTime::parse_from_str(
            start.value.as_deref().unwrap_or_default(),
            "%Y%m%dT%H%M%S",
        )
        .expect("local DTSTART");
        // The observance in force: the latest onset at or before the local start.
        let (_, offset) = tz
            .transitions
            .iter()
            .map(|t| {
                let onset = chrono::NaiveDateTime::parse_from_str(
                    prop(&t.properties, "DTSTART")
                        .value
                        .as_deref()
                        .unwrap_or_default(),
                    "%Y%m%dT%H%M%S",
                )
                .expect("onset");
                let to = prop(&t.properties, "TZOFFSETTO").value.unwrap_or_default();
                let sign = if to.starts_with('-') { -1 } else { 1 };
                let h: i64 = to[1..3].parse().expect("hours");
                let m: i64 = to[3..5].parse().expect("minutes");
                (onset, sign * (h * 3600 + m * 60))
            })
            .filter(|(onset, _)| *onset <= local)
            .max_by_key(|(onset, _)| *onset)
            .expect("an observance covers the start");
        let utc = Utc.from_utc_datetime(&(local - Duration::seconds(offset)));
        (
            prop(&ev.properties, "UID").value.unwrap_or_default(),
            utc,
            prop(&ev.properties, "LOCATION").value.unwrap_or_default(),
            prop(&ev.properties, "ORGANIZER").value.unwrap_or_default(),
            method,
        )
    }

    fn conference(starts: &str, tz: Tz) -> Conference {
        let local = |s: &str| {
            crate::localtime::local_to_utc(
                tz,
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").expect("time"),
            )
            .expect("exists")
        };
        let s = local(starts);
        Conference {
            id: "miko-2027".into(),
            title: "Vierte Migrationskonferenz; mit Workshops, Pause".into(),
            aliases: vec![],
            timezone: tz,
            starts: s,
            ends: s + Duration::hours(6),
            location: "Mosaiksaal, Neues Rathaus, Trammplatz 2, 30159 Hannover".into(),
            capacity: None,
            opt_in: crate::config::OptIn::Single,
            organizers: vec!["orga@example.org".into()],
            workshops: vec![],
            address: None,
            reminders: vec![],
            digests: vec![],
            templates: None,
            reminder_grace: std::time::Duration::from_secs(6 * 3600),
        }
    }

    #[test]
    fn the_invite_parses_with_an_independent_parser_and_means_the_right_instant() {
        let organizer = Organizer {
            name: Some("MiSO-Netzwerk Anmeldung".into()),
            email: "orga@example.org".into(),
        };
        for (starts, tz, utc_start) in [
            (
                "2027-10-15T13:30",
                chrono_tz::Europe::Berlin,
                "2027-10-15T11:30:00Z",
            ),
            (
                "2027-12-01T13:30",
                chrono_tz::Europe::Berlin,
                "2027-12-01T12:30:00Z",
            ),
            (
                "2027-03-28T10:00",
                chrono_tz::Europe::Berlin,
                "2027-03-28T08:00:00Z",
            ),
            (
                "2027-07-01T09:00",
                chrono_tz::America::New_York,
                "2027-07-01T13:00:00Z",
            ),
            (
                "2027-07-01T09:00",
                chrono_tz::Asia::Kolkata,
                "2027-07-01T03:30:00Z",
            ),
        ] {
            let c = conference(starts, tz);
            let ics = invite(&c, &organizer, "example.org", utc("2027-09-06T07:14:02Z"));
            assert!(ics.ends_with("END:VCALENDAR\r\n"));
            let (uid, start, location, org, method) = read_with_ical(&ics);
            assert_eq!(uid, "miko-2027@example.org");
            assert_eq!(start, utc(utc_start), "{starts} {tz}: {ics}");
            assert_eq!(
                location,
                "Mosaiksaal\\, Neues Rathaus\\, Trammplatz 2\\, 30159 Hannover"
            );
            assert_eq!(org, "mailto:orga@example.org");
            assert_eq!(method, "PUBLISH");
        }
    }

    #[test]
    fn text_is_escaped_and_long_lines_folded_on_char_boundaries() {
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        let long = format!("LOCATION:{}", "Ü".repeat(60));
        let folded = fold(&long);
        for part in folded.split("\r\n") {
            assert!(part.len() <= 75, "{part}");
        }
        assert_eq!(folded.replace("\r\n ", ""), long);
        assert_eq!(param("Orga \"Team\""), "\"Orga Team\"");
    }
}
