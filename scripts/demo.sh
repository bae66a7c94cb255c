#!/usr/bin/env bash
# The incident, replayed on a throwaway deploy root: a Capistrano-style deploy
# stops the worker, monit fires before `current` flips, and guarded-restart
# waits and starts the worker on the NEW release instead of the old one.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release
bin=$PWD/target/release/guarded-restart

work=$(mktemp -d "${TMPDIR:-/tmp}/guarded-restart-demo.XXXXXX")
worker_pid=
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

app=$work/app
old=20261204100000
new=20261204153000
mkdir -p "$app/releases/$old" "$app/shared/tmp/pids"
echo "$old" > "$app/releases/$old/REVISION"
touch -d '2 hours ago' "$app/releases/$old"
ln -s "$app/releases/$old" "$app/current"

# What monit's restart script starts: a worker that says which code it runs.
cat > "$work/worker.sh" <<'WORKER'
#!/bin/sh
echo "worker $$ running release $(basename "$PWD") (revision ${GUARDED_RESTART_REVISION:-?})"
exec sleep 300
WORKER
chmod +x "$work/worker.sh"

log=$work/guard.log
pidfile=$app/shared/tmp/pids/worker.pid
t0=$(date +%s%N)
say() {
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '%3d.%02ds  %-7s %s\n' $((ms / 1000)) $((ms % 1000 / 10)) "$1" "$2"
}

echo "deploy root: $app   (current -> releases/$old)"
echo
say deploy "guarded-restart lock (after deploy:check)"
"$bin" lock --app "$app" --holder demo --reason "cap production deploy" --log "$log" >/dev/null
say deploy "quiet + stop the worker; building releases/$new ..."
say monit "worker missing: exec guarded-restart run ... -- worker.sh"
"$bin" run --app "$app" --settle 2s --pidfile "$pidfile" --write-pidfile \
  --output "$work/worker.out" --chdir --log "$log" -- "$work/worker.sh" 2>/dev/null &
worker_pid=$!
sleep 1
mkdir -p "$app/releases/$new"
echo "$new" > "$app/releases/$new/REVISION"
say deploy "flip current -> releases/$new (ln -s + mv, as Capistrano does)"
ln -s "$app/releases/$new" "$app/releases/current"
mv -T "$app/releases/current" "$app/current"
say deploy "guarded-restart unlock (after deploy:finished)"
"$bin" unlock --app "$app" --holder demo --log "$log" >/dev/null

for _ in $(seq 100); do [ -s "$work/worker.out" ] && break; sleep 0.1; done
say monit "worker is up"
echo
echo "--- the guard's log ($log) ---"
sed -e "s|$app|<app>|g" "$log"
echo
echo "--- the worker ---"
cat "$work/worker.out"
echo "pidfile: $(cat "$pidfile") (the worker's own PID)"
echo
if grep -q "running release $new" "$work/worker.out"; then
  echo "OK: the worker runs the NEW release $new; a plain restart script would have started $old."
else
  echo "FAILED: the worker is not on the new release" >&2
  exit 1
fi
