//! Where a request goes: checked bucket names and keys, and their URLs, encoded once as S3's
//! SigV4 wants (object_store's signer signs a URL's path as it finds it).

/// S3's limit on the length of a key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// S3's bucket naming rules: 3 to 63 characters, lowercase letters, digits, '.' and '-',
/// beginning and ending with a letter or digit.
pub(super) fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let ok_len = (3..=63).contains(&bucket.len());
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !bucket.contains("..") {
        Ok(())
    } else {
        Err(
            "the bucket name must be 3-63 lowercase letters, digits, '.' or '-', beginning and \
             ending with a letter or digit"
                .to_string(),
        )
    }
}

/// Keys this client can address exactly: not empty, at most 1024 bytes, no control
/// characters, and no `.` or `..` path segment (HTTP clients resolve those, so the request
/// would reach another key than the one signed).
pub(super) fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is longer than {MAX_KEY_BYTES} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains a control character".into());
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err("the key has a '.' or '..' segment".into());
    }
    Ok(())
}

/// SigV4 URI encoding: every byte but the unreserved `A-Z a-z 0-9 - _ . ~` as `%XX`
/// (uppercase hex); `/` kept unless `encode_slash`. UTF-8 is encoded byte by byte. The URL
/// parser keeps such a path as it is, so the path sent is the path signed.
pub(super) fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b'/' && !encode_slash {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string, names and values encoded as above (a `+` as `%2B`: the signer decodes the
/// query as a form would, where `+` is a space).
pub(super) fn query_string<S: AsRef<str>>(pairs: &[(&str, S)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", uri_encode(n, true), uri_encode(v.as_ref(), true)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("\u{1234}", false), "%E1%88%B4");
        assert_eq!(uri_encode("a b/c+d$", false), "a%20b/c%2Bd%24");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(
            query_string(&[("versions", ""), ("prefix", "a+b&c=d")]),
            "versions=&prefix=a%2Bb%26c%3Dd"
        );
    }

    #[test]
    fn names_and_keys() {
        for ok in ["abc", "evidence-01", "a.b.c"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Bucket", "a_b", "-ab", "ab-", "a..b", &"a".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        for bad in ["", "a/../b", "./a", "a/.", "a\nb", &"k".repeat(1025)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key("a/.../b..c/.d").is_ok());
    }
}
