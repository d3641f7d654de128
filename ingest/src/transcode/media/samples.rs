//! The poster and the contact sheet from the playback copy's own decode: the frames whose pts
//! first reaches each sample time are kept as they go by, scaled to the thumbnail width at once
//! (n + 1 small pictures, never the video), and written when the decode is done. So a recording
//! that is transcoded is decoded once; a remuxed one still has its thumbnails from the file.

use super::MediaError;
use super::thumbnails::{contact_sheet, in_stream, sample_times, scale, write_jpeg};
use ff::{Rational, frame};
use ffmpeg_next as ff;
use std::path::Path;

/// Where a video's poster and contact sheet are written (their size and layout are the
/// settings': `thumbnail_width`, `contact_sheet`).
#[derive(Debug, Clone, Copy)]
pub struct Stills<'a> {
    pub poster: &'a Path,
    pub sheet: &'a Path,
}

/// The frames kept for the stills while a video is decoded.
pub(super) struct Samples<'a> {
    stills: Stills<'a>,
    grid: [u32; 2],
    width: u32,
    /// The poster's, then each tile's: (sample time in AV_TIME_BASE units, as a pts).
    at: Vec<(i64, i64)>,
    kept: Vec<Option<frame::Video>>,
    /// A picture could not be scaled: no stills from this decode (never the playback copy's
    /// failure; the caller makes them from the file).
    failed: bool,
}

impl<'a> Samples<'a> {
    /// For a video `duration` long (AV_TIME_BASE units, from its container) whose frames have
    /// time base `tb` and start at `start`.
    pub fn new(
        stills: Stills<'a>,
        duration: i64,
        tb: Rational,
        start: i64,
        grid: [u32; 2],
        width: u32,
    ) -> Self {
        let times = sample_times(duration, grid[0] * grid[1]);
        let at: Vec<(i64, i64)> = std::iter::once(times.poster)
            .chain(times.tiles)
            .map(|t| (t, in_stream(t, tb, start)))
            .collect();
        Samples {
            stills,
            grid,
            width,
            kept: vec![None; at.len()],
            at,
            failed: false,
        }
    }

    /// A decoded frame, in presentation order: kept (small) for every sample time its pts is
    /// the first to reach.
    pub fn offer(&mut self, f: &frame::Video) {
        let Some(pts) = f.pts() else { return };
        let due = |(at, kept): (&(i64, i64), &Option<frame::Video>)| kept.is_none() && pts >= at.1;
        if self.failed || !self.at.iter().zip(&self.kept).any(due) {
            return;
        }
        let small = match scale(f, self.width, self.stills.poster) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "a sampled picture could not be scaled: thumbnails from the playback copy");
                self.failed = true;
                return;
            }
        };
        for (at, kept) in self.at.iter().zip(self.kept.iter_mut()) {
            if kept.is_none() && pts >= at.1 {
                *kept = Some(small.clone());
            }
        }
    }

    /// Write the poster and the contact sheet: `true` when done. `false` when a sample time was
    /// never reached (the pictures end before the container says) or a picture did not scale,
    /// tile or encode: then the caller makes them from the playback copy, as before.
    pub fn finish(self) -> bool {
        if self.failed || self.kept.iter().any(Option::is_none) {
            return false;
        }
        match self.write() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "the sampled thumbnails were not written: made from the playback copy");
                false
            }
        }
    }

    fn write(self) -> Result<(), MediaError> {
        let mut kept = self.kept.into_iter().flatten();
        let poster = kept
            .next()
            .ok_or_else(|| super::unusable(self.stills.poster, "no poster frame"))?;
        write_jpeg(&poster, self.stills.poster)?;
        let tiles = self.at[1..].iter().map(|(t, _)| *t).zip(kept).collect();
        contact_sheet(tiles, self.grid[0], self.grid[1], self.stills.sheet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::format::Pixel;

    fn frame_at(pts: i64) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P, 640, 360);
        for p in 0..3 {
            f.data_mut(p).fill(if p == 0 { 100 } else { 128 });
        }
        f.set_pts(Some(pts));
        f
    }

    /// 2 s at 25 frames/s (time base 1/25): every sample time is reached, the poster is
    /// `width` wide and the sheet is cols × rows tiles with their padding and margin.
    #[test]
    fn every_sample_time_reached_writes_the_poster_and_the_sheet() {
        super::super::init();
        let dir = tempfile::tempdir().unwrap();
        let (poster, sheet) = (dir.path().join("p.jpg"), dir.path().join("s.jpg"));
        let stills = Stills {
            poster: &poster,
            sheet: &sheet,
        };
        let mut s = Samples::new(stills, 2_000_000, Rational(1, 25), 0, [3, 2], 160);
        assert_eq!(
            s.at.iter().map(|a| a.1).collect::<Vec<_>>(),
            [5, 4, 12, 20, 29, 37, 45]
        );
        for pts in 0..50 {
            s.offer(&frame_at(pts));
        }
        assert!(s.finish());
        let p = super::super::probe(&poster).unwrap();
        let v = p.stream("video").unwrap();
        assert_eq!((v.width, v.height), (Some(160), Some(90)));
        let sh = super::super::probe(&sheet).unwrap();
        let v = sh.stream("video").unwrap();
        assert_eq!(
            (v.width, v.height),
            (Some(3 * 160 + 2 * 4 + 2 * 4), Some(2 * 90 + 4 + 2 * 4))
        );
    }

    /// The pictures stop at 1 s of a 2 s container: nothing is written, the caller falls back.
    #[test]
    fn a_sample_time_never_reached_writes_nothing() {
        super::super::init();
        let dir = tempfile::tempdir().unwrap();
        let (poster, sheet) = (dir.path().join("p.jpg"), dir.path().join("s.jpg"));
        let stills = Stills {
            poster: &poster,
            sheet: &sheet,
        };
        let mut s = Samples::new(stills, 2_000_000, Rational(1, 25), 0, [2, 2], 160);
        for pts in 0..25 {
            s.offer(&frame_at(pts));
        }
        assert!(!s.finish());
        assert!(!poster.exists() && !sheet.exists());
    }
}
