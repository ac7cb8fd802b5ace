//! Recognises the language a text is written in: which vocabulary
//! understood its sentences, and the `whatlang` crate (trigram statistics
//! over 69 languages) for the rest — German or English for the answer, and,
//! for mail in neither, which language it is, so that the review reason can
//! name it ("written in Turkish"). Pure functions, no I/O.

use whatlang::Lang;

use super::Language;
use super::text::{self, fold};
use super::vocab::Vocabulary;

/// Sections whose phrases tell the writer's language (greetings do not:
/// "Hallo" and "Salam" open English and German mail alike).
const EVIDENCE: &[&str] = &[
    "self",
    "thanks",
    "register",
    "cancel",
    "update",
    "request",
    "prior",
    "confirm",
    "conditional",
    "closing",
];

/// How many phrases of each vocabulary language the text holds, most first.
pub fn vocabulary_evidence(v: &Vocabulary, own: &str) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for sentence in text::sentences(own).iter().take(200) {
        let f = fold(sentence);
        for section in EVIDENCE {
            if let Some(hit) = v.hit(section, &f) {
                match counts.iter_mut().find(|(l, _)| l == hit.language) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((hit.language.to_string(), 1)),
                }
            }
        }
    }
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
}

/// The language to answer in: the one whose vocabulary understood more of
/// the text, else what `whatlang` finds closer (German or English), else
/// `None`.
pub fn answer(v: &Vocabulary, own: &str) -> Option<Language> {
    let evidence = vocabulary_evidence(v, own);
    let count = |code: &str| {
        evidence
            .iter()
            .find(|(l, _)| l == code)
            .map_or(0, |(_, n)| *n)
    };
    let (de, en) = (count("de"), count("en"));
    if de > en {
        return Some(Language::De);
    }
    if en > de {
        return Some(Language::En);
    }
    answer_language(own)
}

/// Below this `whatlang` confidence a text's language is left open.
const CONFIDENT: f64 = 0.5;

/// Fewer letters than this say nothing reliable about a language.
const MIN_LETTERS: usize = 12;

fn letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphabetic()).count()
}

/// German or English when `whatlang` finds the text closest to one of them
/// (among all languages it knows, so a French text is neither); `None` for a
/// text too short to tell ("Workshop 3", "ok").
pub fn answer_language(text: &str) -> Option<Language> {
    if letters(text) < MIN_LETTERS {
        return None;
    }
    let info = whatlang::detect(text).filter(|i| i.confidence() >= CONFIDENT)?;
    match info.lang() {
        Lang::Deu => Some(Language::De),
        Lang::Eng => Some(Language::En),
        _ => None,
    }
}

/// The language of a text when it is clearly one that none of `known`
/// (ISO 639-3 codes, "deu") covers: its English name ("Turkish").
pub fn foreign(text: &str, known: &[String]) -> Option<&'static str> {
    if letters(text) < MIN_LETTERS {
        return None;
    }
    let info = whatlang::detect(text)?;
    let lang = info.lang();
    if info.confidence() < CONFIDENT || known.iter().any(|k| k == lang.code()) {
        return None;
    }
    Some(lang.eng_name())
}

/// A mail's language when no loaded vocabulary reads it: `whatlang` names
/// another language and the vocabularies found at most one phrase of theirs.
pub fn foreign_mail(v: &Vocabulary, own: &str) -> Option<&'static str> {
    let name = foreign(own, v.detect_codes())?;
    let understood: usize = vocabulary_evidence(v, own).iter().map(|(_, n)| n).sum();
    (understood < 2).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::super::vocab::BUILTIN_VOCABULARY;
    use super::*;

    fn known() -> Vec<String> {
        vec!["deu".into(), "eng".into()]
    }

    #[test]
    fn german_and_english() {
        let v = &*BUILTIN_VOCABULARY;
        assert_eq!(
            answer(v, "Hiermit melde ich mich zur Konferenz an."),
            Some(Language::De)
        );
        assert_eq!(
            answer(v, "I would like to register for the conference."),
            Some(Language::En)
        );
        assert_eq!(
            answer(
                v,
                "Hello, could you change my workshop to \"Gesundheit und Pflege\"?"
            ),
            Some(Language::En)
        );
        assert_eq!(answer(v, "Workshop 3"), None);
    }

    #[test]
    fn other_languages_are_named() {
        assert_eq!(
            foreign(
                "Merhaba, konferansa katılmak istiyorum. Eşim de benimle gelecek. Teşekkürler.",
                &known()
            ),
            Some("Turkish")
        );
        assert_eq!(
            foreign(
                "Bonjour, je voudrais participer à la conférence avec ma femme. Merci beaucoup.",
                &known()
            ),
            Some("French")
        );
        assert_eq!(
            foreign(
                "Hiermit melde ich mich zur Konferenz an, mit meiner Frau.",
                &known()
            ),
            None
        );
        assert_eq!(foreign("Danke!", &known()), None);
    }
}
