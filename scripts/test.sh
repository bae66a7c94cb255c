#!/usr/bin/env bash
# The whole test suite, as CI runs it: deps, lint, unit and binary tests, the
# demo, and the end-to-end replay on the real stack (monit, Sidekiq, Redis,
# Capistrano over sshd on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --locked
cargo xtask check   # the checked-in man pages, completions and --help snapshot are current
scripts/demo.sh
scripts/templates-test.sh
scripts/fuzz.sh   # 20 s a parser; the long run: FUZZ_SECONDS=600 scripts/fuzz.sh
scripts/deb-test.sh
scripts/e2e/run.sh
# A short soak in CI; run a long one by hand: E2E_SOAK=50 scripts/e2e/run.sh
E2E_SOAK=1 scripts/e2e/run.sh
