//! Plain-text helpers shared by the understanding step: cleaning decoded text,
//! "folding" it for tolerant comparison (case, umlauts, diacritics), tokens and
//! sentences, splitting a body into the writer's own words, the signature, the
//! quoted part and a forwarded message. Pure string functions; this module
//! knows nothing about conferences or commands.

use regex::Regex;

use super::pattern::Pattern;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Longest body text we look at; registrations are short, and this keeps every
/// regex pass linear and cheap even for a 30 MB mail.
pub const MAX_TEXT: usize = 64 * 1024;

/// The characters of `s` in NFC. Most text (all ASCII, nearly all German)
/// is in NFC already; the quick check finds that without the composing
/// iterator, which costs more per character than the rest of understanding's
/// text handling.
fn nfc(s: &str) -> Box<dyn Iterator<Item = char> + '_> {
    if is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Box::new(s.chars())
    } else {
        Box::new(s.nfc())
    }
}

/// NFC-normalises, turns exotic spaces into plain ones, drops zero-width and
/// control characters (except newline and tab) and unifies line endings.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT * 2));
    for c in nfc(s) {
        match c {
            '\r' => {}
            '\n' | '\t' => out.push(c),
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => {
                out.push(' ')
            }
            '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' | '\u{fffc}' => {}
            '\u{2028}' | '\u{2029}' => out.push('\n'),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
        if out.len() > MAX_TEXT {
            break;
        }
    }
    out
}

/// A single line for a field value: no control characters at all (so never a
/// CR or LF), whitespace collapsed, trimmed, bounded in length.
pub fn one_line(s: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in nfc(s) {
        if c.is_whitespace() || c.is_control() || ('\u{200b}'..='\u{200d}').contains(&c) {
            space = true;
            continue;
        }
        if c == '\0' || c == '\u{feff}' || c == '\u{ad}' || c == '\u{fffd}' {
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
        if out.len() > 200 {
            break;
        }
    }
    out
}

/// Lowercases and removes diacritics so that "Größmann", "Groessmann" and
/// "GROESSMANN" compare equal: German umlauts become ae/oe/ue/ss, other marks
/// are dropped (ş→s, ł→l, ı→i), typographic quotes and dashes become ASCII.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in nfc(s) {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'ı' => out.push('i'),
            'ł' | 'Ł' => out.push('l'),
            'ø' | 'Ø' => out.push('o'),
            'đ' | 'Đ' => out.push('d'),
            'æ' | 'Æ' => out.push_str("ae"),
            '„' | '“' | '”' | '«' | '»' | '‟' => out.push('"'),
            '‘' | '’' | '‚' | '‛' | '`' | '´' => out.push('\''),
            '–' | '—' | '‐' | '‑' | '−' => out.push('-'),
            '\u{a0}' | '\u{202f}' => out.push(' '),
            // Its own decomposition, no mark, one lowercase letter.
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            _ => {
                for d in c.nfd() {
                    if !is_combining_mark(d) {
                        out.extend(d.to_lowercase());
                    }
                }
            }
        }
    }
    out
}

/// Folded alphanumeric tokens ("LIP-Dialogrunde 2.0" → lip, dialogrunde, 2, 0).
pub fn tokens(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Tokens for tolerant name matching: folded, and with "ae/oe/ue" read as
/// "a/o/u", so that "Munchen", "Muenchen" and "München" all match.
pub fn match_tokens(s: &str) -> Vec<String> {
    tokens(s).into_iter().map(|t| loose(&t)).collect()
}

/// "ae/oe/ue" → "a/o/u" in a folded token.
pub fn loose(t: &str) -> String {
    if !(t.contains("ae") || t.contains("oe") || t.contains("ue")) {
        return t.to_string();
    }
    t.replace("ae", "a").replace("oe", "o").replace("ue", "u")
}

/// Edit distance of two short strings, a swap of neighbours counting as one
/// edit ("Gesundhiet"), for typos in workshop titles.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 3 || a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Index of the first text token where the token sequence `pat` starts.
/// Tolerant of how people glue or split words: "LIP2.0" matches "LIP 2.0",
/// "Fishbowldiskussion" matches "Fishbowl Diskussion", and a German
/// inflection of up to two letters on the last word is accepted
/// ("Migrationskonferenzen").
pub fn find_seq(text: &[String], pat: &[String]) -> Option<usize> {
    if pat.is_empty() {
        return None;
    }
    let whole: String = pat.concat();
    let last_len = pat.last().map_or(0, |t| t.chars().count());
    for i in 0..text.len() {
        let mut acc = String::new();
        for tok in &text[i..] {
            acc.push_str(tok);
            if acc == whole {
                return Some(i);
            }
            if acc.len() > whole.len() {
                // Inflection tolerance only for a real word as the last part.
                if last_len >= 5
                    && acc.starts_with(&whole)
                    && acc.len() - whole.len() <= 2
                    && acc[whole.len()..].chars().all(|c| c.is_alphabetic())
                {
                    return Some(i);
                }
                break;
            }
            if !whole.starts_with(&acc) {
                break;
            }
        }
    }
    None
}

/// Splits text into sentences: at `.`, `!`, `?` followed by white space, at
/// blank lines and before list items. Single line breaks inside a paragraph
/// are joined, because mail clients wrap long lines.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let push = |cur: &mut String, out: &mut Vec<String>| {
        let t = cur.trim();
        if !t.is_empty() {
            out.push(t.to_string());
        }
        cur.clear();
    };
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || is_list_item(l) {
            push(&mut cur, &mut out);
        }
        if l.is_empty() {
            continue;
        }
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            cur.push(c);
            if matches!(c, '.' | '!' | '?') {
                match chars.peek() {
                    Some(n) if n.is_whitespace() => {
                        // "15. Oktober", "Nr. 2": a dot after a number or a short
                        // abbreviation does not end a sentence.
                        let last_word: String = cur
                            .trim_end_matches(['.', '!', '?'])
                            .rsplit(|ch: char| ch.is_whitespace() || ch == '-' || ch == '(')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        // "am 15. Oktober", "der 3. Workshop" go on; "Workshop 1. Gibt es" ends.
                        let next_word: String = chars
                            .clone()
                            .skip_while(|ch| ch.is_whitespace())
                            .take_while(|ch| ch.is_alphanumeric())
                            .collect();
                        let number_goes_on = next_word.starts_with(|ch: char| ch.is_lowercase())
                            || MONTHS.contains(&fold(&next_word).as_str())
                            || next_word.chars().all(|ch| ch.is_ascii_digit());
                        let abbreviation = c == '.'
                            && ((!last_word.is_empty()
                                && last_word.chars().all(|ch| ch.is_ascii_digit())
                                && number_goes_on)
                                || ABBREVIATIONS.contains(&fold(&last_word).as_str()));
                        if !abbreviation {
                            push(&mut cur, &mut out);
                        }
                    }
                    None => push(&mut cur, &mut out),
                    _ => {}
                }
            }
        }
        // A line ending in ':' or ',' or a short greeting line ends a thought.
        if l.ends_with(':') || (l.ends_with(',') && l.chars().count() < 40) {
            push(&mut cur, &mut out);
        } else {
            cur.push(' ');
        }
    }
    push(&mut cur, &mut out);
    out
}

const MONTHS: &[&str] = &[
    "januar",
    "februar",
    "maerz",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "dezember",
    "jan",
    "feb",
    "mrz",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "okt",
    "oct",
    "nov",
    "dez",
    "dec",
    "workshop",
    "dialogrunde",
    "stock",
    "etage",
    "obergeschoss",
    "og",
];

const ABBREVIATIONS: &[&str] = &[
    "nr", "dr", "prof", "z", "b", "u", "a", "bzw", "ca", "str", "tel", "no", "e", "v", "ggf",
    "evtl", "inkl", "ws", "hr", "fr", "mr", "mrs", "ms", "st", "vgl", "d", "h", "usw", "etc",
];

pub fn is_list_item(line: &str) -> bool {
    static RE: Pattern = Pattern::new(|| {
        Regex::new(r"^\s*(?:\d{1,2}\s*[.)]|\(\d{1,2}\)|[-*•·–▪◦]|[a-eA-E]\))\s+\S").expect("regex")
    });
    RE.is_match(line)
}

/// The pieces of a mail body that matter for deciding what it means.
#[derive(Debug, Default, Clone)]
pub struct Body {
    /// What the writer typed in this mail (greeting, text, sign-off, name).
    pub own: String,
    /// A `-- ` signature block or what follows a phone's "Sent from" line.
    pub signature: String,
    /// A forwarded message inside the body, if any.
    pub forwarded: Option<Forwarded>,
}

#[derive(Debug, Default, Clone)]
pub struct Forwarded {
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub text: String,
}

static ATTRIBUTION: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)^\s*(?:am|on|le|el|il|op|w dniu|dnia)\b.{0,250}\b(?:schrieb|wrote|geschrieben|a écrit|escribió|ha scritto|schreef|napisał|napisała|yazdı)\b.{0,120}:?\s*$",
    )
    .expect("regex")
});
static ATTRIBUTION_END: Pattern = Pattern::new(|| {
    Regex::new(r"(?i)(?:\bschrieb|\bwrote|\bgeschrieben|\ba écrit|\byazdı)(?:\s+\S+){0,6}\s*:\s*$")
        .expect("regex")
});
static ATTRIBUTION_START: Pattern =
    Pattern::new(|| Regex::new(r"(?i)^\s*(?:am|on|le|el)\s+\S").expect("regex"));
static ORIGINAL_MESSAGE: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)^\s*[-_=*]{2,}\s*(?:ursprüngliche nachricht|original message|original-nachricht|originalnachricht|originale nachricht|message d'origine|orijinal ileti)\s*[-_=*]{2,}\s*$",
    )
    .expect("regex")
});
static FORWARD_MARKER: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)^\s*(?:[-_=*>]{2,}\s*(?:forwarded message|weitergeleitete nachricht|weitergeleitete e-mail|weitergeleitete mail|forwarded e-?mail|message transféré|iletilen ileti)\s*[-_=*<]{2,}|(?:begin forwarded message|anfang der weitergeleiteten (?:nachricht|e-mail)|forwarded message)\s*:?)\s*$",
    )
    .expect("regex")
});
static HEADER_LINE: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)^\s*\**\s*(von|from|gesendet|sent|datum|date|an|to|cc|betreff|subject|antwort an|reply-to)\s*:\**\s*(.*)$",
    )
    .expect("regex")
});
static MOBILE_SIGNATURE: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)^\s*(?:von meinem \S+.{0,40}gesendet|gesendet (?:von|mit|vom) (?:meinem|meiner|der|\S*mail|outlook|samsung|yahoo|gmx|web\.de|t-online).{0,60}|sent from (?:my|mail|outlook|yahoo|samsung).{0,60}|sent with .{0,40}|get outlook for .{0,30}|outlook für \S+ (?:beziehen|herunterladen)|diese (?:e-mail|nachricht) wurde (?:von|mit) .{0,60}(?:gesendet|versendet|verschickt)\.?|envoyé de mon .{0,40}|iphone'umdan gönderildi|wysłane z .{0,40})\s*$",
    )
    .expect("regex")
});

/// Splits a decoded body into the writer's own text, signature and a
/// forwarded message. `forward_subject` tells that the subject says "Fwd:",
/// which turns an Outlook header block into a forward instead of a quote.
pub fn split_body(text: &str, forward_subject: bool, reply_subject: bool) -> Body {
    let lines: Vec<&str> = text.lines().collect();
    let mut body = Body::default();
    let mut own: Vec<&str> = Vec::new();
    let mut signature: Vec<&str> = Vec::new();
    let mut in_signature = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if FORWARD_MARKER.is_match(line) {
            body.forwarded = Some(parse_forwarded(&lines[i + 1..]));
            break;
        }
        // A "Von: … Betreff: …" block quotes or forwards a mail; at the very
        // top of a mail that is neither a reply nor a forward it is a web form.
        let has_own = own.iter().any(|l| !l.trim().is_empty());
        if let Some(skip) = outlook_header_block(&lines, i)
            && (has_own || forward_subject || reply_subject)
        {
            if forward_subject && own_is_short(&own) {
                body.forwarded = Some(parse_forwarded(&lines[i + skip..]));
            }
            break;
        }
        let attribution_lines =
            if ATTRIBUTION.is_match(line) || (ATTRIBUTION_END.is_match(line) && t.len() < 300) {
                1
            } else if ATTRIBUTION_START.is_match(line)
                && t.len() < 200
                && t.chars().any(|c| c.is_ascii_digit())
                && lines
                    .get(i + 1)
                    .is_some_and(|n| ATTRIBUTION_END.is_match(n))
            {
                2
            } else {
                0
            };
        if attribution_lines > 0 {
            // Bottom-posting: nothing written yet and a '>' quote follows, so
            // the writer's words come after the quote.
            let has_own = own.iter().any(|l| !l.trim().is_empty());
            let quote_follows = lines[i + attribution_lines..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with('>'));
            if !has_own && !in_signature && quote_follows {
                i += attribution_lines;
                continue;
            }
            break;
        }
        if ORIGINAL_MESSAGE.is_match(line) {
            // "-----Original Message-----" in a mail whose subject says
            // "WG:"/"Fwd:" introduces a forwarded mail, not a quote.
            if forward_subject && own_is_short(&own) {
                body.forwarded = Some(parse_forwarded(&lines[i + 1..]));
            }
            break;
        }
        if t.starts_with('>') || t.starts_with('|') && own.is_empty() {
            i += 1;
            continue;
        }
        if line == "-- " || t == "--" || t == "—" || t == "__" {
            in_signature = true;
            i += 1;
            continue;
        }
        if MOBILE_SIGNATURE.is_match(line) {
            in_signature = true;
            i += 1;
            continue;
        }
        if in_signature {
            signature.push(line);
        } else {
            own.push(line);
        }
        i += 1;
    }
    body.own = own.join("\n").trim().to_string();
    body.signature = signature.join("\n").trim().to_string();
    body
}

fn own_is_short(own: &[&str]) -> bool {
    own.iter().map(|l| l.trim().len()).sum::<usize>() < 2000
}

/// An Outlook/Exchange quote header ("Von: … Gesendet: … An: … Betreff: …",
/// possibly after a line of underscores). Returns how many lines the separator
/// line takes (0 or 1) so the caller can read the header block.
fn outlook_header_block(lines: &[&str], i: usize) -> Option<usize> {
    let t = lines[i].trim();
    let (start, sep) = if t.len() >= 10 && t.chars().all(|c| c == '_' || c == '-') {
        (i + 1, 1)
    } else {
        (i, 0)
    };
    let first = lines.get(start)?;
    let caps = HEADER_LINE.captures(first)?;
    let key = caps
        .get(1)
        .map(|m| m.as_str().to_lowercase())
        .unwrap_or_default();
    if key != "von" && key != "from" {
        return None;
    }
    let more = lines[start + 1..]
        .iter()
        .take(5)
        .filter(|l| {
            HEADER_LINE.captures(l).is_some_and(|c| {
                let k = c
                    .get(1)
                    .map(|m| m.as_str().to_lowercase())
                    .unwrap_or_default();
                matches!(
                    k.as_str(),
                    "gesendet" | "sent" | "datum" | "date" | "an" | "to" | "betreff" | "subject"
                )
            })
        })
        .count();
    if more >= 1 { Some(sep) } else { None }
}

fn parse_forwarded(lines: &[&str]) -> Forwarded {
    let mut fwd = Forwarded::default();
    let mut i = 0;
    // Leading blank lines, then "Key: value" lines up to the first blank line.
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let mut seen_header = false;
    while i < lines.len() {
        let l = lines[i].trim_start_matches('>').trim();
        if l.is_empty() {
            if seen_header {
                i += 1;
                break;
            }
            i += 1;
            continue;
        }
        match HEADER_LINE.captures(l) {
            Some(c) => {
                seen_header = true;
                let key = c
                    .get(1)
                    .map(|m| m.as_str().to_lowercase())
                    .unwrap_or_default();
                let value = c.get(2).map(|m| m.as_str().trim()).unwrap_or("");
                match key.as_str() {
                    "von" | "from" => {
                        let (name, addr) = parse_address_text(value);
                        fwd.from_name = name;
                        fwd.from_address = addr;
                    }
                    "betreff" | "subject" => fwd.subject = Some(value.to_string()),
                    _ => {}
                }
            }
            None if seen_header && fwd.from_address.is_none() => {
                // A wrapped "From:" line ("Name\n<addr>") continues here.
                let (_, addr) = parse_address_text(l);
                if addr.is_some() {
                    fwd.from_address = addr;
                } else {
                    break;
                }
            }
            None => break,
        }
        i += 1;
    }
    let rest: Vec<&str> = lines[i.min(lines.len())..]
        .iter()
        .map(|l| {
            l.strip_prefix("> ")
                .or_else(|| l.strip_prefix('>'))
                .unwrap_or(l)
        })
        .collect();
    fwd.text = rest.join("\n");
    fwd
}

static ADDRESS: Pattern = Pattern::new(|| {
    Regex::new(r"[A-Za-z0-9._%+'=-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
        .expect("regex")
});

/// All e-mail addresses in a text, lowercased, in order, without duplicates.
pub fn addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in ADDRESS.find_iter(text) {
        let a = m.as_str().trim_matches('.').to_lowercase();
        if a.contains('@') && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// All e-mail addresses in a text as written (case kept), without duplicates.
pub fn addresses_as_written(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in ADDRESS.find_iter(text) {
        let a = m.as_str().trim_matches('.').to_string();
        if a.contains('@') && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// `Fatma Demir <fatma@x.de>`, `Fatma Demir [mailto:fatma@x.de]`, `fatma@x.de`.
pub fn parse_address_text(value: &str) -> (Option<String>, Option<String>) {
    let addr = addresses(value).into_iter().next();
    let name = value
        .split(['<', '['])
        .next()
        .map(|n| n.trim().trim_matches(['"', '\'', '*']).trim())
        .filter(|n| !n.is_empty() && !n.contains('@'))
        .map(one_line);
    (name, addr)
}

/// Removes "Re:", "AW:", "Fwd:", "WG:" … prefixes (repeatedly) and tags like `[EXT]`.
pub fn strip_subject_prefixes(subject: &str) -> (String, bool, bool) {
    static PREFIX: Pattern = Pattern::new(|| {
        Regex::new(r"(?i)^\s*(?:(re|aw|antw|antwort|sv|vs|odp|r|rif|ynt|cevap|fwd?|wg|wtr|tr|enc|rv|i|doorst|weiterleitung|pd|ilt)\s*(?:\[\d+\])?\s*:|\[[^\]]{0,30}\])\s*")
            .expect("regex")
    });
    let mut s = subject.trim().to_string();
    let mut reply = false;
    let mut forward = false;
    for _ in 0..10 {
        let Some(c) = PREFIX.captures(&s) else { break };
        let whole = c.get(0).map_or(0, |m| m.end());
        if let Some(p) = c.get(1) {
            let p = p.as_str().to_lowercase();
            if matches!(
                p.as_str(),
                "fw" | "fwd"
                    | "wg"
                    | "wtr"
                    | "tr"
                    | "enc"
                    | "rv"
                    | "i"
                    | "doorst"
                    | "weiterleitung"
                    | "pd"
                    | "ilt"
            ) {
                forward = true;
            } else {
                reply = true;
            }
        }
        s = s[whole..].to_string();
    }
    (s, reply, forward)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokens(s)
    }

    fn contains_seq(text: &[String], pat: &[String]) -> bool {
        find_seq(text, pat).is_some()
    }

    #[test]
    fn fold_handles_umlauts_and_diacritics() {
        assert_eq!(fold("Jürgen Größmann"), "juergen groessmann");
        assert_eq!(fold("Ayşe Yılmaz"), "ayse yilmaz");
        assert_eq!(fold("Małgorzata"), "malgorzata");
        // decomposed umlaut from Apple Mail
        assert_eq!(fold("Ju\u{308}rgen"), "juergen");
    }

    #[test]
    fn seq_matching_is_tolerant() {
        assert!(contains_seq(
            &toks("Anmeldung LIP2.0 bitte"),
            &toks("LIP 2.0")
        ));
        assert!(contains_seq(
            &toks("zur Fishbowldiskussion"),
            &toks("Fishbowl-Diskussion")
        ));
        assert!(contains_seq(
            &toks("die Migrationskonferenzen"),
            &toks("Migrationskonferenz")
        ));
        assert!(!contains_seq(&toks("lips"), &toks("LIP")));
        assert!(!contains_seq(&toks("Miko"), &toks("MiKo 2027")));
    }

    #[test]
    fn loose_matching_and_typos() {
        assert_eq!(match_tokens("München"), match_tokens("Munchen"));
        assert_eq!(match_tokens("Muenchen"), match_tokens("Munchen"));
        assert_eq!(
            edit_distance("antidiskriminierung", "antidiskrimminierung"),
            1
        );
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("gesundhiet", "gesundheit"), 1);
    }

    #[test]
    fn one_line_never_keeps_line_breaks() {
        assert_eq!(one_line("Evil\r\nBcc: x@y"), "Evil Bcc: x@y");
        assert_eq!(one_line("  a \t b "), "a b");
    }

    #[test]
    fn split_body_drops_quotes_and_keeps_signature() {
        let b = split_body(
            "abmelden\n\nAm 07.09.2027 um 21:41 schrieb anmeldung@example.org:\n> Anmeldung\n",
            false,
            true,
        );
        assert_eq!(b.own, "abmelden");
        let b = split_body("Hallo\n-- \nFatma Demir\nVerein e.V.\n> x", false, false);
        assert_eq!(b.own, "Hallo");
        assert_eq!(b.signature, "Fatma Demir\nVerein e.V.");
        let b = split_body(
            "Danke\n\nOn Mon, Sep 6, 2027 at 10:00 AM Anmeldung <\nanmeldung@example.org> wrote:\n> hi",
            false,
            true,
        );
        assert_eq!(b.own, "Danke");
        let b = split_body(
            "Absage.\n\n________________________________\nVon: Anmeldung <a@b.de>\nGesendet: Montag\nAn: x\nBetreff: y\n\nText",
            false,
            true,
        );
        assert_eq!(b.own, "Absage.");
    }

    #[test]
    fn split_body_reads_bottom_posting() {
        let b = split_body(
            "Am 07.09.2027 um 21:41 schrieb anmeldung@example.org:\n> Ihre Anmeldung\n> ist da.\n\nBitte streichen Sie mich.\n",
            false,
            true,
        );
        assert_eq!(b.own, "Bitte streichen Sie mich.");
    }

    #[test]
    fn split_body_finds_forwards() {
        let b = split_body(
            "FYI\n\n---------- Forwarded message ---------\nFrom: Fatma Demir <fatma@example.com>\nDate: Mon\nSubject: Anmeldung\nTo: info@x.de\n\nIch melde mich an.\n",
            true,
            false,
        );
        let f = b.forwarded.expect("forward");
        assert_eq!(f.from_address.as_deref(), Some("fatma@example.com"));
        assert_eq!(f.from_name.as_deref(), Some("Fatma Demir"));
        assert_eq!(f.text.trim(), "Ich melde mich an.");
        assert_eq!(b.own, "FYI");
    }

    #[test]
    fn sentences_split_and_keep_question_marks() {
        let s =
            sentences("Hallo,\nich melde mich an. Gibt es\nParkplätze? Am 15. Oktober komme ich.");
        assert_eq!(
            s,
            vec![
                "Hallo,",
                "ich melde mich an.",
                "Gibt es Parkplätze?",
                "Am 15. Oktober komme ich."
            ]
        );
    }

    #[test]
    fn subject_prefixes() {
        let (s, r, f) = strip_subject_prefixes("AW: WG: [EXT] Anmeldung");
        assert_eq!(s, "Anmeldung");
        assert!(r && f);
    }
}
