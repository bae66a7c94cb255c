//! The imperative shell around the pure decision: gather, decide, log what
//! changed, sleep, until ready or the deadline. Shared by `run` and `wait`.

use std::collections::HashSet;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::duration::human;
use crate::exit::{coded, Exit};
use crate::readiness::{self, Notice, Outcome, Policy, Reason};
use crate::report::Log;
use crate::snapshot::{self, Current, Layout, LinkIdentity};

/// How often a waiting guard looks again: well under a second so the start
/// follows the settle closely, and cheap (a handful of stats and one readdir).
const POLL: Duration = Duration::from_millis(200);

pub struct Waiting<'a> {
    layout: &'a Layout,
    policy: Policy,
    log: &'a Log,
    timeout: Duration,
    /// Said after "gave up after DUR" (run: ", started nothing").
    giving_up: &'static str,
    started: Instant,
    /// `current` as first seen, and when: it settles by watching too.
    watch: Option<(LinkIdentity, SystemTime)>,
    /// Notices already logged by this process: each once per guard.
    said: HashSet<String>,
    last_reason: Option<Reason>,
}

impl<'a> Waiting<'a> {
    pub fn new(
        layout: &'a Layout,
        policy: Policy,
        timeout: Duration,
        giving_up: &'static str,
        log: &'a Log,
    ) -> Waiting<'a> {
        Waiting {
            layout,
            policy,
            log,
            timeout,
            giving_up,
            started: Instant::now(),
            watch: None,
            said: HashSet::new(),
            last_reason: None,
        }
    }

    /// Look once: gather the disk and decide.
    pub fn look(&mut self) -> Result<Outcome> {
        let snapshot = snapshot::gather(self.layout)?;
        let now = SystemTime::now();
        let watched_since = match &snapshot.current {
            Current::Link(link) => match &self.watch {
                Some((identity, since)) if *identity == link.identity => Some(*since),
                _ => {
                    self.watch = Some((link.identity.clone(), now));
                    Some(now)
                }
            },
            _ => {
                self.watch = None;
                None
            }
        };
        let decision = readiness::decide(&snapshot, &self.policy, now, watched_since);
        for notice in &decision.notices {
            if self.said.insert(notice_key(notice)) {
                self.log.warn(&notice.to_string());
            }
        }
        Ok(decision.outcome)
    }

    /// Log a new reason, then sleep until it is worth looking again; an error
    /// (exit 75) once the deadline has passed.
    pub fn not_ready(&mut self, reason: Reason) -> Result<()> {
        if !self
            .last_reason
            .as_ref()
            .is_some_and(|last| last.same_cause(&reason))
        {
            self.log.info(&format!("waiting: {reason}"));
        }
        let left = (self.started + self.timeout).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(coded(
                Exit::NotReady,
                format!(
                    "gave up after {}{}: {reason}",
                    human(self.timeout),
                    self.giving_up
                ),
            ));
        }
        let nap = match &reason {
            Reason::NotSettled { remaining, .. } => {
                (*remaining).clamp(Duration::from_millis(10), POLL)
            }
            _ => POLL,
        };
        self.last_reason = Some(reason);
        sleep(nap.min(left));
        Ok(())
    }

    /// Say that the wait is over, if there was one.
    pub fn settled(&self, release: &Path) {
        if self.last_reason.is_some() {
            self.log.info(&format!(
                "settled on {} after waiting {}",
                release.display(),
                human(self.started.elapsed())
            ));
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
