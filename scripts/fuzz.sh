#!/usr/bin/env bash
# Coverage-guided fuzzing (AFL++ through cargo-afl, both from crates.io) of the
# parsers that read what others wrote: lock files in every format, pidfiles,
# durations and timestamps. Fails on any crash (a panic is a crash).
#
#   scripts/fuzz.sh                      each target for FUZZ_SECONDS (default 20): the CI run
#   FUZZ_SECONDS=600 scripts/fuzz.sh     the long run (10 minutes a target)
#   FUZZ_SAVE_CORPUS=1 ...               keep what AFL found (its queue) as fuzz/corpus
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-20}
targets=(lock_file pidfile duration timestamp)

command -v cargo-afl >/dev/null || cargo install --quiet --locked cargo-afl
cargo afl build --quiet --release

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1
passed=0
failed=0
for t in "${targets[@]}"; do
  out=out/$t
  rm -rf "$out"
  mkdir -p out
  cargo afl fuzz -V "$seconds" -i "corpus/$t" -o "$out" "target/release/$t" >"out-$t.log" 2>&1 || true
  stats=$out/default/fuzzer_stats
  crashes=$( (find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null || true) | wc -l)
  if [ ! -f "$stats" ]; then
    echo "fuzz $t: AFL did not run:"
    tail -n 20 "out-$t.log"
    failed=$((failed + 1))
  elif [ "$crashes" -gt 0 ]; then
    echo "fuzz $t: $crashes crash(es), inputs in fuzz/$out/default/crashes"
    failed=$((failed + 1))
  else
    echo "fuzz $t: $(awk -F' *: ' '$1=="execs_done"{e=$2} $1=="corpus_count"{c=$2} $1=="run_time"{r=$2} END{print e " execs in " r " s, corpus " c ", 0 crashes"}' "$stats")"
    passed=$((passed + 1))
    if [ "${FUZZ_SAVE_CORPUS:-0}" = 1 ]; then
      # AFL's queue is already the set of inputs that each found new coverage.
      rm -rf "corpus/$t"
      mkdir -p "corpus/$t"
      n=0
      for input in "$out"/default/queue/id:*; do
        n=$((n + 1))
        cp "$input" "corpus/$t/$(printf '%06d' "$n")"
      done
    fi
  fi
  rm -f "out-$t.log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
