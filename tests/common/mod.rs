//! A throwaway deploy root and the real binary, for tests that prove behaviour
//! through `guarded-restart` itself: real symlinks, real mtimes, real flocks.

#![allow(dead_code)]

use std::fs::{self, File};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

pub const BIN: &str = env!("CARGO_BIN_EXE_guarded-restart");

pub struct App {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub root: PathBuf,
}

impl App {
    /// `<tmp>/app` with an empty `releases/`.
    pub fn new() -> App {
        let tmp = tempfile::Builder::new()
            .prefix("guarded-restart-test.")
            .tempdir()
            .unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("app");
        fs::create_dir_all(root.join("releases")).unwrap();
        App {
            _tmp: tmp,
            base,
            root,
        }
    }

    /// A deploy root whose `current` points at release `r1`, flipped long ago
    /// as far as the tests' `--settle 0` is concerned.
    pub fn deployed() -> App {
        let app = App::new();
        app.release("r1");
        app.age(&app.release_path("r1"), 7200);
        app.point_current("r1");
        app
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn release_path(&self, name: &str) -> PathBuf {
        self.root.join("releases").join(name)
    }

    pub fn release(&self, name: &str) -> PathBuf {
        let path = self.release_path(name);
        fs::create_dir_all(&path).unwrap();
        path
    }

    /// Flip `current` as Capistrano does: a new link, renamed over the old one.
    pub fn point_current(&self, name: &str) {
        self.point_current_to(&self.release_path(name));
    }

    pub fn point_current_to(&self, target: &Path) {
        let tmp = self.root.join("releases").join("current");
        let _ = fs::remove_file(&tmp);
        symlink(target, &tmp).unwrap();
        fs::rename(&tmp, self.root.join("current")).unwrap();
    }

    /// Set a file or directory's mtime `secs` into the past.
    pub fn age(&self, path: &Path, secs: u64) {
        let when = SystemTime::now() - Duration::from_secs(secs);
        File::open(path).unwrap().set_modified(when).unwrap();
    }

    /// Set a symlink's own mtime `secs` into the past (std cannot: touch -h).
    pub fn age_link(&self, path: &Path, secs: u64) {
        let status = Command::new("touch")
            .arg("-h")
            .arg("-d")
            .arg(format!("{secs} seconds ago"))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    /// A worker script that records its release, revision, cwd and PID (one
    /// line per start) in `<base>/starts`, then runs for `secs` seconds.
    pub fn worker(&self, secs: u32) -> PathBuf {
        let path = self.base.join("worker.sh");
        let starts = self.base.join("starts");
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$GUARDED_RESTART_RELEASE|${{GUARDED_RESTART_REVISION:-}}|$(pwd)|$$|$*\" >> {}\nexec sleep {secs}\n",
                starts.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub fn starts(&self) -> Vec<String> {
        fs::read_to_string(self.base.join("starts"))
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The binary with monit's kind of environment: nearly empty.
    pub fn guard(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .stdin(Stdio::null());
        cmd
    }

    /// `guarded-restart SUB --app <root> ARGS...`
    pub fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        let mut cmd = self.guard();
        cmd.arg(sub).arg("--app").arg(&self.root).args(args);
        cmd
    }

    pub fn out(&self, sub: &str, args: &[&str]) -> Output {
        self.cmd(sub, args).output().unwrap()
    }

    /// `guarded-restart run --app <root> --settle 0 FLAGS... -- COMMAND...`:
    /// the deploy root's `current` counts as settled, as most tests want.
    pub fn run_cmd(&self, flags: &[&str], command: &[&str]) -> Command {
        let mut cmd = self.cmd("run", &["--settle", "0"]);
        cmd.args(flags).arg("--").args(command);
        cmd
    }

    /// `run_cmd`, waited for.
    pub fn run_now(&self, flags: &[&str], command: &[&str]) -> Output {
        self.run_cmd(flags, command).output().unwrap()
    }

    /// `run_cmd`, in the background with its output captured.
    pub fn spawn_run(&self, flags: &[&str], command: &[&str]) -> Child {
        self.run_cmd(flags, command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn spawn(&self, sub: &str, args: &[&str]) -> Child {
        self.cmd(sub, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.base.join("guard.log")).unwrap_or_default()
    }

    pub fn log_arg(&self) -> String {
        self.base.join("guard.log").display().to_string()
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every error the binary prints is one line starting `guarded-restart:`, and
/// it is the last thing on stderr (`run` also narrates its decisions there).
pub fn assert_one_line_error(out: &Output, words: &str) {
    let err = stderr(out);
    assert_ne!(code(out), 101, "panicked: {err}");
    assert!(
        err.lines().all(|l| l.starts_with("guarded-restart: ")),
        "every stderr line is the tool's own: {err:?}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(words),
        "expected {words:?} in the last line of {err:?}"
    );
}

/// Wait for a condition that the behaviour under test must bring about; the
/// limit only stops a broken build from hanging, it measures nothing.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let limit = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < limit, "never happened: {what}");
        sleep(Duration::from_millis(20));
    }
}

pub fn wait_output(child: Child) -> Output {
    child.wait_with_output().unwrap()
}
