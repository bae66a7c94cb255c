//! Gather what is on disk into a plain [`Snapshot`]; no decisions here.
//!
//! Everything the readiness rules look at is read in one pass, so the rules in
//! `readiness` are a pure function and the binary tests prove this gathering.

use std::ffi::{CStr, OsStr};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::exit::{coded, Exit};
use crate::lockfile::{self, LockContent, LockSource};

/// Where a deploy tool keeps things for one app.
#[derive(Debug, Clone)]
pub struct Layout {
    pub deploy_root: PathBuf,
    pub current: PathBuf,
    pub releases: PathBuf,
    pub extra_locks: Vec<PathBuf>,
}

impl Layout {
    pub fn new(
        deploy_root: PathBuf,
        current: Option<PathBuf>,
        releases: Option<PathBuf>,
        extra_locks: Vec<PathBuf>,
    ) -> Layout {
        Layout {
            current: current.unwrap_or_else(|| deploy_root.join("current")),
            releases: releases.unwrap_or_else(|| deploy_root.join("releases")),
            extra_locks,
            deploy_root,
        }
    }

    /// Our own lock, and Mina's.
    pub fn deploy_lock(&self) -> PathBuf {
        self.deploy_root.join("deploy.lock")
    }

    /// Every lock file the rules read, with how to read it.
    pub fn lock_paths(&self) -> Vec<(PathBuf, LockSource)> {
        let mut paths = vec![
            (self.deploy_lock(), LockSource::DeployRoot),
            (
                self.deploy_root.join(".dep").join("deploy.lock"),
                LockSource::Deployer,
            ),
            (
                self.deploy_root.join("shared").join("deploy-lock.yml"),
                LockSource::CapistranoDeployLock,
            ),
        ];
        paths.extend(
            self.extra_locks
                .iter()
                .map(|p| (p.clone(), LockSource::Extra)),
        );
        paths
    }
}

/// A device and inode: how two paths are known to be the same directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LockFile {
    pub path: PathBuf,
    pub content: LockContent,
    pub modified: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// `<app>/release`: Deployer's symlink to the release it is building.
    DeployerRelease,
    /// `<releases>/current`: Capistrano between `ln -s` and `mv`.
    CapistranoFlip,
    /// `<app>/tmp/build-*`: Mina's build directory.
    MinaBuild,
    /// `<app>/current.DEPLOY_UNFINISHED`: Ansible deploy_helper's new link.
    AnsibleLink,
    /// `<newest release>/DEPLOY_UNFINISHED`: Ansible deploy_helper's marker.
    AnsibleMarker,
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArtifactKind::DeployerRelease => "Deployer is building a release",
            ArtifactKind::CapistranoFlip => "Capistrano is flipping current",
            ArtifactKind::MinaBuild => "Mina is building a release",
            ArtifactKind::AnsibleLink => "Ansible deploy_helper is switching current",
            ArtifactKind::AnsibleMarker => {
                "Ansible deploy_helper has not finalized the newest release"
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: PathBuf,
    pub kind: ArtifactKind,
    pub modified: SystemTime,
}

/// What makes `current` this `current`: a replaced link has a new inode or ctime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIdentity {
    pub ino: u64,
    pub ctime: (i64, i64),
    pub target: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CurrentLink {
    /// The link's text, as the deploy tool wrote it (may be relative).
    pub target: PathBuf,
    /// The release directory it resolves to, fully canonical (what /proc/PID/cwd shows).
    pub release: PathBuf,
    pub release_id: FileId,
    pub release_modified: SystemTime,
    /// ctime of the link itself: Deployer's `mv -T` keeps the old mtime.
    pub changed: SystemTime,
    pub identity: LinkIdentity,
}

#[derive(Debug, Clone)]
pub enum Current {
    Missing,
    NotSymlink,
    Dangling { target: PathBuf },
    Loop,
    NotDirectory { target: PathBuf },
    Unresolvable { error: String },
    Link(CurrentLink),
}

#[derive(Debug, Clone)]
pub struct Release {
    pub path: PathBuf,
    pub id: FileId,
    pub modified: SystemTime,
    /// A `BAD_RELEASE` file: someone marked it as never to be started.
    pub marked_bad: bool,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub current_path: PathBuf,
    pub current: Current,
    pub locks: Vec<LockFile>,
    pub artifacts: Vec<Artifact>,
    /// The releases at least as new as current's: the only ones the rules use.
    /// Older ones are counted, not kept, so 10,000 of them cost no memory.
    pub releases: Vec<Release>,
    pub release_count: usize,
    pub newest_release: Option<Release>,
    pub releases_missing: bool,
}

pub fn mtime(meta: &Metadata) -> SystemTime {
    meta.modified().unwrap_or(UNIX_EPOCH)
}

pub fn ctime(meta: &Metadata) -> SystemTime {
    let (secs, nanos) = (meta.ctime(), meta.ctime_nsec());
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nanos.clamp(0, 999_999_999) as u32),
        Err(_) => UNIX_EPOCH,
    }
}

fn config(message: String) -> anyhow::Error {
    coded(Exit::Config, message)
}

/// The deploy root must exist, be a directory and be listable: anything else
/// is a configuration error, not a reason to wait.
pub fn check_deploy_root(root: &Path) -> Result<()> {
    let meta = fs::metadata(root).map_err(|e| {
        config(format!(
            "deploy root {} {}",
            root.display(),
            match e.kind() {
                io::ErrorKind::NotFound => "does not exist (check --app)".to_string(),
                _ => format!("cannot be read: {e}"),
            }
        ))
    })?;
    if !meta.is_dir() {
        return Err(config(format!(
            "deploy root {} is not a directory",
            root.display()
        )));
    }
    fs::read_dir(root).map_err(|e| {
        config(format!(
            "deploy root {} cannot be read: {e}",
            root.display()
        ))
    })?;
    Ok(())
}

pub fn gather(layout: &Layout) -> Result<Snapshot> {
    check_deploy_root(&layout.deploy_root)?;
    let locks = layout
        .lock_paths()
        .into_iter()
        .filter_map(|(path, source)| read_lock(&path, source).transpose())
        .collect::<Result<Vec<_>>>()?;
    let current = read_current(&layout.current);
    let keep_from = match &current {
        Current::Link(link) => Some(link.release_modified),
        _ => None,
    };
    let mut scan = read_releases(&layout.releases, keep_from)?;

    // Markers are only looked for where the rules can use them: in releases
    // at least as new as current's, so that 10,000 old releases cost one stat each.
    if let Current::Link(link) = &current {
        for release in scan.kept.iter_mut().filter(|r| r.id != link.release_id) {
            release.marked_bad = release.path.join("BAD_RELEASE").symlink_metadata().is_ok();
        }
    }

    let mut artifacts = Vec::new();
    let mut artifact = |path: PathBuf, kind: ArtifactKind, only_symlink: bool| {
        if let Ok(meta) = path.symlink_metadata() {
            if !only_symlink || meta.file_type().is_symlink() {
                artifacts.push(Artifact {
                    modified: mtime(&meta),
                    path,
                    kind,
                });
            }
        }
    };
    artifact(
        layout.deploy_root.join("release"),
        ArtifactKind::DeployerRelease,
        true,
    );
    artifact(
        layout.releases.join("current"),
        ArtifactKind::CapistranoFlip,
        false,
    );
    artifact(
        layout.deploy_root.join("current.DEPLOY_UNFINISHED"),
        ArtifactKind::AnsibleLink,
        false,
    );
    if let Some(newest) = &scan.newest {
        let marker = newest.path.join("DEPLOY_UNFINISHED");
        artifact(marker, ArtifactKind::AnsibleMarker, false);
    }
    if let Ok(entries) = fs::read_dir(layout.deploy_root.join("tmp")) {
        for entry in entries.flatten() {
            if entry.file_name().as_encoded_bytes().starts_with(b"build-") {
                artifact(entry.path(), ArtifactKind::MinaBuild, false);
            }
        }
    }

    Ok(Snapshot {
        current_path: layout.current.clone(),
        current,
        locks,
        artifacts,
        releases: scan.kept,
        release_count: scan.count,
        newest_release: scan.newest,
        releases_missing: scan.missing,
    })
}

/// A lock that exists is a lock, whatever it holds; only a directory where a
/// lock file belongs is a configuration error.
pub fn read_lock(path: &Path, source: LockSource) -> Result<Option<LockFile>> {
    let link_meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
        Err(e) => {
            return Err(config(format!(
                "cannot inspect lock {}: {e}",
                path.display()
            )))
        }
    };
    // A symlinked lock is followed for reading; a dangling one still counts.
    let meta = fs::metadata(path).unwrap_or(link_meta);
    if meta.is_dir() {
        return Err(config(format!(
            "lock path {} is a directory, not a file",
            path.display()
        )));
    }
    let content = if meta.is_file() {
        match read_limited(path) {
            Ok(bytes) => lockfile::parse(source, &bytes),
            Err(e) => {
                let mut content = lockfile::parse(LockSource::Extra, b"");
                content.problem = Some(format!("unreadable: {e}"));
                content
            }
        }
    } else {
        let mut content = lockfile::parse(LockSource::Extra, b"");
        content.problem = Some("not a regular file".to_string());
        content
    };
    Ok(Some(LockFile {
        path: path.to_path_buf(),
        content,
        modified: mtime(&meta),
    }))
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(lockfile::READ_LIMIT)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_current(path: &Path) -> Current {
    let link_meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Current::Missing,
        Err(e) => {
            return Current::Unresolvable {
                error: e.to_string(),
            }
        }
    };
    if !link_meta.file_type().is_symlink() {
        return Current::NotSymlink;
    }
    let target = match fs::read_link(path) {
        Ok(t) => t,
        Err(e) => {
            return Current::Unresolvable {
                error: e.to_string(),
            }
        }
    };
    // Relative targets (Deployer's `releases/5`) resolve against the link's own directory.
    let joined = match path.parent() {
        Some(dir) if target.is_relative() => dir.join(&target),
        _ => target.clone(),
    };
    let release = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Current::Loop,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Current::Dangling { target: joined }
        }
        Err(e) => {
            return Current::Unresolvable {
                error: e.to_string(),
            }
        }
    };
    let release_meta = match fs::metadata(&release) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Current::NotDirectory { target: joined },
        Err(e) => {
            return Current::Unresolvable {
                error: e.to_string(),
            }
        }
    };
    Current::Link(CurrentLink {
        identity: LinkIdentity {
            ino: link_meta.ino(),
            ctime: (link_meta.ctime(), link_meta.ctime_nsec()),
            target: target.clone(),
        },
        changed: ctime(&link_meta),
        target,
        release_id: FileId::of(&release_meta),
        release_modified: mtime(&release_meta),
        release,
    })
}

struct ReleaseScan {
    kept: Vec<Release>,
    count: usize,
    newest: Option<Release>,
    missing: bool,
}

/// Every release directory is stat'ed (its mtime decides), but only those
/// modified at or after `keep_from` are kept, with the newest of all.
fn read_releases(dir: &Path, keep_from: Option<SystemTime>) -> Result<ReleaseScan> {
    let mut scan = ReleaseScan {
        kept: Vec::new(),
        count: 0,
        newest: None,
        missing: false,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            scan.missing = true;
            return Ok(scan);
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(config(format!(
                "releases {} is not a directory (check --releases)",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot list releases in {}", dir.display()))
        }
    };
    // Names come from the directory listing; each is stat'ed relative to the
    // open directory (one path component to resolve, not the whole absolute
    // path), since a deploy root can hold thousands of releases.
    let dir_fd = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let mut c_name = Vec::new();
    for entry in entries.flatten() {
        // The entry's type needs no stat and is not followed: a release is a
        // real directory, a symlink here is not one.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        if name == OsStr::new("current") {
            continue;
        }
        let Some((id, modified)) = dir_stat_at(&dir_fd, &name, &mut c_name) else {
            continue;
        };
        scan.count += 1;
        let is_newest = scan.newest.as_ref().is_none_or(|n| modified > n.modified);
        let keep = keep_from.is_some_and(|from| modified >= from);
        if is_newest || keep {
            let release = Release {
                path: dir.join(&name),
                id,
                modified,
                marked_bad: false,
            };
            if is_newest {
                scan.newest = Some(release.clone());
            }
            if keep {
                scan.kept.push(release);
            }
        }
    }
    Ok(scan)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the identity and mtime of a
/// directory entry that is itself a directory.
/// `buf` is reused for the NUL-terminated name: one allocation fewer per release.
fn dir_stat_at(dir: &File, name: &OsStr, buf: &mut Vec<u8>) -> Option<(FileId, SystemTime)> {
    buf.clear();
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    let name = CStr::from_bytes_with_nul(buf).ok()?;
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open directory, `name` is NUL-terminated, and the
    // kernel fills `stat` completely when the call returns 0.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialised by the successful fstatat above.
    let stat = unsafe { stat.assume_init() };
    if stat.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return None;
    }
    let modified = u64::try_from(stat.st_mtime)
        .ok()
        .map(|secs| {
            UNIX_EPOCH + Duration::new(secs, stat.st_mtime_nsec.clamp(0, 999_999_999) as u32)
        })
        .unwrap_or(UNIX_EPOCH);
    Some((
        FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        },
        modified,
    ))
}
