//! URLs made fit to show: in messages, custody events, the status page and API, alerts and
//! command output. The one place that decides what of a URL is a secret.
//!
//! A URL may carry credentials in its userinfo (`https://user:password@tsa.example/`, HTTP basic
//! authentication to a TSA) and keys in its query (`?apikey=…`, a pre-signed URL's signature).
//! Both are removed; the query is marked `?…` by [`url`] so a reader knows there was one. A
//! string that does not parse as a URL is cut the same way by its text, erring towards removing
//! too much: what looks like userinfo before the host, and everything after a `?` or `#`.

/// `raw` without userinfo or fragment, its query replaced by `?…`.
pub fn url(raw: &str) -> String {
    redacted(raw, true)
}

/// `raw` without userinfo, query or fragment (where the query is of no interest to a reader,
/// e.g. the evidence store's URL in custody events).
pub fn url_without_query(raw: &str) -> String {
    redacted(raw, false)
}

fn redacted(raw: &str, mark_query: bool) -> String {
    // Without `://` a URL parser reads `user:pass@host/…` as scheme `user`, path `pass@host/…`.
    let parsed = raw.contains("://").then(|| reqwest::Url::parse(raw));
    let (mut shown, had_query) = match parsed {
        Some(Ok(mut u)) => {
            // Both fail only for URLs that cannot have credentials, which then have none.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let had_query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            (u.to_string(), had_query)
        }
        _ => by_text(raw),
    };
    if had_query && mark_query {
        shown.push_str("?…");
    }
    shown
}

/// The same cut for text that is not a URL: the authority is what follows `scheme://` (or the
/// start) up to the first `/`, `?` or `#`; anything up to its last `@` is userinfo.
fn by_text(raw: &str) -> (String, bool) {
    let (before_query, had_query) = match raw.find(['?', '#']) {
        Some(i) => (&raw[..i], raw[i..].starts_with('?')),
        None => (raw, false),
    };
    let (scheme, rest) = match before_query.find("://") {
        Some(i) => before_query.split_at(i + 3),
        None => ("", before_query),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    (format!("{scheme}{host}{path}"), had_query)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &[&str] = &["alice", "s3cret", "k3y", "frag"];

    fn clean(shown: &str) {
        for s in SECRETS {
            assert!(!shown.contains(s), "{shown:?} shows {s}");
        }
    }

    #[test]
    fn credentials_and_query_keys_never_show() {
        for raw in [
            "https://alice:s3cret@tsa.example:8443/tsr?apikey=k3y#frag",
            "https://alice@tsa.example/tsr?k3y",
            "http://alice:s3cret@[bad/?k3y",
            "alice:s3cret@tsa.example/tsr?k3y",
            "https://alice:s3cret@tsa.example/a@b?k3y",
            "https://alice:s3c@ret@tsa.example/",
            "s3://alice:s3cret@bucket/prefix?k3y",
            "not a url with alice:s3cret@ in it?k3y",
        ] {
            clean(&url(raw));
            clean(&url_without_query(raw));
        }
    }

    #[test]
    fn what_is_not_secret_stays() {
        assert_eq!(
            url("https://alice:s3cret@tsa.example:8443/tsr?apikey=k3y#x"),
            "https://tsa.example:8443/tsr?…"
        );
        assert_eq!(url("https://tsa.example/tsr"), "https://tsa.example/tsr");
        assert_eq!(url("http://alice:s3cret@[bad/?k3y"), "http://[bad/?…");
        assert_eq!(
            url_without_query("s3://bucket/prefix?x=1"),
            "s3://bucket/prefix"
        );
        assert_eq!(
            url_without_query("https://user:pw@host/p"),
            "https://host/p"
        );
        assert_eq!(
            url_without_query("file:///var/lib/evidock/store"),
            "file:///var/lib/evidock/store"
        );
    }
}
