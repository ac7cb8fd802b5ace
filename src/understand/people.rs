//! Finds the people in a mail: the writer's name (display name, sign-off,
//! "Mein Name ist …"), their organisation (signature lines with "e.V.",
//! "GmbH", "Stadt …"), companions and party size ("mit zwei
//! Begleitpersonen", "wir kommen zu dritt", "ich bringe Frau Demir mit"),
//! group lists ("1. … 2. …"), and the fields of web-form mails. Every value it
//! returns is a single clean line: never a CR/LF, a phone number or a street.

use regex::Regex;

use super::pattern::Pattern;

use super::text::{self, fold, one_line};

const PARTICLES: &[&str] = &[
    "von", "van", "der", "den", "de", "da", "di", "del", "della", "la", "le", "al", "el", "bin",
    "ibn", "binti", "zu", "ter", "ten", "y", "dos", "du", "vom", "zum", "ben", "abu", "ul", "ud",
];

const TITLES: &[&str] = &[
    "dr", "prof", "dipl", "ing", "mag", "frau", "herr", "herrn", "mr", "mrs", "ms", "miss", "pd",
    "med", "phil", "rer", "nat", "jun", "sen",
];

/// Words that are never part of a person's name.
const NOT_NAME: &[&str] = &[
    "hallo",
    "hello",
    "hi",
    "hey",
    "liebe",
    "lieber",
    "dear",
    "sehr",
    "geehrte",
    "geehrter",
    "damen",
    "herren",
    "team",
    "anmeldung",
    "anmeldungen",
    "registration",
    "info",
    "infos",
    "information",
    "kontakt",
    "contact",
    "office",
    "buero",
    "sekretariat",
    "verwaltung",
    "gruesse",
    "gruessen",
    "gruss",
    "regards",
    "danke",
    "vielen",
    "dank",
    "thanks",
    "thank",
    "best",
    "kind",
    "mit",
    "freundlichen",
    "viele",
    "beste",
    "herzliche",
    "sincerely",
    "yours",
    "workshop",
    "workshops",
    "konferenz",
    "conference",
    "ich",
    "wir",
    "familie",
    "family",
    "fam",
    "bitte",
    "please",
    "personen",
    "person",
    "teilnehmer",
    "teilnehmerin",
    "name",
    "email",
    "mail",
    "organisation",
    "organization",
    "telefon",
    "tel",
    "mobil",
    "fax",
    "adresse",
    "strasse",
    "newsletter",
    "noreply",
    "support",
    "admin",
    "mailer",
    "daemon",
    "postmaster",
    "webmaster",
    "wordpress",
    "formular",
    "kontaktformular",
    "iphone",
    "ipad",
    "android",
    "outlook",
    "gesendet",
    "sent",
    "betreff",
    "subject",
    "schrieb",
    "wrote",
    "und",
    "and",
    "oder",
    "or",
    "fuer",
    "for",
    "the",
    "die",
    "das",
    "ein",
    "eine",
    "einen",
    "zur",
    "zum",
    "im",
    "am",
    "um",
    "an",
    "auf",
    "aus",
    "bei",
    "dialogrunde",
    "dialogrunden",
    "runde",
    "thema",
    "vegetarisch",
    "vegan",
    "rollstuhl",
    "kinderbetreuung",
    "begleitperson",
    "begleitpersonen",
    "kollegin",
    "kollege",
    "kollegen",
    "kolleginnen",
    "colleague",
    "migrationskonferenz",
    "fishbowl",
    "ja",
    "nein",
    "yes",
    "no",
    "ok",
    "lg",
    "vg",
    "mfg",
    "cheers",
    "regards",
    "hiermit",
    "anbei",
    "sg",
    "cc",
    "fyi",
    "ps",
    "pps",
    "sorry",
    "leider",
    "gerne",
    "gern",
    "noch",
    "auch",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonntag",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "diskussion",
    "discussion",
    "auftakt",
    "event",
    "veranstaltung",
    "bildung",
    "sprache",
    "jugend",
    "wirtschaft",
    "wohnen",
    "gesundheit",
    "sport",
    "kultur",
    "arbeit",
    "ausbildung",
    "pflege",
    "teilhabe",
    "antidiskriminierung",
    "gremien",
    "hannover",
    "deutschland",
    "germany",
    "inhaber",
    "geschaeftsfuehrer",
    "geschaeftsfuehrerin",
    "vorsitzende",
    "vorsitzender",
    "leitung",
    "projektleitung",
    "koordination",
    "koordinatorin",
    "koordinator",
    "referentin",
    "referent",
    "sachbearbeiterin",
    "sachbearbeiter",
    "mitarbeiterin",
    "mitarbeiter",
    "beauftragte",
    "beauftragter",
    "integrationsbeauftragte",
    "abteilung",
    "vorstand",
    "vorsitz",
    "geschaeftsstelle",
    "orga",
    "organisationsteam",
    "redaktion",
    "empfang",
    "zentrale",
    "fachbereich",
    "bereich",
    "manager",
    "director",
    "coordinator",
    "officer",
    "assistant",
];

static NAME_TOKEN: Pattern =
    Pattern::new(|| Regex::new(r"^[\p{L}][\p{L}\p{M}'’.-]*$").expect("regex"));

/// Is this line plausibly a person's name ("Dr. Fatma Demir", "Kwame Mensah",
/// "Jörg Weber", "محمد علي")? `min_tokens` is the least number of words.
pub fn looks_like_name(s: &str, min_tokens: usize) -> bool {
    let s = s.trim().trim_end_matches([',', '.', '!', ';']).trim();
    if s.is_empty() || s.chars().count() > 60 {
        return false;
    }
    if s.chars()
        .any(|c| c.is_ascii_digit() || "@/:;|()[]<>{}=+*#&%$§\"?!".contains(c))
    {
        return false;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.is_empty() || words.len() > 5 {
        return false;
    }
    const ARTICLES: &[&str] = &[
        "der", "die", "das", "den", "dem", "des", "the", "ein", "eine", "unser", "unsere",
    ];
    if ARTICLES.contains(&fold(words[0]).as_str()) {
        return false;
    }
    let mut real = 0;
    for w in &words {
        let w = w.trim_end_matches(',');
        let f = fold(w.trim_end_matches('.'));
        if NOT_NAME.contains(&f.as_str()) || is_org_word(&f) {
            return false;
        }
        if !NAME_TOKEN.is_match(w) {
            return false;
        }
        if TITLES.contains(&f.as_str()) || PARTICLES.contains(&f.as_str()) {
            continue;
        }
        let first = w.chars().next().unwrap_or(' ');
        let caseless = !first.is_uppercase() && !first.is_lowercase();
        if !(first.is_uppercase() || caseless) {
            return false;
        }
        // An initial ("A.") is fine, but a real name has a word of two letters.
        if w.trim_end_matches('.').chars().count() >= 2 {
            real += 1;
        }
        // ALL-CAPS words longer than 3 letters are shouting or acronyms,
        // unless the whole line is in capitals.
    }
    real >= min_tokens.max(1)
}

/// Tokens that mark an organisation.
fn is_org_word(f: &str) -> bool {
    const EXACT: &[&str] = &[
        "ev",
        "gmbh",
        "ggmbh",
        "mbh",
        "ug",
        "gbr",
        "kg",
        "ag",
        "stiftung",
        "verein",
        "verband",
        "stadt",
        "landeshauptstadt",
        "region",
        "landkreis",
        "gemeinde",
        "amt",
        "fachbereich",
        "referat",
        "zentrum",
        "institut",
        "universitaet",
        "uni",
        "hochschule",
        "schule",
        "kita",
        "initiative",
        "netzwerk",
        "beratung",
        "beratungsstelle",
        "caritas",
        "diakonie",
        "awo",
        "drk",
        "paritaetischer",
        "jobcenter",
        "agentur",
        "ministerium",
        "bezirk",
        "beirat",
        "moschee",
        "kirchengemeinde",
        "association",
        "council",
        "foundation",
        "network",
        "university",
        "college",
        "school",
        "centre",
        "center",
        "institute",
        "ngo",
        "ltd",
        "inc",
        "llc",
        "museum",
        "bibliothek",
        "library",
        "e.v",
        "ggmbh",
        "migrantenorganisation",
        "integrationsrat",
        "senat",
        "behoerde",
        "landesamt",
        "bundesamt",
        "kommune",
        "partei",
        "fraktion",
        "gewerkschaft",
        "verdi",
        "dgb",
        "vhs",
        "volkshochschule",
        "kreisverband",
        "ortsverein",
        "buergerverein",
        "club",
        "klub",
    ];
    const SUFFIX: &[&str] = &[
        "zentrum",
        "verein",
        "verband",
        "stiftung",
        "beratung",
        "netzwerk",
        "initiative",
        "institut",
        "schule",
        "hilfe",
        "werk",
        "buero",
        "beirat",
        "treff",
        "dienst",
        "gemeinde",
        "kirche",
        "behoerde",
        "akademie",
        "gesellschaft",
        "genossenschaft",
        "organisation",
        "einrichtung",
        "projekt",
        "agentur",
    ];
    if EXACT.contains(&f) {
        return true;
    }
    SUFFIX
        .iter()
        .any(|s| f.len() >= s.len() + 4 && f.ends_with(s))
}

static PHONE_OR_ADDRESS: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i)(?:\+?\d[\d /().-]{6,}\d|\b\d{5}\b|\b(?:tel|fon|telefon|phone|mobil|mobile|handy|fax)\b|www\.|https?:|@|\b\S+(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer)\s+\d)",
    )
    .expect("regex")
});

/// Is this line an organisation ("Stadtteilzentrum Nord e.V.", "Stadt
/// Hannover, Fachbereich Soziales")? Never an address or phone line.
pub fn looks_like_org(line: &str) -> bool {
    let l = line.trim();
    if l.is_empty() || l.chars().count() > 100 || PHONE_OR_ADDRESS.is_match(l) {
        return false;
    }
    let f = fold(l);
    // A sentence is not an organisation line.
    let words: Vec<&str> = f.split_whitespace().collect();
    let pronoun = words.iter().any(|w| {
        [
            "ich", "wir", "mich", "uns", "i", "we", "you", "sie", "moechte", "moechten", "bitte",
            "please",
        ]
        .contains(&w.trim_matches(|c: char| !c.is_alphanumeric()))
    });
    if pronoun || words.len() > 10 || l.starts_with(|c: char| c.is_lowercase()) {
        return false;
    }
    if f.contains("e.v.") || f.contains("e. v.") || f.ends_with(" ev") {
        return true;
    }
    f.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .any(is_org_word)
}

/// A display name split into person and organisation: "Fatma Demir (AWO)",
/// "Demir, Fatma", "Verein Brücke e.V.", "Fatma Demir | Stadt Hannover".
pub fn display_parts(display: &str) -> (Option<String>, Option<String>) {
    let d = one_line(display);
    let d = d.trim_matches(['"', '\'', ' ']).to_string();
    if d.is_empty() || d.contains('@') {
        return (None, None);
    }
    let mut org = None;
    let mut person_part = d.clone();
    if let Some((a, b)) = d.split_once('(') {
        let inner = b.trim_end_matches(')').trim();
        if !inner.is_empty() {
            org = Some(inner.to_string());
        }
        person_part = a.trim().to_string();
    }
    for sep in [" | ", " - ", " – ", " / "] {
        let current = person_part.clone();
        let Some((a, b)) = current.split_once(sep) else {
            continue;
        };
        let (a, b) = (a.trim(), b.trim());
        if looks_like_org(a) && looks_like_name(b, 2) {
            // "AWO Hannover - Fatma Demir"
            org = org.or(Some(a.to_string()));
            person_part = b.to_string();
        } else if looks_like_org(b) || !looks_like_name(b, 2) {
            org = org.or(Some(b.to_string()));
            person_part = a.to_string();
        }
    }
    if looks_like_org(&person_part) && !looks_like_name(&person_part, 2) {
        return (None, Some(person_part));
    }
    // "Demir, Fatma" → "Fatma Demir"; "Fatma Demir, Stadt Hannover" → org.
    if let Some((a, b)) = person_part.clone().split_once(',') {
        let (a, b) = (a.trim(), b.trim());
        if looks_like_org(b) {
            org = Some(b.to_string());
            person_part = a.to_string();
        } else if looks_like_name(a, 1) && looks_like_name(b, 1) {
            // "Dr. Schmidt, Klaus" → "Dr. Klaus Schmidt"
            let words: Vec<&str> = a.split_whitespace().collect();
            let titles = words
                .iter()
                .take_while(|w| TITLES.contains(&fold(w.trim_end_matches('.')).as_str()))
                .count();
            if words.len() - titles == 1 {
                let mut name: Vec<&str> = words[..titles].to_vec();
                name.push(b);
                name.push(words[titles]);
                person_part = name.join(" ");
            }
        }
    }
    let person = looks_like_name(&person_part, 1).then(|| tidy_name(&person_part));
    let org = org.filter(|o| looks_like_org(o)).map(|o| one_line(&o));
    (person, org)
}

/// Cleans a name: single line, no trailing punctuation, "SCHMIDT" kept.
pub fn tidy_name(s: &str) -> String {
    let s = one_line(s);
    s.trim()
        .trim_end_matches([',', ';', '!'])
        .trim()
        .to_string()
}

static CLOSING: Pattern = Pattern::new(|| {
    Regex::new(
        r"^\W*(?:(?:mit |mfg)?(?:freundlichen|besten|herzlichen|lieben|vielen|viele|beste|liebe|herzliche|schoene|sonnige|kollegiale|freundliche|solidarische|gruene|collegial)?\s*(?:gruessen|gruesse|gruss|gruesschen|grusse|grussen)\b|(?:mfg|lg|vg|bg|mkg|hg|gruss)\b|(?:best|kind|warm|many|with best|with kind)?\s*regards\b|best(?: wishes)?\W*$|all the best\b|cheers\b|thanks?(?: you)?(?: (?:and|&) (?:best|kind) regards| in advance| a lot| so much)?\W*$|many thanks\b|sincerely\b|yours\b|tesekkurler\b|saygilarimla\b|selamlar\b|pozdrawiam\b|z powazaniem\b|pozdrowienia\b|danke\W*(?:und|&)?\W*(?:viele|beste|liebe)?\W*(?:gruesse)?\W*$|vielen dank\W*(?:und)?\W*(?:viele|beste|liebe)?\W*(?:gruesse)?\W*$|herzlichen dank\W*$|ciao\b|tschuess\b|bis dann\b|bis bald\b|salam\b|shukran\b|medase\b)",
    )
    .expect("regex")
});

/// The writer's name and organisation from the end of their text or the
/// signature block.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Signoff {
    pub name: Option<String>,
    pub org: Option<String>,
}

pub fn signoff(own: &str, signature: &str) -> Signoff {
    let lines: Vec<&str> = own.lines().map(str::trim).collect();
    // A sign-off is never the first thing written ("Salam, wir möchten …").
    let first_text = lines.iter().position(|l| !l.is_empty());
    let closing = lines
        .iter()
        .rposition(|l| CLOSING.is_match(&fold(l)))
        .filter(|&c| Some(c) != first_text || lines.iter().filter(|l| !l.is_empty()).count() <= 2);
    let mut block: Vec<String> = Vec::new();
    if let Some(c) = closing {
        // "LG Ayşe", "Viele Grüße, Sabine König"
        let line = lines[c];
        if let Some(after) = after_closing(line) {
            block.push(after);
        }
        block.extend(lines[c + 1..].iter().map(|s| s.to_string()));
    } else if signature.trim().is_empty() {
        // No sign-off: a name-like line among the last lines.
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .filter(|l| !l.is_empty())
            .take(8)
            .copied()
            .collect();
        if let Some(pos) = tail
            .iter()
            .rposition(|l| looks_like_name(strip_signer_prefix(l), 2))
        {
            let idx = tail.len() - 1 - pos;
            let _ = idx;
            let start = lines
                .iter()
                .rposition(|l| *l == tail[pos])
                .unwrap_or(lines.len());
            // Only if it is not the whole message (a one-line name is a name).
            if start > 0 || lines.iter().filter(|l| !l.is_empty()).count() == 1 {
                block.extend(lines[start..].iter().map(|s| s.to_string()));
            }
        }
    }
    block.extend(signature.lines().map(|s| s.trim().to_string()));
    let mut out = Signoff::default();
    let mut name_at: Option<usize> = None;
    let mut single: Option<String> = None;
    for (i, raw) in block.iter().enumerate().take(12) {
        // "Hasan Öztürk (Vorsitzender)": the role in brackets is not the name.
        let without_role = raw.trim().split(" (").next().unwrap_or("").trim();
        let l = strip_signer_prefix(without_role);
        if l.is_empty() {
            continue;
        }
        // "Fatma Demir | Verein XY e.V." or "Fatma Demir, Stadt Hannover"
        let (person, org) = split_name_org(l);
        if let Some(p) = person {
            if looks_like_name(&p, 2) && out.name.is_none() {
                out.name = Some(tidy_name(&p));
                name_at = Some(i);
                if out.org.is_none() {
                    out.org = org;
                }
                continue;
            }
            if looks_like_name(&p, 1) && single.is_none() && out.name.is_none() {
                single = Some(tidy_name(&p));
                name_at = Some(i);
                continue;
            }
        }
        if out.org.is_none()
            && looks_like_org(l)
            && (name_at.is_some() || closing.is_some() || !signature.is_empty())
        {
            out.org = Some(one_line(l));
        }
    }
    if out.name.is_none() {
        out.name = single;
    }
    if out.org.is_none()
        && let Some(last) = lines.iter().rev().find(|l| !l.is_empty())
        && lines.iter().filter(|l| !l.is_empty()).count() > 1
    {
        // "…teilnehmen.\nDITIB Moscheegemeinde Example": the sender's organisation.
        out.org = org_of_line(last);
    }
    out
}

/// The organisation a line names: the line itself, or the part in brackets of
/// "Beste Grüße, Sabine Kraus (Nachbarschaftsinitiative Linden-Süd)".
fn org_of_line(line: &str) -> Option<String> {
    if let Some((_, rest)) = line.split_once('(')
        && let Some((inner, _)) = rest.split_once(')')
        && looks_like_org(inner)
    {
        return Some(one_line(inner));
    }
    let closing = [
        "gruss", "gruesse", "regards", "wishes", "mfg", "lg", "vg", "cheers",
    ];
    if line.contains('(')
        || closing.iter().any(|c| {
            fold(line)
                .split_whitespace()
                .any(|w| w.trim_matches(',') == *c)
        })
    {
        return None;
    }
    looks_like_org(line).then(|| one_line(line))
}

fn split_name_org(l: &str) -> (Option<String>, Option<String>) {
    for sep in [" | ", " · ", " - ", " – ", ", "] {
        if let Some((a, b)) = l.split_once(sep)
            && looks_like_name(a, 2)
            && looks_like_org(b)
        {
            return (Some(a.to_string()), Some(one_line(b)));
        }
    }
    (Some(l.to_string()), None)
}

fn strip_signer_prefix(l: &str) -> &str {
    let t = l.trim();
    for p in [
        "i.A.",
        "i. A.",
        "i.V.",
        "i. V.",
        "im Auftrag",
        "p.p.",
        "pp.",
        "gez.",
        "Ihr ",
        "Ihre ",
        "Euer ",
        "Eure ",
        "Dein ",
        "Deine ",
    ] {
        if let Some(rest) = t.strip_prefix(p) {
            return rest.trim();
        }
    }
    t
}

fn after_closing(line: &str) -> Option<String> {
    // Split after the closing words: take the tail after a comma, or after
    // the known short forms.
    static TAIL: Pattern = Pattern::new(|| {
        Regex::new(r"(?i)^\W*(?:LG|VG|MfG|BG|Gruß|Gruss|Grüße|Gruesse|Cheers|Best|Thanks|Danke|Ciao|Salam)\b[,!.\s]+(.+)$")
            .expect("regex")
    });
    if let Some((_, tail)) = line.split_once(',') {
        let t = tail.trim();
        if !t.is_empty() {
            return Some(t.to_string());
        }
    }
    TAIL.captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_string())
        .filter(|t| !t.is_empty())
}

static STATED_NAME: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i:mein name ist|my name is|ich hei(?:ß|ss)e|ich bin|i am|i'm|this is|hier (?:ist|schreibt)|ich,)\s+((?:(?:Dr|Prof)\.\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+(?:(?:von|van|de|der|al|el|bin|ibn)\s+)?\p{Lu}[\p{L}\p{M}'’-]+){0,3})",
    )
    .expect("regex")
});

/// "Mein Name ist Fatma Demir", "My name is Kwame Mensah".
pub fn stated_name(text: &str) -> Option<String> {
    for c in STATED_NAME.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        let mut words: Vec<&str> = m.as_str().split_whitespace().collect();
        // Drop trailing words that are not names ("Fatma Demir Und").
        while words.len() > 1 && !looks_like_name(&words.join(" "), 1) {
            words.pop();
        }
        let name = words.join(" ");
        if looks_like_name(&name, 2) {
            return Some(tidy_name(&name));
        }
    }
    None
}

static ORG_PHRASE: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?i:\bfür (?:den|die|das|unseren|unsere|unser)|\bvon (?:der|dem|den)|\bvom|\bbei (?:der|dem)|\bbeim|\bon behalf of|\bfrom|\bat|\bfor (?:the|our)|\barbeite (?:bei|im|in der|für)|\bwork (?:at|for))\s+((?:\p{Lu}[\p{L}\p{M}.'’&-]*|e\.\s?V\.|gGmbH|GmbH|und|für|der|die|des|im|in|e\.V\.)(?:\s+(?:\p{Lu}[\p{L}\p{M}.'’&-]*|e\.\s?V\.|e\.V\.|gGmbH|GmbH|und|für|der|die|des|im|in|of|for|the)){0,6})",
    )
    .expect("regex")
});

/// "für den Verein Brücke e.V.", "von der Stadt Hannover".
pub fn org_in_text(text: &str) -> Option<String> {
    for c in ORG_PHRASE.captures_iter(text) {
        let Some(m) = c.get(1) else { continue };
        let mut words: Vec<&str> = m.as_str().split_whitespace().collect();
        while let Some(last) = words.last() {
            let f = fold(last);
            if [
                "und", "fuer", "der", "die", "des", "im", "in", "of", "for", "the",
            ]
            .contains(&f.as_str())
            {
                words.pop();
            } else {
                break;
            }
        }
        let cand = words.join(" ");
        // "für die Fishbowl-Diskussion im Stadtteilzentrum" names the event, not the writer's employer.
        let names_event = EVENT_WORDS.iter().any(|w| fold(&cand).contains(w));
        if !names_event && looks_like_org(&cand) && cand.chars().count() >= 3 {
            return Some(one_line(&cand));
        }
    }
    None
}

/// Words of an event's name; a phrase holding one is not an organisation.
const EVENT_WORDS: &[&str] = &[
    "diskussion",
    "konferenz",
    "workshop",
    "veranstaltung",
    "dialogrunde",
    "tagung",
    "fishbowl",
    "auftakt",
    "forum",
    "conference",
    "discussion",
    "meeting",
    "sitzung",
    "anmeldung",
    "event",
];

/// Companions and party size stated in a text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Party {
    /// "wir kommen zu dritt", "für 3 Personen": everyone, the writer included.
    pub total: Option<u32>,
    /// "mit zwei Begleitpersonen": people besides the writer.
    pub extra: u32,
    /// Companions named in the text.
    pub named: Vec<String>,
}

impl Party {
    pub fn size(&self) -> u32 {
        let others = self.extra.max(self.named.len() as u32);
        match self.total {
            Some(t) => t.max(1 + self.named.len() as u32),
            None => 1 + others,
        }
    }

    pub fn is_stated(&self) -> bool {
        self.total.is_some() || self.extra > 0 || !self.named.is_empty()
    }
}

const NUM: &str = r"(\d{1,3}|beide|beiden|both|eins|ein|eine|einer|einem|einen|zwei|zwo|drei|vier|fuenf|sechs|sieben|acht|neun|zehn|elf|zwoelf|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a|an|another)";

fn number(word: &str) -> Option<u32> {
    Some(match word {
        "ein" | "eine" | "einer" | "einem" | "einen" | "eins" | "one" | "a" | "an" | "another" => 1,
        "zwei" | "zwo" | "two" | "beide" | "beiden" | "both" => 2,
        "drei" | "three" => 3,
        "vier" | "four" => 4,
        "fuenf" | "five" => 5,
        "sechs" | "six" => 6,
        "sieben" | "seven" => 7,
        "acht" | "eight" => 8,
        "neun" | "nine" => 9,
        "zehn" | "ten" => 10,
        "elf" | "eleven" => 11,
        "zwoelf" | "twelve" => 12,
        w => w.parse().ok()?,
    })
}

static COMPANIONS_N: Pattern = Pattern::new(|| {
    Regex::new(&format!(
        r"\b(?:mit|with|plus|und|and|sowie|bringe|bringen|bringing|bring|samt|nebst|\+)\s+(?:noch\s+)?(?:meinen|meine|meiner|my|unseren|unsere|our|insgesamt)?\s*{NUM}\s+(?:weitere[nm]?\s+|additional\s+|more\s+|other\s+|zusaetzliche[nm]?\s+|externe[nm]?\s+)?(?:begleitperson\w*|begleitung\w*|begleiter\w*|kolleg\w*|colleague\w*|person\w*|people|leute\w*|mitarbeiter\w*|mitarbeitende\w*|freund\w*|friends?|guests?|gaeste\w*|gast|kind\w*|children|child|kids?|teilnehm\w*|participants?|ehrenamtliche\w*|volunteers?|familienmitglied\w*|angehoerige\w*|jugendliche\w*|schueler\w*|student\w*|azubis?|auszubildende\w*|praktikant\w*|bewohner\w*|klient\w*|mitglieder\w*|members?|frauen|maenner|damen|herren)\b"
    ))
    .expect("regex")
});

static COMPANIONS_BARE_N: Pattern = Pattern::new(|| {
    Regex::new(&format!(
        r"\b{NUM}\s+(?:weitere[nm]?\s+|additional\s+|zusaetzliche[nm]?\s+)?(?:begleitperson\w*|begleiter\w*|begleitung\w*|companions?|guests?|gaeste\w*|weitere person\w*|plus ?ones?|schueler\w*|students|pupils)\b"
    ))
    .expect("regex")
});

static COMPANION_ONE: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:mit|with|und|and|sowie|plus|samt|bringe|bring|bringing|begleitet von|accompanied by|noch)\s+(?:meinem|meiner|meine|my|unserem|unserer|unsere|our|einem|einer|a|an|der|dem|the)\s+(?:kollegen|kollege|kollegin|colleague|begleitung|begleitperson|begleiter|begleiterin|partner|partnerin|ehefrau|ehemann|frau|mann|wife|husband|tochter|sohn|daughter|son|freund|freundin|friend|mitarbeiter|mitarbeiterin|chef|chefin|vorgesetzten|vorgesetzter|mutter|vater|mother|father|schwester|bruder|sister|brother|nachbar|nachbarin|assistent|assistentin|assistant|betreuer|betreuerin|dolmetscher|dolmetscherin|interpreter|praktikant|praktikantin|azubi|kind|child|guest|gast|baby|kleinkind|enkel|enkelin|enkelkind|grandchild)\b",
    )
    .expect("regex")
});

/// "mein Mann kommt auch mit", "my wife will come too".
static COMPANION_COMES: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:mein|meine|my|unser|unsere|our)\s+(?:kollege|kollegin|colleague|begleitung|begleitperson|partner|partnerin|ehefrau|ehemann|frau|mann|wife|husband|tochter|sohn|daughter|son|freund|freundin|friend|mutter|vater|mother|father|schwester|bruder|sister|brother|nachbar|nachbarin|assistent|assistentin|assistant|betreuer|betreuerin|dolmetscher|dolmetscherin|interpreter)\b(?:\s+\p{L}+){0,2}?\s+(?:kommt|wird|moechte|will|would|is coming|joins|will join|begleitet|nimmt)\b[^.!?\n]{0,40}\b(?:mit|auch|ebenfalls|teil|dabei|come|join|too|also|as well|kommen|teilnehmen|begleiten)\b",
    )
    .expect("regex")
});

static NEGATED_COMING: Pattern =
    Pattern::new(|| Regex::new(r"\b(?:nicht|kein|keine|not|cannot|can't|won't)\b").expect("regex"));

static ALONE: Pattern = Pattern::new(|| {
    Regex::new(r"\b(?:allein|alleine|alone|by myself|on my own|nur ich|only me|only myself|just me|just myself)\b")
        .expect("regex")
});

/// "mein Sohn (12) auch", "my wife too".
static COMPANION_TOO: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:mein|meine|my|unser|unsere|our)\s+(?:kollege|kollegin|colleague|begleitung|partner|partnerin|ehefrau|ehemann|frau|mann|wife|husband|tochter|sohn|daughter|son|freund|freundin|friend|mutter|vater|mother|father|schwester|bruder|sister|brother|nachbar|nachbarin)\b(?:\s*\([^)]{0,20}\))?\s*,?\s+(?:auch|ebenfalls|too|as well)\b",
    )
    .expect("regex")
});

static TOTAL: Pattern = Pattern::new(|| {
    Regex::new(&format!(
        r"\bzu (zweit|zwei|dritt|viert|fuenft|sechst|siebt|acht|neunt|zehnt)\b|\b(?:wir sind|we are|we will be|we'll be|wir werden|insgesamt|in total|total of|gesamt|anzahl(?: der)? (?:personen|teilnehm\w*)|personenzahl|teilnehmerzahl|number of (?:people|persons|participants|attendees)|party of|group of|gruppe von|fuer|for|als)\s*:?\s*(?:insgesamt\s+|mit\s+)?{NUM}\s*(personen|people|persons|leute|teilnehm\w*|participants?|plaetze|places|seats|tickets|erwachsene|adults|menschen|leuten)?\b|\bwir\s+(?:kommen|sind|werden)\b[^.!?]{{0,30}}\bmit\s+{NUM}\s+(?:personen|leuten|teilnehm\w*|leute)\b|\b{NUM}\s+(personen|people|persons|leute|teilnehmende|teilnehmer(?:innen)?|teilnehmer/innen|participants|plaetze|places|seats|tickets|anmeldungen)\b"
    ))
    .expect("regex")
});

static NAMED_AFTER_NOUN: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?:\b(?i:mit|with|und|and|sowie|plus|samt|bringe|bring|bringing|begleitet von|accompanied by|noch)\s+(?i:meinem|meiner|meine|meinen|my|unserem|unserer|unsere|unseren|our|der|dem|the|den)?\s*(?i:kollegen|kollege|kollegin|kolleginnen|colleagues?|begleitung|begleitperson(?:en)?|partner|partnerin|ehefrau|ehemann|wife|husband|tochter|sohn|daughter|son|freund|freundin|friends?|mitarbeiter(?:in|innen)?|chef|chefin|nachbarin|nachbar|assistentin|assistent|assistant)\s*,?\s+)((?:(?:Frau|Herrn?|Dr\.|Prof\.)\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+){0,2}(?:\s*(?:,|und|and|&)\s*(?:(?:Frau|Herrn?|Dr\.)\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+){0,2})*)",
    )
    .expect("regex")
});

static NAMED_TITLE: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?i:mit|with|und|and|sowie|samt|zusammen mit|together with|bringe|bring|bringing|zusätzlich zu|zusaetzlich zu|neben|in addition to|besides)\s+((?:Frau|Herrn?|Mr\.?|Mrs\.?|Ms\.?|Dr\.)\s+(?:Dr\.\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+)?)",
    )
    .expect("regex")
});

/// "…nachmelden: meine Kollegin Sandra Klein" — a possessive companion noun
/// with a name at the start of a line or after a colon or dash.
static NAMED_LEADING: Pattern = Pattern::new(|| {
    Regex::new(
        r"(?m)(?:^|[:–.!-]\s)\s*(?i:meine|meinen|meinem|meiner|unsere|unseren|our|my)\s+(?i:kollegin|kollege|kollegen|colleague|begleitung|begleitperson|partnerin|partner|ehefrau|ehemann|tochter|sohn|wife|husband|daughter|son|freundin|freund|friend)\s*,?\s+((?:(?:Frau|Herrn?|Dr\.)\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+){0,2})",
    )
    .expect("regex")
});

/// "mein Mann, unsere zwei Kinder und ich", "my husband, our two kids and me".
static PEOPLE_AND_ME: Pattern = Pattern::new(|| {
    let item = format!(r"(?:meine[nmr]?|unsere[nmr]?|my|our)\s+(?:{NUM}\s+)?[\p{{L}}-]+");
    Regex::new(&format!(
        r"\b{item}(?:\s*,\s*{item})*(?:\s*,)?\s+(?:und|and|&)\s+(?:mich|me|myself|ich)\b"
    ))
    .expect("regex")
});

/// A count word, but not the article "ein"/"a" (which is one anyway).
fn number_word(w: &str) -> Option<u32> {
    const ARTICLES: &[&str] = &[
        "a", "an", "another", "ein", "eine", "einer", "einem", "einen",
    ];
    number(w).filter(|_| !ARTICLES.contains(&w))
}

/// "meine Frau und mich", "my wife and me": one companion.
static COMPANION_AND_ME: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?:meine|meinen|meinem|my)\s+(?:frau|mann|ehefrau|ehemann|partner|partnerin|kollegin|kollegen|kollege|tochter|sohn|schwester|bruder|mutter|vater|freundin|freund|wife|husband|colleague|daughter|son|sister|brother|mother|father|friend|partner)\s+(?:und|and|&)\s+(?:mich|me|ich|i|myself)\b|\b(?:bringe|bringen|nehme|nehmen)\s+(?:noch\s+|auch\s+)?(?:meinen|unseren|einen)\s+(?:sohn|mann|ehemann|kollegen|partner|freund|bruder|vater|nachbarn|enkel|assistenten|betreuer|dolmetscher)\b",
    )
    .expect("regex")
});

static BRING_NAME: Pattern = Pattern::new(|| {
    Regex::new(
        r"\b(?i:bringe|bringen|bring)\s+(?i:noch\s+|auch\s+)?((?:(?:Frau|Herrn?|Dr\.)\s+)?\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+){0,2})\s+(?i:mit|along)\b",
    )
    .expect("regex")
});

/// Companions and party size from a text (German or English).
/// "wir kommen mit 4 Personen" names the whole group, the writer included;
/// "ich komme mit 2 Personen" or "mit 2 Begleitpersonen" names the others.
fn counts_the_whole_group(folded: &str, at: usize, noun: &str) -> bool {
    let noun = noun.trim();
    let generic = ["person", "leute", "teilnehm", "people", "participant"]
        .iter()
        .any(|g| noun.starts_with(g))
        && !noun.starts_with("personen mehr");
    if !generic {
        return false;
    }
    let start = folded[..at]
        .rfind(['.', '!', '?', '\n'])
        .map_or(0, |i| i + 1);
    folded[start..at]
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| ["wir", "we", "uns", "us"].contains(&w))
}

pub fn party(text: &str) -> Party {
    let mut p = Party::default();
    let folded = fold(text);
    let mut extra = 0u32;
    let mut group_total = 0u32;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for c in COMPANIONS_N.captures_iter(&folded) {
        if let (Some(m), Some(all)) = (c.get(1), c.get(0)) {
            // "mit meinen zwei Kindern" counts; "mit ein paar" does not.
            if let Some(n) = number(m.as_str()) {
                if [
                    "a", "an", "another", "ein", "eine", "einer", "einem", "einen",
                ]
                .contains(&m.as_str())
                    && folded[all.end()..].trim_start().starts_with("paar")
                {
                    continue;
                }
                spans.push((all.start(), all.end()));
                // "wir möchten mit 4 Personen teilnehmen": a group counts itself.
                if counts_the_whole_group(&folded, all.start(), &folded[m.end()..all.end()]) {
                    group_total = group_total.max(n);
                } else {
                    extra += n;
                }
            }
        }
    }
    for c in COMPANIONS_BARE_N.captures_iter(&folded) {
        if let (Some(m), Some(all)) = (c.get(1), c.get(0))
            && !spans.iter().any(|&(s, e)| all.start() < e && s < all.end())
            && let Some(n) = number(m.as_str())
        {
            extra += n;
            spans.push((all.start(), all.end()));
        }
    }
    // "my husband, our two kids and me": a list of the writer's people
    // ending with the writer; each item one person or as many as it counts.
    for m in PEOPLE_AND_ME.find_iter(&folded) {
        if spans.iter().any(|&(s, e)| m.start() < e && s < m.end()) {
            continue;
        }
        let list = m.as_str();
        let items: Vec<&str> = list
            .rsplit_once([' '])
            .map_or(list, |(head, _)| head)
            .split(',')
            .collect();
        if items.len() < 2 {
            continue; // one item: COMPANION_AND_ME below
        }
        for item in items {
            let n = item.split_whitespace().find_map(number_word).unwrap_or(1);
            extra += n;
        }
        spans.push((m.start(), m.end()));
    }
    // Each of these names one companion, unless an earlier pattern already counted that text.
    for pattern in [&COMPANION_ONE, &COMPANION_AND_ME, &COMPANION_TOO] {
        for all in pattern.find_iter(&folded) {
            if !spans.iter().any(|&(s, e)| all.start() < e && s < all.end()) {
                extra += 1;
                spans.push((all.start(), all.end()));
            }
        }
    }
    for c in COMPANION_COMES.captures_iter(&folded) {
        if let Some(all) = c.get(0)
            && !spans.iter().any(|&(s, e)| all.start() < e && s < all.end())
            && !NEGATED_COMING.is_match(all.as_str())
        {
            extra += 1;
            spans.push((all.start(), all.end()));
        }
    }
    p.extra = extra.min(500);
    if group_total > 0 {
        p.total = Some(p.total.unwrap_or(0).max(group_total.min(500)));
    }
    for m in ALONE.find_iter(&folded) {
        let before = &folded[..m.start()];
        let negated = before.trim_end().ends_with("nicht") || before.trim_end().ends_with("not");
        if !negated {
            p.total = Some(1);
        }
    }

    for c in TOTAL.captures_iter(&folded) {
        if let Some(z) = c.get(1) {
            let n = match z.as_str() {
                "zweit" | "zwei" => 2,
                "dritt" => 3,
                "viert" => 4,
                "fuenft" => 5,
                "sechst" => 6,
                "siebt" => 7,
                "acht" => 8,
                "neunt" => 9,
                _ => 10,
            };
            p.total = Some(p.total.unwrap_or(0).max(n));
            continue;
        }
        let Some(all) = c.get(0) else { continue };
        // Inside a "mit N Kolleginnen" span it is the companion count.
        if spans.iter().any(|&(s, e)| all.start() < e && s < all.end())
            && !all.as_str().starts_with("wir")
        {
            continue;
        }
        let num = c.get(2).or(c.get(4)).or(c.get(5));
        let noun = c.get(3).or(c.get(6));
        let Some(n) = num.and_then(|m| number(m.as_str())) else {
            continue;
        };
        let prefix = all.as_str();
        let strong = prefix.starts_with("wir")
            || prefix.starts_with("we ")
            || prefix.starts_with("insgesamt")
            || prefix.starts_with("in total")
            || prefix.starts_with("anzahl")
            || prefix.starts_with("personenzahl")
            || prefix.starts_with("teilnehmerzahl")
            || prefix.starts_with("number")
            || prefix.starts_with("party")
            || prefix.starts_with("group")
            || prefix.starts_with("gruppe")
            || prefix.starts_with("total")
            || prefix.starts_with("gesamt");
        if noun.is_none() && !strong {
            continue;
        }
        if ["a", "an", "another"].contains(&num.map_or("", |m| m.as_str())) {
            continue;
        }
        if n >= 1 {
            p.total = Some(p.total.unwrap_or(0).max(n));
        }
    }

    let mut named: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        let n = without_courtesy_title(&tidy_name(n));
        let mut words: Vec<&str> = n.split_whitespace().collect();
        while words.len() > 1 && !looks_like_name(&words.join(" "), 1) {
            words.pop();
        }
        let n = words.join(" ");
        let title_only = TITLES.contains(&fold(n.trim_end_matches('.')).as_str());
        if !title_only && looks_like_name(&n, 1) && !named.iter().any(|x| fold(x) == fold(&n)) {
            named.push(n);
        }
    };
    for c in NAMED_AFTER_NOUN.captures_iter(text) {
        if let Some(m) = c.get(1) {
            for part in split_names(m.as_str()) {
                add(&part);
            }
        }
    }
    for re in [&NAMED_TITLE, &BRING_NAME, &NAMED_LEADING] {
        for c in re.captures_iter(text) {
            if let Some(m) = c.get(1) {
                add(m.as_str());
            }
        }
    }
    // "Frau Demir" and "Fatma Demir" are one person.
    let snapshot = named.clone();
    named.retain(|n| {
        let f = fold(n);
        let words: Vec<&str> = f.split_whitespace().collect();
        let is_title_form = words.len() == 2 && TITLES.contains(&words[0]);
        !(is_title_form
            && snapshot.iter().any(|o| {
                o != n
                    && fold(o).ends_with(words[1])
                    && !TITLES.contains(&fold(o).split_whitespace().next().unwrap_or(""))
            }))
    });
    p.named = named;
    p
}

/// "Frau Esra Çelik" → "Esra Çelik", but "Frau Demir" stays: with only a
/// surname the courtesy title is part of how the person is named.
pub fn without_courtesy_title(n: &str) -> String {
    let words: Vec<&str> = n.split_whitespace().collect();
    if words.len() == 2 && words[0] == "Herrn" {
        return format!("Herr {}", words[1]);
    }
    if words.len() >= 3
        && ["frau", "herr", "herrn", "mr", "mrs", "ms"]
            .contains(&fold(words[0].trim_end_matches('.')).as_str())
    {
        return words[1..].join(" ");
    }
    n.to_string()
}

fn split_names(s: &str) -> Vec<String> {
    static SEP: Pattern =
        Pattern::new(|| Regex::new(r"\s*(?:,|\bund\b|\band\b|&)\s*").expect("regex"));
    SEP.split(s)
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// One person in a group list.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub email: Option<String>,
    /// The rest of the line: workshop choices, notes, organisation.
    pub rest: String,
}

/// Lines of a group registration: "1. Malgorzata Nowak (Dialogrunde
/// Bildung)", "- Omar Haddad, omar@…, Workshop 2", or plain name lines after
/// a line ending in ':'.
pub fn group_list(text: &str) -> Vec<Listed> {
    static MARKER: Pattern = Pattern::new(|| {
        Regex::new(r"^\s*(?:\d{1,2}\s*[.):]|\(\d{1,2}\)|[-*•·–▪◦]|[a-eA-E]\))\s+(.+)$")
            .expect("regex")
    });
    let mut out = Vec::new();
    let mut after_colon = false;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            if !out.is_empty() {
                after_colon = false;
            }
            continue;
        }
        let item = match MARKER.captures(l).and_then(|c| c.get(1)) {
            Some(m) => Some(m.as_str()),
            None if after_colon => Some(l),
            None => None,
        };
        let ends_colon = l.ends_with(':');
        if let Some(item) = item
            && let Some(listed) = list_item(item)
        {
            out.push(listed);
            continue;
        }
        if !out.is_empty() && MARKER.captures(l).is_none() {
            after_colon = false;
        }
        if ends_colon {
            after_colon = true;
        }
    }
    out
}

fn list_item(item: &str) -> Option<Listed> {
    let email = text::addresses(item).into_iter().next();
    let mut without_email = item.to_string();
    if let Some(e) = &email {
        // Remove the address (any case) and the brackets around it.
        let lower = without_email.to_lowercase();
        if let Some(pos) = lower.find(e.as_str())
            && without_email.is_char_boundary(pos)
            && without_email.is_char_boundary(pos + e.len())
        {
            without_email.replace_range(pos..pos + e.len(), " ");
        }
        without_email = without_email
            .replace("<>", " ")
            .replace("()", " ")
            .replace("[]", " ");
    }
    let cut = without_email
        .find(['(', ',', ';', ':', '<', '|', '[', '/'])
        .into_iter()
        .chain(
            [" - ", " – ", " — "]
                .iter()
                .filter_map(|s| without_email.find(s)),
        )
        .min()
        .unwrap_or(without_email.len());
    let name = without_email[..cut].trim().trim_matches(['"', '\'']);
    // Allow "Name E-Mail" without a separator: drop trailing words until it is a name.
    let mut words: Vec<&str> = name.split_whitespace().collect();
    while words.len() > 2 && !looks_like_name(&words.join(" "), 2) {
        words.pop();
    }
    let name = words.join(" ");
    if !looks_like_name(&name, 2) {
        return None;
    }
    let rest = without_email
        .get(name.len().min(without_email.len())..)
        .map(|r| r.to_string())
        .unwrap_or_default();
    let rest = if without_email.starts_with(&name) {
        rest
    } else {
        without_email[cut..].to_string()
    };
    Some(Listed {
        name: without_courtesy_title(&tidy_name(&name)),
        email,
        rest: one_line(&rest),
    })
}

/// People named with their own address in running text: "Dr. Amara Nwosu
/// (amara.nwosu@…)", "meine Kollegin Anna Weber <anna@…>". The rest of the
/// sentence after the address is kept for workshop choices.
pub fn named_with_address(text: &str) -> Vec<Listed> {
    static NAMED: Pattern = Pattern::new(|| {
        Regex::new(
            r"((?:(?:Dr|Prof)\.\s+|(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+)*\p{Lu}[\p{L}\p{M}'’-]+(?:\s+\p{Lu}[\p{L}\p{M}'’-]+){1,3})\s*[(<\[,:–-]?\s*(?:mailto:)?([A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})[)>\]]?([^\n]*)",
        )
        .expect("regex")
    });
    let mut out: Vec<Listed> = Vec::new();
    for c in NAMED.captures_iter(text) {
        let (Some(n), Some(e)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let mut words: Vec<&str> = n.as_str().split_whitespace().collect();
        // "Please Register Dr. Amara Nwosu": keep the name at the end.
        while words.len() > 2 && !looks_like_name(&words.join(" "), 2) {
            words.remove(0);
        }
        let name = words.join(" ");
        if !looks_like_name(&name, 2) {
            continue;
        }
        let email = e.as_str().to_lowercase();
        if out
            .iter()
            .any(|p| p.email.as_deref() == Some(email.as_str()))
        {
            continue;
        }
        out.push(Listed {
            name: without_courtesy_title(&tidy_name(&name)),
            email: Some(email),
            rest: one_line(c.get(3).map_or("", |m| m.as_str())),
        });
    }
    out
}

/// Fields of a web-form mail ("Name: …", "E-Mail: …", "Workshop: …").
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Form {
    pub name: Option<String>,
    pub email: Option<String>,
    pub org: Option<String>,
    pub workshops: Option<String>,
    pub total: Option<u32>,
    pub companions: Option<u32>,
    pub companion_names: Vec<String>,
    pub notes: Vec<String>,
    pub conference: Option<String>,
    pub fields: usize,
}

pub fn form(text: &str) -> Form {
    static FIELD: Pattern = Pattern::new(|| {
        Regex::new(r"^\s*\**\s*([\p{L}][\p{L} .\-/()]{0,40}?)\s*\**\s*:\s*\**\s*(.*?)\s*$")
            .expect("regex")
    });
    let mut f = Form::default();
    let mut first: Option<String> = None;
    let mut last: Option<String> = None;
    for line in text.lines().take(200) {
        let Some(c) = FIELD.captures(line) else {
            continue;
        };
        let (Some(k), Some(v)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let key = fold(k.as_str()).trim().to_string();
        let value = one_line(v.as_str());
        if value.is_empty() || value == "-" || value == "—" {
            continue;
        }
        let key = key.trim_end_matches(" *").trim_end_matches('*').trim();
        match key {
            "name"
            | "vollstaendiger name"
            | "full name"
            | "ihr name"
            | "your name"
            | "vor- und nachname"
            | "vor- und zuname"
            | "vorname und nachname"
            | "vorname nachname"
            | "teilnehmer"
            | "teilnehmerin"
            | "teilnehmer/in"
            | "teilnehmende person"
            | "name, vorname"
            | "nachname, vorname" => {
                f.name = Some(value);
                f.fields += 1;
            }
            "vorname" | "first name" | "given name" | "firstname" => {
                first = Some(value);
                f.fields += 1;
            }
            "nachname" | "last name" | "surname" | "familienname" | "zuname" | "lastname" => {
                last = Some(value);
                f.fields += 1;
            }
            "e-mail"
            | "email"
            | "e-mail-adresse"
            | "mail"
            | "e-mail adresse"
            | "email address"
            | "e-mail address"
            | "emailadresse"
            | "ihre e-mail"
            | "ihre e-mail-adresse"
            | "your email"
            | "your e-mail"
            | "mailadresse" => {
                f.email = text::addresses(&value).into_iter().next();
                f.fields += 1;
            }
            "organisation"
            | "organization"
            | "institution"
            | "einrichtung"
            | "verein"
            | "firma"
            | "company"
            | "traeger"
            | "arbeitgeber"
            | "dienststelle"
            | "behoerde"
            | "organisation/institution"
            | "institution/organisation"
            | "organisation / institution"
            | "affiliation"
            | "verein/organisation" => {
                f.org = Some(value);
                f.fields += 1;
            }
            k if k.starts_with("workshop")
                || k.starts_with("dialogrunde")
                || k == "thema"
                || k == "session"
                || k == "auswahl"
                || k.starts_with("gewuenschte")
                || k == "sessions"
                || k == "rounds" =>
            {
                f.workshops = Some(value);
                f.fields += 1;
            }
            "anzahl personen"
            | "anzahl der personen"
            | "personen"
            | "personenzahl"
            | "teilnehmerzahl"
            | "anzahl teilnehmende"
            | "anzahl teilnehmer"
            | "number of people"
            | "number of participants"
            | "anzahl"
            | "number of persons"
            | "persons"
            | "people" => {
                f.total = value
                    .split_whitespace()
                    .next()
                    .and_then(|w| number(&fold(w)));
                f.fields += 1;
            }
            "begleitpersonen"
            | "anzahl begleitpersonen"
            | "companions"
            | "guests"
            | "gaeste"
            | "begleitung"
            | "anzahl der begleitpersonen"
            | "number of companions" => {
                let first_word = fold(value.split_whitespace().next().unwrap_or(""));
                match number(&first_word) {
                    Some(n) => f.companions = Some(n),
                    None if ["nein", "keine", "no", "none", "-"].contains(&first_word.as_str()) => {
                        f.companions = Some(0)
                    }
                    None => {
                        let names: Vec<String> = split_names(&value)
                            .into_iter()
                            .filter(|n| looks_like_name(n, 2))
                            .collect();
                        if !names.is_empty() {
                            f.companions = Some(names.len() as u32);
                            f.companion_names = names;
                        }
                    }
                }
                f.fields += 1;
            }
            "namen der begleitpersonen"
            | "name der begleitperson"
            | "names of companions"
            | "weitere teilnehmende"
            | "weitere personen"
            | "begleitperson"
            | "companion"
            | "companion names" => {
                f.companion_names = split_names(&value)
                    .into_iter()
                    .filter(|n| looks_like_name(n, 1))
                    .collect();
                f.fields += 1;
            }
            "anmerkungen"
            | "bemerkungen"
            | "anmerkung"
            | "bemerkung"
            | "hinweise"
            | "hinweis"
            | "nachricht"
            | "message"
            | "comments"
            | "comment"
            | "kommentar"
            | "besondere beduerfnisse"
            | "barrierefreiheit"
            | "accessibility"
            | "essen"
            | "ernaehrung"
            | "verpflegung"
            | "diet"
            | "dietary requirements"
            | "kinderbetreuung"
            | "dolmetschung"
            | "unterstuetzungsbedarf"
            | "assistenzbedarf"
            | "notes"
            | "special needs"
            | "sonstiges"
            | "mitteilung"
            | "ihre nachricht"
            | "your message" => {
                f.notes.push(format!("{}: {}", k.as_str().trim(), value));
                f.fields += 1;
            }
            "veranstaltung" | "event" | "konferenz" | "conference" | "termin" => {
                f.conference = Some(value);
                f.fields += 1;
            }
            _ => {}
        }
    }
    if f.name.is_none() {
        f.name = match (first, last) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (Some(a), None) => Some(a),
            (None, Some(b)) => Some(b),
            (None, None) => None,
        };
    }
    if let Some(n) = &f.name {
        // "Nachname, Vorname" fields.
        if let Some((a, b)) = n.split_once(',')
            && !a.trim().contains(' ')
            && looks_like_name(a, 1)
            && looks_like_name(b, 1)
        {
            f.name = Some(format!("{} {}", b.trim(), a.trim()));
        }
        if !looks_like_name(f.name.as_deref().unwrap_or(""), 1) {
            f.name = None;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(looks_like_name("Jürgen Größmann", 2));
        assert!(looks_like_name("Dr. Fatma Demir", 2));
        assert!(looks_like_name("Kwame Mensah", 2));
        assert!(looks_like_name("Ayşe Yılmaz", 2));
        assert!(looks_like_name("محمد علي", 2));
        assert!(!looks_like_name("Tel. 0511 123456", 1));
        assert!(!looks_like_name("Musterstraße 12", 1));
        assert!(!looks_like_name("Stadtteilzentrum Nord e.V.", 1));
        assert!(!looks_like_name("Mit freundlichen Grüßen", 1));
        assert!(!looks_like_name("Der Vorstand", 1));
        assert!(looks_like_name("Piet de Vries", 2));
    }

    #[test]
    fn display_names() {
        assert_eq!(
            display_parts("Demir, Fatma"),
            (Some("Fatma Demir".into()), None)
        );
        assert_eq!(
            display_parts("Fatma Demir (AWO Hannover)"),
            (Some("Fatma Demir".into()), Some("AWO Hannover".into()))
        );
        assert_eq!(
            display_parts("Verein Brücke e.V."),
            (None, Some("Verein Brücke e.V.".into()))
        );
    }

    #[test]
    fn signoffs() {
        let s = signoff(
            "Hallo,\nich komme.\n\nMit freundlichen Grüßen\n\nJürgen Größmann\nStadtteilzentrum Nord e.V.\nMusterstraße 12 · 30161 Hannover\nTel. 0511 123456",
            "",
        );
        assert_eq!(s.name.as_deref(), Some("Jürgen Größmann"));
        assert_eq!(s.org.as_deref(), Some("Stadtteilzentrum Nord e.V."));
        let s = signoff("Wir kommen.\nLG Ayşe", "");
        assert_eq!(s.name.as_deref(), Some("Ayşe"));
    }

    #[test]
    fn parties() {
        assert_eq!(party("Ich komme mit zwei Kolleginnen.").size(), 3);
        assert_eq!(party("Wir kommen zu dritt").size(), 3);
        assert_eq!(party("with my colleague").size(), 2);
        let p = party("Ich bringe Frau Demir mit.");
        assert_eq!(p.named, vec!["Frau Demir"]);
        assert_eq!(p.size(), 2);
        assert_eq!(party("Anmeldung für 3 Personen").size(), 3);
        assert_eq!(
            party("mit meiner Kollegin Fatma Demir").named,
            vec!["Fatma Demir"]
        );
        assert_eq!(party("mit meiner Kollegin Fatma Demir").size(), 2);
        assert_eq!(party("Ich melde mich an.").size(), 1);
        assert_eq!(party("Ich komme mit 2 Begleitpersonen").size(), 3);
        assert_eq!(party("ich komme, mein Mann kommt auch mit.").size(), 2);
        assert_eq!(party("ich melde mich und meine beiden Kinder an").size(), 3);
        assert_eq!(party("mein Mann kann leider nicht mitkommen").size(), 1);
        assert_eq!(party("bitte melden Sie meine Frau und mich an").size(), 2);
        assert_eq!(party("ich bringe meinen Sohn (16) mit").size(), 2);
        assert_eq!(party("ich komme, mein Sohn (12) auch.").size(), 2);
        assert_eq!(party("ich komme nun doch alleine").total, Some(1));
        assert_eq!(party("ich komme nicht alleine").total, None);
    }

    #[test]
    fn group_lists() {
        let g = group_list(
            "melden wir an:\n\n1. Malgorzata Nowak (Dialogrunde Bildung)\n2. Omar Haddad (Jugend)\n3. Jörg Weber (Wirtschaft)\n",
        );
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].name, "Malgorzata Nowak");
        assert!(g[0].rest.contains("Bildung"));
        let g = group_list("- Anna Weber, anna@example.org, Workshop 2\n- Workshop 3");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].email.as_deref(), Some("anna@example.org"));
    }

    #[test]
    fn names_with_addresses_in_prose() {
        let p = named_with_address(
            "please register our director, Dr. Amara Nwosu (amara.nwosu@example.org), workshop 1",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "Dr. Amara Nwosu");
        assert_eq!(p[0].email.as_deref(), Some("amara.nwosu@example.org"));
        assert!(p[0].rest.contains("workshop 1"));
    }

    #[test]
    fn forms() {
        let f = form(
            "Vorname: Fatma\nNachname: Demir\nE-Mail: fatma@example.com\nOrganisation: AWO\nWorkshop: 2\n",
        );
        assert_eq!(f.name.as_deref(), Some("Fatma Demir"));
        assert_eq!(f.email.as_deref(), Some("fatma@example.com"));
        assert_eq!(f.org.as_deref(), Some("AWO"));
    }
}
