//! Faults and races, through the real binary: a guard killed while waiting, a
//! deploy that dies holding the lock, a full filesystem, many guards at once,
//! `lock` racing `run`'s last check, two apps side by side.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use common::*;

fn deploy_root_entries(app: &App) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&app.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn guard_killed_while_waiting_leaves_nothing_behind_and_the_next_one_works() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    app.write(".dep/deploy.lock", "carol\n");
    let mut guard = app
        .run_cmd(&["--log", &log], &[worker.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the guard waits", || {
        app.log().contains("waiting: deploy locked")
    });
    guard.kill().unwrap(); // SIGKILL: no destructor, no cleanup code runs
    guard.wait().unwrap();
    assert_eq!(
        deploy_root_entries(&app),
        [".dep", ".guarded-restart.wait", "current", "releases"],
        "only the (unlocked) waiter file may remain"
    );
    fs::remove_file(app.path(".dep/deploy.lock")).unwrap();
    let out = app.run_now(&["--log", &log], &[worker.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("another guard"), "{}", stderr(&out));
    assert_eq!(app.starts().len(), 1);
}

#[test]
fn deploy_killed_between_lock_and_unlock_is_recovered_by_expiry() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    assert_eq!(
        code(&app.out("lock", &["--holder", "dead-deploy", "--ttl", "2s"])),
        0
    );
    // The deploy dies here: nobody unlocks.
    let out = app.run_now(&["--log", &log], &[worker.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(app.starts().len(), 1);
    let log = app.log();
    assert!(
        log.contains("waiting: deploy locked") && log.contains("EXPIRED DEPLOY LOCK"),
        "{log}"
    );
    assert!(
        log.contains("dead-deploy"),
        "the warning names the holder: {log}"
    );
}

#[test]
fn lock_on_a_full_filesystem_fails_loudly_and_leaves_no_partial_lock() {
    let root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let app = App::new();
    let mnt = app.base.join("full");
    fs::create_dir(&mnt).unwrap();
    // A private mount namespace, so the tmpfs never shows outside this test.
    let script = r#"
        mount -t tmpfs -o size=64k tmpfs "$1" || exit 99
        mkdir "$1/app"
        dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null
        "$2" lock --app "$1/app" --holder alice 2>&1
        echo "rc=$?"
        ls -A "$1/app"
    "#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&mnt)
        .arg(BIN)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("rc=1"),
        "lock must fail: {text} {}",
        stderr(&out)
    );
    assert!(text.contains("guarded-restart: cannot write"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("guarded-restart:"))
            .count(),
        1,
        "{text}"
    );
    let after_rc = text.rsplit_once("rc=1\n").unwrap().1;
    assert!(
        after_rc.trim().is_empty(),
        "files left in the deploy root: {after_rc:?}"
    );
}

fn only_one_of_many_guards_starts(guards: usize) {
    let app = App::deployed();
    let worker = app.worker(60);
    let pidfile = app.base.join("worker.pid");
    let log = app.log_arg();
    app.write(".dep/deploy.lock", "carol\n");
    // Backgrounds the worker and writes its pidfile, like a classic restart script.
    let script = app.base.join("restart.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n{} &\necho $! > {}\n",
            worker.display(),
            pidfile.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let children: Vec<_> = (0..guards)
        .map(|_| {
            app.run_cmd(
                &["--pidfile", pidfile.to_str().unwrap(), "--log", &log],
                &[script.to_str().unwrap()],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    eventually("all but one guard step aside", || {
        app.log()
            .matches("another guard is already waiting")
            .count()
            == guards - 1
    });
    fs::remove_file(app.path(".dep/deploy.lock")).unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    eventually("the worker starts", || !app.starts().is_empty());
    let pid = fs::read_to_string(&pidfile).unwrap();
    assert_eq!(app.starts().len(), 1, "{:?}", app.starts());
    assert_eq!(app.log().matches("starting ").count(), 1);
    let _ = Command::new("kill").arg(pid.trim()).status();
}

#[test]
fn only_one_of_twenty_concurrent_guards_waits_and_starts() {
    only_one_of_many_guards_starts(20);
}

#[test]
fn only_one_of_two_hundred_concurrent_guards_waits_and_starts() {
    only_one_of_many_guards_starts(200);
}

#[test]
fn lock_racing_runs_last_check_never_lets_a_start_follow_it() {
    // `run --write-pidfile` writes the pidfile under the launch mutex just
    // before exec; `lock` takes the same mutex. So a pidfile is either written
    // before `lock` returned, or never.
    let app = App::deployed();
    let pidfile = app.base.join("worker.pid");
    let pid_arg = pidfile.to_str().unwrap().to_string();
    let (mut before, mut blocked) = (0, 0);
    for i in 0..1000u64 {
        let _ = fs::remove_file(&pidfile);
        let guard = app
            .run_cmd(
                &["--no-wait", "--pidfile", &pid_arg, "--write-pidfile"],
                &["/bin/true"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the phase: sometimes lock lands first, sometimes the guard.
        std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 3000));
        let out = app.out("lock", &["--holder", "deployer", "--force"]);
        let lock_returned = SystemTime::now();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let guard = wait_output(guard);
        match fs::metadata(&pidfile) {
            Ok(meta) => {
                let started = meta.modified().unwrap();
                assert!(
                    started <= lock_returned,
                    "iteration {i}: a start at {started:?} after lock returned at {lock_returned:?}"
                );
                before += 1;
            }
            Err(_) => {
                assert_eq!(
                    code(&guard),
                    75,
                    "iteration {i}: the guard neither started nor saw the lock"
                );
                blocked += 1;
            }
        }
        assert_eq!(code(&app.out("unlock", &["--holder", "deployer"])), 0);
    }
    eprintln!("{before} guards started before lock returned, {blocked} saw the lock");
    assert!(
        before > 0 && blocked > 0,
        "the race was never exercised both ways"
    );
}

#[test]
fn two_apps_on_one_host_never_block_each_other() {
    let locked = App::deployed();
    let free = App::deployed();
    let worker_a = locked.worker(0);
    let worker_b = free.worker(0);
    locked.write(".dep/deploy.lock", "carol\n");
    let log = locked.log_arg();
    let mut waiting = locked
        .run_cmd(&["--log", &log], &[worker_a.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("app A's guard waits", || {
        locked.log().contains("waiting: deploy locked")
    });
    // Hold app A's launch mutex too, as a `lock` in progress would.
    let mut mutex = Command::new("flock")
        .args(["-x"])
        .arg(&locked.root)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let out = free.out("run", &["--settle", "0", "--", worker_b.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        free.starts().len(),
        1,
        "app B started while app A was locked"
    );
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "app A's guard is still waiting"
    );
    assert!(locked.starts().is_empty());
    mutex.kill().unwrap();
    mutex.wait().unwrap();
    waiting.kill().unwrap();
    waiting.wait().unwrap();
}

#[test]
fn a_full_disk_behind_stdout_and_stderr_is_no_panic() {
    let app = App::deployed();
    app.write(".dep/deploy.lock", "carol\n");
    for (sub, args, exit) in [
        ("check", vec!["--settle", "0"], 75),
        ("status", vec!["--settle", "0"], 0),
        (
            "run",
            vec!["--settle", "0", "--no-wait", "--", "/bin/true"],
            75,
        ),
        ("check", vec!["--settle", "bogus"], 2),
    ] {
        let full = || {
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
        };
        let status = app
            .cmd(sub, &args)
            .stdout(full())
            .stderr(full())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(exit), "{sub} {args:?}");
    }
}
