//! Deploy lock files: what each deploy tool writes, read without trusting it.
//!
//! Parsing is pure (bytes in, [`LockContent`] out) so that garbage, truncated
//! or hostile lock files are unit-tested without a disk. The rule for anything
//! unrecognised is the safe one: a file that exists is a lock; when its expiry
//! cannot be read it expires `--max-lock-age` after its mtime.

use std::fmt;
use std::time::SystemTime;

use crate::timefmt;

/// The first line of a lock written by `guarded-restart lock`.
pub const OWN_MAGIC: &str = "# guarded-restart deploy lock";

/// At most this much of a lock file is read; a larger one is still a lock.
pub const READ_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `<app>/deploy.lock` written by `guarded-restart lock`.
    GuardedRestart,
    /// `<app>/deploy.lock`, empty: Mina holds it for the whole deploy.
    Mina,
    /// `<app>/.dep/deploy.lock`: Deployer writes the deploying user's name.
    Deployer,
    /// `<app>/shared/deploy-lock.yml`: the capistrano-deploy-lock gem.
    CapistranoDeployLock,
    /// A `--lock PATH`, or a `deploy.lock` this tool does not recognise.
    Other,
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockKind::GuardedRestart => "guarded-restart",
            LockKind::Mina => "Mina",
            LockKind::Deployer => "Deployer",
            LockKind::CapistranoDeployLock => "capistrano-deploy-lock",
            LockKind::Other => "lock file",
        })
    }
}

/// Where a lock was found, which decides how its bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSource {
    /// `<app>/deploy.lock`: ours or Mina's.
    DeployRoot,
    /// `<app>/.dep/deploy.lock`
    Deployer,
    /// `<app>/shared/deploy-lock.yml`
    CapistranoDeployLock,
    /// `--lock PATH`
    Extra,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    At(SystemTime),
    /// capistrano-deploy-lock's `:expire_at: false`: a person locked it on purpose.
    Never,
    /// The file says nothing usable: expires `--max-lock-age` after its mtime.
    AfterMaxAge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockContent {
    pub kind: LockKind,
    pub holder: Option<String>,
    pub reason: Option<String>,
    pub created: Option<SystemTime>,
    pub expiry: Expiry,
    /// Why the content was not fully understood, for the log.
    pub problem: Option<String>,
}

impl LockContent {
    fn plain(kind: LockKind) -> LockContent {
        LockContent {
            kind,
            holder: None,
            reason: None,
            created: None,
            expiry: Expiry::AfterMaxAge,
            problem: None,
        }
    }
}

/// Text from a lock file made safe for one log line: no control characters, bounded length.
pub fn clean(text: &str) -> Option<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(160)
        .collect();
    let cleaned = cleaned.trim().to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

fn first_line(text: &str) -> Option<String> {
    text.lines().find(|l| !l.trim().is_empty()).and_then(clean)
}

/// Read what a lock file says. `bytes` is at most [`READ_LIMIT`] of it.
pub fn parse(source: LockSource, bytes: &[u8]) -> LockContent {
    let text = String::from_utf8_lossy(bytes);
    if text.starts_with(OWN_MAGIC) {
        return parse_own(&text);
    }
    match source {
        LockSource::DeployRoot if text.trim().is_empty() => LockContent::plain(LockKind::Mina),
        LockSource::Deployer => LockContent {
            holder: first_line(&text),
            ..LockContent::plain(LockKind::Deployer)
        },
        LockSource::CapistranoDeployLock => parse_capistrano_deploy_lock(&text),
        LockSource::DeployRoot | LockSource::Extra => {
            let mut content = LockContent::plain(LockKind::Other);
            if !text.trim().is_empty() {
                if bytes.contains(&0) {
                    content.problem = Some("binary content".to_string());
                } else {
                    content.holder = first_line(&text);
                }
            }
            content
        }
    }
}

fn parse_own(text: &str) -> LockContent {
    let mut content = LockContent::plain(LockKind::GuardedRestart);
    let mut expires_seen = false;
    for line in text.lines().skip(1) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "holder" => content.holder = clean(value),
            "reason" => content.reason = clean(value),
            "created" => content.created = timefmt::parse(value),
            "expires" => {
                expires_seen = true;
                match timefmt::parse(value) {
                    Some(t) => content.expiry = Expiry::At(t),
                    None => {
                        content.problem = Some(format!(
                            "unreadable expires {:?}",
                            clean(value).unwrap_or_default()
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    if !expires_seen {
        content.problem = Some("no expires line (truncated?)".to_string());
    }
    content
}

/// Ruby's `Hash#to_yaml` with symbol keys, as capistrano-deploy-lock writes it:
/// `:username: alice`, `:expire_at: 2026-12-04 15:49:12.3 +00:00` or `false`.
fn parse_capistrano_deploy_lock(text: &str) -> LockContent {
    let mut content = LockContent::plain(LockKind::CapistranoDeployLock);
    let unquote = |v: &str| -> String {
        let v = v.trim();
        for q in ['\'', '"'] {
            if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
                return v[1..v.len() - 1].to_string();
            }
        }
        v.to_string()
    };
    let mut expiry_seen = false;
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix(':') else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let value = unquote(value);
        match key {
            "username" => content.holder = clean(&value),
            "message" => content.reason = clean(&value),
            "created_at" => content.created = timefmt::parse(&value),
            "expire_at" => {
                expiry_seen = true;
                content.expiry = match value.as_str() {
                    // nil and false both mean "until someone removes it" in the gem.
                    "false" | "" | "~" | "null" => Expiry::Never,
                    v => match timefmt::parse(v) {
                        Some(t) => Expiry::At(t),
                        None => {
                            content.problem = Some(format!(
                                "unreadable :expire_at: {:?}",
                                clean(v).unwrap_or_default()
                            ));
                            Expiry::AfterMaxAge
                        }
                    },
                };
            }
            _ => {}
        }
    }
    if !expiry_seen && content.problem.is_none() {
        content.problem = Some("no :expire_at: key".to_string());
    }
    content
}

/// What `guarded-restart lock` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLock {
    pub holder: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub created: SystemTime,
    pub expires: SystemTime,
    pub reason: Option<String>,
}

impl OwnLock {
    pub fn render(&self) -> String {
        let one = |s: &str| clean(s).unwrap_or_else(|| "-".to_string());
        let mut out = format!(
            "{OWN_MAGIC}\nholder: {}\nuser: {}\nhost: {}\npid: {}\ncreated: {}\nexpires: {}\n",
            one(&self.holder),
            one(&self.user),
            one(&self.host),
            self.pid,
            timefmt::rfc3339(self.created),
            timefmt::rfc3339(self.expires),
        );
        if let Some(reason) = self.reason.as_deref().and_then(clean) {
            out.push_str(&format!("reason: {reason}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn own() -> OwnLock {
        OwnLock {
            holder: "alice".into(),
            user: "deploy".into(),
            host: "web1".into(),
            pid: 42,
            created: at(1_796_398_260),
            expires: at(1_796_400_060),
            reason: Some("cap production deploy".into()),
        }
    }

    #[test]
    fn own_lock_round_trips() {
        let content = parse(LockSource::DeployRoot, own().render().as_bytes());
        assert_eq!(content.kind, LockKind::GuardedRestart);
        assert_eq!(content.holder.as_deref(), Some("alice"));
        assert_eq!(content.reason.as_deref(), Some("cap production deploy"));
        assert_eq!(content.created, Some(at(1_796_398_260)));
        assert_eq!(content.expiry, Expiry::At(at(1_796_400_060)));
        assert_eq!(content.problem, None);
    }

    #[test]
    fn newlines_in_holder_or_reason_cannot_forge_lines() {
        let mut lock = own();
        lock.holder = "eve\nexpires: 2999-01-01T00:00:00Z".into();
        lock.reason = Some("x\r\nexpires: 2999-01-01T00:00:00Z".into());
        let content = parse(LockSource::DeployRoot, lock.render().as_bytes());
        assert_eq!(content.expiry, Expiry::At(at(1_796_400_060)));
    }

    #[test]
    fn truncated_own_lock_expires_after_max_age() {
        let text = own().render();
        let cut = &text[..text.find("expires").unwrap()];
        let content = parse(LockSource::DeployRoot, cut.as_bytes());
        assert_eq!(content.kind, LockKind::GuardedRestart);
        assert_eq!(content.expiry, Expiry::AfterMaxAge);
        assert!(content.problem.unwrap().contains("truncated"));
    }

    #[test]
    fn empty_deploy_lock_is_minas() {
        assert_eq!(parse(LockSource::DeployRoot, b"").kind, LockKind::Mina);
        assert_eq!(
            parse(LockSource::DeployRoot, b"\n").expiry,
            Expiry::AfterMaxAge
        );
    }

    #[test]
    fn deployer_lock_names_its_user() {
        let content = parse(LockSource::Deployer, b"bob\n");
        assert_eq!(content.kind, LockKind::Deployer);
        assert_eq!(content.holder.as_deref(), Some("bob"));
        assert_eq!(content.expiry, Expiry::AfterMaxAge);
    }

    #[test]
    fn capistrano_deploy_lock_expiry_is_honoured() {
        let yaml = "---\n:created_at: 2026-12-04 15:34:12.304278149 Z\n:expire_at: 2026-12-04 15:49:12.304280145 +00:00\n:username: carol\n:message: 'Deploying master: \"x\"'\n:custom: false\n";
        let content = parse(LockSource::CapistranoDeployLock, yaml.as_bytes());
        assert_eq!(content.kind, LockKind::CapistranoDeployLock);
        assert_eq!(content.holder.as_deref(), Some("carol"));
        assert_eq!(content.reason.as_deref(), Some("Deploying master: \"x\""));
        let Expiry::At(t) = content.expiry else {
            panic!("{:?}", content.expiry)
        };
        assert_eq!(timefmt::rfc3339(t), "2026-12-04T15:49:12Z");
    }

    #[test]
    fn capistrano_deploy_lock_false_never_expires() {
        let content = parse(
            LockSource::CapistranoDeployLock,
            b"---\n:expire_at: false\n:username: dave\n",
        );
        assert_eq!(content.expiry, Expiry::Never);
        let content = parse(LockSource::CapistranoDeployLock, b"---\n:expire_at:\n");
        assert_eq!(content.expiry, Expiry::Never);
    }

    #[test]
    fn garbage_and_binary_locks_are_still_locks() {
        let content = parse(LockSource::Extra, b"\x00\x01\x02garbage");
        assert_eq!(content.kind, LockKind::Other);
        assert_eq!(content.expiry, Expiry::AfterMaxAge);
        assert_eq!(content.holder, None);
        let content = parse(LockSource::CapistranoDeployLock, b"{{{ not yaml");
        assert_eq!(content.expiry, Expiry::AfterMaxAge);
        let content = parse(LockSource::CapistranoDeployLock, b":expire_at: tomorrow\n");
        assert_eq!(content.expiry, Expiry::AfterMaxAge);
        assert!(content.problem.unwrap().contains("tomorrow"));
    }

    #[test]
    fn clean_folds_control_characters_and_bounds_length() {
        assert_eq!(clean("a\x1b[31mb\n"), Some("a [31mb".to_string()));
        assert_eq!(clean(&"x".repeat(1000)).unwrap().len(), 160);
        assert_eq!(clean(" \n "), None);
    }
}
