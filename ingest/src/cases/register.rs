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

fn csv_rows(text: &str, settings: &CaseSettings) -> Result<Vec<Row>, Problem> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| Problem {
        line: 1,
        column: None,
        reason: format!("cannot read the header: {e}"),
    })?;
    let mut at: BTreeMap<Column, usize> = BTreeMap::new();
    for col in Column::ALL {
        let name = settings.header_of(col);
        if let Some(i) = headers.iter().position(|h| h == name) {
            at.insert(col, i);
        } else if col.required() {
            return Err(Problem {
                line: 1,
                column: Some(col.name()),
                reason: format!(
                    "the header has no column {name:?} (found: {}){}",
                    excerpt(&headers.iter().collect::<Vec<_>>().join(",")),
                    if name == col.name() {
                        String::new()
                    } else {
                        format!("; [cases.columns] maps {} to it", col.name())
                    }
                ),
            });
        }
    }
    // A column evidock does not know is a misspelling or a field it would drop without a
    // word (`case_typ` erased the case type and signed the change): refused, by name.
    let unknown: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| {
            !h.is_empty()
                && !at.values().any(|j| j == i)
                && !settings.ignore_columns.iter().any(|c| c == h)
        })
        .map(|(_, h)| format!("{:?}", excerpt(h)))
        .collect();
    if !unknown.is_empty() {
        return Err(Problem {
            line: 1,
            column: None,
            reason: format!(
                "unknown column(s) {} (known: {}): correct the header, map them with [cases.columns], or list them in [cases] ignore_columns",
                unknown.join(", "),
                Column::ALL
                    .iter()
                    .map(|c| settings.header_of(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut rows = Vec::new();
    let mut lines = Lines::new(text);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Problem {
            line: e.position().map_or(0, |p| lines.of(p.byte())),
            column: None,
            reason: excerpt(&e.to_string()),
        })?;
        // From the byte offset, not the reader's line count: the same for LF and CRLF files.
        let line = rec.position().map_or(0, |p| lines.of(p.byte()));
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let cells = at
            .iter()
            .map(|(c, i)| (*c, rec.get(*i).unwrap_or("").to_string()))
            .collect();
        rows.push(Row {
            line,
            cells,
            ..Row::default()
        });
    }
    Ok(rows)
}

/// Lines (from 1) of byte offsets in a text, asked in increasing order: each newline is counted
/// once, however many records there are.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line holding byte `at` (an offset before the last one asked counts from the start).
    fn of(&mut self, at: u64) -> u64 {
        let mut at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        // After a CRLF record the reader stands between its CR and LF: the next record starts
        // past the line ending (counting from the CR put every CRLF line one too early).
        while at < self.text.len() && matches!(self.text[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.at {
            (self.at, self.line) = (0, 1);
        }
        self.line += self.text[self.at..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.at = at;
        self.line
    }
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

fn json_rows(text: &str, settings: &CaseSettings) -> Result<Vec<Row>, Problem> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Problem {
        line: 0,
        column: None,
        reason: format!("not JSON: {e}"),
    })?;
    let entries = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("cases") {
            Some(serde_json::Value::Array(a)) => a,
            _ => {
                return Err(Problem {
                    line: 0,
                    column: None,
                    reason: "expected an array of cases, or an object with a \"cases\" array"
                        .into(),
                });
            }
        },
        _ => {
            return Err(Problem {
                line: 0,
                column: None,
                reason: "expected an array of cases".into(),
            });
        }
    };
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut rows = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut row = Row {
            line: i as u64 + 1,
            ..Row::default()
        };
        let Some(o) = e.as_object() else {
            row.cells.insert(Column::CaseId, String::new());
            rows.push(row);
            continue;
        };
        let known =
            |k: &str| k == "windows" || Column::ALL.iter().any(|c| settings.header_of(*c) == k);
        let unknown: Vec<String> = o
            .keys()
            .filter(|k| !known(k))
            .map(|k| format!("{:?}", excerpt(k)))
            .collect();
        if !unknown.is_empty() {
            return Err(Problem {
                line: row.line,
                column: None,
                reason: format!(
                    "unknown field(s) {}: correct them, map them with [cases.columns], or list them in [cases] ignore_columns",
                    unknown.join(", ")
                ),
            });
        }
        for col in Column::ALL {
            let Some(v) = o.get(settings.header_of(col)) else {
                continue;
            };
            match (col, v) {
                (Column::Officers, serde_json::Value::Array(a)) => {
                    row.officers = Some(a.iter().map(text_of).collect());
                }
                _ => {
                    row.cells.insert(col, text_of(v));
                }
            }
        }
        if let Some(serde_json::Value::Array(ws)) = o.get("windows") {
            row.windows = Some(
                ws.iter()
                    .map(|w| {
                        (
                            w.get("start").map(text_of).unwrap_or_default(),
                            w.get("end").map(text_of).unwrap_or_default(),
                        )
                    })
                    .collect(),
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

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
mod tests {
    use super::*;

    fn settings() -> CaseSettings {
        CaseSettings::default()
    }

    const HEADER: &str =
        "case_id,case_type,title,unit,officers,window_start,window_end,place,status\n";

    #[test]
    fn rows_of_one_case_merge_and_ids_stay_as_written() {
        let csv = format!(
            "{HEADER}晋应急罚〔2023〕102号,一般程序,某矿业公司安全检查,执法一中队,14010001;14010002,2023-05-06T09:00:00+08:00,2023-05-06T11:00:00+08:00,某镇,open\n\
             晋应急罚〔2023〕102号,,,,14010003；14010001,2023-05-08 01:00:00Z,2023-05-08T02:30:00Z,,\n"
        );
        let cases = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap();
        assert_eq!(cases.len(), 1);
        let c = &cases[0].record;
        assert_eq!(c.case.as_str(), "晋应急罚〔2023〕102号");
        assert_eq!(c.officers.len(), 3);
        assert_eq!(c.windows.len(), 2);
        assert_eq!(c.windows[0].start.to_string(), "2023-05-06T01:00:00.000Z");
        assert_eq!(c.windows[1].end.to_string(), "2023-05-08T02:30:00.000Z");
        assert_eq!(cases[0].lines, vec![2, 3]);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = format!(
            "{HEADER}A1,,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T08:00:00+08:00,,\n\
             A2,,,,,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n\
             A3,,,,p1,2023-05-06 09:00,2023-05-06T10:00:00+08:00,,maybe\n\
             A4,,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n"
        );
        let e = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap_err();
        let lines: Vec<_> = e.problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(
            lines,
            vec![
                (2, Some("window_end")),
                (3, Some("officers")),
                (4, Some("window_start")),
                (4, Some("status"))
            ],
            "{e}"
        );
        assert!(e.to_string().contains("+08:00"), "{e}");
    }

    #[test]
    fn gbk_files_bom_and_json_are_read() {
        let csv = format!(
            "\u{feff}{HEADER}晋应急罚〔2023〕7号,简易程序,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,已结案\n"
        );
        let gbk = evidock_verify::gbk::encode(&csv.replace('\u{feff}', "")).unwrap();
        for bytes in [csv.as_bytes().to_vec(), gbk] {
            let c = parse("r.csv", &bytes, Format::Csv, &settings()).unwrap();
            assert_eq!(c[0].record.case.as_str(), "晋应急罚〔2023〕7号");
            assert_eq!(c[0].record.status, CaseStatus::Closed);
        }
        let json = r#"{"cases":[{"case_id":"X-1","officers":["p1","p2"],"windows":[{"start":"2023-05-06T01:00:00Z","end":"2023-05-06T02:00:00Z"}]}]}"#;
        let c = parse("r.json", json.as_bytes(), Format::Json, &settings()).unwrap();
        assert_eq!(c[0].record.officers.len(), 2);
        assert_eq!(c[0].record.windows.len(), 1);
    }

    #[test]
    fn conflicting_rows_of_one_case_are_refused() {
        let csv = format!(
            "{HEADER}A1,一般程序,,,p1,2023-05-06T09:00:00+08:00,2023-05-06T10:00:00+08:00,,\n\
             A1,简易程序,,,p1,2023-05-07T09:00:00+08:00,2023-05-07T10:00:00+08:00,,\n"
        );
        let e = parse("r.csv", csv.as_bytes(), Format::Csv, &settings()).unwrap_err();
        assert_eq!(e.problems[0].line, 3);
        assert_eq!(e.problems[0].column, Some("case_type"));
    }
}
