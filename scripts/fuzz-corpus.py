#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (git-ignored).

Seeds come from the shared upstream vectors in tests/vectors/ (JSON objects, signed objects, node
and admin requests rendered as raw HTTP) plus a few hand-written lines, configs and archives. Each
seed is named by the SHA-1 of its bytes, as libFuzzer names what it finds, so re-running is
idempotent and never removes what a fuzz run added. Usage: scripts/fuzz-corpus.py [TARGET...]
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "tests", "vectors")
# The public half of ARCHIVE_IDENTITY in fuzz/src/lib.rs (a throwaway test key).
ARCHIVE_RECIPIENT = "age14957ppanrmh573qf3nwrrv88u280q2nucj8kmeppr35yakzhep5qj28qyt"


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def http_request(method, path, query, headers, body):
    target = path + ("?" + query if query else "")
    lines = [f"{method} {target} HTTP/1.1", "Host: na.example"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    data = compact(body) if body is not None else b""
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def vector_requests():
    out = []
    for v in load("admin-requests.json")["vectors"]:
        out.append(http_request(v["method"], v["path"], v.get("query_string", ""), v["headers"], v.get("body")))
    for v in load("node-requests.json")["vectors"]:
        out.append(http_request(v["method"], v["path"], "", {}, v["body"]))
    out += [
        b"GET /health HTTP/1.1\r\n\r\nGET /genesis HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Echo: hi\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HEAD /a%20b?x=1&y=%zz HTTP/1.1\r\nX-Request-ID: abc.123\r\nX-Close: 1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        # http_conn answers /now... on the event loop: at-once answers mixed with a thread's.
        b"GET /now HTTP/1.1\r\n\r\nGET /now/2 HTTP/1.1\r\nX-Echo: a\r\n\r\nPOST /t HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /now HTTP/1.1\r\n\r\n",
        b"HEAD /now HTTP/1.1\r\n\r\nGET /now HTTP/1.0\r\n\r\n",
        b"GET /now HTTP/1.1\r\nX-Close: 1\r\n\r\nGET /now HTTP/1.1\r\n\r\n",
    ]
    return out


def json_documents():
    canonical = load("canonical.json")
    docs = [c["input_json"].encode() if isinstance(c["input_json"], str) else compact(c["input_json"])
            for c in canonical["json_cases"] + canonical["model_cases"]]
    docs += [c["canonical"].encode() for c in canonical["json_cases"] + canonical["model_cases"]]
    docs += [compact(v["signed"]) for v in load("signed-objects.json")["vectors"]]
    return docs


def manifests():
    good = {
        "format": "gm-backup", "format_version": 1, "created_at": "2026-03-02T10:00:10+00:00",
        "gm_version": "0.1.0", "network_name": "acme-mesh", "genesis_sha256": "ab" * 32,
        "na_public_key": "9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=", "schema_version": 6,
        "snapshot": {"file": "na.db", "sha256": "cd" * 32, "size_bytes": 65536},
        "row_counts": {"issued_certs": 3, "nonces": 0}, "crl_sequence": 2,
        "connectome_summary": {"active_edge_count": 1, "imported_revocation_count": 0,
                               "recognition_edge_count": 1, "revoked_edge_count": 0},
    }
    return [json.dumps(good, indent=2, sort_keys=True).encode(), compact({**good, "format_version": 2})]


def crontab_lines():
    lines = ["@daily", "@hourly", "0 3 * * 1-5", "*/15 * * * *", "0 0 1 * 1", "30 * * * * *",
             "0 0 * * MON-FRI", "0 0 29 2 *", "0 9 * * 0,7", "0 0 * * */2", "45 4 1-7 * 6"]
    instant = (1_772_445_610).to_bytes(8, "little")  # 2026-03-02T10:00:10Z, the vectors' now
    return [instant + bytes([5, 24]) + line.encode() for line in lines]


def configs():
    gm_toml = b"""[na]
genesis_file = "genesis.signed.json"
na_key_id = "na-2025-q1"
db_path = "na.db"

[server]
bind = "127.0.0.1:8443"
trusted_proxy_hops = 1
admin_signature = "v2"
renewal_grace_seconds = 3600

[server.limits]
max_head_bytes = 16384
max_body_bytes = 2097152
head_timeout_seconds = 10

[cron]
enabled = true
shutdown_grace_seconds = 60

[cron.jobs.nightly-backup]
kind = "backup"
schedule = "0 3 * * *"
backup_dir = "backups"
recipients_file = "recipients.txt"

[cron.jobs.check]
kind = "verify"
schedule = "15 3 * * *"
backup_dir = "backups"
identity_file = "backup.key"

[cron.jobs.export]
kind = "audit-export"
schedule = "*/2 * * * * *"
export_dir = "exports"
window_hours = 1

[cron.jobs.prune]
kind = "prune"
schedule = "45 4 * * *"
backup_dir = "backups"
keep_last = 8

[cron.jobs.probe]
kind = "probe"
schedule = "* * * * *"
target = "http://127.0.0.1:8443"
"""
    profile = b"""[sovereign]
name = "acme-mesh"
policy_intent = "admit only acme devices"

[custody]
model = "split"
operator_keys_held_by = "Jane Doe"
approved_by = "Jane Doe"
approved_at = "2026-11-20"

[[contacts]]
name = "Jane Doe"
role = "incident commander"
channel = "+1 555 0100"

[scope]
out_of_scope_acknowledged = true
acknowledged_by = "Jane Doe"
acknowledged_at = "2026-11-20"

[responsibility.incident_response]
operator = "runs the NA"
customer = "decides"
operator_owner = "Jane Doe"
customer_owner = "John Roe"
accepted_by = "Jane Doe"
accepted_at = "2026-11-20"
"""
    return [gm_toml, profile]


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_772_445_610
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archives():
    tar = tar_of([("manifest.json", manifests()[0]), ("operators.json", b'{"operator-1": "x"}\n'),
                  ("genesis.signed.json", b"{}\n"), ("na.db", b"SQLite format 3\x00" + bytes(48))])
    evil = tar_of([("../escape", b"x"), ("na.db", b"")])
    plain = gzip.compress(tar, mtime=0)
    seeds = [bytes([2]) + plain, bytes([3]) + tar, bytes([3]) + evil, bytes([2]) + gzip.compress(evil, mtime=0)]
    if shutil.which("age"):
        encrypted = subprocess.run(["age", "-r", ARCHIVE_RECIPIENT], input=plain, capture_output=True, check=True)
        seeds += [bytes([0]) + encrypted.stdout, bytes([1]) + encrypted.stdout]
    else:
        print("fuzz-corpus: no age CLI; the archive target gets no encrypted seeds", file=sys.stderr)
    return seeds


def with_plans(requests):
    """The HTTP targets' framing: limits byte, chunk-plan length, plan, stream."""
    out = []
    for i, r in enumerate(requests):
        out.append(bytes([0, 0]) + r)
        out.append(bytes([1 + 2 * (i % 8), 3, 1, 7, 2]) + r)
    return out


TARGETS = {
    "http_request": lambda: with_plans(vector_requests()),
    "http_conn": lambda: with_plans(vector_requests()),
    "json_canonical": json_documents,
    "signed_objects": json_documents,
    "auth": vector_requests,
    "archive": archives,
    "manifest": manifests,
    "crontab": crontab_lines,
    "config": configs,
}


def main(names):
    for name in names or TARGETS:
        if name not in TARGETS:
            sys.exit(f"fuzz-corpus: unknown target {name!r} (known: {', '.join(TARGETS)})")
        folder = os.path.join(ROOT, "fuzz", "corpus", name)
        os.makedirs(folder, exist_ok=True)
        seeds = TARGETS[name]()
        for seed in seeds:
            with open(os.path.join(folder, hashlib.sha1(seed).hexdigest()), "wb") as f:
                f.write(seed)
        print(f"fuzz-corpus: {name}: {len(seeds)} seeds in fuzz/corpus/{name}")


if __name__ == "__main__":
    main(sys.argv[1:])
