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
