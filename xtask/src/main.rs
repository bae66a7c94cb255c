//! `cargo xtask gen` writes the man pages, shell completions and the help
//! snapshot from guarded-restart's clap definition; `cargo xtask check` fails
//! when any checked-in copy is stale, so CI catches a flag added without docs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use guarded_restart::cli::Cli;

const BIN: &str = "guarded-restart";

const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
started (after exec, the command's own status), ready, or nothing to do
.TP
.B 1
any other error; for \fBverify\fR, the worker runs a release other than current
.TP
.B 2
usage error
.TP
.B 3
\fBverify\fR: no worker is running
.TP
.B 75
not ready: the deadline passed, \fB\-\-no\-wait\fR, or the deploy lock is held by someone else
.TP
.B 78
misconfiguration: deploy root missing or unreadable, a lock path that is a directory, releases not a directory, a world\-writable directory without the sticky bit
.TP
.B 126
COMMAND found but not executable
.TP
.B 127
COMMAND not found (the message names the PATH searched)
"#;

const FILES: &str = r#".SH FILES
Paths are relative to the deploy root (\fB\-\-app\fR).
.TP
.B deploy.lock
this tool's deploy lock (written by \fBlock\fR), or Mina's empty one
.TP
.B .dep/deploy.lock
Deployer's deploy lock
.TP
.B shared/deploy\-lock.yml
capistrano\-deploy\-lock's lock (\fB:expire_at:\fR honoured, \fBfalse\fR = never)
.TP
.B current
the symlink to the live release (\fB\-\-current\fR)
.TP
.B releases/
release directories, compared by mtime (\fB\-\-releases\fR)
.TP
.B release
Deployer's symlink to the release it is building
.TP
.B releases/current
Capistrano's new link between \fBln \-s\fR and \fBmv\fR
.TP
.B tmp/build\-*
Mina's build directories
.TP
.B current.DEPLOY_UNFINISHED
Ansible deploy_helper's new link
.TP
.B DEPLOY_UNFINISHED, BAD_RELEASE
markers inside a release: not finalized yet; never to be started
.TP
.B .guarded\-restart.wait
the flock that lets one \fBrun\fR per app wait (the launch mutex is a flock on the deploy root itself)
"#;

const EXAMPLES: &str = r#".SH EXAMPLES
monit, wrapping today's restart script:
.PP
.nf
check process sidekiq with pidfile /var/www/app/shared/tmp/pids/sidekiq.pid
  if does not exist then exec "/usr/bin/guarded\-restart run \-\-app /var/www/app
    \-\-pidfile /var/www/app/shared/tmp/pids/sidekiq.pid \-\-log /var/log/guarded\-restart.log
    \-\- /opt/scripts/restart_sidekiq.sh" repeat every 1 cycles
.fi
.PP
Sidekiq 6 or later, which writes no pidfile:
.PP
.nf
guarded\-restart run \-\-app /var/www/app \-\-pidfile /var/www/app/shared/tmp/pids/sidekiq.pid \e
  \-\-write\-pidfile \-\-output /var/www/app/shared/log/sidekiq.log \-\-chdir \e
  \-\- /usr/local/bin/bundle exec sidekiq
.fi
.PP
A deploy tool around a deploy:
.PP
.nf
guarded\-restart lock \-\-app /var/www/app \-\-ttl 30m \-\-reason "cap production deploy"
guarded\-restart unlock \-\-app /var/www/app
.fi
.PP
Is the worker on the current release? (monit check program, or by hand)
.PP
.nf
guarded\-restart verify \-\-app /var/www/app \-\-pidfile /var/www/app/shared/tmp/pids/sidekiq.pid
.fi
"#;

fn render_man(cmd: &clap::Command, name: &str, top: bool) -> io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone()).title(name.to_uppercase());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if top {
        man.render_subcommands_section(&mut out)?;
    }
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    if top {
        out.extend_from_slice(FILES.as_bytes());
        out.extend_from_slice(EXAMPLES.as_bytes());
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Every generated file, path relative to the repository root, and its bytes.
fn generate() -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut files = Vec::new();
    files.push((
        PathBuf::from(format!("doc/{BIN}.1")),
        render_man(&cmd, BIN, true)?,
    ));

    let mut help = String::new();
    help.push_str(&format!(
        "$ {BIN} --help\n{}\n",
        cmd.clone().render_long_help()
    ));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let short = sub.get_name().to_string();
        let name = format!("{BIN}-{short}");
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("{BIN} {short}"));
        files.push((
            PathBuf::from(format!("doc/{name}.1")),
            render_man(&sub, &name, false)?,
        ));
        help.push_str(&format!(
            "\n$ {BIN} {short} --help\n{}\n",
            sub.clone().render_long_help()
        ));
    }
    files.push((PathBuf::from("doc/help.txt"), help.into_bytes()));

    for (shell, file) in [
        (Shell::Bash, format!("{BIN}.bash")),
        (Shell::Zsh, format!("_{BIN}")),
        (Shell::Fish, format!("{BIN}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
        files.push((PathBuf::from("completions").join(file), out));
    }
    Ok(files)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn main() -> ExitCode {
    // clap shows an env var's value in --help; the snapshot must not depend on it.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GUARDED_RESTART_") {
            std::env::remove_var(key);
        }
    }
    let task = std::env::args().nth(1).unwrap_or_default();
    let files = match generate() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("xtask: cannot render: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = root();
    match task.as_str() {
        "gen" => {
            for (path, bytes) in files {
                let path = root.join(path);
                if let Err(e) = fs::create_dir_all(path.parent().unwrap())
                    .and_then(|()| fs::write(&path, bytes))
                {
                    eprintln!("xtask: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        "check" => {
            let stale: Vec<_> = files
                .iter()
                .filter(|(path, bytes)| fs::read(root.join(path)).ok().as_ref() != Some(bytes))
                .map(|(path, _)| path.display().to_string())
                .collect();
            if stale.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "xtask: stale (run `cargo xtask gen` and commit): {}",
                    stale.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("usage: cargo xtask gen|check");
            ExitCode::from(2)
        }
    }
}
