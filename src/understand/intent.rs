//! Decides what a person wants from the words they wrote themselves (quotes
//! and signatures already removed): register, cancel, change a registration,
//! confirm, or something a human has to answer. Works sentence by sentence, so
//! that a question about registering ("Kann ich mich noch anmelden?") is not
//! taken as a registration, while "Ich melde mich an. Gibt es Parkplätze?" is.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{self, fold};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Register,
    Cancel,
    /// Cancels and names someone to come instead: a human decides.
    Substitution,
    /// Cancels for a companion only, not for the writer.
    PartialCancel,
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
    /// Mentions an existing registration ("meine Anmeldung", "already registered").
    pub refers_to_registration: bool,
    /// Only thanks / acknowledgement.
    pub thanks_only: bool,
}

static NOISE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:anmelde|registrierungs|teilnahme|einladungs)(?:bestaetigung|schluss|frist|formular|link|seite|verfahren|bescheinigung|gebuehr|daten|liste|mail|e-mail|nummer|bedingungen)\w*|\bregistration (?:confirmation|deadline|form|link|fee|page|number)|\bconfirmation (?:of|for) (?:my |your |the )?registration|\bbestaetigung (?:der|ihrer|meiner|fuer die) (?:anmeldung|registrierung)|\bfindet\b[^.!?]{0,60}\bstatt\b|\bfand\b[^.!?]{0,60}\bstatt\b|\bstattfinde\w*|\bstattgefunden",
    )
    .expect("regex")
});

static CANCEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\babsag|\babzusagen|\bsage\b[^.!?\n]{0,60}\bab\b|\bsagen\b[^.!?\n]{0,60}\bab\b|\babmeld|\babzumelden|\bmelde\b[^.!?\n]{0,40}\b(?:mich|uns)\b[^.!?\n]{0,40}\bab\b|\bmelden sie mich\b[^.!?\n]{0,40}\bab\b|\bstreichen sie (?:mich|uns|meine|die)|\b(?:mich|uns|meine anmeldung|meinen namen)\b[^.!?\n]{0,40}\bstreichen\b|\bstreichen\b[^.!?\n]{0,20}\b(?:mich|uns)\b|\bstorn|\bnicht (?:mehr )?(?:teilnehmen|kommen|dabei sein|erscheinen|wahrnehmen|da sein|vorbeikommen)|\bkann\b[^.!?\n]{0,60}\bnicht\b[^.!?\n]{0,40}\b(?:kommen|teilnehmen|dabei sein|erscheinen|wahrnehmen)\b|\bkoennen\b[^.!?\n]{0,60}\bnicht\b[^.!?\n]{0,40}\b(?:kommen|teilnehmen|dabei sein|erscheinen)\b|\bverhindert\b|\bzurueckziehen|\bziehe\b[^.!?\n]{0,40}\bzurueck\b|\baustragen\b|\btragen sie mich\b[^.!?\n]{0,30}\baus\b|\bvon der (?:teilnehmer)?liste\b|\bentfernen sie mich|\bcancel|\bcan'?t make it|\bcannot make it|\bcan not make it|\bwon'?t (?:be able to )?(?:make it|attend|come|join|participate)|\b(?:unable|not be able|not able) to (?:attend|come|make it|join|participate|be there)|\bcan(?:no|')?t (?:attend|come|join|participate|be there)|\bcan not (?:attend|come|join|participate|be there)|\bwithdraw|\bunregister|\bderegister|\bremove (?:me|us|my (?:name|registration))|\bno longer (?:attend|come|participate|be able|join)|\bwill not (?:attend|come|be attending|participate|join)|\bnot (?:be )?(?:attending|coming)\b|\bdrop out|\bleider nicht\b[^.!?\n]{0,30}\b(?:kommen|teilnehmen|dabei)\b|\bkomme\b[^.!?\n]{0,30}\bnicht\b|\bkommen\b[^.!?\n]{0,10}\bnicht\b(?:[^.!?\n]{0,10})$|\bkatilamayacag|\bgelemeyece",
    )
    .expect("regex")
});

static REGISTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\banmeld|\banzumelden|\bmelde\b[^.!?\n]{0,80}\ban\b|\bmelden\b[^.!?\n]{0,80}\ban\b|\bteilnehm|\bteilzunehmen|\bteilnahme|\bdabei sein\b|\bdabeisein|\bbin dabei|\bsind dabei|\bkomme\b|\bkommen\b|\bvorbeikommen|\bvorbeischauen|\bregistr|\bregister|\bsign (?:me |us )?up|\battend|\bparticipat|\bjoin\b|\breserv|\bplatz\b|\bplaetze\b|\bbesuchen\b|\bmitmachen|\bcount (?:me|us) in|\bi'?ll be there|\bwe'?ll be there|\bwould like to come|\bkayit|\bkatilmak|\bzapis|\bzglasz",
    )
    .expect("regex")
});

static UPDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\baender|\bumbuch|\bumzubuchen|\bwechseln\b|\bwechsel\b|\bumsteigen|\btauschen\b|\bstatt\b|\banstatt|\bstattdessen|\bdoch lieber|\blieber (?:in|an|den|die|das|zum|zur|zu|workshop|ws|dialogrunde)\b|\bkorrigier|\bkorrektur|\bnachmelden|\bnachtraeglich|\bzusaetzlich\b[^.!?\n]{0,40}\b(?:person|kolleg|begleit|anmelden)|\bnoch\b[^.!?\n]{0,20}\b(?:eine|einen|zwei|drei|\d) (?:weitere|kolleg|person|begleit)|\bweitere person|\bdoch\b[^.!?\n]{0,30}\b(?:zu zweit|zu dritt|mit|allein|alleine)\b|\bchange\b|\bswitch|\binstead\b|\bupdate\b|\bamend|\bmodify|\bcorrect(?:ion)?\b|\badd\b[^.!?\n]{0,30}\b(?:colleague|person|guest|friend|companion)|\bnot \w+ but\b|\bnur noch\b|\bnur (?:ich|eine person|zu zweit|zu dritt)\b|\bonly (?:me|one|two)\b",
    )
    .expect("regex")
});

static PRIOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:meine|meiner|unsere|unserer|die) (?:anmeldung|registrierung)|\bangemeldet\b|\bmy registration|\bour registration|\balready registered|\bregistered\b|\bmeine teilnahme|\bmy booking|\bmeine buchung|\bbooked",
    )
    .expect("regex")
});

static SUBSTITUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\bstatt (?:mir|meiner)\b|\ban meiner stelle|\bfuer mich\b[^.!?\n]{0,40}\b(?:kommt|kommen|teilnehmen|nimmt)|\bvertret|\bvertritt|\bersatz|\bin my place|\binstead of me|\bon my behalf|\breplace me|\bnimmt\b[^.!?\n]{0,40}\bteil\b|\bkommt\b[^.!?\n]{0,40}\bstattdessen",
    )
    .expect("regex")
});

static COMPANION_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:meine|mein|unsere|unser|my|our) (?:kollegin|kollege|kollegen|begleitung|begleitperson|frau|mann|partner|partnerin|tochter|sohn|colleague|wife|husband|friend|freundin|freund)\b|\b(?:frau|herr) \w+ (?:kann|wird|muss)",
    )
    .expect("regex")
});

static SELF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:ich|wir|mich|uns|i|we|me|us)\b").expect("regex"));

static THANKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:danke|dank|thanks|thank you|merci|tesekkur|dziekuje|vielen dank|herzlichen dank|super|prima|perfekt|great|wunderbar|alles klar|ok|okay)\b")
        .expect("regex")
});

static CONFIRM_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bbestaetig|\bconfirm|\bja\b|\byes\b|\bbestatig").expect("regex")
});

fn prepare(sentence: &str) -> String {
    NOISE_WORDS.replace_all(&fold(sentence), " ").into_owned()
}

fn is_question(sentence: &str) -> bool {
    let t = sentence.trim_end();
    t.ends_with('?') || t.ends_with("?)") || t.contains("? ")
}

/// Reads the writer's own text (and a subject that is not a reply's).
/// `in_thread`: the mail answers something rsvpd sent (a confirmation request).
pub fn read(own: &str, subject: Option<&str>, in_thread: bool) -> Reading {
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
    let mut substitute = false;
    let mut companion_cancel_only = true;
    let mut prior = false;
    let mut substantive = 0usize;
    let mut thanks = 0usize;

    for (i, s) in sentences.iter().enumerate() {
        let f = prepare(s);
        let q = is_question(s) && i >= from_subject;
        if q && question.is_none() {
            question = Some(text::one_line(s));
        }
        if PRIOR.is_match(&f) {
            prior = true;
        }
        let words = f.split_whitespace().count();
        if i >= from_subject && words > 0 {
            if THANKS.is_match(&f) && words <= 12 && !REGISTER.is_match(&f) && !CANCEL.is_match(&f)
            {
                thanks += 1;
            } else if !is_greeting_or_closing(&f) {
                substantive += 1;
            }
        }
        if CANCEL.is_match(&f) {
            if q {
                cue_in_question = true;
            } else {
                cancel = true;
                if SUBSTITUTE.is_match(&f) {
                    substitute = true;
                }
                if !COMPANION_SUBJECT.is_match(&f)
                    || SELF.is_match(&f.replace("mein", "").replace("my ", ""))
                {
                    companion_cancel_only = false;
                }
            }
            continue;
        }
        if SUBSTITUTE.is_match(&f) && i >= from_subject {
            substitute = true;
        }
        if UPDATE.is_match(&f) {
            if q {
                cue_in_question = true;
            } else {
                update = true;
            }
        }
        if REGISTER.is_match(&f) {
            if q {
                cue_in_question = true;
            } else {
                register = true;
            }
        }
        if in_thread && !q && CONFIRM_WORDS.is_match(&f) && i >= from_subject {
            confirm = true;
        }
    }

    let intent = if cancel {
        if substitute {
            Intent::Substitution
        } else if companion_cancel_only {
            Intent::PartialCancel
        } else {
            Intent::Cancel
        }
    } else if confirm && !update {
        Intent::Confirm
    } else if update {
        Intent::Update
    } else if register {
        Intent::Register
    } else if cue_in_question || question.is_some() {
        Intent::Question
    } else {
        Intent::Unclear
    };
    Reading {
        intent,
        question,
        refers_to_registration: prior,
        thanks_only: thanks > 0 && substantive == 0,
    }
}

static REGISTERS_SELF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:melde|melden)\s+(?:ich\s+|wir\s+)?(?:mich|uns)\b|\b(?:mich|uns)\b[^.!?\n]{0,50}\b(?:anmelden|anzumelden|registrieren)|\bich\b[^.!?\n]{0,40}\b(?:komme|teilnehmen|dabei|teil)\b|\bwir\b[^.!?\n]{0,40}\b(?:kommen|teilnehmen|dabei|teil)\b|\b(?:i|we)\b[^.!?\n]{0,40}\b(?:register|attend|join|come|participate|be there)|\b(?:me|myself|us)\b[^.!?\n]{0,10}$|\bsign (?:me|us) up|\bcount (?:me|us) in|\bregister (?:me|us|myself)",
    )
    .expect("regex")
});

/// Does the writer register themself (not someone else they write about)?
pub fn registers_self(own: &str) -> bool {
    text::sentences(own).iter().any(|s| {
        let f = prepare(s);
        !is_question(s)
            && REGISTER.is_match(&f)
            && !CANCEL.is_match(&f)
            && REGISTERS_SELF.is_match(&f)
    })
}

fn is_greeting_or_closing(f: &str) -> bool {
    static G: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^\W*(?:hallo|hello|hi|hey|liebe|lieber|dear|sehr geehrte|guten (?:tag|morgen|abend)|moin|servus|gruess gott|mit freundlichen|viele gruesse|beste gruesse|liebe gruesse|herzliche gruesse|freundliche gruesse|gruss|lg|vg|mfg|best|kind regards|regards|cheers|sincerely|merhaba|salam|dzien dobry)\b",
        )
        .expect("regex")
    });
    G.is_match(f) || f.split_whitespace().count() <= 3 && !f.contains(char::is_numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(s: &str) -> Intent {
        read(s, None, false).intent
    }

    #[test]
    fn cancel_phrases() {
        for s in [
            "Leider muss ich absagen.",
            "Bitte streichen Sie mich von der Liste.",
            "abmelden",
            "Leider kann ich doch nicht kommen, bitte streichen Sie mich.",
            "I can't make it, sorry.",
            "Please cancel my registration.",
            "Ich melde mich hiermit wieder ab.",
            "Ich bin leider verhindert.",
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
            "Gibt es Parkplätze? Ich melde mich hiermit an.",
        ] {
            assert_eq!(intent(s), Intent::Register, "{s}");
        }
    }

    #[test]
    fn questions_are_not_registrations() {
        assert_eq!(intent("Kann ich mich noch anmelden?"), Intent::Question);
        assert_eq!(intent("Gibt es Parkplätze am Rathaus?"), Intent::Question);
        assert_eq!(intent("Wie kann ich mich abmelden?"), Intent::Question);
    }

    #[test]
    fn confirmation_words_are_noise() {
        assert_eq!(intent("Danke für die Anmeldebestätigung!"), Intent::Unclear);
        assert!(read("Vielen Dank!", None, false).thanks_only);
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
    }

    #[test]
    fn update_words() {
        assert_eq!(
            intent("Ich möchte statt Workshop 2 lieber Workshop 4."),
            Intent::Update
        );
        assert_eq!(intent("Please change my workshop to 3."), Intent::Update);
    }
}
