#!/usr/bin/env bash
# Smoke test of the .deb as a user gets it: build it, install it with dpkg,
# use the installed binary, man page, completions and templates, remove it.
set -euo pipefail
cd "$(dirname "$0")/.."

if dpkg-query -W -f='${Status}' guarded-restart 2>/dev/null | grep -q "install ok installed"; then
  echo "deb-test: guarded-restart is already installed here; not touching it" >&2
  exit 1
fi
scripts/package.sh
deb=$(ls -t dist/guarded-restart_*_amd64.deb | head -1)
work=$(mktemp -d)
trap 'dpkg -r guarded-restart >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

dpkg -i "$deb" >/dev/null
passed=0
failed=0
check() { # DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}

check "binary on PATH" test -x /usr/bin/guarded-restart
check "version" sh -c '/usr/bin/guarded-restart --version | grep -q "^guarded-restart "'
check "static binary" sh -c 'file -L /usr/bin/guarded-restart | grep -q "static"'
check "man page" sh -c 'zcat /usr/share/man/man1/guarded-restart.1.gz | grep -q "EXIT STATUS"'
check "subcommand man page" test -f /usr/share/man/man1/guarded-restart-run.1.gz
check "bash completion" sh -c 'grep -q guarded-restart /usr/share/bash-completion/completions/guarded-restart'
check "zsh completion" test -f /usr/share/zsh/vendor-completions/_guarded-restart
check "fish completion" test -f /usr/share/fish/vendor_completions.d/guarded-restart.fish
check "monit template" test -f /usr/share/doc/guarded-restart/monit/sidekiq.monitrc
check "systemd template" test -f /usr/share/doc/guarded-restart/systemd/sidekiq.service
check "capistrano tasks" test -f /usr/share/doc/guarded-restart/capistrano/guarded_restart.rake

# The installed binary does its job on a throwaway deploy root.
mkdir -p "$work/app/releases/1"
touch -d '1 hour ago' "$work/app/releases/1"
ln -s "$work/app/releases/1" "$work/app/current"
check "installed check says ready" sh -c "/usr/bin/guarded-restart check --app '$work/app' --settle 0 | grep -q '^ready: '"
/usr/bin/guarded-restart lock --app "$work/app" --holder deb-test >/dev/null
check "installed check honours the lock" sh -c "/usr/bin/guarded-restart check --app '$work/app' --settle 0; [ \$? -eq 75 ]"
check "installed run starts the command" sh -c "/usr/bin/guarded-restart unlock --app '$work/app' --holder deb-test &&
  /usr/bin/guarded-restart run --app '$work/app' --settle 0 -- /usr/bin/touch '$work/started' && test -f '$work/started'"

dpkg -r guarded-restart >/dev/null
check "removed cleanly" sh -c '! test -e /usr/bin/guarded-restart'

echo "deb-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
