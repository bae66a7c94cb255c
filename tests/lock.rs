//! `lock` / `unlock`, the deploy tools' side, through the real binary.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use common::*;

#[test]
fn lock_writes_holder_metadata_atomically_and_readably() {
    let app = App::deployed();
    let out = app.out(
        "lock",
        &[
            "--holder",
            "alice",
            "--reason",
            "cap production deploy",
            "--ttl",
            "20m",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("locked {} for alice until ", app.root.display())));
    let text = fs::read_to_string(app.path("deploy.lock")).unwrap();
    for key in [
        "# guarded-restart deploy lock",
        "holder: alice",
        "user: ",
        "host: ",
        "pid: ",
        "created: ",
        "expires: ",
        "reason: cap production deploy",
    ] {
        assert!(text.contains(key), "{key:?} in {text}");
    }
    assert_eq!(
        fs::metadata(app.path("deploy.lock"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    let leftovers: Vec<_> = fs::read_dir(&app.root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn lock_held_by_someone_else_is_refused_unless_forced() {
    let app = App::deployed();
    assert_eq!(code(&app.out("lock", &["--holder", "alice"])), 0);
    let out = app.out("lock", &["--holder", "bob"]);
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "held by alice");
    assert!(fs::read_to_string(app.path("deploy.lock"))
        .unwrap()
        .contains("holder: alice"));
    let out = app.out("lock", &["--holder", "bob", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("replaced deploy lock"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read_to_string(app.path("deploy.lock"))
        .unwrap()
        .contains("holder: bob"));
}

#[test]
fn the_same_holder_may_lock_again_to_refresh() {
    let app = App::deployed();
    assert_eq!(
        code(&app.out("lock", &["--holder", "alice", "--ttl", "1m"])),
        0
    );
    assert_eq!(
        code(&app.out("lock", &["--holder", "alice", "--ttl", "1h"])),
        0
    );
}

#[test]
fn an_expired_lock_is_taken_over_without_force() {
    let app = App::deployed();
    app.write(
        "deploy.lock",
        "# guarded-restart deploy lock\nholder: ghost\nexpires: 2020-01-01T00:00:00Z\n",
    );
    let out = app.out("lock", &["--holder", "alice"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("ghost"), "{}", stderr(&out));
}

#[test]
fn minas_live_lock_is_not_taken_over() {
    let app = App::deployed();
    app.write("deploy.lock", "");
    let out = app.out("lock", &["--holder", "alice"]);
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "(Mina)");
}

#[test]
fn unlock_is_idempotent() {
    let app = App::deployed();
    assert_eq!(code(&app.out("lock", &["--holder", "alice"])), 0);
    let out = app.out("unlock", &["--holder", "alice"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!app.path("deploy.lock").exists());
    let out = app.out("unlock", &["--holder", "alice"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("held no deploy lock"));
}

#[test]
fn unlock_leaves_someone_elses_live_lock_unless_forced() {
    let app = App::deployed();
    assert_eq!(code(&app.out("lock", &["--holder", "alice"])), 0);
    let out = app.out("unlock", &["--holder", "bob"]);
    assert_eq!(code(&out), 75);
    assert_one_line_error(&out, "not by bob");
    assert!(app.path("deploy.lock").exists());
    assert_eq!(code(&app.out("unlock", &["--holder", "bob", "--force"])), 0);
    assert!(!app.path("deploy.lock").exists());
}

#[test]
fn lock_does_not_write_through_a_planted_symlink() {
    let app = App::deployed();
    let victim = app.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, app.path("deploy.lock")).unwrap();
    let out = app.out("lock", &["--holder", "alice", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = fs::symlink_metadata(app.path("deploy.lock")).unwrap();
    assert!(meta.is_file(), "the symlink was replaced by a regular file");
}

#[test]
fn unlock_removes_a_symlinked_lock_not_its_target() {
    let app = App::deployed();
    let victim = app.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, app.path("deploy.lock")).unwrap();
    assert_eq!(code(&app.out("unlock", &["--force"])), 0);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(fs::symlink_metadata(app.path("deploy.lock")).is_err());
}

#[test]
fn pidfile_and_log_are_not_written_through_planted_symlinks() {
    let app = App::deployed();
    let victim = app.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let pidfile = app.base.join("worker.pid");
    symlink(&victim, &pidfile).unwrap();
    let log = app.base.join("guard.log");
    symlink(&victim, &log).unwrap();
    let out = app.run_now(
        &[
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--write-pidfile",
            "--log",
            log.to_str().unwrap(),
        ],
        &["/bin/true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn world_writable_directory_without_sticky_bit_is_refused_for_the_pidfile() {
    let app = App::deployed();
    let dir = app.base.join("pids");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let pidfile = dir.join("worker.pid");
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap(), "--write-pidfile"],
        &["/bin/true"],
    );
    assert_eq!(code(&out), 78);
    assert_one_line_error(&out, "world-writable without the sticky bit");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = app.run_now(
        &["--pidfile", pidfile.to_str().unwrap(), "--write-pidfile"],
        &["/bin/true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn holders_compare_as_stored_whatever_the_quoting() {
    let app = App::deployed();
    assert_eq!(code(&app.out("lock", &["--holder", " alice@laptop\n"])), 0);
    assert!(fs::read_to_string(app.path("deploy.lock"))
        .unwrap()
        .contains("holder: alice@laptop\n"));
    let out = app.out("unlock", &["--holder", "alice@laptop"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!app.path("deploy.lock").exists());
}

#[test]
fn output_is_not_written_through_a_planted_symlink() {
    let app = App::deployed();
    let victim = app.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let output = app.base.join("worker.out");
    symlink(&victim, &output).unwrap();
    let out = app.run_now(
        &["--output", output.to_str().unwrap()],
        &["/bin/echo", "overwritten"],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_one_line_error(&out, "is a symlink");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn lock_refuses_a_world_writable_deploy_root_without_sticky_bit() {
    let app = App::deployed();
    fs::set_permissions(&app.root, fs::Permissions::from_mode(0o777)).unwrap();
    let out = app.out("lock", &["--holder", "alice"]);
    assert_eq!(code(&out), 78);
    assert_one_line_error(&out, "world-writable without the sticky bit");
    assert!(!app.path("deploy.lock").exists());
}

#[test]
fn created_files_are_never_world_writable_even_with_umask_0() {
    let app = App::deployed();
    let pidfile = app.base.join("worker.pid");
    let output = app.base.join("worker.out");
    let log = app.base.join("guard.log");
    let umask0 = |args: &[&str]| {
        let status = std::process::Command::new("sh")
            .args(["-c", "umask 0; exec \"$0\" \"$@\"", BIN])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    };
    let (root, log_arg) = (app.root.to_str().unwrap(), log.to_str().unwrap());
    umask0(&["lock", "--app", root, "--holder", "alice", "--log", log_arg]);
    let lock_mode = fs::metadata(app.path("deploy.lock"))
        .unwrap()
        .permissions()
        .mode();
    umask0(&["unlock", "--app", root, "--holder", "alice"]);
    umask0(&[
        "run",
        "--app",
        root,
        "--settle",
        "0",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--write-pidfile",
        "--output",
        output.to_str().unwrap(),
        "--log",
        log_arg,
        "--",
        "/bin/true",
    ]);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for (what, mode) in [
        ("deploy.lock", lock_mode & 0o777),
        ("pidfile", mode(&pidfile)),
        ("output", mode(&output)),
        ("log", mode(&log)),
        ("waiter", mode(&app.path(".guarded-restart.wait"))),
    ] {
        assert_eq!(
            mode & 0o022,
            0,
            "{what} is group- or world-writable: {mode:o}"
        );
    }
}
