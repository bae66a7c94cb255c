//! Starting the worker: resolve COMMAND, build its environment, write the
//! pidfile, exec. After exec the guard *is* the worker, so its PID (and the
//! pidfile `--write-pidfile` wrote) stays the worker's.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::exit::{coded, Exit};
use crate::fsutil;
use crate::lockfile::clean;

/// What programs get when their environment has no PATH at all.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The PATH COMMAND is searched in and runs with: ours, or a sane default.
pub fn search_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.into())
}

fn is_executable(meta: &fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

/// Find COMMAND as a shell would, and say precisely why not:
/// 127 when nothing is there, 126 when something is but cannot run.
pub fn resolve(program: &OsStr, path: &OsStr, cwd: &Path) -> Result<PathBuf> {
    let shown = Path::new(program).display().to_string();
    if program.as_encoded_bytes().contains(&b'/') {
        let candidate = cwd.join(program);
        return match fs::metadata(&candidate) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(coded(
                Exit::NotFound,
                format!("command not found: {}", candidate.display()),
            )),
            Err(e) => Err(coded(
                Exit::CannotExecute,
                format!("cannot execute {}: {e}", candidate.display()),
            )),
            Ok(meta) if meta.is_dir() => Err(coded(
                Exit::CannotExecute,
                format!("cannot execute {}: it is a directory", candidate.display()),
            )),
            Ok(meta) if !is_executable(&meta) => Err(coded(
                Exit::CannotExecute,
                format!("cannot execute {}: not executable", candidate.display()),
            )),
            Ok(_) => Ok(candidate),
        };
    }
    if let Ok(found) = which::which_in(program, Some(path), cwd) {
        return Ok(found);
    }
    // `which` skips what it cannot run; a shell would say 126 for those.
    for dir in std::env::split_paths(path) {
        let candidate = dir.join(program);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() {
                return Err(coded(
                    Exit::CannotExecute,
                    format!("cannot execute {}: not executable", candidate.display()),
                ));
            }
        }
    }
    Err(coded(
        Exit::NotFound,
        format!(
            "command not found: {shown} (searched PATH={}; give an absolute path, monit passes only a minimal PATH)",
            path.to_string_lossy()
        ),
    ))
}

fn home_of_euid() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() }.to_string();
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2] == uid).then(|| fields[5].to_string())
    })
}

/// `<release>/REVISION` as Capistrano writes it, if it is there and sane.
pub fn revision(release: &Path) -> Option<String> {
    let bytes = fs::read(release.join("REVISION")).ok()?;
    let text = String::from_utf8(bytes.into_iter().take(256).collect()).ok()?;
    text.lines().next().and_then(clean)
}

pub struct Plan<'a> {
    pub program: PathBuf,
    pub args: &'a [OsString],
    pub release: &'a Path,
    pub revision: Option<&'a str>,
    pub chdir: bool,
    pub extra_env: &'a [(String, String)],
    pub output: Option<File>,
    pub pidfile_to_write: Option<&'a Path>,
}

/// Replace this process with the worker. Returns only on failure, and then
/// leaves no pidfile behind that names a process that never became the worker.
pub fn exec(plan: Plan<'_>) -> anyhow::Error {
    let mut command = Command::new(&plan.program);
    command.args(plan.args);
    command.env("GUARDED_RESTART_RELEASE", plan.release);
    match plan.revision {
        Some(rev) => command.env("GUARDED_RESTART_REVISION", rev),
        None => command.env_remove("GUARDED_RESTART_REVISION"),
    };
    if std::env::var_os("PATH").is_none_or(|p| p.is_empty()) {
        command.env("PATH", DEFAULT_PATH);
    }
    if std::env::var_os("HOME").is_none() {
        if let Some(home) = home_of_euid() {
            command.env("HOME", home);
        }
    }
    for (key, value) in plan.extra_env {
        command.env(key, value);
    }
    if plan.chdir {
        command.current_dir(plan.release);
    }
    if let Some(output) = plan.output {
        match output.try_clone() {
            Ok(copy) => {
                command.stdout(copy).stderr(output).stdin(Stdio::null());
            }
            Err(e) => return anyhow::Error::new(e).context("cannot duplicate --output"),
        }
    }
    if let Some(pidfile) = plan.pidfile_to_write {
        let pid = format!("{}\n", std::process::id());
        if let Err(e) = fsutil::write_atomic(pidfile, pid.as_bytes(), 0o644) {
            return e;
        }
    }
    let error = command.exec();
    if let Some(pidfile) = plan.pidfile_to_write {
        let _ = fs::remove_file(pidfile);
    }
    let shown = plan.program.display();
    match error.raw_os_error() {
        // It was there a moment ago: what is missing is its #! interpreter.
        Some(libc::ENOENT) => coded(
            Exit::NotFound,
            format!("cannot execute {shown}: its #! interpreter (or the file) is missing"),
        ),
        Some(libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::ETXTBSY) => coded(
            Exit::CannotExecute,
            format!("cannot execute {shown}: {error}"),
        ),
        _ => anyhow::Error::new(error).context(format!("cannot execute {shown}")),
    }
}
