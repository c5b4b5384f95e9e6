#!/usr/bin/env bash
# Enrollment benchmark: pre-creates N invites through the signed admin API, then drives pre-signed
# POST /join and then POST /heartbeat requests from T client threads (benches/enroll.rs) against a
# release `gm serve` on a sandbox. Reports req/s, p50, p99, the CPU time gm serve and the load
# generator spent per request with the machine's idle share, where the one db-writer thread's time
# per request went (running, waiting for a core, asleep), the Ed25519 cost of one join measured on
# its own, and the machine's fsync cost.
# Targets (2 cores): >= 5,000 joins/s and >= 10,000 heartbeats/s, p99 <= 20 ms.
# Usage: scripts/bench-enroll.sh [N=20000] [THREADS=16]
# GM_BIN=path runs that gm binary instead of building target/release/gm (scripts/bench-compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"; threads="${2:-16}"
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
cargo bench --bench enroll --no-run --quiet 2>/dev/null
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""
echo "fsync cost of this disk (dd 4 KiB oflag=dsync x 1000):"
dd if=/dev/zero of="$work/dd" bs=4k count=1000 oflag=dsync 2>&1 | tail -1
"$bin" quickstart --home "$work/sb" --no-serve 2>/dev/null
# Access logs to a file as under journald; one proxy hop so each benchmark request can carry its own
# X-Forwarded-For (the per-address join/admin buckets would throttle a single client otherwise).
GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind 127.0.0.1:0 --trusted-proxy-hops 1 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
BENCH_SERVER_PID=$pid cargo bench --bench enroll --quiet -- "$addr" "$work/sb" "$n" "$threads"
echo "peak RSS of gm serve: $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") kB"
echo "database: $(du -h "$work/sb/na.db" | cut -f1) + WAL $(du -h "$work/sb/na.db-wal" 2>/dev/null | cut -f1)"
