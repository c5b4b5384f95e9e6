#!/usr/bin/env bash
# Same-run regression check between two gm binaries (e.g. the last release and this tree): runs
# scripts/bench-http.sh, scripts/bench-trust.sh (verify throughput) and scripts/bench-enroll.sh
# against each binary in turn, ROUNDS times, alternating BASE and NEW so that both see the same
# machine state, and prints the median of each figure per binary and NEW/BASE as a ratio
# (throughput: above 1 is faster; latency and CPU per request: below 1 is faster). The server's
# CPU time per join and per heartbeat moves far less with this VM's load than their rates do;
# `*_writer_us/req` is the part of it the one db-writer thread ran, which every write waits for.
# Usage: scripts/bench-compare.sh BASE_BIN NEW_BIN [ROUNDS=2] [HTTP_SECONDS=5]
#   e.g. git worktree add /tmp/base v0; (cd /tmp/base && cargo build --release)
#        cargo build --release && scripts/bench-compare.sh /tmp/base/target/release/gm target/release/gm
# Needs what the three scripts need (wrk, sqlite3). About (4 x HTTP_SECONDS + 40 s) per binary per round.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/bench-compare.sh BASE_BIN NEW_BIN [ROUNDS] [HTTP_SECONDS]" >&2; exit 2; }
base=$(realpath "$1"); new=$(realpath "$2"); rounds=${3:-2}; secs=${4:-5}
for b in "$base" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
cargo bench --bench trust --no-run --quiet 2>/dev/null
cargo bench --bench enroll --no-run --quiet 2>/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# one LABEL BIN ROUND: every figure of one binary in one round, as "name value" lines.
one() {
  local label=$1 bin=$2 round=$3 f="$out/$1.$3"
  GM_BIN="$bin" scripts/bench-http.sh "$secs" >"$f.http" 2>&1
  GM_BIN="$bin" scripts/bench-trust.sh 10000 16 >"$f.trust" 2>&1
  GM_BIN="$bin" scripts/bench-enroll.sh 5000 16 >"$f.enroll" 2>&1
  {
    awk '$1 ~ /^\// && $2 ~ /^[0-9.]+$/ {print $1 "_req/s", $2}' "$f.http"
    awk '/^peak RSS/ {gsub(/[()]/, "", $5); print "serve_peak_rss_kB", $5}' "$f.http"
    awk '/^attestations\/verify/ {print "verify_req/s", $6; print "verify_p99_ms", $12}' "$f.trust"
    awk '/req\/s/ && ($1 == "join" || $1 == "heartbeat") {phase = w = $1; print $1 "_req/s", $7; print $1 "_p99_ms", $13}
         /CPU per request: server/ && phase != "" {print phase "_server_us/req", $5; phase = ""}
         /db-writer thread per request: running/ && w != "" {print w "_writer_us/req", $6; w = ""}' "$f.enroll"
  } >"$f.figures"
  [ -s "$f.figures" ] || { echo "no figures from $label round $round; outputs:" >&2; cat "$f".* >&2; exit 1; }
}

for r in $(seq "$rounds"); do
  echo "round $r of $rounds: base" >&2; one base "$base" "$r"
  echo "round $r of $rounds: new" >&2; one new "$new" "$r"
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
printf '%-22s %14s %14s %8s\n' figure base new new/base
names=$(cat "$out"/base.*.figures | awk '{print $1}' | awk '!seen[$0]++')
for n in $names; do
  b=$(cat "$out"/base.*.figures | awk -v n="$n" '$1 == n {print $2}' | median)
  w=$(cat "$out"/new.*.figures | awk -v n="$n" '$1 == n {print $2}' | median)
  ratio=$(awk -v b="$b" -v w="$w" 'BEGIN {printf (b > 0) ? "%.2f" : "-", w / b}')
  printf '%-22s %14s %14s %8s\n' "$n" "$b" "$w" "$ratio"
done
echo "medians of $rounds round(s), base and new alternating; base $base, new $new"
