//! Every exit status the binary can return, in one place.
//!
//! The numbers follow sysexits(3) where one fits (75 EX_TEMPFAIL, 78 EX_CONFIG)
//! and the shell's conventions for commands (126, 127), so that monit's log,
//! a deploy script and a human all read them the same way.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Started (after exec the command's own status applies), ready, or nothing to do.
    Success = 0,
    /// Anything not covered below: an I/O error; for `verify`, a drifted worker.
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// `verify`: no worker runs (the LSB status code for "not running").
    NotRunning = 3,
    /// Not ready: the deadline passed, `--no-wait`, or a deploy lock is held by someone else.
    NotReady = 75,
    /// Misconfiguration: deploy root missing or unreadable, a lock path that is a directory...
    Config = 78,
    /// COMMAND was found but cannot be executed.
    CannotExecute = 126,
    /// COMMAND was not found.
    NotFound = 127,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// The EXIT STATUS text shown by `--help` and the README.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    started (after exec, the command's own status), ready, or nothing to do
  1    any other error
  2    usage error
  3    verify: no worker is running (1: it runs a release other than current)
  75   not ready: deadline reached, --no-wait, or the deploy lock is held by someone else
  78   misconfiguration: deploy root missing or unreadable, a lock path that is a directory, ...
  126  COMMAND found but not executable
  127  COMMAND not found (the PATH that was searched is named)";

/// An error that carries the exit status it must produce.
///
/// Everything else is an `anyhow::Error` that maps to [`Exit::Failure`].
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

pub fn coded(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        exit,
        message: message.into(),
    })
}

/// The exit status an error maps to: the innermost [`Coded`] wins.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .map_or(Exit::Failure, |c| c.exit)
}

/// An error as the one line ops read: the context chain joined, newlines folded.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace(['\n', '\r'], " ")
}

/// clap's errors as one line (help and version print as usual).
pub fn usage(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            crate::report::out(&err.render().to_string());
            ExitCode::SUCCESS
        }
        _ => {
            // clap spreads one error over several lines; ops want one.
            let rendered = err.to_string();
            let folded = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let first = folded.strip_prefix("error: ").unwrap_or(&folded);
            crate::report::say(&format!("{first} (see --help)"));
            Exit::Usage.into()
        }
    }
}
