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
        r"\babsag|\babzusagen|\bsage\b[^.!?\n]{0,100}\bab\b|\bsagen\b[^.!?\n]{0,100}\bab\b|\babmeld|\babzumelden|\bmelde\b[^.!?\n]{0,40}\b(?:mich|uns)\b[^.!?\n]{0,80}\bab\b|\bmelden sie (?:mich|uns)\b[^.!?\n]{0,80}\bab\b|\bstreichen sie (?:mich|uns|meine|die)|\b(?:mich|uns|meine anmeldung|meinen namen)\b[^.!?\n]{0,40}\bstreichen\b|\bstreichen\b[^.!?\n]{0,20}\b(?:mich|uns)\b|\bstorn|\bnicht (?:mehr )?(?:teilnehmen|kommen|mitkommen|dabei sein|erscheinen|wahrnehmen|da sein|vorbeikommen)|\bkann\b[^.!?\n]{0,60}\bnicht\b[^.!?\n]{0,40}\b(?:kommen|mitkommen|teilnehmen|dabei sein|erscheinen|wahrnehmen)\b|\bkoennen\b[^.!?\n]{0,60}\bnicht\b[^.!?\n]{0,40}\b(?:kommen|teilnehmen|dabei sein|erscheinen)\b|\bverhindert\b|\bzurueckziehen|\bziehe\b[^.!?\n]{0,80}\bzurueck\b|\brueckzug\b|\bzurueckgezogen|\baustragen\b|\btragen sie (?:mich|uns)\b[^.!?\n]{0,60}\baus\b|\btrage\b[^.!?\n]{0,20}\b(?:mich|uns)\b[^.!?\n]{0,60}\baus\b|\bvon der (?:teilnehmer)?liste\b|\bentfernen sie mich|\bcancel|\bcan'?t make it|\bcannot make it|\bcan not make it|\bwon'?t (?:be able to )?(?:make it|attend|come|join|participate)|\b(?:unable|not be able|not able) to (?:attend|come|make it|join|participate|be there)|\bcan(?:no|')?t (?:attend|come|join|participate|be there)|\bcan not (?:attend|come|join|participate|be there)|\bwithdraw|\bunregister|\bderegister|\bremove (?:me|us|my (?:name|registration))|\bno longer (?:attend|come|participate|be able|join)|\bwill not (?:attend|come|be attending|participate|join)|\bnot (?:be )?(?:attending|coming)\b|\bdrop out|\bleider nicht\b[^.!?\n]{0,30}\b(?:kommen|teilnehmen|dabei)\b|\bkomme\b[^.!?\n]{0,30}\bnicht\b|\bkommen\b[^.!?\n]{0,10}\bnicht\b(?:[^.!?\n]{0,10})$|\bwon'?t be (?:attending|coming|joining|there)|\bwill not be (?:attending|coming|joining|there)|\b(?:must|have to|need to) decline|\bdecline\b|\bnehme\b[^.!?\n]{0,30}\bnicht\b[^.!?\n]{0,30}\bteil\b|\bnehmen\b[^.!?\n]{0,30}\bnicht\b[^.!?\n]{0,30}\bteil\b|\bkatilamayacag|\bgelemeyece|\bklappt\b[^.!?\n]{0,40}\bnicht\b|\bkommt\b[^.!?\n]{0,20}\bnicht\b|\bnicht\b[^.!?\n]{0,20}\bklappen\b|\bschaffe\b[^.!?\n]{0,40}\bnicht\b|\bschaffen\b[^.!?\n]{0,40}\bnicht\b|\bwird\b[^.!?\n]{0,20}\bnichts\b",
    )
    .expect("regex")
});

static REGISTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\banmeld|\banzumelden|\bmelde\b(?:[^.!?\n]|\.\S){0,120}\ban\b|\bmelden\b(?:[^.!?\n]|\.\S){0,120}\ban\b|\bteilnehm|\bnehme\b(?:[^.!?\n]|\.\S){0,120}\bteil\b|\bnehmen\b(?:[^.!?\n]|\.\S){0,120}\bteil\b|\bteilzunehmen|\bteilnahme|\bdabei sein\b|\bdabeisein|\bbin dabei|\bsind dabei|\bkomme\b|\bkommen\b|\bvorbeikommen|\bvorbeischauen|\bregistr|\bregister|\bsign (?:me |us )?up|\battend|\bparticip|\binscri|\bjoin\b|\breserv|\bplatz\b|\bplaetze\b|\bbesuchen\b|\bmitmachen|\bcount (?:me|us) in|\bput (?:me|us|my name|our names) (?:down|on the list)|\badd (?:me|us) to the (?:list|guest ?list)|\bi'?ll be there|\b(?:want|wish|plan|hope|going|intend) to (?:come|attend|join|participate|be there|register)|\b(?:i|we)(?:'m| am|'re| are| will be) coming\b|\b(?:i|we)(?:'ll| will) (?:come|attend|join)\b|\bcome to the\b|\bwe'?ll be there|\bwould like to come|\bkayit|\bkatilmak|\bzapis|\bzglasz",
    )
    .expect("regex")
});

static UPDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\baender|\bumbuch|\bumzubuchen|\bwechseln\b|\bwechsel\b|\bumsteigen|\btauschen\b|\bstatt\b|\banstatt|\bstattdessen|\bdoch lieber|\blieber (?:in|an|den|die|das|zum|zur|zu|workshop|ws|dialogrunde)\b|\bkorrigier|\bkorrektur|\bnachmelden|\bnachtraeglich|\bzusaetzlich\b[^.!?\n]{0,40}\b(?:person|kolleg|begleit|anmelden)|\bnoch\b[^.!?\n]{0,20}\b(?:eine|einen|zwei|drei|\d) (?:weitere|kolleg|person|begleit)|\bweitere person|\bdoch\b[^.!?\n]{0,30}\b(?:zu zweit|zu dritt|mit|allein|alleine)\b|\bchange\b|\bswitch|\binstead\b|\bupdate\b|\bamend|\bmodify|\bcorrect(?:ion)?\b|\badd\b[^.!?\n]{0,30}\b(?:colleague|person|guest|friend|companion)|\bnot \w+ but\b|\bnicht\b[^.!?\n]{0,50}\bsondern\b|\bvertan\b|\bverschrieben\b|\bfalsch angegeben|\bversehentlich|\bnur noch\b|\bnur (?:ich|eine person|zu zweit|zu dritt)\b|\bonly (?:me|one|two)\b",
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
        r"\bstatt (?:mir|meiner)\b|\ban meiner stelle|\bfuer mich\b[^.!?\n]{0,40}\b(?:kommt|kommen|teilnehmen|nimmt)|\bvertret|\bvertritt|\bersatz|\bin my place|\btake (?:my|his|her) place|\bin my stead|\bmeinen platz\b|\binstead of me|\bon my behalf|\breplace me|\bnimmt\b[^.!?\n]{0,40}\bteil\b|\bkommt\b[^.!?\n]{0,40}\bstattdessen|\bdafuer kommt|\bkommt\b[^.!?\n]{0,30}\bdafuer\b|\bwill come instead",
    )
    .expect("regex")
});

static COMPANION_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:meine|mein|unsere|unser|my|our) (?:kollegin|kollege|kollegen|begleitung|begleitperson|frau|mann|partner|partnerin|tochter|sohn|colleague|wife|husband|friend|freundin|freund)\b|\b(?:frau|herr|herrn) \w+ (?:kann|wird|muss|kommt)",
    )
    .expect("regex")
});

static WORKSHOP_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:workshops?|ws ?\d|dialog-?runden?|dialogrunden?|runden?|rounds?|sessions?|ateliers?)\b").expect("regex")
});

static EVENT_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"konferenz|tagung|veranstaltung|\bteilnahme\b|\bevent\b|conference|kick-?off|auftakt|fishbowl|diskussion|\banmeldung\b|registration")
        .expect("regex")
});

static CLAUSE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[,;]|\s(?:aber|but|jedoch|however)\s").expect("regex"));

static REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\W*(?:(?:hallo|hello|hi|dear \w+|liebe[rs]? \w+)\W+)?(?:could|would|can|will) you\b|\b(?:koennten|koennen|wuerden) sie (?:bitte|mich|uns|meine|meinen|die|den|das)\b|\b(?:kannst|koenntest) du (?:bitte|mich|uns|meine)\b|\bwaere es moeglich,? (?:mich|uns|meine)",
    )
    .expect("regex")
});

static CONDITIONAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\W*(?:falls|sofern|wenn|if|provided)\b|\b(?:falls ja|wenn ja|wenn das (?:geht|moeglich ist)|falls (?:das|es) (?:geht|moeglich ist)|if so|if yes|if that is possible|if possible)\b")
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

/// Does the writer add people to what they registered before ("bringe noch
/// meine Nachbarin mit", "möchte noch jemanden nachmelden", "another guest")?
pub fn adds_people(own: &str) -> bool {
    static ADD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"\bnoch\b[^.!?\n]{0,40}\b(?:mit|nachmelden|anmelden|dazu|eine|einen|zwei|drei|weitere\w*|kolleg\w*|person\w*|begleit\w*|nachbar\w*|freund\w*)\b|\bzusaetzlich\b|\bweitere[nr]? (?:person|kolleg|teilnehm|begleit)|\bnachmelden\b|\bnachmeldung\b|\banother (?:person|colleague|guest|friend)|\badditional (?:person|colleague|guest)|\bin addition\b|\balso bring|\badd (?:a|one|another|my)\b",
        )
        .expect("regex")
    });
    ADD.is_match(&prepare(own))
}

/// Does a subject ask the reader to confirm ("Bitte bestätigen Sie Ihre
/// Anmeldung", "Please confirm your registration")? Our own
/// "Anmeldebestätigung" (a confirmation sent) does not.
pub fn asks_for_confirmation(subject: &str) -> bool {
    static ASK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bbitte (?:\w+ )?bestaetig|\bbestaetigen sie\b|\bzu bestaetigen\b|\bplease confirm\b|\bconfirm your\b|\bconfirmation (?:required|needed)\b|\bbestaetigung (?:erforderlich|noetig|benoetigt)\b|\bopt-?in\b")
            .expect("regex")
    });
    ASK.is_match(&fold(subject))
}

fn prepare(sentence: &str) -> String {
    NOISE_WORDS.replace_all(&fold(sentence), " ").into_owned()
}

/// A question that asks us to do something ("Could you please change …?")
/// is a request, not a question needing a personal answer.
pub fn is_request(sentence: &str) -> bool {
    REQUEST.is_match(&prepare(sentence))
}

fn is_question(sentence: &str) -> bool {
    let t = sentence.trim_end();
    t.ends_with('?') || t.ends_with("?)") || t.contains("? ")
}

/// Reads the writer's own text (and a subject that is not a reply's).
/// `confirm_requested`: the mail answers our request to confirm (double opt-in).
pub fn read(own: &str, subject: Option<&str>, confirm_requested: bool) -> Reading {
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

    for (i, s) in sentences.iter().enumerate() {
        let f = prepare(s);
        // "Könnten Sie mich bitte … anmelden?" asks us to act: a request.
        let q = is_question(s) && i >= from_subject && !REQUEST.is_match(&f);
        if i >= from_subject && REQUEST.is_match(&f) && request.is_none() {
            request = Some(text::one_line(s));
        }
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
                // "Absage Workshop", "nicht mehr am Workshop 2 teilnehmen,
                // komme aber trotzdem": the workshop, not the conference.
                let still_attends = CLAUSE
                    .split(&f)
                    .any(|c| REGISTER.is_match(c) && !CANCEL.is_match(c));
                if !(WORKSHOP_WORD.is_match(&f) && (!EVENT_WORD.is_match(&f) || still_attends)) {
                    whole_event_cancel = true;
                }
                if SUBSTITUTE.is_match(&f) {
                    substitute = true;
                }
                // Who cannot come: judged in the clause that says so.
                let mut clauses: Vec<&str> =
                    CLAUSE.split(&f).filter(|c| CANCEL.is_match(c)).collect();
                if clauses.is_empty() {
                    // The cancel phrase spans a comma: judge the sentence.
                    clauses.push(&f);
                }
                for clause in clauses {
                    let without_possessive = clause
                        .replace("mein", "")
                        .replace("unser", "")
                        .replace("my ", "");
                    if !COMPANION_SUBJECT.is_match(clause) || SELF.is_match(&without_possessive) {
                        companion_cancel_only = false;
                    }
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
            } else if CONDITIONAL.is_match(&f) {
                // "Falls ja, melde ich mich an": depends on an answer.
                conditional = true;
            } else if i < from_subject {
                register_subject = true;
            } else {
                register = true;
            }
        }
        if confirm_requested && !q && CONFIRM_WORDS.is_match(&f) && i >= from_subject {
            confirm = true;
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
    } else if register || (conditional && question.is_none()) || (register_subject && !conditional)
    {
        Intent::Register
    } else if cue_in_question || question.is_some() {
        Intent::Question
    } else {
        Intent::Unclear
    };
    Reading {
        intent,
        question,
        request,
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

/// Is this sentence a (declarative) registration?
pub fn is_register_sentence(sentence: &str) -> bool {
    let f = prepare(sentence);
    REGISTER.is_match(&f)
        && !CANCEL.is_match(&f)
        && (!is_question(sentence) || REQUEST.is_match(&f))
}

/// Is this sentence a (declarative) cancellation?
pub fn is_cancel_sentence(sentence: &str) -> bool {
    CANCEL.is_match(&prepare(sentence)) && !is_question(sentence)
}

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
