//! Findings: what a check found, with a stable code, a level and the thing it is about.
//!
//! A check never stops at the first problem: it collects every finding into a [`Report`] and the
//! caller decides the exit status from the worst level. Codes are stable strings (documented in
//! `docs/findings.md`); the human text may change between releases, the code may not.

use crate::escape::Shown;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Something a reader should know, e.g. which key fingerprints were relied on.
    Info,
    /// Integrity holds but something is not attested, e.g. a checkpoint without a trusted time.
    Warning,
    /// Integrity is not proven: a digest, signature or proof does not match, or data is missing.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: reports align the level in a column (`{:<7}`).
        f.pad(match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `event.not-canonical`.
    pub code: &'static str,
    pub level: Level,
    /// What the finding is about: a file, an event (`event #12`), a checkpoint (`checkpoint 40`).
    pub subject: String,
    /// Human explanation: what was expected, what was found.
    pub message: String,
}

/// For people: the subject and message may quote the input (file names, case IDs), so both
/// are shown escaped ([`crate::escape`]); JSON keeps them exact.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {:<34} {}: {}",
            self.level,
            self.code,
            Shown(&self.subject),
            Shown(&self.message)
        )
    }
}

/// At most this many findings of one code are kept; the rest are counted ([`Report::more`]).
/// A hostile input with a million bad lines must not cost a million findings of memory, and no
/// reader wants to scroll through them.
pub const MAX_PER_CODE: usize = 50;

/// Findings of one code and level beyond [`MAX_PER_CODE`]: counted, not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unkept {
    pub code: &'static str,
    pub level: Level,
    pub count: u64,
}

/// Every finding of one check, in the order found (up to [`MAX_PER_CODE`] of each code).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Findings not kept, by code and level.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<Unkept>,
    #[serde(skip)]
    per_code: HashMap<&'static str, usize>,
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(
        &mut self,
        code: &'static str,
        level: Level,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        let kept = self.per_code.entry(code).or_default();
        if *kept >= MAX_PER_CODE {
            self.count_unkept(code, level, 1);
            return;
        }
        *kept += 1;
        self.findings.push(Finding {
            code,
            level,
            subject: subject.into(),
            message: message.into(),
        });
    }

    pub fn error(
        &mut self,
        code: &'static str,
        subject: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.push(code, Level::Error, subject, msg);
    }

    pub fn warning(
        &mut self,
        code: &'static str,
        subject: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.push(code, Level::Warning, subject, msg);
    }

    pub fn info(&mut self, code: &'static str, subject: impl Into<String>, msg: impl Into<String>) {
        self.push(code, Level::Info, subject, msg);
    }

    pub fn extend(&mut self, other: Report) {
        for f in other.findings {
            self.push(f.code, f.level, f.subject, f.message);
        }
        for m in other.more {
            self.count_unkept(m.code, m.level, m.count);
        }
    }

    fn count_unkept(&mut self, code: &'static str, level: Level, n: u64) {
        match self
            .more
            .iter_mut()
            .find(|m| m.code == code && m.level == level)
        {
            Some(m) => m.count += n,
            None => self.more.push(Unkept {
                code,
                level,
                count: n,
            }),
        }
    }

    /// The worst level found, or `None` for an empty report.
    pub fn worst(&self) -> Option<Level> {
        self.findings
            .iter()
            .map(|f| f.level)
            .chain(self.more.iter().map(|m| m.level))
            .max()
    }

    pub fn has_errors(&self) -> bool {
        self.worst() == Some(Level::Error)
    }

    /// Findings of this level, those counted but not kept included.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
            + self
                .more
                .iter()
                .filter(|m| m.level == level)
                .map(|m| m.count as usize)
                .sum::<usize>()
    }

    /// Findings of this code, those counted but not kept included.
    pub fn count_code(&self, code: &str) -> usize {
        self.findings.iter().filter(|f| f.code == code).count()
            + self
                .more
                .iter()
                .filter(|m| m.code == code)
                .map(|m| m.count as usize)
                .sum::<usize>()
    }

    /// Whether any finding carries this code.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code) || self.more.iter().any(|m| m.code == code)
    }
}

/// Codes about the files of what is checked, package or log: each is read beneath the directory,
/// only if it is a regular file, and only up to its size cap ([`crate::beneath`]).
pub mod file {
    pub mod code {
        pub const NOT_REGULAR: &str = "file.not-regular";
        pub const TOO_LARGE: &str = "file.too-large";
        pub const UNREADABLE: &str = "file.unreadable";

        pub const ALL: &[&str] = &[NOT_REGULAR, TOO_LARGE, UNREADABLE];
    }
}

/// Codes of `evidock verify`, the station's review of its spool and evidence store against its
/// custody log (the checks run in the station; the codes are part of the report format).
pub mod store {
    pub mod code {
        pub const ORIGINAL_MISSING: &str = "store.original-missing";
        pub const ORIGINAL_ALTERED: &str = "store.original-altered";
        pub const NOT_UPLOADED: &str = "store.not-uploaded";
        pub const DERIVATIVE_MISSING: &str = "store.derivative-missing";
        pub const DERIVATIVE_ALTERED: &str = "store.derivative-altered";
        pub const DERIVATIVE_NOT_UPLOADED: &str = "store.derivative-not-uploaded";
        pub const RECORD_MISSING: &str = "store.record-missing";
        pub const RECORD_MISMATCH: &str = "store.record-mismatch";
        pub const UNREADABLE: &str = "store.unreadable";
        pub const CASE_UNREGISTERED: &str = "case.unregistered";
        pub const SUMMARY: &str = "verify.summary";

        pub const ALL: &[&str] = &[
            ORIGINAL_MISSING,
            ORIGINAL_ALTERED,
            NOT_UPLOADED,
            DERIVATIVE_MISSING,
            DERIVATIVE_ALTERED,
            DERIVATIVE_NOT_UPLOADED,
            RECORD_MISSING,
            RECORD_MISMATCH,
            UNREADABLE,
            CASE_UNREGISTERED,
            SUMMARY,
        ];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_level_wins() {
        let mut r = Report::new();
        assert_eq!(r.worst(), None);
        r.info("a", "x", "m");
        r.warning("b", "x", "m");
        assert_eq!(r.worst(), Some(Level::Warning));
        r.error("c", "x", "m");
        r.info("d", "x", "m");
        assert_eq!(r.worst(), Some(Level::Error));
        assert!(r.has_errors());
        assert_eq!(r.count(Level::Info), 2);
        assert!(r.has("c"));
    }

    #[test]
    fn findings_of_one_code_are_kept_up_to_a_cap_then_counted() {
        let mut r = Report::new();
        for i in 0..(MAX_PER_CODE + 50) {
            r.warning("many", format!("line {i}"), "m");
        }
        r.error("many", "last", "m");
        assert_eq!(r.findings.len(), MAX_PER_CODE);
        assert_eq!(r.more.iter().map(|m| m.count).sum::<u64>(), 51);
        assert!(r.has_errors(), "a counted error still counts");
        assert_eq!(r.count(Level::Error), 1);
        assert_eq!(r.count(Level::Warning), MAX_PER_CODE + 50);
    }
}

#[cfg(test)]
mod docs {
    use super::store;

    /// Every code the checks can emit is documented in docs/findings.md, and every code
    /// documented there exists.
    #[test]
    fn findings_doc_lists_every_code() {
        let doc = include_str!("../../docs/findings.md");
        let mut codes: Vec<&str> = crate::logcheck::code::ALL.to_vec();
        codes.extend_from_slice(crate::timestamp::TimestampError::CODES);
        codes.extend_from_slice(crate::package::code::ALL);
        codes.extend_from_slice(store::code::ALL);
        codes.extend_from_slice(super::file::code::ALL);
        codes.extend_from_slice(crate::expect::code::ALL);
        for c in &codes {
            assert!(
                doc.contains(&format!("`{c}`")),
                "{c} is not in docs/findings.md"
            );
        }
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let code = line.split('`').nth(1).unwrap_or_default();
            assert!(
                codes.contains(&code),
                "docs/findings.md lists {code}, which no check emits"
            );
        }
    }
}
