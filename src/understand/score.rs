//! Scores what [`understand`](super::understand) made of a mail against the
//! result a careful secretary expected (`NAME.json`), for the blind mails in
//! `tests/blind/` (`examples/score.rs`). Compares only the fields the expected
//! JSON has, so a field added to `Understood` later does not break a score;
//! descriptive texts (`reason`, `address_note`, `explanation`) are never
//! compared, `review` and `ignore` only by kind. A misfile — recording someone
//! who should not be recorded — is counted apart and reported first: it is
//! the one mistake a secretary never makes.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Kinds that put someone on an attendee list.
const RECORDING: [&str; 3] = ["register", "update", "confirm"];
/// Kinds that are answered, so the answer's language matters.
const ANSWERED: [&str; 4] = ["register", "update", "cancel", "confirm"];
/// Free text that explains a decision; its wording cannot be expected.
const DESCRIPTIVE: [&str; 3] = ["reason", "address_note", "explanation"];

/// One mail's score.
#[derive(Debug, Default)]
pub struct Score {
    pub expected_kind: String,
    pub actual_kind: String,
    /// Why this is a misfile, if it is one.
    pub misfile: Option<String>,
    /// Each wrong field: `path: expected X, got Y`.
    pub wrong: Vec<String>,
    /// Attendee fields the expected result names, and how many came out right.
    pub attendee_fields: usize,
    pub attendee_fields_right: usize,
}

impl Score {
    pub fn kind_right(&self) -> bool {
        self.expected_kind == self.actual_kind
    }

    /// Kind, conference and every compared field right.
    pub fn right(&self) -> bool {
        self.kind_right() && self.wrong.is_empty() && self.misfile.is_none()
    }

    /// One line for the report: `ok`, `wrong kind`, `wrong field …` or `MISFILE`.
    pub fn line(&self, name: &str) -> String {
        let details = self.wrong.join("; ");
        if let Some(why) = &self.misfile {
            format!("MISFILE     {name}: {why}")
        } else if !self.kind_right() {
            format!(
                "wrong kind  {name}: expected {}, got {}",
                self.expected_kind, self.actual_kind
            )
        } else if !self.wrong.is_empty() {
            format!("wrong field {name}: {details}")
        } else {
            format!("ok          {name}")
        }
    }
}

/// Scores `actual` (an `Understood` as JSON) against `expected`.
pub fn score(expected: &Value, actual: &Value) -> Score {
    let (ea, ga) = (&expected["action"], &actual["action"]);
    let mut s = Score {
        expected_kind: text(&ea["kind"]),
        actual_kind: text(&ga["kind"]),
        ..Score::default()
    };
    s.misfile = misfile(ea, ga, &s.expected_kind, &s.actual_kind);

    for key in ["message_id", "from", "subject"] {
        if let Some(e) = expected.get(key) {
            same(&mut s.wrong, key, e, &actual[key]);
        }
    }
    if ANSWERED.contains(&s.expected_kind.as_str())
        && let Some(e) = expected.get("language")
    {
        same(&mut s.wrong, "language", e, &actual["language"]);
    }

    if matches!(s.expected_kind.as_str(), "review" | "ignore") {
        return s;
    }
    let Some(fields) = ea.as_object() else {
        return s;
    };
    for (key, e) in fields {
        if key == "kind" || DESCRIPTIVE.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "attendees" => attendees(&mut s, e, &ga[key.as_str()]),
            "recipients" => same_set(&mut s.wrong, key, e, &ga[key.as_str()]),
            _ if s.kind_right() => same(&mut s.wrong, key, e, &ga[key.as_str()]),
            // The kind line already says it; a field of another kind means nothing.
            _ => {}
        }
    }
    s
}

fn misfile(ea: &Value, ga: &Value, ek: &str, gk: &str) -> Option<String> {
    if !RECORDING.contains(&gk) {
        return None;
    }
    let who = recorded(ga).join(", ");
    let conference = ga["conference"].as_str().unwrap_or("?");
    if !RECORDING.contains(&ek) {
        return Some(format!(
            "expected {ek}, got {gk} recording {who} for {conference}"
        ));
    }
    if let (Some(g), Some(e)) = (ga["conference"].as_str(), ea["conference"].as_str())
        && g != e
    {
        return Some(format!("{gk} records {who} for {g}, expected {e}"));
    }
    let expected = recorded(ea);
    let strangers: Vec<String> = recorded(ga)
        .into_iter()
        .filter(|a| !expected.contains(a))
        .collect();
    if !strangers.is_empty() {
        return Some(format!(
            "{gk} records {} instead of {}",
            strangers.join(", "),
            expected.join(", ")
        ));
    }
    None
}

/// The addresses an action puts on a list.
fn recorded(action: &Value) -> Vec<String> {
    match action["attendees"].as_array() {
        Some(list) => list.iter().map(|a| text(&a["email"])).collect(),
        None => action["email"]
            .as_str()
            .map(|e| vec![e.to_lowercase()])
            .unwrap_or_default(),
    }
}

fn attendees(s: &mut Score, expected: &Value, actual: &Value) {
    let expected = expected.as_array().map(Vec::as_slice).unwrap_or_default();
    let actual = actual.as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, e) in expected.iter().enumerate() {
        let fields = e.as_object().map(|o| {
            o.iter()
                .filter(|(k, _)| !DESCRIPTIVE.contains(&k.as_str()))
                .collect::<Vec<_>>()
        });
        let fields = fields.unwrap_or_default();
        s.attendee_fields += fields.len();
        // Match by address first, so an order the rules chose is no error.
        let got = actual
            .iter()
            .find(|a| a["email"] == e["email"])
            .or_else(|| actual.get(i));
        let Some(got) = got else {
            if s.kind_right() {
                s.wrong
                    .push(format!("attendees[{i}]: {} missing", text(&e["email"])));
            }
            continue;
        };
        for (key, want) in fields {
            let path = format!("attendees[{i}].{key}");
            let before = s.wrong.len();
            match key.as_str() {
                "companions" | "workshops" => same_set(&mut s.wrong, &path, want, &got[key]),
                "notes" => same_notes(&mut s.wrong, &path, want, &got[key]),
                _ => same(&mut s.wrong, &path, want, &got[key]),
            }
            if s.wrong.len() == before {
                s.attendee_fields_right += 1;
            }
        }
    }
    if actual.len() > expected.len() && s.kind_right() {
        let extra: Vec<String> = actual[expected.len()..]
            .iter()
            .map(|a| text(&a["email"]))
            .collect();
        s.wrong
            .push(format!("attendees: extra {}", extra.join(", ")));
    }
}

fn same(wrong: &mut Vec<String>, path: &str, expected: &Value, actual: &Value) {
    let trimmed = |v: &Value| match v {
        Value::String(t) => Value::String(t.trim().to_string()),
        other => other.clone(),
    };
    if trimmed(expected) != trimmed(actual) {
        wrong.push(format!("{path}: expected {expected}, got {actual}"));
    }
}

/// Lists whose order carries no meaning (companions, workshops, recipients).
fn same_set(wrong: &mut Vec<String>, path: &str, expected: &Value, actual: &Value) {
    let sorted = |v: &Value| {
        let mut l: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        l.sort();
        l
    };
    if sorted(expected) != sorted(actual) {
        wrong.push(format!("{path}: expected {expected}, got {actual}"));
    }
}

/// Expected notes are key phrases from the mail: right when every phrase is
/// in some note and every note holds some phrase (case-insensitive), so the
/// rules may word, merge or prefix a note ("Frage: …") as they like.
fn same_notes(wrong: &mut Vec<String>, path: &str, expected: &Value, actual: &Value) {
    let lower = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|n| text(n).to_lowercase()).collect())
            .unwrap_or_default()
    };
    let (phrases, notes) = (lower(expected), lower(actual));
    let all_found = phrases.iter().all(|p| notes.iter().any(|n| n.contains(p)));
    let none_extra = notes.iter().all(|n| phrases.iter().any(|p| n.contains(p)));
    if !(all_found && none_extra) {
        wrong.push(format!("{path}: expected {expected}, got {actual}"));
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// The sums over a folder of mails.
#[derive(Debug, Default)]
pub struct Totals {
    pub mails: usize,
    pub right: usize,
    pub kind_right: usize,
    pub misfiles: Vec<String>,
    pub attendee_fields: usize,
    pub attendee_fields_right: usize,
    /// Per expected kind: (right, total).
    pub per_kind: BTreeMap<String, (usize, usize)>,
    /// Mails without a readable expected file.
    pub unscored: Vec<String>,
}

impl Totals {
    pub fn add(&mut self, name: &str, s: &Score) {
        self.mails += 1;
        self.right += usize::from(s.right());
        self.kind_right += usize::from(s.kind_right());
        if s.misfile.is_some() {
            self.misfiles.push(name.to_string());
        }
        self.attendee_fields += s.attendee_fields;
        self.attendee_fields_right += s.attendee_fields_right;
        let k = self.per_kind.entry(s.expected_kind.clone()).or_default();
        k.0 += usize::from(s.right());
        k.1 += 1;
    }
}

fn share(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1} %", 100.0 * part as f64 / whole as f64)
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.mails;
        writeln!(
            f,
            "misfiles:              {} of {n} ({})",
            self.misfiles.len(),
            share(self.misfiles.len(), n)
        )?;
        for m in &self.misfiles {
            writeln!(f, "  {m}")?;
        }
        writeln!(
            f,
            "messages right:        {} of {n} ({})",
            self.right,
            share(self.right, n)
        )?;
        writeln!(
            f,
            "attendee fields right: {} of {} ({})",
            self.attendee_fields_right,
            self.attendee_fields,
            share(self.attendee_fields_right, self.attendee_fields)
        )?;
        writeln!(
            f,
            "kind right:            {} of {n} ({})",
            self.kind_right,
            share(self.kind_right, n)
        )?;
        writeln!(f, "messages right per expected kind:")?;
        for (kind, (right, total)) in &self.per_kind {
            writeln!(f, "  {kind:<9} {right:>3} of {total:>3}")?;
        }
        if !self.unscored.is_empty() {
            writeln!(
                f,
                "not scored (no readable expected .json): {}",
                self.unscored.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registration(kind: &str, conference: &str, email: &str) -> Value {
        json!({
            "message_id": "m1@example.org", "from": email, "subject": "Anmeldung", "language": "de",
            "action": {"kind": kind, "conference": conference, "attendees": [{
                "email": email, "name": "Ayşe Yıldız", "organization": null, "party_size": 2,
                "companions": ["Murat Aydın", "Sevim Arslan"], "workshops": ["w1", "w3"],
                "notes": ["Rollstuhl", "Parkplätze"], "language": "de", "address_note": null
            }]}
        })
    }

    fn review() -> Value {
        json!({"message_id": "m1@example.org", "from": "a@example.org", "subject": "Anmeldung",
               "language": "de", "action": {"kind": "review", "reason": "a question", "conference": null}})
    }

    #[test]
    fn the_same_result_is_right_and_extra_fields_do_not_count() {
        let expected = registration("register", "miko-2027", "a@example.org");
        let mut actual = expected.clone();
        actual["explanation"] = json!(["rule x fired on …"]);
        actual["action"]["attendees"][0]["address_note"] = json!("something else");
        actual["action"]["attendees"][0]["workshops"] = json!(["w3", "w1"]);
        actual["action"]["attendees"][0]["notes"] =
            json!(["Rollstuhlfahrerin", "Frage: Gibt es Parkplätze?"]);
        let s = score(&expected, &actual);
        assert!(s.right(), "{:?}", s.wrong);
        assert_eq!((s.attendee_fields_right, s.attendee_fields), (8, 8));
        assert_eq!(s.line("x"), "ok          x");
    }

    #[test]
    fn a_wrong_field_is_named_and_counted() {
        let expected = registration("register", "miko-2027", "a@example.org");
        let mut actual = expected.clone();
        actual["action"]["attendees"][0]["party_size"] = json!(3);
        actual["action"]["attendees"][0]["notes"] = json!(["Rollstuhl", "Parkplätze", "vegan"]);
        let s = score(&expected, &actual);
        assert!(!s.right() && s.kind_right() && s.misfile.is_none());
        assert_eq!(s.wrong.len(), 2, "{:?}", s.wrong);
        assert!(
            s.wrong
                .iter()
                .any(|w| w == "attendees[0].party_size: expected 2, got 3")
        );
        assert!(s.wrong.iter().any(|w| w.starts_with("attendees[0].notes:")));
        assert_eq!((s.attendee_fields_right, s.attendee_fields), (6, 8));
        assert!(s.line("x").starts_with("wrong field x: attendees[0]."));
    }

    #[test]
    fn recording_what_should_go_to_review_is_a_misfile() {
        let s = score(
            &review(),
            &registration("register", "miko-2027", "a@example.org"),
        );
        assert!(s.misfile.is_some() && !s.right());
        assert!(
            s.line("x")
                .starts_with("MISFILE     x: expected review, got register")
        );
        // A cancel expected but a confirm given records someone too.
        let mut cancel = review();
        cancel["action"] = json!({"kind": "cancel", "conference": "lip-2", "email": "a@example.org", "name": null});
        let mut confirm = review();
        confirm["action"] =
            json!({"kind": "confirm", "conference": null, "email": "a@example.org", "token": null});
        assert!(score(&cancel, &confirm).misfile.is_some());
    }

    #[test]
    fn wrong_conference_or_wrong_address_is_a_misfile() {
        let expected = registration("register", "miko-2027", "a@example.org");
        let other_conference = registration("register", "lip-2", "a@example.org");
        assert!(score(&expected, &other_conference).misfile.is_some());
        let mut team_mailbox = expected.clone();
        team_mailbox["action"]["attendees"][0]["email"] = json!("team@example.org");
        let s = score(&expected, &team_mailbox);
        assert!(
            s.misfile
                .as_deref()
                .is_some_and(|m| m.contains("team@example.org"))
        );
        // Register for update, same person and conference: wrong kind, not a misfile.
        let update = registration("update", "miko-2027", "a@example.org");
        let s = score(&expected, &update);
        assert!(s.misfile.is_none() && !s.kind_right());
        assert_eq!(s.line("x"), "wrong kind  x: expected register, got update");
    }

    #[test]
    fn review_and_ignore_compare_the_kind_only_and_losing_a_registration_is_no_misfile() {
        let mut other_reason = review();
        other_reason["action"]["reason"] = json!("written in Turkish");
        other_reason["action"]["conference"] = json!("miko-2027");
        other_reason["language"] = json!("en");
        assert!(score(&review(), &other_reason).right());
        let s = score(
            &registration("register", "miko-2027", "a@example.org"),
            &review(),
        );
        assert!(s.misfile.is_none() && !s.right());
        assert_eq!((s.attendee_fields_right, s.attendee_fields), (0, 8));
    }

    #[test]
    fn bounces_compare_recipients_as_a_set_and_permanence_not_the_reason() {
        let mut expected = review();
        expected["action"] = json!({"kind": "bounce", "recipients": ["a@x.example", "b@x.example"],
                                    "permanent": true, "reason": "550"});
        let mut actual = expected.clone();
        actual["action"]["recipients"] = json!(["b@x.example", "a@x.example"]);
        actual["action"]["reason"] = json!("550 5.1.1 user unknown");
        assert!(score(&expected, &actual).right());
        actual["action"]["permanent"] = json!(false);
        assert!(!score(&expected, &actual).right());
    }

    #[test]
    fn totals_put_misfiles_first() {
        let mut t = Totals::default();
        let expected = registration("register", "miko-2027", "a@example.org");
        t.add("right", &score(&expected, &expected));
        t.add(
            "misfiled",
            &score(
                &review(),
                &registration("register", "miko-2027", "a@example.org"),
            ),
        );
        let out = t.to_string();
        assert!(out.starts_with("misfiles:              1 of 2 (50.0 %)\n  misfiled\n"));
        assert!(out.contains("messages right:        1 of 2 (50.0 %)"));
        assert!(out.contains("attendee fields right: 8 of 8 (100.0 %)"));
    }
}
