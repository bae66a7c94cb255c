#!/usr/bin/env bash
# Measures what the guard costs, side by side in one run (not a test: it
# asserts nothing). Results and method go into BENCHMARKS.md.
#
#   scripts/bench.sh                  all of it (the idle-CPU part waits BENCH_IDLE seconds, default 600)
#   BENCH_IDLE=60 scripts/bench.sh    a shorter idle measurement (0: none)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q hyperfine >/dev/null; }
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
for tool in /usr/bin/time:time /usr/bin/bc:bc; do
  [ -x "${tool%%:*}" ] || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q "${tool#*:}" >/dev/null; }
done

# Measure what ships (scripts/package.sh): the static musl build where the
# target is installed, else the ordinary release build.
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl &&
  cargo build --quiet --release --locked --target x86_64-unknown-linux-musl; then
  bin=$PWD/target/x86_64-unknown-linux-musl/release/guarded-restart
  build="static musl"
else
  cargo build --quiet --release --locked
  bin=$PWD/target/release/guarded-restart
  build="glibc, dynamic"
fi
work=$(mktemp -d)
guard_pid=
trap '[ -n "$guard_pid" ] && kill "$guard_pid" 2>/dev/null; rm -rf "$work"' EXIT

# The same decision in bash, as a careful ops script would make it.
cat >"$work/check.sh" <<'SH'
#!/bin/bash
app=$1
for lock in "$app/deploy.lock" "$app/.dep/deploy.lock" "$app/shared/deploy-lock.yml"; do
  [ -e "$lock" ] && { echo "not ready: $lock"; exit 75; }
done
[ -L "$app/release" ] || [ -e "$app/releases/current" ] && { echo "not ready: deploy in progress"; exit 75; }
target=$(readlink -f "$app/current") || { echo "not ready: current"; exit 75; }
newest=$(ls -t "$app/releases" | head -n 1)
[ "$app/releases/$newest" = "$target" ] || { echo "not ready: newer release"; exit 75; }
echo "ready: $target"
SH
chmod +x "$work/check.sh"

make_app() { # N -> $work/app-N with N releases, current on the newest
  local app=$work/app-$1 i
  mkdir -p "$app/releases"
  for i in $(seq -w 1 "$1"); do mkdir "$app/releases/r$i"; done
  touch -d '1 hour ago' "$app"/releases/r*
  touch -d '30 minutes ago' "$app/releases/r$(seq -w 1 "$1" | tail -n 1)"
  ln -s "$app/releases/r$(seq -w 1 "$1" | tail -n 1)" "$app/current.new"
  mv -T "$app/current.new" "$app/current"
  touch -h -d '30 minutes ago' "$app/current"
  echo "$app"
}

median_ms() { # hyperfine JSON -> median in ms, 2 decimals
  ruby -rjson -e 'r = JSON.parse(File.read(ARGV[0]))["results"]; r.each { |x| printf("%.2f\n", x["median"] * 1000) }' "$1"
}

rss_kib() { # COMMAND... -> median peak RSS over 9 runs
  local i
  for i in $(seq 9); do /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1; done | sort -n | sed -n 5p
}

echo "# guarded-restart benchmarks"
echo
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "binary: $build, $(stat -c %s "$bin") bytes stripped (release profile: lto = true, codegen-units = 1, strip = true)"
echo
echo "## check: wall time (median of hyperfine runs) and peak RSS"
echo
echo "| releases | /bin/true ms | check ms | bash check ms | check / true | bash / check | check RSS KiB | true RSS KiB |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in 5 100 1000 10000; do
  app=$(make_app "$n")
  "$bin" check --app "$app" --settle 0 >/dev/null || { echo "bench: check on $n releases is not ready" >&2; exit 1; }
  "$work/check.sh" "$app" >/dev/null || { echo "bench: bash check on $n releases is not ready" >&2; exit 1; }
  hyperfine -N --warmup 5 --runs 200 --export-json "$work/h.json" \
    "/bin/true" "$bin check --app $app --settle 0" "$work/check.sh $app" >/dev/null 2>&1
  mapfile -t m < <(median_ms "$work/h.json")
  printf '| %s | %s | %s | %s | %.2fx | %.1fx | %s | %s |\n' "$n" "${m[0]}" "${m[1]}" "${m[2]}" \
    "$(echo "${m[1]} / ${m[0]}" | bc -l)" "$(echo "${m[2]} / ${m[1]}" | bc -l)" \
    "$(rss_kib "$bin" check --app "$app" --settle 0)" "$(rss_kib /bin/true)"
done

echo
echo "## reaction: from the last change of current to the exec of COMMAND, minus --settle"
echo
app=$work/app-5
settle_ms=1000
reactions=()
for i in $(seq 10); do
  rm -f "$work/started"
  "$bin" lock --app "$app" --holder bench >/dev/null
  "$bin" run --app "$app" --settle 1s -- /bin/sh -c "date +%s%N > $work/started" 2>/dev/null &
  guard_pid=$!
  sleep 0.3
  mkdir -p "$app/releases/n$i"
  ln -s "$app/releases/n$i" "$app/current.new"
  "$bin" unlock --app "$app" --holder bench >/dev/null
  flipped=$(date +%s%N)
  mv -T "$app/current.new" "$app/current"
  wait "$guard_pid"
  guard_pid=
  reactions+=($((($(cat "$work/started") - flipped) / 1000000 - settle_ms)))
done
sorted=$(printf '%s\n' "${reactions[@]}" | sort -n | tr '\n' ' ')
echo "settle 1s; over-settle ms, 10 runs sorted: $sorted(median $(printf '%s\n' "${reactions[@]}" | sort -n | sed -n 5p) ms)"

idle=${BENCH_IDLE:-600}
[ "$idle" -gt 0 ] || exit 0
echo
echo "## CPU while waiting (${idle}s behind a deploy lock)"
echo
"$bin" lock --app "$app" --holder bench --ttl 2h >/dev/null
"$bin" run --app "$app" --timeout "$((idle + 60))s" -- /bin/true 2>/dev/null &
guard_pid=$!
sleep "$idle"
ticks=$(awk '{print $14 + $15}' "/proc/$guard_pid/stat")
hz=$(getconf CLK_TCK)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$guard_pid/status")
kill "$guard_pid"
guard_pid=
echo "cpu: $ticks ticks of 1/${hz}s in ${idle}s = $(echo "scale=4; 100 * $ticks / $hz / $idle" | bc -l)% of one core; peak RSS ${rss} KiB (poll every 200 ms)"
