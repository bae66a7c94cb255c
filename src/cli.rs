//! The command line: clap only. Every flag can also come from
//! `GUARDED_RESTART_<FLAG>`, because monit's exec line is awkward to edit.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration;
use crate::exit::EXIT_STATUS_HELP;

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

#[derive(Debug, Parser)]
#[command(
    name = "guarded-restart",
    version,
    about = "Start a worker only when the deploy is done: no deploy lock, current settled, no release being built",
    long_about = "Start a worker only when the deploy is done.\n\n\
        Put `guarded-restart run ... -- COMMAND` into monit's exec line instead of the restart \
        script. It waits while a deploy lock exists, a deploy tool is mid-flight or `current` is \
        still changing, then starts COMMAND on the release `current` settled on, unless the \
        pidfile names a live worker. Deploy tools call `lock`/`unlock`; ops use `check`, `status` \
        and `verify` (is the worker on the current release?); systemd units use `wait`.",
    after_help = EXIT_STATUS_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait until a start is safe, then exec COMMAND on the settled release (monit's exec target)
    #[command(after_help = EXIT_STATUS_HELP)]
    Run(RunArgs),
    /// Say at once whether a start would be safe now: exit 0 "ready: RELEASE", else 75 and why
    #[command(after_help = EXIT_STATUS_HELP)]
    Check(CheckArgs),
    /// Show everything the guard sees: locks, current, releases, artifacts, settle, the worker
    #[command(after_help = EXIT_STATUS_HELP)]
    Status(StatusArgs),
    /// Block until a start would be safe (for systemd's ExecStartPre= and scripts)
    #[command(after_help = EXIT_STATUS_HELP)]
    Wait(WaitArgs),
    /// Is the running worker on the release current points to? 0 yes, 1 drift, 3 no worker
    #[command(after_help = EXIT_STATUS_HELP)]
    Verify(VerifyArgs),
    /// Take the deploy lock (for deploy tools); returns once no guard can start anything
    #[command(after_help = EXIT_STATUS_HELP)]
    Lock(LockArgs),
    /// Release the deploy lock (idempotent)
    #[command(after_help = EXIT_STATUS_HELP)]
    Unlock(UnlockArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AppArg {
    /// Deploy root (Capistrano's deploy_to)
    #[arg(long, value_name = "DIR", env = "GUARDED_RESTART_APP")]
    pub app: PathBuf,
}

/// Where the deploy tool keeps things.
#[derive(Debug, Clone, Args)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub app: AppArg,

    /// The current symlink [default: <app>/current]
    #[arg(long, value_name = "PATH", env = "GUARDED_RESTART_CURRENT")]
    pub current: Option<PathBuf>,

    /// The releases directory [default: <app>/releases]
    #[arg(long, value_name = "DIR", env = "GUARDED_RESTART_RELEASES")]
    pub releases: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,

    /// An extra lock file to honour (repeatable)
    #[arg(long = "lock", value_name = "PATH", env = "GUARDED_RESTART_LOCK")]
    pub locks: Vec<PathBuf>,

    /// How long current must stay unchanged before a start
    #[arg(long, value_name = "DUR", default_value = "5s", env = "GUARDED_RESTART_SETTLE", value_parser = parse_duration)]
    pub settle: Duration,

    /// A newer release or deploy artifact untouched this long is abandoned
    #[arg(long, value_name = "DUR", default_value = "30m", env = "GUARDED_RESTART_BUILD_TIMEOUT", value_parser = parse_duration)]
    pub build_timeout: Duration,

    /// Locks without an expiry expire this long after their mtime
    #[arg(long, value_name = "DUR", default_value = "1h", env = "GUARDED_RESTART_MAX_LOCK_AGE", value_parser = parse_duration)]
    pub max_lock_age: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct LogArg {
    /// Append one timestamped line per decision to FILE (monit discards output)
    #[arg(long, value_name = "FILE", env = "GUARDED_RESTART_LOG")]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub detect: DetectArgs,

    /// The worker's pidfile: a live worker there means nothing to do
    #[arg(long, value_name = "FILE", env = "GUARDED_RESTART_PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// Count the pidfile's process as the worker only if its cmdline contains PATTERN
    #[arg(long, value_name = "PATTERN", env = "GUARDED_RESTART_PIDFILE_MATCH")]
    pub pidfile_match: Option<String>,

    /// Write the guard's own PID to --pidfile just before exec (for Sidekiq >= 6, which writes none)
    #[arg(long, env = "GUARDED_RESTART_WRITE_PIDFILE", requires = "pidfile")]
    pub write_pidfile: bool,

    /// Append COMMAND's stdout and stderr to FILE
    #[arg(long, value_name = "FILE", env = "GUARDED_RESTART_OUTPUT")]
    pub output: Option<PathBuf>,

    /// Do not wait: exit 75 at once when not ready
    #[arg(long, env = "GUARDED_RESTART_NO_WAIT")]
    pub no_wait: bool,

    /// Give up (exit 75, start nothing) when not ready after DUR
    #[arg(long, value_name = "DUR", default_value = "10m", env = "GUARDED_RESTART_TIMEOUT", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub log: LogArg,

    /// Run COMMAND in the resolved release directory
    #[arg(long, env = "GUARDED_RESTART_CHDIR")]
    pub chdir: bool,

    /// Set KEY=VALUE in COMMAND's environment (repeatable); monit passes almost none
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,

    /// The worker or restart script, and its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value))
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub detect: DetectArgs,

    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub detect: DetectArgs,

    /// Give up (exit 75) when not ready after DUR
    #[arg(long, value_name = "DUR", default_value = "10m", env = "GUARDED_RESTART_TIMEOUT", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub layout: LayoutArgs,

    /// The worker's pidfile
    #[arg(long, value_name = "FILE", env = "GUARDED_RESTART_PIDFILE")]
    pub pidfile: PathBuf,

    /// What a worker's cmdline contains: the pidfile's process must match, and any other
    /// matching process under releases/ is an extra worker (exit 1)
    #[arg(long, value_name = "PATTERN", env = "GUARDED_RESTART_PIDFILE_MATCH")]
    pub pidfile_match: Option<String>,

    /// Keep looking for up to DUR while the worker is not (yet) on current, e.g. right after a deploy
    #[arg(long, value_name = "DUR", default_value = "0", env = "GUARDED_RESTART_VERIFY_WAIT", value_parser = parse_duration)]
    pub wait: Duration,

    /// Print JSON instead of one line
    #[arg(long, env = "GUARDED_RESTART_JSON")]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub detect: DetectArgs,

    /// The worker's pidfile, to show its process and release
    #[arg(long, value_name = "FILE", env = "GUARDED_RESTART_PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// As for run
    #[arg(long, value_name = "PATTERN", env = "GUARDED_RESTART_PIDFILE_MATCH")]
    pub pidfile_match: Option<String>,

    /// Print JSON instead of text
    #[arg(long, env = "GUARDED_RESTART_JSON")]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HolderArg {
    /// Who holds the lock [default: USER@HOST]
    #[arg(long, value_name = "TEXT", env = "GUARDED_RESTART_HOLDER")]
    pub holder: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub app: AppArg,

    /// The lock expires after DUR, so a deploy that dies cannot keep the worker down
    #[arg(long, value_name = "DUR", default_value = "30m", env = "GUARDED_RESTART_TTL", value_parser = parse_duration)]
    pub ttl: Duration,

    /// Why, for status and the log (e.g. "cap production deploy")
    #[arg(long, value_name = "TEXT", env = "GUARDED_RESTART_REASON")]
    pub reason: Option<String>,

    #[command(flatten)]
    pub holder: HolderArg,

    /// Take over a live lock held by someone else
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub log: LogArg,
}

#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub app: AppArg,

    #[command(flatten)]
    pub holder: HolderArg,

    /// Remove the lock even if someone else holds it
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub log: LogArg,
}
