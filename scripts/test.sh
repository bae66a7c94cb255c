#!/usr/bin/env bash
# The whole test suite, as CI runs it: deps, lint, unit and binary tests, the
# demo, and the end-to-end replay on the real stack (monit, Sidekiq, Redis,
# Capistrano over sshd on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
scripts/demo.sh
if [ -x scripts/e2e/run.sh ]; then
  scripts/e2e/run.sh
fi
