//! Finds what an attendee chose and needs in a piece of their text: workshop
//! or dialogue-round choices of one conference (by number, by title, by a
//! telling word of the title, in German or English), and notes for the
//! organizers (accessibility, interpreters, child care, diet). Works on any
//! conference's workshop list; knows nothing about mail or routing.

use std::sync::LazyLock;

use regex::Regex;

use super::pattern::Pattern;

use super::text::{self, edit_distance, find_seq, fold, loose, match_tokens, tokens};
use super::{ConferenceRef, Language};

/// Words that make a sentence about workshop choices.
static WS_CONTEXT: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:workshops?|ateliers?|ws\d*|dialog-?\s?runden?|dialogrunden?|gespraechsrunden?|themenrunden?|runden?|rounds?|sessions?|arbeitsgruppen?|ags?|panels?|foren|forums?|thema|themas|themen|themenbereich|topics?|tisch|tische|tables?|dialogues?|dialogs?|gruppen?|interessier\w*|interesse|interest|interested|teilnehmen an|moechte\w* (?:in|an|zu)|would like to join|gern in|gerne in|am liebsten|choose|choice|wahl|waehle\w*|besuchen|attend)\b",
    )
    .expect("regex")
});

static WS_NUMBERS: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:workshops?|ateliers?|ws|dialog-?\s?runden?|dialogrunden?|gespraechsrunden?|themenrunden?|runden?|rounds?|sessions?|arbeitsgruppen?|ags?|panels?|foren|forums?|thema|themen|topics?|tische?|tables?|dialogues?|gruppen?|groups?)[\s-]*(?:nr\.?|no\.?|nummer|number|#|:)?\s*(\d{1,2}(?:\s*(?:,|und|and|&|/|\+|sowie|oder|or|bzw\.?|u\.)\s*(?:(?:workshops?|ws|nr\.?|no\.?|#)\s*)?\d{1,2})*)(\s*\S*)",
    )
    .expect("regex")
});

static NUMBER: Pattern = Pattern::new(|| Regex::new(r"\d{1,2}").expect("regex"));

const STOP: &[&str] = &[
    "und", "and", "in", "der", "die", "das", "fuer", "for", "the", "of", "zu", "im", "am", "mit",
    "von", "den", "dem", "des", "a", "an", "on", "with", "ein", "eine", "&",
];

/// English (and a few other) words people use for German workshop titles.
const TRANSLATIONS: &[(&str, &str)] = &[
    ("education", "bildung"),
    ("language", "sprache"),
    ("languages", "sprache"),
    ("health", "gesundheit"),
    ("care", "pflege"),
    ("nursing", "pflege"),
    ("work", "arbeit"),
    ("employment", "arbeit"),
    ("jobs", "arbeit"),
    ("labour", "arbeit"),
    ("labor", "arbeit"),
    ("training", "ausbildung"),
    ("apprenticeship", "ausbildung"),
    ("vocational", "ausbildung"),
    ("discrimination", "antidiskriminierung"),
    ("antidiscrimination", "antidiskriminierung"),
    ("antidiskriminierungs", "antidiskriminierung"),
    ("participation", "teilhabe"),
    ("committees", "gremien"),
    ("boards", "gremien"),
    ("youth", "jugend"),
    ("economy", "wirtschaft"),
    ("business", "wirtschaft"),
    ("housing", "wohnen"),
    ("living", "wohnen"),
    ("sports", "sport"),
    ("culture", "kultur"),
    ("integration", "integration"),
];

fn translate(toks: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        // "anti discrimination" / "anti-discrimination" → one word.
        if toks[i] == "anti"
            && toks
                .get(i + 1)
                .is_some_and(|t| t.starts_with("discrimin") || t.starts_with("diskrimin"))
        {
            out.push("antidiskriminierung".into());
            i += 2;
            continue;
        }
        let t = &toks[i];
        match TRANSLATIONS.iter().find(|(en, _)| en == t) {
            Some((_, de)) => out.push((*de).to_string()),
            None => out.push(t.clone()),
        }
        i += 1;
    }
    out
}

fn significant(title: &str) -> Vec<String> {
    match_tokens(title)
        .into_iter()
        .filter(|t| !STOP.contains(&t.as_str()) && t.chars().count() >= 4)
        .collect()
}

/// A workshop mention at a token position in a sentence.
struct Mention {
    index: usize,
    token_pos: usize,
    /// Named as a fallback ("oder 3"), not chosen.
    alternative: bool,
}

static ALTERNATIVE: Pattern = Pattern::new(|| Regex::new(r"\b(?:oder|or|bzw)\b").expect("regex"));

/// Workshop ids of `conf` chosen in `text`, in the conference's order, and
/// those named only as a fallback ("Workshop 2 oder 3": 3).
/// `relaxed`: the text is known to be about choices (a list item, a form
/// field), so a single title word counts without a "Workshop" nearby.
/// `update`: drop choices the writer moves away from ("statt WS 2").
/// `titles_only`: ignore numbers (used to guess a conference from titles).
pub fn workshop_choices(
    text: &str,
    conf: &ConferenceRef,
    relaxed: bool,
    update: bool,
    titles_only: bool,
) -> (Vec<String>, Vec<String>) {
    let n = conf.workshops.len();
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let titles: Vec<Vec<String>> = conf
        .workshops
        .iter()
        .map(|w| match_tokens(&w.title))
        .collect();
    let sig: Vec<Vec<String>> = conf
        .workshops
        .iter()
        .map(|w| significant(&w.title))
        .collect();
    let mut chosen = vec![false; n];
    let mut fallback = vec![false; n];

    for sentence in text::sentences(text) {
        let folded = ordinals_to_numbers(&fold(&sentence));
        let toks: Vec<String> = translate(tokens(&folded))
            .iter()
            .map(|t| loose(t))
            .collect();
        let context = relaxed || WS_CONTEXT.is_match(&folded);
        let mut mentions: Vec<Mention> = Vec::new();

        if !titles_only {
            for caps in WS_NUMBERS.captures_iter(&folded) {
                let (Some(nums), Some(all)) = (caps.get(1), caps.get(0)) else {
                    continue;
                };
                let after = caps.get(2).map_or("", |m| m.as_str()).trim();
                // "2 Personen", "15.10.", "3 Kolleginnen" are not workshop numbers.
                if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit())
                    || is_count_noun(after)
                {
                    continue;
                }
                let _ = all;
                let mut prev_end = 0;
                for m in NUMBER.find_iter(nums.as_str()) {
                    // "Workshop 2 oder 3": what follows "oder" is a second choice.
                    let between = &nums.as_str()[prev_end..m.start()];
                    let alternative = prev_end > 0 && ALTERNATIVE.is_match(between);
                    prev_end = m.end();
                    let Ok(k) = m.as_str().parse::<usize>() else {
                        continue;
                    };
                    if (1..=n).contains(&k) {
                        let pos = token_index(&folded, nums.start() + m.start());
                        mentions.push(Mention {
                            index: k - 1,
                            token_pos: pos,
                            alternative,
                        });
                    }
                }
            }
            if update && context {
                // "statt 2 lieber 4": bare numbers right after a change word.
                for (p, t) in toks.iter().enumerate() {
                    if let Ok(k) = t.parse::<usize>()
                        && (1..=n).contains(&k)
                        && p > 0
                        && matches!(
                            toks[p - 1].as_str(),
                            "statt"
                                | "anstatt"
                                | "lieber"
                                | "auf"
                                | "zu"
                                | "nach"
                                | "to"
                                | "instead"
                                | "from"
                                | "von"
                                | "into"
                                | "in"
                        )
                        && !mentions.iter().any(|m| m.token_pos == p)
                    {
                        mentions.push(Mention {
                            index: k - 1,
                            token_pos: p,
                            alternative: false,
                        });
                    }
                }
            }
        }

        for (idx, title) in titles.iter().enumerate() {
            if let Some(pos) = find_seq(&toks, title)
                && (context || sig[idx].len() >= 2)
            {
                mentions.push(Mention {
                    index: idx,
                    token_pos: pos,
                    alternative: false,
                });
                continue;
            }
            if !context {
                continue;
            }
            // A telling word of the title that no other workshop has.
            for w in &sig[idx] {
                let unique = sig
                    .iter()
                    .enumerate()
                    .all(|(j, s)| j == idx || !s.contains(w));
                if !unique {
                    continue;
                }
                // Exact (with inflection), or one typo in a long word
                // ("Antidiskrimminierung"), two in a very long one.
                let typo = |t: &String| {
                    let n = w.chars().count();
                    let allowed = if n >= 12 {
                        2
                    } else if n >= 7 {
                        1
                    } else {
                        0
                    };
                    allowed > 0 && edit_distance(t, w) <= allowed
                };
                let found =
                    find_seq(&toks, std::slice::from_ref(w)).or_else(|| toks.iter().position(typo));
                if let Some(pos) = found {
                    mentions.push(Mention {
                        index: idx,
                        token_pos: pos,
                        alternative: false,
                    });
                    break;
                }
            }
        }

        for m in mentions {
            if update && moved_away(&toks, m.token_pos) {
                continue;
            }
            if m.alternative {
                fallback[m.index] = true;
            } else {
                chosen[m.index] = true;
            }
        }
    }
    let ids = |flags: &[bool]| -> Vec<String> {
        conf.workshops
            .iter()
            .zip(flags)
            .filter(|(_, c)| **c)
            .map(|(w, _)| w.id.clone())
            .collect()
    };
    let alternatives: Vec<bool> = fallback
        .iter()
        .zip(&chosen)
        .map(|(f, c)| *f && !*c)
        .collect();
    (ids(&chosen), ids(&alternatives))
}

/// Workshop ids of `conf` chosen in `text`; see [`workshop_choices`].
pub fn workshops(
    text: &str,
    conf: &ConferenceRef,
    relaxed: bool,
    update: bool,
    titles_only: bool,
) -> Vec<String> {
    workshop_choices(text, conf, relaxed, update, titles_only).0
}

/// "den zweiten Workshop" → "den workshop 2", "Workshop III" → "workshop 3".
fn ordinals_to_numbers(folded: &str) -> String {
    static ORDINAL: Pattern = Pattern::new(|| {
        Regex::new(r"\b(erste[nmr]?|zweite[nmr]?|dritte[nmr]?|vierte[nmr]?|fuenfte[nmr]?|sechste[nmr]?|siebte[nmr]?|first|second|third|fourth|fifth|sixth|seventh)\s+(workshops?|dialogrunden?|runden?|rounds?|sessions?)\b")
            .expect("regex")
    });
    static ROMAN: Pattern = Pattern::new(|| {
        Regex::new(r"\b(workshops?|dialogrunden?|runden?|rounds?)\s+(i|ii|iii|iv|v|vi|vii)\b")
            .expect("regex")
    });
    let s = ORDINAL.replace_all(folded, |c: &regex::Captures<'_>| {
        let word = c.get(1).map_or("", |m| m.as_str());
        let n = match word.trim_end_matches(['n', 'm', 'r']) {
            w if w.starts_with("erste") || w == "first" => 1,
            w if w.starts_with("zweite") || w == "second" => 2,
            w if w.starts_with("dritte") || w == "third" => 3,
            w if w.starts_with("vierte") || w == "fourth" => 4,
            w if w.starts_with("fuenfte") || w == "fifth" => 5,
            w if w.starts_with("sechste") || w == "sixth" => 6,
            _ => 7,
        };
        format!("{} {n}", c.get(2).map_or("workshop", |m| m.as_str()))
    });
    ROMAN
        .replace_all(&s, |c: &regex::Captures<'_>| {
            let n = match c.get(2).map_or("", |m| m.as_str()) {
                "i" => 1,
                "ii" => 2,
                "iii" => 3,
                "iv" => 4,
                "v" => 5,
                "vi" => 6,
                _ => 7,
            };
            format!("{} {n}", c.get(1).map_or("workshop", |m| m.as_str()))
        })
        .into_owned()
}

fn is_count_noun(after: &str) -> bool {
    let a = after.trim_start_matches(|c: char| !c.is_alphanumeric());
    let word: String = a.chars().take_while(|c| c.is_alphanumeric()).collect();
    let rest = a[word.len()..].trim_start();
    // "Workshop 1 teilnehmen" is the verb; "3 Teilnehmende" is a count.
    if word.starts_with("teilnehm") {
        return word != "teilnehmen";
    }
    // "14 Uhr", "2 pm", "9 am" are times; "Workshop 1 am Nachmittag" is not.
    match word.as_str() {
        "uhr" | "pm" | "h" => return true,
        "am" => return !rest.starts_with(|c: char| c.is_alphabetic()),
        _ => {}
    }
    [
        "person",
        "leute",
        "kolleg",
        "people",
        "colleague",
        "guest",
        "gaest",
        "begleit",
        "kinder",
        "plaetze",
        "seats",
        "tickets",
    ]
    .iter()
    .any(|w| word.starts_with(w))
}

/// Index of the token that starts at or after byte `offset` of a folded string.
fn token_index(folded: &str, offset: usize) -> usize {
    let head = folded.get(..offset).unwrap_or(folded);
    tokens(head).len()
}

/// Is the mention at `pos` a choice the writer leaves ("statt WS 2", "von
/// Sport zu Kultur")? Looks back a few words: a removal word decides, unless
/// a target word ("zu", "auf", "to", "lieber") comes first.
fn moved_away(toks: &[String], pos: usize) -> bool {
    let start = pos.saturating_sub(4);
    let window = &toks[start..pos.min(toks.len())];
    // "nicht in Workshop 3, sondern in Workshop 1"
    let contrast_follows = toks
        .get(pos + 1..)
        .is_some_and(|rest| rest.iter().take(8).any(|t| t == "sondern" || t == "but"));
    if contrast_follows
        && window
            .iter()
            .any(|t| t == "nicht" || t == "not" || t == "kein")
    {
        return true;
    }
    // "ich hatte mich für Workshop 2 angemeldet, möchte aber …": the old choice.
    let old_state = toks.get(pos + 1..).is_some_and(|rest| {
        rest.iter().take(3).any(|t| {
            matches!(
                t.as_str(),
                "angemeldet" | "registered" | "gebucht" | "booked" | "eingetragen"
            )
        })
    });
    if old_state {
        return true;
    }
    for (i, t) in window.iter().enumerate().rev() {
        let removal = match t.as_str() {
            "statt" | "anstatt" | "from" | "von" | "streichen" | "remove" | "raus" | "aus"
            | "not" => true,
            "instead" => window.get(i + 1).is_some_and(|n| n == "of"),
            "rather" => window.get(i + 1).is_some_and(|n| n == "than"),
            // "Workshop 3, nicht Workshop 2" — but "nicht nur WS 2" keeps it.
            "nicht" => window.get(i + 1).is_none_or(|n| n != "nur"),
            // "ich bin angemeldet, Workshop Antidiskriminierung. Bitte auf …":
            // the choice named right after the old registration is the old one.
            "angemeldet" | "registered" | "gebucht" | "booked" | "eingetragen" => true,
            "no" => window.get(i + 1).is_some_and(|n| n == "longer"),
            _ => false,
        };
        if removal {
            return true;
        }
        if matches!(
            t.as_str(),
            "zu" | "zum" | "zur" | "nach" | "auf" | "to" | "into" | "lieber" | "for" | "in"
        ) {
            return false;
        }
    }
    false
}

struct NoteRule {
    pattern: &'static str,
    de: &'static str,
    en: &'static str,
    /// Rules whose note is implied by an earlier one are skipped then.
    unless: &'static [&'static str],
}

const NOTE_RULES: &[NoteRule] = &[
    NoteRule {
        pattern: r"rollstuhl|wheel-?chair|\brolli\b|e-?rolli",
        de: "Rollstuhl",
        en: "wheelchair",
        unless: &[],
    },
    NoteRule {
        pattern: r"barrierefrei|stufenlos|step-?free|\baccessib|\baufzug|\bfahrstuhl|\belevator|\blift\b|gehbehinder|rollator|mobility|gehhilfe|kruecken|crutches",
        de: "barrierefreier Zugang",
        en: "step-free access",
        unless: &["Rollstuhl", "wheelchair"],
    },
    NoteRule {
        pattern: r"gebaerdensprach|gebaerdendolmetsch|sign language|\bdgs\b|\basl\b|gehoerlos|\bdeaf\b|\btaub\b",
        de: "Gebärdensprachdolmetschung",
        en: "sign language interpreter",
        unless: &[],
    },
    NoteRule {
        pattern: r"dolmetsch|verdolmetsch|uebersetzung|uebersetzer|interpret|translation|translator|sprachmittl",
        de: "Dolmetschung",
        en: "interpreter",
        unless: &["Gebärdensprachdolmetschung", "sign language interpreter"],
    },
    NoteRule {
        pattern: r"hoerschleife|induktionsschleife|hoeranlage|hearing loop|schwerhoer|hard of hearing|hearing impair|hoergeraet",
        de: "Höranlage",
        en: "hearing loop",
        unless: &[],
    },
    NoteRule {
        pattern: r"assistenzhund|blindenhund|fuehrhund|begleithund|guide dog|assistance dog|service dog",
        de: "Assistenzhund",
        en: "assistance dog",
        unless: &[],
    },
    NoteRule {
        pattern: r"\bblind\b|\bblinde|sehbehinder|visually impaired|sehbeeintraecht",
        de: "Sehbehinderung",
        en: "visual impairment",
        unless: &[],
    },
    NoteRule {
        pattern: r"kinderbetreuung|child[- ]?care|babysit|betreuung (?:fuer|von) kinder|betreuung (?:fuer|von) (?:mein|unser|die|das|den)\w* (?:kind|sohn|tochter)|kinder ?ecke|spielecke|creche|kita-?platz",
        de: "Kinderbetreuung",
        en: "child care",
        unless: &[],
    },
    NoteRule {
        pattern: r"vegetari",
        de: "vegetarisch",
        en: "vegetarian",
        unless: &[],
    },
    NoteRule {
        pattern: r"\bvegan",
        de: "vegan",
        en: "vegan",
        unless: &[],
    },
    NoteRule {
        pattern: r"\bhalal",
        de: "halal",
        en: "halal",
        unless: &[],
    },
    NoteRule {
        pattern: r"\bkosche|\bkosher",
        de: "koscher",
        en: "kosher",
        unless: &[],
    },
    NoteRule {
        pattern: r"gluten|zoeliak|coeliac|celiac",
        de: "glutenfrei",
        en: "gluten-free",
        unless: &[],
    },
    NoteRule {
        pattern: r"laktose|lactose",
        de: "laktosefrei",
        en: "lactose-free",
        unless: &[],
    },
    NoteRule {
        pattern: r"\bkein(?:e|en)? schweinefleisch|\bno pork|ohne schwein",
        de: "kein Schweinefleisch",
        en: "no pork",
        unless: &["halal"],
    },
    NoteRule {
        pattern: r"gebetsraum|prayer room|ruheraum|quiet room",
        de: "Gebetsraum/Ruheraum",
        en: "prayer/quiet room",
        unless: &[],
    },
];

static NOTE_RES: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    NOTE_RULES
        .iter()
        .map(|r| Pattern::text(r.pattern.to_string()).expect("regex"))
        .collect()
});

static NEGATION: Pattern = Pattern::new(|| {
    Regex::new(r"\b(?:kein|keine|keinen|keiner|nicht|no|not|don'?t|do not|without|ohne|weder)\b")
        .expect("regex")
});

static ALLERGY: Pattern = Pattern::new(|| {
    Regex::new(r"(?i)\b(?:allergi\w*|unverträglich\w*|intoleran\w*)\s+(?:gegen|auf|to|against|on)\s+((?:[\p{L}-]+)(?:\s*(?:,|und|and|&)\s*[\p{L}-]+){0,3})")
        .expect("regex")
});
static ALLERGY_BEFORE: Pattern = Pattern::new(|| {
    Regex::new(r"(?i)\b([\p{L}]+)[- ]?(?:allergie|allergy|allergic|unverträglichkeit)")
        .expect("regex")
});

static INTERPRETER_LANGUAGE: Pattern = Pattern::new(|| {
    Regex::new(r"\b(arabi\w*|tuerki\w*|turkish|farsi|persi\w*|dari|kurd\w*|russi\w*|ukraini\w*|polni\w*|polish|englisch|english|franzoesi\w*|french|tigrinya|somali\w*|paschtu|pashto|rumaeni\w*|romanian|bulgari\w*|serbi\w*|kroati\w*|albani\w*|spani\w*|spanish|vietnames\w*|twi|urdu|hindi)\b")
        .expect("regex")
});

/// Notes for the organizers found in `text`, worded in `lang`.
pub fn notes(text: &str, lang: Language) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for sentence in text::sentences(text) {
        let folded = fold(&sentence);
        // A question about the venue ("is it accessible?") is still a need.
        for (rule, re) in NOTE_RULES.iter().zip(NOTE_RES.iter()) {
            let Some(m) = re.find(&folded) else { continue };
            if negated(&folded, m.start()) {
                continue;
            }
            if rule.unless.iter().any(|u| out.iter().any(|o| o == u)) {
                continue;
            }
            let mut note = match lang {
                Language::De => rule.de.to_string(),
                Language::En => rule.en.to_string(),
            };
            if rule.de == "Dolmetschung"
                && let Some(l) = INTERPRETER_LANGUAGE
                    .captures(&folded)
                    .and_then(|c| c.get(1))
            {
                note = format!("{note} ({})", language_name(l.as_str(), lang));
            }
            if !out.contains(&note) {
                out.push(note);
            }
        }
        if let Some(note) = allergy(&sentence, lang)
            && !out.contains(&note)
        {
            out.push(note);
        }
    }
    out
}

fn negated(folded: &str, pos: usize) -> bool {
    // A negation shortly before the keyword, within the same clause.
    let start = folded[..pos]
        .char_indices()
        .rev()
        .take(30)
        .last()
        .map_or(pos, |(i, _)| i);
    let window = &folded[start..pos];
    let window = window.rsplit([',', ';', ':']).next().unwrap_or(window);
    NEGATION.is_match(window)
}

fn allergy(sentence: &str, lang: Language) -> Option<String> {
    let folded = fold(sentence);
    if !(folded.contains("allergi")
        || folded.contains("allergy")
        || folded.contains("unvertraeglich"))
    {
        return None;
    }
    let label = match lang {
        Language::De => "Allergie",
        Language::En => "allergy",
    };
    if let Some(what) = ALLERGY.captures(sentence).and_then(|c| c.get(1)) {
        return Some(format!("{label}: {}", text::one_line(what.as_str())));
    }
    if let Some(what) = ALLERGY_BEFORE.captures(sentence).and_then(|c| c.get(1)) {
        let w = what.as_str();
        let f = fold(w);
        if ![
            "eine",
            "a",
            "an",
            "keine",
            "no",
            "meine",
            "my",
            "food",
            "lebensmittel",
            "schwere",
            "severe",
        ]
        .contains(&f.as_str())
        {
            return Some(format!("{label}: {w}"));
        }
    }
    Some(label.to_string())
}

fn language_name(folded: &str, lang: Language) -> String {
    let (de, en) = match folded {
        l if l.starts_with("arabi") => ("Arabisch", "Arabic"),
        l if l.starts_with("tuerki") || l == "turkish" => ("Türkisch", "Turkish"),
        "farsi" => ("Farsi", "Farsi"),
        l if l.starts_with("persi") => ("Persisch", "Persian"),
        "dari" => ("Dari", "Dari"),
        l if l.starts_with("kurd") => ("Kurdisch", "Kurdish"),
        l if l.starts_with("russi") => ("Russisch", "Russian"),
        l if l.starts_with("ukraini") => ("Ukrainisch", "Ukrainian"),
        l if l.starts_with("polni") || l == "polish" => ("Polnisch", "Polish"),
        "englisch" | "english" => ("Englisch", "English"),
        l if l.starts_with("franzoesi") || l == "french" => ("Französisch", "French"),
        "tigrinya" => ("Tigrinya", "Tigrinya"),
        l if l.starts_with("somali") => ("Somali", "Somali"),
        "paschtu" | "pashto" => ("Paschtu", "Pashto"),
        l if l.starts_with("rumaeni") || l == "romanian" => ("Rumänisch", "Romanian"),
        l if l.starts_with("bulgari") => ("Bulgarisch", "Bulgarian"),
        l if l.starts_with("serbi") => ("Serbisch", "Serbian"),
        l if l.starts_with("kroati") => ("Kroatisch", "Croatian"),
        l if l.starts_with("albani") => ("Albanisch", "Albanian"),
        l if l.starts_with("spani") => ("Spanisch", "Spanish"),
        l if l.starts_with("vietnames") => ("Vietnamesisch", "Vietnamese"),
        "twi" => ("Twi", "Twi"),
        "urdu" => ("Urdu", "Urdu"),
        "hindi" => ("Hindi", "Hindi"),
        other => (other, other),
    };
    match lang {
        Language::De => de.to_string(),
        Language::En => en.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understand::WorkshopRef;

    fn miko() -> ConferenceRef {
        let ws = [
            ("w1", "Teilhabe in Gremien"),
            ("w2", "Antidiskriminierung"),
            ("w3", "Bildung und Sprache"),
            ("w4", "Arbeit und Ausbildung"),
            ("w5", "Gesundheit und Pflege"),
        ];
        ConferenceRef {
            id: "miko-2027".into(),
            title: "Vierte Migrationskonferenz".into(),
            aliases: vec![],
            workshops: ws
                .iter()
                .map(|(i, t)| WorkshopRef {
                    id: (*i).into(),
                    title: (*t).into(),
                })
                .collect(),
            open: true,
            address: None,
            capacity: None,
        }
    }

    fn ws(text: &str) -> Vec<String> {
        workshops(text, &miko(), false, false, false)
    }

    #[test]
    fn workshop_numbers() {
        assert_eq!(ws("Ich möchte in WS 2 und 4."), vec!["w2", "w4"]);
        assert_eq!(ws("Workshops 1, 3 und 5 bitte"), vec!["w1", "w3", "w5"]);
        assert_eq!(ws("am Workshop 2 „Antidiskriminierung“"), vec!["w2"]);
        assert!(ws("Wir kommen mit 2 Personen zum Workshop am 15.10.").is_empty());
        assert!(ws("Workshop 9").is_empty());
        assert_eq!(ws("Ich möchte in den zweiten Workshop."), vec!["w2"]);
        assert_eq!(ws("Workshop IV bitte"), vec!["w4"]);
        assert_eq!(ws("Workshop-Nr. 5"), vec!["w5"]);
    }

    #[test]
    fn alternatives_are_not_choices() {
        let (c, a) = workshop_choices(
            "Workshop 2 oder 3, je nachdem",
            &miko(),
            false,
            false,
            false,
        );
        assert_eq!((c, a), (vec!["w2".to_string()], vec!["w3".to_string()]));
    }

    #[test]
    fn workshop_titles() {
        assert_eq!(ws("den Workshop Bildung und Sprache"), vec!["w3"]);
        assert_eq!(ws("Antidiskriminierungs-Workshop"), vec!["w2"]);
        assert_eq!(ws("I'd like to join the health workshop"), vec!["w5"]);
        assert_eq!(ws("the anti-discrimination workshop"), vec!["w2"]);
        assert_eq!(ws("gerne in den Workshop Antidiskrimminierung"), vec!["w2"]);
        assert_eq!(ws("Workshop Gesundhiet"), vec!["w5"]);
        // "Bildung" in free text without any workshop context does not count.
        assert!(ws("Ich arbeite im Bereich Gesundheit.").is_empty());
    }

    #[test]
    fn update_drops_old_choice() {
        let r = workshops(
            "Bitte statt Workshop 2 lieber Workshop 4.",
            &miko(),
            false,
            true,
            false,
        );
        assert_eq!(r, vec!["w4"]);
        let r = workshops(
            "Ich möchte von Workshop 2 zu Workshop 4 wechseln.",
            &miko(),
            false,
            true,
            false,
        );
        assert_eq!(r, vec!["w4"]);
        let r = workshops(
            "Ich möchte den Workshop wechseln, von Gesundheit zu Bildung und Sprache.",
            &miko(),
            false,
            true,
            false,
        );
        assert_eq!(r, vec!["w3"]);
        let r = workshops(
            "Ich möchte nicht in Workshop 3, sondern in Workshop 1.",
            &miko(),
            false,
            true,
            false,
        );
        assert_eq!(r, vec!["w1"]);
        for s in [
            "Ich habe mich vertan: Ich meinte Workshop 1, nicht Workshop 3.",
            "Ich bin angemeldet, Workshop Bildung und Sprache. Bitte auf Teilhabe in Gremien umbuchen.",
        ] {
            assert_eq!(workshops(s, &miko(), false, true, false), vec!["w1"], "{s}");
        }
        let r = workshops(
            "Ich hatte mich für Workshop 2 angemeldet, möchte aber lieber in Workshop 4.",
            &miko(),
            false,
            true,
            false,
        );
        assert_eq!(r, vec!["w4"]);
    }

    #[test]
    fn notes_found_and_negated() {
        assert_eq!(
            notes(
                "I use a wheelchair – is the venue accessible?",
                Language::En
            ),
            vec!["wheelchair"]
        );
        assert_eq!(
            notes("Wir brauchen Kinderbetreuung.", Language::De),
            vec!["Kinderbetreuung"]
        );
        assert!(notes("Wir brauchen keine Kinderbetreuung.", Language::De).is_empty());
        assert_eq!(
            notes("Ich brauche einen Dolmetscher für Arabisch.", Language::De),
            vec!["Dolmetschung (Arabisch)"]
        );
        assert_eq!(
            notes("Ich bin allergisch gegen Nüsse", Language::De),
            vec!["Allergie: Nüsse"]
        );
        assert_eq!(
            notes("Ich esse vegetarisch.", Language::De),
            vec!["vegetarisch"]
        );
    }
}
