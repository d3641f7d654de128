//! Reading custody events line by line, each line bounded: a line longer than an event may be is
//! reported and skipped without being held in memory.

use super::code;
use crate::event::{CustodyEvent, EventError, MAX_EVENT_BYTES};
use crate::finding::Report;
use crate::id::{Sha256, StationId};
use crate::merkle::MemoryTree;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

/// What one bounded line read gave.
pub(crate) enum Line {
    /// No more bytes.
    End,
    /// A complete line (without its `\n`) in the buffer.
    Complete,
    /// Bytes after the last `\n`: an interrupted append.
    Torn,
    /// A line longer than the limit; it was read past, not kept. Its length and leaf hash.
    TooLong(u64, Sha256),
}

pub(crate) fn read_line(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    use sha2::Digest as _;
    buf.clear();
    // Once a line is over the limit, its bytes are only hashed (as its Merkle leaf), not kept.
    let mut over: Option<(u64, sha2::Sha256)> = None;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if over.is_none() && buf.is_empty() {
                Line::End
            } else {
                Line::Torn
            });
        }
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        match &mut over {
            None if buf.len() + part.len() <= limit => buf.extend_from_slice(part),
            None => {
                let mut h = sha2::Sha256::new();
                h.update([0u8]);
                h.update(&buf[..]);
                h.update(part);
                over = Some(((buf.len() + part.len()) as u64, h));
                buf.clear();
            }
            Some((n, h)) => {
                h.update(part);
                *n += part.len() as u64;
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(match over {
                Some((n, h)) => Line::TooLong(n, Sha256(h.finalize().into())),
                None => Line::Complete,
            });
        }
    }
}

/// A log with more lines that are not events than this is not read further: each costs a leaf
/// and a finding, and no station writes them (a torn tail is one line).
pub const MAX_NOT_EVENTS: usize = 10_000;

/// Read events line by line into `tree`, reporting every problem. A line that cannot be parsed
/// still occupies its leaf (its bytes are what the checkpoint covers); `each` is called for
/// every leaf with its position and the event, if it parsed.
pub fn read_events(
    reader: impl Read,
    station: Option<&StationId>,
    tree: &mut MemoryTree,
    r: &mut Report,
    mut each: impl FnMut(u64, Option<&CustodyEvent>),
) {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut line = Vec::with_capacity(1024);
    let mut keys: HashMap<[u8; 16], u64> = HashMap::new();
    let mut seq = 0u64;
    let mut not_events = 0usize;
    loop {
        if not_events > MAX_NOT_EVENTS {
            r.error(
                code::EVENT_MALFORMED,
                format!("event #{seq}"),
                format!("more than {MAX_NOT_EVENTS} lines that are not events: the rest of the log is not read"),
            );
            break;
        }
        let got = match read_line(&mut reader, &mut line, MAX_EVENT_BYTES) {
            Ok(g) => g,
            Err(e) => {
                r.error(code::LOG_UNREADABLE, format!("event #{seq}"), e.to_string());
                break;
            }
        };
        let subject = format!("event #{seq}");
        match got {
            Line::End => break,
            Line::Torn => {
                r.warning(
                    code::LOG_TORN_TAIL,
                    format!("after event #{}", seq.saturating_sub(1)),
                    "bytes after the last complete event (an interrupted append)",
                );
                break;
            }
            Line::TooLong(n, leaf) => {
                // Still a leaf of the tree (hashed as it streamed past), but not an event.
                r.error(
                    code::EVENT_MALFORMED,
                    &subject,
                    format!("a line of {n} bytes, more than the {MAX_EVENT_BYTES} an event may have: not read"),
                );
                tree.push(leaf);
                each(seq, None);
                seq += 1;
                not_events += 1;
                continue;
            }
            Line::Complete => {}
        }
        tree.push_entry(&line);
        match CustodyEvent::parse(&line) {
            Ok(ev) => {
                if let Some(st) = station
                    && &ev.station != st
                {
                    r.error(
                        code::EVENT_WRONG_STATION,
                        &subject,
                        format!("belongs to station {}, not {st}", ev.station),
                    );
                }
                if ev.seq != seq {
                    r.error(
                        code::EVENT_OUT_OF_ORDER,
                        &subject,
                        format!(
                            "says it is event #{} (events moved, dropped or inserted)",
                            ev.seq
                        ),
                    );
                }
                let kh = key_hash(&ev.key);
                if let Some(first) = keys.insert(kh, seq) {
                    r.error(
                        code::EVENT_DUPLICATE_KEY,
                        &subject,
                        format!(
                            "repeats the idempotency key of event #{first}: {:?}",
                            ev.key
                        ),
                    );
                }
                unknown_parts(&ev, &subject, r);
                if ev.kind.is_known()
                    && let Err(e) = ev.check_payload()
                {
                    r.error(code::EVENT_BAD_PAYLOAD, &subject, e.to_string());
                }
                each(seq, Some(&ev));
            }
            Err(EventError::NotCanonical) => {
                r.error(
                    code::EVENT_NOT_CANONICAL,
                    &subject,
                    "the bytes are not the canonical encoding of the event",
                );
                not_events += 1;
                each(seq, None);
            }
            Err(e) => {
                r.error(code::EVENT_MALFORMED, &subject, e.to_string());
                not_events += 1;
                each(seq, None);
            }
        }
        seq += 1;
    }
}

/// A later version's kinds, roles and subjects are warnings, not errors: the event is still
/// proven, this verifier only cannot say what it means.
pub(crate) fn unknown_parts(ev: &CustodyEvent, subject: &str, r: &mut Report) {
    if !ev.kind.is_known() {
        r.warning(
            code::EVENT_UNKNOWN_KIND,
            subject,
            format!("kind {:?} is unknown to this verifier", ev.kind.as_str()),
        );
    }
    if !ev.actor.role.is_known() {
        r.warning(
            code::EVENT_UNKNOWN_ROLE,
            subject,
            format!(
                "actor role {:?} is unknown to this verifier",
                ev.actor.role.as_str()
            ),
        );
    }
    if !ev.subject.is_known() {
        r.warning(
            code::EVENT_UNKNOWN_SUBJECT,
            subject,
            format!(
                "subject kind {:?} is unknown to this verifier",
                ev.subject.kind()
            ),
        );
    }
}

fn key_hash(key: &str) -> [u8; 16] {
    let d = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.0[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let mut data = b"abc\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100));
        data.extend_from_slice(b"\nde\nf");
        let mut r = BufReader::with_capacity(7, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).unwrap(),
            Line::Complete
        ));
        assert_eq!(buf, b"abc");
        match read_line(&mut r, &mut buf, 10).unwrap() {
            Line::TooLong(n, leaf) => {
                assert_eq!(n, 100);
                assert_eq!(leaf, crate::merkle::leaf_hash(&[b'x'; 100]));
            }
            _ => panic!("not too long"),
        }
        assert!(buf.len() <= 10);
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).unwrap(),
            Line::Complete
        ));
        assert_eq!(buf, b"de");
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).unwrap(),
            Line::Torn
        ));
        assert!(matches!(
            read_line(&mut r, &mut buf, 10).unwrap(),
            Line::End
        ));
    }
}
