//! Writing as root without being tricked: no symlink is followed where this
//! tool writes, nothing is half-written, no permission is widened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::{coded, Exit};

/// Refuse to write into a directory anyone can write to unless it has the
/// sticky bit: there another user could swap our file between check and use.
pub fn check_parent_safe(path: &Path) -> Result<()> {
    let dir = parent_of(path);
    let meta = fs::metadata(&dir).map_err(|e| {
        coded(
            Exit::Config,
            format!(
                "directory {} for {} is not usable: {e}",
                dir.display(),
                path.display()
            ),
        )
    })?;
    if !meta.is_dir() {
        return Err(coded(
            Exit::Config,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(coded(
            Exit::Config,
            format!(
                "refusing to write {}: its directory {} is world-writable without the sticky bit",
                path.display(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Replace `path` with `contents` atomically: a new temp file in the same
/// directory (O_EXCL, so a planted symlink is never followed), fsync, rename
/// over the target (which replaces a symlink rather than writing through it).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    check_parent_safe(path)?;
    let dir = parent_of(path);
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory is.
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Open for appending (log, worker output) without following a symlink and
/// without blocking on a FIFO; new files get `mode`, existing ones keep theirs.
pub fn open_append(path: &Path, mode: u32) -> Result<File> {
    check_parent_safe(path)?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                anyhow::anyhow!("refusing to open {}: it is a symlink", path.display())
            }
            _ => anyhow::Error::new(e).context(format!("cannot open {}", path.display())),
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("refusing to write {}: not a regular file", path.display());
    }
    Ok(file)
}
