#!/usr/bin/env bash
# Trust-route benchmark: a sandbox sovereign with 1,000 treaties among 100 sovereigns and 100,000
# attestations, 10,000 of them revoked through imported feeds; times /connectome.json and a
# trust-path query, and drives POST /attestations/verify from 16 threads (benches/trust.rs).
# Targets (2 cores): connectome <= 50 ms, trust path <= 5 ms, verify >= 5,000/s.
# Usage: scripts/bench-trust.sh [VERIFIES=20000] [THREADS=16]   (needs sqlite3)
# GM_BIN=path runs that gm binary instead of building target/release/gm (scripts/bench-compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
cargo bench --bench trust --no-run --quiet 2>/dev/null
bin=${GM_BIN:-target/release/gm}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""
"$bin" quickstart --home "$work/sb" --no-serve 2>/dev/null
"$bin" serve --home "$work/sb" --bind 127.0.0.1:0 >"$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
kill "$pid"; wait "$pid" || true
sqlite3 "$work/sb/na.db" <<'SQL'
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO recognition_treaties (treaty_id, issuer_sovereign_id, subject_sovereign_id, status, treaty_json, issued_at, valid_from, expires_at)
SELECT printf('t-%04d', i), printf('sov-%d', i % 100), printf('sov-%d', (i * 7 + 1 + i / 100) % 100),
       CASE WHEN i % 50 = 0 THEN 'revoked' ELSE 'active' END,
       printf('{"treaty_id":"t-%04d","issuer_sovereign_id":"sov-%d","subject_sovereign_id":"sov-%d","subject_public_keys":["BcB/B9JAQIKq83lTawsC+ijHRqTe3G20F2/Glaqm53U="],"scope":{"allowed_roles":[],"accepted_statuses":["active"],"claims":{}},"status":"active","issued_at":"2026-01-01T00:00:00Z","valid_from":"2026-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z","issued_by":"na-local","metadata":{},"signatures":[{"key_id":"na-local","sig":"%088d"}]}',
              i, i % 100, (i * 7 + 1 + i / 100) % 100, i),
       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', '2099-01-01T00:00:00+00:00'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
INSERT INTO membership_attestations (attestation_id, issuer_sovereign_id, subject_id, roles_json, status, attestation_json, issued_at, valid_from, expires_at)
SELECT printf('a-%06d', i), 'sandbox-mesh', printf('agent-%d', i), '["role:client"]', 'active',
       printf('{"attestation_id":"a-%06d","issuer_sovereign_id":"sandbox-mesh","subject_id":"agent-%d","subject_public_key":null,"roles":["role:client"],"status":"active","issued_at":"2026-01-01T00:00:00Z","valid_from":"2026-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z","issued_by":"na-local","claims":{},"signatures":[]}', i, i),
       '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', '2099-01-01T00:00:00+00:00'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
INSERT INTO sovereign_revocation_feeds (feed_id, issuer_sovereign_id, sequence, feed_json, imported_at)
SELECT printf('f-%03d', i), printf('sov-%d', i), 1, printf('{"feed_id":"f-%03d","revoked_attestation_ids":[]}', i), strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
INSERT INTO imported_sovereign_revocations (issuer_sovereign_id, attestation_id, feed_id, sequence, reason, imported_at)
SELECT printf('sov-%d', i % 100), printf('ext-%06d', i), printf('f-%03d', i % 100), 1, 'key_compromise', strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')
FROM n;
COMMIT;
SQL
"$bin" serve --home "$work/sb" --bind 127.0.0.1:0 --trusted-proxy-hops 1 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's#listening on http://##p' "$work/out")
cargo bench --bench trust --quiet -- "$addr" "${1:-20000}" "${2:-16}"
