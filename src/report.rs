//! What ops read: the `--log` file (monit throws away the guard's output),
//! stderr, and `status` in text or JSON.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fsutil;
use crate::timefmt;

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
                eprintln!(
                    "guarded-restart: warning: cannot log to {}: {}; continuing without a log",
                    path.display(),
                    crate::exit::one_line(&e)
                );
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
            eprintln!("guarded-restart: {line}");
        }
    }

    pub fn warn(&self, line: &str) {
        let line = format!("warning: {line}");
        self.write(&line);
        eprintln!("guarded-restart: {line}");
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
