//! Reads raw mail bytes into a [`Mail`]: the few headers the understanding
//! step looks at, decoded (RFC 2047, any charset mail-parser knows), and one
//! readable body text. Owns all charset and transfer-encoding repair: header
//! blocks in undeclared 8-bit, text parts whose declared charset is missing or
//! wrong (UTF-8 first, else windows-1252), HTML-only mail, delivery-status
//! parts of bounces, and messages attached as `message/rfc822`.
//! Never panics and never does I/O; a body it cannot read is reported in
//! [`Mail::decode_problem`] instead.

use std::borrow::Cow;

use regex::Regex;

use super::pattern::Pattern;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Address, Encoding, Message, MessageParser, MimeHeaders, PartType};

use super::html;
use super::text::{self, MAX_TEXT};

/// One address with its decoded display name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
    /// The decoded display name held a line break or another control
    /// character (removed from `name`): header injection, not a person.
    pub name_broken: bool,
}

/// What the understanding step needs from one message.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub message_id: Option<String>,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// To, Cc, Delivered-To, X-Original-To, Envelope-To; as written (a
    /// confirmation token in a plus address may be case-sensitive).
    pub recipients: Vec<String>,
    pub subject: String,
    /// All header fields: lowercased name, unfolded value (not RFC 2047-decoded).
    pub headers: Vec<(String, String)>,
    /// `type/subtype` of the whole message, lowercased.
    pub content_type: String,
    /// Parameters of the top-level Content-Type, names lowercased.
    pub content_type_params: Vec<(String, String)>,
    /// The readable text of the body (plain text, or HTML converted).
    pub body: String,
    pub body_from_html: bool,
    /// Raw text of `message/delivery-status` parts.
    pub delivery_status: Vec<String>,
    /// File names (or types) of attachments that are not the body.
    pub attachments: Vec<String>,
    /// Messages attached as `message/rfc822` (e.g. "forward as attachment").
    pub attached: Vec<Mail>,
    /// The iCalendar method (lowercased: "reply", "request", …) of a
    /// `text/calendar` part anywhere in the message, also one that is only
    /// an alternative to the text (Outlook's "Accepted:" replies); empty
    /// when the part names none.
    pub calendar_method: Option<String>,
    /// Why the body could not be read, if it could not.
    pub decode_problem: Option<String>,
    /// The message had no header fields at all (binary noise, empty input).
    pub no_headers: bool,
}

impl Mail {
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }
}

/// Parses raw bytes. Returns `None` only when there is nothing at all to read.
pub fn parse(raw: &[u8]) -> Option<Mail> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let raw = repair_header_block(raw);
    let message = MessageParser::default().parse(raw.as_ref())?;
    Some(read_message(&message, 0))
}

/// A header block with raw 8-bit bytes that are not UTF-8 was written by a
/// client that used its local charset; re-encode it as windows-1252 → UTF-8 so
/// mail-parser (which reads raw header bytes as UTF-8) sees the real letters.
fn repair_header_block(raw: &[u8]) -> Cow<'_, [u8]> {
    let end = header_end(raw);
    let head = &raw[..end];
    if std::str::from_utf8(head).is_ok() {
        return Cow::Borrowed(raw);
    }
    let mut out = decode_cp1252(head).into_bytes();
    out.extend_from_slice(&raw[end..]);
    Cow::Owned(out)
}

fn header_end(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let next = &raw[i + 1..];
            if next.starts_with(b"\n") || next.starts_with(b"\r\n") {
                return i + 1;
            }
        }
        i += 1;
    }
    raw.len()
}

fn read_message(message: &Message<'_>, depth: usize) -> Mail {
    let mut mail = Mail::default();
    let root = message.root_part();

    for header in &root.headers {
        let name = header.name.as_str().to_ascii_lowercase();
        let raw_value = message
            .raw_message
            .get(header.offset_start as usize..header.offset_end as usize)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let value = unfold(&raw_value);
        if mail.headers.len() < 500 {
            mail.headers.push((name, value));
        }
    }
    mail.no_headers = root.headers.is_empty();

    mail.message_id = message
        .message_id()
        .map(|id| text::one_line(id.trim_matches(['<', '>'])));
    mail.subject = message
        .subject()
        .map(|s| text::one_line(&repair_encoded_words(s)))
        .unwrap_or_default();
    mail.from = message.from().and_then(first_mailbox);
    mail.reply_to = message.reply_to().and_then(first_mailbox);

    let mut recipients = Vec::new();
    for addr in [message.to(), message.cc()].into_iter().flatten() {
        push_addresses(addr, &mut recipients);
    }
    for (name, value) in &mail.headers {
        if matches!(
            name.as_str(),
            "delivered-to" | "x-original-to" | "envelope-to" | "x-envelope-to" | "resent-to"
        ) {
            for a in text::addresses_as_written(value) {
                if !recipients.contains(&a) {
                    recipients.push(a);
                }
            }
        }
    }
    mail.recipients = recipients;

    if let Some(ct) = root.content_type() {
        mail.content_type = format!(
            "{}/{}",
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase()
        );
        if let Some(attrs) = &ct.attributes {
            mail.content_type_params = attrs
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect();
        }
    } else {
        mail.content_type = "text/plain".into();
    }

    read_bodies(message, &mut mail, depth);
    mail
}

fn read_bodies(message: &Message<'_>, mail: &mut Mail, depth: usize) {
    let mut plain = String::new();
    let mut html_text = String::new();
    let mut problem: Option<String> = None;

    for &id in &message.text_body {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        // HTML parts are read from `html_body` below, only if no plain text.
        if let PartType::Text(_) = &part.body {
            match part_text(message, id as usize) {
                Ok(t) => append(&mut plain, &t),
                Err(p) => problem = Some(p),
            }
        }
    }
    if plain.trim().is_empty() {
        for &id in &message.html_body {
            let Some(part) = message.parts.get(id as usize) else {
                continue;
            };
            if let PartType::Html(_) = &part.body {
                match part_text(message, id as usize) {
                    Ok(t) => append(&mut html_text, &html::to_text(&t)),
                    Err(p) => problem = Some(p),
                }
            }
        }
    }

    for (idx, part) in message.parts.iter().enumerate() {
        let ct = part
            .content_type()
            .map(|ct| {
                format!(
                    "{}/{}",
                    ct.c_type.to_ascii_lowercase(),
                    ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase()
                )
            })
            .unwrap_or_default();
        if ct == "text/calendar" && mail.calendar_method.is_none() {
            let method = part
                .content_type()
                .and_then(|c| c.attribute("method"))
                .map(str::to_string)
                .or_else(|| {
                    let text = part_text(message, idx).ok()?;
                    let line = text.lines().find(|l| l.starts_with("METHOD:"))?;
                    Some(line["METHOD:".len()..].to_string())
                })
                .unwrap_or_default();
            mail.calendar_method = Some(method.trim().to_ascii_lowercase());
        }
        if (ct == "message/delivery-status" || ct == "message/global-delivery-status")
            && let Some(bytes) = part_bytes(message, idx)
        {
            mail.delivery_status
                .push(String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TEXT)]).into_owned());
        }
        if matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_))
            && !ct.starts_with("message/")
            && !ct.starts_with("text/rfc822")
            && !ct.starts_with("multipart/")
            && part.content_id().is_none()
            && mail.attachments.len() < 20
        {
            let name = part
                .attachment_name()
                .map(text::one_line)
                .unwrap_or_else(|| text::one_line(&ct));
            // Signatures and business cards are not content.
            let lower = name.to_ascii_lowercase();
            let noise = [".vcf", ".p7s", ".asc", ".sig", "winmail.dat"]
                .iter()
                .any(|e| lower.ends_with(e))
                || ct.contains("vcard")
                || ct.contains("signature")
                || ct == "application/ms-tnef";
            if !noise {
                mail.attachments.push(name);
            }
        }
        if let PartType::Message(inner) = &part.body
            && depth < 3
            && mail.attached.len() < 5
        {
            mail.attached.push(read_message(inner, depth + 1));
        }
    }

    if !plain.trim().is_empty() {
        mail.body = text::clean(&plain);
    } else if !html_text.trim().is_empty() {
        mail.body = text::clean(&html_text);
        mail.body_from_html = true;
    } else {
        mail.decode_problem = problem;
    }
    if mail.decode_problem.is_none() && !mail.body.is_empty() && !looks_like_text(&mail.body) {
        mail.decode_problem =
            Some("the text of the message is unreadable (binary data or a broken encoding)".into());
    }
}

fn append(into: &mut String, text: &str) {
    if !into.is_empty() {
        into.push('\n');
    }
    into.push_str(text);
}

/// Most characters of human text are letters, digits, punctuation and spaces;
/// binary noise decoded as windows-1252 is full of control and symbol chars.
fn looks_like_text(s: &str) -> bool {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in s.chars().take(4000) {
        total += 1;
        if c == '\u{fffd}'
            || (c.is_control() && c != '\n' && c != '\t')
            || ('\u{80}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
        {
            bad += 1;
        }
    }
    total == 0 || bad * 20 < total
}

/// The transfer-decoded bytes of a part, read from the raw message.
fn part_bytes(message: &Message<'_>, idx: usize) -> Option<Vec<u8>> {
    let part = message.parts.get(idx)?;
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let raw = &raw[..raw.len().min(4 * MAX_TEXT)];
    Some(match part.encoding {
        Encoding::QuotedPrintable => decode_qp(raw),
        Encoding::Base64 => decode_base64(raw),
        Encoding::None => raw.to_vec(),
    })
}

/// The decoded text of a text part, choosing the charset with care: a declared
/// charset is trusted unless the bytes say otherwise (a "us-ascii" or
/// "iso-8859-1" part whose bytes are valid UTF-8 is UTF-8; a "utf-8" part that
/// is not valid UTF-8 is windows-1252); no declaration means UTF-8, else
/// windows-1252. An unknown charset on non-ASCII bytes is a decode problem.
fn part_text(message: &Message<'_>, idx: usize) -> Result<String, String> {
    let Some(part) = message.parts.get(idx) else {
        return Err("missing body part".into());
    };
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase());
    if part.is_encoding_problem
        && part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"))
    {
        return Err(
            "the text is marked as base64 but is not valid base64, so it cannot be read".into(),
        );
    }
    let Some(bytes) = part_bytes(message, idx) else {
        // Offsets out of range: fall back to what mail-parser decoded.
        return Ok(part.text_contents().unwrap_or_default().to_string());
    };
    let ascii = bytes.is_ascii();
    let utf8 = std::str::from_utf8(&bytes).ok();
    let text = match charset.as_deref() {
        None
        | Some("")
        | Some("us-ascii")
        | Some("ascii")
        | Some("utf-8")
        | Some("utf8")
        | Some("unicode-1-1-utf-8")
        | Some("x-unknown")
        | Some("unknown-8bit")
        | Some("default") => match utf8 {
            Some(s) => s.to_string(),
            None => decode_cp1252(&bytes),
        },
        Some(cs) if is_latin_single_byte(cs) => match utf8 {
            Some(s) if !ascii && plausible_utf8(s) => s.to_string(),
            _ => match charset_decoder(cs.as_bytes()) {
                Some(decoder) => decoder(&bytes),
                None => decode_cp1252(&bytes),
            },
        },
        Some(cs) => match charset_decoder(cs.as_bytes()) {
            Some(decoder) => decoder(&bytes),
            None if ascii => utf8.unwrap_or_default().to_string(),
            None => match utf8 {
                Some(s) => s.to_string(),
                None => {
                    return Err(format!(
                        "the text is in a character set that cannot be read ({})",
                        text::one_line(cs)
                    ));
                }
            },
        },
    };
    Ok(text)
}

/// Decodes RFC 2047 words that mail-parser left as they were because they
/// are broken (no closing "?=", spaces inside, an unknown charset).
pub fn repair_encoded_words(s: &str) -> String {
    static WORD: Pattern = Pattern::new(|| {
        Regex::new(r"=\?([A-Za-z0-9_.:-]+)(?:\*[A-Za-z-]+)?\?([QqBb])\?([^?\s]*)(?:\?=)?")
            .expect("regex")
    });
    if !s.contains("=?") {
        return s.to_string();
    }
    WORD.replace_all(s, |c: &regex::Captures<'_>| {
        let charset = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
        let data = c.get(3).map_or("", |m| m.as_str());
        let bytes = if c
            .get(2)
            .is_some_and(|m| m.as_str().eq_ignore_ascii_case("q"))
        {
            decode_qp(data.replace('_', " ").as_bytes())
        } else {
            decode_base64(data.as_bytes())
        };
        match std::str::from_utf8(&bytes) {
            Ok(t) if charset.starts_with("utf") || bytes.is_ascii() => t.to_string(),
            _ => match charset_decoder(charset.as_bytes()) {
                Some(decoder) => decoder(&bytes),
                None => decode_cp1252(&bytes),
            },
        }
    })
    .into_owned()
}

fn is_latin_single_byte(cs: &str) -> bool {
    let cs = cs.replace('_', "-");
    matches!(
        cs.as_str(),
        "iso-8859-1"
            | "iso8859-1"
            | "latin1"
            | "latin-1"
            | "iso-8859-15"
            | "iso8859-15"
            | "latin9"
            | "windows-1252"
            | "cp1252"
            | "windows-1250"
            | "cp1250"
            | "iso-8859-2"
            | "iso-8859-9"
            | "windows-1254"
    )
}

/// Valid UTF-8 with at least one multi-byte sequence that is a letter: real
/// UTF-8 text, not a Latin-1 text that happens to decode.
fn plausible_utf8(s: &str) -> bool {
    s.chars().any(|c| !c.is_ascii() && c.is_alphabetic())
}

/// windows-1252 (a superset of ISO-8859-1 for printable text) to UTF-8.
pub fn decode_cp1252(bytes: &[u8]) -> String {
    match charset_decoder(b"windows-1252") {
        Some(decoder) => decoder(bytes),
        None => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// Lenient quoted-printable: soft line breaks, `=XX` escapes in either case,
/// anything malformed is kept as it is.
pub fn decode_qp(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'=' {
            if raw.get(i + 1) == Some(&b'\r') && raw.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if raw.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            // "=  \r\n": soft break with trailing white space.
            let mut j = i + 1;
            while j < raw.len() && (raw[j] == b' ' || raw[j] == b'\t') {
                j += 1;
            }
            if j > i + 1 && (raw.get(j) == Some(&b'\n') || raw.get(j) == Some(&b'\r')) {
                i = if raw.get(j) == Some(&b'\r') {
                    j + 2
                } else {
                    j + 1
                };
                continue;
            }
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                raw.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Lenient base64: skips white space and junk, stops at padding.
pub fn decode_base64(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0u32;
    for &c in raw {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                // Padding ends a quantum; reset so concatenated chunks work.
                bits = 0;
                buf = 0;
                continue;
            }
            _ => continue,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

fn unfold(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(8192));
    let mut space = false;
    for c in s.chars() {
        if c == '\r' || c == '\n' {
            space = true;
            continue;
        }
        if space {
            if !c.is_whitespace() && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            if c.is_whitespace() {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
                continue;
            }
        }
        out.push(c);
        if out.len() > 16 * 1024 {
            break;
        }
    }
    out.trim().to_string()
}

fn first_mailbox(addr: &Address<'_>) -> Option<Mailbox> {
    let mut list = Vec::new();
    collect_mailboxes(addr, &mut list);
    list.into_iter().next()
}

fn collect_mailboxes(addr: &Address<'_>, out: &mut Vec<Mailbox>) {
    let list: Vec<&mail_parser::Addr<'_>> = match addr {
        Address::List(l) => l.iter().collect(),
        Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
    };
    for a in list {
        let address = a
            .address
            .as_deref()
            .map(|s| {
                text::one_line(s)
                    .trim_matches(['<', '>', '"', '\''])
                    .to_lowercase()
            })
            .filter(|s| s.contains('@') && !s.contains(' '));
        let decoded = a.name.as_deref().map(repair_encoded_words);
        let name_broken = decoded.as_deref().is_some_and(|n| {
            // Line breaks, NULs and other controls (a tab is harmless), and
            // the bidi overrides that disguise a name.
            n.chars().any(|c| {
                (c.is_control() && c != '\t')
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
        });
        let name = decoded
            .as_deref()
            .map(text::one_line)
            .map(|n| n.trim_matches(['"', '\'', ' ']).to_string())
            .filter(|n| !n.is_empty());
        match address {
            Some(address) => out.push(Mailbox {
                address,
                name,
                name_broken,
            }),
            None => {
                // "Name <broken" or a bare word: look for an address anywhere.
                if let Some(found) = name
                    .as_deref()
                    .and_then(|n| text::addresses(n).into_iter().next())
                {
                    out.push(Mailbox {
                        address: found,
                        name: None,
                        name_broken,
                    });
                }
            }
        }
    }
}

fn push_addresses(addr: &Address<'_>, out: &mut Vec<String>) {
    let list: Vec<&mail_parser::Addr<'_>> = match addr {
        Address::List(l) => l.iter().collect(),
        Address::Group(groups) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
    };
    for a in list {
        let found = a
            .address
            .as_deref()
            .map(|s| {
                text::one_line(s)
                    .trim_matches(['<', '>', '"', '\''])
                    .to_string()
            })
            .filter(|s| s.contains('@') && !s.contains(' '));
        if let Some(found) = found
            && !out.contains(&found)
        {
            out.push(found);
        }
    }
}

/// Message-IDs in In-Reply-To and References (without `<>`), in that order.
pub fn thread_references(raw: &[u8]) -> Vec<String> {
    let raw = repair_header_block(raw);
    let end = header_end(&raw);
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut out: Vec<String> = Vec::new();
    for wanted in ["in-reply-to", "references"] {
        for value in header_values(&head, wanted) {
            let mut found = false;
            let mut rest = value.as_str();
            while let Some(start) = rest.find('<') {
                let after = &rest[start + 1..];
                let Some(end) = after.find('>') else { break };
                let id = after[..end].trim();
                if !id.is_empty() && id.len() < 1000 && !out.iter().any(|o| o == id) {
                    out.push(text::one_line(id));
                }
                found = true;
                rest = &after[end + 1..];
            }
            if !found {
                for tok in value.split_whitespace() {
                    if tok.contains('@') && tok.len() < 1000 && !out.iter().any(|o| o == tok) {
                        out.push(text::one_line(tok));
                    }
                }
            }
        }
    }
    out
}

fn header_values(head: &str, wanted: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case(wanted)
        {
            current = Some(value.trim().to_string());
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_and_base64() {
        assert_eq!(
            decode_qp(b"m=F6chte=\r\n gern =3D"),
            b"m\xf6chte gern =".to_vec()
        );
        assert_eq!(decode_qp(b"a=\nb =zz"), b"ab =zz".to_vec());
        assert_eq!(decode_base64(b"SGFs\r\nbG8="), b"Hallo".to_vec());
    }

    #[test]
    fn undeclared_8bit_falls_back_to_cp1252() {
        let raw = b"From: a@b.de\r\nSubject: x\r\n\r\nGr\xfc\xdfe\r\n";
        let m = parse(raw).expect("mail");
        assert_eq!(m.body.trim(), "Grüße");
    }

    #[test]
    fn latin1_header_bytes_are_repaired() {
        let raw = b"From: J\xfcrgen M\xfcller <j@b.de>\r\nSubject: Anmeldung\r\n\r\nHallo\r\n";
        let m = parse(raw).expect("mail");
        assert_eq!(
            m.from.and_then(|f| f.name).as_deref(),
            Some("Jürgen Müller")
        );
    }

    #[test]
    fn broken_encoded_words_are_repaired() {
        assert_eq!(
            repair_encoded_words("=?utf-8?q?Anmeldung_Migrationskonferenz"),
            "Anmeldung Migrationskonferenz"
        );
        assert_eq!(
            repair_encoded_words("=?iso-8859-1?q?M=FCller?= x"),
            "Müller x"
        );
        assert_eq!(repair_encoded_words("plain"), "plain");
    }

    #[test]
    fn references_are_listed() {
        let raw = b"In-Reply-To: <a@x>\r\nReferences: <b@x>\r\n <a@x>\r\n\r\nbody";
        assert_eq!(
            thread_references(raw),
            vec!["a@x".to_string(), "b@x".to_string()]
        );
    }
}
