#!/usr/bin/env bash
# Connection-exhaustion attack against one `gm serve` with default limits (finding F2), bounded in
# connections and time. An attacker holds CONNS keep-alive connections, each sending GET /healthz
# every 3 s and reconnecting when the server closes it, from SPREAD addresses (127.0.1.1, 127.0.1.2,
# ...). Meanwhile a fresh client from 127.0.0.2 asks GET /healthz twice a second on a new connection.
#   SPREAD=1 (default): one address; it gets max_connections_per_address (1024) and 503 past it.
#   SPREAD=8: 8 addresses under their share fill max_connections (4096); idle keep-alive connections
#     are closed to let each newcomer in.
# Fails (exit 1) when any fresh client is not answered 200 within 2 s. Prints what the attacker got
# (admitted, refused with 503, closed by the server) and the fresh clients' latency.
# Usage: scripts/attack-connections.sh [SECONDS] [CONNS]   (defaults 30 and 4200; SPREAD=1)
# Takes SECONDS plus about 15 s (release build already made; `cargo build --release` first otherwise).
# Needs python3 and a hard open-file limit of at least CONNS + 512 (the script raises the soft one).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
conns="${2:-4200}"
spread="${SPREAD:-1}"
case "$secs$conns$spread" in
  *[!0-9]*|'') echo "usage: scripts/attack-connections.sh [SECONDS] [CONNS]  (whole numbers; SPREAD=N)" >&2; exit 2 ;;
esac
[ "$secs" -le 600 ] && [ "$conns" -le 20000 ] || { echo "attack: at most 600 s and 20000 connections" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((conns + 512)) ]; then
  echo "attack: the open-file limit is $(ulimit -n); $conns connections need $((conns + 512))" >&2; exit 2
fi
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
"$bin" quickstart --home "$work/sb" --no-serve >/dev/null 2>&1
# Started from this shell, gm serve inherits the raised soft limit; it would raise it itself anyway.
GENESIS_LOG_FORMAT=json "$bin" serve --home "$work/sb" --bind 127.0.0.1:0 --no-scheduler >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
[ -n "$addr" ] || { echo "attack: gm serve did not start:" >&2; cat "$work/log" >&2; exit 2; }
status=0
python3 - "$addr" "$secs" "$conns" "$spread" <<'PY' || status=$?
import selectors, socket, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
target = (host, int(port))
secs, conns, spread = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
REQ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
stats = {"admitted": 0, "refused_503": 0, "closed": 0, "connect_errors": 0}
stop = time.monotonic() + secs

def fresh_clients(out):
    while time.monotonic() < stop:
        t0 = time.monotonic()
        ok = False
        try:
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(2)
            s.connect(target)
            s.sendall(REQ)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok = data.startswith(b"HTTP/1.1 200")
            s.close()
        except OSError:
            pass
        out.append((ok, time.monotonic() - t0))
        time.sleep(0.5)

results = []
checker = threading.Thread(target=fresh_clients, args=(results,))
checker.start()
sel = selectors.DefaultSelector()
next_send = {}
reopen = []

def open_one(i):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.bind(("127.0.1.%d" % (i % spread + 1), 0))
        s.connect_ex(target)
    except OSError:
        stats["connect_errors"] += 1
        s.close()
        return
    sel.register(s, selectors.EVENT_READ, i)
    next_send[s] = time.monotonic() + (i % 30) / 10
    stats["admitted"] += 1

for i in range(conns):
    open_one(i)
while time.monotonic() < stop:
    now = time.monotonic()
    for s, due in list(next_send.items()):
        if due <= now:
            try:
                s.send(REQ)
            except OSError:
                pass
            next_send[s] = now + 3
    for key, _ in sel.select(timeout=0.1):
        s, i = key.fileobj, key.data
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        refused = data.startswith(b"HTTP/1.1 503")
        if refused or not data:
            stats["refused_503" if refused else "closed"] += 1
            sel.unregister(s)
            next_send.pop(s, None)
            s.close()
            stats["admitted"] -= 1
            # A connection the server closed comes back a second later, as a keep-alive client would;
            # a refused one retries after 3 s, so the driver does not spin.
            reopen.append((time.monotonic() + (3 if refused else 1), i))
    now = time.monotonic()
    while reopen and reopen[0][0] <= now and now < stop - 1:
        open_one(reopen.pop(0)[1])
checker.join()
lat = sorted(t for _, t in results)
failed = sum(1 for ok, _ in results if not ok)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
print(f"attacker: {conns} connections from {spread} address(es); at the end {stats['admitted']} open or "
      f"queued, {stats['refused_503']} refused with 503, {stats['closed']} closed by the server (evicted or timed out), "
      f"{stats['connect_errors']} connect errors")
print(f"fresh client from 127.0.0.2: {len(results) - failed}/{len(results)} answered 200; "
      f"latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {p(1.0):.1f} ms")
sys.exit(1 if failed or not results else 0)
PY
echo "server warnings about refused connections (at most one per 5 s): $(grep -c 'refusing connections' "$work/log" || true)"
exit "$status"
