//! The `unitd` binary: flags -> config -> [`unitd::run`].

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use unitd::config::{Config, Flags};

fn main() -> ExitCode {
    let flags = Flags::parse(); // bad flags: clap prints usage, exits 2
    let verbose = flags.verbose;
    let config = match Config::resolve(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("unitd: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNITD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},russh=warn,russh_sftp=warn"))
    });
    // russh's own warnings are a client's to cause: rate-limited.
    use tracing_subscriber::prelude::*;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter)
        .with_filter(unitd::ssh::logs::ThirdParty);
    tracing_subscriber::registry().with(fmt).init();
    // A parent that blocks signals (an init using signalfd) passes the mask
    // on: unblock the ones we stop on, or SIGTERM would wait forever.
    let mut stop = nix::sys::signal::SigSet::empty();
    stop.add(nix::sys::signal::Signal::SIGTERM);
    stop.add(nix::sys::signal::Signal::SIGINT);
    let _ = stop.thread_unblock();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("unitd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(unitd::run(config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("unitd: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Do not wait on blocking work (a read stuck on a dying drive) to exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
