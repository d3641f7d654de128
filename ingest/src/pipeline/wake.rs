//! Wake-ups that cannot be lost: a generation counter per stage.
//!
//! A producer (a release, an upload acknowledged, derivatives made) *bumps* the stage's
//! counter; the stage marks the generation it has seen before each pass and, after it, waits
//! only if nothing was bumped meanwhile. A bump during a pass therefore starts the next pass at
//! once — unlike `Notify::notify_waiters`, which wakes only whoever waits at that instant, and
//! `notify_one`, whose single permit two producers share. Bumps while a stage is busy fold into
//! one more pass, which is all a stage that drains a durable queue needs.

use tokio::sync::watch;

/// The producers' side: cheap to clone, one per stage.
#[derive(Debug, Clone)]
pub struct Wake(std::sync::Arc<watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Self {
        Wake(std::sync::Arc::new(watch::channel(0).0))
    }
}

impl Wake {
    /// There may be more work: the stage runs a pass as soon as it can.
    pub fn bump(&self) {
        // `send_modify` updates the value even when no stage is subscribed yet: a bump before
        // the stage starts is seen by its first wait.
        self.0.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The stage's side. Subscribed now: bumps from here on are seen.
    pub fn waiter(&self) -> Waiter {
        Waiter(self.0.subscribe())
    }

    /// How many bumps so far (the status page and tests).
    pub fn generation(&self) -> u64 {
        *self.0.borrow()
    }
}

/// What a stage waits on between passes.
#[derive(Debug)]
pub struct Waiter(watch::Receiver<u64>);

impl Waiter {
    /// Called right before a pass: what was bumped until now, this pass takes up.
    pub fn seen(&mut self) {
        self.0.borrow_and_update();
    }

    /// Returns at once if bumped since [`Waiter::seen`], else at the next bump.
    pub async fn bumped(&mut self) {
        if self.0.changed().await.is_err() {
            // Every producer is gone: only the stage's timer or the shutdown wakes it now.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_bump_during_a_pass_is_not_lost() {
        let wake = Wake::default();
        let mut w = wake.waiter();
        w.seen();
        // The "pass" runs; a producer bumps meanwhile, while nobody waits.
        wake.bump();
        // The wait after the pass returns at once, not at some timer.
        tokio::time::timeout(Duration::from_millis(1), w.bumped())
            .await
            .unwrap();
        // Seen: the next wait waits.
        w.seen();
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), w.bumped())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bump_before_the_stage_subscribes_is_kept() {
        let wake = Wake::default();
        wake.bump();
        let mut w = wake.waiter();
        // Subscribed after the bump: the first pass (which every stage runs at start) covers
        // it, so the wait after it waits.
        w.seen();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), w.bumped())
                .await
                .is_err()
        );
        assert_eq!(wake.generation(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn bumps_while_busy_fold_into_one_pass() {
        let wake = Wake::default();
        let mut w = wake.waiter();
        w.seen();
        for _ in 0..5 {
            wake.bump();
        }
        tokio::time::timeout(Duration::from_millis(1), w.bumped())
            .await
            .unwrap();
        w.seen();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), w.bumped())
                .await
                .is_err()
        );
    }
}
