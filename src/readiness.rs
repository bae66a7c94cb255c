//! The rules: a pure function from a [`Snapshot`] to ready or not, and why.
//!
//! No clock and no filesystem in here: `now` and what the caller has watched
//! come in as arguments, so every rule is unit-tested with a fixed time.

use std::fmt;
use std::mem::discriminant;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::duration::human;
use crate::lockfile::{Expiry, LockKind};
use crate::snapshot::{ArtifactKind, Current, CurrentLink, LockFile, Snapshot};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How long `current` must stay unchanged before a start is safe.
    pub settle: Duration,
    /// A newer release or deploy artifact older than this is abandoned.
    pub build_timeout: Duration,
    /// Locks that carry no expiry expire this long after their mtime.
    pub max_lock_age: Duration,
}

/// Why a start is not safe now. `Display` is the one line ops read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Locked {
        path: PathBuf,
        kind: LockKind,
        holder: Option<String>,
        reason: Option<String>,
        /// None: never expires.
        expires_in: Option<Duration>,
    },
    DeployInProgress {
        path: PathBuf,
        kind: ArtifactKind,
        age: Duration,
    },
    CurrentMissing {
        path: PathBuf,
    },
    CurrentNotSymlink {
        path: PathBuf,
    },
    CurrentDangling {
        path: PathBuf,
        target: PathBuf,
    },
    CurrentLoop {
        path: PathBuf,
    },
    CurrentNotDirectory {
        path: PathBuf,
        target: PathBuf,
    },
    CurrentUnresolvable {
        path: PathBuf,
        error: String,
    },
    NewerRelease {
        release: PathBuf,
        current_release: PathBuf,
        age: Duration,
        build_timeout: Duration,
    },
    NotSettled {
        release: PathBuf,
        changed_ago: Duration,
        remaining: Duration,
    },
}

impl Reason {
    fn subject(&self) -> &Path {
        match self {
            Reason::Locked { path, .. }
            | Reason::DeployInProgress { path, .. }
            | Reason::CurrentMissing { path }
            | Reason::CurrentNotSymlink { path }
            | Reason::CurrentDangling { path, .. }
            | Reason::CurrentLoop { path }
            | Reason::CurrentNotDirectory { path, .. }
            | Reason::CurrentUnresolvable { path, .. } => path,
            Reason::NewerRelease { release, .. } | Reason::NotSettled { release, .. } => release,
        }
    }

    /// Same rule about the same path: the log says a reason once, not every poll.
    pub fn same_cause(&self, other: &Reason) -> bool {
        discriminant(self) == discriminant(other) && self.subject() == other.subject()
    }
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Locked {
                path,
                kind,
                holder,
                reason,
                expires_in,
            } => {
                write!(
                    f,
                    "deploy locked: {} ({kind}) held by {}",
                    path.display(),
                    holder.as_deref().unwrap_or("an unknown holder")
                )?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                match expires_in {
                    Some(d) => write!(f, ", expires in {}", human(*d)),
                    None => write!(f, ", never expires: remove it by hand"),
                }
            }
            Reason::DeployInProgress { path, kind, age } => write!(
                f,
                "deploy in progress: {} exists ({kind}), modified {} ago",
                path.display(),
                human(*age)
            ),
            Reason::CurrentMissing { path } => write!(f, "current {} does not exist", path.display()),
            Reason::CurrentNotSymlink { path } => {
                write!(f, "current {} is not a symlink", path.display())
            }
            Reason::CurrentDangling { path, target } => write!(
                f,
                "current {} points to {}, which does not exist",
                path.display(),
                target.display()
            ),
            Reason::CurrentLoop { path } => write!(f, "current {} is a symlink loop", path.display()),
            Reason::CurrentNotDirectory { path, target } => write!(
                f,
                "current {} points to {}, which is not a directory",
                path.display(),
                target.display()
            ),
            Reason::CurrentUnresolvable { path, error } => {
                write!(f, "current {} cannot be resolved: {error}", path.display())
            }
            Reason::NewerRelease {
                release,
                current_release,
                age,
                build_timeout,
            } => write!(
                f,
                "release {} is newer than current's {} and was modified {} ago: a deploy is building it (abandoned after {})",
                name(release),
                name(current_release),
                human(*age),
                human(*build_timeout)
            ),
            Reason::NotSettled {
                release,
                changed_ago,
                remaining,
            } => write!(
                f,
                "current changed {} ago (now {}); waiting {} more for it to settle",
                human(*changed_ago),
                name(release),
                human(*remaining)
            ),
        }
    }
}

/// Something the rules passed over that ops must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    ExpiredLock {
        path: PathBuf,
        kind: LockKind,
        holder: Option<String>,
        expired_ago: Duration,
    },
    LockProblem {
        path: PathBuf,
        problem: String,
    },
    StaleArtifact {
        path: PathBuf,
        kind: ArtifactKind,
        age: Duration,
    },
    AbandonedRelease {
        release: PathBuf,
        age: Duration,
    },
    BadRelease {
        release: PathBuf,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::ExpiredLock {
                path,
                kind,
                holder,
                expired_ago,
            } => write!(
                f,
                "IGNORING EXPIRED DEPLOY LOCK {} ({kind}) held by {}, expired {} ago: a deploy died or forgot to unlock",
                path.display(),
                holder.as_deref().unwrap_or("an unknown holder"),
                human(*expired_ago)
            ),
            Notice::LockProblem { path, problem } => write!(
                f,
                "lock {} is not fully readable ({problem}); honouring it until --max-lock-age after its mtime",
                path.display()
            ),
            Notice::StaleArtifact { path, kind, age } => write!(
                f,
                "ignoring stale deploy artifact {} ({kind}), untouched for {}: older than --build-timeout",
                path.display(),
                human(*age)
            ),
            Notice::AbandonedRelease { release, age } => write!(
                f,
                "ignoring abandoned release {}: newer than current's but untouched for {}",
                release.display(),
                human(*age)
            ),
            Notice::BadRelease { release } => write!(
                f,
                "ignoring release {}: marked BAD_RELEASE",
                release.display()
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready { release: PathBuf },
    NotReady(Reason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub notices: Vec<Notice>,
}

fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

/// When a lock stops counting; None for never.
pub fn lock_expiry(lock: &LockFile, policy: &Policy) -> Option<SystemTime> {
    match lock.content.expiry {
        Expiry::At(t) => Some(t),
        Expiry::Never => None,
        Expiry::AfterMaxAge => lock.modified.checked_add(policy.max_lock_age),
    }
}

/// Decide whether starting the worker is safe now.
///
/// `watched_since` is when the caller (a waiting `run`) first saw `current`
/// as it is now; it lets `current` settle by observation even when its ctime
/// lies in the future (clock stepped back). A one-shot `check` passes None.
pub fn decide(
    snapshot: &Snapshot,
    policy: &Policy,
    now: SystemTime,
    watched_since: Option<SystemTime>,
) -> Decision {
    let mut notices = Vec::new();
    let mut reasons = Vec::new();

    // Rule 1: deploy locks that have not expired.
    for lock in &snapshot.locks {
        let content = &lock.content;
        if let Some(problem) = &content.problem {
            notices.push(Notice::LockProblem {
                path: lock.path.clone(),
                problem: problem.clone(),
            });
        }
        match lock_expiry(lock, policy) {
            Some(expires) if expires <= now => notices.push(Notice::ExpiredLock {
                path: lock.path.clone(),
                kind: content.kind,
                holder: content.holder.clone(),
                expired_ago: age(now, expires),
            }),
            expires => reasons.push(Reason::Locked {
                path: lock.path.clone(),
                kind: content.kind,
                holder: content.holder.clone(),
                reason: content.reason.clone(),
                expires_in: expires.map(|t| t.duration_since(now).unwrap_or_default()),
            }),
        }
    }

    // Rule 2: what a deploy tool leaves only while it is mid-deploy.
    for artifact in &snapshot.artifacts {
        let artifact_age = age(now, artifact.modified);
        if artifact_age >= policy.build_timeout {
            notices.push(Notice::StaleArtifact {
                path: artifact.path.clone(),
                kind: artifact.kind,
                age: artifact_age,
            });
        } else {
            reasons.push(Reason::DeployInProgress {
                path: artifact.path.clone(),
                kind: artifact.kind,
                age: artifact_age,
            });
        }
    }

    // Rule 3: current must be a symlink to a directory; rules 4 and 5 need it.
    let link = match current_link(snapshot) {
        Ok(link) => link,
        Err(reason) => {
            reasons.push(reason);
            return Decision {
                outcome: Outcome::NotReady(reasons.swap_remove(0)),
                notices,
            };
        }
    };

    {
        // Rule 4: a release newer than current's (server mtimes, never names) is
        // being built, unless it has been left alone longer than a build takes.
        let mut newer: Vec<_> = snapshot
            .releases
            .iter()
            .filter(|r| r.id != link.release_id && r.modified > link.release_modified)
            .collect();
        newer.sort_by_key(|r| std::cmp::Reverse(r.modified));
        for release in newer {
            let release_age = age(now, release.modified);
            if release.marked_bad {
                notices.push(Notice::BadRelease {
                    release: release.path.clone(),
                });
            } else if release_age >= policy.build_timeout {
                notices.push(Notice::AbandonedRelease {
                    release: release.path.clone(),
                    age: release_age,
                });
            } else {
                reasons.push(Reason::NewerRelease {
                    release: release.path.clone(),
                    current_release: link.release.clone(),
                    age: release_age,
                    build_timeout: policy.build_timeout,
                });
            }
        }

        // Rule 5: current must have stayed as it is for --settle.
        let by_ctime = age(now, link.changed);
        let by_watching = watched_since.map_or(Duration::ZERO, |t| age(now, t));
        let settled_for = by_ctime.max(by_watching);
        if settled_for < policy.settle {
            reasons.push(Reason::NotSettled {
                release: link.release.clone(),
                changed_ago: settled_for,
                remaining: policy.settle - settled_for,
            });
        }
    }

    let outcome = match reasons.into_iter().next() {
        Some(reason) => Outcome::NotReady(reason),
        None => Outcome::Ready {
            release: link.release.clone(),
        },
    };
    Decision { outcome, notices }
}

fn current_link(snapshot: &Snapshot) -> Result<&CurrentLink, Reason> {
    let path = snapshot.current_path.clone();
    Err(match &snapshot.current {
        Current::Link(link) => return Ok(link),
        Current::Missing => Reason::CurrentMissing { path },
        Current::NotSymlink => Reason::CurrentNotSymlink { path },
        Current::Dangling { target } => Reason::CurrentDangling {
            path,
            target: target.clone(),
        },
        Current::Loop => Reason::CurrentLoop { path },
        Current::NotDirectory { target } => Reason::CurrentNotDirectory {
            path,
            target: target.clone(),
        },
        Current::Unresolvable { error } => Reason::CurrentUnresolvable {
            path,
            error: error.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::{Expiry, LockContent, LockKind};
    use crate::snapshot::{Artifact, CurrentLink, FileId, LinkIdentity, LockFile, Release};
    use std::time::UNIX_EPOCH;

    const NOW: u64 = 1_796_398_260;

    fn at(secs_before_now: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW - secs_before_now)
    }

    fn now() -> SystemTime {
        at(0)
    }

    fn policy() -> Policy {
        Policy {
            settle: Duration::from_secs(5),
            build_timeout: Duration::from_secs(1800),
            max_lock_age: Duration::from_secs(3600),
        }
    }

    fn release(name: &str, ino: u64, modified_ago: u64) -> Release {
        Release {
            path: PathBuf::from("/app/releases").join(name),
            id: FileId { dev: 1, ino },
            modified: at(modified_ago),
            marked_bad: false,
        }
    }

    /// current -> releases/r1 (modified 2h ago), flipped 1h ago; r0 older.
    fn settled() -> Snapshot {
        Snapshot {
            current_path: PathBuf::from("/app/current"),
            current: Current::Link(CurrentLink {
                target: PathBuf::from("/app/releases/r1"),
                release: PathBuf::from("/app/releases/r1"),
                release_id: FileId { dev: 1, ino: 11 },
                release_modified: at(7200),
                changed: at(3600),
                identity: LinkIdentity {
                    ino: 99,
                    ctime: (0, 0),
                    target: PathBuf::from("/app/releases/r1"),
                },
            }),
            locks: Vec::new(),
            artifacts: Vec::new(),
            releases: vec![release("r0", 10, 9000), release("r1", 11, 7200)],
            release_count: 2,
            newest_release: Some(release("r1", 11, 7200)),
            releases_missing: false,
        }
    }

    fn lock(expiry: Expiry, modified_ago: u64) -> LockFile {
        LockFile {
            path: PathBuf::from("/app/deploy.lock"),
            content: LockContent {
                kind: LockKind::GuardedRestart,
                holder: Some("alice".into()),
                reason: Some("deploy".into()),
                created: None,
                expiry,
                problem: None,
            },
            modified: at(modified_ago),
        }
    }

    fn decide_now(snapshot: &Snapshot) -> Decision {
        decide(snapshot, &policy(), now(), None)
    }

    fn reason(snapshot: &Snapshot) -> Reason {
        match decide_now(snapshot).outcome {
            Outcome::NotReady(reason) => reason,
            Outcome::Ready { release } => panic!("unexpectedly ready on {}", release.display()),
        }
    }

    #[test]
    fn settled_current_with_nothing_in_flight_is_ready() {
        let decision = decide_now(&settled());
        assert_eq!(
            decision.outcome,
            Outcome::Ready {
                release: PathBuf::from("/app/releases/r1")
            }
        );
        assert!(decision.notices.is_empty());
    }

    #[test]
    fn live_own_lock_blocks_and_names_its_holder() {
        let mut snapshot = settled();
        snapshot
            .locks
            .push(lock(Expiry::At(now() + Duration::from_secs(600)), 10));
        let reason = reason(&snapshot);
        assert!(
            matches!(&reason, Reason::Locked { expires_in: Some(d), .. } if *d == Duration::from_secs(600))
        );
        let line = reason.to_string();
        assert!(
            line.contains("alice") && line.contains("expires in 10m"),
            "{line}"
        );
    }

    #[test]
    fn expired_own_lock_is_ignored_with_a_loud_notice() {
        let mut snapshot = settled();
        snapshot.locks.push(lock(Expiry::At(at(60)), 900));
        let decision = decide_now(&snapshot);
        assert!(matches!(decision.outcome, Outcome::Ready { .. }));
        assert!(
            matches!(&decision.notices[..], [Notice::ExpiredLock { holder: Some(h), .. }] if h == "alice")
        );
        assert!(decision.notices[0].to_string().contains("EXPIRED"));
    }

    #[test]
    fn lock_without_expiry_holds_until_max_lock_age_after_mtime() {
        let mut snapshot = settled();
        snapshot.locks.push(lock(Expiry::AfterMaxAge, 3599));
        assert!(matches!(reason(&snapshot), Reason::Locked { .. }));
        snapshot.locks[0].modified = at(3600);
        assert!(matches!(
            decide_now(&snapshot).outcome,
            Outcome::Ready { .. }
        ));
    }

    #[test]
    fn lock_that_never_expires_blocks_forever() {
        let mut snapshot = settled();
        snapshot.locks.push(lock(Expiry::Never, 86_400 * 30));
        assert!(matches!(
            reason(&snapshot),
            Reason::Locked {
                expires_in: None,
                ..
            }
        ));
    }

    #[test]
    fn lock_with_unreadable_content_is_honoured_and_reported() {
        let mut snapshot = settled();
        let mut garbage = lock(Expiry::AfterMaxAge, 5);
        garbage.content.problem = Some("binary content".into());
        snapshot.locks.push(garbage);
        let decision = decide_now(&snapshot);
        assert!(matches!(
            decision.outcome,
            Outcome::NotReady(Reason::Locked { .. })
        ));
        assert!(matches!(
            &decision.notices[..],
            [Notice::LockProblem { .. }]
        ));
    }

    #[test]
    fn fresh_deploy_artifact_blocks() {
        let mut snapshot = settled();
        snapshot.artifacts.push(Artifact {
            path: PathBuf::from("/app/releases/current"),
            kind: ArtifactKind::CapistranoFlip,
            modified: at(1),
        });
        let reason = reason(&snapshot);
        assert!(matches!(
            reason,
            Reason::DeployInProgress {
                kind: ArtifactKind::CapistranoFlip,
                ..
            }
        ));
        assert!(reason.to_string().contains("flipping current"));
    }

    #[test]
    fn artifact_older_than_build_timeout_is_stale_and_ignored() {
        let mut snapshot = settled();
        snapshot.artifacts.push(Artifact {
            path: PathBuf::from("/app/release"),
            kind: ArtifactKind::DeployerRelease,
            modified: at(1800),
        });
        let decision = decide_now(&snapshot);
        assert!(matches!(decision.outcome, Outcome::Ready { .. }));
        assert!(matches!(
            &decision.notices[..],
            [Notice::StaleArtifact { .. }]
        ));
    }

    #[test]
    fn every_broken_current_is_not_ready() {
        let cases = [
            (Current::Missing, "does not exist"),
            (Current::NotSymlink, "is not a symlink"),
            (
                Current::Dangling {
                    target: "/app/releases/gone".into(),
                },
                "which does not exist",
            ),
            (Current::Loop, "symlink loop"),
            (
                Current::NotDirectory {
                    target: "/app/file".into(),
                },
                "not a directory",
            ),
            (
                Current::Unresolvable {
                    error: "Permission denied".into(),
                },
                "Permission denied",
            ),
        ];
        for (current, words) in cases {
            let mut snapshot = settled();
            snapshot.current = current;
            let line = reason(&snapshot).to_string();
            assert!(
                line.contains(words) && line.contains("/app/current"),
                "{line}"
            );
        }
    }

    #[test]
    fn newer_release_younger_than_build_timeout_means_a_deploy_is_building() {
        let mut snapshot = settled();
        snapshot.releases.push(release("r2", 12, 120));
        let reason = reason(&snapshot);
        assert!(matches!(&reason, Reason::NewerRelease { release, .. } if release.ends_with("r2")));
        assert!(reason.to_string().contains("r2 is newer than current's r1"));
    }

    #[test]
    fn abandoned_release_older_than_build_timeout_is_ignored() {
        let mut snapshot = settled();
        snapshot.releases.push(release("r2", 12, 1800));
        let decision = decide_now(&snapshot);
        assert!(matches!(decision.outcome, Outcome::Ready { .. }));
        assert!(matches!(
            &decision.notices[..],
            [Notice::AbandonedRelease { .. }]
        ));
    }

    #[test]
    fn release_marked_bad_is_ignored_at_once() {
        let mut snapshot = settled();
        let mut bad = release("r2", 12, 10);
        bad.marked_bad = true;
        snapshot.releases.push(bad);
        let decision = decide_now(&snapshot);
        assert!(matches!(decision.outcome, Outcome::Ready { .. }));
        assert!(matches!(&decision.notices[..], [Notice::BadRelease { .. }]));
    }

    #[test]
    fn older_releases_and_names_never_matter() {
        let mut snapshot = settled();
        // A name that sorts after current's but an older mtime: not being built.
        snapshot.releases.push(release("99999999999999", 13, 8000));
        assert!(matches!(
            decide_now(&snapshot).outcome,
            Outcome::Ready { .. }
        ));
    }

    #[test]
    fn current_changed_within_settle_is_not_settled() {
        let mut snapshot = settled();
        let Current::Link(link) = &mut snapshot.current else {
            unreachable!()
        };
        link.changed = at(2);
        let reason = reason(&snapshot);
        assert!(
            matches!(reason, Reason::NotSettled { remaining, .. } if remaining == Duration::from_secs(3))
        );
    }

    #[test]
    fn ctime_in_the_future_settles_by_watching() {
        let mut snapshot = settled();
        let Current::Link(link) = &mut snapshot.current else {
            unreachable!()
        };
        link.changed = now() + Duration::from_secs(3600);
        assert!(matches!(reason(&snapshot), Reason::NotSettled { .. }));
        let watched = decide(&snapshot, &policy(), now(), Some(at(5)));
        assert!(matches!(watched.outcome, Outcome::Ready { .. }));
        let briefly = decide(&snapshot, &policy(), now(), Some(at(4)));
        assert!(matches!(
            briefly.outcome,
            Outcome::NotReady(Reason::NotSettled { .. })
        ));
    }

    #[test]
    fn rules_report_in_order_lock_first() {
        let mut snapshot = settled();
        snapshot.releases.push(release("r2", 12, 10));
        snapshot.locks.push(lock(Expiry::Never, 10));
        snapshot.current = Current::Missing;
        assert!(matches!(reason(&snapshot), Reason::Locked { .. }));
    }

    #[test]
    fn same_cause_ignores_the_ticking_numbers() {
        let a = Reason::NotSettled {
            release: "/app/releases/r1".into(),
            changed_ago: Duration::from_secs(1),
            remaining: Duration::from_secs(4),
        };
        let b = Reason::NotSettled {
            release: "/app/releases/r1".into(),
            changed_ago: Duration::from_secs(2),
            remaining: Duration::from_secs(3),
        };
        let c = Reason::NotSettled {
            release: "/app/releases/r2".into(),
            changed_ago: Duration::from_secs(2),
            remaining: Duration::from_secs(3),
        };
        assert!(a.same_cause(&b));
        assert!(!a.same_cause(&c));
    }
}
