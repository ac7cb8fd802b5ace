//! What rsvpd knows of each language, as data: the phrases that mean "I
//! register", "I cancel", "thank you", the words for a companion or a
//! workshop … one file per language under `src/understand/vocab/` (`de.txt`,
//! `en.txt`), compiled once into regular expressions. The decision logic
//! (`intent`, `decide`, …) asks this module "does this sentence hold a
//! `cancel` phrase, and which one?" and never spells a word of any language
//! itself. The file format is described in `vocab/README.md`; every phrase
//! carries an example sentence, and a test checks that each example matches
//! its phrase.
//!
//! Adding a language means adding one file: [`Vocabulary::with`] loads it
//! beside the built-in ones, and all its sections extend the same rules.
//! A phrase that does not compile is left out and reported by
//! [`Vocabulary::problems`] (tests keep the built-in files free of them), so
//! loading never panics.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use super::pattern::Pattern;

use super::text::fold;

/// The built-in vocabularies: (language code, file text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("de", include_str!("vocab/de.txt")),
    ("en", include_str!("vocab/en.txt")),
];

/// The vocabulary every call of `understand` uses.
pub static BUILTIN_VOCABULARY: LazyLock<Vocabulary> =
    LazyLock::new(|| Vocabulary::from_sources(BUILTIN));

/// The character classes a phrase is compiled with. Phrases that are ASCII
/// once folded (German, English, Turkish, Polish …) use ASCII classes, which
/// compile and run several times faster; others (Arabic, Cyrillic) use
/// Unicode ones.
struct Classes {
    /// A separator between two words: anything that is neither a letter, a
    /// digit nor the end of a sentence.
    sep: &'static str,
    /// One word inside a gap (`…`): letters and digits, possibly joined by
    /// `.`, `@`, `'`, `-` ("z.B", "a@b.de", "e-mail"), never a sentence end.
    gap_word: &'static str,
    /// More letters of a word (`*`).
    letters: &'static str,
    /// A word boundary.
    boundary: &'static str,
    /// Anything but letters and digits (around `^` and `$`).
    nonword: &'static str,
}

const ASCII: Classes = Classes {
    sep: r"[^0-9a-z.!?\n]+",
    gap_word: r"[0-9a-z]+(?:[.@'-]+[0-9a-z]+)*",
    letters: r"(?-u:\w)*",
    boundary: r"(?-u:\b)",
    nonword: r"[^0-9a-z]*",
};

const UNICODE: Classes = Classes {
    sep: r"[^\p{L}\p{N}.!?\n]+",
    gap_word: r"[\p{L}\p{N}]+(?:[.@'’-]+[\p{L}\p{N}]+)*",
    letters: r"\w*",
    boundary: r"\b",
    nonword: r"[^\p{L}\p{N}]*",
};
/// Words a bare `…` may skip.
const DEFAULT_GAP: usize = 8;

/// One line of a vocabulary file.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// Language code of the file it comes from ("de").
    pub language: String,
    /// The phrase as written in the file ("sage … ab").
    pub text: String,
    /// Sentences that must match it.
    pub examples: Vec<String>,
    /// Sentences that must not match it.
    pub counter_examples: Vec<String>,
    /// Line in its file, for messages.
    pub line: usize,
    /// The compiled pattern; the regex of a single phrase is built only when
    /// asked which phrase of a section fired.
    source: Option<String>,
    regex: OnceLock<Option<Pattern>>,
}

impl Phrase {
    fn regex(&self) -> Option<&Pattern> {
        self.regex
            .get_or_init(|| {
                // part of the section's alternation, which compiled
                self.source.clone().map(Pattern::checked)
            })
            .as_ref()
    }

    /// Does the phrase occur in `folded` (text already passed through `fold`)?
    pub fn is_match(&self, folded: &str) -> bool {
        self.regex().is_some_and(|r| r.is_match(folded))
    }

    pub fn find(&self, folded: &str) -> Option<(usize, usize)> {
        self.regex()
            .and_then(|r| r.find(folded))
            .map(|m| (m.start(), m.end()))
    }
}

/// All phrases of one section (e.g. `cancel`) over all loaded languages.
#[derive(Debug, Default)]
pub struct Section {
    pub phrases: Vec<Phrase>,
    any: Option<Pattern>,
}

/// Where a phrase of a section was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub section: &'a str,
    pub phrase: &'a str,
    pub language: &'a str,
    pub start: usize,
    pub end: usize,
}

impl fmt::Display for Hit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\" ({})",
            self.section, self.phrase, self.language
        )
    }
}

impl Section {
    pub fn is_match(&self, folded: &str) -> bool {
        self.any.as_ref().is_some_and(|r| r.is_match(folded))
    }

    /// The earliest match of any phrase (ties: the phrase listed first).
    pub fn find(&self, folded: &str) -> Option<(usize, usize)> {
        self.any
            .as_ref()
            .and_then(|r| r.find(folded))
            .map(|m| (m.start(), m.end()))
    }

    /// All non-overlapping matches of any phrase.
    pub fn find_iter<'t>(&'t self, folded: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
        self.any
            .iter()
            .flat_map(move |r| r.find_iter(folded).map(|m| (m.start(), m.end())))
    }

    /// The regex of all phrases, for splitting ("," or "aber" between clauses).
    pub fn regex(&self) -> Option<&Pattern> {
        self.any.as_ref()
    }
}

/// A loaded set of vocabularies.
#[derive(Debug, Default)]
pub struct Vocabulary {
    sections: BTreeMap<String, Section>,
    languages: Vec<String>,
    /// ISO 639-3 codes the files declare (`language deu`), for recognising
    /// which mail they can read.
    detect_codes: Vec<String>,
    problems: Vec<String>,
}

static EMPTY: LazyLock<Section> = LazyLock::new(Section::default);

impl Vocabulary {
    /// Parses and compiles the given (language, text) files.
    pub fn from_sources(sources: &[(&str, &str)]) -> Vocabulary {
        let mut raw: BTreeMap<String, Vec<Phrase>> = BTreeMap::new();
        let mut v = Vocabulary::default();
        for (lang, text) in sources {
            if !v.languages.iter().any(|l| l == lang) {
                v.languages.push((*lang).to_string());
            }
            if let Some(code) = declared_code(text)
                && !v.detect_codes.contains(&code)
            {
                v.detect_codes.push(code);
            }
            for (section, phrase) in parse(lang, text, &mut v.problems) {
                raw.entry(section).or_default().push(phrase);
            }
        }
        // Sources of all phrases, for `<section>` references.
        let sources_by_section: BTreeMap<String, Vec<String>> = raw
            .iter()
            .map(|(k, ps)| (k.clone(), ps.iter().map(|p| p.text.clone()).collect()))
            .collect();
        for (name, mut phrases) in raw {
            let mut alternatives = Vec::new();
            for p in &mut phrases {
                match compile(&p.text, &sources_by_section, 0) {
                    Ok(re) => {
                        alternatives.push(format!("(?:{re})"));
                        p.source = Some(re);
                    }
                    Err(e) => v.problems.push(format!(
                        "{}.txt line {}: [{name}] \"{}\": {e}",
                        p.language, p.line, p.text
                    )),
                }
            }
            let any = if alternatives.is_empty() {
                None
            } else {
                match Pattern::text(alternatives.join("|")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        v.problems.push(format!("[{name}]: {e}"));
                        None
                    }
                }
            };
            v.sections.insert(name, Section { phrases, any });
        }
        v
    }

    /// The built-in vocabularies plus `extra` (language, text) files.
    pub fn with(extra: &[(&str, &str)]) -> Vocabulary {
        let mut all: Vec<(&str, &str)> = BUILTIN.to_vec();
        all.extend_from_slice(extra);
        Vocabulary::from_sources(&all)
    }

    /// A section by name; an unknown name is an empty section (matches nothing).
    pub fn section(&self, name: &str) -> &Section {
        self.sections.get(name).unwrap_or(&EMPTY)
    }

    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.sections.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Language codes loaded, in order.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// ISO 639-3 codes of the languages loaded ("deu", "eng").
    pub fn detect_codes(&self) -> &[String] {
        &self.detect_codes
    }

    /// Every phrase against its examples: the phrases that miss one of
    /// theirs or match a counter-example, as messages naming file and line.
    pub fn check_examples(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for (name, section) in self.sections() {
            for p in &section.phrases {
                for ex in &p.examples {
                    if !p.is_match(&fold(ex)) {
                        wrong.push(format!(
                            "{}.txt line {}: [{name}] \"{}\" does not match its example \"{ex}\"",
                            p.language, p.line, p.text
                        ));
                    }
                }
                for ex in &p.counter_examples {
                    if p.is_match(&fold(ex)) {
                        wrong.push(format!(
                            "{}.txt line {}: [{name}] \"{}\" matches its counter-example \"{ex}\"",
                            p.language, p.line, p.text
                        ));
                    }
                }
            }
        }
        wrong
    }

    /// Lines that could not be read or compiled.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Does `section` occur in the folded text?
    pub fn is_match(&self, section: &str, folded: &str) -> bool {
        self.section(section).is_match(folded)
    }

    /// The first phrase of `section` (in file order) that occurs in `folded`.
    pub fn hit<'a>(&'a self, section: &str, folded: &str) -> Option<Hit<'a>> {
        let (name, s) = self.sections.get_key_value(section)?;
        if !s.is_match(folded) {
            return None;
        }
        s.phrases.iter().find_map(|p| {
            p.find(folded).map(|(start, end)| Hit {
                section: name,
                phrase: &p.text,
                language: &p.language,
                start,
                end,
            })
        })
    }
}

/// The `language xxx` line before the first section.
fn declared_code(text: &str) -> Option<String> {
    text.lines()
        .map(|l| strip_comment(l).trim())
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.strip_prefix("language "))
        .map(|c| c.trim().to_ascii_lowercase())
}

/// Reads one file into (section, phrase) pairs.
fn parse(lang: &str, text: &str, problems: &mut Vec<String>) -> Vec<(String, Phrase)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for (i, raw_line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_comment(raw_line).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            continue;
        }
        let Some(sec) = &section else {
            if line.starts_with("language ") {
                continue;
            }
            problems.push(format!(
                "{lang}.txt line {line_no}: a phrase before any [section]"
            ));
            continue;
        };
        let (phrase, examples, counter) = split_examples(line);
        if phrase.is_empty() {
            problems.push(format!(
                "{lang}.txt line {line_no}: no phrase before the example"
            ));
            continue;
        }
        if examples.is_empty() {
            problems.push(format!(
                "{lang}.txt line {line_no}: [{sec}] \"{phrase}\" has no example sentence"
            ));
        }
        out.push((
            sec.clone(),
            Phrase {
                language: lang.to_string(),
                text: phrase,
                examples,
                counter_examples: counter,
                line: line_no,
                source: None,
                regex: OnceLock::new(),
            },
        ));
    }
    out
}

/// `#` starts a comment unless it is inside an example's quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `phrase "example" "another" !"counter-example"`.
fn split_examples(line: &str) -> (String, Vec<String>, Vec<String>) {
    let Some(first) = line.find('"') else {
        return (line.trim().to_string(), Vec::new(), Vec::new());
    };
    let mut phrase = line[..first].trim_end();
    let mut negative_first = false;
    if let Some(p) = phrase.strip_suffix('!') {
        phrase = p.trim_end();
        negative_first = true;
    }
    let mut examples = Vec::new();
    let mut counter = Vec::new();
    let mut rest = &line[first..];
    let mut negative = negative_first;
    while let Some(open) = rest.find('"') {
        let before = rest[..open].trim();
        if before.ends_with('!') {
            negative = true;
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let ex = after[..close].to_string();
        if negative {
            counter.push(ex);
        } else {
            examples.push(ex);
        }
        negative = false;
        rest = &after[close + 1..];
    }
    (phrase.trim().to_string(), examples, counter)
}

/// One element of a phrase.
#[derive(Debug)]
enum Item {
    Pattern {
        re: String,
        optional: bool,
    },
    Gap(usize),
    /// `^`: the start of the sentence.
    Start,
    /// `$`: the end of the sentence.
    End,
}

/// Compiles phrase syntax into a regex (see `vocab/README.md`).
fn compile(
    phrase: &str,
    sections: &BTreeMap<String, Vec<String>>,
    depth: usize,
) -> Result<String, String> {
    if depth > 4 {
        return Err("<section> references nest too deep (or refer to themselves)".into());
    }
    let mut p = Parser {
        chars: phrase.chars().collect(),
        pos: 0,
        sections,
        depth,
        // `…` is syntax, not text: a gap must not make a German phrase use
        // the Unicode classes (a Unicode gap of 18 words is ≈ 1 MB of NFA
        // and 3 MB of regex, against ≈ 35 KB in ASCII).
        cls: if fold(phrase).chars().all(|c| c.is_ascii() || c == '…') {
            &ASCII
        } else {
            &UNICODE
        },
    };
    let re = p.sequence()?;
    if let Some(c) = p.peek() {
        return Err(format!("unexpected '{c}'"));
    }
    Ok(re)
}

/// Reads one phrase, character by character.
struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    sections: &'a BTreeMap<String, Vec<String>>,
    depth: usize,
    cls: &'static Classes,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_ellipsis(&self) -> bool {
        self.peek() == Some('…')
            || (self.peek() == Some('.') && self.chars.get(self.pos + 1) == Some(&'.'))
    }

    /// A sequence of items up to `|`, `)` or the end.
    fn sequence(&mut self) -> Result<String, String> {
        let mut items: Vec<Item> = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else { break };
            if c == '|' || c == ')' {
                break;
            }
            let item = if self.at_ellipsis() {
                self.pos += if c == '…' { 1 } else { 3 };
                let mut digits = String::new();
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    digits.push(d);
                    self.pos += 1;
                }
                Item::Gap(digits.parse().unwrap_or(DEFAULT_GAP))
            } else if c == '^' {
                self.pos += 1;
                Item::Start
            } else if c == '$' {
                self.pos += 1;
                Item::End
            } else {
                let re = self.atom()?;
                let optional = self.peek() == Some('?');
                if optional {
                    self.pos += 1;
                }
                Item::Pattern { re, optional }
            };
            items.push(item);
        }
        if items.is_empty() {
            return Err("an empty phrase or alternative".into());
        }
        Ok(join(&items, self.cls))
    }

    fn atom(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let mut alts = vec![self.sequence()?];
                while self.peek() == Some('|') {
                    self.pos += 1;
                    alts.push(self.sequence()?);
                }
                if self.peek() != Some(')') {
                    return Err("a '(' without ')'".into());
                }
                self.pos += 1;
                Ok(format!("(?:{})", alts.join("|")))
            }
            Some('<') => {
                let start = self.pos + 1;
                let end = self.chars[start..]
                    .iter()
                    .position(|&c| c == '>')
                    .map(|i| start + i)
                    .ok_or("a '<' without '>'")?;
                let name: String = self.chars[start..end].iter().collect();
                self.pos = end + 1;
                if name == "n" {
                    return Ok(format!("{b}[0-9]{{1,3}}{b}", b = self.cls.boundary));
                }
                let phrases = self
                    .sections
                    .get(&name)
                    .ok_or_else(|| format!("no section [{name}] for <{name}>"))?;
                let mut alts = Vec::new();
                for p in phrases {
                    alts.push(compile(p, self.sections, self.depth + 1)?);
                }
                Ok(format!("(?:{})", alts.join("|")))
            }
            _ => self.word(),
        }
    }

    /// A word, folded like the text it is matched against; `*` at either end
    /// allows more letters there ("absag*" matches "absagen", "Absage").
    fn word(&mut self) -> Result<String, String> {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "()|<>?…^$".contains(c) || self.at_ellipsis() {
                break;
            }
            w.push(c);
            self.pos += 1;
        }
        if w.is_empty() {
            return Err(match self.peek() {
                Some(c) => format!("unexpected '{c}'"),
                None => "a phrase ends too early".into(),
            });
        }
        let open_start = w.starts_with('*');
        let open_end = w.ends_with('*') && w.len() > 1;
        let core = fold(w.trim_matches('*'));
        if core.is_empty() {
            return Err("a '*' without letters".into());
        }
        let cls = self.cls;
        let first_word = core.chars().next().is_some_and(char::is_alphanumeric);
        let last_word = core.chars().last().is_some_and(char::is_alphanumeric);
        let mut re = String::new();
        if open_start {
            re.push_str(cls.letters);
        } else if first_word {
            re.push_str(cls.boundary);
        }
        re.push_str(&regex::escape(&core));
        if open_end {
            re.push_str(cls.letters);
        } else if last_word {
            re.push_str(cls.boundary);
        }
        Ok(re)
    }
}

/// Joins items with separators: `a b? c` → `a SEP (?:b SEP)? c`.
fn join(items: &[Item], cls: &Classes) -> String {
    let (sep_re, gap_word) = (cls.sep, cls.gap_word);
    let mut out = String::new();
    let mut need_sep = false;
    let mut gap: Option<usize> = None;
    let sep = |gap: Option<usize>| match gap {
        Some(n) => format!("(?:{sep_re}{gap_word}){{0,{n}}}{sep_re}"),
        None => sep_re.to_string(),
    };
    // Words a gap at the end (before `$`, or closing a group) may add.
    let trailing = |gap: Option<usize>| match gap {
        Some(n) => format!("(?:{sep_re}{gap_word}){{0,{n}}}"),
        None => String::new(),
    };
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Gap(n) => gap = Some(gap.unwrap_or(0) + n),
            Item::Start => {
                out.push('^');
                out.push_str(cls.nonword);
                need_sep = false;
                gap = None;
            }
            Item::End => {
                out.push_str(&trailing(gap.take()));
                out.push_str(cls.nonword);
                out.push('$');
            }
            Item::Pattern { re, optional } => {
                let required_later = items[i + 1..].iter().any(|it| {
                    matches!(
                        it,
                        Item::Pattern {
                            optional: false,
                            ..
                        }
                    )
                });
                if !optional {
                    if need_sep {
                        out.push_str(&sep(gap.take()));
                    }
                    out.push_str(re);
                    need_sep = true;
                } else if required_later {
                    if need_sep {
                        out.push_str(&sep(gap.take()));
                    }
                    out.push_str(&format!("(?:{re}{sep_re})?"));
                    need_sep = false;
                } else {
                    let s = if need_sep {
                        sep(gap.take())
                    } else {
                        String::new()
                    };
                    out.push_str(&format!("(?:{s}{re})?"));
                }
            }
        }
    }
    out.push_str(&trailing(gap));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(section: &str, text: &str) -> Vocabulary {
        Vocabulary::from_sources(&[("xx", &format!("[{section}]\n{text}\n"))])
    }

    #[test]
    fn every_builtin_phrase_compiles_and_matches_its_examples() {
        let v = &*BUILTIN_VOCABULARY;
        assert!(v.problems().is_empty(), "{:#?}", v.problems());
        let count: usize = v.sections().map(|(_, s)| s.phrases.len()).sum();
        assert!(count > 100, "only {count} phrases loaded");
        let wrong = v.check_examples();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn latin_phrases_compile_to_ascii_classes_even_with_gaps() {
        // Unicode classes in a gap of 18 words cost ≈ 3 MB per regex; the
        // built-in files, all Latin once folded, must never pay that.
        for (name, section) in BUILTIN_VOCABULARY.sections() {
            for p in &section.phrases {
                let src = p.source.as_deref().unwrap_or_default();
                assert!(
                    !src.contains(r"\p{L}"),
                    "{}.txt line {}: [{name}] \"{}\" compiled with Unicode classes",
                    p.language,
                    p.line,
                    p.text
                );
            }
        }
        let v = one("s", "sage … ab \"x\"");
        assert!(
            !v.section("s").phrases[0]
                .source
                .as_deref()
                .unwrap_or_default()
                .contains(r"\p{L}")
        );
        let v = one("s", "скажу … нет \"x\"");
        assert!(
            v.section("s").phrases[0]
                .source
                .as_deref()
                .unwrap_or_default()
                .contains(r"\p{L}")
        );
    }

    #[test]
    fn words_are_whole_unless_starred() {
        let v = one("s", "absag* \"Absage\"");
        assert!(v.is_match("s", "leider muss ich absagen"));
        assert!(!v.is_match("s", "die nachricht kam abends"));
        let v = one("s", "komme \"komme\"");
        assert!(v.is_match("s", "ich komme."));
        assert!(!v.is_match("s", "willkommen"));
        let v = one("s", "*rollstuhl* \"x\"");
        assert!(v.is_match("s", "mit elektrorollstuhlfahrerin"));
    }

    #[test]
    fn gaps_stay_in_the_sentence() {
        let v = one("s", "sage … ab \"x\"");
        assert!(v.is_match("s", "ich sage hiermit fuer freitag ab"));
        assert!(v.is_match("s", "ich sage ab"));
        assert!(!v.is_match("s", "ich sage es. ab morgen"));
        let v = one("s", "sage …2 ab \"x\"");
        assert!(!v.is_match("s", "ich sage hiermit fuer freitag ab"));
        assert!(v.is_match("s", "ich sage hiermit wohl ab"));
    }

    #[test]
    fn groups_optionals_classes_and_anchors() {
        let v = Vocabulary::from_sources(&[(
            "xx",
            "[who]\n(mich|uns) \"mich\"\n[s]\nstreichen sie? <who> \"x\"\n^ja$ \"ja\"\n",
        )]);
        assert!(v.is_match("s", "bitte streichen sie mich"));
        assert!(v.is_match("s", "bitte streichen uns"));
        assert!(!v.is_match("s", "bitte streichen sie die liste"));
        assert!(v.is_match("s", "ja!"));
        assert!(!v.is_match("s", "ja, gerne"));
        let hit = v.hit("s", "streichen sie uns").expect("hit");
        assert_eq!((hit.phrase, hit.language), ("streichen sie? <who>", "xx"));
    }

    #[test]
    fn umlauts_in_phrases_are_folded() {
        let v = one("s", "möchte (kommen|teilnehmen) \"x\"");
        assert!(v.is_match("s", &fold("Ich möchte teilnehmen")));
        assert!(v.is_match("s", &fold("ich moechte kommen")));
    }

    #[test]
    fn bad_lines_are_reported_not_fatal() {
        let v = Vocabulary::from_sources(&[(
            "xx",
            "before \"x\"\n[s]\n(open \"x\"\nno example\n<nope> \"x\"\nok \"ok\"\n",
        )]);
        assert_eq!(v.problems().len(), 4, "{:#?}", v.problems());
        assert!(v.is_match("s", "ok"));
        assert!(!v.is_match("unknown", "ok"));
    }

    #[test]
    fn examples_and_counter_examples_are_read() {
        let (p, ex, counter) =
            split_examples(r#"komme … nicht  "Ich komme nicht." !"Ich komme nicht allein.""#);
        assert_eq!(p, "komme … nicht");
        assert_eq!(ex, vec!["Ich komme nicht."]);
        assert_eq!(counter, vec!["Ich komme nicht allein."]);
    }
}
