<?php
// guarded-restart tasks for Deployer 7. In deploy.php:
//
//   require __DIR__ . '/guarded_restart.php';   // this file, copied next to deploy.php
//
// No lock task: Deployer holds {{deploy_path}}/.dep/deploy.lock for the whole
// deploy and guarded-restart honours it, with the `release` symlink Deployer
// builds into and the `mv -T release current` flip (ctime, not mtime, shows it).
// That lock carries no expiry, so give the guard a --max-lock-age that fits.

namespace Deployer;

set('guarded_restart_bin', 'guarded-restart');
set('guarded_restart_pidfile', '{{deploy_path}}/shared/tmp/pids/sidekiq.pid');
set('guarded_restart_verify_wait', '60s');

desc('Fail unless the worker runs the release current points to');
task('guarded_restart:verify', function () {
    run('{{guarded_restart_bin}} verify --app {{deploy_path}} --pidfile {{guarded_restart_pidfile}} --wait {{guarded_restart_verify_wait}}');
});

desc('Show what the guard sees: locks, current, releases, the worker');
task('guarded_restart:status', function () {
    writeln(run('{{guarded_restart_bin}} status --app {{deploy_path}} --pidfile {{guarded_restart_pidfile}}'));
});

after('deploy:success', 'guarded_restart:verify');
