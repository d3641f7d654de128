//! This evidock was built without FFmpeg (`--no-default-features`): derivatives cannot be made,
//! and every job says so. Media metadata is left out of evidence records.

use super::settings::TranscodeSettings;
use evidock_verify::media::MediaInfo;
use std::path::Path;
use std::sync::atomic::AtomicBool;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{path}: this evidock was built without FFmpeg (feature `transcode`)")]
    NotBuilt { path: String },
}

fn none<T>(path: &Path) -> Result<T, MediaError> {
    Err(MediaError::NotBuilt {
        path: path.display().to_string(),
    })
}

/// What was written (never, here).
#[derive(Debug, Clone)]
pub struct Written {
    pub mode: &'static str,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub decode_errors: u64,
    pub stills: bool,
}

/// Where a video's poster and contact sheet would be written.
#[derive(Debug, Clone, Copy)]
pub struct Stills<'a> {
    pub poster: &'a Path,
    pub sheet: &'a Path,
}

pub fn versions() -> serde_json::Value {
    serde_json::Value::Null
}

pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    none(path)
}

pub fn remux(input: &Path, _out: &Path) -> Result<Written, MediaError> {
    none(input)
}

pub fn transcode(
    input: &Path,
    _out: &Path,
    _s: &TranscodeSettings,
    _overlay: Option<&str>,
    _stills: Option<Stills<'_>>,
    _stop: &AtomicBool,
) -> Result<Written, MediaError> {
    none(input)
}

pub fn transcode_packets(
    reference: &Path,
    _packets: impl Iterator<Item = Vec<u8>>,
    _out: &Path,
    _s: &TranscodeSettings,
    _overlay: Option<&str>,
    _stop: &AtomicBool,
) -> Result<Written, MediaError> {
    none(reference)
}

pub fn thumbnails(
    input: &Path,
    _poster: &Path,
    _sheet: Option<(&Path, u32, u32)>,
    _width: u32,
) -> Result<(), MediaError> {
    none(input)
}
