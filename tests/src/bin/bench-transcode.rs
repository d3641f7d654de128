//! The playback copy alone, for benchmarks against the ffmpeg CLI with the same settings:
//! `bench-transcode transcode|remux INPUT OUTPUT` with the default `[transcode]` settings.
#![allow(clippy::print_stderr)]

use evidock_ingest::transcode::TranscodeSettings;
use evidock_ingest::transcode::media;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, input, output] = args.as_slice() else {
        anyhow::bail!("usage: bench-transcode transcode|remux INPUT OUTPUT");
    };
    let s = TranscodeSettings::default();
    let w = match mode.as_str() {
        "transcode" => {
            let never = std::sync::atomic::AtomicBool::new(false);
            media::transcode(Path::new(input), Path::new(output), &s, None, &never)?
        }
        "remux" => media::remux(Path::new(input), Path::new(output))?,
        m => anyhow::bail!("unknown mode {m}"),
    };
    eprintln!(
        "{}: {} video frames, {} audio frames",
        w.mode, w.video_frames, w.audio_frames
    );
    Ok(())
}
