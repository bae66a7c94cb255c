#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine (run as root).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  monit          # the supervisor the guard runs under (5.33)
  redis-server   # Sidekiq's backend
  ruby-sidekiq   # the worker (Sidekiq 6.4)
  capistrano     # the deploy tool whose race is replayed
  openssh-server # Capistrano deploys over SSH, to 127.0.0.1
  git            # Capistrano's git strategy
  procps         # ps for diagnostics in failing end-to-end runs
  file           # the package test checks that the binary is static
  systemd        # systemd-analyze, to verify the unit template
  util-linux     # unshare/nsenter: the second host of the two-host deploy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The distribution services must not run on their own: the tests start their
# own monit, redis and sshd on loopback and stop them by PID.
for service in monit redis-server ssh; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    echo "install-deps: note: the system's $service is running; the tests do not use it"
  fi
done

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
