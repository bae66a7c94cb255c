# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_guarded_restart_global_optspecs
    string join \n h/help V/version
end

function __fish_guarded_restart_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_guarded_restart_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_guarded_restart_using_subcommand
    set -l cmd (__fish_guarded_restart_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "run" -d 'Wait until a start is safe, then exec COMMAND on the settled release (monit\'s exec target)'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "check" -d 'Say at once whether a start would be safe now: exit 0 "ready: RELEASE", else 75 and why'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "status" -d 'Show everything the guard sees: locks, current, releases, artifacts, settle, the worker'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "wait" -d 'Block until a start would be safe (for systemd\'s ExecStartPre= and scripts)'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "verify" -d 'Is the running worker on the release current points to? 0 yes, 1 drift, 3 no worker'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "lock" -d 'Take the deploy lock (for deploy tools); returns once no guard can start anything'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "unlock" -d 'Release the deploy lock (idempotent)'
complete -c guarded-restart -n "__fish_guarded_restart_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l current -d 'The current symlink [default: <app>/current]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l releases -d 'The releases directory [default: <app>/releases]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l lock -d 'An extra lock file to honour (repeatable)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l settle -d 'How long current must stay unchanged before a start' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l build-timeout -d 'A newer release or deploy artifact untouched this long is abandoned' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l max-lock-age -d 'Locks without an expiry expire this long after their mtime' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l pidfile -d 'The worker\'s pidfile: a live worker there means nothing to do' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l pidfile-match -d 'Count the pidfile\'s process as the worker only if its cmdline contains PATTERN' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l output -d 'Append COMMAND\'s stdout and stderr to FILE' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l timeout -d 'Give up (exit 75, start nothing) when not ready after DUR' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l log -d 'Append one timestamped line per decision to FILE (monit discards output)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l env -d 'Set KEY=VALUE in COMMAND\'s environment (repeatable); monit passes almost none' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l write-pidfile -d 'Write the guard\'s own PID to --pidfile just before exec (for Sidekiq >= 6, which writes none)'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l no-wait -d 'Do not wait: exit 75 at once when not ready'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -l chdir -d 'Run COMMAND in the resolved release directory'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand run" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l current -d 'The current symlink [default: <app>/current]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l releases -d 'The releases directory [default: <app>/releases]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l lock -d 'An extra lock file to honour (repeatable)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l settle -d 'How long current must stay unchanged before a start' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l build-timeout -d 'A newer release or deploy artifact untouched this long is abandoned' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l max-lock-age -d 'Locks without an expiry expire this long after their mtime' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -l log -d 'Append one timestamped line per decision to FILE (monit discards output)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand check" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l current -d 'The current symlink [default: <app>/current]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l releases -d 'The releases directory [default: <app>/releases]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l lock -d 'An extra lock file to honour (repeatable)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l settle -d 'How long current must stay unchanged before a start' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l build-timeout -d 'A newer release or deploy artifact untouched this long is abandoned' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l max-lock-age -d 'Locks without an expiry expire this long after their mtime' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l pidfile -d 'The worker\'s pidfile, to show its process and release' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l pidfile-match -d 'As for run' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand status" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l current -d 'The current symlink [default: <app>/current]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l releases -d 'The releases directory [default: <app>/releases]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l lock -d 'An extra lock file to honour (repeatable)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l settle -d 'How long current must stay unchanged before a start' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l build-timeout -d 'A newer release or deploy artifact untouched this long is abandoned' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l max-lock-age -d 'Locks without an expiry expire this long after their mtime' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l timeout -d 'Give up (exit 75) when not ready after DUR' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -l log -d 'Append one timestamped line per decision to FILE (monit discards output)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand wait" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l current -d 'The current symlink [default: <app>/current]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l releases -d 'The releases directory [default: <app>/releases]' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l pidfile -d 'The worker\'s pidfile' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l pidfile-match -d 'What a worker\'s cmdline contains: the pidfile\'s process must match, and any other matching process under releases/ is an extra worker (exit 1)' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l wait -d 'Keep looking for up to DUR while the worker is not (yet) on current, e.g. right after a deploy' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -l json -d 'Print JSON instead of one line'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand verify" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l ttl -d 'The lock expires after DUR, so a deploy that dies cannot keep the worker down' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l reason -d 'Why, for status and the log (e.g. "cap production deploy")' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l holder -d 'Who holds the lock [default: USER@HOST]' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l log -d 'Append one timestamped line per decision to FILE (monit discards output)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -l force -d 'Take over a live lock held by someone else'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand lock" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -l app -d 'Deploy root (Capistrano\'s deploy_to)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -l holder -d 'Who holds the lock [default: USER@HOST]' -r
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -l log -d 'Append one timestamped line per decision to FILE (monit discards output)' -r -F
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -l force -d 'Remove the lock even if someone else holds it'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand unlock" -s V -l version -d 'Print version'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "run" -d 'Wait until a start is safe, then exec COMMAND on the settled release (monit\'s exec target)'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "check" -d 'Say at once whether a start would be safe now: exit 0 "ready: RELEASE", else 75 and why'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "status" -d 'Show everything the guard sees: locks, current, releases, artifacts, settle, the worker'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "wait" -d 'Block until a start would be safe (for systemd\'s ExecStartPre= and scripts)'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "verify" -d 'Is the running worker on the release current points to? 0 yes, 1 drift, 3 no worker'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "lock" -d 'Take the deploy lock (for deploy tools); returns once no guard can start anything'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "unlock" -d 'Release the deploy lock (idempotent)'
complete -c guarded-restart -n "__fish_guarded_restart_using_subcommand help; and not __fish_seen_subcommand_from run check status wait verify lock unlock help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
