//! Bad input gets a documented exit code and one `guarded-restart:` line,
//! never a panic (101) or a backtrace.

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
fn deploy_root_that_is_a_file_is_78() {
    let app = App::new();
    let file = app.write("file", "x");
    let out = app
        .guard()
        .args(["check", "--app", file.to_str().unwrap()])
        .output()
        .unwrap();
    expect(out, 78, "is not a directory");
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
fn releases_that_is_a_file_is_78() {
    let app = App::new();
    let file = app.write("not-releases", "x");
    expect(
        app.out("check", &["--releases", file.to_str().unwrap()]),
        78,
        "is not a directory",
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
fn garbage_lock_files_are_still_locks_and_never_crash() {
    let app = App::deployed();
    let huge = "x".repeat(2 * 1024 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deploy.lock", b"\x00\xff\xfe binary".to_vec()),
        (
            "deploy.lock",
            b"# guarded-restart deploy lock\nholder: tr".to_vec(),
        ),
        ("deploy.lock", huge.into_bytes()),
        ("shared/deploy-lock.yml", b"{{{{".to_vec()),
        (".dep/deploy.lock", b"\n\n\n".to_vec()),
    ];
    for (path, bytes) in cases {
        let file = app.path(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, &bytes).unwrap();
        let out = app.out("check", &["--settle", "0"]);
        assert_eq!(code(&out), 75, "{path}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with("not ready: deploy locked"),
            "{}",
            stdout(&out)
        );
        fs::remove_file(&file).unwrap();
    }
}

#[test]
fn dangling_lock_symlink_still_counts() {
    let app = App::deployed();
    symlink(app.base.join("nowhere"), app.path("deploy.lock")).unwrap();
    let out = app.out("check", &["--settle", "0"]);
    assert_eq!(code(&out), 75, "{}", stderr(&out));
}

#[test]
fn garbage_pidfiles_mean_not_running() {
    let app = App::deployed();
    let pidfile = app.base.join("worker.pid");
    for content in [
        "",
        "garbage",
        "-5",
        "0",
        "1",
        "99999999999999999999",
        "4194305",
    ] {
        fs::write(&pidfile, content).unwrap();
        let marker = app.base.join("started");
        let _ = fs::remove_file(&marker);
        let out = app.out(
            "run",
            &[
                "--settle",
                "0",
                "--pidfile",
                pidfile.to_str().unwrap(),
                "--",
                "/usr/bin/touch",
                marker.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&out), 0, "{content:?}: {}", stderr(&out));
        assert!(
            marker.exists(),
            "pidfile {content:?} must not count as a running worker"
        );
        assert!(
            stderr(&out).contains("worker not running: pidfile"),
            "{}",
            stderr(&out)
        );
    }
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
