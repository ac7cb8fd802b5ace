//! Attendee lists as organizers take them away: the CSV of `attendees --format
//! csv`, of the digest's attachment and of the dashboard's download, one
//! format for all.
//!
//! Every cell is made safe for spreadsheets first ([`spreadsheet_safe`]):
//! names and organisations come from strangers' mail, and a cell such as
//! `=HYPERLINK(…)` in an "Organisation:" line would run as a formula when an
//! organizer opens the file in Excel or LibreOffice (CSV injection).

use std::borrow::Cow;

use crate::storage::{Registration, ts};

/// `cell` as a spreadsheet shows it without evaluating it: a cell that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return (what
/// spreadsheets read as the start of a formula) gets a leading `'`, the
/// OWASP advice; every other cell is left as it is.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

pub const CSV_HEADER: [&str; 10] = [
    "email",
    "name",
    "organization",
    "party_size",
    "companions",
    "workshops",
    "status",
    "language",
    "notes",
    "registered_at",
];

/// Write `regs` as CSV (header first) into `out`.
pub fn write_attendees_csv<W: std::io::Write>(out: W, regs: &[Registration]) -> anyhow::Result<()> {
    write_attendees_csv_with(out, regs, b',')
}

/// Like [`write_attendees_csv`] with another field separator (German Excel
/// expects `;`).
pub fn write_attendees_csv_with<W: std::io::Write>(
    out: W,
    regs: &[Registration],
    delimiter: u8,
) -> anyhow::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(out);
    w.write_record(CSV_HEADER)?;
    for r in regs {
        let cells = [
            r.email.as_str(),
            r.name.as_deref().unwrap_or(""),
            r.organization.as_deref().unwrap_or(""),
            &r.party_size.to_string(),
            &r.companions.join("; "),
            &r.workshops.join("; "),
            r.status.as_str(),
            r.language.code(),
            &r.notes.join("; "),
            &ts(r.registered_at),
        ];
        w.write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// `regs` as CSV bytes.
pub fn attendees_csv(regs: &[Registration]) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    write_attendees_csv(&mut buf, regs)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_a_formula_are_escaped_and_nothing_else() {
        for (cell, safe) in [
            (
                "=HYPERLINK(\"http://x.example\",\"Klick\")",
                "'=HYPERLINK(\"http://x.example\",\"Klick\")",
            ),
            ("+49 511 123", "'+49 511 123"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("Verein Brückenbau e.V.", "Verein Brückenbau e.V."),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe, "{cell:?}");
        }
    }

    #[test]
    fn the_attendee_csv_escapes_every_column() {
        let (_dir, config) = crate::test_support::config(
            "[[conference]]\nid = \"miko-2027\"\ntitle = \"T\"\nstarts = \"2099-10-15T13:30\"\nends = \"2099-10-15T19:30\"\n",
        );
        let conf = config.expect("config").conferences[0].clone();
        let mut r = crate::mailer::sample_registration(
            &conf,
            crate::config::Language::De,
            chrono::Utc::now(),
        );
        r.name = Some("@Ayşe".into());
        r.organization = Some("=cmd|' /C calc'!A0".into());
        r.companions = vec!["+Mehmet".into()];
        r.notes = vec!["-Rollstuhl".into()];
        let csv = String::from_utf8(attendees_csv(&[r]).expect("csv")).expect("utf-8");
        let row: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
            .records()
            .next()
            .expect("a row")
            .expect("parses")
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(row[1], "'@Ayşe");
        assert_eq!(row[2], "'=cmd|' /C calc'!A0");
        assert_eq!(row[4], "'+Mehmet");
        assert_eq!(row[8], "'-Rollstuhl");
        for cell in &row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} in {csv}"
            );
        }
    }
}
