//! guarded-restart: start a worker only when the deploy is done.
//!
//! The binary is `main.rs`; this library exists so that the `xtask` can build
//! the man page and completions from the same clap definition.

pub mod cli;
mod commands;
mod duration;
pub mod exit;
mod fsutil;
mod launch;
mod lock;
mod lockfile;
mod process;
mod readiness;
mod report;
mod snapshot;
mod timefmt;
mod verify;
mod waiting;

/// The parsers that read what others wrote (lock files, pidfiles) or what
/// ops typed (durations), for the fuzz targets in `fuzz/`. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::lockfile::{self, LockSource};

    /// Every lock format, as each source reads it.
    pub fn lock_file(bytes: &[u8]) {
        for source in [
            LockSource::DeployRoot,
            LockSource::Deployer,
            LockSource::CapistranoDeployLock,
            LockSource::Extra,
        ] {
            let content = lockfile::parse(source, bytes);
            // What is read must stay one clean line, whatever the bytes were.
            for text in [&content.holder, &content.reason, &content.problem]
                .into_iter()
                .flatten()
            {
                assert!(!text.contains(['\n', '\r']), "{text:?}");
            }
        }
    }

    pub fn pidfile(bytes: &[u8]) {
        if let Ok(pid) = crate::process::parse_pid(bytes) {
            assert!(pid > 1);
        }
    }

    pub fn duration(text: &str) {
        if let Ok(d) = crate::duration::parse(text) {
            let _ = crate::duration::human(d);
        }
    }

    pub fn timestamp(text: &str) {
        if let Some(t) = crate::timefmt::parse(text) {
            let _ = crate::timefmt::rfc3339(t);
        }
    }
}

use std::process::ExitCode;

use clap::Parser;

/// Parse the command line, run the subcommand, map the outcome to an exit status.
pub fn main() -> ExitCode {
    // A panic is a bug, but ops still get one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        report::say(&format!("internal error (please report): {info}"));
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::usage(e),
    };
    match commands::dispatch(cli.command) {
        Ok(code) => code.into(),
        Err(e) => {
            report::say(&exit::one_line(&e));
            exit::exit_of(&e).into()
        }
    }
}
