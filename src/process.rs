//! Pidfiles and /proc: is the worker the pidfile names really running?
//!
//! A pidfile is a claim, not a fact. After a crash or a reboot its PID can
//! belong to anything; a worker that died under a slow-reaping PID 1 is a
//! zombie that `kill -0` still finds. So a PID counts as the worker only when
//! it is alive, not a zombie, started no later than the pidfile was written
//! (a reused PID always starts after), and matches `--pidfile-match` if given.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::snapshot::mtime;

/// Slack between the kernel's start time (whole seconds of boot time plus
/// clock ticks) and the pidfile's mtime.
const START_TIME_SLACK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidfileError {
    Empty,
    Garbage(String),
    OutOfRange(String),
}

impl fmt::Display for PidfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfileError::Empty => f.write_str("is empty"),
            PidfileError::Garbage(s) => write!(f, "does not hold a PID ({s:?})"),
            PidfileError::OutOfRange(s) => write!(f, "holds {s}, which cannot be a worker's PID"),
        }
    }
}

/// What a pidfile holds: one decimal PID greater than 1, surrounding whitespace allowed.
pub fn parse_pid(bytes: &[u8]) -> Result<u32, PidfileError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return Err(PidfileError::Empty);
    }
    let shown: String = text.chars().take(20).collect();
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PidfileError::Garbage(shown));
    }
    // PID 1 is init, never a worker; Linux PIDs stop at 2^22.
    match text.parse::<u32>() {
        Ok(pid) if (2..=4_194_304).contains(&pid) => Ok(pid),
        _ => Err(PidfileError::OutOfRange(shown)),
    }
}

/// Why a pidfile does not name a running worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRunning {
    NoPidfile,
    Unreadable(String),
    Invalid(PidfileError),
    NoProcess(u32),
    Zombie(u32),
    Reused { pid: u32, started_after: Duration },
    Mismatch { pid: u32, cmdline: String },
}

impl fmt::Display for NotRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRunning::NoPidfile => f.write_str("no pidfile"),
            NotRunning::Unreadable(e) => write!(f, "pidfile unreadable: {e}"),
            NotRunning::Invalid(e) => write!(f, "pidfile {e}"),
            NotRunning::NoProcess(pid) => write!(f, "no process {pid}"),
            NotRunning::Zombie(pid) => {
                write!(f, "process {pid} is a zombie (exited, not yet reaped)")
            }
            NotRunning::Reused { pid, started_after } => write!(
                f,
                "process {pid} started {} after the pidfile was written: the PID was reused",
                crate::duration::human(*started_after)
            ),
            NotRunning::Mismatch { pid, cmdline } => write!(
                f,
                "process {pid} is not the worker (--pidfile-match): {cmdline:?}"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub cmdline: String,
    /// The directory it runs in: the release, for a worker started there.
    pub cwd: Option<PathBuf>,
}

/// What /proc says of one PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub state: char,
    pub started: SystemTime,
    pub cmdline: String,
}

/// Parse the state and start time (clock ticks after boot) from /proc/PID/stat.
/// The command name in parentheses may itself hold spaces and parentheses.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 of stat is starttime; after "(comm)" the state is field 3.
    let start_ticks = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start_ticks))
}

fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (state, start_ticks) = parse_stat(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as u64,
        _ => 100,
    };
    let started = UNIX_EPOCH
        + Duration::from_secs(boot_time()?)
        + Duration::from_millis(start_ticks.saturating_mul(1000) / ticks_per_sec);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        state,
        started,
        cmdline,
    })
}

/// Is the worker in `pidfile` running? `pattern` must occur in its cmdline if given.
pub fn inspect(pidfile: &Path, pattern: Option<&str>) -> Result<Running, NotRunning> {
    let meta = match fs::metadata(pidfile) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NotRunning::NoPidfile),
        Err(e) => return Err(NotRunning::Unreadable(e.to_string())),
    };
    if !meta.is_file() {
        return Err(NotRunning::Unreadable("not a regular file".to_string()));
    }
    let bytes = fs::read(pidfile).map_err(|e| NotRunning::Unreadable(e.to_string()))?;
    let pid = parse_pid(&bytes[..bytes.len().min(64)]).map_err(NotRunning::Invalid)?;
    let info = proc_info(pid).ok_or(NotRunning::NoProcess(pid))?;
    if matches!(info.state, 'Z' | 'X' | 'x') {
        return Err(NotRunning::Zombie(pid));
    }
    if let Ok(late) = info.started.duration_since(mtime(&meta)) {
        if late > START_TIME_SLACK {
            return Err(NotRunning::Reused {
                pid,
                started_after: late,
            });
        }
    }
    if let Some(pattern) = pattern {
        if !info.cmdline.contains(pattern) {
            return Err(NotRunning::Mismatch {
                pid,
                cmdline: info.cmdline.chars().take(120).collect(),
            });
        }
    }
    Ok(Running {
        pid,
        cwd: fs::read_link(format!("/proc/{pid}/cwd")).ok(),
        cmdline: info.cmdline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_parses_with_surrounding_whitespace() {
        assert_eq!(parse_pid(b"4242\n"), Ok(4242));
        assert_eq!(parse_pid(b"  17  "), Ok(17));
    }

    #[test]
    fn empty_garbage_and_impossible_pids_are_rejected() {
        assert_eq!(parse_pid(b""), Err(PidfileError::Empty));
        assert_eq!(parse_pid(b" \n"), Err(PidfileError::Empty));
        assert!(matches!(parse_pid(b"abc"), Err(PidfileError::Garbage(_))));
        assert!(matches!(parse_pid(b"-5"), Err(PidfileError::Garbage(_))));
        assert!(matches!(parse_pid(b"12 34"), Err(PidfileError::Garbage(_))));
        assert!(matches!(parse_pid(b"0"), Err(PidfileError::OutOfRange(_))));
        assert!(matches!(parse_pid(b"1"), Err(PidfileError::OutOfRange(_))));
        assert!(matches!(
            parse_pid(b"99999999999999999999"),
            Err(PidfileError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_pid(b"4194305"),
            Err(PidfileError::OutOfRange(_))
        ));
    }

    #[test]
    fn stat_with_parentheses_in_the_name_parses() {
        let stat = "1234 (sidekiq 6.4 (app)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 5 0 98765 1000 10 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
        let zombie = "99 (ruby) Z 1 99 99 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 555 0 0 0";
        assert_eq!(parse_stat(zombie), Some(('Z', 555)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_seen_as_alive_with_its_cmdline() {
        let info = proc_info(std::process::id()).expect("own /proc entry");
        assert_ne!(info.state, 'Z');
        assert!(info.started <= SystemTime::now());
        assert!(!info.cmdline.is_empty());
    }
}
