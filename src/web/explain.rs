//! rsvpd's explanations in the organizer's language: why a mail went to
//! review, was recorded or was left unanswered (the stored `reason`), and the
//! rules that fired (the stored [`Explanation`]).
//!
//! The pipeline stores them in English — the log's and the CLI's language,
//! and what `rsvpd review` prints —, so they stay as they are in the database
//! and are translated here, when a page shows them. A reason is matched
//! against [`SENTENCES`] (English with `{}` for the parts that vary, German
//! with `{0}`, `{1}` … for the same parts in German word order); a reason no
//! pattern knows is shown as stored rather than hidden.

use minijinja::Value;

use super::i18n::Lang;
use crate::config::Language;
use crate::understand::{Explanation, Step};

/// (English as the pipeline writes it, German.) More specific patterns first:
/// the first that matches wins.
const SENTENCES: &[(&str, &str)] = &[
    // review: the mail itself
    (
        "the sender address is missing or unreadable",
        "Die Absenderadresse fehlt oder ist nicht lesbar.",
    ),
    (
        "the sender's display name carries control characters (header injection or a disguised name?)",
        "Der Absendername enthält Steuerzeichen (ein Angriff oder ein getarnter Name?)",
    ),
    (
        "the sender's display name holds markup or code, not a name",
        "Der Absendername enthält Programmcode statt eines Namens",
    ),
    (
        "the sender's display name shows another address than the sender's",
        "Der Absendername zeigt eine andere Adresse als die des Absenders",
    ),
    (
        "the sender's display name is absurdly long",
        "Der Absendername ist ungewöhnlich lang",
    ),
    (
        "{}; not recorded, please check the sender",
        "{0}. Nichts wurde eingetragen; bitte prüfen Sie den Absender.",
    ),
    (
        "not a readable e-mail: no sender, subject or header fields found",
        "Keine lesbare E-Mail: kein Absender, kein Betreff, keine Kopfzeilen.",
    ),
    (
        "the text is marked as base64 but is not valid base64, so it cannot be read",
        "Der Text ist falsch kodiert (ungültiges Base64) und kann nicht gelesen werden.",
    ),
    (
        "the text is in a character set that cannot be read ({})",
        "Der Text ist in einem unbekannten Zeichensatz ({0}) und kann nicht gelesen werden.",
    ),
    (
        "the text of the message is unreadable (binary data or a broken encoding)",
        "Der Text der E-Mail ist nicht lesbar (Binärdaten oder kaputte Kodierung).",
    ),
    ("missing body part", "Der Text der E-Mail fehlt."),
    ("empty message", "Die E-Mail ist leer."),
    (
        "a forwarded message without a recognisable registration or cancellation",
        "Eine weitergeleitete E-Mail, in der keine Anmeldung oder Absage zu erkennen ist.",
    ),
    (
        "no text, only attachments ({}); perhaps a filled-in form",
        "Kein Text, nur Anhänge ({0}) – vielleicht ein ausgefülltes Formular.",
    ),
    (
        "the details are probably in the attachment ({}); please read it",
        "Die Angaben stehen wahrscheinlich im Anhang ({0}); bitte lesen Sie ihn.",
    ),
    (
        "not written by a person (a system, an automatic or a mass mail): nobody to register, please check",
        "Nicht von einer Person geschrieben (ein System, eine automatische oder eine Massen-E-Mail): niemand anzumelden, bitte prüfen.",
    ),
    (
        "written in {}; rsvpd reads and answers German and English only, please answer by hand",
        "Auf {0} geschrieben; rsvpd liest und beantwortet nur Deutsch und Englisch. Bitte antworten Sie selbst.",
    ),
    (
        "written in {}, but this sentence is readable",
        "auf {0} geschrieben, aber dieser Satz ist lesbar",
    ),
    ("written in {}", "auf {0} geschrieben"),
    (
        "a companion cannot come, the sender still does: please adjust the party size by hand",
        "Eine Begleitperson kann nicht kommen, die schreibende Person schon: bitte die Personenzahl von Hand ändern.",
    ),
    (
        "a companion cannot come",
        "Eine Begleitperson kann nicht kommen.",
    ),
    (
        "withdraws from a workshop but still attends: please adjust the workshops by hand",
        "Sagt einen Workshop ab, kommt aber zur Veranstaltung: bitte die Workshops von Hand ändern.",
    ),
    (
        "cancels and names someone to come instead: please re-register by hand",
        "Sagt ab und nennt eine Ersatzperson: bitte die neue Person von Hand anmelden.",
    ),
    (
        "adds people to an existing registration; please raise the party size by hand",
        "Möchte weitere Personen mitbringen: bitte die Personenzahl von Hand erhöhen.",
    ),
    (
        "registration for an unknown conference",
        "Anmeldung für eine unbekannte Veranstaltung.",
    ),
    (
        "change of a registration for \"{}\", which is not open for registration",
        "Änderung einer Anmeldung für „{0}“, für die keine Anmeldung mehr offen ist.",
    ),
    (
        "registration for \"{}\", which is not open for registration",
        "Anmeldung für „{0}“, für die keine Anmeldung mehr offen ist.",
    ),
    (
        "registration for an unusually large group ({} people); please check",
        "Anmeldung für eine ungewöhnlich große Gruppe ({0} Personen); bitte prüfen.",
    ),
    (
        "wants to change the registration, but what should change is unclear",
        "Möchte die Anmeldung ändern, aber es ist unklar, was sich ändern soll.",
    ),
    (
        "{}, but several conferences are named ({}); which one is meant?",
        "{0}, aber mehrere Veranstaltungen werden genannt ({1}) – welche ist gemeint?",
    ),
    (
        "{}, but no conference could be recognised (the address tag \"+{}\" names none)",
        "{0}, aber keine Veranstaltung ist zu erkennen (der Adresszusatz „+{1}“ passt zu keiner).",
    ),
    (
        "{}, but no conference could be recognised",
        "{0}, aber keine Veranstaltung ist zu erkennen.",
    ),
    (
        "would register only on a condition or is not decided yet: \"{}\"",
        "Möchte nur unter einer Bedingung kommen oder ist noch unentschlossen: „{0}“",
    ),
    (
        "a question that needs a personal answer: \"{}\"",
        "Eine Frage, die eine persönliche Antwort braucht: „{0}“",
    ),
    (
        "a request that needs a personal answer: \"{}\"",
        "Eine Bitte, die eine persönliche Antwort braucht: „{0}“",
    ),
    (
        "no registration, cancellation or change recognised",
        "Keine Anmeldung, Absage oder Änderung erkannt.",
    ),
    (
        "looks like a delivery failure notice, but the failed address could not be found",
        "Sieht aus wie eine Unzustellbar-Meldung, aber die betroffene Adresse ist nicht zu finden.",
    ),
    // review: registering it
    (
        "conference `{}` is not configured",
        "Die Veranstaltung „{0}“ ist nicht (mehr) eingerichtet.",
    ),
    (
        "a registration without any attendee",
        "Eine Anmeldung ohne Teilnehmende.",
    ),
    (
        "a registration for `{}` is not a mail address",
        "Eine Anmeldung mit „{0}“ – das ist keine gültige E-Mail-Adresse.",
    ),
    (
        "a registration for {}",
        "Eine Anmeldung für „{0}“ (keine gültige E-Mail-Adresse).",
    ),
    (
        "a party of {} for a room of {} places could never be seated; please answer by hand",
        "{0} Personen passen nie in einen Saal mit {1} Plätzen; bitte antworten Sie selbst.",
    ),
    (
        "{} wants to come with {} instead of {} people, but only {} place(s) are free; the registration keeps its {} confirmed place(s) — please decide about the {} more",
        "{0} möchte mit {1} statt {2} Personen kommen, aber nur {3} Platz/Plätze sind frei; die Anmeldung behält ihre {4} bestätigten Plätze – bitte entscheiden Sie über die {5} weiteren.",
    ),
    (
        "a cancellation from {}, who has no registration for {}",
        "Eine Absage von {0}, die/der nicht für {1} angemeldet ist.",
    ),
    (
        "a confirmation with the code {}, which matches no registration",
        "Eine Bestätigung mit dem Code {0}, zu dem es keine Anmeldung gibt.",
    ),
    (
        "a confirmation from {}, who has no registration to confirm",
        "Eine Bestätigung von {0}, die/der keine Anmeldung zu bestätigen hat.",
    ),
    (
        "{} confirmed a registration for {} that had lapsed unconfirmed; `rsvpd add {} {}` registers them",
        "{0} hat eine Anmeldung für {1} bestätigt, die schon unbestätigt abgelaufen war; mit „Person anmelden“ können Sie die Person wieder anmelden.",
    ),
    (
        "the mail is {} MB, more than [mailbox] max_message_size ({} MB); it was not read — see it in the review folder",
        "Die E-Mail ist {0} MB groß, mehr als erlaubt ({1} MB); sie wurde nicht gelesen – sie liegt im Prüf-Ordner des Postfachs.",
    ),
    (
        "rsvpd failed while reading this mail (internal error: {}); please handle it by hand",
        "rsvpd konnte diese E-Mail nicht verarbeiten (interner Fehler: {0}); bitte bearbeiten Sie sie von Hand.",
    ),
    // closed by an organizer (review::assign, review::dismiss)
    (
        "assigned to {} by {}",
        "Von {1} der Veranstaltung {0} zugeordnet.",
    ),
    ("dismissed by {}", "Von {0} abgelegt."),
    // recorded, ignored, duplicate
    (
        "only a thank-you; nothing to do",
        "Nur ein Dankeschön; nichts zu tun.",
    ),
    ("already cancelled", "war schon abgesagt"),
    (
        "no {} sent: the address bounced before",
        "keine {0} gesendet: an diese Adresse war schon eine E-Mail unzustellbar",
    ),
    (
        "no {} sent: {} answers went to this address in the last 24 hours ([defaults] answers_per_day)",
        "keine {0} gesendet: an diese Adresse gingen in den letzten 24 Stunden schon {1} Antworten",
    ),
    (
        "a copy of a message handled before (outcome: {})",
        "Eine Kopie einer schon bearbeiteten E-Mail (Ergebnis: {0}).",
    ),
    (
        "delivery report: the message was delivered",
        "Zustellbericht: die E-Mail ist angekommen.",
    ),
    (
        "read receipt (disposition notification)",
        "Lesebestätigung.",
    ),
    (
        "a calendar reply (accepted/declined), not written by a person",
        "Eine Kalender-Antwort (zugesagt/abgesagt), nicht von einer Person geschrieben.",
    ),
    (
        "a mailing-list digest",
        "Eine Sammel-E-Mail einer Mailingliste.",
    ),
    (
        "automatic message (Auto-Submitted: {})",
        "Automatische E-Mail (Auto-Submitted: {0}).",
    ),
    ("auto-reply ({} header)", "Automatische Antwort ({0})."),
    (
        "auto-reply (subject \"{}\")",
        "Automatische Antwort (Betreff „{0}“).",
    ),
    (
        "bulk or automatic mail (Precedence: {})",
        "Massen- oder automatische E-Mail (Precedence: {0}).",
    ),
    (
        "mailing list or newsletter ({} header)",
        "Mailingliste oder Newsletter ({0}).",
    ),
    (
        "sent from the registration mailbox itself (mail loop)",
        "Vom Anmelde-Postfach selbst gesendet (Schleife).",
    ),
    // notes of the explanation's steps
    ("asked as a question", "als Frage gestellt"),
    (
        "a workshop, not the whole event",
        "ein Workshop, nicht die ganze Veranstaltung",
    ),
    (
        "a companion, not the writer",
        "eine Begleitperson, nicht die schreibende Person",
    ),
    ("in the subject", "im Betreff"),
    ("<{}> is not a person", "<{0}> ist keine Person"),
    (
        "no register phrase, but people or workshop choices sent to the registration address",
        "keine Anmelde-Formulierung, aber Personen oder Workshops an die Anmeldeadresse geschickt",
    ),
    (
        "no conference named; the sender's only registration is for {}",
        "keine Veranstaltung genannt; die Person ist nur für {0} angemeldet",
    ),
    (
        "a reply from the registrant to our opt-in request (In-Reply-To), as good as the token",
        "eine Antwort der angemeldeten Person auf unsere Bitte um Bestätigung – so gut wie der Code",
    ),
    ("a delivery failure notice", "eine Unzustellbar-Meldung"),
    (
        "automatic mail, never answered",
        "automatische E-Mail, wird nie beantwortet",
    ),
    ("the subject names {}", "der Betreff nennt {0}"),
];

/// The rules of an explanation in words: (rule, German, English).
const RULES: &[(&str, &str, &str)] = &[
    ("register", "Anmeldung", "Registration"),
    ("cancel", "Absage", "Cancellation"),
    ("update", "Änderung", "Change"),
    ("substitute", "Ersatzperson", "Someone else comes"),
    ("thanks", "Dank", "Thanks"),
    ("confirm", "Bestätigung", "Confirmation"),
    ("hedge", "Unentschlossen", "Undecided"),
    ("conditional", "Bedingung", "Condition"),
    ("choices", "Auswahl", "Choices"),
    ("conference", "Veranstaltung", "Event"),
    ("filter", "Automatische E-Mail", "Automatic mail"),
    ("sender", "Absender", "Sender"),
    ("language", "Sprache", "Language"),
    ("decision", "Entscheidung", "Decision"),
    ("adds_people", "Weitere Personen", "More people"),
    ("companion", "Begleitung", "Companion"),
    ("request", "Bitte", "Request"),
    ("not_a_request", "Keine Anfrage", "No request"),
    ("machine_text", "Maschinentext", "Machine text"),
    ("spam", "Werbung", "Spam"),
    ("calendar_reply", "Kalender-Antwort", "Calendar reply"),
    (
        "asks_confirmation",
        "Bitte um Bestätigung",
        "Asks to confirm",
    ),
    (
        "registers_self",
        "Meldet sich selbst an",
        "Registers themselves",
    ),
];

/// Language names as `whatlang` gives them, in German ("auf Türkisch").
const LANGUAGES: &[(&str, &str)] = &[
    ("Turkish", "Türkisch"),
    ("Arabic", "Arabisch"),
    ("Persian", "Persisch"),
    ("Ukrainian", "Ukrainisch"),
    ("Russian", "Russisch"),
    ("Polish", "Polnisch"),
    ("Romanian", "Rumänisch"),
    ("Bulgarian", "Bulgarisch"),
    ("French", "Französisch"),
    ("Spanish", "Spanisch"),
    ("Italian", "Italienisch"),
    ("Portuguese", "Portugiesisch"),
    ("Dutch", "Niederländisch"),
    ("Greek", "Griechisch"),
    ("Serbian", "Serbisch"),
    ("Croatian", "Kroatisch"),
    ("Albanian", "Albanisch"),
    ("Kurdish", "Kurdisch"),
    ("Vietnamese", "Vietnamesisch"),
    ("Hindi", "Hindi"),
    ("Urdu", "Urdu"),
    ("Tamil", "Tamil"),
    ("Amharic", "Amharisch"),
    ("Tigrinya", "Tigrinya"),
    ("Somali", "Somali"),
    ("Swedish", "Schwedisch"),
    ("Danish", "Dänisch"),
    ("Hungarian", "Ungarisch"),
    ("Czech", "Tschechisch"),
    ("Chinese", "Chinesisch"),
];

/// The parts of `text` that stand where `pattern` has `{}`, if it matches.
fn captures<'t>(pattern: &str, text: &'t str) -> Option<Vec<&'t str>> {
    let pieces: Vec<&str> = pattern.split("{}").collect();
    let (first, rest) = pieces.split_first()?;
    let mut left = text.strip_prefix(first)?;
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty().then(Vec::new);
    };
    let mut found = Vec::with_capacity(rest.len());
    for piece in middle {
        let at = left.find(piece)?;
        found.push(&left[..at]);
        left = &left[at + piece.len()..];
    }
    found.push(left.strip_suffix(last)?);
    Some(found)
}

/// A varying part in German: a sentence of its own, a language name or an
/// outgoing mail's kind.
fn part(lang: Lang, s: &str) -> String {
    if let Some(de) = sentence(lang, s) {
        return de;
    }
    if let Some((_, de)) = LANGUAGES.iter().find(|(en, _)| *en == s) {
        return de.to_string();
    }
    match s {
        "registration" => "Anmeldung".into(),
        "cancellation" => "Absage".into(),
        _ => lang.mail_kind(s),
    }
}

/// One sentence of rsvpd's (a reason or a step's note) in the page's language.
fn sentence(lang: Lang, en: &str) -> Option<String> {
    SENTENCES.iter().find_map(|(pattern, de)| {
        let parts = captures(pattern, en)?;
        let mut out = de.to_string();
        for (i, p) in parts.iter().enumerate() {
            out = out.replace(&format!("{{{i}}}"), &part(lang, p));
        }
        Some(out)
    })
}

/// A stored reason as the page shows it: German unless the browser asks for
/// English (the stored text is English). Reasons joined with "; " (several
/// notes of one registration) are translated one by one; what no pattern
/// knows (a mail server's bounce text) stays as written.
pub fn reason(lang: Lang, en: &str) -> String {
    if lang.0 == Language::En || en.is_empty() {
        return en.to_string();
    }
    if let Some(de) = sentence(lang, en) {
        return de;
    }
    en.split("; ")
        .map(|p| sentence(lang, p).unwrap_or_else(|| p.to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The name of an explanation's rule ("cancel" → "Absage").
pub fn rule(lang: Lang, rule: &str) -> String {
    RULES
        .iter()
        .find(|(r, _, _)| *r == rule)
        .map(|(_, de, en)| match lang.0 {
            Language::De => de.to_string(),
            Language::En => en.to_string(),
        })
        .unwrap_or_else(|| rule.replace('_', " "))
}

/// A vocabulary phrase as a person reads it: its alternatives
/// ("(komme|kommen)") as "komme / kommen".
fn readable_phrase(p: &str) -> String {
    p.replace('|', " / ")
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | '?' | '\\' | '^' | '$'))
        .collect()
}

fn step(lang: Lang, s: &Step) -> Value {
    minijinja::context! {
        rule => rule(lang, &s.rule),
        phrase => s.phrase.as_deref().map(readable_phrase),
        text => s.text.clone(),
        note => s.note.as_deref().map(|n| reason(lang, n)),
    }
}

/// The steps of an explanation, for a page's list.
pub fn steps(lang: Lang, e: Option<&Explanation>) -> Vec<Value> {
    e.map(|e| e.steps.iter().map(|s| step(lang, s)).collect())
        .unwrap_or_default()
}

/// What became of a received mail, in words.
pub fn outcome(lang: Lang, outcome: &str) -> String {
    lang.words()
        .get(format!("outcome_{outcome}").as_str())
        .map(|w| w.to_string())
        .unwrap_or_else(|| outcome.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DE: Lang = Lang(Language::De);
    const EN: Lang = Lang(Language::En);

    #[test]
    fn patterns_take_their_parts_in_order() {
        assert_eq!(
            captures(
                "{}, but several conferences are named ({}); which one is meant?",
                "registration, but several conferences are named (miko-2027, lip-2); which one is meant?"
            ),
            Some(vec!["registration", "miko-2027, lip-2"])
        );
        assert_eq!(captures("empty message", "empty message"), Some(vec![]));
        assert_eq!(captures("empty message", "empty message!"), None);
        assert_eq!(
            captures("written in {}", "written in Turkish"),
            Some(vec!["Turkish"])
        );
    }

    #[test]
    fn reasons_read_german_on_a_german_page() {
        assert_eq!(
            reason(
                DE,
                "written in Turkish; rsvpd reads and answers German and English only, please answer by hand"
            ),
            "Auf Türkisch geschrieben; rsvpd liest und beantwortet nur Deutsch und Englisch. Bitte antworten Sie selbst."
        );
        assert_eq!(
            reason(DE, "cancellation, but no conference could be recognised"),
            "Absage, aber keine Veranstaltung ist zu erkennen."
        );
        assert_eq!(
            reason(
                DE,
                "a question that needs a personal answer: \"Darf ich meinen Hund mitbringen?\""
            ),
            "Eine Frage, die eine persönliche Antwort braucht: „Darf ich meinen Hund mitbringen?“"
        );
        // Notes joined by the registration step, one by one.
        assert_eq!(
            reason(
                DE,
                "already cancelled; no confirmation sent: the address bounced before"
            ),
            "war schon abgesagt; keine Anmeldebestätigung gesendet: an diese Adresse war schon eine E-Mail unzustellbar"
        );
        assert_eq!(
            reason(DE, "assigned to miko-2027 by orga (web)"),
            "Von orga (web) der Veranstaltung miko-2027 zugeordnet."
        );
        // A mail server's words stay as they are.
        assert_eq!(
            reason(DE, "5.1.1 mailbox does not exist"),
            "5.1.1 mailbox does not exist"
        );
        // English pages show the stored text.
        assert_eq!(reason(EN, "empty message"), "empty message");
    }

    #[test]
    fn every_reason_of_the_corpus_has_german_words() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let mut missing = Vec::new();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus") {
            let path = entry.expect("a corpus file").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.contains(".context.") || name == "context.json" {
                continue;
            }
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let kind = json["action"]["kind"].as_str().unwrap_or("");
            if !matches!(kind, "review" | "ignore") {
                continue;
            }
            let Some(r) = json["action"]["reason"].as_str() else {
                continue;
            };
            seen += 1;
            if sentence(DE, r).is_none() {
                missing.push(format!("{name}: {r}"));
            }
        }
        assert!(seen > 50, "only {seen} reasons found in {}", dir.display());
        assert!(missing.is_empty(), "no German for:\n{}", missing.join("\n"));
    }

    #[test]
    fn steps_name_their_rules_in_words() {
        let e = Explanation {
            steps: vec![
                Step {
                    rule: "cancel".into(),
                    phrase: Some("sage … ab".into()),
                    language: Some("de".into()),
                    text: Some("ich sage ab".into()),
                    note: Some("asked as a question".into()),
                },
                Step::logic("language", "written in Arabic"),
            ],
        };
        let de = steps(DE, Some(&e));
        assert_eq!(de[0].get_attr("rule").unwrap().to_string(), "Absage");
        assert_eq!(readable_phrase("(komme|kommen)"), "komme / kommen");
        assert_eq!(
            de[0].get_attr("note").unwrap().to_string(),
            "als Frage gestellt"
        );
        assert_eq!(
            de[1].get_attr("note").unwrap().to_string(),
            "auf Arabisch geschrieben"
        );
        let en = steps(EN, Some(&e));
        assert_eq!(en[0].get_attr("rule").unwrap().to_string(), "Cancellation");
        assert_eq!(
            en[1].get_attr("note").unwrap().to_string(),
            "written in Arabic"
        );
    }
}
