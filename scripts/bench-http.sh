#!/usr/bin/env bash
# HTTP benchmark: wrk (16 keep-alive connections, 2 threads) against a sandbox `gm serve` on
# /healthz, /crl, /genesis and /metrics. Prints req/s, p50, p99 per route and the server's peak RSS.
# Targets (2-core machine): /healthz >= 60,000 req/s, p99 <= 2 ms, RSS <= 10 MB.
# Usage: scripts/bench-http.sh [seconds-per-route]   (default 10; needs wrk: apt-get install wrk)
# GM_BIN=path runs that gm binary instead of building target/release/gm (scripts/bench-compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" quickstart --home "$work/sb" --no-serve 2>/dev/null
# Access logs go to a file, as under journald; the line is still formatted and written per request.
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-} GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind 127.0.0.1:0 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
curl -fsS "http://$addr/crl" >/dev/null && curl -fsS "http://$addr/policy" >/dev/null
printf '%-10s %12s %10s %10s\n' route req/s p50 p99
for route in /healthz /crl /genesis /metrics; do
  out=$(wrk -t2 -c16 -d"${secs}s" --latency "http://$addr$route")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
  printf '%-10s %12s %10s %10s %s\n' "$route" "$rps" "$p50" "$p99" "$errors"
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "peak RSS: $((rss_kb / 1024)) MiB (${rss_kb} kB)"
echo "access log lines written: $(wc -l <"$work/log")"
