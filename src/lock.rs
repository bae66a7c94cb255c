//! The deploy lock (`<app>/deploy.lock`) and the two flocks that keep guards
//! and deploys from interleaving.
//!
//! * The launch mutex is a flock on the deploy root directory itself: `lock`
//!   (as the deploy user) and `run` (as root) can both take it without either
//!   having to create a file the other can open. `run` holds it across its
//!   final check and exec; the fd is close-on-exec, so exec releases it. Once
//!   `lock` has taken it and written the lock file, no guard can be between
//!   its last check and its start.
//! * The waiter lock (`<app>/.guarded-restart.wait`) lets only one `run` per
//!   app wait: monit re-runs its exec every cycle while the worker is missing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::duration::human;
use crate::exit::{coded, Exit};
use crate::lockfile::{clean, LockKind, LockSource, OwnLock};
use crate::readiness::{lock_expiry, Policy};
use crate::snapshot::{self, Layout, LockFile};

pub const WAITER_FILE: &str = ".guarded-restart.wait";

/// How long `lock` waits for a guard to finish its final check and exec.
pub const LAUNCH_MUTEX_WAIT: Duration = Duration::from_secs(60);

/// Held while deciding and starting; released by exec (close-on-exec) or drop.
pub struct LaunchMutex {
    _dir: File,
}

pub fn launch_mutex(deploy_root: &Path, wait: Duration) -> Result<LaunchMutex> {
    let dir = File::open(deploy_root)
        .with_context(|| format!("cannot open deploy root {}", deploy_root.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        match dir.try_lock() {
            Ok(()) => return Ok(LaunchMutex { _dir: dir }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                sleep(Duration::from_millis(10))
            }
            Err(TryLockError::WouldBlock) => {
                return Err(coded(
                    Exit::NotReady,
                    format!(
                        "the launch mutex on {} stayed held for {}",
                        deploy_root.display(),
                        human(wait)
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("cannot lock deploy root {}", deploy_root.display()))
            }
        }
    }
}

pub enum Waiter {
    /// This guard is the one that waits; the lock lives as long as the value.
    Sole(#[allow(dead_code)] File),
    /// Another guard is already waiting for this app.
    Taken,
    /// The waiter file cannot be created here (e.g. a read-only deploy root).
    Unavailable(String),
}

pub fn waiter(deploy_root: &Path) -> Waiter {
    let path = deploy_root.join(WAITER_FILE);
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .or_else(|_| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)
        });
    let file = match opened {
        Ok(file) => file,
        Err(e) => return Waiter::Unavailable(format!("{}: {e}", path.display())),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => {}
        _ => return Waiter::Unavailable(format!("{} is not a regular file", path.display())),
    }
    match file.try_lock() {
        Ok(()) => Waiter::Sole(file),
        Err(TryLockError::WouldBlock) => Waiter::Taken,
        Err(TryLockError::Error(e)) => Waiter::Unavailable(format!("{}: {e}", path.display())),
    }
}

/// `USER@HOST` of this process, for the lock's holder and metadata.
pub fn user_and_host() -> (String, String) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let user = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    (user, host)
}

/// The holder as it is stored (one clean line), so that what `lock` wrote and
/// what `unlock` is given compare equal however a deploy tool quoted them.
fn holder_or_default(holder: Option<&str>) -> String {
    holder.and_then(clean).unwrap_or_else(|| {
        let (user, host) = user_and_host();
        format!("{user}@{host}")
    })
}

fn describe(lock: &LockFile, policy: &Policy, now: SystemTime) -> String {
    let content = &lock.content;
    let mut text = format!(
        "{} ({}) held by {}",
        lock.path.display(),
        content.kind,
        content.holder.as_deref().unwrap_or("an unknown holder")
    );
    if let Some(reason) = &content.reason {
        text.push_str(&format!(" ({reason})"));
    }
    match lock_expiry(lock, policy) {
        Some(t) => text.push_str(&format!(
            ", expires in {}",
            human(t.duration_since(now).unwrap_or_default())
        )),
        None => text.push_str(", never expires"),
    }
    text
}

/// The deploy lock as `lock`/`unlock` see it.
struct Held {
    live: bool,
    /// Written by this tool for this holder: theirs to refresh or remove.
    ours: bool,
    description: String,
}

fn held(layout: &Layout, holder: &str, policy: &Policy, now: SystemTime) -> Result<Option<Held>> {
    let Some(lock) = snapshot::read_lock(&layout.deploy_lock(), LockSource::DeployRoot)? else {
        return Ok(None);
    };
    Ok(Some(Held {
        live: lock_expiry(&lock, policy).is_none_or(|t| t > now),
        ours: lock.content.kind == LockKind::GuardedRestart
            && lock.content.holder.as_deref() == Some(holder),
        description: describe(&lock, policy, now),
    }))
}

pub struct Locked {
    pub holder: String,
    pub expires: SystemTime,
    /// A lock that was there before and was replaced (expired, ours, or forced).
    pub replaced: Option<String>,
}

/// Take `<app>/deploy.lock`. Returns once the lock is on disk and no guard is
/// between its final check and its start.
pub fn lock(
    layout: &Layout,
    policy: &Policy,
    holder: Option<&str>,
    reason: Option<&str>,
    ttl: Duration,
    force: bool,
) -> Result<Locked> {
    snapshot::check_deploy_root(&layout.deploy_root)?;
    let path = layout.deploy_lock();
    let holder = holder_or_default(holder);
    let _mutex = launch_mutex(&layout.deploy_root, LAUNCH_MUTEX_WAIT)?;
    let now = SystemTime::now();
    let mut replaced = None;
    if let Some(held) = held(layout, &holder, policy, now)? {
        if held.live && !held.ours && !force {
            return Err(coded(
                Exit::NotReady,
                format!(
                    "deploy lock {}; not taking it over (use --force)",
                    held.description
                ),
            ));
        }
        if !held.ours {
            replaced = Some(held.description);
        }
    }
    let (user, host) = user_and_host();
    let expires = now + ttl;
    let content = OwnLock {
        holder: holder.clone(),
        user,
        host,
        pid: std::process::id(),
        created: now,
        expires,
        reason: reason.map(str::to_string),
    };
    crate::fsutil::write_atomic(&path, content.render().as_bytes(), 0o644)?;
    Ok(Locked {
        holder,
        expires,
        replaced,
    })
}

pub enum Unlocked {
    Removed(String),
    NoLock,
}

/// Remove `<app>/deploy.lock` if this holder holds it (or it expired, or --force).
pub fn unlock(
    layout: &Layout,
    policy: &Policy,
    holder: Option<&str>,
    force: bool,
) -> Result<Unlocked> {
    snapshot::check_deploy_root(&layout.deploy_root)?;
    let path = layout.deploy_lock();
    let holder = holder_or_default(holder);
    let Some(held) = held(layout, &holder, policy, SystemTime::now())? else {
        return Ok(Unlocked::NoLock);
    };
    if held.live && !held.ours && !force {
        return Err(coded(
            Exit::NotReady,
            format!(
                "deploy lock {}, not by {holder}; leaving it (use --force)",
                held.description
            ),
        ));
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Unlocked::Removed(held.description)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Unlocked::NoLock),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
