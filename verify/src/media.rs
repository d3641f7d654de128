//! Media metadata of an original, as recorded in its evidence record: what a reviewer needs to
//! know about a recording without opening it. Integers and strings only (the record is canonical
//! JSON): durations in milliseconds, frame rates as exact fractions (`30000/1001`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MediaInfo {
    /// The container as FFmpeg names it (`mov,mp4,m4a,3gp,3g2,mj2`, `avi`, `wav`, `image2`…).
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Overall bit rate, bits/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    /// The container's `creation_time` tag, as written by the camera (its clock, not corrected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    /// GPS position (ISO 6709, e.g. `+24.8149+118.5792/`) where the container carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub streams: Vec<StreamInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StreamInfo {
    /// `video`, `audio`, `subtitle`, `data`.
    pub kind: String,
    /// FFmpeg's codec name (`h264`, `hevc`, `aac`, `pcm_s16le`, `mjpeg`).
    pub codec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Average frame rate as a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_rate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl MediaInfo {
    /// The first stream of a kind.
    pub fn stream(&self, kind: &str) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == kind)
    }

    /// A short summary: `mp4 h264/aac 1920x1080`.
    pub fn summary(&self) -> String {
        let codecs: Vec<&str> = self.streams.iter().map(|s| s.codec.as_str()).collect();
        let mut s = format!("{} {}", self.container, codecs.join("/"));
        if let Some(v) = self.stream("video")
            && let (Some(w), Some(h)) = (v.width, v.height)
        {
            s.push_str(&format!(" {w}x{h}"));
        }
        s
    }
}
