//! Real footage for the tests, made with the ffmpeg CLI at test time.

use std::path::Path;
use std::process::Command;

/// Run the ffmpeg CLI quietly, overwriting; a failure is a failed test with ffmpeg's words.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg CLI (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An H.264/AAC MP4 of `secs` seconds at `size`, its colours turned by `hue` degrees so that
/// clips differ.
pub fn clip(to: &Path, size: &str, secs: u32, hue: u32) {
    let video = format!("testsrc2=size={size}:rate=25:duration={secs},hue=h={hue}");
    let audio = format!("sine=frequency={}:duration={secs}", 300 + hue);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        &audio,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        &to.to_string_lossy(),
    ]);
}
