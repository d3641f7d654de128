//! A register export read as rows: CSV (quoted fields, a header, the mapped columns) or JSON
//! (an array of objects), each row keeping its line for the problems it may have.

use super::*;

pub(super) fn csv_rows(text: &str, settings: &CaseSettings) -> Result<Vec<Row>, Problem> {
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

pub(super) fn json_rows(text: &str, settings: &CaseSettings) -> Result<Vec<Row>, Problem> {
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
