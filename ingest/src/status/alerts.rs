//! Alerts to people: the hook run once for each new alert.

use super::Alert;

/// Run the hook for each alert not seen in `seen`; forget alerts that went away.
pub fn notify(
    hook: &[String],
    alerts: &[Alert],
    seen: &mut std::collections::BTreeSet<(String, String)>,
) {
    let now: std::collections::BTreeSet<(String, String)> = alerts
        .iter()
        .map(|a| (a.code.clone(), a.subject.clone()))
        .collect();
    for a in alerts {
        let k = (a.code.clone(), a.subject.clone());
        if seen.contains(&k) {
            continue;
        }
        tracing::warn!(code = %a.code, subject = %a.subject, message = %a.message, "alert");
        if let Some((cmd, args)) = hook.split_first() {
            use std::io::Write as _;
            let child = std::process::Command::new(cmd)
                .args(args)
                .env("EVIDOCK_ALERT_CODE", &a.code)
                .env("EVIDOCK_ALERT_LEVEL", &a.level)
                .env("EVIDOCK_ALERT_SUBJECT", &a.subject)
                .env("EVIDOCK_ALERT_MESSAGE", &a.message)
                .stdin(std::process::Stdio::piped())
                .spawn();
            match child {
                Ok(mut c) => {
                    if let Some(mut i) = c.stdin.take() {
                        let _ =
                            i.write_all(serde_json::to_string(a).unwrap_or_default().as_bytes());
                    }
                    match c.wait() {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::error!(hook = %cmd, status = %s, "alert hook failed"),
                        Err(e) => tracing::error!(hook = %cmd, error = %e, "alert hook failed"),
                    }
                }
                Err(e) => tracing::error!(hook = %cmd, error = %e, "alert hook cannot be started"),
            }
        }
    }
    *seen = now;
}
