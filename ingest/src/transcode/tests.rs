use super::*;

#[test]
fn kinds_by_extension() {
    assert_eq!(kind_of(b"DCIM/ZFY0001_0001.MP4"), Some(MediaKind::Video));
    assert_eq!(kind_of("录音/现场.WAV".as_bytes()), Some(MediaKind::Audio));
    assert_eq!(kind_of(b"PHOTO/IMG_1.jpg"), Some(MediaKind::Photo));
    assert_eq!(kind_of(b"LOG/ZFY0001.TXT"), None);
    assert_eq!(kind_of(b"MP4"), None);
}

#[cfg(feature = "transcode")]
#[test]
fn playback_size_caps_height_and_keeps_aspect() {
    assert_eq!(media::playback_size(1920, 1080, (1, 1), 720), (1280, 720));
    assert_eq!(media::playback_size(640, 480, (1, 1), 720), (640, 480));
    // Anamorphic 1440x1080 with 4:3 pixels shows as 1920x1080.
    assert_eq!(media::playback_size(1440, 1080, (4, 3), 720), (1280, 720));
    assert_eq!(media::playback_size(853, 481, (0, 1), 720), (852, 480));
}
