//! `[status]` and `[alerts]` of the configuration: where the status server listens, its token,
//! and when and how alerts go out.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[status]`: the status page and API of `evidock dock`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Address to serve on. Anything but a loopback address needs `token_file`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the access token (mode 0600), required as `Authorization: Bearer …` or
    /// in the cookie the login form sets; never from the query string (see `web/token.rs`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for StatusSection {
    fn default() -> Self {
        StatusSection {
            enabled: true,
            listen: default_listen(),
            token_file: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:8470".into()
}

/// `[alerts]`: when to warn, and the command that carries alerts to people.
#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// A command run once when an alert appears (argv; the alert as JSON on stdin and in
    /// EVIDOCK_ALERT_CODE / _LEVEL / _SUBJECT / _MESSAGE), e.g. the agency's SMS gateway client.
    #[serde(default)]
    pub hook: Vec<String>,
    /// Warn when the spool disk has less free space than this, percent (default 10).
    #[serde(default)]
    pub spool_free_percent: Option<u8>,
    /// How often the dock looks for alerts, seconds (default 30).
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

/// Validated `[status]` and `[alerts]`. Its `Debug` does not show the token.
#[derive(Clone)]
pub struct StatusSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub hook: Vec<String>,
    pub spool_free_percent: u8,
    pub alert_interval: std::time::Duration,
}

impl std::fmt::Debug for StatusSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusSettings")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("hook", &self.hook)
            .field("spool_free_percent", &self.spool_free_percent)
            .field("alert_interval", &self.alert_interval)
            .finish()
    }
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            token: None,
            hook: Vec::new(),
            spool_free_percent: 10,
            alert_interval: std::time::Duration::from_secs(30),
        }
    }
}

impl StatusSection {
    pub fn validate(
        self,
        alerts: AlertsSection,
        base: &std::path::Path,
    ) -> Result<StatusSettings, (String, String)> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| {
            (
                "status.listen".to_string(),
                format!("{:?}: {e} (e.g. 127.0.0.1:8470)", self.listen),
            )
        })?;
        let token = match self.token_file {
            None => None,
            Some(f) => {
                let f = if f.is_absolute() { f } else { base.join(f) };
                use std::os::unix::fs::PermissionsExt as _;
                let meta = fs_err::metadata(&f)
                    .map_err(|e| ("status.token_file".to_string(), e.to_string()))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err((
                        "status.token_file".into(),
                        format!("{} is readable by others: chmod 600 it", f.display()),
                    ));
                }
                let t = fs_err::read_to_string(&f)
                    .map_err(|e| ("status.token_file".to_string(), e.to_string()))?
                    .trim()
                    .to_string();
                if t.len() < 16 {
                    return Err((
                        "status.token_file".into(),
                        "the token must be at least 16 characters".into(),
                    ));
                }
                Some(t)
            }
        };
        if !listen.ip().is_loopback() && token.is_none() {
            return Err((
                "status.listen".into(),
                format!("{listen} is reachable from other machines: set status.token_file too"),
            ));
        }
        let spool_free_percent = alerts.spool_free_percent.unwrap_or(10);
        if spool_free_percent > 90 {
            return Err(("alerts.spool_free_percent".into(), "at most 90".into()));
        }
        let interval = alerts.interval_secs.unwrap_or(30);
        if interval == 0 {
            return Err(("alerts.interval_secs".into(), "at least 1".into()));
        }
        Ok(StatusSettings {
            enabled: self.enabled,
            listen,
            token,
            hook: alerts.hook,
            spool_free_percent,
            alert_interval: std::time::Duration::from_secs(interval),
        })
    }
}
