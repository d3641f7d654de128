//! Custody events: every action on evidence, as one canonical JSON object.
//!
//! ```json
//! {"actor":{"id":"dock-01","role":"station"},"key":"acquired/…","kind":"acquired",
//!  "offset":"+08:00","payload":{…},"seq":17,"station":"dock-01",
//!  "subject":{"evidence":"ev-…"},"time":"2026-11-28T09:10:55.123Z","v":1}
//! ```
//!
//! - `v`: format version (1);
//! - `station`: the log the event belongs to (its signing identity);
//! - `seq`: its index in that log, which is also its Merkle leaf index;
//! - `time`: UTC with millisecond precision, and `offset`: the station's UTC offset then, so the
//!   local time a person saw can be shown without guessing;
//! - `actor`: who did it (a station, officer, reviewer or admin);
//! - `subject`: what it is about (evidence item, camera session, device, case, station);
//! - `key`: the idempotency key — a replay after a crash with the same key appends nothing;
//! - `kind` and `payload`: what happened, with a payload typed per kind (see [`payload`]).
//!
//! The bytes in the log are the RFC 8785 canonical encoding ([`crate::canonical`]); the leaf hash
//! is computed over exactly those bytes.

use crate::canonical::{self, CanonicalError};
use crate::id::{CaseId, DeviceSerial, EvidenceId, SessionId, StationId};
use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

pub mod payload;
mod time;

pub use time::{Timestamp, UtcOffset};

/// The format version written by this code.
pub const EVENT_VERSION: u32 = 1;
/// Events larger than this are refused (a custody event is a few hundred bytes; a wipe listing
/// thousands of files stays far below it).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// The largest payload a new event may carry: the rest of an event (actor, subject, key ≤ 512
/// bytes, times, signature-free envelope) stays far below the difference.
pub const MAX_PAYLOAD_BYTES: usize = MAX_EVENT_BYTES - (16 << 10);

/// What happened. One word per meaning:
/// - `acquired`: copied off the camera and the spool copy re-read from disk with equal digests;
/// - `uploaded`: written to the evidence store and read back with an equal SHA-256;
/// - `verified`: a reviewer's check (`evidock verify`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A camera was docked and identified; a camera session began.
    Docked,
    /// A camera's clock was set from the station clock.
    ClockSynced,
    /// One file acquired (copied and checked in the spool).
    Acquired,
    /// A file could not be acquired (the reason names the file and the error).
    AcquireFailed,
    /// A file already acquired from this camera at an earlier docking was not read again.
    Skipped,
    /// Every file of a session is acquired: the camera is safe to undock.
    Released,
    /// The camera left the dock.
    Undocked,
    /// Who carries a camera from when.
    CameraAssigned,
    /// A checkpoint received an RFC 3161 time-stamp token.
    Timestamped,
    /// An original or derivative is in the evidence store and its read-back matched.
    Uploaded,
    /// A playable derivative was made from an original.
    Transcoded,
    /// No derivative could be made (the reason says why).
    TranscodeFailed,
    /// A case from the case register, as imported (a changed case is registered again).
    CaseRegistered,
    /// Evidence linked to a case.
    Linked,
    /// A link removed (nothing is deleted).
    Unlinked,
    /// Category or retention of an evidence item changed.
    RetentionChanged,
    /// A reviewer's verification and its result.
    Verified,
    /// A disclosure package was sealed.
    Exported,
    /// Someone fetched evidence to view it.
    Accessed,
    /// Files are about to be deleted from a camera (logged before the first delete).
    WipeRequested,
    /// Files were deleted from a camera after their verified upload.
    DeviceWiped,
    /// Expired evidence was disposed of by an explicit action.
    Disposed,
    /// The station key changed; the old log is closed.
    KeyRotated,
    /// A kind this version does not know (a newer station wrote it).
    Other(String),
}

impl EventKind {
    pub const KNOWN: [EventKind; 23] = [
        Self::Docked,
        Self::ClockSynced,
        Self::Acquired,
        Self::AcquireFailed,
        Self::Skipped,
        Self::Released,
        Self::Undocked,
        Self::CameraAssigned,
        Self::Timestamped,
        Self::Uploaded,
        Self::Transcoded,
        Self::TranscodeFailed,
        Self::CaseRegistered,
        Self::Linked,
        Self::Unlinked,
        Self::RetentionChanged,
        Self::Verified,
        Self::Exported,
        Self::Accessed,
        Self::WipeRequested,
        Self::DeviceWiped,
        Self::Disposed,
        Self::KeyRotated,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::Docked => "docked",
            Self::ClockSynced => "clock-synced",
            Self::Acquired => "acquired",
            Self::AcquireFailed => "acquire-failed",
            Self::Skipped => "skipped",
            Self::Released => "released",
            Self::Undocked => "undocked",
            Self::CameraAssigned => "camera-assigned",
            Self::Timestamped => "timestamped",
            Self::Uploaded => "uploaded",
            Self::Transcoded => "transcoded",
            Self::TranscodeFailed => "transcode-failed",
            Self::CaseRegistered => "case-registered",
            Self::Linked => "linked",
            Self::Unlinked => "unlinked",
            Self::RetentionChanged => "retention-changed",
            Self::Verified => "verified",
            Self::Exported => "exported",
            Self::Accessed => "accessed",
            Self::WipeRequested => "wipe-requested",
            Self::DeviceWiped => "device-wiped",
            Self::Disposed => "disposed",
            Self::KeyRotated => "key-rotated",
            Self::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .unwrap_or_else(|| Self::Other(s.to_string()))
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// A role an actor acts in. A role this version does not know (a later station's, such as the
/// review desk's approvers) is kept as [`Role::Other`]: a verifier shipped today still reads
/// tomorrow's packages, and says the role is unknown to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// A dock station or review workstation acting on its own (acquisition, upload, …).
    Station,
    /// An officer or inspector (执法人员).
    Officer,
    /// A legal reviewer (法制审核).
    Reviewer,
    /// A station administrator.
    Admin,
    /// A role this version does not know.
    Other(String),
}

impl Role {
    pub const KNOWN: [Role; 4] = [Role::Station, Role::Officer, Role::Reviewer, Role::Admin];

    pub fn as_str(&self) -> &str {
        match self {
            Role::Station => "station",
            Role::Officer => "officer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|r| r.as_str() == s)
            .cloned()
            .unwrap_or_else(|| Role::Other(s.to_string()))
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Role::Other(_))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 64 {
            return Err(serde::de::Error::custom("a role is 1 to 64 bytes"));
        }
        Ok(Self::parse(&s))
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub role: Role,
    /// Station ID, 警号/执法证号 or a reviewer's ID, as given.
    pub id: String,
}

impl Actor {
    pub fn station(id: &StationId) -> Self {
        Actor {
            role: Role::Station,
            id: id.to_string(),
        }
    }
}

/// What an event is about: one key naming the kind of thing, its value the thing's ID. A kind
/// this version does not know is kept as [`Subject::Other`] (its value as written).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Evidence(EvidenceId),
    Session(SessionId),
    Device(DeviceSerial),
    Case(CaseId),
    Station(StationId),
    /// A subject kind this version does not know, and its value's canonical JSON.
    Other {
        kind: String,
        value: String,
    },
}

impl Subject {
    /// The key the subject is written under (`evidence`, `session`, …).
    pub fn kind(&self) -> &str {
        match self {
            Subject::Evidence(_) => "evidence",
            Subject::Session(_) => "session",
            Subject::Device(_) => "device",
            Subject::Case(_) => "case",
            Subject::Station(_) => "station",
            Subject::Other { kind, .. } => kind,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Subject::Other { .. })
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Evidence(x) => write!(f, "evidence {x}"),
            Subject::Session(x) => write!(f, "session {x}"),
            Subject::Device(x) => write!(f, "device {x}"),
            Subject::Case(x) => write!(f, "case {x}"),
            Subject::Station(x) => write!(f, "station {x}"),
            Subject::Other { kind, value } => write!(f, "{kind} {value}"),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap as _};
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Subject::Evidence(x) => m.serialize_entry("evidence", x)?,
            Subject::Session(x) => m.serialize_entry("session", x)?,
            Subject::Device(x) => m.serialize_entry("device", x)?,
            Subject::Case(x) => m.serialize_entry("case", x)?,
            Subject::Station(x) => m.serialize_entry("station", x)?,
            Subject::Other { kind, value } => {
                let v: Value = serde_json::from_str(value).map_err(S::Error::custom)?;
                m.serialize_entry(kind, &v)?
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        if map.len() != 1 {
            return Err(D::Error::custom(format!(
                "a subject has exactly one key, not {}",
                map.len()
            )));
        }
        let Some((kind, value)) = map.into_iter().next() else {
            return Err(D::Error::custom("an empty subject"));
        };
        let typed = |v: Value| -> Result<String, D::Error> {
            match v {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "subject {kind}: {other} is not a string"
                ))),
            }
        };
        Ok(match kind.as_str() {
            "evidence" => {
                Subject::Evidence(EvidenceId::new(typed(value)?).map_err(D::Error::custom)?)
            }
            "session" => Subject::Session(SessionId::new(typed(value)?).map_err(D::Error::custom)?),
            "device" => {
                Subject::Device(DeviceSerial::new(typed(value)?).map_err(D::Error::custom)?)
            }
            "case" => Subject::Case(CaseId::new(typed(value)?).map_err(D::Error::custom)?),
            "station" => Subject::Station(StationId::new(typed(value)?).map_err(D::Error::custom)?),
            _ => {
                if kind.is_empty() || kind.len() > 64 {
                    return Err(D::Error::custom("a subject kind is 1 to 64 bytes"));
                }
                let value = canonical::canonical_value(&value)
                    .map_err(D::Error::custom)
                    .and_then(|b| String::from_utf8(b).map_err(D::Error::custom))?;
                Subject::Other { kind, value }
            }
        })
    }
}

/// A payload type and the kind it belongs to.
pub trait Payload: Serialize + DeserializeOwned {
    const KIND: EventKind;
}

/// One custody event as stored in a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodyEvent {
    pub v: u32,
    pub station: StationId,
    pub seq: u64,
    pub time: Timestamp,
    pub offset: UtcOffset,
    pub actor: Actor,
    pub subject: Subject,
    pub key: String,
    pub kind: EventKind,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("the event is not valid JSON of the custody-event form: {0}")]
    Malformed(String),
    #[error("the event bytes are not in canonical form (RFC 8785)")]
    NotCanonical,
    #[error("unsupported event format version {0}")]
    Version(u32),
    #[error("the idempotency key is empty or longer than 512 bytes")]
    BadKey,
    #[error("the event is a {found} event, not {expected}")]
    WrongKind {
        expected: EventKind,
        found: EventKind,
    },
    #[error("the {kind} payload is malformed: {reason}")]
    Payload { kind: EventKind, reason: String },
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

impl CustodyEvent {
    /// Parse stored bytes, insisting they are canonical.
    pub fn parse(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge);
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        if canonical::canonical_value(&value)? != bytes {
            return Err(EventError::NotCanonical);
        }
        let ev: CustodyEvent =
            serde_json::from_value(value).map_err(|e| EventError::Malformed(e.to_string()))?;
        ev.check()?;
        Ok(ev)
    }

    /// The canonical bytes of this event.
    pub fn to_canonical(&self) -> Result<Vec<u8>, EventError> {
        let bytes = canonical::to_canonical(self)?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge);
        }
        Ok(bytes)
    }

    /// Structural rules beyond the JSON shape.
    pub fn check(&self) -> Result<(), EventError> {
        if self.v != EVENT_VERSION {
            return Err(EventError::Version(self.v));
        }
        check_key(&self.key)?;
        Ok(())
    }

    /// The typed payload, if this event is of `P`'s kind.
    pub fn payload<P: Payload>(&self) -> Result<P, EventError> {
        if self.kind != P::KIND {
            return Err(EventError::WrongKind {
                expected: P::KIND,
                found: self.kind.clone(),
            });
        }
        serde_json::from_value(self.payload.clone()).map_err(|e| EventError::Payload {
            kind: self.kind.clone(),
            reason: e.to_string(),
        })
    }

    /// Check that the payload has the shape its kind requires (unknown kinds pass).
    pub fn check_payload(&self) -> Result<(), EventError> {
        payload::check(&self.kind, &self.payload).map_err(|reason| EventError::Payload {
            kind: self.kind.clone(),
            reason,
        })
    }

    /// The local time at the station when the event was logged.
    pub fn local_time(&self) -> DateTime<FixedOffset> {
        self.time.local(self.offset)
    }
}

fn check_key(key: &str) -> Result<(), EventError> {
    if key.is_empty() || key.len() > 512 {
        return Err(EventError::BadKey);
    }
    Ok(())
}

/// An event as a writer hands it to the log; the log adds version, station, seq and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub actor: Actor,
    pub subject: Subject,
    pub key: String,
    pub kind: EventKind,
    pub payload: Value,
}

impl NewEvent {
    /// An event with a typed payload.
    pub fn new<P: Payload>(
        actor: Actor,
        subject: Subject,
        key: impl Into<String>,
        payload: &P,
    ) -> Result<Self, EventError> {
        let key = key.into();
        check_key(&key)?;
        let payload = serde_json::to_value(payload).map_err(|e| EventError::Payload {
            kind: P::KIND,
            reason: e.to_string(),
        })?;
        // Refuse floats and oversized integers here, where the writer can still fix them; and
        // a payload that cannot fit in an event, before anything of a batch is written.
        if canonical::canonical_value(&payload)?.len() > MAX_PAYLOAD_BYTES {
            return Err(EventError::TooLarge);
        }
        Ok(NewEvent {
            actor,
            subject,
            key,
            kind: P::KIND,
            payload,
        })
    }

    /// The stored event this becomes at `seq` in `station`'s log at `time`.
    pub fn into_event(
        self,
        station: StationId,
        seq: u64,
        time: Timestamp,
        offset: UtcOffset,
    ) -> CustodyEvent {
        CustodyEvent {
            v: EVENT_VERSION,
            station,
            seq,
            time,
            offset,
            actor: self.actor,
            subject: self.subject,
            key: self.key,
            kind: self.kind,
            payload: self.payload,
        }
    }
}

#[cfg(test)]
mod tests;
