//! Acquisition first. While a camera is being copied, upload and transcode start nothing new —
//! for at most `acquire.background_wait_s` of copying, so a dock that is never idle still
//! uploads. The officer waits for "safe to undock"; nobody waits at the dock for an upload or a
//! playback copy, and both read the same spool disk the copies are written to and re-read from.
//! What they have begun goes on (an object being sent, a job being made); what they hold back
//! stays in their durable queues, and the end of the copying wakes their stages.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cameras docked again within this long of the last one's end continue its copying, as far as
/// the time limit goes: a dock that empties only for moments between cameras still uploads.
const SAME_BURST: Duration = Duration::from_secs(60);

/// How many cameras are being copied now, and since when.
#[derive(Default)]
pub struct Acquiring {
    state: Mutex<State>,
    /// Called when the last copy ends: the wake-ups of the stages that held back.
    on_idle: Mutex<Vec<OnIdle>>,
}

/// A wake-up, as a callback: the pipeline's stages depend on acquisition, not the reverse.
type OnIdle = Box<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Acquiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquiring")
            .field("state", &*self.lock())
            .finish()
    }
}

#[derive(Debug, Default)]
struct State {
    copying: usize,
    /// When this burst of copying began.
    since: Option<Instant>,
    /// When the count last went to 0.
    idle_since: Option<Instant>,
}

/// What a background stage gives way to: the station's cameras being copied, for at most `max`
/// of copying. The default gives way to nothing (no camera ever enters it).
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

    /// Call `wake` whenever the last copy ends (a stage that holds back sleeps until then).
    pub fn on_idle(&self, wake: impl Fn() + Send + Sync + 'static) {
        self.on_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(wake));
    }

    /// A camera starts being copied (until the guard is dropped: after its session has ended,
    /// released or not).
    pub fn enter(self: &Arc<Self>) -> Copying {
        self.enter_at(Instant::now());
        Copying(self.clone())
    }

    fn enter_at(&self, now: Instant) {
        let mut s = self.lock();
        if s.copying == 0 {
            let continues = s.since.is_some()
                && s.idle_since
                    .is_some_and(|idle| now.saturating_duration_since(idle) < SAME_BURST);
            if !continues {
                s.since = Some(now);
            }
        }
        s.copying += 1;
    }

    fn leave_at(&self, now: Instant) -> bool {
        let mut s = self.lock();
        s.copying = s.copying.saturating_sub(1);
        let idle = s.copying == 0;
        if idle {
            s.idle_since = Some(now);
        }
        idle
    }

    /// Cameras being copied now.
    pub fn copying(&self) -> usize {
        self.lock().copying
    }

    /// How much longer the background should hold back, if at all: `None` when no camera is
    /// being copied or this burst of copying has gone on for `max` already (`max` zero: never
    /// hold back).
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
        if self.0.leave_at(Instant::now()) {
            let wakes = self.0.on_idle.lock().unwrap_or_else(|p| p.into_inner());
            for wake in wakes.iter() {
                wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MAX: Duration = Duration::from_secs(300);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_background_holds_back_while_any_camera_is_copied_and_for_at_most_max() {
        let a = Acquiring::default();
        let t0 = Instant::now();
        assert_eq!(a.hold_back_at(t0, MAX), None, "nothing copying: go ahead");
        a.enter_at(t0);
        assert_eq!(a.hold_back_at(t0, MAX), Some(MAX));
        a.enter_at(t0 + secs(10));
        assert!(!a.leave_at(t0 + secs(20)), "one camera still copying");
        // Still held back, the time counted from the first camera.
        assert_eq!(a.hold_back_at(t0 + secs(100), MAX), Some(secs(200)));
        // Copying for longer than `max`: the background goes ahead anyway.
        assert_eq!(a.hold_back_at(t0 + MAX + secs(1), MAX), None);
        assert_eq!(
            a.hold_back_at(t0, Duration::ZERO),
            None,
            "0: never held back"
        );
        assert!(a.leave_at(t0 + secs(120)), "the last one");
        assert_eq!(a.hold_back_at(t0 + secs(121), MAX), None);
        // A camera docked moments later continues the burst: its time is not fresh.
        a.enter_at(t0 + secs(130));
        assert_eq!(a.hold_back_at(t0 + secs(200), MAX), Some(secs(100)));
        assert!(a.leave_at(t0 + secs(210)));
        // After a real pause, a new burst counts afresh.
        a.enter_at(t0 + secs(210) + SAME_BURST);
        assert_eq!(
            a.hold_back_at(t0 + secs(220) + SAME_BURST, MAX),
            Some(secs(290))
        );
    }

    #[test]
    fn the_end_of_the_copying_wakes_the_stages_that_held_back() {
        let a = Arc::new(Acquiring::default());
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        a.on_idle(move || {
            w.fetch_add(1, Ordering::Relaxed);
        });
        let (one, two) = (a.enter(), a.enter());
        drop(one);
        assert_eq!(woken.load(Ordering::Relaxed), 0, "one is still copying");
        drop(two);
        assert_eq!(woken.load(Ordering::Relaxed), 1);
    }
}
