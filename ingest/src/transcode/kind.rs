//! Which camera files are media, and of what kind: by the name alone, so that the queue and
//! the status page decide without opening a file.

use serde::Serialize;

/// What a camera file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    Video,
    Audio,
    Photo,
}

/// The kind of a camera file from its extension; `None` for logs, settings and the like.
pub fn kind_of(name: &[u8]) -> Option<MediaKind> {
    let ext = name
        .rsplit(|b| *b == b'.')
        .next()
        .filter(|e| e.len() < name.len())?
        .to_ascii_lowercase();
    match ext.as_slice() {
        b"mp4" | b"mov" | b"avi" | b"ts" | b"mts" | b"m2ts" | b"mkv" | b"3gp" | b"asf" | b"wmv"
        | b"flv" | b"h264" | b"h265" | b"hevc" => Some(MediaKind::Video),
        b"wav" | b"mp3" | b"aac" | b"m4a" | b"amr" | b"ogg" | b"opus" | b"flac" | b"wma" => {
            Some(MediaKind::Audio)
        }
        b"jpg" | b"jpeg" | b"png" | b"bmp" | b"heic" | b"webp" => Some(MediaKind::Photo),
        _ => None,
    }
}

/// Whether the name says the MP4 family (MP4, MOV, 3GP, M4A): ISO BMFF, which can be remuxed
/// or salvaged.
pub(super) fn is_mp4_family(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    [b".mp4".as_slice(), b".mov", b".3gp", b".m4a"]
        .iter()
        .any(|e| lower.ends_with(e))
}
