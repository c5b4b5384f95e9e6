#!/usr/bin/env bash
# Builds a large NA database for the read-route benchmark: upstream's 0.16 schema (created by gm
# itself), CERTS certificates (5 % revoked, ACTIVE of them heartbeating within the last minute) and
# EVENTS audit events. Defaults make a ~1 GiB file: 400,000 certificates, 2,000,000 audit events.
# Usage: scripts/make-big-db.sh HOME [CERTS] [EVENTS] [ACTIVE]
#   HOME is a sandbox created by `gm quickstart --home HOME --no-serve`; writes HOME/na.db.
set -euo pipefail
home="$1"; certs="${2:-400000}"; events="${3:-2000000}"; active="${4:-2000}"
bin="$(dirname "$0")/../target/release/gm"
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (apt-get install sqlite3)" >&2; exit 2; }
rm -f "$home/na.db" "$home/na.db-wal" "$home/na.db-shm"
# Let gm create the schema (versions 1-6 and its gm_ indexes), then stop it.
"$bin" serve --home "$home" --bind 127.0.0.1:0 >"$home/.mk.out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q listening "$home/.mk.out" 2>/dev/null && break; sleep 0.05; done
kill "$pid"; wait "$pid" || true
now=$(date -u +%Y-%m-%dT%H:%M:%S)
sqlite3 "$home/na.db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $certs)
INSERT INTO issued_certs (cert_id, node_public_key, cert_json, roles_json, issued_at, expires_at, remote_addr,
  status, last_heartbeat, heartbeat_status, renewed_from, revoked_at, revocation_reason, max_validity_hours)
SELECT printf('%08x-0000-4000-8000-%012x', i, i),
       printf('node-key-%040d=', i),
       printf('{"cert_id":"%08x-0000-4000-8000-%012x","node_public_key":"node-key-%040d=","network_name":"sandbox-mesh","roles":["role:client"],"issued_at":"2026-01-01T00:00:00.000001Z","expires_at":"2027-01-01T00:00:00.000001Z","issued_by":"na-local","signatures":[{"key_id":"na-local","sig":"%088d"}]}', i, i, i, i),
       '["role:client"]', '2026-01-01T00:00:00.000001+00:00', '2027-01-01T00:00:00.000001+00:00', '10.0.0.' || (i % 250),
       CASE WHEN i % 20 = 0 THEN 'revoked' ELSE 'issued' END,
       CASE WHEN i <= $active THEN strftime('%Y-%m-%dT%H:%M:%f', '$now', '-' || (i % 50) || ' seconds') || '000+00:00'
            ELSE '2026-01-02T00:00:00.000001+00:00' END,
       'healthy', NULL, NULL, NULL, 168
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $events)
INSERT INTO audit_events (event_id, event_json, created_at)
SELECT printf('%08x-1111-4000-8000-%012x', i, i),
       printf('{"created_at": "2026-01-01T00:00:00.000001+00:00", "details": {"cert_id": "%08x-0000-4000-8000-%012x", "remote_addr": "10.0.0.%d", "status": "healthy", "reason": "certificate_issued"}, "event_id": "%08x-1111-4000-8000-%012x", "event_type": "certificate_issued"}', i % 400000, i % 400000, i % 250, i, i),
       '2026-01-01T00:00:00.000001+00:00'
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
ANALYZE;
SQL
rm -f "$home/.mk.out"
ls -l "$home/na.db"
