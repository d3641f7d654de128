//! The RFC 3161 client: ask a TSA to time-stamp a digest over HTTP and keep the reply only if it
//! verifies.
//!
//! Every reply is checked with [`evidock_verify::timestamp::check_response`] against the
//! configured trust, the nonce sent and the policy asked for, before anything is stored: a
//! station must not record a token a court would later reject. The full `TimeStampResp` is
//! returned (stored as `.tsr`), because that is what `openssl ts -verify -in` and the verifier
//! read.
//!
//! Errors say which TSA (its URL without credentials) and whether retrying later may help
//! ([`TsaError::is_retriable`]): a station offline from its TSA keeps its checkpoints queued and
//! retries; a TSA that sends tokens that do not verify needs a person.

use evidock_verify::id::Sha256;
use evidock_verify::timestamp::{
    self, Expectation, ImprintAlgorithm, MAX_DER_LEN, TimestampError, TokenInfo, TsaTrust,
};
use std::time::Duration;

/// Media types of RFC 3161 §3.4; the second is what some older TSAs still send.
const REPLY_TYPES: &[&str] = &[
    "application/timestamp-reply",
    "application/timestamp-response",
];

/// Where the TSA is and what its tokens must chain to.
#[derive(Debug, Clone)]
pub struct TsaConfig {
    /// `http://` or `https://`; may carry `user:password@` for HTTP basic authentication.
    pub url: String,
    /// The TSA policy to request (dotted OID); the token must then carry it.
    pub policy: Option<String>,
    /// For the whole exchange: connect, send, receive.
    pub timeout: Duration,
    /// Roots the TSA's certificate must chain to. Empty: any well-formed, self-consistent token
    /// is accepted and reported as unanchored (the verifier warns about it).
    pub trust: TsaTrust,
}

/// A verified reply.
#[derive(Debug, Clone)]
pub struct TsaReply {
    /// The full `TimeStampResp`, what gets stored as `.tsr`.
    pub response_der: Vec<u8>,
    /// What the token says, as verified.
    pub info: TokenInfo,
}

/// Why no token was obtained. The URL in each is [`TsaClient::url_for_display`]: no credentials.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    /// The configuration cannot work (bad URL, zero timeout, HTTP client setup).
    #[error("TSA configuration: {0}")]
    Config(String),
    /// No answer: connection refused or reset, DNS, TLS, timeout. Retrying later may help.
    #[error("TSA {url} is unreachable (retrying later may help): {reason}")]
    Unreachable { url: String, reason: String },
    /// An HTTP status other than 200.
    #[error("TSA {url} answered HTTP {status}{}", if http_retriable(*status) { " (retrying later may help)" } else { "" })]
    Http { url: String, status: u16 },
    /// HTTP 200 but not a time-stamp reply (a proxy or portal page, a wrong URL).
    #[error(
        "TSA {url} answered with content type {content_type:?}, not application/timestamp-reply"
    )]
    ContentType { url: String, content_type: String },
    /// The TSA refused the request (PKIStatus rejection or waiting).
    #[error("TSA {url} refused the request{}: {source}", if source.is_transient() { " (retrying later may help)" } else { "" })]
    Rejected {
        url: String,
        #[source]
        source: TimestampError,
    },
    /// The reply does not verify: malformed, wrong imprint or nonce, bad signature, untrusted
    /// chain. Retrying will not help; the TSA or the trust configuration needs a look.
    #[error("TSA {url} sent a reply that does not verify ({}): {source}", source.code())]
    Invalid {
        url: String,
        #[source]
        source: TimestampError,
    },
    /// No randomness for the nonce.
    #[error("cannot draw a nonce: {0}")]
    Nonce(String),
}

fn http_retriable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

impl TsaError {
    /// Whether asking again later may succeed: the TSA could not be reached, was overloaded or
    /// failing (HTTP 5xx, 408, 429), or said so itself (status waiting, timeNotAvailable,
    /// systemFailure). Not for a bad configuration or a reply that does not verify.
    pub fn is_retriable(&self) -> bool {
        match self {
            TsaError::Unreachable { .. } => true,
            TsaError::Http { status, .. } => http_retriable(*status),
            TsaError::Rejected { source, .. } => source.is_transient(),
            TsaError::Config(_)
            | TsaError::ContentType { .. }
            | TsaError::Invalid { .. }
            | TsaError::Nonce(_) => false,
        }
    }
}

/// An RFC 3161 client for one TSA.
#[derive(Debug, Clone)]
pub struct TsaClient {
    url: reqwest::Url,
    display: String,
    policy: Option<String>,
    trust: TsaTrust,
    http: reqwest::Client,
}

impl TsaClient {
    pub fn new(cfg: TsaConfig) -> Result<Self, TsaError> {
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| {
            TsaError::Config(format!("TSA URL {}: {e}", crate::redact::url(&cfg.url)))
        })?;
        let display = crate::redact::url(&cfg.url);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TsaError::Config(format!(
                "TSA URL {display}: only http and https are supported"
            )));
        }
        if cfg.timeout.is_zero() {
            return Err(TsaError::Config("TSA timeout must not be zero".into()));
        }
        if let Some(p) = &cfg.policy {
            // Refuse now what build_request would refuse on every attempt.
            timestamp::build_request(ImprintAlgorithm::Sha256, &[0; 32], None, true, Some(p))
                .map_err(|e| TsaError::Config(format!("TSA policy: {e}")))?;
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            // A redirect would turn the POST into a GET and could carry credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("evidock/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TsaError::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(TsaClient {
            url,
            display,
            policy: cfg.policy,
            trust: cfg.trust,
            http,
        })
    }

    /// The TSA URL without user, password or query: safe for logs and custody events.
    pub fn url_for_display(&self) -> String {
        self.display.clone()
    }

    /// The trust replies are verified against.
    pub fn trust(&self) -> &TsaTrust {
        &self.trust
    }

    /// The policy requested, if any.
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// Time-stamp a SHA-256 digest: POST a `TimeStampReq` (with a fresh 64-bit nonce and
    /// certReq, so the token carries the TSA certificate and verifies on its own), and verify
    /// the reply before returning it.
    pub async fn timestamp(&self, data_sha256: &Sha256) -> Result<TsaReply, TsaError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| TsaError::Nonce(e.to_string()))?;
        let request = timestamp::build_request(
            ImprintAlgorithm::Sha256,
            data_sha256.as_bytes(),
            Some(&nonce),
            true,
            self.policy.as_deref(),
        )
        .map_err(|e| TsaError::Config(e.to_string()))?;
        let response_der = self.exchange(request).await?;
        let expect = Expectation {
            algorithm: ImprintAlgorithm::Sha256,
            imprint: data_sha256.as_bytes(),
            nonce: Some(&nonce),
            policy: self.policy.as_deref(),
        };
        match timestamp::check_response(&response_der, &expect, &self.trust) {
            Ok(info) => Ok(TsaReply { response_der, info }),
            Err(source @ TimestampError::Rejected { .. }) => Err(TsaError::Rejected {
                url: self.display.clone(),
                source,
            }),
            Err(source) => Err(TsaError::Invalid {
                url: self.display.clone(),
                source,
            }),
        }
    }

    /// One HTTP round trip; the body, at most [`MAX_DER_LEN`] bytes.
    async fn exchange(&self, request: Vec<u8>) -> Result<Vec<u8>, TsaError> {
        let unreachable = |e: reqwest::Error| TsaError::Unreachable {
            url: self.display.clone(),
            reason: error_chain(&e.without_url()),
        };
        let mut resp = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .header(reqwest::header::ACCEPT, "application/timestamp-reply")
            .body(request)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(TsaError::Http {
                url: self.display.clone(),
                status: status.as_u16(),
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !REPLY_TYPES.contains(&essence.as_str()) {
            return Err(TsaError::ContentType {
                url: self.display.clone(),
                content_type,
            });
        }
        let too_large = |n: u64| TsaError::Invalid {
            url: self.display.clone(),
            source: TimestampError::Malformed(format!(
                "reply of {n} bytes or more (at most {MAX_DER_LEN} accepted)"
            )),
        };
        if let Some(n) = resp.content_length()
            && n > MAX_DER_LEN as u64
        {
            return Err(too_large(n));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DER_LEN {
                return Err(too_large(body.len() as u64));
            }
        }
        Ok(body)
    }
}

/// An error and its causes, `: `-joined (reqwest's own text says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if parts.last() != Some(&t) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Result<TsaClient, TsaError> {
        TsaClient::new(TsaConfig {
            url: url.into(),
            policy: None,
            timeout: Duration::from_secs(5),
            trust: TsaTrust::default(),
        })
    }

    #[test]
    fn credentials_never_show() {
        let c = client("https://alice:s3cret@tsa.example:8443/tsr?apikey=k3y#x").unwrap();
        let shown = c.url_for_display();
        assert_eq!(shown, "https://tsa.example:8443/tsr?…");
        assert!(!shown.contains("s3cret") && !shown.contains("alice") && !shown.contains("k3y"));
        let e = client("ftp://bob:pw@tsa.example/").unwrap_err().to_string();
        assert!(!e.contains("pw") && !e.contains("bob"), "{e}");
        let e = client("http://bob:pw@[bad/").unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn config_is_checked_up_front() {
        assert!(matches!(client("not a url"), Err(TsaError::Config(_))));
        let zero = TsaClient::new(TsaConfig {
            url: "http://127.0.0.1:1/".into(),
            policy: None,
            timeout: Duration::ZERO,
            trust: TsaTrust::default(),
        });
        assert!(matches!(zero, Err(TsaError::Config(_))));
        let bad_policy = TsaClient::new(TsaConfig {
            url: "http://127.0.0.1:1/".into(),
            policy: Some("policy one".into()),
            timeout: Duration::from_secs(1),
            trust: TsaTrust::default(),
        });
        assert!(matches!(bad_policy, Err(TsaError::Config(_))));
    }

    #[test]
    fn retriable_or_not() {
        let url = || "http://tsa.example/".to_string();
        let http = |status| TsaError::Http { url: url(), status };
        assert!(http(500).is_retriable());
        assert!(http(503).is_retriable());
        assert!(http(429).is_retriable());
        assert!(!http(404).is_retriable());
        assert!(!http(401).is_retriable());
        let rejected = |status, fail: &[&str]| TsaError::Rejected {
            url: url(),
            source: TimestampError::Rejected {
                status,
                status_name: String::new(),
                fail_info: fail.iter().map(|s| s.to_string()).collect(),
                text: String::new(),
            },
        };
        assert!(!rejected(2, &["badAlg"]).is_retriable());
        assert!(rejected(2, &["systemFailure"]).is_retriable());
        assert!(rejected(3, &[]).is_retriable());
        let invalid = TsaError::Invalid {
            url: url(),
            source: TimestampError::Malformed("x".into()),
        };
        assert!(!invalid.is_retriable());
        assert!(invalid.to_string().contains("timestamp.malformed"));
    }

    /// Nothing listens on the port: unreachable, retriable, and the URL shown without secrets.
    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = client(&format!("http://u:pw@127.0.0.1:{port}/tsa")).unwrap();
        let e = c.timestamp(&Sha256::digest(b"x")).await.unwrap_err();
        assert!(matches!(e, TsaError::Unreachable { .. }), "{e:?}");
        assert!(e.is_retriable());
        let text = e.to_string();
        assert!(!text.contains("pw"), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }
}
