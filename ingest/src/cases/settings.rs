//! `[cases]` and `[retention]` in `evidock.toml`.

use evidock_verify::case::CaseStatus;
use evidock_verify::event::UtcOffset;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A column of evidock's case register format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    CaseId,
    CaseType,
    Title,
    Unit,
    Officers,
    WindowStart,
    WindowEnd,
    Place,
    Status,
}

impl Column {
    pub const ALL: [Column; 9] = [
        Self::CaseId,
        Self::CaseType,
        Self::Title,
        Self::Unit,
        Self::Officers,
        Self::WindowStart,
        Self::WindowEnd,
        Self::Place,
        Self::Status,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CaseId => "case_id",
            Self::CaseType => "case_type",
            Self::Title => "title",
            Self::Unit => "unit",
            Self::Officers => "officers",
            Self::WindowStart => "window_start",
            Self::WindowEnd => "window_end",
            Self::Place => "place",
            Self::Status => "status",
        }
    }

    /// A JSON register may give `windows` instead of one start and end.
    pub fn required(self) -> bool {
        matches!(
            self,
            Self::CaseId | Self::Officers | Self::WindowStart | Self::WindowEnd
        )
    }
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesSection {
    /// Minutes before a case window opens and after it closes in which a recording still
    /// matches it (officers start recording on the way, and stop after leaving).
    #[serde(default = "default_buffer")]
    pub buffer_minutes: u32,
    /// The UTC offset of register times written without one (e.g. "+08:00"). Default: such
    /// times are refused.
    #[serde(default)]
    pub register_offset: Option<String>,
    /// Another platform's column names: evidock's column = the export's header, e.g.
    /// `case_id = "案件编号"`, `officers = "执法人员证号"`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Headers of the export that evidock reads nothing from (e.g. `["备注", "当事人"]`). Any
    /// other column it does not know is refused as a likely misspelling.
    #[serde(default)]
    pub ignore_columns: Vec<String>,
    /// Status words (besides `open` and `closed`) meaning the case is still handled.
    #[serde(default = "default_open_words")]
    pub open_words: Vec<String>,
    /// Status words meaning the case is closed.
    #[serde(default = "default_closed_words")]
    pub closed_words: Vec<String>,
}

impl Default for CasesSection {
    fn default() -> Self {
        CasesSection {
            buffer_minutes: default_buffer(),
            register_offset: None,
            columns: BTreeMap::new(),
            ignore_columns: Vec::new(),
            open_words: default_open_words(),
            closed_words: default_closed_words(),
        }
    }
}

fn default_buffer() -> u32 {
    5
}
fn default_open_words() -> Vec<String> {
    ["办理中", "在办", "待审核", "未结案"]
        .map(String::from)
        .to_vec()
}
fn default_closed_words() -> Vec<String> {
    ["已结案", "结案", "已办结", "办结", "已归档"]
        .map(String::from)
        .to_vec()
}

/// Validated `[cases]`.
#[derive(Debug, Clone)]
pub struct CaseSettings {
    pub buffer: chrono::Duration,
    pub register_offset: Option<UtcOffset>,
    columns: BTreeMap<Column, String>,
    /// Headers read nothing from.
    pub ignore_columns: Vec<String>,
    open_words: Vec<String>,
    closed_words: Vec<String>,
}

impl Default for CaseSettings {
    fn default() -> Self {
        // The defaults validate: no columns, a small buffer.
        CasesSection::default()
            .validate()
            .unwrap_or_else(|_| unreachable!("the default [cases] is valid"))
    }
}

impl CasesSection {
    /// Validate; errors name the key.
    pub fn validate(self) -> Result<CaseSettings, (String, String)> {
        if self.buffer_minutes > 24 * 60 {
            return Err(("cases.buffer_minutes".into(), "at most 1440 (a day)".into()));
        }
        let register_offset = self
            .register_offset
            .map(|s| {
                s.parse::<UtcOffset>()
                    .map_err(|e| ("cases.register_offset".to_string(), e))
            })
            .transpose()?;
        let mut columns = BTreeMap::new();
        for (ours, theirs) in self.columns {
            let Some(col) = Column::ALL.into_iter().find(|c| c.name() == ours) else {
                return Err((
                    format!("cases.columns.{ours}"),
                    format!(
                        "not a column of the case register (known: {})",
                        Column::ALL.map(Column::name).join(", ")
                    ),
                ));
            };
            if theirs.trim().is_empty() {
                return Err((format!("cases.columns.{ours}"), "empty header name".into()));
            }
            columns.insert(col, theirs);
        }
        Ok(CaseSettings {
            buffer: chrono::Duration::minutes(i64::from(self.buffer_minutes)),
            register_offset,
            columns,
            ignore_columns: self.ignore_columns,
            open_words: self.open_words,
            closed_words: self.closed_words,
        })
    }
}

impl CaseSettings {
    /// The header the register uses for `col`.
    pub fn header_of(&self, col: Column) -> &str {
        self.columns
            .get(&col)
            .map(String::as_str)
            .unwrap_or(col.name())
    }

    /// The status a register word means (empty: open).
    pub fn status_of(&self, word: &str) -> Option<CaseStatus> {
        let w = word.trim();
        if w.is_empty() || w.eq_ignore_ascii_case("open") || self.open_words.iter().any(|o| o == w)
        {
            Some(CaseStatus::Open)
        } else if w.eq_ignore_ascii_case("closed") || self.closed_words.iter().any(|c| c == w) {
            Some(CaseStatus::Closed)
        } else {
            None
        }
    }

    pub fn status_words(&self) -> String {
        let mut all = vec!["open".to_string(), "closed".to_string()];
        all.extend(self.open_words.iter().cloned());
        all.extend(self.closed_words.iter().cloned());
        all.join(", ")
    }
}

/// `[retention]`: categories and how long each keeps evidence.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// The category of new evidence. It must keep evidence until a person decides (no `days`).
    #[serde(default = "default_category")]
    pub default_category: String,
    /// Dispose of expired, unlinked evidence without a person asking (`evidock retention
    /// dispose`). Off by default: disposal is an explicit action.
    #[serde(default)]
    pub auto_dispose: bool,
    /// The categories. Default: 未分类 (kept until categorised), 日常执法 (183 days), 案件证据
    /// (permanent).
    #[serde(default = "default_categories")]
    pub category: Vec<CategoryConfig>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryConfig {
    pub name: String,
    /// Days from the recording (or, without a recording time, the acquisition) until the
    /// evidence may be disposed of; at least 183 (six months: 《公安机关现场执法视音频记录工作规定》
    /// Art. 13). Without it, evidence of the category is kept until a person changes the category.
    #[serde(default)]
    pub days: Option<u32>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            default_category: default_category(),
            auto_dispose: false,
            category: default_categories(),
        }
    }
}

fn default_category() -> String {
    "未分类".into()
}

fn default_categories() -> Vec<CategoryConfig> {
    vec![
        CategoryConfig {
            name: "未分类".into(),
            days: None,
        },
        CategoryConfig {
            name: "日常执法".into(),
            days: Some(183),
        },
        CategoryConfig {
            name: "案件证据".into(),
            days: None,
        },
    ]
}

/// The shortest retention a category may have, in days (six months).
pub const MIN_DAYS: u32 = 183;

/// Validated `[retention]`.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub default_category: String,
    pub auto_dispose: bool,
    /// Category → days (`None`: kept until a person changes the category).
    pub categories: BTreeMap<String, Option<u32>>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionConfig::default()
            .validate()
            .unwrap_or_else(|_| unreachable!("the default [retention] is valid"))
    }
}

impl RetentionConfig {
    pub fn validate(self) -> Result<RetentionSettings, (String, String)> {
        let mut categories = BTreeMap::new();
        for (i, c) in self.category.into_iter().enumerate() {
            let key = format!("retention.category[{i}]");
            let name = c.name.trim().to_string();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err((
                    format!("{key}.name"),
                    "empty or with control characters".into(),
                ));
            }
            if let Some(d) = c.days
                && d < MIN_DAYS
            {
                return Err((
                    format!("{key}.days"),
                    format!(
                        "{d} is shorter than six months ({MIN_DAYS} days), the least footage is kept"
                    ),
                ));
            }
            if categories.insert(name.clone(), c.days).is_some() {
                return Err((format!("{key}.name"), format!("{name:?} is named twice")));
            }
        }
        match categories.get(&self.default_category) {
            None => Err((
                "retention.default_category".into(),
                format!("{:?} is not a configured category", self.default_category),
            )),
            Some(Some(_)) => Err((
                "retention.default_category".into(),
                format!(
                    "{:?} expires; the default category must keep evidence until a person categorises it",
                    self.default_category
                ),
            )),
            Some(None) => Ok(RetentionSettings {
                default_category: self.default_category,
                auto_dispose: self.auto_dispose,
                categories,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_floor_and_default_category_are_enforced() {
        let cfg: RetentionConfig = toml::from_str(
            "[[category]]\nname = \"未分类\"\n[[category]]\nname = \"短\"\ndays = 30\n",
        )
        .unwrap();
        let (key, msg) = cfg.validate().unwrap_err();
        assert_eq!(key, "retention.category[1].days");
        assert!(msg.contains("183"), "{msg}");
        let cfg: RetentionConfig = toml::from_str(
            "default_category = \"日常\"\n[[category]]\nname = \"日常\"\ndays = 200\n",
        )
        .unwrap();
        assert_eq!(cfg.validate().unwrap_err().0, "retention.default_category");
        assert_eq!(
            RetentionSettings::default().categories.get("日常执法"),
            Some(&Some(183))
        );
    }

    #[test]
    fn column_mapping_names_the_key() {
        let mut s = CasesSection::default();
        s.columns.insert("case_no".into(), "案件编号".into());
        assert_eq!(s.validate().unwrap_err().0, "cases.columns.case_no");
        let mut s = CasesSection::default();
        s.columns.insert("case_id".into(), "案件编号".into());
        assert_eq!(s.validate().unwrap().header_of(Column::CaseId), "案件编号");
    }
}
