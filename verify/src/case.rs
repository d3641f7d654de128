//! Cases as the case register describes them, and what a custody log says about them.
//!
//! A case enters the custody log as a `case-registered` event holding the whole [`CaseRecord`];
//! a changed case (a re-import) is another `case-registered` event, and the latest one counts.
//! Links between evidence and cases are `linked` / `unlinked` events. Everything a reviewer or a
//! second station needs to see the same cases and links is therefore in the signed log.

use crate::event::Timestamp;
use crate::id::{CaseId, OfficerId, Sha256};
use serde::{Deserialize, Serialize};

/// Whether a case is still being handled. Evidence linked to an open case is on legal hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    #[default]
    Open,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// When officers worked on a case (dispatch to clearance, an inspection, a hearing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CaseWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// One case of the case register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// As the register writes it, e.g. `晋应急罚〔2023〕102号`: opaque, compared byte for byte.
    pub case: CaseId,
    /// 轻微告诫改正 / 简易程序 / 一般程序 / 案件移送 / 疑难问题, or the register's own words.
    #[serde(default)]
    pub case_type: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub unit: String,
    /// 执法证号 / 警号 of the officers on the case, in the register's order, without repeats.
    pub officers: Vec<OfficerId>,
    /// Sorted, without repeats.
    pub windows: Vec<CaseWindow>,
    #[serde(default)]
    pub place: String,
    #[serde(default)]
    pub status: CaseStatus,
}

/// The payload of a `case-registered` event: a case as imported, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRegisteredPayload {
    #[serde(flatten)]
    pub record: CaseRecord,
    /// The imported file's name (not its path).
    pub source: String,
    /// SHA-256 of the imported file's bytes.
    pub source_sha256: Sha256,
    /// The file's lines (CSV, from 1 with the header) or array positions (JSON, from 0) that
    /// describe this case.
    pub lines: Vec<u64>,
}

impl crate::event::Payload for CaseRegisteredPayload {
    const KIND: crate::event::EventKind = crate::event::EventKind::CaseRegistered;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_unicode_ids() {
        let json = serde_json::json!({
            "case": "晋应急罚〔2023〕102号",
            "case_type": "一般程序",
            "officers": ["14010001", "14010002"],
            "windows": [{"start": "2023-05-06T01:00:00.000Z", "end": "2023-05-06T03:00:00.000Z"}],
            "source": "register.csv",
            "source_sha256": "00".repeat(32),
            "lines": [2, 3],
        });
        let p: CaseRegisteredPayload = serde_json::from_value(json).unwrap();
        assert_eq!(p.record.case.as_str(), "晋应急罚〔2023〕102号");
        assert_eq!(p.record.status, CaseStatus::Open);
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["case"], "晋应急罚〔2023〕102号");
        assert_eq!(back["status"], "open");
    }
}
