//! `evidock`: the dock station's command-line interface and daemon.
#![allow(clippy::print_stderr)]

use clap::Parser as _;
use evidock_ingest::{Cli, cmd, config, exit};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<config::ConfigError>().is_some() {
                exit::USAGE
            } else {
                exit::FAILED
            };
            eprintln!("evidock: error: {e:#}");
            ExitCode::from(code)
        }
    }
}
