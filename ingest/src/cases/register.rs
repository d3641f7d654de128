//! Reading a case register export (CSV or JSON) into case records, all or nothing.
//!
//! Every problem in the file is collected with its line (CSV, counting the header as line 1)
//! or entry (JSON, from 1) and column, so one pass over the report fixes the file.

use super::settings::{CaseSettings, Column};
use evidock_verify::case::{CaseRecord, CaseStatus, CaseWindow};
use evidock_verify::event::Timestamp;
use evidock_verify::id::{CaseId, OfficerId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

mod rows;

use rows::{csv_rows, json_rows};

/// One problem in a register file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// CSV: the line (the header is line 1). JSON: the entry, from 1. 0: the file as a whole.
    pub line: u64,
    /// The column (evidock's name), if the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'static str>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}", self.reason),
            (l, Some(c)) => write!(f, "line {l}, {c}: {}", self.reason),
            (l, None) => write!(f, "line {l}: {}", self.reason),
        }
    }
}

/// A register file that cannot be imported. Nothing was changed.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{file}: {} problem(s); nothing was imported:\n  {}", problems.len(), listed(problems))]
pub struct RegisterError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// The problems a message lists: the first [`LISTED`], then how many more (`--json` has all).
const LISTED: usize = 20;

fn listed(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .take(LISTED)
        .map(ToString::to_string)
        .collect();
    if problems.len() > LISTED {
        lines.push(format!(
            "… and {} more (`--json` lists every one)",
            problems.len() - LISTED
        ));
    }
    lines.join("\n  ")
}

/// A case read from the file, with the lines that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCase {
    pub record: CaseRecord,
    pub lines: Vec<u64>,
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// From the file name's extension.
    pub fn of(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") || lower.ends_with(".txt") {
            Some(Self::Csv)
        } else if lower.ends_with(".json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// One row (CSV) or entry (JSON), as text per column.
#[derive(Debug, Default)]
struct Row {
    line: u64,
    cells: BTreeMap<Column, String>,
    /// JSON only: officers and windows given as arrays.
    officers: Option<Vec<String>>,
    windows: Option<Vec<(String, String)>>,
}

/// The text of a register file: UTF-8 (with or without a byte-order mark, as spreadsheet
/// programs write it), else GBK (as Chinese Windows platforms export).
pub fn decode(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s.to_string()),
        Err(_) => evidock_verify::gbk::decode_strict(bytes),
    }
}

/// Read a register file into cases. Rows of the same case (several windows) are merged.
pub fn parse(
    file: &str,
    bytes: &[u8],
    format: Format,
    settings: &CaseSettings,
) -> Result<Vec<ParsedCase>, RegisterError> {
    let fail = |problems| RegisterError {
        file: file.to_string(),
        problems,
    };
    let Some(text) = decode(bytes) else {
        return Err(fail(vec![Problem {
            line: 0,
            column: None,
            reason: "the file is neither UTF-8 nor GBK text".into(),
        }]));
    };
    let rows = match format {
        Format::Csv => csv_rows(&text, settings),
        Format::Json => json_rows(&text, settings),
    }
    .map_err(|p| fail(vec![p]))?;
    let mut problems = Vec::new();
    let mut cases: BTreeMap<CaseId, ParsedCase> = BTreeMap::new();
    let mut first_line: BTreeMap<CaseId, u64> = BTreeMap::new();
    for row in rows {
        match case_of(&row, settings) {
            Ok(rec) => match cases.get_mut(&rec.case) {
                None => {
                    first_line.insert(rec.case.clone(), row.line);
                    cases.insert(
                        rec.case.clone(),
                        ParsedCase {
                            record: rec,
                            lines: vec![row.line],
                        },
                    );
                }
                Some(c) => {
                    let first = first_line.get(&rec.case).copied().unwrap_or(0);
                    match merge(&mut c.record, rec) {
                        Ok(()) => c.lines.push(row.line),
                        Err((column, reason)) => problems.push(Problem {
                            line: row.line,
                            column: Some(column),
                            reason: format!(
                                "{reason} (line {first} says otherwise for the same case)"
                            ),
                        }),
                    }
                }
            },
            Err(mut p) => problems.append(&mut p),
        }
    }
    if cases.is_empty() && problems.is_empty() {
        problems.push(Problem {
            line: 0,
            column: None,
            reason: "no cases in the file".into(),
        });
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(fail(problems));
    }
    Ok(cases
        .into_values()
        .map(|mut c| {
            c.record = normalise(c.record);
            c
        })
        .collect())
}

/// The most of a user's text a problem repeats: enough to find it, never the whole file.
const EXCERPT_CHARS: usize = 80;

/// `s`, cut to [`EXCERPT_CHARS`] with "…" when longer.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The longest field of a register, in bytes: a real title or place is a line of text; a
/// field that is a megabyte is a broken export, and would not fit in a custody event.
pub const MAX_FIELD_BYTES: usize = 4096;

/// A register time: ISO 8601 with an offset (`2023-05-06T09:00:00+08:00`, `…Z`; a space for
/// the `T` and minutes without seconds are accepted). Without an offset it is refused, unless
/// the configuration names the offset the register writes local times in.
pub fn parse_time(s: &str, settings: &CaseSettings) -> Result<Timestamp, String> {
    let t = s.trim().replacen(' ', "T", 1);
    if t.is_empty() {
        return Err("empty".into());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        let probe = if f.ends_with('Z') {
            t.clone()
        } else {
            t.replace('Z', "+00:00")
        };
        if let Ok(dt) = chrono::DateTime::parse_from_str(&probe, f) {
            return Ok(Timestamp::from_datetime(dt.with_timezone(&chrono::Utc)));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(&t, f) {
            return match settings.register_offset {
                Some(off) => Ok(Timestamp::from_datetime(crate::acquire::times::as_utc(
                    naive, off,
                ))),
                None => Err(format!(
                    "{s:?} has no UTC offset: write it as {t}+08:00 (China time) or …Z (UTC), or set [cases] register_offset"
                )),
            };
        }
    }
    Err(format!(
        "{:?} is not an ISO 8601 time (e.g. 2023-05-06T09:00:00+08:00)",
        excerpt(s)
    ))
}

fn case_of(row: &Row, settings: &CaseSettings) -> Result<CaseRecord, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bad = |column: Column, reason: String| {
        problems.push(Problem {
            line: row.line,
            column: Some(column.name()),
            reason,
        })
    };
    for (c, text) in &row.cells {
        if text.len() > MAX_FIELD_BYTES {
            bad(
                *c,
                format!(
                    "{} bytes, more than the {MAX_FIELD_BYTES} a field may have (it begins {:?})",
                    text.len(),
                    excerpt(text)
                ),
            );
        }
    }
    let cell = |c: Column| row.cells.get(&c).map(String::as_str).unwrap_or("");
    let case = match CaseId::new(cell(Column::CaseId).trim()) {
        Ok(c) if !cell(Column::CaseId).trim().is_empty() => Some(c),
        Ok(_) => {
            bad(Column::CaseId, "empty".into());
            None
        }
        Err(e) => {
            bad(Column::CaseId, excerpt(&e.to_string()));
            None
        }
    };
    // Officers: `;` separated (the full-width `；` too, as typed on a Chinese keyboard).
    let raw_officers: Vec<String> = match &row.officers {
        Some(list) => list.clone(),
        None => cell(Column::Officers)
            .split([';', '；'])
            .map(|s| s.trim().to_string())
            .collect(),
    };
    let mut officers: Vec<OfficerId> = Vec::new();
    for o in raw_officers.iter().filter(|o| !o.is_empty()) {
        match OfficerId::new(o.as_str()) {
            Ok(o) if !officers.contains(&o) => officers.push(o),
            Ok(_) => {}
            Err(e) => bad(Column::Officers, excerpt(&e.to_string())),
        }
    }
    if officers.is_empty() && raw_officers.iter().all(String::is_empty) {
        bad(
            Column::Officers,
            "no officer (write 执法证号 / 警号, separated by ;)".into(),
        );
    }
    let pairs: Vec<(String, String)> = match &row.windows {
        Some(w) => w.clone(),
        None => vec![(
            cell(Column::WindowStart).to_string(),
            cell(Column::WindowEnd).to_string(),
        )],
    };
    let mut windows = Vec::new();
    for (s, e) in pairs {
        let start = parse_time(&s, settings).map_err(|m| bad(Column::WindowStart, m));
        let end = parse_time(&e, settings).map_err(|m| bad(Column::WindowEnd, m));
        if let (Ok(start), Ok(end)) = (start, end) {
            if end < start {
                bad(
                    Column::WindowEnd,
                    format!("ends ({e}) before it starts ({s})"),
                );
            } else {
                windows.push(CaseWindow { start, end });
            }
        }
    }
    let status = match settings.status_of(cell(Column::Status)) {
        Some(s) => s,
        None => {
            bad(
                Column::Status,
                format!(
                    "{:?} is neither open nor closed (known: {})",
                    excerpt(cell(Column::Status)),
                    settings.status_words()
                ),
            );
            CaseStatus::Open
        }
    };
    match case {
        Some(case) if problems.is_empty() => Ok(CaseRecord {
            case,
            case_type: cell(Column::CaseType).to_string(),
            title: cell(Column::Title).to_string(),
            unit: cell(Column::Unit).to_string(),
            officers,
            windows,
            place: cell(Column::Place).to_string(),
            status,
        }),
        _ => Err(problems),
    }
}

/// Add another row of the same case: its window and officers. Other fields must agree where
/// both rows fill them in.
fn merge(into: &mut CaseRecord, row: CaseRecord) -> Result<(), (&'static str, String)> {
    for (col, a, b) in [
        (Column::CaseType, &mut into.case_type, row.case_type),
        (Column::Title, &mut into.title, row.title),
        (Column::Unit, &mut into.unit, row.unit),
        (Column::Place, &mut into.place, row.place),
    ] {
        if a.is_empty() {
            *a = b;
        } else if !b.is_empty() && *a != b {
            return Err((col.name(), format!("{b:?} differs from {a:?}")));
        }
    }
    if into.status != row.status {
        return Err((
            Column::Status.name(),
            format!(
                "{} differs from {}",
                row.status.as_str(),
                into.status.as_str()
            ),
        ));
    }
    for o in row.officers {
        if !into.officers.contains(&o) {
            into.officers.push(o);
        }
    }
    // Sorted once, by `normalise`, when every row is in: sorting here made a case of many rows
    // quadratic.
    into.windows.extend(row.windows);
    Ok(())
}

/// Put a record in its one written form (sorted windows without repeats), so the same case read
/// twice is equal.
pub fn normalise(mut r: CaseRecord) -> CaseRecord {
    r.windows.sort();
    r.windows.dedup();
    r
}

#[cfg(test)]
mod tests;
