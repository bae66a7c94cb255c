//! `wait` (for systemd's ExecStartPre=) and `verify` (drift) through the binary.

mod common;

use std::fs;
use std::process::{Child, Command};

use common::*;

/// A stand-in worker: a real process whose cwd is the release, with a pidfile.
fn worker_in(app: &App, release: &str) -> (Child, String) {
    let child = Command::new("sleep")
        .arg("60")
        .current_dir(app.release_path(release))
        .env("GUARDED_RESTART_RELEASE", app.release_path(release))
        .spawn()
        .unwrap();
    let pidfile = app.base.join("worker.pid");
    fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
    (child, pidfile.display().to_string())
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn wait_returns_ready_at_once_when_nothing_is_in_flight() {
    let app = App::deployed();
    let out = app.out("wait", &["--settle", "0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("ready: {}", app.release_path("r1").display())
    );
}

#[test]
fn wait_blocks_until_the_deploy_unlocks() {
    let app = App::deployed();
    let log = app.log_arg();
    assert_eq!(code(&app.out("lock", &["--holder", "deployer"])), 0);
    let child = app.spawn("wait", &["--settle", "0", "--log", &log]);
    eventually("wait logs the lock", || {
        app.log().contains("waiting: deploy locked")
    });
    assert_eq!(code(&app.out("unlock", &["--holder", "deployer"])), 0);
    let out = wait_output(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ready: "));
}

#[test]
fn wait_gives_up_with_75_at_the_deadline() {
    let app = App::deployed();
    app.write(".dep/deploy.lock", "carol\n");
    let out = app.out("wait", &["--settle", "0", "--timeout", "500ms"]);
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "gave up after 500ms: deploy locked");
}

#[test]
fn verify_passes_for_a_worker_on_current() {
    let app = App::deployed();
    let (child, pidfile) = worker_in(&app, "r1");
    let out = app.out("verify", &["--pidfile", &pidfile]);
    stop(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: worker "), "{}", stdout(&out));
}

#[test]
fn verify_fails_with_1_naming_both_releases_when_the_worker_drifted() {
    let app = App::deployed();
    let (child, pidfile) = worker_in(&app, "r1");
    app.release("r2");
    app.point_current("r2");
    let out = app.out("verify", &["--pidfile", &pidfile]);
    let json = app.out("verify", &["--pidfile", &pidfile, "--json"]);
    stop(child);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.contains(&format!(
            "runs release {} but current is {}",
            app.release_path("r1").display(),
            app.release_path("r2").display()
        )),
        "{line}"
    );
    assert_eq!(code(&json), 1);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["state"], "drift");
    assert_eq!(
        json["worker"]["release"],
        app.release_path("r1").display().to_string()
    );
    assert_eq!(
        json["worker"]["started_release"],
        app.release_path("r1").display().to_string()
    );
    assert_eq!(
        json["current_release"],
        app.release_path("r2").display().to_string()
    );
}

#[test]
fn verify_says_3_when_no_worker_runs() {
    let app = App::deployed();
    let pidfile = app.base.join("worker.pid");
    let out = app.out("verify", &["--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not running: no pidfile");
}

#[test]
fn verify_wait_keeps_looking_until_the_worker_is_on_current() {
    let app = App::deployed();
    app.release("r2");
    app.point_current("r2");
    let (old, pidfile) = worker_in(&app, "r1");
    let child = app.spawn("verify", &["--pidfile", &pidfile, "--wait", "1m"]);
    // The deploy's restart replaces the drifted worker.
    stop(old);
    let (new, _) = worker_in(&app, "r2");
    let out = wait_output(child);
    stop(new);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains(&app.release_path("r2").display().to_string()));
}

#[test]
fn verify_with_broken_current_is_1_and_says_why() {
    let app = App::deployed();
    let (child, pidfile) = worker_in(&app, "r1");
    fs::remove_file(app.path("current")).unwrap();
    let out = app.out("verify", &["--pidfile", &pidfile]);
    stop(child);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).starts_with("cannot verify: current"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_with_pidfile_match_finds_an_extra_worker_the_pidfile_does_not_name() {
    let app = App::deployed();
    app.release("r2");
    app.point_current("r2");
    let (worker, pidfile) = worker_in(&app, "r2");
    // The old worker a racing restart left behind: no pidfile names it.
    let orphan = Command::new("sleep")
        .arg("61")
        .current_dir(app.release_path("r1"))
        .spawn()
        .unwrap();
    let orphan_pid = orphan.id();
    let plain = app.out("verify", &["--pidfile", &pidfile]);
    let matched = app.out(
        "verify",
        &["--pidfile", &pidfile, "--pidfile-match", "sleep"],
    );
    let json = app.out(
        "verify",
        &["--pidfile", &pidfile, "--pidfile-match", "sleep", "--json"],
    );
    stop(orphan);
    stop(worker);
    assert_eq!(
        code(&plain),
        0,
        "without a pattern only the pidfile counts: {}",
        stdout(&plain)
    );
    assert_eq!(code(&matched), 1, "{}", stdout(&matched));
    assert!(
        stdout(&matched).contains(&format!(
            "extra workers: pid {orphan_pid} runs release {}",
            app.release_path("r1").display()
        )),
        "{}",
        stdout(&matched)
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["state"], "extra_workers");
    assert_eq!(json["extra_workers"][0]["pid"], orphan_pid);
}
