//! `guarded-restart run`, the monit exec target, through the real binary.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use common::*;

fn log_has(app: &App, words: &str) -> bool {
    app.log().contains(words)
}

#[test]
fn ready_app_execs_the_command_on_the_current_release_with_its_revision() {
    let app = App::deployed();
    app.write("releases/r1/REVISION", "abc123\n");
    let worker = app.worker(0);
    let log = app.log_arg();
    let out = app.run_now(
        &["--chdir", "--log", &log],
        &[worker.to_str().unwrap(), "arg1"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r1 = app.release_path("r1").display().to_string();
    let starts = app.starts();
    assert_eq!(starts.len(), 1, "{starts:?}");
    let fields: Vec<&str> = starts[0].split('|').collect();
    assert_eq!(fields[0], r1, "GUARDED_RESTART_RELEASE");
    assert_eq!(fields[1], "abc123", "GUARDED_RESTART_REVISION");
    assert_eq!(fields[2], r1, "--chdir");
    assert_eq!(fields[4], "arg1");
    assert!(
        app.log().contains(&format!(
            "starting {} at release {r1} (revision abc123)",
            worker.display()
        )),
        "{}",
        app.log()
    );
}

#[test]
fn without_chdir_the_command_keeps_the_guards_directory() {
    let app = App::deployed();
    let worker = app.worker(0);
    let out = app.run_now(&[], &[worker.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(app.starts()[0].split('|').nth(2), Some("/"));
}

#[test]
fn run_waits_through_a_deploy_and_starts_on_the_release_current_settled_on() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    assert_eq!(code(&app.out("lock", &["--holder", "deployer"])), 0);
    let child = app.spawn(
        "run",
        &[
            "--settle",
            "1s",
            "--log",
            &log,
            "--",
            worker.to_str().unwrap(),
        ],
    );
    eventually("the guard logs that it waits for the lock", || {
        log_has(&app, "waiting: deploy locked")
    });
    // The deploy builds r2 and flips current while the guard waits.
    app.release("r2");
    app.point_current("r2");
    sleep(Duration::from_millis(300));
    assert!(
        app.starts().is_empty(),
        "started while the deploy lock was held"
    );
    assert_eq!(code(&app.out("unlock", &["--holder", "deployer"])), 0);
    let out = wait_output(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let starts = app.starts();
    assert_eq!(starts.len(), 1);
    assert!(
        starts[0].starts_with(&format!("{}|", app.release_path("r2").display())),
        "{starts:?}"
    );
    let log = app.log();
    let waiting = log.find("waiting: deploy locked").unwrap();
    let settled = log.find("settled on").expect(&log);
    let started = log.find("starting").expect(&log);
    assert!(waiting < settled && settled < started, "{log}");
}

#[test]
fn run_follows_current_while_it_keeps_changing() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    app.release("r2");
    app.point_current("r2");
    let child = app.spawn(
        "run",
        &[
            "--settle",
            "2s",
            "--log",
            &log,
            "--",
            worker.to_str().unwrap(),
        ],
    );
    eventually("the guard waits for current to settle", || {
        log_has(&app, "to settle")
    });
    app.release("r3");
    app.point_current("r3");
    let out = wait_output(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let starts = app.starts();
    assert_eq!(starts.len(), 1);
    assert!(
        starts[0].starts_with(&format!("{}|", app.release_path("r3").display())),
        "{starts:?}"
    );
}

#[test]
fn timeout_exits_75_and_starts_nothing() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    app.write(".dep/deploy.lock", "carol\n");
    let out = app.run_now(
        &["--timeout", "1s", "--log", &log],
        &[worker.to_str().unwrap()],
    );
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "gave up after 1s, started nothing: deploy locked");
    assert!(app.starts().is_empty());
    assert!(
        app.log().contains("error: gave up after 1s"),
        "{}",
        app.log()
    );
}

#[test]
fn no_wait_exits_75_at_once() {
    let app = App::deployed();
    let worker = app.worker(0);
    fs::create_dir_all(app.path("tmp/build-1")).unwrap();
    let out = app.run_now(
        &["--no-wait", "--timeout", "1h"],
        &[worker.to_str().unwrap()],
    );
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "not ready (--no-wait): deploy in progress");
    assert!(app.starts().is_empty());
}

#[test]
fn live_pidfile_means_nothing_to_do() {
    let app = App::deployed();
    let worker = app.worker(0);
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let pidfile = app.base.join("worker.pid");
    sleep(Duration::from_millis(50));
    fs::write(&pidfile, format!("{}\n", sleeper.id())).unwrap();
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap()],
        &[worker.to_str().unwrap()],
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("worker already running"),
        "{}",
        stderr(&out)
    );
    assert!(app.starts().is_empty());
}

#[test]
fn pidfile_of_a_dead_process_does_not_count() {
    let app = App::deployed();
    let worker = app.worker(0);
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let pidfile = app.base.join("worker.pid");
    fs::write(&pidfile, format!("{pid}\n")).unwrap();
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap()],
        &[worker.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(app.starts().len(), 1);
    assert!(
        stderr(&out).contains(&format!("no process {pid}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reused_pid_started_after_the_pidfile_was_written_does_not_count() {
    let app = App::deployed();
    let worker = app.worker(0);
    let pidfile = app.base.join("worker.pid");
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(&pidfile, format!("{}\n", stranger.id())).unwrap();
    // The pidfile was written an hour ago, by a worker that has since died.
    app.age(&pidfile, 3600);
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap()],
        &[worker.to_str().unwrap()],
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the PID was reused"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.starts().len(), 1);
}

#[test]
fn pidfile_match_rejects_a_process_that_is_not_the_worker() {
    let app = App::deployed();
    let worker = app.worker(0);
    let pidfile = app.base.join("worker.pid");
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    sleep(Duration::from_millis(50));
    fs::write(&pidfile, format!("{}\n", stranger.id())).unwrap();
    let out = app.run_now(
        &[
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--pidfile-match",
            "sidekiq",
        ],
        &[worker.to_str().unwrap()],
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not the worker"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.starts().len(), 1);
}

#[test]
fn zombie_worker_is_not_running() {
    let app = App::deployed();
    let worker = app.worker(0);
    let pidfile = app.base.join("worker.pid");
    // This test is the parent and does not reap the child until the end:
    // the dead worker stays a zombie that `kill -0` would still find.
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    eventually("the child is a zombie", || {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
    });
    fs::write(&pidfile, format!("{pid}\n")).unwrap();
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap()],
        &[worker.to_str().unwrap()],
    );
    dead.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("zombie"), "{}", stderr(&out));
    assert_eq!(app.starts().len(), 1);
}

#[test]
fn write_pidfile_leaves_the_workers_own_pid_and_output_goes_to_the_file() {
    let app = App::deployed();
    let pidfile = app.base.join("sidekiq.pid");
    let output = app.base.join("sidekiq.log");
    let script = app.base.join("fg-worker.sh");
    fs::write(
        &script,
        "#!/bin/sh\necho \"worker $$ on $GUARDED_RESTART_RELEASE\"\necho oops >&2\nexec sleep 60\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = app
        .run_cmd(
            &[
                "--pidfile",
                pidfile.to_str().unwrap(),
                "--write-pidfile",
                "--output",
                output.to_str().unwrap(),
            ],
            &[script.to_str().unwrap()],
        )
        .spawn()
        .unwrap();
    eventually("the worker writes its output", || {
        fs::read_to_string(&output).is_ok_and(|o| o.contains("oops"))
    });
    let pid = fs::read_to_string(&pidfile).unwrap();
    let text = fs::read_to_string(&output).unwrap();
    assert_eq!(
        pid.trim(),
        child.id().to_string(),
        "the pidfile names the guard's PID, which exec made the worker's"
    );
    assert!(
        text.contains(&format!(
            "worker {} on {}",
            child.id(),
            app.release_path("r1").display()
        )),
        "{text}"
    );
    let mode = fs::metadata(&pidfile).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(
        fs::metadata(&output).unwrap().permissions().mode() & 0o777,
        0o640
    );

    // A second guard now sees the live worker and does nothing.
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap(), "--write-pidfile"],
        &[script.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("worker already running"),
        "{}",
        stderr(&out)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn command_not_found_is_127_and_names_the_path_searched() {
    let app = App::deployed();
    let out = app.run_now(&[], &["bundle-that-is-not-there"]);
    assert_eq!(code(&out), 127);
    assert_one_line_error(
        &out,
        "command not found: bundle-that-is-not-there (searched PATH=/usr/bin:/bin",
    );
    let out = app.run_now(&[], &["/nonexistent/sidekiq"]);
    assert_eq!(code(&out), 127);
    assert_one_line_error(&out, "command not found: /nonexistent/sidekiq");
}

#[test]
fn command_that_cannot_execute_is_126() {
    let app = App::deployed();
    let script = app.write("not-executable.sh", "#!/bin/sh\n");
    let out = app.run_now(&[], &[script.to_str().unwrap()]);
    assert_eq!(code(&out), 126);
    assert_one_line_error(&out, "not executable");
    let out = app.run_now(&[], &[app.root.to_str().unwrap()]);
    assert_eq!(code(&out), 126);
    assert_one_line_error(&out, "is a directory");
}

#[test]
fn commands_relative_to_the_release_resolve_there_with_chdir() {
    let app = App::deployed();
    let bin = app.write(
        "releases/r1/bin/worker",
        "#!/bin/sh\necho \"$(pwd)\" > \"$1\"\n",
    );
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    app.age(&app.release_path("r1"), 7200);
    let marker = app.base.join("marker");
    let out = app.run_now(&["--chdir"], &["bin/worker", marker.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(marker).unwrap().trim(),
        app.release_path("r1").display().to_string()
    );
}

#[test]
fn env_pairs_and_a_default_path_reach_the_command() {
    let app = App::deployed();
    let marker = app.base.join("env");
    let out = app
        .guard()
        .env_remove("PATH")
        .args([
            "run",
            "--app",
            app.root.to_str().unwrap(),
            "--settle",
            "0",
            "--env",
            "RAILS_ENV=production",
            "--",
        ])
        .args([
            "/bin/sh",
            "-c",
            &format!("echo \"$RAILS_ENV $PATH\" > {}", marker.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let env = fs::read_to_string(marker).unwrap();
    assert!(env.starts_with("production /usr/local/sbin:"), "{env}");
}

#[test]
fn unwritable_log_does_not_stop_the_guard() {
    let app = App::deployed();
    let worker = app.worker(0);
    let out = app.run_now(
        &["--log", "/nonexistent-dir/guard.log"],
        &[worker.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot log to /nonexistent-dir/guard.log"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.starts().len(), 1);
}

#[test]
fn a_worker_started_by_the_deploy_while_the_guard_waits_ends_the_wait() {
    let app = App::deployed();
    let worker = app.worker(0);
    let log = app.log_arg();
    let pidfile = app.base.join("worker.pid");
    app.write(".dep/deploy.lock", "carol\n");
    let child = app.spawn_run(
        &["--pidfile", pidfile.to_str().unwrap(), "--log", &log],
        &[worker.to_str().unwrap()],
    );
    eventually("the guard waits", || {
        app.log().contains("waiting: deploy locked")
    });
    // The deploy starts the worker itself and writes its pidfile.
    let mut deployed = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(&pidfile, format!("{}\n", deployed.id())).unwrap();
    let out = wait_output(child);
    deployed.kill().unwrap();
    deployed.wait().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("worker already running"),
        "{}",
        stderr(&out)
    );
    assert!(app.starts().is_empty(), "the guard started a second copy");
}

#[test]
fn a_script_whose_interpreter_is_missing_is_127_and_says_so() {
    let app = App::deployed();
    let script = app.write("worker.sh", "#!/nonexistent/ruby\nputs 1\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let pidfile = app.base.join("worker.pid");
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap(), "--write-pidfile"],
        &[script.to_str().unwrap()],
    );
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert_one_line_error(&out, "interpreter");
    assert!(
        !pidfile.exists(),
        "a pidfile naming a process that never became the worker was left"
    );
}
