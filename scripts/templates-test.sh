#!/usr/bin/env bash
# The supervisor templates must be what their programs accept: every monit
# stanza passes `monit -t`, the systemd unit passes `systemd-analyze verify`
# (with the binary's path and a user that exists here). The end-to-end suite
# also runs the monit templates for real (scenarios naive and drop_in).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release
guard=$PWD/target/release/guarded-restart
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
passed=0

for template in templates/monit/*.monitrc; do
  rc=$work/monitrc
  printf 'set daemon 1\nset logfile %s/monit.log\nset idfile %s/monit.id\nset statefile %s/monit.state\nset pidfile %s/monit.pid\n' \
    "$work" "$work" "$work" "$work" >"$rc"
  sed -e "s|/usr/bin/guarded-restart|$guard|g" \
    -e "s|as uid deploy and gid deploy|as uid root and gid root|" "$template" >>"$rc"
  chmod 600 "$rc"
  if out=$(monit -t -c "$rc" 2>&1) && grep -q "Control file syntax OK" <<<"$out" && ! grep -qi "error\|does not exist\|not found" <<<"$out"; then
    passed=$((passed + 1))
  else
    echo "FAIL $template: $out"
    failed=$((failed + 1))
  fi
done

for template in templates/systemd/*.service; do
  unit=$work/$(basename "$template")
  sed -e "s|/usr/bin/guarded-restart|$guard|g" -e "s|/usr/local/bin/bundle|/bin/true|" \
    -e "s|^User=deploy|User=root|" -e "s|^Group=deploy|Group=root|" "$template" >"$unit"
  if out=$(systemd-analyze verify "$unit" 2>&1) && [ -z "$out" ]; then
    passed=$((passed + 1))
  else
    echo "FAIL $template: $out"
    failed=$((failed + 1))
  fi
done

echo "templates: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
