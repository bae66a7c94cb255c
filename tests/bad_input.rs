//! Bad input beyond the matrix (tests/matrix.rs): every subcommand on a
//! missing deploy root, extra lock paths, usage errors, and `status --json`
//! on names that are not UTF-8.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::*;

fn expect(out: std::process::Output, exit: i32, words: &str) {
    assert_eq!(
        code(&out),
        exit,
        "stdout {:?} stderr {:?}",
        stdout(&out),
        stderr(&out)
    );
    assert_one_line_error(&out, words);
}

#[test]
fn missing_deploy_root_is_78() {
    let app = App::new();
    let missing = app.base.join("nope");
    for sub in ["check", "status", "lock", "unlock"] {
        let out = app
            .guard()
            .args([sub, "--app", missing.to_str().unwrap()])
            .output()
            .unwrap();
        expect(out, 78, "does not exist");
    }
    let out = app
        .guard()
        .args(["run", "--app", missing.to_str().unwrap(), "--", "/bin/true"])
        .output()
        .unwrap();
    expect(out, 78, "does not exist");
}

#[test]
fn lock_path_that_is_a_directory_is_78() {
    let app = App::deployed();
    fs::create_dir(app.path("deploy.lock")).unwrap();
    expect(app.out("check", &[]), 78, "is a directory");
    let extra = app.base.join("lockdir");
    fs::create_dir(&extra).unwrap();
    fs::remove_dir(app.path("deploy.lock")).unwrap();
    expect(
        app.out("check", &["--lock", extra.to_str().unwrap()]),
        78,
        "is a directory",
    );
}

#[test]
fn bad_durations_are_usage_errors() {
    let app = App::deployed();
    for bad in ["", "5x", "-1", "1.5s", "9999999999999999999999", "400d"] {
        expect(
            app.out("check", &[&format!("--settle={bad}")]),
            2,
            "--settle",
        );
    }
    expect(app.out("lock", &["--ttl", "soon"]), 2, "invalid duration");
}

#[test]
fn usage_errors_are_one_line_and_2() {
    let app = App::deployed();
    expect(
        app.guard().arg("bogus").output().unwrap(),
        2,
        "unrecognized subcommand",
    );
    expect(app.guard().arg("check").output().unwrap(), 2, "--app");
    expect(app.out("run", &[]), 2, "COMMAND");
    expect(
        app.out("run", &["--write-pidfile", "--", "/bin/true"]),
        2,
        "--pidfile",
    );
    expect(
        app.out("run", &["--env", "NOEQUALS", "--", "/bin/true"]),
        2,
        "KEY=VALUE",
    );
}

#[test]
fn dangling_lock_symlink_still_counts() {
    let app = App::deployed();
    symlink(app.base.join("nowhere"), app.path("deploy.lock")).unwrap();
    let out = app.out("check", &["--settle", "0"]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
}

#[test]
fn non_utf8_release_names_do_not_crash() {
    use std::os::unix::ffi::OsStrExt;
    let app = App::deployed();
    let name = std::ffi::OsStr::from_bytes(b"r\xff\xfe");
    fs::create_dir(app.path("releases").join(name)).unwrap();
    let out = app.out("check", &["--settle", "0"]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is newer than current's r1"),
        "{}",
        stdout(&out)
    );
    let out = app.out("status", &["--settle", "0", "--json"]);
    assert_eq!(code(&out), 0);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
}
