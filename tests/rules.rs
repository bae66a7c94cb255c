//! Each readiness rule, proven through `guarded-restart check` on a real
//! deploy root: exit 0 "ready: RELEASE", or 75 and the one line saying why.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::*;

fn check(app: &App, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--settle", "0"];
    args.extend_from_slice(extra);
    app.out("check", &args)
}

fn assert_not_ready(app: &App, extra: &[&str], words: &str) {
    let out = check(app, extra);
    assert_eq!(
        code(&out),
        75,
        "stdout {:?} stderr {:?}",
        stdout(&out),
        stderr(&out)
    );
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line:?}");
    assert!(
        line.starts_with("not ready: ") && line.contains(words),
        "expected {words:?} in {line:?}"
    );
}

fn assert_ready_on(app: &App, extra: &[&str], release: &str) -> String {
    let out = check(app, extra);
    assert_eq!(
        code(&out),
        0,
        "stdout {:?} stderr {:?}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).trim(),
        format!("ready: {}", app.release_path(release).display())
    );
    stderr(&out)
}

#[test]
fn settled_deploy_is_ready_on_current_release() {
    let app = App::deployed();
    app.release("r0");
    app.age(&app.release_path("r0"), 9000);
    assert_ready_on(&app, &[], "r1");
}

#[test]
fn own_lock_blocks_until_unlock() {
    let app = App::deployed();
    let out = app.out(
        "lock",
        &["--reason", "cap production deploy", "--holder", "alice"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_not_ready(&app, &[], "held by alice (cap production deploy)");
    assert_eq!(code(&app.out("unlock", &["--holder", "alice"])), 0);
    assert_ready_on(&app, &[], "r1");
}

#[test]
fn expired_own_lock_is_ignored_with_a_warning_naming_its_holder() {
    let app = App::deployed();
    app.write(
        "deploy.lock",
        "# guarded-restart deploy lock\nholder: bob\ncreated: 2020-01-01T00:00:00Z\nexpires: 2020-01-01T00:30:00Z\n",
    );
    let warnings = assert_ready_on(&app, &[], "r1");
    assert!(
        warnings.contains("EXPIRED DEPLOY LOCK") && warnings.contains("bob"),
        "{warnings}"
    );
}

#[test]
fn minas_empty_lock_blocks_until_max_lock_age() {
    let app = App::deployed();
    let lock = app.write("deploy.lock", "");
    assert_not_ready(&app, &[], "(Mina)");
    app.age(&lock, 3700);
    assert_ready_on(&app, &[], "r1");
    assert_not_ready(&app, &["--max-lock-age", "2h"], "(Mina)");
}

#[test]
fn deployer_lock_blocks_and_names_the_user() {
    let app = App::deployed();
    app.write(".dep/deploy.lock", "carol\n");
    assert_not_ready(&app, &[], "held by carol");
}

#[test]
fn capistrano_deploy_lock_honours_expire_at() {
    let app = App::deployed();
    app.write(
        "shared/deploy-lock.yml",
        "---\n:created_at: 2026-01-01 00:00:00.0 Z\n:expire_at: 2999-01-01 00:00:00.0 +00:00\n:username: dave\n:message: Deploying main\n",
    );
    assert_not_ready(&app, &[], "held by dave (Deploying main)");
    app.write(
        "shared/deploy-lock.yml",
        "---\n:expire_at: 2020-01-01 00:00:00 Z\n:username: dave\n",
    );
    assert_ready_on(&app, &[], "r1");
}

#[test]
fn capistrano_deploy_lock_false_never_expires() {
    let app = App::deployed();
    let lock = app.write(
        "shared/deploy-lock.yml",
        "---\n:expire_at: false\n:username: erin\n",
    );
    app.age(&lock, 86_400 * 10);
    assert_not_ready(&app, &[], "never expires");
}

#[test]
fn extra_lock_paths_are_honoured() {
    let app = App::deployed();
    let extra = app.base.join("maintenance.lock");
    fs::write(&extra, "ops: db migration\n").unwrap();
    let extra = extra.display().to_string();
    assert_not_ready(&app, &["--lock", &extra], "ops: db migration");
}

#[test]
fn capistrano_mid_flip_link_blocks() {
    let app = App::deployed();
    app.release("r2");
    symlink(app.release_path("r2"), app.path("releases/current")).unwrap();
    assert_not_ready(&app, &[], "Capistrano is flipping current");
}

#[test]
fn deployer_release_link_blocks_until_build_timeout() {
    let app = App::deployed();
    symlink("releases/r1", app.path("release")).unwrap();
    assert_not_ready(&app, &[], "Deployer is building");
    app.age_link(&app.path("release"), 1900);
    let warnings = assert_ready_on(&app, &[], "r1");
    assert!(warnings.contains("stale deploy artifact"), "{warnings}");
}

#[test]
fn mina_build_dir_blocks() {
    let app = App::deployed();
    fs::create_dir_all(app.path("tmp/build-1733325000")).unwrap();
    assert_not_ready(&app, &[], "Mina is building");
}

#[test]
fn ansible_unfinished_link_and_marker_block() {
    let app = App::deployed();
    symlink(
        app.release_path("r1"),
        app.path("current.DEPLOY_UNFINISHED"),
    )
    .unwrap();
    assert_not_ready(&app, &[], "deploy_helper is switching current");
    fs::remove_file(app.path("current.DEPLOY_UNFINISHED")).unwrap();
    app.write("releases/r1/DEPLOY_UNFINISHED", "");
    app.age(&app.release_path("r1"), 7200);
    assert_not_ready(&app, &[], "not finalized");
}

#[test]
fn broken_current_is_not_ready() {
    let app = App::new();
    app.release("r1");
    assert_not_ready(&app, &[], "does not exist");
    fs::create_dir(app.path("current")).unwrap();
    assert_not_ready(&app, &[], "is not a symlink");
    fs::remove_dir(app.path("current")).unwrap();
    symlink(app.path("releases/gone"), app.path("current")).unwrap();
    assert_not_ready(&app, &[], "releases/gone, which does not exist");
    fs::remove_file(app.path("current")).unwrap();
    symlink("current", app.path("current")).unwrap();
    assert_not_ready(&app, &[], "symlink loop");
    fs::remove_file(app.path("current")).unwrap();
    app.write("releases/file", "x");
    symlink(app.path("releases/file"), app.path("current")).unwrap();
    assert_not_ready(&app, &[], "not a directory");
}

#[test]
fn relative_current_resolves_against_its_own_directory() {
    let app = App::new();
    app.release("r1");
    app.age(&app.release_path("r1"), 7200);
    symlink("releases/r1", app.path("current")).unwrap();
    assert_ready_on(&app, &[], "r1");
}

#[test]
fn newer_release_being_built_blocks_until_build_timeout() {
    let app = App::deployed();
    let r2 = app.release("r2");
    assert_not_ready(&app, &[], "r2 is newer than current's r1");
    app.age(&r2, 600);
    assert_not_ready(&app, &[], "r2 is newer");
    let warnings = assert_ready_on(&app, &["--build-timeout", "5m"], "r1");
    assert!(warnings.contains("abandoned release"), "{warnings}");
}

#[test]
fn release_names_are_never_read_as_times() {
    let app = App::deployed();
    let later_name = app.release("29991231235959");
    app.age(&later_name, 8000);
    assert_ready_on(&app, &[], "r1");
}

#[test]
fn release_marked_bad_does_not_block() {
    let app = App::deployed();
    app.release("r2");
    app.write("releases/r2/BAD_RELEASE", "");
    let warnings = assert_ready_on(&app, &[], "r1");
    assert!(warnings.contains("BAD_RELEASE"), "{warnings}");
}

#[test]
fn fresh_current_is_not_settled_until_settle_passes() {
    let app = App::deployed();
    app.release("r2");
    app.age(&app.release_path("r2"), 100);
    app.point_current("r2");
    let out = app.out("check", &["--settle", "1h"]);
    assert_eq!(code(&out), 75);
    assert!(stdout(&out).contains("waiting"), "{}", stdout(&out));
    assert!(stdout(&out).contains("to settle"), "{}", stdout(&out));
}

#[test]
fn status_shows_locks_current_releases_and_decision() {
    let app = App::deployed();
    app.write(".dep/deploy.lock", "carol\n");
    fs::create_dir_all(app.path("tmp/build-1")).unwrap();
    let out = app.out("status", &["--settle", "0"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for words in [
        "not ready",
        "Deployer",
        "carol",
        "Mina is building",
        "releases/r1",
        "1 in",
    ] {
        assert!(text.contains(words), "expected {words:?} in:\n{text}");
    }
    let out = app.out("status", &["--settle", "0", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["locks"][0]["holder"], "carol");
    assert_eq!(json["locks"][0]["live"], true);
    assert_eq!(json["artifacts"][0]["kind"], "Mina is building a release");
    assert_eq!(
        json["current"]["release"],
        app.release_path("r1").display().to_string()
    );
}

#[test]
fn every_flag_reads_from_the_environment() {
    let app = App::deployed();
    app.write(".dep/deploy.lock", "carol\n");
    let out = app
        .guard()
        .arg("check")
        .env("GUARDED_RESTART_APP", &app.root)
        .env("GUARDED_RESTART_SETTLE", "0")
        .output()
        .unwrap();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(stdout(&out).contains("carol"));
    let out = app
        .guard()
        .arg("check")
        .env("GUARDED_RESTART_APP", &app.root)
        .env("GUARDED_RESTART_SETTLE", "0")
        .env("GUARDED_RESTART_MAX_LOCK_AGE", "0")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
