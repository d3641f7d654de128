//! Correcting recording times from a camera clock that drifts and resets.
//!
//! Cameras stamp recordings with their own local clock. At docking evidock reads that clock
//! beside the station clock; the difference is the **docking offset**. Corrections are per
//! segment, never one offset for the whole card:
//!
//! - A **clock reset** (the battery died) shows as raw times that jump backwards, fall before the
//!   previous docking's sync, or lie in an implausible year. Recordings from the reset on were
//!   stamped by the reset clock, which ran on until docking: they take the docking offset
//!   (`docking-offset`).
//! - Recordings before a reset, or on a card with no reset, were stamped by a clock that was
//!   right at the last sync and drifted since: they get the drift at their time, interpolated
//!   between the sync (no drift) and the docking (`drift-interpolated`); when a reset spoiled
//!   this docking's measurement, the drift rate measured at earlier dockings is used
//!   (`drift-since-sync`), or none (`since-sync`).
//! - With no earlier sync on record, the docking offset applies throughout (`docking-offset`);
//!   with no camera clock at all (mass-storage cameras), raw times are kept (`raw-unchecked`).
//!
//! Raw and corrected times are both kept; every corrected time names its rule.

use chrono::{DateTime, Datelike as _, Duration, NaiveDateTime, TimeZone as _, Utc};
use evidock_verify::event::payload::RecordingTime;
use evidock_verify::event::{Timestamp, UtcOffset};

/// The clocks read at docking.
#[derive(Debug, Clone, Copy)]
pub struct Docking {
    /// The camera's clock (its local time), if the driver could read it.
    pub camera: Option<NaiveDateTime>,
    /// The station clock at the same moment.
    pub station: DateTime<Utc>,
    /// The offset camera local times are in (the station's).
    pub offset: UtcOffset,
}

impl Docking {
    /// Station minus camera, if the camera clock was read.
    pub fn offset_ms(&self) -> Option<i64> {
        self.camera
            .map(|c| (self.station - as_utc(c, self.offset)).num_milliseconds())
    }
}

/// What is known from earlier dockings of the same camera.
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    /// When the camera's clock was last set to station time.
    pub last_sync: Option<DateTime<Utc>>,
    /// Drift measured at earlier dockings, in parts per million (positive = camera fast).
    pub drift_ppm: Option<f64>,
}

/// A camera local time as a UTC instant, reading it in `offset`.
pub fn as_utc(local: NaiveDateTime, offset: UtcOffset) -> DateTime<Utc> {
    offset
        .0
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// Raw times further back than this from their predecessor mark a reset.
const BACKWARDS: Duration = Duration::minutes(10);

/// Whether a camera year is plausible for a recording made before `station`.
fn plausible(t: NaiveDateTime, station: DateTime<Utc>) -> bool {
    t.year() >= 2015 && t.year() <= station.year() + 1
}

/// Index of the first recording stamped by a reset clock, if any. `raw` is in recording order.
pub fn find_reset(
    raw: &[Option<NaiveDateTime>],
    docking: &Docking,
    history: &History,
) -> Option<usize> {
    // A recording older than the last sync is only suspicious when the clock is off at docking
    // (with wiping off, a card legitimately holds recordings from before the last docking).
    let clock_off = docking.offset_ms().is_some_and(|o| o.abs() > 3_600_000);
    let mut prev: Option<NaiveDateTime> = None;
    for (i, t) in raw.iter().enumerate() {
        let Some(t) = *t else { continue };
        let backwards = prev.is_some_and(|p| t < p - BACKWARDS);
        let before_sync = clock_off
            && history
                .last_sync
                .is_some_and(|s| as_utc(t, docking.offset) < s - BACKWARDS);
        if backwards || before_sync || !plausible(t, docking.station) {
            return Some(i);
        }
        prev = Some(t);
    }
    None
}

/// The corrected time of every recording (`None` where the raw time is unknown).
pub fn correct(
    raw: &[Option<NaiveDateTime>],
    docking: &Docking,
    history: &History,
) -> Vec<Option<RecordingTime>> {
    let reset = find_reset(raw, docking, history);
    let offset_ms = docking.offset_ms();
    raw.iter()
        .enumerate()
        .map(|(i, t)| {
            let t = (*t)?;
            let raw_utc = as_utc(t, docking.offset);
            let (corrected, rule) = match (offset_ms, docking.camera) {
                (None, _) | (_, None) => (raw_utc, "raw-unchecked"),
                (Some(off), Some(cam)) => {
                    let after_reset = reset.is_some_and(|r| i >= r);
                    match (after_reset, reset.is_some(), history.last_sync) {
                        (true, _, _) | (false, _, None) => {
                            (raw_utc + Duration::milliseconds(off), "docking-offset")
                        }
                        (false, false, Some(sync)) => {
                            // Linear drift from zero at the sync to `off` at docking.
                            let span = (as_utc(cam, docking.offset) - sync).num_milliseconds();
                            let at = (raw_utc - sync).num_milliseconds().clamp(0, span.max(0));
                            let drift = if span > 0 {
                                (off as i128 * at as i128 / span as i128) as i64
                            } else {
                                off
                            };
                            (
                                raw_utc + Duration::milliseconds(drift),
                                "drift-interpolated",
                            )
                        }
                        (false, true, Some(sync)) => match history.drift_ppm {
                            Some(ppm) => {
                                let since = (raw_utc - sync).num_milliseconds().max(0) as f64;
                                // A fast camera stamps late times: subtract its drift.
                                let drift = -(since * ppm / 1e6) as i64;
                                (raw_utc + Duration::milliseconds(drift), "drift-since-sync")
                            }
                            None => (raw_utc, "since-sync"),
                        },
                    }
                }
            };
            Some(RecordingTime {
                raw: t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                corrected: Timestamp::from_datetime(corrected),
                rule: rule.to_string(),
            })
        })
        .collect()
}

/// The drift rate this docking measured, if it is a clean measurement (no reset, known sync).
pub fn measured_drift_ppm(docking: &Docking, history: &History, reset: bool) -> Option<f64> {
    let (cam, sync) = (docking.camera?, history.last_sync?);
    if reset {
        return None;
    }
    let span = (docking.station - sync).num_milliseconds();
    if span < 3_600_000 {
        return None; // too short to measure
    }
    let fast_by = (as_utc(cam, docking.offset) - docking.station).num_milliseconds();
    Some(fast_by as f64 * 1e6 / span as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn cn() -> UtcOffset {
        "+08:00".parse().unwrap()
    }

    #[test]
    fn reset_mid_card_splits_the_rules() {
        // Synced at 2026-11-27 08:00 Beijing; recorded two clips; battery died; clock restarted at
        // 2000-01-01 00:00 and recorded two more; docked at 2026-11-28 18:00 Beijing when the
        // camera showed 2000-01-01 06:00.
        let docking = Docking {
            camera: Some(t("2000-01-01 06:00:00")),
            station: utc("2026-11-28T10:00:00Z"),
            offset: cn(),
        };
        let history = History {
            last_sync: Some(utc("2026-11-27T00:00:00Z")),
            drift_ppm: Some(10.0),
        };
        let raw = vec![
            Some(t("2026-11-28 09:00:00")),
            Some(t("2026-11-28 10:00:00")),
            Some(t("2000-01-01 01:00:00")),
            Some(t("2000-01-01 03:00:00")),
            None,
        ];
        assert_eq!(find_reset(&raw, &docking, &history), Some(2));
        let c = correct(&raw, &docking, &history);
        assert_eq!(c[0].as_ref().unwrap().rule, "drift-since-sync");
        // 09:00 Beijing = 01:00Z, 25 h after the sync at 10 ppm fast: 0.9 s earlier.
        assert_eq!(
            c[0].as_ref().unwrap().corrected.to_string(),
            "2026-11-28T00:59:59.100Z"
        );
        let r = c[2].as_ref().unwrap();
        assert_eq!(r.rule, "docking-offset");
        assert_eq!(r.raw, "2000-01-01T01:00:00");
        // 01:00 on the reset clock is 5 h before docking (camera showed 06:00): 13:00 Beijing.
        assert_eq!(r.corrected.to_string(), "2026-11-28T05:00:00.000Z");
        assert!(c[4].is_none());
        assert_eq!(measured_drift_ppm(&docking, &history, true), None);
    }

    #[test]
    fn whole_card_after_a_reset_is_detected_by_year() {
        let docking = Docking {
            camera: Some(t("2000-01-01 02:00:00")),
            station: utc("2026-11-28T10:00:00Z"),
            offset: cn(),
        };
        let raw = vec![
            Some(t("2000-01-01 01:00:00")),
            Some(t("2000-01-01 01:30:00")),
        ];
        assert_eq!(find_reset(&raw, &docking, &History::default()), Some(0));
        let c = correct(&raw, &docking, &History::default());
        assert_eq!(
            c[1].as_ref().unwrap().corrected.to_string(),
            "2026-11-28T09:30:00.000Z"
        );
        // A clock in 2099 too.
        let future = vec![Some(t("2099-01-01 00:00:00"))];
        assert_eq!(find_reset(&future, &docking, &History::default()), Some(0));
    }

    #[test]
    fn drift_is_interpolated_between_sync_and_docking() {
        // Synced 24 h before docking; camera is 24 s fast at docking (≈ 278 ppm).
        let docking = Docking {
            camera: Some(t("2026-11-28 18:00:24")),
            station: utc("2026-11-28T10:00:00Z"),
            offset: cn(),
        };
        let history = History {
            last_sync: Some(utc("2026-11-27T10:00:00Z")),
            drift_ppm: None,
        };
        // Recorded 12 h after the sync (camera was 12 s fast then).
        let raw = vec![Some(t("2026-11-28 06:00:12"))];
        let c = correct(&raw, &docking, &history);
        let r = c[0].as_ref().unwrap();
        assert_eq!(r.rule, "drift-interpolated");
        assert_eq!(r.corrected.to_string(), "2026-11-27T22:00:00.000Z");
        let ppm = measured_drift_ppm(&docking, &history, false).unwrap();
        assert!((ppm - 277.8).abs() < 0.5, "{ppm}");
    }

    #[test]
    fn unreadable_clock_keeps_raw() {
        let docking = Docking {
            camera: None,
            station: utc("2026-11-28T10:00:00Z"),
            offset: cn(),
        };
        let c = correct(
            &[Some(t("2026-11-28 08:00:00"))],
            &docking,
            &History::default(),
        );
        let r = c[0].as_ref().unwrap();
        assert_eq!(r.rule, "raw-unchecked");
        assert_eq!(r.corrected.to_string(), "2026-11-28T00:00:00.000Z");
    }
}
