//! Everything evidock does with FFmpeg, through `ffmpeg-next` and the system libraries: probing,
//! remuxing, transcoding to the playback format, thumbnails. Nothing here knows about evidence;
//! it reads one file and writes another.
//!
//! Memory stays bounded: packets and frames stream through; the only buffers are FFmpeg's own
//! (decoder/encoder look-ahead, the muxer's interleaving queue).

use super::settings::TranscodeSettings;
use evidock_verify::media::{MediaInfo, StreamInfo};
use ff::{Rational, codec, filter, format, frame, media};
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let ictx = format::input(&path).map_err(fferr(path, "open as media"))?;
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
    let mut ictx = format::input(&input).map_err(fferr(input, "open"))?;
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

/// One output stream of a playback copy: a filter graph, the encoder it feeds, and the muxer
/// stream the encoder writes.
struct Stage<E> {
    graph: filter::Graph,
    enc: E,
    stream: usize,
    enc_tb: Rational,
    frames: u64,
}

/// The H.264 side: scale, pixel format, optional burn-in; libx264.
type VideoOut = Stage<ff::encoder::Video>;
/// The AAC side: resampling to the encoder's frame size; FFmpeg's AAC encoder.
type AudioOut = Stage<ff::encoder::Audio>;

/// Decoded frames' description, for the filter graph's source.
#[derive(Debug, Clone, Copy)]
pub struct VideoIn {
    pub width: u32,
    pub height: u32,
    pub format: format::Pixel,
    pub sar: Rational,
    pub time_base: Rational,
    pub frame_rate: Rational,
}

impl VideoOut {
    fn new(
        octx: &mut format::context::Output,
        out: &Path,
        vin: VideoIn,
        s: &TranscodeSettings,
        overlay: Option<&str>,
    ) -> Result<Self, MediaError> {
        let (ow, oh) = playback_size(
            vin.width,
            vin.height,
            (vin.sar.numerator(), vin.sar.denominator()),
            s.max_height,
        );
        let mut graph = filter::Graph::new();
        let pix: ff::ffi::AVPixelFormat = vin.format.into();
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            vin.width,
            vin.height,
            pix as i32,
            vin.time_base.numerator(),
            vin.time_base.denominator(),
            vin.sar.numerator().max(1),
            vin.sar.denominator().max(1),
        );
        let ferr = fferr(out, "build the video filter graph");
        let buffer = filter::find("buffer").ok_or_else(|| unusable(out, "no buffer filter"))?;
        let sink =
            filter::find("buffersink").ok_or_else(|| unusable(out, "no buffersink filter"))?;
        graph.add(&buffer, "in", &args).map_err(ferr)?;
        graph
            .add(&sink, "out", "")
            .map_err(fferr(out, "build the video filter graph"))?;
        let mut spec = format!("scale={ow}:{oh}:flags=bicubic,setsar=1,format=yuv420p");
        if let Some(text) = overlay {
            spec.push_str(&format!(
                ",drawtext=text='{}':x=16:y=h-th-16:fontsize=h/28:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6",
                escape_drawtext(text)
            ));
        }
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec))
            .map_err(fferr(out, "build the video filter graph"))?;
        graph
            .validate()
            .map_err(fferr(out, "configure the video filter graph"))?;

        let x264 = ff::encoder::find_by_name("libx264")
            .ok_or_else(|| unusable(out, "FFmpeg has no libx264 encoder"))?;
        let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut os = octx.add_stream(x264).map_err(fferr(out, "add a stream"))?;
        let stream = os.index();
        let mut enc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(fferr(out, "create the H.264 encoder"))?;
        enc.set_width(ow);
        enc.set_height(oh);
        enc.set_format(format::Pixel::YUV420P);
        enc.set_aspect_ratio(Rational(1, 1));
        enc.set_time_base(vin.time_base);
        if vin.frame_rate.numerator() > 0 {
            enc.set_frame_rate(Some(vin.frame_rate));
        }
        if global {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = ff::Dictionary::new();
        opts.set("preset", &s.preset);
        opts.set("crf", &s.crf.to_string());
        opts.set("profile", "high");
        // libavcodec's default is one thread; the ffmpeg CLI asks for `auto`, and so do we.
        opts.set(
            "threads",
            &if s.threads > 0 {
                s.threads.to_string()
            } else {
                "auto".into()
            },
        );
        let enc = enc
            .open_with(opts)
            .map_err(fferr(out, "open the H.264 encoder"))?;
        os.set_parameters(&enc);
        Ok(VideoOut {
            graph,
            enc,
            stream,
            enc_tb: vin.time_base,
            frames: 0,
        })
    }

    fn push(
        &mut self,
        f: Option<&frame::Video>,
        octx: &mut format::context::Output,
        out_tb: Rational,
        out: &Path,
    ) -> Result<(), MediaError> {
        // The decoder's picture types must not force the encoder's choice of key frames.
        let prep = |v: &mut frame::Video| v.set_kind(ff::picture::Type::None);
        self.feed(
            f.map(|f| &**f),
            &mut frame::Video::empty(),
            prep,
            octx,
            out_tb,
            out,
        )
    }
}

impl AudioOut {
    fn new(
        octx: &mut format::context::Output,
        out: &Path,
        dec: &ff::decoder::Audio,
        in_tb: Rational,
        bitrate: usize,
    ) -> Result<Self, MediaError> {
        let aac = ff::encoder::find(codec::Id::AAC)
            .ok_or_else(|| unusable(out, "FFmpeg has no AAC encoder"))?;
        let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut os = octx.add_stream(aac).map_err(fferr(out, "add a stream"))?;
        let stream = os.index();
        let mut enc = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(fferr(out, "create the AAC encoder"))?;
        let in_layout = if dec.channel_layout().is_empty() {
            ff::ChannelLayout::default(i32::from(dec.channels()))
        } else {
            dec.channel_layout()
        };
        // Body cameras record mono or stereo; more channels are folded to stereo.
        let layout = if in_layout.channels() <= 1 {
            ff::ChannelLayout::MONO
        } else {
            ff::ChannelLayout::STEREO
        };
        let rate = if dec.rate() > 0 { dec.rate() } else { 48_000 };
        enc.set_rate(rate as i32);
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_format(format::Sample::F32(format::sample::Type::Planar));
        enc.set_bit_rate(bitrate);
        enc.set_time_base(Rational(1, rate as i32));
        if global {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let enc = enc
            .open_as(aac)
            .map_err(fferr(out, "open the AAC encoder"))?;
        os.set_parameters(&enc);

        let mut graph = filter::Graph::new();
        let args = format!(
            "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
            in_tb.numerator(),
            in_tb.denominator(),
            dec.rate(),
            dec.format().name(),
            in_layout.bits()
        );
        let abuffer = filter::find("abuffer").ok_or_else(|| unusable(out, "no abuffer filter"))?;
        let asink =
            filter::find("abuffersink").ok_or_else(|| unusable(out, "no abuffersink filter"))?;
        graph
            .add(&abuffer, "in", &args)
            .map_err(fferr(out, "build the audio filter graph"))?;
        graph
            .add(&asink, "out", "")
            .map_err(fferr(out, "build the audio filter graph"))?;
        {
            let mut o = graph
                .get("out")
                .ok_or_else(|| unusable(out, "audio graph has no sink"))?;
            o.set_sample_format(enc.format());
            o.set_channel_layout(layout);
            o.set_sample_rate(rate);
        }
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse("anull"))
            .map_err(fferr(out, "build the audio filter graph"))?;
        graph
            .validate()
            .map_err(fferr(out, "configure the audio filter graph"))?;
        if let Some(mut o) = graph.get("out") {
            o.sink().set_frame_size(enc.frame_size());
        }
        Ok(AudioOut {
            graph,
            enc,
            stream,
            enc_tb: Rational(1, rate as i32),
            frames: 0,
        })
    }

    fn push(
        &mut self,
        f: Option<&frame::Audio>,
        octx: &mut format::context::Output,
        out_tb: Rational,
        out: &Path,
    ) -> Result<(), MediaError> {
        self.feed(
            f.map(|f| &**f),
            &mut frame::Audio::empty(),
            |_| {},
            octx,
            out_tb,
            out,
        )
    }
}

/// The opened encoders deref twice: to their unopened kind, then to `Encoder`.
impl<E> Stage<E>
where
    E: std::ops::DerefMut,
    E::Target: std::ops::DerefMut<Target = ff::encoder::Encoder>,
{
    /// One frame (or, with `None`, the end) through the filter graph into the encoder, and what
    /// the encoder has ready into the muxer.
    fn feed<F: std::ops::DerefMut<Target = ff::Frame>>(
        &mut self,
        input: Option<&ff::Frame>,
        filtered: &mut F,
        prep: impl Fn(&mut F),
        octx: &mut format::context::Output,
        out_tb: Rational,
        out: &Path,
    ) -> Result<(), MediaError> {
        {
            let mut src = self
                .graph
                .get("in")
                .ok_or_else(|| unusable(out, "filter graph lost its source"))?;
            let r = match input {
                Some(f) => src.source().add(f),
                None => src.source().flush(),
            };
            r.map_err(fferr(out, "filter a frame"))?;
        }
        loop {
            let got = self
                .graph
                .get("out")
                .ok_or_else(|| unusable(out, "filter graph lost its sink"))?
                .sink()
                .frame(filtered);
            if got.is_err() {
                break;
            }
            prep(filtered);
            self.enc
                .send_frame(filtered)
                .map_err(fferr(out, "encode a frame"))?;
            self.frames += 1;
            drain(&mut self.enc, self.stream, self.enc_tb, octx, out_tb, out)?;
        }
        if input.is_none() {
            self.enc.send_eof().map_err(fferr(out, "finish encoding"))?;
            drain(&mut self.enc, self.stream, self.enc_tb, octx, out_tb, out)?;
        }
        Ok(())
    }
}

/// Write what an encoder has ready, re-timed from its time base to the stream's.
fn drain(
    enc: &mut ff::encoder::Encoder,
    stream: usize,
    enc_tb: Rational,
    octx: &mut format::context::Output,
    out_tb: Rational,
    out: &Path,
) -> Result<(), MediaError> {
    let mut pkt = ff::Packet::empty();
    while enc.receive_packet(&mut pkt).is_ok() {
        pkt.set_stream(stream);
        pkt.rescale_ts(enc_tb, out_tb);
        pkt.write_interleaved(octx)
            .map_err(fferr(out, "write a packet"))?;
    }
    Ok(())
}

fn threaded(ctx: &mut codec::context::Context, threads: usize) {
    ctx.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
}

/// Decode `input` and encode the playback copy: H.264 + AAC in MP4 (`muxer` `mp4`), or AAC
/// alone in M4A (`ipod`) when there is no video. Corrupt packets are skipped and counted.
pub fn transcode(
    input: &Path,
    out: &Path,
    s: &TranscodeSettings,
    overlay: Option<&str>,
    stop: &AtomicBool,
) -> Result<Written, MediaError> {
    init();
    let mut ictx = format::input(&input).map_err(fferr(input, "open"))?;
    let v_idx = ictx.streams().best(media::Type::Video).map(|s| s.index());
    let a_idx = ictx.streams().best(media::Type::Audio).map(|s| s.index());
    if v_idx.is_none() && a_idx.is_none() {
        return Err(unusable(input, "no audio or video stream"));
    }
    let mut octx = output(out, if v_idx.is_some() { "mp4" } else { "ipod" })?;

    let mut vdec = None;
    let mut vout = None;
    if let Some(i) = v_idx {
        let st = ictx
            .stream(i)
            .ok_or_else(|| unusable(input, "video stream vanished"))?;
        let mut ctx = codec::context::Context::from_parameters(st.parameters())
            .map_err(fferr(input, "read the video parameters"))?;
        threaded(&mut ctx, s.threads);
        let dec = ctx
            .decoder()
            .video()
            .map_err(fferr(input, "open the video decoder"))?;
        let vin = VideoIn {
            width: dec.width(),
            height: dec.height(),
            format: dec.format(),
            sar: dec.aspect_ratio(),
            time_base: st.time_base(),
            frame_rate: st.avg_frame_rate(),
        };
        if vin.width == 0 || vin.height == 0 {
            return Err(unusable(input, "the video stream has no picture size"));
        }
        vout = Some(VideoOut::new(&mut octx, out, vin, s, overlay)?);
        vdec = Some(dec);
    }
    let mut adec = None;
    let mut aout = None;
    let mut a_tb = Rational(1, 1);
    if let Some(i) = a_idx {
        let st = ictx
            .stream(i)
            .ok_or_else(|| unusable(input, "audio stream vanished"))?;
        a_tb = st.time_base();
        let dec = codec::context::Context::from_parameters(st.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(fferr(input, "open the audio decoder"))?;
        aout = Some(AudioOut::new(&mut octx, out, &dec, a_tb, s.audio_bitrate)?);
        adec = Some(dec);
    }
    octx.set_metadata(ictx.metadata().to_owned());
    octx.write_header_with(faststart())
        .map_err(fferr(out, "write the header"))?;
    let out_tb: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
    let v_tb = vout
        .as_ref()
        .map(|v| out_tb[v.stream])
        .unwrap_or(Rational(1, 1));
    let ao_tb = aout
        .as_ref()
        .map(|a| out_tb[a.stream])
        .unwrap_or(Rational(1, 1));
    let mut errors = 0u64;
    let mut vf = frame::Video::empty();
    let mut af = frame::Audio::empty();
    let mut a_next = 0i64;
    for (st, pkt) in ictx.packets() {
        check_stop(stop, input)?;
        if Some(st.index()) == v_idx
            && let (Some(dec), Some(vo)) = (vdec.as_mut(), vout.as_mut())
        {
            if dec.send_packet(&pkt).is_err() {
                errors += 1;
                continue;
            }
            while dec.receive_frame(&mut vf).is_ok() {
                let ts = vf.timestamp();
                vf.set_pts(ts);
                vo.push(Some(&vf), &mut octx, v_tb, out)?;
            }
        } else if Some(st.index()) == a_idx
            && let (Some(dec), Some(ao)) = (adec.as_mut(), aout.as_mut())
        {
            if dec.send_packet(&pkt).is_err() {
                errors += 1;
                continue;
            }
            while dec.receive_frame(&mut af).is_ok() {
                // Timestamps from a damaged file can jump back: keep audio monotonic.
                let ts = af.timestamp().unwrap_or(a_next).max(a_next);
                af.set_pts(Some(ts));
                a_next = ts
                    + af.samples() as i64 * i64::from(a_tb.denominator())
                        / (i64::from(a_tb.numerator().max(1)) * i64::from(af.rate().max(1)));
                ao.push(Some(&af), &mut octx, ao_tb, out)?;
            }
        }
    }
    if let (Some(dec), Some(vo)) = (vdec.as_mut(), vout.as_mut()) {
        let _ = dec.send_eof();
        while dec.receive_frame(&mut vf).is_ok() {
            let ts = vf.timestamp();
            vf.set_pts(ts);
            vo.push(Some(&vf), &mut octx, v_tb, out)?;
        }
        vo.push(None, &mut octx, v_tb, out)?;
    }
    if let (Some(dec), Some(ao)) = (adec.as_mut(), aout.as_mut()) {
        let _ = dec.send_eof();
        while dec.receive_frame(&mut af).is_ok() {
            let ts = af.timestamp().unwrap_or(a_next).max(a_next);
            af.set_pts(Some(ts));
            ao.push(Some(&af), &mut octx, ao_tb, out)?;
        }
        ao.push(None, &mut octx, ao_tb, out)?;
    }
    let video_frames = vout.as_ref().map_or(0, |v| v.frames);
    let audio_frames = aout.as_ref().map_or(0, |a| a.frames);
    if video_frames == 0 && audio_frames == 0 {
        return Err(unusable(input, "nothing in it could be decoded"));
    }
    octx.write_trailer()
        .map_err(fferr(out, "finish the file"))?;
    Ok(Written {
        mode: "transcode",
        video_frames,
        audio_frames,
        decode_errors: errors,
    })
}

/// Encode H.264 from already-demuxed packets (a salvaged recording): `packets` are decoded with
/// `params` (the healthy reference's codec parameters) and re-timed at the reference's frame
/// rate. Returns the frames written and the packets the decoder refused.
pub fn transcode_packets(
    reference: &Path,
    packets: impl Iterator<Item = Vec<u8>>,
    out: &Path,
    s: &TranscodeSettings,
    overlay: Option<&str>,
    stop: &AtomicBool,
) -> Result<Written, MediaError> {
    init();
    let rctx = format::input(&reference).map_err(fferr(reference, "open the reference"))?;
    let st = rctx
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| unusable(reference, "the reference has no video"))?;
    let fr = st.avg_frame_rate();
    let fr = if fr.numerator() > 0 {
        fr
    } else {
        Rational(25, 1)
    };
    let tb = Rational(fr.denominator(), fr.numerator());
    let mut ctx = codec::context::Context::from_parameters(st.parameters())
        .map_err(fferr(reference, "read the reference's video parameters"))?;
    threaded(&mut ctx, s.threads);
    let mut dec = ctx
        .decoder()
        .video()
        .map_err(fferr(reference, "open the video decoder"))?;
    let vin = VideoIn {
        width: dec.width(),
        height: dec.height(),
        format: dec.format(),
        sar: dec.aspect_ratio(),
        time_base: tb,
        frame_rate: fr,
    };
    drop(rctx);
    let mut octx = output(out, "mp4")?;
    let mut vo = VideoOut::new(&mut octx, out, vin, s, overlay)?;
    octx.write_header_with(faststart())
        .map_err(fferr(out, "write the header"))?;
    let out_tb = octx.stream(vo.stream).map(|s| s.time_base()).unwrap_or(tb);
    let mut errors = 0u64;
    let mut n = 0i64;
    let mut vf = frame::Video::empty();
    let mut emit = |dec: &mut ff::decoder::Video,
                    vo: &mut VideoOut,
                    octx: &mut format::context::Output|
     -> Result<(), MediaError> {
        while dec.receive_frame(&mut vf).is_ok() {
            // The salvaged samples carry no timestamps: frames are numbered in output order.
            vf.set_pts(Some(n));
            n += 1;
            vo.push(Some(&vf), octx, out_tb, out)?;
        }
        Ok(())
    };
    for (i, data) in packets.enumerate() {
        check_stop(stop, out)?;
        let mut pkt = ff::Packet::copy(&data);
        pkt.set_dts(Some(i as i64));
        if dec.send_packet(&pkt).is_err() {
            errors += 1;
            continue;
        }
        emit(&mut dec, &mut vo, &mut octx)?;
    }
    let _ = dec.send_eof();
    emit(&mut dec, &mut vo, &mut octx)?;
    vo.push(None, &mut octx, out_tb, out)?;
    if vo.frames == 0 {
        return Err(unusable(out, "no salvaged frame could be decoded"));
    }
    octx.write_trailer()
        .map_err(fferr(out, "finish the file"))?;
    Ok(Written {
        mode: "salvage",
        video_frames: vo.frames,
        audio_frames: 0,
        decode_errors: errors,
    })
}

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
        let ictx = format::input(&input).map_err(fferr(input, "open"))?;
        ictx.duration().max(0)
    };
    // The poster: a frame a tenth of the way in (the first second is often black).
    let first = grab(input, duration / 10, width)?;
    write_jpeg(&first, poster)?;
    if let Some((path, cols, rows)) = sheet {
        let n = cols * rows;
        let mut graph = filter::Graph::new();
        let mut frames = Vec::new();
        for k in 0..n {
            let at = duration * i64::from(2 * k + 1) / i64::from(2 * n);
            frames.push((at, grab(input, at, width)?));
        }
        let f0 = &frames[0].1;
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
        write_jpeg(&tiled, path)?;
    }
    Ok(())
}

/// The first decodable frame at or after `at` (AV_TIME_BASE units), scaled to `width`.
fn grab(input: &Path, at: i64, width: u32) -> Result<frame::Video, MediaError> {
    let mut ictx = format::input(&input).map_err(fferr(input, "open"))?;
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
    let target = if tb.numerator() > 0 {
        (i128::from(at) * i128::from(tb.denominator())
            / (i128::from(tb.numerator()) * i128::from(ff::ffi::AV_TIME_BASE))) as i64
            + start.max(0)
    } else {
        0
    };
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

fn scale(f: &frame::Video, width: u32, path: &Path) -> Result<frame::Video, MediaError> {
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

fn write_jpeg(f: &frame::Video, out: &Path) -> Result<(), MediaError> {
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
    std::fs::write(out, data).map_err(|e| unusable(out, format!("write: {e}")))
}
