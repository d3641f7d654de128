//! The playback copy alone, or the whole derivative job, for benchmarks against the ffmpeg CLI
//! with the same settings (the default `[transcode]` settings):
//!
//! - `bench-transcode transcode|remux INPUT OUTPUT`: the playback copy alone;
//! - `bench-transcode derive INPUT DIR`: what a video's derivative job makes — the playback
//!   copy (remuxed or transcoded, as the job decides), the poster and the contact sheet, with
//!   the job's own calls in the job's order — into `DIR/playback.mp4`, `DIR/poster.jpg` and
//!   `DIR/contact-sheet.jpg` (no hashing, custody events or upload queue).
#![allow(clippy::print_stderr)]

use evidock_ingest::transcode::media;
use evidock_ingest::transcode::{MediaKind, TranscodeSettings};
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, input, output] = args.as_slice() else {
        anyhow::bail!("usage: bench-transcode transcode|remux INPUT OUTPUT | derive INPUT DIR");
    };
    let s = TranscodeSettings::default();
    let never = std::sync::atomic::AtomicBool::new(false);
    let (input, output) = (Path::new(input), Path::new(output));
    let w = match mode.as_str() {
        "transcode" => media::transcode(input, output, &s, None, None, &never)?,
        "remux" => media::remux(input, output)?,
        "derive" => {
            std::fs::create_dir_all(output)?;
            let (out, poster, sheet) = (
                output.join("playback.mp4"),
                output.join("poster.jpg"),
                output.join("contact-sheet.jpg"),
            );
            let info = media::probe(input)?;
            let w = if s.can_remux(&info, MediaKind::Video) {
                media::remux(input, &out)?
            } else {
                let stills = media::Stills {
                    poster: &poster,
                    sheet: &sheet,
                };
                media::transcode(input, &out, &s, None, Some(stills), &never)?
            };
            media::probe(&out)?;
            if !w.stills {
                let [c, r] = s.contact_sheet;
                media::thumbnails(&out, &poster, Some((&sheet, c, r)), s.thumbnail_width)?;
            }
            w
        }
        m => anyhow::bail!("unknown mode {m}"),
    };
    eprintln!(
        "{}: {} video frames, {} audio frames; poster and contact sheet {}",
        w.mode,
        w.video_frames,
        w.audio_frames,
        if w.stills {
            "from the same decode"
        } else {
            "from the copy"
        }
    );
    Ok(())
}
