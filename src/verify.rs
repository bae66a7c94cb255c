//! Drift: is the running worker on the release `current` points to?
//!
//! The incident's real symptom was two servers running different code, found
//! by hand. A guard prevents the known race; `verify` sees drift whatever
//! caused it, for a monit `check program` and for the deploy tool's fan-out.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::launch::revision;
use crate::process::{NotRunning, Running};
use crate::report::path_json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    OnCurrent,
    Drift,
    /// Workers that the pidfile does not name: a second copy, or an old one
    /// orphaned when a restart raced the deploy's removal of the pidfile.
    Extra,
    NotRunning(NotRunning),
    CurrentBroken(String),
}

/// A process under `releases/` matching `--pidfile-match` that is not the
/// pidfile's worker nor one of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraWorker {
    pub pid: u32,
    pub release: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub current_release: Result<PathBuf, String>,
    pub worker: Result<Running, NotRunning>,
    /// The release the worker's cwd lies in.
    pub worker_release: Option<PathBuf>,
    /// `GUARDED_RESTART_RELEASE` from its environment, where readable.
    pub started_release: Option<PathBuf>,
    /// Only looked for with `--pidfile-match`, which says what a worker is.
    pub extra: Vec<ExtraWorker>,
}

/// The directory directly under `releases` that holds `cwd`; else `cwd` itself.
pub fn release_of(cwd: &Path, releases: &Path) -> PathBuf {
    let mut candidate = cwd;
    while let Some(parent) = candidate.parent() {
        if parent == releases {
            return candidate.to_path_buf();
        }
        candidate = parent;
    }
    cwd.to_path_buf()
}

/// Every process (but `worker` and its children) whose cwd lies under
/// `releases` and whose cmdline contains `pattern`.
pub fn extra_workers(releases: &Path, pattern: &str, worker: Option<u32>) -> Vec<ExtraWorker> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    // A process in another mount namespace (a container) sees other files
    // under the same path names: it is not this deploy root's worker.
    let namespace = |pid: u32| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let own_namespace = namespace(own);
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| Some(*pid) != worker && *pid != own)
        .filter_map(|pid| {
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            if own_namespace.is_some() && namespace(pid) != own_namespace {
                return None;
            }
            if !cwd.starts_with(releases) {
                return None;
            }
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
            };
            if field("State:").is_some_and(|s| s.starts_with('Z'))
                || field("PPid:").and_then(|p| p.parse().ok()) == worker
            {
                return None;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(pattern).then(|| ExtraWorker {
                pid,
                release: release_of(&cwd, releases),
            })
        })
        .collect()
}

/// `GUARDED_RESTART_RELEASE` as the worker was started with it.
/// Ruby's `$0=` may overwrite the environ area; garbage simply finds nothing.
pub fn started_release(pid: u32) -> Option<PathBuf> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|b| *b == 0).find_map(|entry| {
        let value = entry.strip_prefix(b"GUARDED_RESTART_RELEASE=")?;
        let text = std::str::from_utf8(value).ok()?;
        text.starts_with('/').then(|| PathBuf::from(text))
    })
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        let current = match &self.current_release {
            Ok(current) => current,
            Err(why) => return Verdict::CurrentBroken(why.clone()),
        };
        if !self.extra.is_empty() {
            return Verdict::Extra;
        }
        if let Err(why) = &self.worker {
            return Verdict::NotRunning(why.clone());
        }
        // The cwd is the truth about loaded code; the environment is what a
        // guard chose, used where the cwd cannot be read (not root).
        match self
            .worker_release
            .as_ref()
            .or(self.started_release.as_ref())
        {
            Some(release) if release == current => Verdict::OnCurrent,
            Some(_) => Verdict::Drift,
            None => Verdict::NotRunning(NotRunning::Unreadable(
                "cannot read the worker's cwd or environment (run as root)".to_string(),
            )),
        }
    }

    fn running_release(&self) -> Option<&Path> {
        self.worker_release
            .as_deref()
            .or(self.started_release.as_deref())
    }

    /// The one line for ops and monit's alert.
    pub fn line(&self) -> String {
        let name = |p: &Path| p.display().to_string();
        match (self.verdict(), &self.worker, &self.current_release) {
            (Verdict::OnCurrent, Ok(worker), Ok(current)) => {
                format!(
                    "ok: worker {} runs the current release {}",
                    worker.pid,
                    name(current)
                )
            }
            (Verdict::Drift, Ok(worker), Ok(current)) => format!(
                "drift: worker {} runs release {} but current is {}",
                worker.pid,
                self.running_release().map(name).unwrap_or_default(),
                name(current)
            ),
            (Verdict::Extra, worker, _) => {
                let extra: Vec<String> = self
                    .extra
                    .iter()
                    .map(|e| format!("pid {} runs release {}", e.pid, name(&e.release)))
                    .collect();
                let named = match worker {
                    Ok(w) => format!("the pidfile names worker {}", w.pid),
                    Err(why) => format!("the pidfile names none ({why})"),
                };
                format!("extra workers: {}; {named}", extra.join(", "))
            }
            (Verdict::NotRunning(why), _, _) => format!("not running: {why}"),
            (Verdict::CurrentBroken(why), _, _) => format!("cannot verify: {why}"),
            _ => "cannot verify".to_string(),
        }
    }

    pub fn json(&self, app: &Path, host: &str) -> Value {
        let state = match self.verdict() {
            Verdict::OnCurrent => "ok",
            Verdict::Drift => "drift",
            Verdict::Extra => "extra_workers",
            Verdict::NotRunning(_) => "not_running",
            Verdict::CurrentBroken(_) => "current_broken",
        };
        let current = self.current_release.as_ref().ok();
        let worker = self.worker.as_ref().ok().map(|w| {
            json!({
                "pid": w.pid,
                "cmdline": w.cmdline,
                "cwd": w.cwd.as_deref().map(path_json),
                "release": self.running_release().map(path_json),
                "started_release": self.started_release.as_deref().map(path_json),
                "revision": self.running_release().and_then(revision),
            })
        });
        json!({
            "host": host,
            "app": path_json(app),
            "state": state,
            "message": self.line(),
            "current_release": current.map(|p| path_json(p)),
            "current_revision": current.and_then(|p| revision(p)),
            "worker": worker,
            "extra_workers": self.extra.iter().map(|e| json!({
                "pid": e.pid,
                "release": path_json(&e.release),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(pid: u32) -> Running {
        Running {
            pid,
            cmdline: "sidekiq 6.4.1 app [0 of 10 busy]".into(),
            cwd: None,
        }
    }

    fn report(worker_release: Option<&str>, started: Option<&str>) -> Report {
        Report {
            current_release: Ok("/app/releases/2".into()),
            worker: Ok(running(42)),
            worker_release: worker_release.map(PathBuf::from),
            started_release: started.map(PathBuf::from),
            extra: Vec::new(),
        }
    }

    #[test]
    fn cwd_inside_a_release_maps_to_that_release() {
        let releases = Path::new("/app/releases");
        assert_eq!(
            release_of(Path::new("/app/releases/2/lib"), releases),
            PathBuf::from("/app/releases/2")
        );
        assert_eq!(
            release_of(Path::new("/app/releases/2"), releases),
            PathBuf::from("/app/releases/2")
        );
        assert_eq!(
            release_of(Path::new("/srv/other"), releases),
            PathBuf::from("/srv/other")
        );
    }

    #[test]
    fn worker_on_current_is_ok() {
        let r = report(Some("/app/releases/2"), None);
        assert_eq!(r.verdict(), Verdict::OnCurrent);
        assert_eq!(
            r.line(),
            "ok: worker 42 runs the current release /app/releases/2"
        );
    }

    #[test]
    fn worker_elsewhere_is_drift_naming_both_releases() {
        let r = report(Some("/app/releases/1"), Some("/app/releases/2"));
        assert_eq!(r.verdict(), Verdict::Drift);
        assert_eq!(
            r.line(),
            "drift: worker 42 runs release /app/releases/1 but current is /app/releases/2"
        );
    }

    #[test]
    fn environment_is_used_only_when_the_cwd_is_unknown() {
        assert_eq!(
            report(None, Some("/app/releases/1")).verdict(),
            Verdict::Drift
        );
        assert_eq!(
            report(None, Some("/app/releases/2")).verdict(),
            Verdict::OnCurrent
        );
        assert!(matches!(
            report(None, None).verdict(),
            Verdict::NotRunning(_)
        ));
    }

    #[test]
    fn a_worker_the_pidfile_does_not_name_is_extra_even_beside_a_good_one() {
        let mut r = report(Some("/app/releases/2"), None);
        r.extra.push(ExtraWorker {
            pid: 7,
            release: "/app/releases/1".into(),
        });
        assert_eq!(r.verdict(), Verdict::Extra);
        assert_eq!(
            r.line(),
            "extra workers: pid 7 runs release /app/releases/1; the pidfile names worker 42"
        );
        r.worker = Err(NotRunning::NoPidfile);
        assert_eq!(r.verdict(), Verdict::Extra);
    }

    #[test]
    fn no_worker_and_broken_current_are_their_own_verdicts() {
        let mut r = report(None, None);
        r.worker = Err(NotRunning::NoPidfile);
        assert_eq!(r.verdict(), Verdict::NotRunning(NotRunning::NoPidfile));
        r.current_release = Err("current /app/current does not exist".into());
        assert!(matches!(r.verdict(), Verdict::CurrentBroken(_)));
        assert_eq!(r.json(Path::new("/app"), "web1")["state"], "current_broken");
    }
}
