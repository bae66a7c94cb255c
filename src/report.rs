//! What ops read: the `--log` file (monit throws away the guard's output),
//! stderr, and `status` in text or JSON.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::duration::human;
use crate::fsutil;
use crate::process::{NotRunning, Running};
use crate::readiness::{lock_expiry, Decision, Outcome, Policy};
use crate::snapshot::{Current, Layout, Snapshot};
use crate::timefmt;

/// Print to stdout. A closed pipe (`status | head -1`) or a full disk must not
/// turn into a panic: the answer is lost, the exit status still tells.
pub fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// One line on stderr, prefixed `guarded-restart: `; write errors are ignored
/// for the same reason (monit itself points stderr at /dev/null).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "guarded-restart: {line}");
}

/// One timestamped line per decision, appended with a single write so that
/// overlapping guards (monit execs overlap) never interleave within a line.
pub struct Log {
    file: Option<File>,
    /// Echo info lines to stderr (for `run`; `check` answers on stdout).
    echo: bool,
}

impl Log {
    pub fn open(path: Option<&Path>, echo: bool) -> Log {
        let file = path.and_then(|path| match fsutil::open_append(path, 0o640) {
            Ok(file) => Some(file),
            Err(e) => {
                // Logging is how ops see decisions, but a broken log must not
                // stop the guard from deciding: say so where it can be seen.
                say(&format!(
                    "warning: cannot log to {}: {}; continuing without a log",
                    path.display(),
                    crate::exit::one_line(&e)
                ));
                None
            }
        });
        Log { file, echo }
    }

    fn write(&self, line: &str) {
        if let Some(mut file) = self.file.as_ref() {
            let stamped = format!(
                "{} [{}] guarded-restart: {line}\n",
                timefmt::rfc3339_millis(SystemTime::now()),
                std::process::id()
            );
            let _ = file.write_all(stamped.as_bytes());
        }
    }

    pub fn info(&self, line: &str) {
        self.write(line);
        if self.echo {
            say(line);
        }
    }

    pub fn warn(&self, line: &str) {
        let line = format!("warning: {line}");
        self.write(&line);
        say(&line);
    }

    /// Errors go to stderr from `main`; here only to the file.
    pub fn error(&self, line: &str) {
        self.write(&format!("error: {line}"));
    }
}

pub fn path_json(path: &Path) -> serde_json::Value {
    serde_json::Value::String(path.display().to_string())
}

pub fn time_json(t: SystemTime) -> serde_json::Value {
    serde_json::Value::String(timefmt::rfc3339(t))
}

pub fn display_opt(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "-".to_string(), |p| p.display().to_string())
}

/// Everything `status` shows, rendered as text or JSON.
#[derive(Clone, Copy)]
pub struct Status<'a> {
    pub layout: &'a Layout,
    pub policy: &'a Policy,
    pub snapshot: &'a Snapshot,
    pub decision: &'a Decision,
    pub worker: Option<&'a Result<Running, NotRunning>>,
    pub now: SystemTime,
}

pub fn describe_worker(worker: &Running) -> String {
    match &worker.cwd {
        Some(cwd) => format!("pid {} in {}", worker.pid, cwd.display()),
        None => format!("pid {}", worker.pid),
    }
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) => format!("{} ago", human(d)),
        Err(e) => format!("in {} (clock skew?)", human(e.duration())),
    }
}

fn current_release(snapshot: &Snapshot) -> Option<&Path> {
    match &snapshot.current {
        Current::Link(link) => Some(&link.release),
        _ => None,
    }
}

impl Status<'_> {
    pub fn json(&self) -> Value {
        let Status {
            layout,
            policy,
            snapshot,
            decision,
            worker,
            now,
        } = *self;
        let current = match &snapshot.current {
            Current::Link(link) => json!({
                "path": path_json(&snapshot.current_path),
                "target": path_json(&link.target),
                "release": path_json(&link.release),
                "changed": time_json(link.changed),
                "settled": now.duration_since(link.changed).is_ok_and(|d| d >= policy.settle),
            }),
            other => json!({
                "path": path_json(&snapshot.current_path),
                "problem": format!("{other:?}"),
            }),
        };
        let newest = snapshot.newest_release.as_ref();
        let locks: Vec<Value> = snapshot
            .locks
            .iter()
            .map(|lock| {
                let expires = lock_expiry(lock, policy);
                json!({
                    "path": path_json(&lock.path),
                    "kind": lock.content.kind.to_string(),
                    "holder": lock.content.holder,
                    "reason": lock.content.reason,
                    "created": lock.content.created.map(time_json),
                    "modified": time_json(lock.modified),
                    "expires": expires.map(time_json),
                    "live": expires.is_none_or(|t| t > now),
                    "problem": lock.content.problem,
                })
            })
            .collect();
        let artifacts: Vec<Value> = snapshot
        .artifacts
        .iter()
        .map(|a| {
            json!({
                "path": path_json(&a.path),
                "kind": a.kind.to_string(),
                "modified": time_json(a.modified),
                "stale": now.duration_since(a.modified).is_ok_and(|d| d >= policy.build_timeout),
            })
        })
        .collect();
        let (ready, release, reason) = match &decision.outcome {
            Outcome::Ready { release } => (true, Some(path_json(release)), None),
            Outcome::NotReady(reason) => (false, None, Some(reason.to_string())),
        };
        let worker = worker.map(|w| match w {
        Ok(running) => json!({
            "running": true,
            "pid": running.pid,
            "cmdline": running.cmdline,
            "cwd": running.cwd.as_deref().map(path_json),
            "on_current": running.cwd.as_deref().zip(current_release(snapshot)).map(|(a, b)| a == b),
        }),
        Err(why) => json!({ "running": false, "why": why.to_string() }),
    });
        json!({
            "app": path_json(&layout.deploy_root),
            "ready": ready,
            "release": release,
            "reason": reason,
            "current": current,
            "releases": {
                "dir": path_json(&layout.releases),
                "missing": snapshot.releases_missing,
                "count": snapshot.release_count,
                "newest": newest.map(|r| path_json(&r.path)),
                "newest_modified": newest.map(|r| time_json(r.modified)),
            },
            "locks": locks,
            "artifacts": artifacts,
            "notices": decision.notices.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            "worker": worker,
            "settle": human(policy.settle),
            "build_timeout": human(policy.build_timeout),
            "max_lock_age": human(policy.max_lock_age),
        })
    }

    pub fn text(&self) -> String {
        let Status {
            layout,
            policy,
            snapshot,
            decision,
            worker,
            now,
        } = *self;
        let mut out = String::new();
        let mut line = |label: &str, text: String| out.push_str(&format!("{label:<10} {text}\n"));
        line("app", layout.deploy_root.display().to_string());
        line(
            "decision",
            match &decision.outcome {
                Outcome::Ready { release } => format!("ready: {}", release.display()),
                Outcome::NotReady(reason) => format!("not ready: {reason}"),
            },
        );
        line(
            "current",
            match &snapshot.current {
                Current::Link(link) => {
                    let settled = now
                        .duration_since(link.changed)
                        .is_ok_and(|d| d >= policy.settle);
                    format!(
                        "{} -> {} (release {}, changed {}, {})",
                        snapshot.current_path.display(),
                        link.target.display(),
                        link.release.display(),
                        ago(now, link.changed),
                        if settled { "settled" } else { "settling" }
                    )
                }
                other => format!("{}: {other:?}", snapshot.current_path.display()),
            },
        );
        line(
            "releases",
            match (snapshot.releases_missing, snapshot.newest_release.as_ref()) {
                (true, _) => format!("{} does not exist", layout.releases.display()),
                (false, None) => format!("none in {}", layout.releases.display()),
                (false, Some(newest)) => format!(
                    "{} in {}; newest {} (modified {})",
                    snapshot.release_count,
                    layout.releases.display(),
                    display_opt(&newest.path.file_name().map(PathBuf::from)),
                    ago(now, newest.modified)
                ),
            },
        );
        if snapshot.locks.is_empty() {
            line("locks", "none".to_string());
        }
        for lock in &snapshot.locks {
            let expires = lock_expiry(lock, policy);
            line(
                "lock",
                format!(
                    "{} ({}) held by {}{}, modified {}, {}",
                    lock.path.display(),
                    lock.content.kind,
                    lock.content
                        .holder
                        .as_deref()
                        .unwrap_or("an unknown holder"),
                    lock.content
                        .reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    ago(now, lock.modified),
                    match expires {
                        None => "never expires".to_string(),
                        Some(t) if t > now => format!(
                            "expires in {}",
                            human(t.duration_since(now).unwrap_or_default())
                        ),
                        Some(t) => format!("EXPIRED {}", ago(now, t)),
                    }
                ),
            );
        }
        if snapshot.artifacts.is_empty() {
            line("artifacts", "none".to_string());
        }
        for artifact in &snapshot.artifacts {
            line(
                "artifact",
                format!(
                    "{} ({}), modified {}",
                    artifact.path.display(),
                    artifact.kind,
                    ago(now, artifact.modified)
                ),
            );
        }
        for notice in &decision.notices {
            line("notice", notice.to_string());
        }
        if let Some(worker) = worker {
            line(
                "worker",
                match worker {
                    Ok(running) => {
                        let place = match (running.cwd.as_deref(), current_release(snapshot)) {
                            (Some(cwd), Some(cur)) if cwd == cur => " (on current)".to_string(),
                            (Some(_), Some(cur)) => format!(" (NOT on current {})", cur.display()),
                            _ => String::new(),
                        };
                        format!("running: {}{place}", describe_worker(running))
                    }
                    Err(why) => format!("not running: {why}"),
                },
            );
        }
        out
    }
}
