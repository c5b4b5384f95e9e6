#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/ (cargo-fuzz, nightly) for SECONDS each (default 300), all of
# them unless TARGETs are named. Installs cargo-fuzz if missing, seeds fuzz/corpus/<target>/ from
# tests/vectors (scripts/fuzz-corpus.py), builds every target once, then runs them one by one and
# prints a summary line per target (seconds, executions, result) for RELIABILITY.md "Fuzzing".
# Exits 1 if any target crashed, leaked, timed out or ran out of memory, naming the reproducer
# (fuzz/artifacts/<target>/...) and the command that replays it; 2 if it could not run.
#
#   scripts/fuzz.sh                      # every target, 5 minutes each
#   scripts/fuzz.sh 20                   # the CI smoke run (.ci/run)
#   scripts/fuzz.sh 600 http_conn auth   # two targets, 10 minutes each
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
[ $# -gt 0 ] && shift
case "$seconds" in ''|*[!0-9]*) echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2;; esac
# Longest a single input may take before libFuzzer calls it a hang (a crash for this script).
per_input_timeout=${FUZZ_INPUT_TIMEOUT:-60}

rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  started=$(date +%s)
  cargo install cargo-fuzz --locked
  echo "fuzz: installed cargo-fuzz in $(( $(date +%s) - started )) s"
fi
command -v python3 >/dev/null || { echo "fuzz: python3 is needed to seed the corpus (scripts/fuzz-corpus.py)" >&2; exit 2; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
scripts/fuzz-corpus.py "${targets[@]}"
started=$(date +%s)
# One build of every target: `fuzz run` below then starts at once, and the build time is reported apart.
cargo +nightly fuzz build
echo "fuzz: built ${#targets[@]} target(s) in $(( $(date +%s) - started )) s"

mkdir -p fuzz/logs
failed=0
summary=()
for target in "${targets[@]}"; do
  log="fuzz/logs/$target.log"
  echo "fuzz: $target for ${seconds} s (log: $log)"
  status=0
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout="$per_input_timeout" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
  if [ $status -eq 0 ]; then
    summary+=("$target ${seconds}s ${runs:-?} runs: ok")
  else
    failed=1
    artifact=$(grep -oE 'fuzz/artifacts/[^ ]+' "$log" | tail -n 1 || true)
    summary+=("$target ${seconds}s ${runs:-?} runs: FAILED (exit $status)")
    echo "fuzz: $target FAILED; last lines of $log:" >&2
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 >&2 || tail -n 20 "$log" >&2
    if [ -n "$artifact" ]; then
      echo "fuzz: reproducer: $artifact" >&2
      echo "fuzz: replay it:  cargo +nightly fuzz run $target $artifact" >&2
    fi
  fi
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit $failed
