//! Thumbnails: a poster frame and a contact sheet sampled from a video (or the picture itself),
//! scaled and written as JPEG. Apart because it is a still-image path of its own. What the
//! samples of a transcode's own decode share with it (sample times, scaling, the sheet, JPEG)
//! is here too: `samples.rs` uses it, never the other way round.

use super::{MediaError, Opening, fferr, init, open, unusable};
use ff::{Rational, codec, filter, format, frame, media};
use ffmpeg_next as ff;
use std::path::Path;

/// Pictures sampled from a video (or the picture itself, for a photo): one poster frame, and a
/// `cols`×`rows` contact sheet with each frame's time, both as JPEG.
pub fn thumbnails(
    input: &Path,
    poster: &Path,
    sheet: Option<(&Path, u32, u32)>,
    width: u32,
) -> Result<(), MediaError> {
    init();
    let duration = {
        let ictx = open(input, Opening::Header).map_err(fferr(input, "open"))?;
        ictx.duration().max(0)
    };
    let n = sheet.map_or(0, |(_, c, r)| c * r);
    let times = sample_times(duration, n);
    let first = grab(input, times.poster, width)?;
    write_jpeg(&first, poster)?;
    if let Some((path, cols, rows)) = sheet {
        let mut frames = Vec::new();
        for at in times.tiles {
            frames.push((at, grab(input, at, width)?));
        }
        contact_sheet(frames, cols, rows, path)?;
    }
    Ok(())
}

/// When the poster and the contact sheet's frames are taken, in AV_TIME_BASE units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SampleTimes {
    /// A tenth of the way in (the first second is often black).
    pub poster: i64,
    /// Tile k of n: the middle of the k-th of n equal parts.
    pub tiles: Vec<i64>,
}

/// The sample times of a video `duration` long (AV_TIME_BASE units), for `n` tiles.
pub(super) fn sample_times(duration: i64, n: u32) -> SampleTimes {
    let duration = duration.max(0);
    SampleTimes {
        poster: duration / 10,
        tiles: (0..n)
            .map(|k| duration * i64::from(2 * k + 1) / i64::from(2 * n))
            .collect(),
    }
}

/// A time in AV_TIME_BASE units as a timestamp of a stream with time base `tb` whose first
/// timestamp is `start` (what a decoded frame's pts is compared with).
pub(super) fn in_stream(at: i64, tb: Rational, start: i64) -> i64 {
    if tb.numerator() > 0 {
        (i128::from(at) * i128::from(tb.denominator())
            / (i128::from(tb.numerator()) * i128::from(ff::ffi::AV_TIME_BASE))) as i64
            + start.max(0)
    } else {
        0
    }
}

/// The contact sheet: `frames` (each with its sample time, AV_TIME_BASE units, drawn on it)
/// tiled `cols`×`rows`, written as JPEG.
pub(super) fn contact_sheet(
    frames: Vec<(i64, frame::Video)>,
    cols: u32,
    rows: u32,
    path: &Path,
) -> Result<(), MediaError> {
    let f0 = &frames
        .first()
        .ok_or_else(|| unusable(path, "no frame for the contact sheet"))?
        .1;
    let mut graph = filter::Graph::new();
    let pix: ff::ffi::AVPixelFormat = f0.format().into();
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base=1/{}:pixel_aspect=1/1",
        f0.width(),
        f0.height(),
        pix as i32,
        ff::ffi::AV_TIME_BASE
    );
    let buffer = filter::find("buffer").ok_or_else(|| unusable(path, "no buffer filter"))?;
    let sink = filter::find("buffersink").ok_or_else(|| unusable(path, "no buffersink"))?;
    graph
        .add(&buffer, "in", &args)
        .map_err(fferr(path, "build the contact sheet graph"))?;
    graph
        .add(&sink, "out", "")
        .map_err(fferr(path, "build the contact sheet graph"))?;
    let spec = format!(
        "drawtext=text='%{{pts\\:hms}}':x=6:y=h-th-6:fontsize=h/9:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=3,tile={cols}x{rows}:padding=4:margin=4"
    );
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(fferr(path, "build the contact sheet graph"))?;
    graph
        .validate()
        .map_err(fferr(path, "configure the contact sheet graph"))?;
    for (at, mut f) in frames {
        f.set_pts(Some(at));
        graph
            .get("in")
            .ok_or_else(|| unusable(path, "graph lost its source"))?
            .source()
            .add(&f)
            .map_err(fferr(path, "tile a frame"))?;
    }
    graph
        .get("in")
        .ok_or_else(|| unusable(path, "graph lost its source"))?
        .source()
        .flush()
        .map_err(fferr(path, "tile"))?;
    let mut tiled = frame::Video::empty();
    graph
        .get("out")
        .ok_or_else(|| unusable(path, "graph lost its sink"))?
        .sink()
        .frame(&mut tiled)
        .map_err(fferr(path, "tile"))?;
    write_jpeg(&tiled, path)
}

/// The first decodable frame at or after `at` (AV_TIME_BASE units), scaled to `width`.
fn grab(input: &Path, at: i64, width: u32) -> Result<frame::Video, MediaError> {
    let mut ictx = open(input, Opening::Decode).map_err(fferr(input, "open"))?;
    let st = ictx
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| unusable(input, "no picture in it"))?;
    let idx = st.index();
    let tb = st.time_base();
    let start = st.start_time();
    let mut dec = codec::context::Context::from_parameters(st.parameters())
        .and_then(|c| c.decoder().video())
        .map_err(fferr(input, "open the decoder"))?;
    if at > 0 {
        // Seek to the key frame before `at`, then decode up to it.
        let _ = ictx.seek(at, ..at);
    }
    let target = in_stream(at, tb, start);
    let mut f = frame::Video::empty();
    let mut got: Option<frame::Video> = None;
    'outer: for (st, pkt) in ictx.packets() {
        if st.index() != idx || dec.send_packet(&pkt).is_err() {
            continue;
        }
        while dec.receive_frame(&mut f).is_ok() {
            let ts = f.timestamp().unwrap_or(0);
            got = Some(f.clone());
            if ts >= target {
                break 'outer;
            }
        }
    }
    if got.is_none() {
        let _ = dec.send_eof();
        if dec.receive_frame(&mut f).is_ok() {
            got = Some(f.clone());
        }
    }
    let f = got.ok_or_else(|| unusable(input, "no frame could be decoded"))?;
    scale(&f, width, input)
}

/// `f` at `width` (never wider than it is), height in proportion, both even, in the JPEG
/// encoder's pixel format.
pub(super) fn scale(f: &frame::Video, width: u32, path: &Path) -> Result<frame::Video, MediaError> {
    let w = width.min(f.width()).max(2) & !1;
    let h =
        ((u64::from(f.height()) * u64::from(w) / u64::from(f.width().max(1))) as u32).max(2) & !1;
    let mut sws = ff::software::scaling::Context::get(
        f.format(),
        f.width(),
        f.height(),
        format::Pixel::YUVJ420P,
        w,
        h,
        ff::software::scaling::Flags::BICUBIC,
    )
    .map_err(fferr(path, "scale a picture"))?;
    let mut o = frame::Video::empty();
    sws.run(f, &mut o).map_err(fferr(path, "scale a picture"))?;
    Ok(o)
}

/// One picture as a JPEG file.
pub(super) fn write_jpeg(f: &frame::Video, out: &Path) -> Result<(), MediaError> {
    let mjpeg = ff::encoder::find(codec::Id::MJPEG)
        .ok_or_else(|| unusable(out, "FFmpeg has no JPEG encoder"))?;
    let mut enc = codec::context::Context::new_with_codec(mjpeg)
        .encoder()
        .video()
        .map_err(fferr(out, "create the JPEG encoder"))?;
    let f = if f.format() == format::Pixel::YUVJ420P {
        f.clone()
    } else {
        scale(f, f.width(), out)?
    };
    enc.set_width(f.width());
    enc.set_height(f.height());
    enc.set_format(format::Pixel::YUVJ420P);
    enc.set_time_base(Rational(1, 25));
    let mut opts = ff::Dictionary::new();
    opts.set("qmin", "2");
    opts.set("qmax", "4");
    let mut enc = enc
        .open_with(opts)
        .map_err(fferr(out, "open the JPEG encoder"))?;
    let mut f = f;
    f.set_pts(Some(0));
    enc.send_frame(&f)
        .map_err(fferr(out, "encode the picture"))?;
    enc.send_eof().map_err(fferr(out, "encode the picture"))?;
    let mut pkt = ff::Packet::empty();
    enc.receive_packet(&mut pkt)
        .map_err(fferr(out, "encode the picture"))?;
    let data = pkt.data().ok_or_else(|| unusable(out, "empty JPEG"))?;
    fs_err::write(out, data).map_err(|e| unusable(out, format!("write: {e}")))
}
