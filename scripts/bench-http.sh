#!/usr/bin/env bash
# HTTP benchmark: wrk (16 keep-alive connections, 2 threads) against a sandbox `gm serve` on
# /healthz, /crl, /genesis and /metrics. Prints req/s, p50, p99 per route and the server's peak RSS.
# Targets (2-core machine): /healthz >= 60,000 req/s, p99 <= 2 ms, RSS <= 10 MB.
# With nginx installed (or NGINX=path), the same wrk settings then fetch the same /healthz and /crl
# bytes as static files from nginx (one worker per core; each request logged to a file, as gm logs
# each one), after gm has stopped, and the last lines give gm/nginx per route: nginx's static-file
# rate is the ceiling gm's public routes are compared to. WRK_THREADS (default 2) sets wrk -t.
# Usage: scripts/bench-http.sh [seconds-per-route]   (default 10; needs wrk: apt-get install wrk)
# GM_BIN=path runs that gm binary instead of building target/release/gm (scripts/bench-compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; [ ! -f "$work/nginx.pid" ] || kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" quickstart --home "$work/sb" --no-serve 2>/dev/null
# Access logs go to a file, as under journald; the line is still formatted and written per request.
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-} GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind 127.0.0.1:0 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
mkdir -p "$work/www"
curl -fsS "http://$addr/crl" >"$work/www/crl" && curl -fsS "http://$addr/policy" >/dev/null
curl -fsS "http://$addr/healthz" >"$work/www/healthz"
declare -A gm_rps
one() { # URL: prints "req/s p50 p99 errors"
  local out
  out=$(wrk -t"${WRK_THREADS:-2}" -c16 -d"${secs}s" --latency "$1")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')"
}
printf '%-10s %12s %10s %10s\n' route req/s p50 p99
for route in /healthz /crl /genesis /metrics; do
  read -r rps p50 p99 errors <<<"$(one "http://$addr$route")"
  gm_rps[$route]=$rps
  printf '%-10s %12s %10s %10s %s\n' "$route" "$rps" "$p50" "$p99" "$errors"
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "peak RSS: $((rss_kb / 1024)) MiB (${rss_kb} kB)"
echo "access log lines written: $(wc -l <"$work/log")"
kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "nginx is not installed: no static-file comparison"; exit 0; }
chmod 755 "$work" "$work/www" && chmod 644 "$work/www/"*
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$port; root $work/www; default_type application/json; }
}
EOF
"$nginx" -c "$work/nginx.conf" -e "$work/nginx-error.log"
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
for route in /healthz /crl; do
  read -r rps p50 p99 errors <<<"$(one "http://127.0.0.1:$port$route")"
  printf '%-10s %12s %10s %10s %s\n' "nginx$route" "$rps" "$p50" "$p99" "$errors"
  echo "gm/nginx $route: $(echo "scale=2; ${gm_rps[$route]} / $rps" | bc | sed 's/^\./0./')"
done
