//! The bad-input matrix: garbage on disk and on the command line, each case
//! through the real binary with its exit code and message, and never a panic
//! (101), a backtrace, or a line that is not the tool's own. Cases marked
//! `nobody` run as an unprivileged user, since root reads everything.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

use common::*;

struct Case {
    name: &'static str,
    /// Prepares the deploy root and returns the arguments (subcommand first).
    setup: fn(&App) -> Vec<String>,
    exit: i32,
    says: &'static str,
    nobody: bool,
}

fn check(app: &App) -> Vec<String> {
    vec![
        "check".into(),
        "--app".into(),
        app.root.display().to_string(),
        "--settle".into(),
        "0".into(),
    ]
}

/// `run` with a pidfile holding `content`, starting `touch <base>/started`.
fn run_with_pidfile(app: &App, content: &str) -> Vec<String> {
    let pidfile = app.base.join("worker.pid");
    fs::write(&pidfile, content).unwrap();
    run_cmd(
        app,
        &["--pidfile", pidfile.to_str().unwrap()],
        &["/usr/bin/touch", app.base.join("started").to_str().unwrap()],
    )
}

fn run_cmd(app: &App, flags: &[&str], command: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--app".into(),
        app.root.display().to_string(),
        "--settle".into(),
        "0".into(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(command.iter().map(|s| s.to_string()));
    args
}

fn write_lock(app: &App, bytes: &[u8]) -> Vec<String> {
    fs::write(app.path("deploy.lock"), bytes).unwrap();
    check(app)
}

const CASES: &[Case] = &[
    Case {
        name: "deploy root missing",
        setup: |app| {
            fs::remove_dir_all(&app.root).unwrap();
            check(app)
        },
        exit: 78,
        says: "does not exist",
        nobody: false,
    },
    Case {
        name: "deploy root unreadable",
        setup: |app| {
            fs::set_permissions(&app.root, fs::Permissions::from_mode(0o700)).unwrap();
            check(app)
        },
        exit: 78,
        says: "cannot be read",
        nobody: true,
    },
    Case {
        name: "deploy root is a file",
        setup: |app| {
            fs::remove_dir_all(&app.root).unwrap();
            fs::write(&app.root, "x").unwrap();
            check(app)
        },
        exit: 78,
        says: "is not a directory",
        nobody: false,
    },
    Case {
        name: "current missing",
        setup: |app| {
            fs::remove_file(app.path("current")).unwrap();
            check(app)
        },
        exit: 75,
        says: "does not exist",
        nobody: false,
    },
    Case {
        name: "current a plain directory",
        setup: |app| {
            fs::remove_file(app.path("current")).unwrap();
            fs::create_dir(app.path("current")).unwrap();
            check(app)
        },
        exit: 75,
        says: "is not a symlink",
        nobody: false,
    },
    Case {
        name: "current a file",
        setup: |app| {
            fs::remove_file(app.path("current")).unwrap();
            fs::write(app.path("current"), "r1").unwrap();
            check(app)
        },
        exit: 75,
        says: "is not a symlink",
        nobody: false,
    },
    Case {
        name: "current dangling",
        setup: |app| {
            app.point_current_to(&app.release_path("gone"));
            check(app)
        },
        exit: 75,
        says: "which does not exist",
        nobody: false,
    },
    Case {
        name: "current a loop",
        setup: |app| {
            fs::remove_file(app.path("current")).unwrap();
            symlink("current", app.path("current")).unwrap();
            check(app)
        },
        exit: 75,
        says: "symlink loop",
        nobody: false,
    },
    Case {
        name: "current relative",
        setup: |app| {
            fs::remove_file(app.path("current")).unwrap();
            symlink("releases/r1", app.path("current")).unwrap();
            check(app)
        },
        exit: 0,
        says: "ready: ",
        nobody: false,
    },
    Case {
        name: "current outside the deploy root",
        setup: |app| {
            let outside = app.base.join("elsewhere");
            fs::create_dir(&outside).unwrap();
            app.point_current_to(&outside);
            check(app)
        },
        exit: 0,
        says: "elsewhere",
        nobody: false,
    },
    Case {
        name: "releases missing",
        setup: |app| {
            let r = app.base.join("r1");
            fs::create_dir(&r).unwrap();
            app.point_current_to(&r);
            fs::remove_dir_all(app.path("releases")).unwrap();
            check(app)
        },
        exit: 0,
        says: "ready: ",
        nobody: false,
    },
    Case {
        name: "releases a file",
        setup: |app| {
            let f = app.write("releases-file", "x");
            let mut a = check(app);
            a.extend(["--releases".into(), f.display().to_string()]);
            a
        },
        exit: 78,
        says: "is not a directory",
        nobody: false,
    },
    Case {
        name: "releases holding files",
        setup: |app| {
            app.write("releases/README", "x");
            app.write("releases/20991231235959", "not a dir");
            check(app)
        },
        exit: 0,
        says: "ready: ",
        nobody: false,
    },
    Case {
        name: "release with a non-UTF-8 name",
        setup: |app| {
            use std::os::unix::ffi::OsStrExt;
            fs::create_dir(
                app.path("releases")
                    .join(std::ffi::OsStr::from_bytes(b"r\xff")),
            )
            .unwrap();
            check(app)
        },
        exit: 75,
        says: "is newer than current's r1",
        nobody: false,
    },
    Case {
        name: "10,000 old releases",
        setup: |app| {
            for i in 0..10_000 {
                fs::create_dir(app.path("releases").join(format!("old{i}"))).unwrap();
            }
            let past = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
            for i in 0..10_000 {
                fs::File::open(app.path("releases").join(format!("old{i}")))
                    .unwrap()
                    .set_modified(past)
                    .unwrap();
            }
            check(app)
        },
        exit: 0,
        says: "ready: ",
        nobody: false,
    },
    Case {
        name: "lock empty (Mina)",
        setup: |app| write_lock(app, b""),
        exit: 75,
        says: "(Mina)",
        nobody: false,
    },
    Case {
        name: "lock garbage",
        setup: |app| write_lock(app, b"}}}{{{ nonsense\n"),
        exit: 75,
        says: "held by }}}{{{ nonsense",
        nobody: false,
    },
    Case {
        name: "lock truncated",
        setup: |app| write_lock(app, b"# guarded-restart deploy lock\nholder: al"),
        exit: 75,
        says: "truncated",
        nobody: false,
    },
    Case {
        name: "lock binary",
        setup: |app| write_lock(app, b"\x00\x01\xff\xfe\x00"),
        exit: 75,
        says: "binary content",
        nobody: false,
    },
    Case {
        name: "lock huge (2 MiB)",
        setup: |app| write_lock(app, &vec![b'x'; 2 << 20]),
        exit: 75,
        says: "deploy locked",
        nobody: false,
    },
    Case {
        name: "lock from the future (clock skew)",
        setup: |app| {
            write_lock(app, b"# guarded-restart deploy lock\nholder: skewed\ncreated: 2999-01-01T00:00:00Z\nexpires: 2999-01-01T00:30:00Z\n")
        },
        exit: 75,
        says: "held by skewed",
        nobody: false,
    },
    Case {
        name: "lock a directory",
        setup: |app| {
            fs::create_dir(app.path("deploy.lock")).unwrap();
            check(app)
        },
        exit: 78,
        says: "is a directory",
        nobody: false,
    },
    Case {
        name: "lock a symlink",
        setup: |app| {
            let t = app.base.join("lock-target");
            fs::write(&t, "bob\n").unwrap();
            symlink(&t, app.path("deploy.lock")).unwrap();
            check(app)
        },
        exit: 75,
        says: "held by bob",
        nobody: false,
    },
    Case {
        name: "lock unreadable",
        setup: |app| {
            write_lock(app, b"secret\n");
            fs::set_permissions(app.path("deploy.lock"), fs::Permissions::from_mode(0o600))
                .unwrap();
            check(app)
        },
        exit: 75,
        says: "unreadable",
        nobody: true,
    },
    Case {
        name: "pidfile empty",
        setup: |app| run_with_pidfile(app, ""),
        exit: 0,
        says: "pidfile is empty",
        nobody: false,
    },
    Case {
        name: "pidfile garbage",
        setup: |app| run_with_pidfile(app, "sidekiq\n"),
        exit: 0,
        says: "does not hold a PID",
        nobody: false,
    },
    Case {
        name: "pidfile negative",
        setup: |app| run_with_pidfile(app, "-42"),
        exit: 0,
        says: "does not hold a PID",
        nobody: false,
    },
    Case {
        name: "pidfile 0",
        setup: |app| run_with_pidfile(app, "0"),
        exit: 0,
        says: "cannot be a worker's PID",
        nobody: false,
    },
    Case {
        name: "pidfile 1",
        setup: |app| run_with_pidfile(app, "1\n"),
        exit: 0,
        says: "cannot be a worker's PID",
        nobody: false,
    },
    Case {
        name: "pidfile huge",
        setup: |app| run_with_pidfile(app, "184467440737095516150"),
        exit: 0,
        says: "cannot be a worker's PID",
        nobody: false,
    },
    Case {
        name: "pidfile of a dead process",
        setup: |app| {
            let mut c = Command::new("true").spawn().unwrap();
            let pid = c.id();
            c.wait().unwrap();
            run_with_pidfile(app, &pid.to_string())
        },
        exit: 0,
        says: "no process",
        nobody: false,
    },
    Case {
        name: "pidfile of a reused PID",
        setup: |app| {
            let args = run_with_pidfile(app, &std::process::id().to_string());
            app.age(&app.base.join("worker.pid"), 365 * 86_400);
            args
        },
        exit: 0,
        says: "the PID was reused",
        nobody: false,
    },
    Case {
        name: "pidfile unreadable",
        setup: |app| {
            let args = run_with_pidfile(app, "4242");
            fs::set_permissions(
                app.base.join("worker.pid"),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            args
        },
        exit: 78,
        says: "refusing to start what may be a second copy",
        nobody: true,
    },
    Case {
        name: "pidfile a directory",
        setup: |app| {
            fs::create_dir(app.base.join("pids")).unwrap();
            run_cmd(
                app,
                &["--pidfile", app.base.join("pids").to_str().unwrap()],
                &["/bin/true"],
            )
        },
        exit: 78,
        says: "not a regular file",
        nobody: false,
    },
    Case {
        name: "duration garbage",
        setup: |app| {
            let mut a = check(app);
            a.push("--max-lock-age=5 minutes".into());
            a
        },
        exit: 2,
        says: "invalid duration",
        nobody: false,
    },
    Case {
        name: "duration negative",
        setup: |app| {
            let mut a = check(app);
            a.push("--build-timeout=-1s".into());
            a
        },
        exit: 2,
        says: "invalid duration",
        nobody: false,
    },
    Case {
        name: "COMMAND missing",
        setup: |app| run_cmd(app, &[], &["no-such-worker"]),
        exit: 127,
        says: "command not found: no-such-worker (searched PATH=",
        nobody: false,
    },
    Case {
        name: "COMMAND not executable",
        setup: |app| {
            let f = app.write("worker.sh", "#!/bin/sh\n");
            run_cmd(app, &[], &[f.to_str().unwrap()])
        },
        exit: 126,
        says: "not executable",
        nobody: false,
    },
    Case {
        name: "COMMAND a directory",
        setup: |app| run_cmd(app, &[], &["/usr"]),
        exit: 126,
        says: "is a directory",
        nobody: false,
    },
];

fn run_case(case: &Case) -> Result<(), String> {
    let app = App::deployed();
    // Let an unprivileged user reach the deploy root at all.
    fs::set_permissions(&app.base, fs::Permissions::from_mode(0o755)).unwrap();
    let args = (case.setup)(&app);
    let mut cmd = if case.nobody {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        cmd
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .args(&args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    let all = format!("{stdout}{stderr}");
    let mut problems = Vec::new();
    if out.status.code() != Some(case.exit) {
        problems.push(format!("exit {:?}, want {}", out.status.code(), case.exit));
    }
    if !all.contains(case.says) {
        problems.push(format!("no {:?}", case.says));
    }
    if !stderr.lines().all(|l| l.starts_with("guarded-restart: ")) || all.contains("panicked") {
        problems.push("a stderr line that is not the tool's own".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {} -- stdout {stdout:?} stderr {stderr:?}",
            case.name,
            problems.join(", ")
        ))
    }
}

#[test]
fn bad_input_matrix() {
    let am_root = euid() == 0;
    let failures: Vec<String> = CASES
        .iter()
        .filter(|case| !case.nobody || am_root)
        .filter_map(|case| run_case(case).err())
        .collect();
    assert!(CASES.len() >= 30, "the matrix has {} cases", CASES.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// The effective UID, from /proc (no libc in the tests).
fn euid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}
