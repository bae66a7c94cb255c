//! The subcommands: gather, decide, act, report. Each returns the exit status;
//! errors carry theirs (see `exit`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{CheckArgs, Command, DetectArgs, LockArgs, RunArgs, StatusArgs, UnlockArgs};
use crate::duration::human;
use crate::exit::{coded, one_line, Exit};
use crate::launch;
use crate::lock::{self, Unlocked, Waiter};
use crate::process::{self, Running};
use crate::readiness::{self, lock_expiry, Notice, Outcome, Policy, Reason};
use crate::report::{display_opt, path_json, time_json, Log};
use crate::snapshot::{self, Current, Layout, LinkIdentity, Snapshot};
use crate::timefmt;

/// How often a waiting guard looks again: well under a second so the start
/// follows the settle closely, and cheap (a handful of stats and one readdir).
const POLL: Duration = Duration::from_millis(200);

pub fn dispatch(command: Command) -> Result<Exit> {
    match command {
        Command::Run(args) => with_log(args.log.log.as_deref(), true, |log| run(&args, log)),
        Command::Check(args) => with_log(args.log.log.as_deref(), false, |log| check(&args, log)),
        Command::Status(args) => status(&args),
        Command::Lock(args) => with_log(args.log.log.as_deref(), false, |log| lock(&args, log)),
        Command::Unlock(args) => with_log(args.log.log.as_deref(), false, |log| unlock(&args, log)),
    }
}

/// Every error also lands in `--log`, since monit discards stderr.
fn with_log(
    path: Option<&Path>,
    echo: bool,
    body: impl FnOnce(&Log) -> Result<Exit>,
) -> Result<Exit> {
    let log = Log::open(path, echo);
    let result = body(&log);
    if let Err(e) = &result {
        log.error(&one_line(e));
    }
    result
}

fn layout(detect: &DetectArgs) -> Layout {
    Layout::new(
        detect.app.app.clone(),
        detect.current.clone(),
        detect.releases.clone(),
        detect.locks.clone(),
    )
}

fn policy(detect: &DetectArgs) -> Policy {
    Policy {
        settle: detect.settle,
        build_timeout: detect.build_timeout,
        max_lock_age: detect.max_lock_age,
    }
}

/// Policy for `lock`/`unlock`, which only need lock expiry.
fn lock_policy() -> Policy {
    Policy {
        settle: Duration::ZERO,
        build_timeout: Duration::ZERO,
        max_lock_age: Duration::from_secs(3600),
    }
}

/// Logs each notice once per guard; the next guard says it again.
struct Notices(HashSet<String>);

impl Notices {
    fn report(&mut self, notices: &[Notice], log: &Log) {
        for notice in notices {
            let key = notice_key(notice);
            if self.0.insert(key) {
                log.warn(&notice.to_string());
            }
        }
    }
}

fn notice_key(notice: &Notice) -> String {
    match notice {
        Notice::ExpiredLock { path, .. } => format!("expired {}", path.display()),
        Notice::LockProblem { path, .. } => format!("problem {}", path.display()),
        Notice::StaleArtifact { path, .. } => format!("stale {}", path.display()),
        Notice::AbandonedRelease { release, .. } => format!("abandoned {}", release.display()),
        Notice::BadRelease { release } => format!("bad {}", release.display()),
    }
}

/// When this guard first saw `current` as it is now; reset whenever it changes.
fn observe(
    watch: &mut Option<(LinkIdentity, SystemTime)>,
    snapshot: &Snapshot,
    now: SystemTime,
) -> Option<SystemTime> {
    let Current::Link(link) = &snapshot.current else {
        *watch = None;
        return None;
    };
    match watch {
        Some((identity, since)) if *identity == link.identity => Some(*since),
        _ => {
            *watch = Some((link.identity.clone(), now));
            Some(now)
        }
    }
}

fn run(args: &RunArgs, log: &Log) -> Result<Exit> {
    let layout = layout(&args.detect);
    let policy = policy(&args.detect);
    snapshot::check_deploy_root(&layout.deploy_root)?;

    let (program, program_args) = args
        .command
        .split_first()
        .ok_or_else(|| coded(Exit::Usage, "no COMMAND given after --"))?;
    let search_path = launch::search_path();
    // Say 126/127 now, not after ten minutes of waiting. A relative command
    // with --chdir lives in the release, which is only known at the start.
    let in_release = args.chdir
        && Path::new(program).is_relative()
        && Path::new(program).components().count() > 1;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    if !in_release {
        launch::resolve(program, &search_path, &cwd)?;
    }
    let pattern = args.pidfile_match.as_deref();

    if let Some(pidfile) = &args.pidfile {
        if let Ok(worker) = process::inspect(pidfile, pattern) {
            log.info(&format!(
                "worker already running ({}); nothing to do",
                describe_worker(&worker)
            ));
            return Ok(Exit::Success);
        }
    }

    let _waiter = match lock::waiter(&layout.deploy_root) {
        Waiter::Sole(file) => Some(file),
        Waiter::Taken => {
            log.info(&format!(
                "another guard is already waiting for {}; leaving it to that one",
                layout.deploy_root.display()
            ));
            return Ok(Exit::Success);
        }
        Waiter::Unavailable(why) => {
            log.warn(&format!(
                "cannot take the waiter lock ({why}); waiting without it"
            ));
            None
        }
    };

    let started = Instant::now();
    let deadline = started + args.timeout;
    let mut watch = None;
    let mut notices = Notices(HashSet::new());
    let mut last_reason: Option<Reason> = None;
    loop {
        let snapshot = snapshot::gather(&layout)?;
        let now = SystemTime::now();
        let watched_since = observe(&mut watch, &snapshot, now);
        let decision = readiness::decide(&snapshot, &policy, now, watched_since);
        notices.report(&decision.notices, log);

        let reason = match decision.outcome {
            Outcome::NotReady(reason) => reason,
            Outcome::Ready { .. } => {
                // The final check and the start happen under the launch mutex,
                // so a `lock` either lands before it (and we see it) or waits
                // until this process has become the worker.
                let mutex = lock::launch_mutex(&layout.deploy_root, lock::LAUNCH_MUTEX_WAIT)?;
                let snapshot = snapshot::gather(&layout)?;
                let now = SystemTime::now();
                let watched_since = observe(&mut watch, &snapshot, now);
                let decision = readiness::decide(&snapshot, &policy, now, watched_since);
                notices.report(&decision.notices, log);
                match decision.outcome {
                    Outcome::Ready { release } => {
                        if last_reason.is_some() {
                            log.info(&format!(
                                "settled on {} after waiting {}",
                                release.display(),
                                human(started.elapsed())
                            ));
                        }
                        return start(
                            args,
                            log,
                            &release,
                            program,
                            program_args,
                            &search_path,
                            &cwd,
                            mutex,
                        );
                    }
                    Outcome::NotReady(reason) => {
                        drop(mutex);
                        reason
                    }
                }
            }
        };

        if args.no_wait {
            return Err(coded(
                Exit::NotReady,
                format!("not ready (--no-wait): {reason}"),
            ));
        }
        if !last_reason
            .as_ref()
            .is_some_and(|last| last.same_cause(&reason))
        {
            log.info(&format!("waiting: {reason}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(coded(
                Exit::NotReady,
                format!(
                    "gave up after {}, started nothing: {reason}",
                    human(args.timeout)
                ),
            ));
        }
        let nap = match &reason {
            Reason::NotSettled { remaining, .. } => {
                (*remaining).clamp(Duration::from_millis(10), POLL)
            }
            _ => POLL,
        };
        last_reason = Some(reason);
        sleep(nap.min(left));
    }
}

fn describe_worker(worker: &Running) -> String {
    match &worker.cwd {
        Some(cwd) => format!("pid {} in {}", worker.pid, cwd.display()),
        None => format!("pid {}", worker.pid),
    }
}

#[allow(clippy::too_many_arguments)]
fn start(
    args: &RunArgs,
    log: &Log,
    release: &Path,
    program: &std::ffi::OsStr,
    program_args: &[std::ffi::OsString],
    search_path: &std::ffi::OsStr,
    cwd: &Path,
    mutex: lock::LaunchMutex,
) -> Result<Exit> {
    let mut why_start = String::new();
    if let Some(pidfile) = &args.pidfile {
        match process::inspect(pidfile, args.pidfile_match.as_deref()) {
            Ok(worker) => {
                log.info(&format!(
                    "worker already running ({}); nothing to do",
                    describe_worker(&worker)
                ));
                return Ok(Exit::Success);
            }
            Err(not_running) => why_start = format!(" (worker not running: {not_running})"),
        }
    }
    let base = if args.chdir { release } else { cwd };
    let program = launch::resolve(program, search_path, base)?;
    let output = args
        .output
        .as_deref()
        .map(|path| crate::fsutil::open_append(path, 0o640))
        .transpose()?;
    let revision = launch::revision(release);
    log.info(&format!(
        "starting {} at release {}{}{why_start}",
        program.display(),
        release.display(),
        revision
            .as_deref()
            .map(|r| format!(" (revision {r})"))
            .unwrap_or_default()
    ));
    let error = launch::exec(launch::Plan {
        program,
        args: program_args,
        release,
        revision: revision.as_deref(),
        chdir: args.chdir,
        extra_env: &args.env,
        output,
        pidfile_to_write: args
            .write_pidfile
            .then_some(())
            .and(args.pidfile.as_deref()),
    });
    drop(mutex);
    Err(error)
}

fn check(args: &CheckArgs, log: &Log) -> Result<Exit> {
    let layout = layout(&args.detect);
    let snapshot = snapshot::gather(&layout)?;
    let decision = readiness::decide(&snapshot, &policy(&args.detect), SystemTime::now(), None);
    Notices(HashSet::new()).report(&decision.notices, log);
    Ok(match decision.outcome {
        Outcome::Ready { release } => {
            println!("ready: {}", release.display());
            log.info(&format!("check: ready: {}", release.display()));
            Exit::Success
        }
        Outcome::NotReady(reason) => {
            println!("not ready: {reason}");
            log.info(&format!("check: not ready: {reason}"));
            Exit::NotReady
        }
    })
}

fn lock(args: &LockArgs, log: &Log) -> Result<Exit> {
    let layout = Layout::new(args.app.app.clone(), None, None, Vec::new());
    let locked = lock::lock(
        &layout,
        &lock_policy(),
        args.holder.holder.as_deref(),
        args.reason.as_deref(),
        args.ttl,
        args.force,
    )?;
    if let Some(replaced) = &locked.replaced {
        log.warn(&format!("replaced deploy lock {replaced}"));
    }
    let line = format!(
        "locked {} for {} until {}",
        layout.deploy_root.display(),
        locked.holder,
        timefmt::rfc3339(locked.expires)
    );
    log.info(&line);
    println!("{line}");
    Ok(Exit::Success)
}

fn unlock(args: &UnlockArgs, log: &Log) -> Result<Exit> {
    let layout = Layout::new(args.app.app.clone(), None, None, Vec::new());
    let line = match lock::unlock(
        &layout,
        &lock_policy(),
        args.holder.holder.as_deref(),
        args.force,
    )? {
        Unlocked::Removed(what) => format!("unlocked: removed {what}"),
        Unlocked::NoLock => format!(
            "unlocked: {} held no deploy lock",
            layout.deploy_root.display()
        ),
    };
    log.info(&line);
    println!("{line}");
    Ok(Exit::Success)
}

fn status(args: &StatusArgs) -> Result<Exit> {
    let layout = layout(&args.detect);
    let policy = policy(&args.detect);
    let snapshot = snapshot::gather(&layout)?;
    let now = SystemTime::now();
    let decision = readiness::decide(&snapshot, &policy, now, None);
    let worker = args
        .pidfile
        .as_deref()
        .map(|p| process::inspect(p, args.pidfile_match.as_deref()));
    let view = status_json(&layout, &policy, &snapshot, &decision, worker.as_ref(), now);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!(
            "{}",
            status_text(&layout, &policy, &snapshot, &decision, worker.as_ref(), now)
        );
    }
    Ok(Exit::Success)
}

type WorkerView<'a> = Option<&'a Result<Running, process::NotRunning>>;

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

fn status_json(
    layout: &Layout,
    policy: &Policy,
    snapshot: &Snapshot,
    decision: &readiness::Decision,
    worker: WorkerView<'_>,
    now: SystemTime,
) -> Value {
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
    let newest = snapshot.newest_release();
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
            "count": snapshot.releases.len(),
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

fn status_text(
    layout: &Layout,
    policy: &Policy,
    snapshot: &Snapshot,
    decision: &readiness::Decision,
    worker: WorkerView<'_>,
    now: SystemTime,
) -> String {
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
        match (snapshot.releases_missing, snapshot.newest_release()) {
            (true, _) => format!("{} does not exist", layout.releases.display()),
            (false, None) => format!("none in {}", layout.releases.display()),
            (false, Some(newest)) => format!(
                "{} in {}; newest {} (modified {})",
                snapshot.releases.len(),
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
