//! What stays ours: the requests (addresses, headers, bodies, what is signed) and what answers
//! become (typed values, classified errors). The signature itself is object_store's; Ceph RGW
//! checks it in tests/tests/e2e/s3control.rs.

use super::*;
use crate::testhttp::{Canned, TestServer};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn credential(token: Option<&str>) -> AwsCredential {
    AwsCredential {
        key_id: AKID.into(),
        secret_key: SECRET.into(),
        token: token.map(str::to_string),
    }
}

fn virtual_hosted() -> S3Control {
    S3Control::new(
        "https://s3.amazonaws.com",
        "",
        "examplebucket",
        AKID,
        SECRET,
        None,
        false,
    )
    .unwrap()
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// `AWS4-HMAC-SHA256 Credential=…/<date>/<region>/s3/aws4_request, SignedHeaders=…,
/// Signature=<64 hex>`: the signed headers.
fn signed_headers(r: &HttpRequest, region: &str) -> String {
    let auth = header(r, "authorization");
    let rest = auth
        .strip_prefix(&format!("AWS4-HMAC-SHA256 Credential={AKID}/"))
        .unwrap_or_else(|| panic!("{auth}"));
    let (scope, rest) = rest.split_once(", SignedHeaders=").unwrap();
    assert_eq!(&scope[8..], format!("/{region}/s3/aws4_request"), "{auth}");
    let (signed, signature) = rest.split_once(", Signature=").unwrap();
    assert!(
        signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{auth}"
    );
    signed.to_string()
}

#[test]
fn virtual_hosted_requests() {
    let c = virtual_hosted();
    let call = Call::new("GetObject", http::Method::GET, Some("test$file.text"))
        .header("range", "bytes=0-9");
    let r = c.prepare(call, &credential(None)).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "https://examplebucket.s3.amazonaws.com/test%24file.text"
    );
    assert_eq!(
        header(&r, "x-amz-content-sha256"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let date = header(&r, "x-amz-date");
    assert!(date.len() == 16 && date.ends_with('Z'), "{date}");
    assert_eq!(
        signed_headers(&r, "us-east-1"),
        "host;range;x-amz-content-sha256;x-amz-date"
    );
    // The signer signs `host` and leaves the header to the HTTP client.
    assert!(r.headers().get("host").is_none());

    let call = Call::new("ListObjectVersions", http::Method::GET, None)
        .query("versions", "")
        .query("prefix", "J+K");
    let r = c.prepare(call, &credential(None)).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "https://examplebucket.s3.amazonaws.com/?versions=&prefix=J%2BK"
    );
}

#[test]
fn path_style_addressing_utf8_keys_and_session_token() {
    let c = S3Control::new(
        "http://127.0.0.1:7480/",
        "",
        "evidence",
        AKID,
        SECRET,
        Some("token"),
        true,
    )
    .unwrap();
    assert_eq!(c.region(), DEFAULT_REGION);
    let call = Call::new(
        "GetObjectRetention",
        http::Method::GET,
        Some("cam 1/ファイル+a.mp4"),
    )
    .query("retention", "");
    let r = c.prepare(call, &credential(Some("token"))).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "http://127.0.0.1:7480/evidence/cam%201/%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB%2Ba.mp4?retention="
    );
    assert_eq!(header(&r, "x-amz-security-token"), "token");
    assert_eq!(
        signed_headers(&r, "us-east-1"),
        "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
    );
    // The URL parser object_store's signer reads the path with keeps it as encoded.
    let parsed = reqwest::Url::parse(&r.uri().to_string()).unwrap();
    assert_eq!(parsed.as_str(), r.uri().to_string());
    let bucket_level = c
        .prepare(
            Call::new("HeadBucket", http::Method::HEAD, None),
            &credential(None),
        )
        .unwrap();
    assert_eq!(
        bucket_level.uri().to_string(),
        "http://127.0.0.1:7480/evidence"
    );
}

#[test]
fn bodies_carry_content_md5_and_their_hash() {
    let c = S3Control::new(
        "https://s3.eu.example",
        "eu-1",
        "b12",
        AKID,
        SECRET,
        None,
        false,
    )
    .unwrap();
    let body = xml::legal_hold(true).unwrap();
    let call = Call::new("PutObjectLegalHold", http::Method::PUT, Some("k"))
        .query("legal-hold", "")
        .body(body.clone());
    let r = c.prepare(call, &credential(None)).unwrap();
    use base64::Engine as _;
    assert_eq!(
        header(&r, "content-md5"),
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body))
    );
    use sha2::Digest as _;
    assert_eq!(
        header(&r, "x-amz-content-sha256"),
        hex::encode(sha2::Sha256::digest(&body))
    );
    assert_eq!(
        signed_headers(&r, "eu-1"),
        "content-md5;host;x-amz-content-sha256;x-amz-date"
    );
}

#[test]
fn unaddressable_keys_are_refused_before_sending() {
    let c = virtual_hosted();
    for key in ["", "a/../b", "./a", "a/.", "a\nb", &"k".repeat(1025)] {
        let call = Call::new("DeleteObject", http::Method::DELETE, Some(key));
        let e = c.prepare(call, &credential(None)).unwrap_err();
        assert!(matches!(e, S3Error::InvalidArgument { .. }), "{key:?}: {e}");
        assert!(!e.is_retriable());
    }
}

#[test]
fn config_is_checked_and_never_shows_credentials() {
    let new = |endpoint: &str, bucket: &str, path_style, token: &str| {
        S3Control::new(
            endpoint,
            "us-east-1",
            bucket,
            "AKIASECRETID",
            "s3cr3t",
            Some(token),
            path_style,
        )
    };
    for (endpoint, bucket, path_style, token) in [
        ("not a url", "bucket", true, "t0ken"),
        ("ftp://host/", "bucket", true, "t0ken"),
        ("http://user:pw@host/", "bucket", true, "t0ken"),
        ("http://host/?x=1", "bucket", true, "t0ken"),
        ("http://host/", "Bucket_Upper", true, "t0ken"),
        ("http://host/", "ab", true, "t0ken"),
        ("http://127.0.0.1:7480", "bucket", false, "t0ken"),
        ("http://host/", "bucket", true, "t0ken\nx"),
    ] {
        let e = new(endpoint, bucket, path_style, token).unwrap_err();
        assert!(
            matches!(e, S3Error::Config { .. }),
            "{endpoint} {bucket}: {e}"
        );
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("pw") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
    let c = new("https://s3.example", "bucket", false, "t0ken").unwrap();
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("t0ken") && !shown.contains("AKIASECRETID"),
        "{shown}"
    );
    let cred = AwsCredential {
        key_id: "AKIASECRETID".into(),
        secret_key: "s3cr3t".into(),
        token: Some("t0ken".into()),
    };
    assert_eq!(
        scrub("key AKIASECRETID secret s3cr3t token t0ken", &cred),
        "key [redacted] secret [redacted] token [redacted]"
    );
}

fn client(server: &TestServer) -> S3Control {
    S3Control::new(&server.endpoint(), "", "evidence", AKID, SECRET, None, true).unwrap()
}

fn s3_error(status: u16, code: &str, message: &str) -> Canned {
    Canned::new(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>tx-1</RequestId></Error>"
        ),
    )
}

#[tokio::test]
async fn answers_become_values() {
    let server = TestServer::start(vec![
        Canned::new(
            200,
            "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        ),
        Canned::new(
            200,
            "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>\
             <DefaultRetention><Mode>GOVERNANCE</Mode><Days>7</Days></DefaultRetention></Rule>\
             </ObjectLockConfiguration>",
        ),
        s3_error(404, "ObjectLockConfigurationNotFoundError", ""),
        Canned::new(200, "").header("x-amz-version-id", "v-1"),
        Canned::new(200, "<LegalHold><Status>OFF</Status></LegalHold>"),
        Canned::new(404, ""),
    ]);
    let c = client(&server);
    assert!(c.versioning_enabled().await.unwrap());
    assert_eq!(
        c.object_lock_configuration().await.unwrap(),
        Some((LockMode::Governance, 7))
    );
    assert!(!c.object_lock_enabled().await.unwrap());
    assert_eq!(
        c.put_object("a/b c", b"bytes").await.unwrap().as_deref(),
        Some("v-1")
    );
    assert!(!c.legal_hold("a/b c").await.unwrap());
    assert!(!c.bucket_exists().await.unwrap());
    let seen = server.seen();
    let targets: Vec<_> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.target))
        .collect();
    assert_eq!(
        targets,
        [
            "GET /evidence?versioning=",
            "GET /evidence?object-lock=",
            "GET /evidence?object-lock=",
            "PUT /evidence/a/b%20c",
            "GET /evidence/a/b%20c?legal-hold=",
            "HEAD /evidence",
        ]
    );
    assert_eq!(seen[3].body, b"bytes");
    assert!(seen[3].header("content-md5").is_some());
    assert!(seen.iter().all(|s| s.header("authorization").is_some()));
}

#[tokio::test]
async fn version_listing_follows_its_markers() {
    let page = |truncated: bool, key: &str, next: &str| {
        Canned::new(
            200,
            format!(
                "<ListVersionsResult><IsTruncated>{truncated}</IsTruncated>\
                 <NextKeyMarker>{next}</NextKeyMarker><NextVersionIdMarker>v-{next}\
                 </NextVersionIdMarker><Version><Key>{key}</Key><VersionId>v1</VersionId>\
                 </Version><DeleteMarker><Key>{key}</Key><VersionId>v2</VersionId>\
                 </DeleteMarker></ListVersionsResult>"
            ),
        )
    };
    let server = TestServer::start(vec![
        page(true, "a", "a"),
        page(false, "b", ""),
        page(true, "a", "a"),
        page(true, "a", "a"),
    ]);
    let c = client(&server);
    let got = c.list_object_versions("p/").await.unwrap();
    let want = [("a", "v1"), ("a", "v2"), ("b", "v1"), ("b", "v2")];
    let want: Vec<_> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(
        server.seen()[1]
            .target
            .contains("key-marker=a&version-id-marker=v-a"),
        "{:?}",
        server.seen()[1]
    );
    // A service that hands back the same marker would be listed forever.
    let e = c.list_object_versions("p/").await.unwrap_err();
    assert!(matches!(e, S3Error::Response { .. }), "{e}");
}

/// Errors are classified by their status and S3 code, never by what their text says.
#[tokio::test]
async fn error_answers_are_typed_and_scrubbed() {
    let server = TestServer::start(vec![
        s3_error(403, "AccessDenied", &format!("no for {AKID} with {SECRET}")),
        s3_error(500, "InternalError", "AccessDenied, took 403 ms"),
        Canned::new(
            403,
            "<html>Forbidden: took 403 ms, InternalError, retry</html>",
        ),
        Canned::new(502, "Bad Gateway"),
        s3_error(
            400,
            "InvalidRequest",
            "Bucket is missing Object Lock Configuration",
        ),
    ]);
    let c = client(&server);
    let e = c.versioning_enabled().await.unwrap_err();
    assert!(
        matches!(e, S3Error::Service { status: 403, .. }) && e.code() == Some("AccessDenied"),
        "{e}"
    );
    assert!(!e.is_retriable());
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(AKID) && !shown.contains(SECRET), "{shown}");
    assert!(shown.contains("tx-1"), "{shown}");

    let e = c.versioning_enabled().await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(500), Some("InternalError")));
    assert!(e.is_retriable(), "{e}");

    let e = c.versioning_enabled().await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), None));
    assert!(!e.is_retriable(), "{e}");
    assert!(e.to_string().contains("non-S3 error body"), "{e}");

    let e = c.versioning_enabled().await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(502), None));
    assert!(e.is_retriable(), "{e}");

    let e = c.object_retention("k").await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidRequest"), "{e}");
}

/// A broken or hostile service: an error each, classified, nothing read past the cap.
#[tokio::test]
async fn hostile_answers() {
    let server = TestServer::start(vec![
        Canned::new(200, "<Error><Code>InternalError</Code></Error>"),
        Canned::new(200, "not xml at all <<<"),
        Canned::new(200, vec![b'<'; MAX_ANSWER_BYTES + 1]),
        Canned::new(503, vec![b' '; MAX_ANSWER_BYTES + 1]),
        Canned::new(
            200,
            "<Retention><Mode>FOREVER</Mode><RetainUntilDate>2030-01-01T00:00:00Z\
             </RetainUntilDate></Retention>",
        ),
        Canned::new(
            200,
            "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>tomorrow</RetainUntilDate>\
             </Retention>",
        ),
        Canned::new(200, "<LegalHold><Status>MAYBE</Status></LegalHold>"),
    ]);
    let c = client(&server);
    for _ in 0..3 {
        let e = c.versioning_enabled().await.unwrap_err();
        assert!(matches!(e, S3Error::Response { .. }), "{e}");
        assert!(!e.is_retriable());
    }
    let e = c.versioning_enabled().await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(503), None));
    assert!(e.to_string().contains("larger than"), "{e}");
    for _ in 0..2 {
        let e = c.object_retention("k").await.unwrap_err();
        assert!(matches!(e, S3Error::Response { .. }), "{e}");
    }
    let e = c.legal_hold("k").await.unwrap_err();
    assert!(matches!(e, S3Error::Response { .. }), "{e}");
}

/// Credentials a provider hands over that the signer could not put in a header are refused,
/// not signed (object_store's signer would panic).
#[tokio::test]
async fn unusable_provided_credentials_are_an_error() {
    let server = TestServer::start(vec![]);
    let provider = Arc::new(StaticCredentialProvider::new(credential(Some(
        "token\r\nx-evil: 1",
    ))));
    let c =
        S3Control::with_credentials(&server.endpoint(), "", "evidence", provider, true).unwrap();
    let e = c.versioning_enabled().await.unwrap_err();
    // A configuration fault: asking the provider again gives the same credential.
    assert!(matches!(e, S3Error::Config { .. }), "{e}");
    assert!(!e.is_retriable(), "{e}");
    assert!(!e.to_string().contains("evil"), "{e}");
}

#[tokio::test]
async fn no_answer_is_transport() {
    let server = TestServer::start(vec![]);
    std::thread::sleep(Duration::from_millis(50));
    let e = client(&server).bucket_exists().await.unwrap_err();
    assert!(matches!(e, S3Error::Transport { .. }), "{e}");
    assert!(e.is_retriable());
}
