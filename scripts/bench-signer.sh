#!/usr/bin/env bash
# Remote-signer benchmark (customer-held custody): POST /join rate and p99 with the NA key loaded
# (managed) against the same NA signing through `gm signer run` on loopback, in one run, rounds
# alternating between the two modes on fresh sandboxes. Each round pre-creates N invites, then drives
# pre-signed joins from T client threads (benches/enroll.rs, heartbeats skipped). Prints every round
# and the medians with remote/local ratios.
# Goal (issue 16): remote >= 50 % of the local join rate, remote p99 <= 30 ms.
# Usage: scripts/bench-signer.sh [N=10000] [THREADS=16] [ROUNDS=3] [SESSIONS=4]
# GM_BIN=path runs that gm binary instead of building target/release/gm.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"; threads="${2:-16}"; rounds="${3:-3}"; sessions="${4:-4}"
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=$(realpath "${GM_BIN:-target/release/gm}")
cargo bench --bench enroll --no-run --quiet 2>/dev/null
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for SECONDS COMMAND...
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

# run_round MODE ROUND: prints "MODE joins/s p99_ms"
run_round() {
  local mode=$1 round=$2 home="$work/$1-$2"
  "$bin" quickstart --home "$home" --no-serve >/dev/null 2>&1
  if [ "$mode" = remote ]; then
    mkdir -p "$work/customer-$round"
    mv "$home/keys/na.key" "$work/customer-$round/na.key"
    printf '\n[signer]\nlisten = "127.0.0.1:0"\n' >>"$home/gm.toml"
  fi
  GENESIS_LOG_FORMAT=json "$bin" serve --home "$home" --bind 127.0.0.1:0 --trusted-proxy-hops 1 --no-scheduler \
    >"$home/out" 2>"$home/log" &
  pids+=($!)
  wait_for 10 grep -q listening "$home/out"
  local addr
  addr=$(sed -n 's#listening on http://##p' "$home/out")
  if [ "$mode" = remote ]; then
    local listen policy="$work/customer-$round/policy.toml"
    listen=$(sed -n 's/.*"signer_listen": "\([^"]*\)".*/\1/p' "$home/gm-runtime.json")
    "$bin" signer init --policy "$policy" --genesis "$home/genesis.signed.json" >/dev/null
    sed -i 's/^max_signatures_per_minute = .*/max_signatures_per_minute = 1000000/' "$policy"
    "$bin" signer run --key "$work/customer-$round/na.key" --genesis "$home/genesis.signed.json" \
      --connect "$listen" --na-host-key "$home/keys/na-host.pub" --policy "$policy" \
      --state-dir "$work/customer-$round/state" --sessions "$sessions" 2>"$home/signer.log" &
    pids+=($!)
    wait_for 15 "$bin" probe --na "http://$addr" --check readyz
  fi
  local line
  line=$(BENCH_HEARTBEAT_ROUNDS=0 cargo bench --bench enroll --quiet -- "$addr" "$home" "$n" "$threads" | grep '^join ')
  echo "$mode $(echo "$line" | awk '{print $(NF-7), $(NF-1)}')"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}

echo "gm: $bin; $n joins x $rounds rounds per mode, $threads client threads, $sessions signer sessions"
results="$work/results"
for r in $(seq "$rounds"); do
  for mode in local remote; do
    run_round "$mode" "$r" | tee -a "$results"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
lr=$(awk '$1 == "local" {print $2}' "$results" | median); lp=$(awk '$1 == "local" {print $3}' "$results" | median)
rr=$(awk '$1 == "remote" {print $2}' "$results" | median); rp=$(awk '$1 == "remote" {print $3}' "$results" | median)
echo
echo "| mode | joins/s (median) | p99 ms (median) |"
echo "|---|---|---|"
echo "| local key file | $lr | $lp |"
echo "| remote signer (loopback, $sessions sessions) | $rr | $rp |"
awk -v a="$rr" -v b="$lr" -v p="$rp" 'BEGIN {printf "remote/local join rate: %.2f (goal >= 0.50); remote p99 %.2f ms (goal <= 30)\n", a / b, p}'
