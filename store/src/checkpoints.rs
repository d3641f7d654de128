//! When the station signs a checkpoint of its custody log: the one policy every part of the
//! station follows (as a transparency log's integrator does, on size or age), so that "is this
//! sealed yet?" has one answer.
//!
//! A checkpoint is signed at each [`Moment`] that hands evidence on or ends a stretch of work —
//! a release (the officer leaves with "safe to undock"), an undock, a wipe, before an export or
//! a publication, at start and shutdown — and, between them, whenever [`CheckpointPolicy`] says
//! enough events or enough time have gone unsealed. Each is signed only when something new was
//! logged since the last (`CustodyLog::checkpoint` returns `None` otherwise).

use crate::log::{LogError, SharedLog};
use evidock_verify::checkpoint::SignedCheckpoint;
use std::time::Duration;

/// The moments that seal the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The dock starts: what a crash left after the last checkpoint is sealed first.
    Start,
    /// A camera's session is released: the officer may undock.
    Release,
    /// A camera left.
    Undock,
    /// Derivatives of an item were made (or failed for good).
    Transcoded,
    /// A wipe of a camera was recorded.
    Wipe,
    /// New `timestamped` events were logged.
    Stamped,
    /// Before the log is published to the store. Events that only record time (`timestamped`)
    /// need no checkpoint of their own: each would otherwise ask for a token, forever.
    Publish,
    /// Before a disclosure package is built: it carries the newest checkpoint.
    Export,
    /// An operator asked (`evidock log checkpoint`).
    Asked,
    /// The policy's size or age limit was reached.
    Due,
    /// The dock stops: the log a reviewer copies from a stopped station is wholly sealed.
    Shutdown,
}

/// Between the moments: seal when this many events, or events this old, are unsealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_events: u64,
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        // A busy dock logs a few events per file; 1000 is a few hundred files. Five minutes
        // bounds how long an event stays unsealed on a quiet one (a link made by a reviewer).
        CheckpointPolicy {
            every_events: 1000,
            every: Duration::from_secs(300),
        }
    }
}

impl CheckpointPolicy {
    /// Whether `unsealed` events, the oldest unsealed for `age`, call for a checkpoint now.
    pub fn due(&self, unsealed: u64, age: Duration) -> bool {
        unsealed > 0 && (unsealed >= self.every_events || age >= self.every)
    }
}

impl SharedLog {
    /// Sign a checkpoint at `at`, if the policy signs one there and anything is unsealed.
    pub fn seal(&self, at: Moment) -> Result<Option<SignedCheckpoint>, LogError> {
        self.with(|l| {
            if at == Moment::Publish && l.only_time_records(l.last_checkpoint(), l.size())? {
                return Ok(None);
            }
            l.checkpoint()
        })
    }

    /// Events logged since the last checkpoint.
    pub fn unsealed(&self) -> u64 {
        self.with(|l| l.size().saturating_sub(l.last_checkpoint()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_on_size_or_age_and_never_when_all_is_sealed() {
        let p = CheckpointPolicy {
            every_events: 10,
            every: Duration::from_secs(60),
        };
        assert!(!p.due(0, Duration::from_secs(3600)));
        assert!(!p.due(9, Duration::from_secs(59)));
        assert!(p.due(10, Duration::ZERO));
        assert!(p.due(1, Duration::from_secs(60)));
    }
}
