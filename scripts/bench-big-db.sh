#!/usr/bin/env bash
# Read routes on a big sovereign: /metrics and /nodes latency against a ~1 GiB database built by
# scripts/make-big-db.sh (400,000 certificates, 2,000,000 audit events, 2,000 active nodes).
# Targets: /metrics <= 20 ms, /nodes <= 50 ms (upstream loads every certificate row: 7.9 s / 3.3 s).
# Usage: scripts/bench-big-db.sh [CERTS] [EVENTS] [ACTIVE]
# GM_BIN=path measures that gm binary (e.g. the static musl build) instead of building target/release/gm.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""
"$bin" quickstart --home "$work/sb" --no-serve 2>/dev/null
start=$(date +%s)
scripts/make-big-db.sh "$work/sb" "${1:-400000}" "${2:-2000000}" "${3:-2000}"
echo "built in $(( $(date +%s) - start )) s: $(du -h "$work/sb/na.db" | cut -f1)"
"$bin" serve --home "$work/sb" --bind 127.0.0.1:0 >"$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
for route in /metrics /nodes; do
  curl -fsS "http://$addr$route" >/dev/null   # warm the page cache once
  times=$(for _ in $(seq 30); do curl -fsS -o /dev/null -w '%{time_total}\n' "http://$addr$route"; done | sort -n)
  p50=$(sed -n '15p' <<<"$times"); p95=$(sed -n '29p' <<<"$times"); max=$(tail -1 <<<"$times")
  printf '%-9s p50 %6.1f ms   p95 %6.1f ms   max %6.1f ms\n' "$route" "$(echo "$p50*1000" | bc)" "$(echo "$p95*1000" | bc)" "$(echo "$max*1000" | bc)"
done
curl -fsS "http://$addr/metrics" | grep -E '^genesis_mesh_na_(issued_certs_total|active_nodes|revoked_certs_total) '
echo "nodes: $(curl -fsS "http://$addr/nodes" 2>/dev/null | cut -c1-24)"
