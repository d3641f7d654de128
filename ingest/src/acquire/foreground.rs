//! Acquisition first. While a camera is being copied, upload and transcode start nothing new —
//! for at most `acquire.background_wait_s` of uninterrupted copying, so a dock that is never
//! idle still uploads. The officer waits for "safe to undock"; nobody waits at the dock for an
//! upload or a playback copy, and both read the same spool disk the copies are written to and
//! re-read from. What they have begun goes on (an object half sent, a job half made); what they
//! hold back stays in their durable queues, and the release that ends the copying wakes them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many cameras are being copied now, and since when without a pause.
#[derive(Debug, Default)]
pub struct Acquiring {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    copying: usize,
    /// When the count last went from 0 to 1.
    since: Option<Instant>,
}

/// What a background stage gives way to: the station's cameras being copied, for at most `max`
/// of uninterrupted copying. The default gives way to nothing (no camera ever enters it).
#[derive(Debug, Clone, Default)]
pub struct GiveWay {
    pub acquiring: Arc<Acquiring>,
    pub max: Duration,
}

impl GiveWay {
    /// How much longer to hold back, if at all ([`Acquiring::hold_back`]).
    pub fn hold_back(&self) -> Option<Duration> {
        self.acquiring.hold_back(self.max)
    }
}

/// One camera being copied: counted until dropped.
#[derive(Debug)]
pub struct Copying(Arc<Acquiring>);

impl Acquiring {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A camera starts being copied (until the guard is dropped: after its release is durable).
    pub fn enter(self: &Arc<Self>) -> Copying {
        let mut s = self.lock();
        if s.copying == 0 {
            s.since = Some(Instant::now());
        }
        s.copying += 1;
        Copying(self.clone())
    }

    /// Cameras being copied now.
    pub fn copying(&self) -> usize {
        self.lock().copying
    }

    /// How much longer the background should hold back, if at all: `None` when no camera is
    /// being copied or copying has gone on for `max` already (`max` zero: never hold back).
    pub fn hold_back(&self, max: Duration) -> Option<Duration> {
        self.hold_back_at(Instant::now(), max)
    }

    fn hold_back_at(&self, now: Instant, max: Duration) -> Option<Duration> {
        let s = self.lock();
        let since = s.since.filter(|_| s.copying > 0)?;
        max.checked_sub(now.saturating_duration_since(since))
            .filter(|left| !left.is_zero())
    }
}

impl Drop for Copying {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.copying = s.copying.saturating_sub(1);
        if s.copying == 0 {
            s.since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn the_background_holds_back_while_any_camera_is_copied_and_for_at_most_max() {
        let a = Arc::new(Acquiring::default());
        assert_eq!(a.hold_back(MAX), None, "nothing copying: go ahead");
        let first = a.enter();
        let t0 = Instant::now();
        assert!(a.hold_back(MAX).is_some());
        let second = a.enter();
        drop(first);
        assert_eq!(a.copying(), 1);
        // One camera still copying: still held back, and the time counts from the first.
        let left = a.hold_back_at(t0 + Duration::from_secs(100), MAX).unwrap();
        assert!(left <= Duration::from_secs(200), "{left:?}");
        // Copying without a pause for longer than `max`: the background goes ahead anyway.
        assert_eq!(a.hold_back_at(t0 + MAX + Duration::from_secs(1), MAX), None);
        assert_eq!(a.hold_back(Duration::ZERO), None, "0: never held back");
        drop(second);
        assert_eq!(a.hold_back(MAX), None, "the last release lets it go");
        // A new burst counts afresh.
        let _third = a.enter();
        let left = a.hold_back(MAX).unwrap();
        assert!(left > Duration::from_secs(299), "{left:?}");
    }
}
