#!/usr/bin/env bash
# Mixed load against one release `gm serve` (issue 8 item 1): for SECONDS, at the same time,
# 1,000 keep-alive clients on public routes (/healthz, /genesis, /crl, /metrics, /policy, /readyz,
# /sovereign.json), 200 slowloris connections (a partial head, one byte every 3 s) and 50 clients
# enrolling and heartbeating (signed admin invite -> join -> heartbeats), driven by benches/load.rs.
# Reports /healthz p50/p99 (target p99 < 50 ms), every non-2xx or connection error on the
# well-formed requests (target 0) and the server's RSS sampled every second (must stay bounded).
# Exit status 1 when a target is missed. Figures go to RELIABILITY.md ("Load").
# Usage: scripts/load.sh [SECONDS]   (default 120; LOAD_* variables tune the mix, see benches/load.rs)
#        scripts/load.sh --smoke [SECONDS]
#   --smoke is the short version CI runs (.ci/run): debug builds of gm and of the driver (no
#   release build to wait for), a fifth of the mix (200 public, 40 slowloris, 10 enrollers) for
#   30 s by default. It checks the same things except speed: zero errors, slowloris dropped, RSS
#   reported; the /healthz p99 limit is raised to 1 s, since a debug build's latency is no measure
#   (speed targets are judged on the release build, above).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = --smoke ]; then
  smoke=1
  shift
fi
secs="${1:-$([ "$smoke" = 1 ] && echo 30 || echo 120)}"
case $secs in
  ''|*[!0-9]*) echo "usage: scripts/load.sh [--smoke] [SECONDS]  (SECONDS: a positive number)" >&2; exit 2 ;;
esac
if [ "$smoke" = 1 ]; then
  export LOAD_PUBLIC=${LOAD_PUBLIC:-200} LOAD_SLOW=${LOAD_SLOW:-40} LOAD_ENROLLERS=${LOAD_ENROLLERS:-10}
  export LOAD_P99_LIMIT_MS=${LOAD_P99_LIMIT_MS:-1000}
fi
# Every client connection is a socket in the driver and one in the server (plus SQLite files and
# a margin): both processes need that many descriptors (1,762 for the full mix).
need=$(( ${LOAD_PUBLIC:-1000} + ${LOAD_SLOW:-200} + ${LOAD_ENROLLERS:-50} + 512 ))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "load: the open-file limit is $(ulimit -n); this mix needs $need or more (raise the hard limit)" >&2; exit 2
fi
if [ "$smoke" = 1 ]; then
  [ -n "${GM_BIN:-}" ] || cargo build --quiet
  # harness = false: `cargo test --bench` builds the driver with the dev profile and passes the
  # arguments after `--` to its main.
  driver=(cargo test --quiet --bench load --)
  default_bin=target/debug/gm
else
  [ -n "${GM_BIN:-}" ] || cargo build --release --quiet
  driver=(cargo bench --quiet --bench load --)
  default_bin=target/release/gm
fi
"${driver[@]:0:5}" --no-run 2>/dev/null
work=$(mktemp -d)
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
# GM_BIN runs another build, e.g. the static musl binary of scripts/build-static.sh (musl's malloc).
bin=${GM_BIN:-$default_bin}
"$bin" quickstart --home "$work/sb" --no-serve >/dev/null 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18443)
# One trusted proxy hop: each enrollment request carries its own X-Forwarded-For, as many nodes
# would (the per-address admin and join buckets would otherwise throttle the single client).
# Access logs go to a file, as under journald.
GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind "127.0.0.1:$port" --no-scheduler \
  --trusted-proxy-hops 1 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
grep -q listening "$work/out" || { echo "load: gm serve did not start:" >&2; cat "$work/log" >&2; exit 2; }
echo "machine: $(nproc) cores, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg); open-file limit $(ulimit -n)"
status=0
"${driver[@]}" "127.0.0.1:$port" "$work/sb" "$secs" "$pid" || status=$?
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server log: $(wc -l <"$work/log") lines, $(grep -c '"level":"ERROR"' "$work/log" || true) errors, $(grep -ci panick "$work/log" || true) panics"
echo "database: $(du -h "$work/sb/na.db" | cut -f1) + WAL $(du -h "$work/sb/na.db-wal" 2>/dev/null | cut -f1)"
if [ "$status" != 0 ]; then
  cp "$work/log" "${TMPDIR:-/tmp}/gm-load-server.log"
  echo "server log kept in ${TMPDIR:-/tmp}/gm-load-server.log"
fi
exit "$status"
