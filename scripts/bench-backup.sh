#!/usr/bin/env bash
# Backups on a big sovereign, in one run: gm's encrypted backup (stored and compressed), verify and
# restore drill against the stock tools an operator would otherwise use.
#   peer   sqlite3 DB ".backup X"            the limit   cp DB X (no fsync)
#   gzip   gzip -1 of the .backup snapshot   check       sqlite3 DB "PRAGMA integrity_check"
# Targets: encrypted --level 0 backup <= 2x .backup; default (compressed) backup faster than
# .backup + gzip -1; verify <= integrity_check + 20 %; restore drill <= 3 s on a 100,000-certificate DB.
# The big database comes from scripts/make-big-db.sh (certificates and audit events in its 1:5 mix);
# BENCH_BACKUP_MIB sets its size (default 1024, i.e. ~1 GiB; e.g. BENCH_BACKUP_MIB=64 for a quick
# run). Every timing is wall clock from /usr/bin/time with a warm page cache; RSS is its peak.
# Usage: scripts/bench-backup.sh            (needs sqlite3, age, gzip; installs sqlite3/age if root)
# GM_BIN=path measures that gm binary (e.g. the static musl build) instead of building target/release/gm.
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${BENCH_BACKUP_MIB:-1024}"
drill_certs="${BENCH_DRILL_CERTS:-100000}"
need() { # command, apt package
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq "$2" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || { echo "$1 is not installed (apt-get install $2)" >&2; exit 2; }
}
need sqlite3 sqlite3; need age age; need age-keygen age; need gzip gzip; need bc bc
[ -x /usr/bin/time ] || need /usr/bin/time time
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
gm=$(realpath "${GM_BIN:-target/release/gm}")
work=$(mktemp -d "${BENCH_BACKUP_DIR:-${TMPDIR:-/tmp}}/gm-bench-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
age-keygen -o "$work/backup.key" 2>/dev/null
recipient=$(age-keygen -y "$work/backup.key")

# make-big-db.sh's default (400,000 certificates, 2,000,000 events) is 1,146 MiB: scale from it.
certs=$(( mib * 400000 / 1146 )); events=$(( certs * 5 ))
"$gm" quickstart --home "$work/big" --no-serve >/dev/null 2>&1
"$gm" quickstart --home "$work/drill" --no-serve >/dev/null 2>&1
scripts/make-big-db.sh "$work/big" "$certs" "$events" 2000 >/dev/null
scripts/make-big-db.sh "$work/drill" "$drill_certs" "$(( drill_certs * 5 ))" 2000 >/dev/null
db="$work/big/na.db"
db_bytes=$(stat -c %s "$db")
cat "$db" "$work/drill/na.db" >/dev/null   # warm the page cache for every contender alike

# run NAME CMD...: times CMD, records seconds and peak RSS (KiB) as $NAME_s / $NAME_kb.
run() {
  local name="$1"; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" \
    || { echo "$name failed:" >&2; cat "$work/$name.err" >&2; exit 1; }
  read -r secs kb <"$work/time"
  printf -v "${name}_s" '%s' "$secs"; printf -v "${name}_kb" '%s' "$kb"
}
run backup_peer sqlite3 "$db" ".backup '$work/peer.db'"
run copy cp "$db" "$work/copy.db"
run gzip sh -c "gzip -1 -c '$work/peer.db' > '$work/peer.db.gz'"
rm -f "$work/copy.db"
run gm_store "$gm" managed backup --home "$work/big" --recipient "$recipient" --level 0 --output "$work/store.tar.gz.age"
run gm_default "$gm" managed backup --home "$work/big" --recipient "$recipient" --output "$work/default.tar.gz.age"
run check sqlite3 "$db" "PRAGMA integrity_check"
run verify "$gm" managed verify "$work/default.tar.gz.age" --identity "$work/backup.key" --home "$work/big"
"$gm" managed backup --home "$work/drill" --recipient "$recipient" --output "$work/drill.tar.gz.age" >/dev/null
run drill "$gm" managed restore-drill --home "$work/drill" --backup "$work/drill.tar.gz.age" --identity "$work/backup.key" --json
rto_ms=$(sed -n 's/.*"rto_ms": *\([0-9]*\).*/\1/p' "$work/drill.out")

mb() { echo "scale=0; $1 / 1048576" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }
verdict() { [ "$(echo "$1 <= $2" | bc)" = 1 ] && echo met || echo MISSED; }
peer_gzip_s=$(echo "$backup_peer_s + $gzip_s" | bc | sed 's/^\./0./')
echo "database: $(mb "$db_bytes") MiB ($certs certificates, $events audit events); drill database: $(mb "$(stat -c %s "$work/drill/na.db")") MiB ($drill_certs certificates)"
echo "archives: --level 0 $(mb "$(stat -c %s "$work/store.tar.gz.age")") MiB, default $(mb "$(stat -c %s "$work/default.tar.gz.age")") MiB; gzip -1 of the snapshot $(mb "$(stat -c %s "$work/peer.db.gz")") MiB"
printf '%-44s %8s %10s\n' measurement seconds "peak RSS"
row() { printf '%-44s %8s %7s MiB\n' "$1" "$2" "$(( $3 / 1024 ))"; }
row 'sqlite3 .backup (peer)' "$backup_peer_s" "$backup_peer_kb"
row 'cp (limit, no fsync)' "$copy_s" "$copy_kb"
row 'gzip -1 of the snapshot' "$gzip_s" "$gzip_kb"
row 'gm managed backup --level 0 (encrypted)' "$gm_store_s" "$gm_store_kb"
row 'gm managed backup (default, level 1)' "$gm_default_s" "$gm_default_kb"
row 'sqlite3 PRAGMA integrity_check' "$check_s" "$check_kb"
row 'gm managed verify (default archive)' "$verify_s" "$verify_kb"
row "gm managed restore-drill (RTO ${rto_ms} ms)" "$drill_s" "$drill_kb"
echo "targets:"
echo "  --level 0 <= 2x .backup:            $(ratio "$gm_store_s" "$backup_peer_s")x   $(verdict "$gm_store_s" "$(echo "2 * $backup_peer_s" | bc)")"
echo "  default < .backup + gzip -1 ($peer_gzip_s s): $(ratio "$gm_default_s" "$peer_gzip_s")x   $(verdict "$gm_default_s" "$peer_gzip_s")"
echo "  verify <= 1.2x integrity_check:     $(ratio "$verify_s" "$check_s")x   $(verdict "$verify_s" "$(echo "1.2 * $check_s" | bc)")"
echo "  drill <= 3 s:                       ${drill_s} s   $(verdict "$drill_s" 3)"
