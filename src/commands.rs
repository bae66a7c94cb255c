//! The subcommands: gather, decide, act, report. Each returns the exit status;
//! errors carry theirs (see `exit`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::cli::{
    CheckArgs, Command, DetectArgs, LayoutArgs, LockArgs, RunArgs, StatusArgs, UnlockArgs,
    VerifyArgs, WaitArgs,
};
use crate::exit::{coded, one_line, Exit};
use crate::launch;
use crate::lock::{self, Unlocked, Waiter};
use crate::process;
use crate::readiness::{self, Outcome, Policy};
use crate::report::{self, describe_worker, Log};
use crate::snapshot::{self, Layout};
use crate::timefmt;
use crate::verify::{self, Verdict};
use crate::waiting::Waiting;

pub fn dispatch(command: Command) -> Result<Exit> {
    match command {
        Command::Run(args) => with_log(args.log.log.as_deref(), true, |log| run(&args, log)),
        Command::Check(args) => with_log(args.log.log.as_deref(), false, |log| check(&args, log)),
        Command::Wait(args) => with_log(args.log.log.as_deref(), true, |log| wait(&args, log)),
        Command::Verify(args) => verify(&args),
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
    layout_of(&detect.layout, detect.locks.clone())
}

fn layout_of(args: &LayoutArgs, extra_locks: Vec<PathBuf>) -> Layout {
    Layout::new(
        args.app.app.clone(),
        args.current.clone(),
        args.releases.clone(),
        extra_locks,
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

/// A live worker in the pidfile means there is nothing to do: says so and
/// returns true. Otherwise sets why a start is due, for the log line. A
/// pidfile that cannot be read is an error: starting could make a second copy.
fn worker_is_running(args: &RunArgs, log: &Log, why_start: &mut String) -> Result<bool> {
    let Some(pidfile) = args.pidfile.as_deref() else {
        return Ok(false);
    };
    match process::inspect(pidfile, args.pidfile_match.as_deref()) {
        Ok(worker) => {
            log.info(&format!(
                "worker already running ({}); nothing to do",
                describe_worker(&worker)
            ));
            Ok(true)
        }
        Err(process::NotRunning::Unreadable(why)) => Err(coded(
            Exit::Config,
            format!(
                "cannot read pidfile {}: {why}; refusing to start what may be a second copy",
                pidfile.display()
            ),
        )),
        Err(not_running) => {
            *why_start = format!(" (worker not running: {not_running})");
            Ok(false)
        }
    }
}

fn run(args: &RunArgs, log: &Log) -> Result<Exit> {
    let layout = layout(&args.detect);
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

    let mut why_start = String::new();
    if worker_is_running(args, log, &mut why_start)? {
        return Ok(Exit::Success);
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

    let mut waiting = Waiting::new(
        &layout,
        policy(&args.detect),
        args.timeout,
        ", started nothing",
        log,
    );
    loop {
        let reason = match waiting.look()? {
            Outcome::NotReady(reason) => reason,
            Outcome::Ready { .. } => {
                // The final check and the start happen under the launch mutex,
                // so a `lock` either lands before it (and we see it) or waits
                // until this process has become the worker.
                let mutex = lock::launch_mutex(&layout.deploy_root, lock::LAUNCH_MUTEX_WAIT)?;
                match waiting.look()? {
                    Outcome::Ready { release } => {
                        waiting.settled(&release);
                        if worker_is_running(args, log, &mut why_start)? {
                            return Ok(Exit::Success);
                        }
                        let target = Target {
                            program,
                            program_args,
                            search_path: &search_path,
                            cwd: &cwd,
                        };
                        let error = start(args, log, &release, target, &why_start);
                        drop(mutex);
                        return Err(error);
                    }
                    Outcome::NotReady(reason) => reason,
                }
            }
        };
        if args.no_wait {
            return Err(coded(
                Exit::NotReady,
                format!("not ready (--no-wait): {reason}"),
            ));
        }
        waiting.not_ready(reason)?;
        // The deploy's own start (or a person) may bring the worker up while
        // this guard waits; then there is nothing left to wait for.
        if worker_is_running(args, log, &mut why_start)? {
            return Ok(Exit::Success);
        }
    }
}

/// COMMAND as given, and where to look for it.
struct Target<'a> {
    program: &'a OsStr,
    program_args: &'a [OsString],
    search_path: &'a OsStr,
    cwd: &'a Path,
}

/// Exec the worker; returns only the error when that failed.
fn start(
    args: &RunArgs,
    log: &Log,
    release: &Path,
    target: Target<'_>,
    why_start: &str,
) -> anyhow::Error {
    let base = if args.chdir { release } else { target.cwd };
    let program = match launch::resolve(target.program, target.search_path, base) {
        Ok(program) => program,
        Err(e) => return e,
    };
    let output = match args
        .output
        .as_deref()
        .map(|path| crate::fsutil::open_append(path, 0o640))
        .transpose()
    {
        Ok(output) => output,
        Err(e) => return e,
    };
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
    launch::exec(launch::Plan {
        program,
        args: target.program_args,
        release,
        revision: revision.as_deref(),
        chdir: args.chdir,
        extra_env: &args.env,
        output,
        pidfile_to_write: args
            .write_pidfile
            .then_some(())
            .and(args.pidfile.as_deref()),
    })
}

fn wait(args: &WaitArgs, log: &Log) -> Result<Exit> {
    let layout = layout(&args.detect);
    snapshot::check_deploy_root(&layout.deploy_root)?;
    let mut waiting = Waiting::new(&layout, policy(&args.detect), args.timeout, "", log);
    loop {
        match waiting.look()? {
            Outcome::Ready { release } => {
                waiting.settled(&release);
                report::out(&format!("ready: {}\n", release.display()));
                return Ok(Exit::Success);
            }
            Outcome::NotReady(reason) => waiting.not_ready(reason)?,
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<Exit> {
    let layout = layout_of(&args.layout, Vec::new());
    let deploy_root = &layout.deploy_root;
    snapshot::check_deploy_root(deploy_root)?;
    let releases = std::fs::canonicalize(&layout.releases).unwrap_or(layout.releases.clone());
    let deadline = Instant::now() + args.wait;
    let seen = loop {
        let snapshot = snapshot::gather(&layout)?;
        let current_release = match &snapshot.current {
            snapshot::Current::Link(link) => Ok(link.release.clone()),
            _ => {
                match readiness::decide(&snapshot, &lock_policy(), SystemTime::now(), None).outcome
                {
                    Outcome::NotReady(reason) => Err(reason.to_string()),
                    Outcome::Ready { release } => Ok(release),
                }
            }
        };
        let worker = process::inspect(&args.pidfile, args.pidfile_match.as_deref());
        let (worker_release, started_release) = match &worker {
            Ok(w) => (
                w.cwd
                    .as_deref()
                    .map(|cwd| verify::release_of(cwd, &releases)),
                verify::started_release(w.pid),
            ),
            Err(_) => (None, None),
        };
        let extra = match &args.pidfile_match {
            Some(pattern) => {
                verify::extra_workers(&releases, pattern, worker.as_ref().ok().map(|w| w.pid))
            }
            None => Vec::new(),
        };
        let found = verify::Report {
            current_release,
            worker,
            worker_release,
            started_release,
            extra,
        };
        if found.verdict() == Verdict::OnCurrent || Instant::now() >= deadline {
            break found;
        }
        sleep(Duration::from_millis(250));
    };
    if args.json {
        let (_, host) = lock::user_and_host();
        report::out(&format!(
            "{}
",
            serde_json::to_string(&seen.json(deploy_root, &host))?
        ));
    } else {
        report::out(&format!("{}\n", seen.line()));
    }
    Ok(match seen.verdict() {
        Verdict::OnCurrent => Exit::Success,
        Verdict::NotRunning(_) => Exit::NotRunning,
        Verdict::Drift | Verdict::Extra | Verdict::CurrentBroken(_) => Exit::Failure,
    })
}

fn check(args: &CheckArgs, log: &Log) -> Result<Exit> {
    let layout = layout(&args.detect);
    let snapshot = snapshot::gather(&layout)?;
    let decision = readiness::decide(&snapshot, &policy(&args.detect), SystemTime::now(), None);
    for notice in &decision.notices {
        log.warn(&notice.to_string());
    }
    Ok(match decision.outcome {
        Outcome::Ready { release } => {
            report::out(&format!("ready: {}\n", release.display()));
            log.info(&format!("check: ready: {}", release.display()));
            Exit::Success
        }
        Outcome::NotReady(reason) => {
            report::out(&format!("not ready: {reason}\n"));
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
    report::out(&format!("{line}\n"));
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
    report::out(&format!("{line}\n"));
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
    let view = report::Status {
        layout: &layout,
        policy: &policy,
        snapshot: &snapshot,
        decision: &decision,
        worker: worker.as_ref(),
        now,
    };
    if args.json {
        report::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&view.json())?
        ));
    } else {
        report::out(&view.text());
    }
    Ok(Exit::Success)
}
