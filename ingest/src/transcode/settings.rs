//! `[transcode]` in `evidock.toml`: how playback copies and thumbnails are made.

use super::kind::MediaKind;
use evidock_verify::media::MediaInfo;
use serde::{Deserialize, Serialize};

/// The configuration section (every key has a default).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeSection {
    /// Make derivatives at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Playback copies are at most this many lines high (never upscaled).
    #[serde(default = "default_max_height")]
    pub max_height: u32,
    /// x264 constant rate factor (0–51; lower is better and larger).
    #[serde(default = "default_crf")]
    pub crf: u32,
    /// x264 preset (`ultrafast` … `veryslow`).
    #[serde(default = "default_preset")]
    pub preset: String,
    /// AAC bit rate, kbit/s.
    #[serde(default = "default_audio_kbps")]
    pub audio_kbps: u32,
    /// Copy H.264/AAC originals into MP4 instead of re-encoding them (when they fit the height
    /// cap and no burn-in is asked for).
    #[serde(default = "yes")]
    pub remux_when_possible: bool,
    /// Draw device serial, 警号 and corrected time on the playback copy (never on the original).
    #[serde(default)]
    pub burn_in: bool,
    /// Contact sheet: columns × rows of frames.
    #[serde(default = "default_grid")]
    pub contact_sheet: [u32; 2],
    /// Width of thumbnails (poster and each contact sheet tile), pixels.
    #[serde(default = "default_thumb")]
    pub thumbnail_width: u32,
    /// Encoder/decoder threads per job; 0 = all cores.
    #[serde(default)]
    pub threads: usize,
    /// Jobs at once (each uses `threads`).
    #[serde(default = "one")]
    pub jobs: usize,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn default_max_height() -> u32 {
    720
}
fn default_crf() -> u32 {
    23
}
fn default_preset() -> String {
    "veryfast".into()
}
fn default_audio_kbps() -> u32 {
    128
}
fn default_grid() -> [u32; 2] {
    [4, 4]
}
fn default_thumb() -> u32 {
    320
}

impl Default for TranscodeSection {
    fn default() -> Self {
        TranscodeSection {
            enabled: true,
            max_height: default_max_height(),
            crf: default_crf(),
            preset: default_preset(),
            audio_kbps: default_audio_kbps(),
            remux_when_possible: true,
            burn_in: false,
            contact_sheet: default_grid(),
            thumbnail_width: default_thumb(),
            threads: 0,
            jobs: 1,
        }
    }
}

const PRESETS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// The validated settings; serialised as they are into every `transcoded` event, so the
/// derivative can be made again.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TranscodeSettings {
    pub enabled: bool,
    pub max_height: u32,
    pub crf: u32,
    pub preset: String,
    /// Bits/s.
    pub audio_bitrate: usize,
    pub remux_when_possible: bool,
    pub burn_in: bool,
    pub contact_sheet: [u32; 2],
    pub thumbnail_width: u32,
    #[serde(skip)]
    pub threads: usize,
    #[serde(skip)]
    pub jobs: usize,
}

impl Default for TranscodeSettings {
    fn default() -> Self {
        let d = TranscodeSection::default();
        TranscodeSettings {
            enabled: d.enabled,
            max_height: d.max_height,
            crf: d.crf,
            preset: d.preset,
            audio_bitrate: d.audio_kbps as usize * 1000,
            remux_when_possible: d.remux_when_possible,
            burn_in: d.burn_in,
            contact_sheet: d.contact_sheet,
            thumbnail_width: d.thumbnail_width,
            threads: d.threads,
            jobs: d.jobs,
        }
    }
}

impl TranscodeSettings {
    /// Whether a recording (`info`, probed) is copied into the playback MP4 as it is: H.264 a
    /// court PC plays (8-bit 4:2:0, within the height cap), AAC or no audio, in MP4/MOV, and
    /// neither burn-in nor re-encoding asked for.
    pub fn can_remux(&self, info: &MediaInfo, kind: MediaKind) -> bool {
        if !self.remux_when_possible || self.burn_in || kind != MediaKind::Video {
            return false;
        }
        let Some(v) = info.stream("video") else {
            return false;
        };
        let mp4 = info.container.split(',').any(|c| c == "mp4" || c == "mov");
        let audio_ok = info
            .streams
            .iter()
            .all(|st| st.kind != "audio" || st.codec == "aac");
        let profile_ok = v.profile.as_deref().is_none_or(|p| {
            p.contains("Baseline")
                || p.contains("Main")
                || p.contains("High")
                    && !p.contains("10")
                    && !p.contains("422")
                    && !p.contains("444")
        });
        mp4 && v.codec == "h264"
            && audio_ok
            && profile_ok
            && v.height.is_some_and(|h| h <= self.max_height)
    }
}

impl TranscodeSection {
    /// Check ranges; the error names the key.
    pub fn validate(self) -> Result<TranscodeSettings, (&'static str, String)> {
        if !(144..=4320).contains(&self.max_height) {
            return Err(("transcode.max_height", "must be 144..=4320".into()));
        }
        if self.crf > 51 {
            return Err(("transcode.crf", "must be 0..=51".into()));
        }
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err((
                "transcode.preset",
                format!("must be one of {}", PRESETS.join(", ")),
            ));
        }
        if !(32..=512).contains(&self.audio_kbps) {
            return Err(("transcode.audio_kbps", "must be 32..=512".into()));
        }
        let [c, r] = self.contact_sheet;
        if !(1..=8).contains(&c) || !(1..=8).contains(&r) {
            return Err((
                "transcode.contact_sheet",
                "each of [cols, rows] must be 1..=8".into(),
            ));
        }
        if !(64..=1920).contains(&self.thumbnail_width) {
            return Err(("transcode.thumbnail_width", "must be 64..=1920".into()));
        }
        if !(1..=16).contains(&self.jobs) {
            return Err(("transcode.jobs", "must be 1..=16".into()));
        }
        Ok(TranscodeSettings {
            enabled: self.enabled,
            max_height: self.max_height,
            crf: self.crf,
            preset: self.preset,
            audio_bitrate: self.audio_kbps as usize * 1000,
            remux_when_possible: self.remux_when_possible,
            burn_in: self.burn_in,
            contact_sheet: self.contact_sheet,
            thumbnail_width: self.thumbnail_width,
            threads: self.threads,
            jobs: self.jobs,
        })
    }
}
