//! Crash points: every durable step of the station has a name, and a test build can kill the
//! process right after it.
//!
//! `crash_point!(NAME)`, `NAME` a string literal such as `"acquire.spool-commit"`, marks the moment after a durable step (a write made
//! durable, a transaction committed, an event appended). In a normal build the macro expands to
//! nothing: the release binary holds no crash-point name (`make test` checks it). Built with the
//! `crash-points` feature — only ever into its own target directory (`target/crash/`), since
//! cargo unifies features across a workspace build — each point
//! - appends `<pid> <name>` to the file `EVIDOCK_CRASH_TRACE` names, so a harness learns which
//!   points a scenario reaches and how often;
//! - aborts the process (no destructor runs, no user-space buffer is flushed: what a kill leaves; the kernel's page cache survives it, so a missing fsync is not caught here) at
//!   the `N`th time it is reached when `EVIDOCK_CRASH_AT` is `<name>@<N>` (`<name>` alone: the
//!   first time); with `EVIDOCK_CRASH_MODE=panic` it panics there instead (what a bug does).
//!
//! The names are found by reading the sources (each `crash_point!` with its literal), so there is no registry to
//! keep in step: `tests/tests/e2e/crash_points/` fails when a named point is reached by no scenario.

/// Mark the moment right after a durable step; see the module documentation.
#[cfg(feature = "crash-points")]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        $crate::crash::reached(concat!("crash-point ", $name))
    };
}

/// Mark the moment right after a durable step; see the module documentation.
#[cfg(not(feature = "crash-points"))]
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {};
}

#[cfg(feature = "crash-points")]
pub use imp::reached;

#[cfg(feature = "crash-points")]
mod imp {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    struct Plan {
        at: Option<(String, u64)>,
        /// `EVIDOCK_CRASH_MODE=panic`: panic there instead of aborting (what a bug does).
        panic: bool,
        trace: Option<std::path::PathBuf>,
        seen: Mutex<HashMap<&'static str, u64>>,
    }

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let at = std::env::var("EVIDOCK_CRASH_AT")
                .ok()
                .map(|s| match s.rsplit_once('@') {
                    Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                    None => (s, 1),
                });
            Plan {
                at,
                panic: std::env::var("EVIDOCK_CRASH_MODE").is_ok_and(|m| m == "panic"),
                trace: std::env::var_os("EVIDOCK_CRASH_TRACE").map(Into::into),
                seen: Mutex::new(HashMap::new()),
            }
        })
    }

    /// A crash point was reached (`full` is `crash-point <name>`).
    pub fn reached(full: &'static str) {
        let name = full.strip_prefix("crash-point ").unwrap_or(full);
        let plan = plan();
        let n = {
            let mut seen = plan.seen.lock().unwrap_or_else(|p| p.into_inner());
            let n = seen.entry(name).or_insert(0);
            *n += 1;
            *n
        };
        if let Some(path) = &plan.trace {
            // One short O_APPEND write per line: lines of concurrent processes do not mix.
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = f.write_all(format!("{} {name}\n", std::process::id()).as_bytes());
            }
        }
        if let Some((at, k)) = &plan.at
            && at == name
            && *k == n
        {
            if plan.panic {
                // The point of this build: a panic where a bug would panic.
                #[allow(clippy::panic)]
                {
                    panic!("crash point {name} (time {n}): panicking on purpose");
                }
            }
            // Straight to stderr: a tracing subscriber may buffer, and nothing runs after this.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("evidock: crash point {name} (time {n}): aborting on purpose");
            }
            std::process::abort();
        }
    }
}
