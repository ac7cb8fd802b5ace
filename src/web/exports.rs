//! `GET /conferences/{id}/attendees.csv|.xlsx|.json`: the attendee list to
//! take away, filtered like the list page (`?q=`, `?status=`).
//!
//! - CSV: the format of `rsvpd attendees --format csv` (one writer in
//!   `crate::export`), UTF-8 with a byte-order mark so Excel shows umlauts;
//!   `?sep=;` for a German Excel, which splits on semicolons.
//! - XLSX: a header row in the reader's language, widths that fit, a status
//!   column in words, the header frozen and filterable. Every cell is written
//!   as a string or number, never a formula.
//! - JSON: the fields of `rsvpd attendees --format json`.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike as _, Timelike as _};
use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, XlsxError};
use serde::Deserialize;

use super::attendees::{ListQuery, filtered, workshop_titles};
use super::auth::Session;
use super::i18n::Lang;
use super::{WebError, WebState, visible_conference};
use crate::config::Conference;
use crate::storage::Registration;

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    #[serde(flatten)]
    pub list: ListQuery,
    #[serde(default)]
    pub sep: String,
}

fn download(content_type: &str, filename: String, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn csv(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let conf = visible_conference(&state.app(), &session, &id)?;
    let regs = filtered(&state, &conf, &query.list).await?;
    let delimiter = if query.sep == ";" { b';' } else { b',' };
    // The byte-order mark tells Excel the file is UTF-8.
    let mut body = "\u{feff}".as_bytes().to_vec();
    crate::export::write_attendees_csv_with(&mut body, &regs, delimiter)?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("{}-attendees.csv", conf.id),
        body,
    ))
}

pub async fn json(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let conf = visible_conference(&state.app(), &session, &id)?;
    let regs = filtered(&state, &conf, &query.list).await?;
    let body = serde_json::to_vec_pretty(&regs).map_err(anyhow::Error::from)?;
    Ok(download(
        "application/json",
        format!("{}-attendees.json", conf.id),
        body,
    ))
}

pub async fn xlsx(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let conf = visible_conference(&state.app(), &session, &id)?;
    let regs = filtered(&state, &conf, &query.list).await?;
    let body = workbook(&conf, &regs, lang)
        .map_err(|e| anyhow::anyhow!("cannot write the Excel file: {e}"))?;
    Ok(download(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        format!("{}-attendees.xlsx", conf.id),
        body,
    ))
}

/// The attendee list as an Excel workbook: one sheet, a status column.
pub fn workbook(
    conf: &Conference,
    regs: &[Registration],
    lang: Lang,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(lang.word("app"))?;
    let head = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDCE6F1))
        .set_border_bottom(FormatBorder::Thin);
    let wrap = Format::new().set_text_wrap();
    let date = Format::new().set_num_format(match lang.code() {
        "de" => "dd.mm.yyyy hh:mm",
        _ => "yyyy-mm-dd hh:mm",
    });
    let columns: [(&str, f64); 10] = [
        ("name", 28.0),
        ("email", 32.0),
        ("organization", 28.0),
        ("party_size", 10.0),
        ("companions", 28.0),
        ("workshops", 32.0),
        ("status", 16.0),
        ("language", 9.0),
        ("notes", 36.0),
        ("registered_at", 18.0),
    ];
    for (col, (key, width)) in columns.iter().enumerate() {
        let col = col as u16;
        ws.write_string_with_format(0, col, lang.word(key), &head)?;
        ws.set_column_width(col, *width)?;
    }
    for (i, r) in regs.iter().enumerate() {
        let row = i as u32 + 1;
        ws.write_string(row, 0, r.name.clone().unwrap_or_default())?;
        ws.write_string(row, 1, r.email.clone())?;
        ws.write_string(row, 2, r.organization.clone().unwrap_or_default())?;
        ws.write_number(row, 3, r.party_size)?;
        ws.write_string_with_format(row, 4, r.companions.join("\n"), &wrap)?;
        ws.write_string_with_format(
            row,
            5,
            workshop_titles(conf, &r.workshops).join("\n"),
            &wrap,
        )?;
        ws.write_string(row, 6, lang.status(r.status))?;
        ws.write_string(row, 7, r.language.code())?;
        ws.write_string_with_format(row, 8, r.notes.join("\n"), &wrap)?;
        let t = r.registered_at.with_timezone(&conf.timezone);
        let when = ExcelDateTime::from_ymd(t.year() as u16, t.month() as u8, t.day() as u8)?
            .and_hms(t.hour() as u16, t.minute() as u8, t.second())?;
        ws.write_datetime_with_format(row, 9, &when, &date)?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, regs.len() as u32, columns.len() as u16 - 1)?;
    wb.save_to_buffer()
}
