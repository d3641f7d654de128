//! The payload of each event kind.
//!
//! Payload structs accept fields they do not know, so a verifier keeps reading logs written by a
//! newer station; the fields here are what this version writes and relies on.

use super::{EventKind, Payload, Timestamp};
use crate::digest::Digests;
use crate::id::{CaseId, DeviceSerial, EvidenceId, OfficerId, SessionId, Sha256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod path;

pub use path::CameraPath;

/// What the camera says about itself (ZFY_INFO), GBK-decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraIdentity {
    /// 产品序号.
    pub serial: DeviceSerial,
    /// 警号 as stored on the camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<OfficerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// 单位编号.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_number: Option<String>,
    /// 单位名称.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
}

/// Where the officer of a recording came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfficerSource {
    /// The camera's own 警号 (ZFY_INFO or the file name).
    Camera,
    /// `evidock camera assign` for the recording's time.
    Assignment,
    /// Given on the command line (`evidock ingest --officer`).
    Operator,
}

/// A recording time as the camera wrote it and as corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingTime {
    /// The camera's local time, as it wrote it (`YYYY-MM-DDTHH:MM:SS`, no offset).
    pub raw: String,
    /// The corrected instant.
    pub corrected: Timestamp,
    /// The rule that produced `corrected` (e.g. `docking-offset`, `drift-since-sync`).
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockedPayload {
    pub session: SessionId,
    pub identity: CameraIdentity,
    /// The driver that talked to the camera (`mass-storage`, `zfy-sim`, `zfy-usb`).
    pub driver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The camera's clock as read at docking (its local time, as it reported it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_clock: Option<String>,
    /// The station's clock at the same moment.
    pub station_clock: Timestamp,
    /// Station clock minus camera clock, in milliseconds, if the camera clock could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// How the camera's files were read (absent in events of stations before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ReadMethod>,
}

/// How a camera's files were read: what a collection record (提取笔录) states as the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMethod {
    /// Over USB by the dock: the camera's block device set read-only in the kernel (BLKROSET)
    /// and its filesystem mounted read-only.
    UsbReadOnly,
    /// Over USB, the filesystem mounted by the system's automounter: the dock set the block
    /// device read-only, checked the system's mount was read-only, and read through a read-only
    /// bind of it.
    UsbSystemMount,
    /// A volume that appeared in the dock's watch folder (mounted by the system, or a
    /// simulated camera); its files opened read-only.
    WatchFolder,
    /// A simulated camera (`evidock simulate camera`): a folder for trying a station, not a
    /// camera.
    Simulated,
    /// A folder an operator gave to `evidock ingest` (a mounted card or a copy of one); its
    /// files opened read-only.
    Folder,
}

impl Payload for DockedPayload {
    const KIND: EventKind = EventKind::Docked;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSyncedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    /// The camera clock before the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The time set (the station's local time sent to the camera).
    pub set_to: String,
}

impl Payload for ClockSyncedPayload {
    const KIND: EventKind = EventKind::ClockSynced;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquiredPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<OfficerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_source: Option<OfficerSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    pub path: CameraPath,
    pub size: u64,
    /// Digests of the bytes read off the camera, equal to those re-read from the spool disk.
    pub digests: Digests,
    /// The file's modification time on the camera volume (as the filesystem reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordingTime>,
    /// Flagged 重要 / locked on the camera.
    #[serde(default)]
    pub important: bool,
    /// The file's size or mtime changed while it was copied (the bytes stored are what was read).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_during_copy: bool,
    /// The copy resumed an interrupted one at this offset (the earlier bytes were re-hashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<u64>,
}

impl Payload for AcquiredPayload {
    const KIND: EventKind = EventKind::Acquired;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireFailedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    pub path: CameraPath,
    /// What went wrong, naming the file and the operation.
    pub error: String,
    /// Whether docking the camera again may succeed.
    pub retriable: bool,
}

impl Payload for AcquireFailedPayload {
    const KIND: EventKind = EventKind::AcquireFailed;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    pub path: CameraPath,
    pub size: u64,
    /// The evidence item that already holds this file.
    pub acquired_as: EvidenceId,
    /// The SHA-256 recorded when `acquired_as` was acquired — not computed at this docking.
    pub sha256: Sha256,
    /// What was compared at this docking: path, size and mtime, and this — the SHA-256 of the
    /// file's first and last MiB as read now — against what was recorded then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_sha256: Option<Sha256>,
    pub reason: String,
}

impl Payload for SkippedPayload {
    const KIND: EventKind = EventKind::Skipped;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedPayload {
    pub session: SessionId,
    pub files: u64,
    pub bytes: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Payload for ReleasedPayload {
    const KIND: EventKind = EventKind::Released;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndockedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    /// Whether the session had been released before the camera left.
    pub released: bool,
}

impl Payload for UndockedPayload {
    const KIND: EventKind = EventKind::Undocked;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraAssignedPayload {
    pub device: DeviceSerial,
    pub officer: OfficerId,
    /// From when the officer carries the camera.
    pub from: Timestamp,
}

impl Payload for CameraAssignedPayload {
    const KIND: EventKind = EventKind::CameraAssigned;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampedPayload {
    /// The tree size of the checkpoint that was time-stamped.
    pub checkpoint_size: u64,
    /// SHA-256 of the checkpoint note's bytes: the token's message imprint.
    pub checkpoint_sha256: Sha256,
    /// When the station signed the checkpoint.
    pub checkpoint_time: Timestamp,
    /// The TSA's genTime.
    pub gen_time: Timestamp,
    /// Seconds between signing and the TSA's time: the gap while the TSA was unreachable.
    pub delay_seconds: i64,
    pub tsa: String,
    /// The token's serial number (hex).
    pub serial: String,
    /// SHA-256 of the stored `.tsr` file.
    pub token_sha256: Sha256,
}

impl Payload for TimestampedPayload {
    const KIND: EventKind = EventKind::Timestamped;
}

/// Which object of an evidence item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectRole {
    Original,
    Playback,
    Poster,
    ContactSheet,
    Record,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedPayload {
    pub role: ObjectRole,
    /// The object key in the store.
    pub object: String,
    /// The store, by URL without credentials.
    pub store: String,
    pub size: u64,
    /// The SHA-256 of the bytes read back from the store (equal to the original's).
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<Timestamp>,
}

impl Payload for UploadedPayload {
    const KIND: EventKind = EventKind::Uploaded;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodedPayload {
    pub role: ObjectRole,
    pub parent_sha256: Sha256,
    pub sha256: Sha256,
    pub size: u64,
    /// Container/codec summary, e.g. `mp4 h264/aac`.
    pub format: String,
    /// The exact settings used (enough to reproduce the derivative).
    pub settings: Value,
    /// FFmpeg library versions.
    pub ffmpeg: Value,
    /// For a salvaged truncated recording: the healthy recording whose parameters were used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvaged_with: Option<EvidenceId>,
}

impl Payload for TranscodedPayload {
    const KIND: EventKind = EventKind::Transcoded;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodeFailedPayload {
    pub parent_sha256: Sha256,
    pub reason: String,
}

impl Payload for TranscodeFailedPayload {
    const KIND: EventKind = EventKind::TranscodeFailed;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedPayload {
    pub evidence: EvidenceId,
    pub case: CaseId,
    pub reason: String,
    /// Made by automatic matching (officer and time), not by a person.
    #[serde(default)]
    pub automatic: bool,
    /// Flagged for a person to review (e.g. the recording matched two cases).
    #[serde(default)]
    pub review: bool,
}

impl Payload for LinkedPayload {
    const KIND: EventKind = EventKind::Linked;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedPayload {
    pub evidence: EvidenceId,
    pub case: CaseId,
    pub reason: String,
}

impl Payload for UnlinkedPayload {
    const KIND: EventKind = EventKind::Unlinked;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionChangedPayload {
    pub evidence: EvidenceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_before: Option<String>,
    pub category: String,
    /// Keep until (None: permanently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<Timestamp>,
    #[serde(default)]
    pub legal_hold: bool,
    pub reason: String,
}

impl Payload for RetentionChangedPayload {
    const KIND: EventKind = EventKind::RetentionChanged;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedPayload {
    /// What was checked: `all`, `case <ID>`, or evidence IDs.
    pub scope: String,
    /// `passed`, `passed-with-warnings` or `failed`.
    pub result: String,
    pub items: u64,
    pub errors: u64,
    pub warnings: u64,
    /// SHA-256 of the JSON findings report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_sha256: Option<Sha256>,
}

impl Payload for VerifiedPayload {
    const KIND: EventKind = EventKind::Verified;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedPayload {
    pub case: CaseId,
    /// SHA-256 of the package manifest.
    pub manifest_sha256: Sha256,
    pub files: u64,
    pub bytes: u64,
}

impl Payload for ExportedPayload {
    const KIND: EventKind = EventKind::Exported;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessedPayload {
    pub role: ObjectRole,
    pub sha256: Sha256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl Payload for AccessedPayload {
    const KIND: EventKind = EventKind::Accessed;
}

/// One file deleted from a camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipedFile {
    pub path: CameraPath,
    pub evidence: EvidenceId,
    pub sha256: Sha256,
}

/// Files about to be deleted from a camera: each read again in full from the camera and
/// matched against the SHA-256 of its `acquired` event, logged before the first delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipeRequestedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    pub files: Vec<WipedFile>,
}

impl Payload for WipeRequestedPayload {
    const KIND: EventKind = EventKind::WipeRequested;
}

/// Files deleted from a camera: those the driver confirmed, or — a request an interrupted
/// docking left open, settled at a later one — those the card no longer held (`found_absent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceWipedPayload {
    pub session: SessionId,
    pub device: DeviceSerial,
    pub files: Vec<WipedFile>,
    /// The seq of the `wipe-requested` event this answers (absent in logs before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found_absent: bool,
}

impl Payload for DeviceWipedPayload {
    const KIND: EventKind = EventKind::DeviceWiped;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisposedPayload {
    pub evidence: EvidenceId,
    pub sha256: Sha256,
    pub reason: String,
}

impl Payload for DisposedPayload {
    const KIND: EventKind = EventKind::Disposed;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotatedPayload {
    /// The old verifier key (note format).
    pub old_key: String,
    /// The new verifier key (note format).
    pub new_key: String,
    pub reason: String,
}

impl Payload for KeyRotatedPayload {
    const KIND: EventKind = EventKind::KeyRotated;
}

fn shape<P: Payload>(v: &Value) -> Result<(), String> {
    serde_json::from_value::<P>(v.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Check that `payload` has the shape `kind` requires. Unknown kinds pass: they are reported
/// separately, as a newer station's events.
pub fn check(kind: &EventKind, payload: &Value) -> Result<(), String> {
    match kind {
        EventKind::Docked => shape::<DockedPayload>(payload),
        EventKind::ClockSynced => shape::<ClockSyncedPayload>(payload),
        EventKind::Acquired => shape::<AcquiredPayload>(payload),
        EventKind::AcquireFailed => shape::<AcquireFailedPayload>(payload),
        EventKind::Skipped => shape::<SkippedPayload>(payload),
        EventKind::Released => shape::<ReleasedPayload>(payload),
        EventKind::Undocked => shape::<UndockedPayload>(payload),
        EventKind::CameraAssigned => shape::<CameraAssignedPayload>(payload),
        EventKind::Timestamped => shape::<TimestampedPayload>(payload),
        EventKind::Uploaded => shape::<UploadedPayload>(payload),
        EventKind::Transcoded => shape::<TranscodedPayload>(payload),
        EventKind::TranscodeFailed => shape::<TranscodeFailedPayload>(payload),
        EventKind::CaseRegistered => shape::<crate::case::CaseRegisteredPayload>(payload),
        EventKind::Linked => shape::<LinkedPayload>(payload),
        EventKind::Unlinked => shape::<UnlinkedPayload>(payload),
        EventKind::RetentionChanged => shape::<RetentionChangedPayload>(payload),
        EventKind::Verified => shape::<VerifiedPayload>(payload),
        EventKind::Exported => shape::<ExportedPayload>(payload),
        EventKind::Accessed => shape::<AccessedPayload>(payload),
        EventKind::WipeRequested => shape::<WipeRequestedPayload>(payload),
        EventKind::DeviceWiped => shape::<DeviceWipedPayload>(payload),
        EventKind::Disposed => shape::<DisposedPayload>(payload),
        EventKind::KeyRotated => shape::<KeyRotatedPayload>(payload),
        EventKind::Other(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_paths_keep_bytes() {
        let utf8 = CameraPath("DCIM/执法_20261128.mp4".as_bytes().to_vec());
        assert_eq!(
            serde_json::to_string(&utf8).unwrap(),
            "\"DCIM/执法_20261128.mp4\""
        );
        // "执法" in GBK: D6 B4 B7 A8.
        let gbk = CameraPath(b"DCIM/\xd6\xb4\xb7\xa8.MP4".to_vec());
        let json = serde_json::to_string(&gbk).unwrap();
        assert_eq!(
            json,
            r#"{"bytes":"4443494d2fd6b4b7a82e4d5034","shown":"DCIM/执法.MP4"}"#
        );
        assert_eq!(serde_json::from_str::<CameraPath>(&json).unwrap(), gbk);
        assert_eq!(gbk.file_name(), b"\xd6\xb4\xb7\xa8.MP4");
        // A UTF-8 path in the raw form is refused: one form per path.
        assert!(serde_json::from_str::<CameraPath>(r#"{"bytes":"41","shown":"A"}"#).is_err());
    }

    #[test]
    fn check_rejects_wrong_shapes() {
        assert!(check(&EventKind::Released, &serde_json::json!({"session": "s"})).is_err());
        assert!(check(&EventKind::Other("x".into()), &serde_json::json!(1)).is_ok());
    }
}
