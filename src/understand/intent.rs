//! Decides what a person wants from the words they wrote themselves (quotes
//! and signatures already removed): register, cancel, change a registration,
//! confirm, or something a human has to answer. Works sentence by sentence, so
//! that a question about registering ("Kann ich mich noch anmelden?") is not
//! taken as a registration, while "Ich melde mich an. Gibt es Parkplätze?" is.

use super::Step;
use super::text::{self, fold};
use super::vocab::Vocabulary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Register,
    Cancel,
    /// Cancels and names someone to come instead: a human decides.
    Substitution,
    /// Cancels for a companion only, not for the writer.
    PartialCancel,
    /// Withdraws from a workshop but still comes to the conference.
    WorkshopCancel,
    Update,
    Confirm,
    /// Only questions (about registering or anything else).
    Question,
    /// Nothing recognisable.
    Unclear,
}

#[derive(Debug, Clone)]
pub struct Reading {
    pub intent: Intent,
    /// First question sentence, for the review reason.
    pub question: Option<String>,
    /// First polite request ("Could you send me the programme?") that is
    /// not about registering, for the review reason.
    pub request: Option<String>,
    /// A registering sentence that depends on a condition or is undecided
    /// ("Falls ja, melde ich mich an", "vielleicht komme ich").
    pub conditional: Option<String>,
    /// Mentions an existing registration ("meine Anmeldung", "already registered").
    pub refers_to_registration: bool,
    /// Only thanks / acknowledgement.
    pub thanks_only: bool,
    /// The phrases that fired, with the sentence each fired on.
    pub fired: Vec<Step>,
}

/// Folds a sentence and blanks out words about registering that are no
/// request ("Anmeldebestätigung", "findet … statt").
fn prepare(v: &Vocabulary, sentence: &str) -> String {
    let mut f = fold(sentence);
    let spans: Vec<(usize, usize)> = v.section("not_a_request").find_iter(&f).collect();
    for (start, end) in spans.into_iter().rev() {
        f.replace_range(start..end, " ");
    }
    f
}

/// The clauses of a folded sentence: split at `,` `;` and contrast words.
fn clauses<'a>(v: &Vocabulary, f: &'a str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for part in f.split([',', ';']) {
        let mut last = 0;
        for (s, e) in v.section("contrast").find_iter(part) {
            out.push(&part[last..s]);
            last = e;
        }
        out.push(&part[last..]);
    }
    out
}

/// A step of the explanation: `section` fired on `sentence`.
fn step(v: &Vocabulary, section: &str, f: &str, sentence: &str) -> Step {
    let hit = v.hit(section, f);
    Step {
        rule: section.to_string(),
        phrase: hit.as_ref().map(|h| h.phrase.to_string()),
        language: hit.as_ref().map(|h| h.language.to_string()),
        text: Some(super::filters::short(&text::one_line(sentence), 160)),
        note: None,
    }
}

/// Does the writer add people to what they registered before ("bringe noch
/// meine Nachbarin mit", "möchte noch jemanden nachmelden", "another guest")?
pub fn adds_people(v: &Vocabulary, own: &str) -> bool {
    v.is_match("adds_people", &prepare(v, own))
}

/// Does a subject ask the reader to confirm ("Bitte bestätigen Sie Ihre
/// Anmeldung", "Please confirm your registration")? Our own
/// "Anmeldebestätigung" (a confirmation sent) does not.
pub fn asks_for_confirmation(v: &Vocabulary, subject: &str) -> bool {
    v.is_match("asks_confirmation", &fold(subject))
}

/// A question that asks us to do something ("Could you please change …?")
/// is a request, not a question needing a personal answer.
pub fn is_request(v: &Vocabulary, sentence: &str) -> bool {
    v.is_match("request", &prepare(v, sentence))
}

fn is_question(sentence: &str) -> bool {
    let t = sentence.trim_end();
    t.ends_with('?') || t.ends_with("?)") || t.contains("? ")
}

/// Reads the writer's own text (and a subject that is not a reply's).
/// `confirm_requested`: the mail answers our request to confirm (double opt-in).
pub fn read(v: &Vocabulary, own: &str, subject: Option<&str>, confirm_requested: bool) -> Reading {
    let mut sentences = text::sentences(own);
    let mut from_subject = 0;
    if let Some(s) = subject.filter(|s| !s.trim().is_empty()) {
        sentences.insert(0, s.to_string());
        from_subject = 1;
    }
    let mut cancel = false;
    let mut register = false;
    let mut update = false;
    let mut confirm = false;
    let mut cue_in_question = false;
    let mut question: Option<String> = None;
    let mut request: Option<String> = None;
    let mut substitute = false;
    let mut companion_cancel_only = true;
    let mut prior = false;
    let mut substantive = 0usize;
    let mut conditional = false;
    let mut whole_event_cancel = false;
    let mut register_subject = false;
    let mut thanks = 0usize;
    let mut conditional_sentence: Option<String> = None;
    let mut fired: Vec<Step> = Vec::new();
    let is = |section: &str, f: &str| v.is_match(section, f);

    for (i, s) in sentences.iter().enumerate() {
        let f = prepare(v, s);
        let in_body = i >= from_subject;
        let requests = is("request", &f);
        // "Könnten Sie mich bitte … anmelden?" asks us to act: a request.
        let q = is_question(s) && in_body && !requests;
        if in_body && requests && request.is_none() {
            request = Some(text::one_line(s));
        }
        if q && question.is_none() {
            question = Some(text::one_line(s));
        }
        if is("prior", &f) {
            prior = true;
        }
        let words = f.split_whitespace().count();
        if in_body && words > 0 {
            if is("thanks", &f) && words <= 12 && !is("register", &f) && !is("cancel", &f) {
                thanks += 1;
                fired.push(step(v, "thanks", &f, s));
            } else if !is_greeting_or_closing(v, &f) {
                substantive += 1;
            }
        }
        if is("cancel", &f) {
            if q {
                cue_in_question = true;
                fired.push(step(v, "cancel", &f, s).noted("asked as a question"));
            } else {
                cancel = true;
                let mut st = step(v, "cancel", &f, s);
                // "Absage Workshop", "nicht mehr am Workshop 2 teilnehmen,
                // komme aber trotzdem": the workshop, not the conference.
                let still_attends = clauses(v, &f)
                    .iter()
                    .any(|c| is("register", c) && !is("cancel", c));
                if !(is("workshop_word", &f) && (!is("event_word", &f) || still_attends)) {
                    whole_event_cancel = true;
                } else {
                    st = st.noted("a workshop, not the whole event");
                }
                if is("substitute", &f) {
                    substitute = true;
                    fired.push(step(v, "substitute", &f, s));
                }
                // Who cannot come: judged in the clause that says so.
                let mut cl: Vec<&str> = clauses(v, &f)
                    .into_iter()
                    .filter(|c| is("cancel", c))
                    .collect();
                if cl.is_empty() {
                    // The cancel phrase spans a comma: judge the sentence.
                    cl.push(&f);
                }
                let mut companion_only_here = true;
                for clause in cl {
                    if !is("companion_subject", clause) || is("self", clause) {
                        companion_only_here = false;
                    }
                }
                if companion_only_here {
                    st = st.noted("a companion, not the writer");
                } else {
                    companion_cancel_only = false;
                }
                fired.push(st);
            }
            continue;
        }
        if is("substitute", &f) && in_body {
            substitute = true;
            fired.push(step(v, "substitute", &f, s));
        }
        if is("update", &f) {
            if q {
                cue_in_question = true;
            } else {
                update = true;
                fired.push(step(v, "update", &f, s));
            }
        }
        if is("register", &f) {
            if q {
                cue_in_question = true;
                fired.push(step(v, "register", &f, s).noted("asked as a question"));
            } else if is("conditional", &f) || is("hedge", &f) {
                // The writer's last word on coming decides: "ich komme mit
                // dem Auto … If yes, I'll come" is conditional.
                register = false;
                // "Falls ja, melde ich mich an", "vielleicht komme ich":
                // depends on an answer, or the writer has not decided.
                conditional = true;
                let which = if is("hedge", &f) {
                    "hedge"
                } else {
                    "conditional"
                };
                fired.push(step(v, which, &f, s));
                if conditional_sentence.is_none() {
                    conditional_sentence = Some(text::one_line(s));
                }
            } else if !in_body {
                register_subject = true;
                fired.push(step(v, "register", &f, s).noted("in the subject"));
            } else {
                register = true;
                fired.push(step(v, "register", &f, s));
            }
        }
        if confirm_requested && !q && in_body && is("confirm", &f) {
            confirm = true;
            fired.push(step(v, "confirm", &f, s));
        }
    }

    let intent = if cancel {
        if substitute {
            Intent::Substitution
        } else if !whole_event_cancel {
            Intent::WorkshopCancel
        } else if companion_cancel_only {
            Intent::PartialCancel
        } else {
            Intent::Cancel
        }
    } else if confirm && !update {
        Intent::Confirm
    } else if update {
        Intent::Update
    } else if register || (register_subject && !conditional) {
        Intent::Register
    } else if cue_in_question || question.is_some() || conditional {
        Intent::Question
    } else {
        Intent::Unclear
    };
    Reading {
        intent,
        question,
        conditional: conditional_sentence,
        request,
        refers_to_registration: prior,
        thanks_only: thanks > 0 && substantive == 0,
        fired,
    }
}

/// Is this sentence a (declarative) registration?
pub fn is_register_sentence(v: &Vocabulary, sentence: &str) -> bool {
    let f = prepare(v, sentence);
    v.is_match("register", &f)
        && !v.is_match("cancel", &f)
        && (!is_question(sentence) || v.is_match("request", &f))
}

/// Is this sentence a (declarative) cancellation?
pub fn is_cancel_sentence(v: &Vocabulary, sentence: &str) -> bool {
    v.is_match("cancel", &prepare(v, sentence)) && !is_question(sentence)
}

/// Does the writer register themself (not someone else they write about)?
pub fn registers_self(v: &Vocabulary, own: &str) -> bool {
    text::sentences(own).iter().any(|s| {
        let f = prepare(v, s);
        !is_question(s)
            && v.is_match("register", &f)
            && !v.is_match("cancel", &f)
            && v.is_match("registers_self", &f)
    })
}

/// Opens or closes the mail ("Hallo,", "Viele Grüße"), or is too short to say anything.
fn is_greeting_or_closing(v: &Vocabulary, f: &str) -> bool {
    let at_start = |section: &str| {
        v.section(section)
            .find(f)
            .is_some_and(|(start, _)| !f[..start].chars().any(char::is_alphanumeric))
    };
    at_start("greeting")
        || at_start("closing")
        || f.split_whitespace().count() <= 3 && !f.contains(char::is_numeric)
}

#[cfg(test)]
mod tests {
    use super::super::vocab::BUILTIN_VOCABULARY;
    use super::*;

    fn intent(s: &str) -> Intent {
        read(&BUILTIN_VOCABULARY, s, None, false).intent
    }

    #[test]
    fn cancel_phrases() {
        for s in [
            "Leider muss ich absagen.",
            "Bitte streichen Sie mich von der Liste.",
            "abmelden",
            "Leider kann ich doch nicht kommen, bitte streichen Sie mich.",
            "Leider klappt es bei mir nicht, ich bin krank.",
            "I can't make it, sorry.",
            "Please cancel my registration.",
            "Ich melde mich hiermit wieder ab.",
            "Ich bin leider verhindert.",
            "I regret to say that I won't be attending.",
            "Ich nehme leider doch nicht teil.",
        ] {
            assert_eq!(intent(s), Intent::Cancel, "{s}");
        }
    }

    #[test]
    fn register_phrases() {
        for s in [
            "hiermit melde ich mich verbindlich zur Migrationskonferenz an.",
            "I would like to register for the fishbowl discussion.",
            "Ich komme mit zwei Kolleginnen.",
            "Ich nehme gerne an der Konferenz teil.",
            "Gibt es Parkplätze? Ich melde mich hiermit an.",
        ] {
            assert_eq!(intent(s), Intent::Register, "{s}");
        }
    }

    #[test]
    fn questions_are_not_registrations() {
        assert_eq!(intent("Kann ich mich noch anmelden?"), Intent::Question);
        assert_eq!(intent("Gibt es Parkplätze am Rathaus?"), Intent::Question);
        assert_eq!(
            intent("Ist eine Teilnahme nur am Vormittag möglich? Falls ja, melde ich mich an."),
            Intent::Question
        );
        assert_eq!(intent("Wie kann ich mich abmelden?"), Intent::Question);
    }

    #[test]
    fn confirmation_words_are_noise() {
        assert_eq!(intent("Danke für die Anmeldebestätigung!"), Intent::Unclear);
        assert!(read(&BUILTIN_VOCABULARY, "Vielen Dank!", None, false).thanks_only);
        assert_eq!(
            intent("Die Konferenz findet am 15.10. statt, oder?"),
            Intent::Question
        );
    }

    #[test]
    fn substitution_and_partial() {
        assert_eq!(
            intent("Ich muss absagen, meine Kollegin kommt statt mir."),
            Intent::Substitution
        );
        assert_eq!(
            intent("Meine Kollegin kann leider nicht kommen."),
            Intent::PartialCancel
        );
        assert_eq!(
            intent("meine Kollegin kann leider nicht mitkommen, ich komme aber trotzdem."),
            Intent::PartialCancel
        );
        assert_eq!(
            intent("Leider kann ich nicht kommen, auch meine Kollegin nicht."),
            Intent::Cancel
        );
    }

    #[test]
    fn update_words() {
        assert_eq!(
            intent("Ich möchte statt Workshop 2 lieber Workshop 4."),
            Intent::Update
        );
        assert_eq!(intent("Please change my workshop to 3."), Intent::Update);
        assert_eq!(
            intent("Could you please change my workshop to 3?"),
            Intent::Update
        );
        assert_eq!(intent("Können Sie mich bitte anmelden?"), Intent::Register);
    }
}
