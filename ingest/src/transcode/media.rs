//! Everything evidock does with FFmpeg, through `ffmpeg-next` and the system libraries: probing,
//! remuxing, transcoding to the playback format, thumbnails. Nothing here knows about evidence;
//! it reads one file and writes another.
//!
//! Memory stays bounded: packets and frames stream through; the only buffers are FFmpeg's own
//! (decoder/encoder look-ahead, the muxer's interleaving queue).
//!
//! This file holds probing, remuxing and what they share; the playback copy (`playback.rs`),
//! thumbnails from a file (`thumbnails.rs`) and the poster and contact sheet taken from the
//! playback copy's own decode (`samples.rs`) are beside it.

use evidock_verify::media::{MediaInfo, StreamInfo};
use ff::{Rational, codec, format, media};
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

mod playback;
mod samples;
mod thumbnails;

pub use playback::{VideoIn, transcode, transcode_packets};
pub use samples::Stills;
pub use thumbnails::thumbnails;

/// What a file is opened for: its header and index only, to copy its packets, or to decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Header,
    Copy,
    Decode,
}

/// Every file opened as media goes through here (tests count the decodes of a job).
fn open(path: &Path, how: Opening) -> Result<format::context::Input, ff::Error> {
    #[cfg(test)]
    OPENED.with(|o| o.borrow_mut().push((path.to_path_buf(), how)));
    #[cfg(not(test))]
    let _ = how;
    format::input(&path)
}

#[cfg(test)]
thread_local! {
    static OPENED: std::cell::RefCell<Vec<(std::path::PathBuf, Opening)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The files this thread opened as media since the last call, and what for (tests only: a job
/// runs on the thread that calls it).
#[cfg(test)]
pub fn opened() -> Vec<(std::path::PathBuf, Opening)> {
    OPENED.with(|o| std::mem::take(&mut *o.borrow_mut()))
}

/// What went wrong reading or writing media, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{path}: {what}: {source}")]
    Ffmpeg {
        path: String,
        what: &'static str,
        source: ff::Error,
    },
    #[error("{path}: {reason}")]
    Unusable { path: String, reason: String },
    /// Not a failure of the file: the station is shutting down; the job is made again later.
    #[error("{path}: interrupted: the station is shutting down")]
    Interrupted { path: String },
}

/// Checked between packets, so a long recording does not hold up a shutdown.
fn check_stop(stop: &AtomicBool, path: &Path) -> Result<(), MediaError> {
    if stop.load(Ordering::Relaxed) {
        return Err(MediaError::Interrupted {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

fn fferr(path: &Path, what: &'static str) -> impl FnOnce(ff::Error) -> MediaError {
    let path = path.display().to_string();
    move |source| MediaError::Ffmpeg { path, what, source }
}

fn unusable(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Unusable {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Initialise FFmpeg once per process, quietly: its log lines are not ours to print.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if let Err(e) = ff::init() {
            tracing::error!(error = %e, "FFmpeg did not initialise");
        }
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

fn version(v: u32) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// The FFmpeg library versions, for the `transcoded` custody event.
pub fn versions() -> serde_json::Value {
    init();
    serde_json::json!({
        "libavcodec": version(ff::codec::version()),
        "libavformat": version(ff::format::version()),
        "libavfilter": version(ff::filter::version()),
        "libavutil": version(ff::util::version()),
    })
}

fn ms(ts: i64, tb: Rational) -> Option<u64> {
    (ts > 0 && tb.denominator() != 0).then(|| {
        (i128::from(ts) * 1000 * i128::from(tb.numerator()) / i128::from(tb.denominator())) as u64
    })
}

fn ratio(r: Rational) -> Option<String> {
    (r.numerator() > 0 && r.denominator() > 0)
        .then(|| format!("{}/{}", r.numerator(), r.denominator()))
}

/// Read a file's container and streams (header and index only).
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    init();
    let ictx = open(path, Opening::Header).map_err(fferr(path, "open as media"))?;
    let md = ictx.metadata();
    let location = [
        "location",
        "com.apple.quicktime.location.ISO6709",
        "location-eng",
    ]
    .iter()
    .find_map(|k| md.get(k).map(str::to_string));
    let mut info = MediaInfo {
        container: ictx.format().name().to_string(),
        duration_ms: ms(ictx.duration(), Rational(1, ff::ffi::AV_TIME_BASE)),
        bit_rate: u64::try_from(ictx.bit_rate()).ok().filter(|b| *b > 0),
        creation_time: md.get("creation_time").map(str::to_string),
        location,
        streams: Vec::new(),
    };
    for st in ictx.streams() {
        let par = st.parameters();
        let id = par.id();
        let mut s = StreamInfo {
            kind: match par.medium() {
                media::Type::Video => "video",
                media::Type::Audio => "audio",
                media::Type::Subtitle => "subtitle",
                _ => "data",
            }
            .to_string(),
            codec: id.name().to_string(),
            duration_ms: ms(st.duration(), st.time_base()),
            ..Default::default()
        };
        if let Ok(ctx) = codec::context::Context::from_parameters(par) {
            let dec = ctx.decoder();
            let named = |p: codec::Profile| {
                (!matches!(p, codec::Profile::Unknown)).then(|| format!("{p:?}"))
            };
            match s.kind.as_str() {
                "video" => {
                    if let Ok(v) = dec.video() {
                        s.profile = named(v.profile());
                        s.width = Some(v.width()).filter(|w| *w > 0);
                        s.height = Some(v.height()).filter(|h| *h > 0);
                        s.bit_rate = Some(v.bit_rate() as u64).filter(|b| *b > 0);
                    }
                    s.frame_rate = ratio(st.avg_frame_rate()).or_else(|| ratio(st.rate()));
                }
                "audio" => {
                    if let Ok(a) = dec.audio() {
                        s.profile = named(a.profile());
                        s.sample_rate = Some(a.rate()).filter(|r| *r > 0);
                        s.channels = Some(u32::from(a.channels())).filter(|c| *c > 0);
                        s.bit_rate = Some(a.bit_rate() as u64).filter(|b| *b > 0);
                    }
                }
                _ => {}
            }
        }
        info.streams.push(s);
    }
    Ok(info)
}

/// What was written, for the custody event.
#[derive(Debug, Clone)]
pub struct Written {
    /// `remux` (streams copied) or `transcode`.
    pub mode: &'static str,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Packets the decoder refused (corrupt data skipped).
    pub decode_errors: u64,
    /// The poster and contact sheet asked for were written from this decode ([`Stills`]);
    /// `false` when none were asked for, or a sample time was never reached.
    pub stills: bool,
}

fn output(path: &Path, muxer: &str) -> Result<format::context::Output, MediaError> {
    format::output_as(&path, muxer).map_err(fferr(path, "create the output"))
}

fn faststart() -> ff::Dictionary<'static> {
    let mut d = ff::Dictionary::new();
    // The index goes first so a court PC starts playing before the whole file is read.
    d.set("movflags", "+faststart");
    d
}

/// Copy the audio and video streams into an MP4 (no re-encode).
pub fn remux(input: &Path, out: &Path) -> Result<Written, MediaError> {
    init();
    let mut ictx = open(input, Opening::Copy).map_err(fferr(input, "open"))?;
    let mut octx = output(out, "mp4")?;
    let mut map = vec![None; ictx.nb_streams() as usize];
    let mut in_tb = vec![Rational(0, 1); ictx.nb_streams() as usize];
    let mut n = 0;
    for st in ictx.streams() {
        if !matches!(
            st.parameters().medium(),
            media::Type::Video | media::Type::Audio
        ) {
            continue;
        }
        let mut os = octx
            .add_stream(ff::encoder::find(codec::Id::None))
            .map_err(fferr(out, "add a stream"))?;
        os.set_parameters(st.parameters());
        map[st.index()] = Some(n);
        in_tb[st.index()] = st.time_base();
        n += 1;
    }
    octx.set_metadata(ictx.metadata().to_owned());
    octx.write_header_with(faststart())
        .map_err(fferr(out, "write the header"))?;
    let out_tb: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
    let mut w = Written {
        mode: "remux",
        video_frames: 0,
        audio_frames: 0,
        decode_errors: 0,
        stills: false,
    };
    for (st, mut pkt) in ictx.packets() {
        let Some(o) = map[st.index()] else { continue };
        if st.parameters().medium() == media::Type::Video {
            w.video_frames += 1;
        } else {
            w.audio_frames += 1;
        }
        pkt.rescale_ts(in_tb[st.index()], out_tb[o]);
        pkt.set_position(-1);
        pkt.set_stream(o);
        pkt.write_interleaved(&mut octx)
            .map_err(fferr(out, "write a packet"))?;
    }
    octx.write_trailer()
        .map_err(fferr(out, "finish the file"))?;
    Ok(w)
}

/// The output size: height capped (never upscaled), width kept in proportion, both even.
pub fn playback_size(w: u32, h: u32, sar: (i32, i32), max_height: u32) -> (u32, u32) {
    let sar = if sar.0 > 0 && sar.1 > 0 {
        f64::from(sar.0) / f64::from(sar.1)
    } else {
        1.0
    };
    let dw = f64::from(w) * sar;
    let oh = h.min(max_height).max(2);
    let ow = (dw * f64::from(oh) / f64::from(h.max(1))).round() as u32;
    (ow.max(2) & !1, oh & !1)
}

/// The text drawn on a burned-in playback copy (drawtext escaping: `:` `'` `\` `%`).
pub fn escape_drawtext(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if matches!(c, ':' | '\'' | '\\' | '%' | ',' | ';' | '[' | ']' | '=') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}
