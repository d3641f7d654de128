//! GBK text from cameras: ZFY_INFO strings and FAT short names are GBK-encoded.

/// Decode GBK bytes (up to the first NUL), replacing what does not decode with U+FFFD.
pub fn decode_lossy(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let (text, _, _) = encoding_rs::GBK.decode(&bytes[..end]);
    text.into_owned()
}

/// Decode GBK bytes (up to the first NUL); `None` if any byte sequence is not GBK.
pub fn decode_strict(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(&bytes[..end])
        .map(|c| c.into_owned())
}

/// Encode text as GBK; `None` if a character has no GBK form.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    (!unmappable).then(|| bytes.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let b = encode("执法记录仪 ZFY").unwrap();
        assert_eq!(&b[..4], b"\xd6\xb4\xb7\xa8");
        assert_eq!(decode_strict(&b).unwrap(), "执法记录仪 ZFY");
        let mut nul = b.clone();
        nul.extend_from_slice(b"\0\0garbage");
        assert_eq!(decode_lossy(&nul), "执法记录仪 ZFY");
        assert!(decode_strict(b"\xff\xff").is_none());
    }
}
