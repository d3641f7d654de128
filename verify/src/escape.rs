//! Text from what is checked, made safe to print for people.
//!
//! File names, case IDs and manifest paths come from the package, which the party presenting
//! the evidence made. Printed raw, `ESC[2J ESC[H` and a fake "Integrity: PROVEN" line would
//! erase the real findings from a terminal, and a right-to-left override would make
//! `evil<U+202E>4pm.exe` read as `evilexe.mp4`. So everything taken from the input is shown through
//! [`Shown`]: C0 and C1 controls (ESC among them) and DEL, the bidi marks, embeddings, overrides
//! and isolates (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069), zero-width and other
//! invisible characters (U+200B–U+200D, U+2060–U+2064, U+FEFF, U+180E, U+00AD), and the line and
//! paragraph separators (U+2028, U+2029) are written as `\u{…}`, and a backslash as `\\`, so the
//! shown text is unambiguous. Chinese and every other visible character print as they are.
//! JSON output is not escaped this way: serde_json keeps the exact string.

use std::fmt;

/// Whether `c` is shown escaped.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text`, escaped for a terminal or a printed report.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let s = self.0;
        // Fast path: nothing to escape (the usual case).
        if !s.chars().any(|c| c == '\\' || needs_escape(c)) {
            return f.write_str(s);
        }
        for c in s.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if needs_escape(c) {
                write!(f, "\\u{{{:04X}}}", c as u32)?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// [`Shown`] as a `String`.
pub fn shown(s: &str) -> String {
    Shown(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisibles_are_escaped_cjk_is_not() {
        assert_eq!(shown("晋应急罚〔2023〕102号"), "晋应急罚〔2023〕102号");
        assert_eq!(shown("a\u{1b}[2J\u{1b}[Hb"), "a\\u{001B}[2J\\u{001B}[Hb");
        assert_eq!(shown("evil\u{202E}4pm.exe"), "evil\\u{202E}4pm.exe");
        assert_eq!(shown("x\u{0085}y\u{009B}z"), "x\\u{0085}y\\u{009B}z");
        assert_eq!(
            shown("a\rb\nc\td\u{7f}"),
            "a\\u{000D}b\\u{000A}c\\u{0009}d\\u{007F}"
        );
        assert_eq!(
            shown("zw\u{200B}j\u{200D}\u{FEFF}"),
            "zw\\u{200B}j\\u{200D}\\u{FEFF}"
        );
        assert_eq!(
            shown("\u{2066}\u{2069}\u{061C}\u{200E}"),
            "\\u{2066}\\u{2069}\\u{061C}\\u{200E}"
        );
        assert_eq!(shown("back\\slash"), "back\\\\slash");
        // Unambiguous: a name that spells an escape differs from the escaped character.
        assert_ne!(shown("\\u{001B}"), shown("\u{1b}"));
    }

    #[test]
    fn every_escaped_output_is_printable_ascii_or_visible() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let out = shown(&c.to_string());
            assert!(
                out.chars().all(|o| !needs_escape(o)),
                "U+{:04X} shown as {out:?}",
                c as u32
            );
        }
    }
}
