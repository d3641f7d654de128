//! `evidock`: the dock station's command-line interface and daemon.
#![allow(clippy::print_stdout, clippy::print_stderr)]

// The command layer is the binary's own: the library (`evidock_ingest`) never reaches up into
// it. Its modules name the library's as `crate::station`, … through these imports.
mod cmd;

use clap::Parser as _;
use cmd::cli::{Cli, Command};
use evidock_ingest::{
    LOCAL_DATA_DIR, SYSTEM_CONFIG, SYSTEM_DATA_DIR, acquire, cases, config, device, dock, exit,
    export, journal, pipeline, review, station, status, transcode, upload, wipe,
};
use std::process::ExitCode;

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,evidock=info",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("EVIDOCK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // One JSON object per line for the journal or a log collector: EVIDOCK_LOG_FORMAT=json.
    if std::env::var("EVIDOCK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Commands that only read the station and print: a closed pipe (`| head`) ends them at once and
/// quietly, as it ends any Unix tool. Commands that act keep SIGPIPE ignored (a store or TSA
/// connection reset must be an error they record, never a silent death).
fn prints_only(c: &Command) -> bool {
    use Command as C;
    use cmd::{case::CaseCmd, evidence::EvidenceCmd, log::LogCmd, station::StationCmd};
    match c {
        C::Sessions(_) | C::Status | C::Hash(_) => true,
        C::Log(l) => matches!(l, LogCmd::Show { .. }),
        C::Evidence(e) => matches!(e, EvidenceCmd::List(_) | EvidenceCmd::Show { .. }),
        C::Case(c) => matches!(c, CaseCmd::List(_) | CaseCmd::Show { .. }),
        C::Station(s) => matches!(s, StationCmd::Show),
        _ => false,
    }
}

#[allow(unsafe_code)]
fn die_on_closed_pipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if prints_only(&cli.command) {
        die_on_closed_pipe();
    }
    init_tracing(cli.verbose);
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("evidock: error: {e:#}");
            ExitCode::from(exit::code_of(&e))
        }
    }
}
