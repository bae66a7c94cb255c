#!/usr/bin/env bash
# End-to-end proof on the real stack: monit 5.33 + Sidekiq 6.4 + Redis + a
# real Capistrano 3.17 deploy over sshd, all on 127.0.0.1 with random ports
# and per-run keys. Replays the incident without the guard (the bug must show)
# and with it (it must never show).
#
#   scripts/e2e/run.sh                 all scenarios
#   scripts/e2e/run.sh naive drop_in   some of them
#   E2E_SOAK=50 scripts/e2e/run.sh     repeat scenarios 2-4 50 times with random
#                                      timing; prints "stale starts: X / N"
#   E2E_KEEP=1                         keep the work directory for a post-mortem
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)

cargo build --quiet --release --manifest-path "$top/Cargo.toml"
GUARD=$top/target/release/guarded-restart

W=$(mktemp -d "${TMPDIR:-/tmp}/guarded-restart-e2e.XXXXXX")
W=$(cd "$W" && pwd -P)
started_pids=()
failed=0
passed=0

log() { printf '%s e2e: %s\n' "$(date +%T)" "$*"; }

# Every worker of this run, found by its cwd under $W: never by name.
run_workers() {
  local p cwd
  for p in /proc/[0-9]*; do
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    case $cwd in "$W"/*) ;; *) continue ;; esac
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -Eq 'sidekiq -r|^sidekiq [0-9]'; then
      echo "${p#/proc/}"
    fi
  done
}

# Workers of one deploy root on this host (this mount namespace: the
# two_hosts scenario's host b lives in another one).
app_workers() { # APP
  local pid cwd ns
  ns=$(readlink /proc/$$/ns/mnt)
  for pid in $(run_workers); do
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || continue
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
    case $cwd in "$1"/*) echo "$pid" ;; esac
  done
}

workers_under() { # DIR: in any namespace, for cleanup
  local pid cwd
  for pid in $(run_workers); do
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || continue
    case $cwd in "$1"/*) echo "$pid" ;; esac
  done
}

kill_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  kill_pids $(run_workers) 2>/dev/null || true
  [ ${#started_pids[@]} -gt 0 ] && kill_pids "${started_pids[@]}"
  if [ "${E2E_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    log "work directory kept: $W"
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close'; }

wait_until() { # SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${limit}s waiting for: $what"
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- the stack
start_redis() {
  REDIS_PORT=$(free_port)
  mkdir -p "$W/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$W/redis" --logfile "$W/redis/redis.log" --daemonize no &
  started_pids+=($!)
  wait_until 20 "redis on 127.0.0.1:$REDIS_PORT" \
    sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping 2>/dev/null | grep -q PONG"
  log "redis on 127.0.0.1:$REDIS_PORT (pid ${started_pids[-1]})"
}

# One sshd per simulated host, on its own random port. Host b's sshd runs in
# a mount namespace of its own in which DIR is bind-mounted over MOUNTPOINT:
# the same deploy_to is then a different deploy root on each host, as on two
# real servers.
start_sshd() { # HOST [DIR MOUNTPOINT] -> SSH_PORT (host a) or SSH_PORT_B, SSHD_PID
  local host=$1 d=$W/ssh port
  port=$(free_port)
  mkdir -p "$d" /run/sshd
  chmod 700 "$d"
  if [ ! -f "$d/id_rsa" ]; then
    ssh-keygen -q -t rsa -b 2048 -N '' -f "$d/host_key"
    ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f "$d/id_rsa"
    cp "$d/id_rsa.pub" "$d/authorized_keys"
    chmod 600 "$d/authorized_keys"
  fi
  cat >"$d/sshd_$host.conf" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd_$host.pid
AuthorizedKeysFile $d/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
  if [ -n "${2:-}" ]; then
    unshare --mount --propagation private sh -c \
      'mount --bind "$1" "$2" && exec /usr/sbin/sshd -D -e -f "$3"' sh "$2" "$3" "$d/sshd_$host.conf" \
      2>"$d/sshd_$host.log" &
  else
    /usr/sbin/sshd -D -e -f "$d/sshd_$host.conf" 2>"$d/sshd_$host.log" &
  fi
  SSHD_PID=$!
  started_pids+=("$SSHD_PID")
  SSH_KEY=$d/id_rsa
  wait_until 20 "sshd on 127.0.0.1:$port" \
    ssh -q -p "$port" -i "$SSH_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null "$(id -un)@127.0.0.1" true
  log "sshd for host $host on 127.0.0.1:$port (pid $SSHD_PID)"
  if [ "$host" = a ]; then SSH_PORT=$port; else SSH_PORT_B=$port; fi
}

# The probe app: each version's worker.rb carries its version in its code, so
# a probe job tells which code is really executing.
make_repo() {
  local repo=$W/repo v
  git init -q -b main "$repo"
  for v in v1 v2 v3; do
    cat >"$repo/worker.rb" <<RUBY
require "sidekiq"

CODE_VERSION = "$v"

redis = { url: ENV.fetch("REDIS_URL") }
Sidekiq.configure_server { |config| config.redis = redis }
Sidekiq.configure_client { |config| config.redis = redis }

class ProbeJob
  include Sidekiq::Worker

  def perform(path)
    File.write(path, CODE_VERSION)
  end
end
RUBY
    echo "$v" >"$repo/VERSION"
    git -C "$repo" add -A
    git -C "$repo" -c user.name=e2e -c user.email=e2e@localhost commit -q -m "$v"
    git -C "$repo" branch -q "$v"
  done
  REPO=$repo
}

# ---------------------------------------------------------------- one app
# Sets S (scenario dir), APP (deploy root), PIDFILE, REDIS_URL and the
# restart script that today's monit stanza runs.
new_app() { # NAME DB [DIR]
  S=${3:-$W/$1}
  APP=$S/app
  rm -rf "$S"
  PIDFILE=$APP/shared/tmp/pids/sidekiq.pid
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT/$2
  mkdir -p "$APP/shared/bin" "$APP/shared/log" "$APP/shared/tmp/pids"
  cat >"$APP/shared/bin/restart_sidekiq.sh" <<SH
#!/bin/sh
# Today's restart script: cd into current, background Sidekiq, write its pidfile.
cd $APP/current || exit 1
REDIS_URL=$REDIS_URL nohup /usr/bin/sidekiq -r ./worker.rb -c 2 \
  >>$APP/shared/log/sidekiq.log 2>&1 </dev/null &
echo \$! >$PIDFILE
SH
  chmod 755 "$APP/shared/bin/restart_sidekiq.sh"
}

cap_env=()
cap() { # ARGS... (environment in cap_env)
  (cd "$here/cap" && env E2E_REPO="$REPO" E2E_DEPLOY_TO="$APP" E2E_USER="$(id -un)" \
    E2E_SSH_PORT="$SSH_PORT" E2E_SSH_KEY="$SSH_KEY" E2E_GUARD="$GUARD" "${cap_env[@]}" \
    cap production "$@") >>"$S/cap.log" 2>&1
}

# A supervisor template from templates/, with this app's paths.
render_template() { # FILE
  sed -e "s|/usr/bin/guarded-restart|$GUARD|g" -e "s|/var/www/app|$APP|g" \
    -e "s|/opt/scripts/restart_sidekiq.sh|$APP/shared/bin/restart_sidekiq.sh|g" \
    -e "s|/var/log/guarded-restart.log|$S/guard.log|g" "$top/templates/$1"
}

start_monit() { # EXEC_LINE [REPEAT]
  start_monit_stanza "check process sidekiq with pidfile $PIDFILE
  if does not exist then exec \"$1\"${2:+ $2}"
}

start_monit_stanza() { # STANZA...
  {
    cat <<CONF
set daemon 1
set logfile $S/monit.log
set pidfile $S/monit.pid
set idfile $S/monit.id
set statefile $S/monit.state

CONF
    printf '%s\n' "$@"
  } >"$S/monitrc"
  chmod 600 "$S/monitrc"
  # monit under init has almost no environment; neither does this one.
  ${MONIT_NS_PID:+nsenter -t "$MONIT_NS_PID" -m} \
    env -i PATH=/bin:/usr/bin:/sbin:/usr/sbin /usr/bin/monit -I -c "$S/monitrc" >>"$S/monit.out" 2>&1 &
  monit_pids+=($!)
  started_pids+=($!)
}

monit_pids=()
stop_monit() {
  [ ${#monit_pids[@]} -eq 0 ] || kill_pids "${monit_pids[@]}"
  monit_pids=()
}

guard_line() { # EXTRA FLAGS...
  echo "$GUARD run --app $APP --pidfile $PIDFILE --settle 2s --timeout 2m --log $S/guard.log $*"
}

current_release() { readlink -f "$APP/current"; }

worker_pid() { # the pidfile's process, if alive
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

one_worker_on_current() {
  local pid workers
  pid=$(worker_pid) || return 1
  workers=$(app_workers "$APP" | wc -l)
  [ "$workers" = 1 ] && [ "$(readlink "/proc/$pid/cwd")" = "$(current_release)" ]
}

probe() { # -> the CODE_VERSION executing jobs
  local out=$S/probe.$RANDOM
  REDIS_URL=$REDIS_URL ruby -e '
    require "sidekiq"
    Sidekiq.configure_client { |c| c.redis = { url: ENV["REDIS_URL"] } }
    Sidekiq::Client.push("class" => "ProbeJob", "args" => [ARGV[0]], "queue" => "default")
  ' "$out" 2>/dev/null
  wait_until 60 "the probe job to run" test -s "$out" || return 1
  cat "$out"
}

tails() {
  local f
  for f in "$S/cap.log" "$S/monit.log" "$S/guard.log" "$APP/shared/log/sidekiq.log"; do
    [ -f "$f" ] || continue
    echo "----- tail $f"
    tail -n 25 "$f" | sed -e "s|$W|<work>|g"
  done
}

fail() {
  log "FAIL [$SCENARIO]: $*"
  tails
  failed=$((failed + 1))
  return 1
}

# Bring the app up on v1 under monit with EXEC_LINE.
bring_up() { # EXEC_LINE [REPEAT]
  cap_env+=(E2E_BRANCH=v1 E2E_RACE_PAUSE=0)
  cap deploy || { fail "initial deploy of v1 failed"; return 1; }
  start_monit "$@"
  wait_until 60 "one worker on v1" one_worker_on_current || { fail "v1 never came up"; return 1; }
}

# After a deploy: one worker, on current, running current's code, and still
# so a few monit cycles later.
assert_on_current() {
  wait_until 90 "exactly one worker on the release current points to" one_worker_on_current ||
    { fail "not exactly one worker on current ($(current_release)); workers: $(app_workers "$APP" | tr '\n' ' ')"; return 1; }
  local pid
  pid=$(worker_pid)
  sleep 3
  one_worker_on_current && [ "$(worker_pid)" = "$pid" ] ||
    { fail "the worker changed or a second one appeared after settling"; return 1; }
  local want got
  want=$(cat "$(current_release)/VERSION")
  got=$(probe) || { fail "the probe job never ran"; return 1; }
  [ "$got" = "$want" ] || { fail "probe ran $got but current is $want"; return 1; }
  log "ok [$SCENARIO]: one worker (pid $pid) on $(basename "$(current_release)"), running $got"
}

# In soak mode, start the deploy at a random point of monit's 1 s cycle.
random_phase() {
  [ -n "${E2E_SOAK:-}" ] && sleep "0.$((RANDOM % 10))"
  return 0
}

end_scenario() {
  stop_monit
  kill_pids $(workers_under "$W/$SCENARIO")
}

# ---------------------------------------------------------------- scenarios
scenario_naive() {
  new_app naive 1
  cap_env=(E2E_BRANCH=v1 E2E_RACE_PAUSE=0)
  cap deploy || { fail "initial deploy of v1 failed"; return 1; }
  # Today's stanza, plus templates/monit/verify.monitrc to see the drift.
  start_monit_stanza "check process sidekiq with pidfile $PIDFILE
  if does not exist then exec \"$APP/shared/bin/restart_sidekiq.sh\"" "$(render_template monit/verify.monitrc)"
  wait_until 60 "one worker on v1" one_worker_on_current || { fail "v1 never came up"; return 1; }
  cap_env=(E2E_BRANCH=v2 E2E_RACE_PAUSE=4)
  cap deploy || { fail "deploy v2 failed"; return 1; }
  wait_until 30 "a worker" worker_pid >/dev/null || { fail "no worker after the deploy"; return 1; }
  sleep 3
  # The incident is old code running after the deploy. Usually the pidfile's
  # worker is the stale one (the deploy's start skipped); when monit's restart
  # lands while the deploy is still removing the pidfile, the stale worker is
  # an orphan without a pidfile next to the deploy's new one.
  local pid cwd stale=() p
  pid=$(worker_pid)
  cwd=$(readlink "/proc/$pid/cwd")
  for p in $(app_workers "$APP"); do
    [ "$(readlink "/proc/$p/cwd")" = "$(current_release)" ] || stale+=("$p")
  done
  if [ ${#stale[@]} -eq 0 ]; then
    fail "the harness could not show the bug (every worker on current): it cannot prove the fix"
    return 1
  fi
  if [ "$cwd" != "$(current_release)" ]; then
    local got
    got=$(probe) || { fail "the probe job never ran"; return 1; }
    [ "$got" = v1 ] || { fail "the stale worker is in $cwd but the probe ran $got"; return 1; }
    log "ok [$SCENARIO]: the incident reproduces without the guard: current is $(basename "$(current_release)") (v2), the worker runs $(basename "$cwd") ($got)"
    wait_until 30 "monit's verify check to fail" grep -q "'sidekiq_on_current' status failed (1)" "$S/monit.log" ||
      { fail "the verify check program never reported the drift"; return 1; }
    log "ok [$SCENARIO]: monit's verify check: $(grep -m1 "'sidekiq_on_current' status failed (1)" "$S/monit.log" | sed -e "s|$W|<work>|g; s|^.*error *: ||; s|^.*warning *: ||")"
  else
    log "ok [$SCENARIO]: the incident reproduces without the guard: an orphaned worker (pid ${stale[*]}) runs $(basename "$(readlink "/proc/${stale[0]}/cwd")") next to the deploy's worker on $(basename "$(current_release)")"
    wait_until 30 "monit's verify check to fail" grep -q "'sidekiq_on_current' status failed (1) -- extra workers" "$S/monit.log" ||
      { fail "the verify check program never reported the orphaned worker"; return 1; }
    log "ok [$SCENARIO]: monit's verify check: $(grep -m1 "'sidekiq_on_current' status failed (1)" "$S/monit.log" | sed -e "s|$W|<work>|g; s|^.*error *: ||; s|^.*warning *: ||")"
  fi
}

scenario_drop_in() {
  new_app drop_in 2
  cap_env=(E2E_BRANCH=v1 E2E_RACE_PAUSE=0)
  cap deploy || { fail "initial deploy of v1 failed"; return 1; }
  # The monit stanza is templates/monit/sidekiq.monitrc itself.
  start_monit_stanza "$(render_template monit/sidekiq.monitrc)"
  wait_until 60 "one worker on v1" one_worker_on_current || { fail "v1 never came up"; return 1; }
  cap_env=(E2E_BRANCH=v2 E2E_RACE_PAUSE="${E2E_PAUSE:-4}")
  random_phase
  cap deploy || { fail "deploy v2 failed"; return 1; }
  assert_on_current
}

scenario_sidekiq6() {
  new_app sidekiq6 3
  # No script: the guard execs Sidekiq itself and writes the pidfile; the
  # deploy never starts Sidekiq (monit does), as many setups do.
  cap_env=(E2E_START_BY_DEPLOY=0)
  bring_up "$(guard_line --write-pidfile --output "$APP/shared/log/sidekiq.log" --chdir \
    --env "REDIS_URL=$REDIS_URL" -- /usr/bin/sidekiq -r ./worker.rb -c 2)" "repeat every 1 cycles" || return 1
  cap_env=(E2E_START_BY_DEPLOY=0 E2E_BRANCH=v2 E2E_RACE_PAUSE="${E2E_PAUSE:-4}")
  random_phase
  cap deploy || { fail "deploy v2 failed"; return 1; }
  assert_on_current || return 1
  local pid
  pid=$(worker_pid)
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^sidekiq' ||
    { fail "the pidfile's PID $pid is not Sidekiq itself"; return 1; }
  log "ok [$SCENARIO]: the pidfile holds Sidekiq's own PID"
}

scenario_lock_hooks() {
  new_app lock_hooks 4
  cap_env=(E2E_LOCK_HOOKS=1)
  bring_up "$(guard_line -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles" || return 1
  cap_env=(E2E_LOCK_HOOKS=1 E2E_BRANCH=v2 E2E_RACE_PAUSE="${E2E_PAUSE:-4}")
  random_phase
  cap deploy || { fail "deploy v2 failed"; return 1; }
  grep -q "waiting: deploy locked" "$S/guard.log" ||
    { fail "the guard never saw the deploy lock"; return 1; }
  [ ! -e "$APP/deploy.lock" ] || { fail "the deploy left its lock behind"; return 1; }
  assert_on_current
}

scenario_deploy_dies() {
  new_app deploy_dies 5
  cap_env=(E2E_LOCK_HOOKS=1)
  bring_up "$(guard_line -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles" || return 1
  cap_env=(E2E_LOCK_HOOKS=1 E2E_BRANCH=v2 E2E_RACE_PAUSE=2 E2E_FAIL_AFTER_STOP=1)
  if cap deploy; then fail "the deploy was meant to fail"; return 1; fi
  [ ! -e "$APP/deploy.lock" ] || { fail "deploy:failed left the lock behind"; return 1; }
  assert_on_current || return 1
  [ "$(cat "$(current_release)/VERSION")" = v1 ] || { fail "current moved although the deploy failed"; return 1; }
}

scenario_deploy_killed() {
  new_app deploy_killed 6
  # Short expiries so the suite need not wait 30 minutes: the lock's TTL and
  # --build-timeout (the unlinked release the killed deploy leaves behind).
  cap_env=(E2E_LOCK_HOOKS=1 E2E_LOCK_TTL=8s)
  bring_up "$(guard_line --build-timeout 8s -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles" || return 1
  cap_env=(E2E_LOCK_HOOKS=1 E2E_LOCK_TTL=8s E2E_BRANCH=v2 E2E_RACE_PAUSE=60)
  cap deploy &
  local cap_pid=$!
  wait_until 60 "the deploy to stop the worker" sh -c "grep -q 'race window' '$S/cap.log'" ||
    { fail "the deploy never reached the race window"; return 1; }
  kill -KILL "$cap_pid"
  wait "$cap_pid" 2>/dev/null || true
  local killed_at=$SECONDS
  [ -e "$APP/deploy.lock" ] || { fail "expected the killed deploy's lock to be left behind"; return 1; }
  log "deploy SIGKILLed mid-deploy; lock left: $(grep holder "$APP/deploy.lock")"
  wait_until 90 "the worker to come back" one_worker_on_current ||
    { fail "the worker never came back after the killed deploy"; return 1; }
  log "worker back $((SECONDS - killed_at))s after the kill, without a human (lock TTL 8s, monit cycle 1s)"
  assert_on_current || return 1
  grep -q "EXPIRED DEPLOY LOCK" "$S/guard.log" || { fail "no loud warning about the expired lock"; return 1; }
}

scenario_rollback() {
  new_app rollback 7
  cap_env=(E2E_LOCK_HOOKS=1)
  bring_up "$(guard_line -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles" || return 1
  sleep 1 # Capistrano names releases by the second
  cap_env=(E2E_LOCK_HOOKS=1 E2E_BRANCH=v2)
  cap deploy || { fail "deploy v2 failed"; return 1; }
  assert_on_current || return 1
  cap_env=(E2E_LOCK_HOOKS=1 E2E_BRANCH=v2 E2E_RACE_PAUSE=4)
  cap deploy:rollback || { fail "rollback failed"; return 1; }
  [ "$(cat "$(current_release)/VERSION")" = v1 ] || { fail "current is not the rolled-back-to v1"; return 1; }
  assert_on_current
}

# Mina and Deployer are not packaged: replay their documented command
# sequences on the server side, with the same stop/start a recipe would run.
stop_worker() {
  local pid
  pid=$(worker_pid) || return 0
  kill -TERM "$pid"
  wait_until 30 "the worker to stop" sh -c "! grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status"
  rm -f "$PIDFILE"
}

start_worker_unless_running() {
  worker_pid >/dev/null || "$APP/shared/bin/restart_sidekiq.sh"
}

# A replayed deploy root's first start: the guard in monit, the worker on v1.
guarded_worker_on_v1() {
  start_monit "$(guard_line -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles"
  "$APP/shared/bin/restart_sidekiq.sh"
  wait_until 60 "one worker on v1" one_worker_on_current || { fail "v1 never came up"; return 1; }
}

populate() { # DIR VERSION
  mkdir -p "$1"
  git -C "$REPO" archive "$2" | tar -x -C "$1"
}

# Run what a recipe from scripts/ runs on the server, rendered from the file.
recipe() { # TOOL FILE TASK
  local cmd
  cmd=$(ruby "$here/recipe_commands.rb" "$1" "$top/scripts/$2" "$3" \
    guarded_restart_bin="$GUARD" deploy_to="$APP" deploy_path="$APP" shared_path="$APP/shared" \
    project_path="$APP" guarded_restart_pidfile="$PIDFILE" guarded_restart_holder=ansible@e2e) || return 1
  log "recipe $1 $3: ${cmd//$W/<work>}"
  sh -c "$cmd" >>"$S/recipe.log" 2>&1
}

scenario_mina() {
  new_app mina 8
  mkdir -p "$APP/releases"
  populate "$APP/releases/1" v1
  ln -nfs releases/1 "$APP/current"
  guarded_worker_on_v1 || return 1
  (
    cd "$APP"
    touch deploy.lock
    build=tmp/build-$(date +%s)
    mkdir -p "$build"
    populate "$build" v2
    stop_worker
    sleep 4 # bundle, assets, migrations
    mv "$build" releases/2
    ln -nfs releases/2 current
    rm -f deploy.lock
    start_worker_unless_running
  ) >>"$S/deploy.log" 2>&1
  recipe mina mina/guarded_restart.rb guarded_restart:verify || { fail "the Mina recipe's verify failed"; return 1; }
  recipe mina mina/guarded_restart.rb guarded_restart:status || { fail "the Mina recipe's status failed"; return 1; }
  assert_on_current
}

scenario_deployer() {
  new_app deployer 9
  mkdir -p "$APP/releases" "$APP/.dep"
  populate "$APP/releases/1" v1
  ln -s releases/1 "$APP/release"
  mv -T "$APP/release" "$APP/current"
  guarded_worker_on_v1 || return 1
  (
    cd "$APP"
    echo deployer >.dep/deploy.lock
    populate releases/2 v2
    ln -s releases/2 release
    stop_worker
    sleep 4 # vendors, assets, migrations
    mv -T release current
    rm -f .dep/deploy.lock
    start_worker_unless_running
  ) >>"$S/deploy.log" 2>&1
  recipe deployer deployer/guarded_restart.php guarded_restart:verify || { fail "the Deployer recipe's verify failed"; return 1; }
  recipe deployer deployer/guarded_restart.php guarded_restart:status || { fail "the Deployer recipe's status failed"; return 1; }
  assert_on_current
}

# Ansible's deploy_helper, replayed (state=present, build, state=finalize),
# wrapped in the lock/unlock/verify tasks of scripts/ansible/guarded_restart.yml.
scenario_ansible() {
  new_app ansible 12
  mkdir -p "$APP/releases"
  populate "$APP/releases/1" v1
  ln -s "$APP/releases/1" "$APP/current"
  guarded_worker_on_v1 || return 1
  local tasks=ansible/guarded_restart.yml
  recipe ansible $tasks "guarded-restart | take the deploy lock" || { fail "lock task failed"; return 1; }
  (
    cd "$APP"
    mkdir releases/2 && touch releases/2/DEPLOY_UNFINISHED # state=present
    populate releases/2 v2
    stop_worker
    sleep 4 # the build
    rm releases/2/DEPLOY_UNFINISHED # state=finalize
    ln -s "$APP/releases/2" current.DEPLOY_UNFINISHED
    mv -T current.DEPLOY_UNFINISHED current
  ) >>"$S/deploy.log" 2>&1
  recipe ansible $tasks "guarded-restart | release the deploy lock" || { fail "unlock task failed"; return 1; }
  (start_worker_unless_running) >>"$S/deploy.log" 2>&1
  recipe ansible $tasks "guarded-restart | the worker must run the release current points to" ||
    { fail "the verify task failed"; return 1; }
  assert_on_current
}


# Two hosts (two sshd on 127.0.0.1, two deploy roots behind one deploy_to):
# host a is guarded, host b still runs the naive restart script and drifts.
# guarded_restart:verify must fail the deploy naming b; :status shows both;
# hosts whose current revisions differ fail verify too.
scenario_two_hosts() {
  local root=$W/two_hosts
  new_app two_hosts 11 "$root/hosts/b"
  local s_b=$S app_b=$APP
  new_app two_hosts 10 "$root/deploy"
  start_sshd b "$root/hosts/b" "$root/deploy"
  local ns_b=$SSHD_PID
  in_b() { nsenter -t "$ns_b" -m "$@"; }
  S=$root
  cap_env=(E2E_LOCK_HOOKS=1 E2E_SSH_PORT_B="$SSH_PORT_B" E2E_BRANCH=v1)
  cap deploy || { fail "initial deploy of v1 to both hosts failed (verify included)"; return 1; }
  S=$root/deploy
  start_monit "$(guard_line -- "$APP/shared/bin/restart_sidekiq.sh")" "repeat every 1 cycles"
  S=$s_b
  MONIT_NS_PID=$ns_b start_monit "$app_b/shared/bin/restart_sidekiq.sh"
  wait_until 60 "host a on v1" one_worker_on_current || { fail "host a is not on v1"; return 1; }

  S=$root
  cap_env=(E2E_LOCK_HOOKS=1 E2E_SSH_PORT_B="$SSH_PORT_B" E2E_BRANCH=v2 E2E_RACE_PAUSE=4 E2E_VERIFY_WAIT=10s)
  if cap deploy; then fail "verify should have failed the deploy: host b drifted"; return 1; fi
  grep -Eq "guarded-restart verify failed: 127.0.0.1:$SSH_PORT_B: (drift: worker|extra workers)" "$S/cap.log" ||
    { fail "the deploy did not fail naming host b's drift"; return 1; }
  if grep "guarded-restart verify failed" "$S/cap.log" | grep -q "127.0.0.1:$SSH_PORT:"; then
    fail "verify blamed host a, which runs current"
    return 1
  fi
  grep -B1 -A3 "workers are not on current" "$S/cap.log" | sed -e "s|$W|<work>|g"
  log "ok [$SCENARIO]: verify failed the deploy naming the drifted host b only"

  # deploy:failed restarted both workers from current (v2). Put host b's
  # current back on v1 by hand and restart its worker there.
  in_b sh -c 'cd "$1" && v1=$(ls -dt releases/*/ | sed -n 2p) && ln -s "$1/${v1%/}" releases/current &&
    mv releases/current . && kill $(cat shared/tmp/pids/sidekiq.pid)' sh "$root/deploy/app"
  cap_env=(E2E_LOCK_HOOKS=1 E2E_SSH_PORT_B="$SSH_PORT_B" E2E_BRANCH=v2)
  cap guarded_restart:status || { fail "guarded_restart:status failed"; return 1; }
  grep -Eq "127.0.0.1:$SSH_PORT_B +[a-z_]+ +[0-9]+ " "$S/cap.log" && grep -Eq "127.0.0.1:$SSH_PORT +ok +[0-9]+ " "$S/cap.log" ||
    { fail "status does not show both hosts"; return 1; }
  if E2E_VERIFY_WAIT=30s cap guarded_restart:verify; then
    fail "verify passed although the hosts run different revisions"
    return 1
  fi
  grep -q "current revisions differ" "$S/cap.log" || { fail "verify did not name the revision mismatch"; return 1; }
  log "ok [$SCENARIO]: verify fails when the hosts' current revisions differ"
}

# ---------------------------------------------------------------- main
all=(naive drop_in sidekiq6 lock_hooks deploy_dies deploy_killed rollback mina deployer ansible two_hosts)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${all[@]}")

start_redis
start_sshd a
make_repo

run_one() {
  SCENARIO=$1
  log "=== $SCENARIO"
  if "scenario_$1"; then passed=$((passed + 1)); fi
  end_scenario
  if [ -n "${SSH_PORT_B:-}" ]; then kill_pids "$SSHD_PID"; SSH_PORT_B=; fi
}

if [ -n "${E2E_SOAK:-}" ]; then
  stale=0
  runs=0
  for i in $(seq "$E2E_SOAK"); do
    for s in drop_in sidekiq6 lock_hooks; do
      E2E_PAUSE=$((1 + RANDOM % 5))
      before=$failed
      run_one "$s"
      runs=$((runs + 1))
      [ $failed -gt $before ] && stale=$((stale + 1))
      rm -rf "${W:?}/$s"
    done
  done
  echo "stale starts: $stale / $runs"
else
  for s in "${chosen[@]}"; do run_one "$s"; done
fi

echo "e2e: $passed passed, $failed failed"
[ $failed -eq 0 ]
