#!/usr/bin/env bash
# Built-in TLS against nginx terminating TLS, one run, same wrk settings (issue 18):
#   keep-alive: wrk -t2 -c16 on gm's /healthz over TLS and on a static file of the same bytes from nginx;
#   handshakes: the same with "Connection: close", so every request is a new TLS connection;
#   1,000 TLS connections: wrk -c1000 on gm's /healthz, and gm's peak RSS (VmHWM) over the whole run.
# Goals: >= 75% of nginx on both; RSS <= 16 MB at 1,000 TLS connections.
# Both use the same ECDSA P-256 certificate (openssl), TLS 1.3, and run on this machine's 2 cores with wrk.
# Usage: scripts/bench-tls.sh [seconds]   (default 5; needs wrk, nginx, openssl)
# GM_BIN=path measures that binary instead of building target/release/gm.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
for c in wrk openssl; do command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 2; }; done
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 2; }
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
gm_pid=""
cleanup() {
  [ -z "$gm_pid" ] || kill "$gm_pid" 2>/dev/null || true
  [ ! -f "$work/nginx.pid" ] || kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" \
  -out "$work/cert.pem" -days 7 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
"$bin" quickstart --home "$work/sb" --no-serve >/dev/null 2>&1
GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind 127.0.0.1:0 --no-scheduler \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >"$work/out" 2>"$work/log" &
gm_pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
gm_addr=$(sed -n 's#listening on https://##p' "$work/out")
body=$(curl -fsS --cacert "$work/cert.pem" "https://$gm_addr/healthz")
mkdir -p "$work/www"
printf '%s' "$body" >"$work/www/healthz"
# nginx's workers run as another user: they must be able to read the file (and the key).
chmod 755 "$work" "$work/www" && chmod 644 "$work/www/healthz" "$work/key.pem"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $work/www;
    default_type application/json;
  }
}
EOF
"$nginx" -c "$work/nginx.conf" -e "$work/nginx-error.log"
for _ in $(seq 100); do curl -fsS --cacert "$work/cert.pem" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

run() { # LABEL URL [wrk args...]: "req/s p99"
  local url=$1; shift
  local out
  out=$(wrk -t2 -d"${secs}s" --latency "$@" "$url")
  if grep -q 'Non-2xx' <<<"$out"; then echo "wrk saw non-2xx answers from $url:" >&2; echo "$out" >&2; exit 1; fi
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Socket errors|Non-2xx/' <<<"$out" | tr '\n' ' ')"
}
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }
read -r gm_ka gm_ka_p99 gm_ka_err <<<"$(run "https://$gm_addr/healthz" -c16)"
read -r ng_ka ng_ka_p99 ng_ka_err <<<"$(run "https://127.0.0.1:$port/healthz" -c16)"
read -r gm_hs gm_hs_p99 gm_hs_err <<<"$(run "https://$gm_addr/healthz" -c16 -H 'Connection: close')"
read -r ng_hs ng_hs_p99 ng_hs_err <<<"$(run "https://127.0.0.1:$port/healthz" -c16 -H 'Connection: close')"
read -r gm_k gm_k_p99 gm_k_err <<<"$(run "https://$gm_addr/healthz" -c1000 --timeout 10s)"
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$gm_pid/status")
printf '%-46s %12s %10s\n' measurement req/s p99
printf '%-46s %12s %10s %s\n' "gm /healthz, TLS keep-alive (16 conns)" "$gm_ka" "$gm_ka_p99" "$gm_ka_err"
printf '%-46s %12s %10s %s\n' "nginx static file, TLS keep-alive (16 conns)" "$ng_ka" "$ng_ka_p99" "$ng_ka_err"
printf '%-46s %12s %10s %s\n' "gm, a new TLS connection per request" "$gm_hs" "$gm_hs_p99" "$gm_hs_err"
printf '%-46s %12s %10s %s\n' "nginx, a new TLS connection per request" "$ng_hs" "$ng_hs_p99" "$ng_hs_err"
printf '%-46s %12s %10s %s\n' "gm /healthz, 1,000 TLS keep-alive conns" "$gm_k" "$gm_k_p99" "$gm_k_err"
echo "gm peak RSS over the run: $((rss_kb / 1024)) MiB (${rss_kb} kB)"
echo "ratios: keep-alive gm/nginx $(ratio "$gm_ka" "$ng_ka") (goal >= 0.75); handshakes gm/nginx $(ratio "$gm_hs" "$ng_hs") (goal >= 0.75); RSS goal <= 16384 kB"
