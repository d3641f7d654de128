//! Exit status of every `evidock` command, and which errors are the user's to change.
//!
//! An error's code comes from its type, never its text: [`code_of`] walks the error's chain
//! for a type that says "the input must change" (2); anything else may pass on a retry (3).

/// Done, nothing failed.
pub const OK: u8 = 0;
/// Done, but something failed and was recorded (a file not acquired, a check that found
/// errors): read the output.
pub const FINDINGS: u8 = 1;
/// Bad command line, configuration or input the user must change: nothing was done.
pub const USAGE: u8 = 2;
/// Could not complete (I/O error, unreachable service, data directory in use): safe to retry.
pub const FAILED: u8 = 3;
/// Stopped by SIGINT (128 + 2) at a safe point: what was finished is kept, the rest resumes.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15) at a safe point.
pub const TERMINATED: u8 = 143;

/// Input that a retry will not change: an unknown ID, a file in the way, a name missing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// `Err(BadInput)` from a message.
pub fn bad_input<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(BadInput(message.into()).into())
}

/// The exit status for an error: [`USAGE`] when any error in its chain is one the user must
/// fix, else [`FAILED`].
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.chain().any(is_usage) {
        USAGE
    } else {
        FAILED
    }
}

fn is_usage(e: &(dyn std::error::Error + 'static)) -> bool {
    use crate::cases::CaseError;
    use crate::export::ExportError;
    use evidock_store::key::KeyError;
    use evidock_store::objects::StoreError;
    if e.is::<BadInput>()
        || e.is::<crate::config::ConfigError>()
        || e.is::<crate::station::StationError>()
        || e.is::<crate::cases::register::RegisterError>()
        || e.is::<evidock_verify::id::IdError>()
        || e.downcast_ref::<evidock_store::tsa::TsaError>()
            .is_some_and(|t| matches!(t, evidock_store::tsa::TsaError::Config(_)))
    {
        return true;
    }
    if let Some(k) = e.downcast_ref::<KeyError>() {
        return matches!(
            k,
            KeyError::Malformed { .. }
                | KeyError::Permissions { .. }
                | KeyError::StationMismatch { .. }
        );
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return matches!(
            s,
            StoreError::Config { .. } | StoreError::Credentials { .. }
        );
    }
    if let Some(c) = e.downcast_ref::<CaseError>() {
        return c.is_usage();
    }
    if let Some(x) = e.downcast_ref::<ExportError>() {
        return x.is_usage();
    }
    false
}
