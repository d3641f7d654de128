//! The playback copy: the filter graph and encoder of each output stream (H.264, AAC), and the
//! decode loops that feed them from a file or from salvaged packets. Apart from probing and
//! remuxing because it is the one part that decodes and encodes.

use super::samples::{Samples, Stills};
use super::{
    MediaError, Opening, Written, check_stop, escape_drawtext, faststart, fferr, init, open,
    output, playback_size, unusable,
};
use crate::transcode::settings::TranscodeSettings;
use ff::{Rational, codec, filter, format, frame, media};
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::atomic::AtomicBool;

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

    /// A frame through; the pictures it becomes are offered to `samples` (the stills) as they
    /// are encoded: scaled, with the burn-in, as the playback copy shows them.
    fn push(
        &mut self,
        f: Option<&frame::Video>,
        octx: &mut format::context::Output,
        out_tb: Rational,
        out: &Path,
        mut samples: Option<&mut Samples<'_>>,
    ) -> Result<(), MediaError> {
        let prep = |v: &mut frame::Video| {
            // The decoder's picture types must not force the encoder's choice of key frames.
            v.set_kind(ff::picture::Type::None);
            if let Some(s) = samples.as_mut() {
                s.offer(v);
            }
            Ok(())
        };
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
            |_| Ok(()),
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
        mut prep: impl FnMut(&mut F) -> Result<(), MediaError>,
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
            prep(filtered)?;
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
/// alone in M4A (`ipod`) when there is no video. Corrupt packets are skipped and counted. With
/// `stills`, a video's poster and contact sheet come from the same decode (`Written::stills`).
pub fn transcode(
    input: &Path,
    out: &Path,
    s: &TranscodeSettings,
    overlay: Option<&str>,
    stills: Option<Stills<'_>>,
    stop: &AtomicBool,
) -> Result<Written, MediaError> {
    init();
    let mut ictx = open(input, Opening::Decode).map_err(fferr(input, "open"))?;
    let v_idx = ictx.streams().best(media::Type::Video).map(|s| s.index());
    let a_idx = ictx.streams().best(media::Type::Audio).map(|s| s.index());
    if v_idx.is_none() && a_idx.is_none() {
        return Err(unusable(input, "no audio or video stream"));
    }
    let mut octx = output(out, if v_idx.is_some() { "mp4" } else { "ipod" })?;

    let mut vdec = None;
    let mut vout = None;
    let mut samples = None;
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
        // The sample times from the container's duration, known before a frame is decoded.
        let (duration, start) = (ictx.duration(), st.start_time());
        samples = stills.map(|to| {
            Samples::new(
                to,
                duration,
                vin.time_base,
                start,
                s.contact_sheet,
                s.thumbnail_width,
            )
        });
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
                vo.push(Some(&vf), &mut octx, v_tb, out, samples.as_mut())?;
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
            vo.push(Some(&vf), &mut octx, v_tb, out, samples.as_mut())?;
        }
        vo.push(None, &mut octx, v_tb, out, samples.as_mut())?;
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
        stills: samples.is_some_and(Samples::finish),
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
    let rctx = open(reference, Opening::Header).map_err(fferr(reference, "open the reference"))?;
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
            vo.push(Some(&vf), octx, out_tb, out, None)?;
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
    vo.push(None, &mut octx, out_tb, out, None)?;
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
        stills: false,
    })
}
