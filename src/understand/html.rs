//! Turns the HTML of an HTML-only mail into plain text good enough to read the
//! writer's intent: block elements become line breaks, list items become
//! "- " lines, entities are decoded, and quoted replies (`<blockquote>`, Gmail's
//! `gmail_quote`, Outlook's reply header) are prefixed with "> " so the reply
//! splitter drops them like quoted plain text. Not a renderer: no layout, no CSS.

/// Converts HTML to plain text. Never fails; unknown markup is dropped.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut quote_depth: usize = 0;
    // Tag names whose content is skipped entirely (style, script, head, title).
    let mut skip: Option<String> = None;
    let mut line_start = true;
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut pending_space = false;

    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(html.len(), |p| i + p + 3);
            i = end;
            continue;
        }
        if bytes[i] == b'<' {
            let end = match find_tag_end(rest) {
                Some(e) => i + e,
                None => {
                    // A lone '<' in text.
                    if skip.is_none() {
                        push_text(
                            &mut out,
                            "<",
                            quote_depth,
                            &mut line_start,
                            &mut pending_space,
                        );
                    }
                    i += 1;
                    continue;
                }
            };
            let tag = &html[i + 1..end.saturating_sub(1).max(i + 1)];
            i = end;
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            let attrs = tag.to_ascii_lowercase();
            if let Some(s) = &skip {
                if closing && *s == name {
                    skip = None;
                }
                continue;
            }
            match name.as_str() {
                "style" | "script" | "head" | "title" | "xml"
                    if !closing && !tag.ends_with('/') =>
                {
                    skip = Some(name);
                }
                "br" => {
                    if line_start && !out.is_empty() {
                        // An empty line in the source (e.g. Gmail's <div><br></div>).
                        out.push('\n');
                    }
                    newline(&mut out, &mut line_start, &mut pending_space);
                }
                "p" | "div" | "tr" | "table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul"
                | "ol" | "pre" | "address" | "center" | "section" | "article" | "header"
                | "footer" | "dl" | "dt" | "dd" => {
                    if !closing
                        && (attrs.contains("gmail_quote")
                            || attrs.contains("divrplyfwdmsg")
                            || attrs.contains("moz-cite-prefix")
                            || attrs.contains("yahoo_quoted")
                            || attrs.contains("appendonsend"))
                        && !attrs.contains("gmail_quote_container")
                    {
                        // Everything after a reply header is quoted text.
                        quote_depth += 1;
                    }
                    newline(&mut out, &mut line_start, &mut pending_space);
                    if name == "p" && closing {
                        // Paragraphs are separated by a blank line.
                        blank_line(&mut out, &mut line_start);
                    }
                }
                "li" if !closing => {
                    newline(&mut out, &mut line_start, &mut pending_space);
                    push_text(
                        &mut out,
                        "- ",
                        quote_depth,
                        &mut line_start,
                        &mut pending_space,
                    );
                }
                "li" => newline(&mut out, &mut line_start, &mut pending_space),
                "td" | "th" if closing => pending_space = true,
                "hr" => {
                    newline(&mut out, &mut line_start, &mut pending_space);
                    push_text(
                        &mut out,
                        "________________________________",
                        quote_depth,
                        &mut line_start,
                        &mut pending_space,
                    );
                    newline(&mut out, &mut line_start, &mut pending_space);
                }
                "blockquote" => {
                    newline(&mut out, &mut line_start, &mut pending_space);
                    if closing {
                        quote_depth = quote_depth.saturating_sub(1);
                    } else {
                        quote_depth += 1;
                    }
                }
                "img" => {
                    if let Some(alt) = attr_value(tag, "alt") {
                        let alt = decode_entities(&alt);
                        if !alt.trim().is_empty() {
                            pending_space = true;
                            push_text(
                                &mut out,
                                alt.trim(),
                                quote_depth,
                                &mut line_start,
                                &mut pending_space,
                            );
                            pending_space = true;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        // Text up to the next tag.
        let next = rest.find('<').map_or(html.len(), |p| i + p);
        if skip.is_none() {
            let text = decode_entities(&html[i..next]);
            let mut first = true;
            for word in text.split(|c: char| c.is_whitespace() && c != '\u{a0}') {
                if word.is_empty() {
                    if !first {
                        pending_space = true;
                    }
                    first = false;
                    continue;
                }
                if !first {
                    pending_space = true;
                }
                first = false;
                push_text(
                    &mut out,
                    word,
                    quote_depth,
                    &mut line_start,
                    &mut pending_space,
                );
            }
            if text.ends_with(|c: char| c.is_whitespace()) {
                pending_space = true;
            }
        }
        i = next;
    }
    // Collapse runs of blank lines.
    let mut result = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let l = line.trim_end();
        if l.trim_start_matches('>').trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
            result.push('\n');
            continue;
        }
        blank = 0;
        result.push_str(l);
        result.push('\n');
    }
    result.trim().to_string()
}

fn find_tag_end(rest: &str) -> Option<usize> {
    // Plausible tag: '<' followed by a letter, '/', '!' or '?'.
    let second = rest[1..].chars().next()?;
    if !(second.is_ascii_alphabetic() || matches!(second, '/' | '!' | '?')) {
        return None;
    }
    let mut quote: Option<char> = None;
    for (p, c) in rest.char_indices().skip(1) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '>' => return Some(p + 1),
            None => {}
        }
    }
    None
}

fn attr_value(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let pos = lower.find(&format!("{name}="))?;
    let rest = &tag[pos + name.len() + 1..];
    let mut chars = rest.chars();
    let q = chars.next()?;
    if q == '"' || q == '\'' {
        let v: String = chars.take_while(|&c| c != q).collect();
        Some(v)
    } else {
        Some(rest.split_whitespace().next().unwrap_or("").to_string())
    }
}

fn newline(out: &mut String, line_start: &mut bool, pending_space: &mut bool) {
    *pending_space = false;
    if !*line_start {
        out.push('\n');
        *line_start = true;
    }
}

fn blank_line(out: &mut String, line_start: &mut bool) {
    if !out.ends_with("\n\n") && !out.is_empty() {
        out.push('\n');
    }
    *line_start = true;
}

fn push_text(
    out: &mut String,
    text: &str,
    quote_depth: usize,
    line_start: &mut bool,
    pending_space: &mut bool,
) {
    if *line_start {
        for _ in 0..quote_depth {
            out.push_str("> ");
        }
        *line_start = false;
        *pending_space = false;
    } else if *pending_space {
        out.push(' ');
    }
    *pending_space = false;
    out.push_str(text);
}

/// Decodes HTML character references (named ones common in mail, and numeric).
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let Some(end) = end else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = if let Some(num) = entity.strip_prefix('#') {
            let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                u32::from_str_radix(hex, 16).ok()
            } else {
                num.parse::<u32>().ok()
            };
            code.map(|c| match c {
                // Numeric references in the C1 range mean windows-1252 (HTML5).
                0x80..=0x9f => cp1252_c1(c as u8),
                _ => char::from_u32(c).unwrap_or('\u{fffd}'),
            })
        } else {
            named_entity(entity)
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn cp1252_c1(b: u8) -> char {
    const TABLE: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    TABLE[(b - 0x80) as usize]
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "nbsp" => ' ',
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "eacute" => 'é',
        "egrave" => 'è',
        "ecirc" => 'ê',
        "Eacute" => 'É',
        "aacute" => 'á',
        "agrave" => 'à',
        "acirc" => 'â',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "oslash" => 'ø',
        "aring" => 'å',
        "euml" => 'ë',
        "iuml" => 'ï',
        "ndash" => '–',
        "mdash" => '—',
        "bdquo" => '„',
        "ldquo" => '“',
        "rdquo" => '”',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "laquo" => '«',
        "raquo" => '»',
        "hellip" => '…',
        "euro" => '€',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "shy" => '\u{ad}',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        "ensp" | "emsp" | "thinsp" => ' ',
        "deg" => '°',
        "sect" => '§',
        "times" => '×',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_divs_become_lines() {
        let t = to_text(
            "<div dir=\"ltr\">Hello,<div><br></div><div>I would like to register &ndash; ok?</div><div>Best regards,</div><div>Kwame Mensah</div></div>",
        );
        assert_eq!(
            t,
            "Hello,\n\nI would like to register – ok?\nBest regards,\nKwame Mensah"
        );
    }

    #[test]
    fn blockquotes_are_marked_as_quotes() {
        let t = to_text("<p>abmelden</p><blockquote><p>Anmeldung</p></blockquote>");
        assert!(t.starts_with("abmelden"));
        assert!(t.contains("> Anmeldung"));
    }

    #[test]
    fn entities_and_style() {
        let t = to_text(
            "<html><head><style>p{}</style></head><body><p>Gr&uuml;&szlig;e &#8222;x&#x201C; &#150; &amp;</p></body></html>",
        );
        assert_eq!(t, "Grüße „x“ – &");
    }

    #[test]
    fn broken_html_does_not_panic() {
        for s in [
            "<",
            "<<>",
            "<a href='x",
            "&#99999999;",
            "&",
            "<p>ä<",
            "<!-- x",
            "<br/",
        ] {
            let _ = to_text(s);
        }
    }
}
