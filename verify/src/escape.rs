//! Text from what is checked, made safe to print for people.
//!
//! File names, case IDs and manifest paths come from the package, which the party presenting
//! the evidence made. Printed raw, `ESC[2J ESC[H` and a fake "Integrity: PROVEN" line would
//! erase the real findings from a terminal, and a right-to-left override would make
//! `evil<U+202E>4pm.exe` read as `evilexe.mp4`. So everything taken from the input is shown through
//! [`Shown`]: C0 and C1 controls (ESC among them) and DEL, the bidi marks, embeddings, overrides
//! and isolates (U+200E, U+200F, U+061C, U+202A–U+202E, U+2066–U+2069), zero-width, tag and
//! other invisible or default-ignorable characters (U+200B–U+200D, U+2060–U+2064, U+FEFF,
//! U+E0000–U+E0FFF, variation selectors, Hangul fillers, …), the line and paragraph separators,
//! and every space after the first of a run (which could push text to the start of a wrapped
//! line) are written as `\u{…}`, and a backslash as `\\`, so the shown text is unambiguous.
//! Chinese and every other visible character print as they are. JSON output keeps the exact
//! strings, with the same characters written as `\uXXXX` escapes ([`JsonSafe`]).

use std::fmt;

/// Whether `c` is shown escaped: controls, format characters (Cf: bidi, zero-width, tags, …)
/// and the other default-ignorable code points a terminal draws as nothing.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
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
        if !s.chars().any(|c| c == '\\' || needs_escape(c)) && !s.contains("  ") {
            return f.write_str(s);
        }
        let mut prev = '\0';
        for c in s.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if needs_escape(c) || (c == ' ' && prev == ' ') {
                // A run of spaces could push text to the start of a wrapped terminal line,
                // where it would read like a line of the report: only the first is a space.
                write!(f, "\\u{{{:04X}}}", c as u32)?;
            } else {
                f.write_char(c)?;
            }
            prev = c;
        }
        Ok(())
    }
}

/// [`Shown`] as a `String`.
pub fn shown(s: &str) -> String {
    Shown(s).to_string()
}

/// A serde_json formatter that writes what [`needs_escape`] as `\uXXXX` escapes: the JSON
/// value is exactly the input's string, but printed to a terminal it cannot repaint it.
#[derive(Debug)]
pub struct JsonSafe<'a>(serde_json::ser::PrettyFormatter<'a>);

/// `value` as pretty JSON, with [`JsonSafe`] escapes.
pub fn to_json_pretty<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        JsonSafe(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut ser)?;
    // serde_json writes valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl serde_json::ser::Formatter for JsonSafe<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        for c in fragment.chars() {
            if needs_escape(c) {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{:04x}", u)?;
                }
            } else {
                let mut b = [0u8; 4];
                w.write_all(c.encode_utf8(&mut b).as_bytes())?;
            }
        }
        Ok(())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
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
        assert_eq!(shown("a  b   c"), "a \\u{0020}b \\u{0020}\\u{0020}c");
        assert_eq!(
            shown("tag\u{E0041}\u{FE0F}\u{3164}"),
            "tag\\u{E0041}\\u{FE0F}\\u{3164}"
        );
        // Unambiguous: a name that spells an escape differs from the escaped character.
        assert_ne!(shown("\\u{001B}"), shown("\u{1b}"));
    }

    #[test]
    fn json_keeps_the_exact_string_but_escapes_what_would_repaint_a_terminal() {
        let evil = "a\u{1b}[2J\u{202E}\u{0085}b\u{E0041}晋";
        let text = to_json_pretty(&serde_json::json!({ "path": evil })).unwrap();
        assert!(
            text.chars().all(|c| c == '\n' || !needs_escape(c)),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["path"], evil);
        assert!(text.contains("晋"));
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
