//! Attendee lists as organizers take them away: the CSV of `attendees --format
//! csv`, of the digest's attachment and of the dashboard's download, one
//! format for all.

use crate::storage::{Registration, ts};

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
        w.write_record([
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
        ])?;
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
