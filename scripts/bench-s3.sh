#!/usr/bin/env bash
# Off-host backups, in one run on one big sovereign: gm managed backup into a local folder against
# the same backup streamed to a real S3 server on loopback (s3s-fs, the server the tests use), and
# a restore drill from a file against one from the bucket.
# Targets (issue 17): backup to S3 <= 1.3x the local-folder time; peak RSS of the S3 backup <= 64 MiB.
# The big database comes from scripts/make-big-db.sh; BENCH_S3_MIB sets its size (default 1024,
# ~1 GiB; e.g. BENCH_S3_MIB=64 for a quick run). The S3 server keeps its objects in the same work
# folder (same disk), so both sides write the archive once. Times are wall clock from
# /usr/bin/time with a warm page cache, the faster of two interleaved runs; RSS is gm's peak (the
# server is a separate process).
# Usage: scripts/bench-s3.sh   (needs s3s-fs: scripts/install-test-deps.sh installs it; age, bc)
# GM_BIN=path measures that gm binary (e.g. the static musl build) instead of building target/release/gm.
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${BENCH_S3_MIB:-1024}"
drill_certs="${BENCH_DRILL_CERTS:-100000}"
s3s="${GM_TEST_S3S_FS:-$PWD/target/test-tools/bin/s3s-fs}"
[ -x "$s3s" ] || { echo "s3s-fs is not installed at $s3s: run scripts/install-test-deps.sh" >&2; exit 2; }
for c in age age-keygen bc sqlite3; do
  command -v "$c" >/dev/null || { echo "$c is not installed (apt-get install age bc sqlite3)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time is not installed (apt-get install time)" >&2; exit 2; }
[ -n "${GM_BIN:-}" ] || cargo build --release --quiet
gm=$(realpath "${GM_BIN:-target/release/gm}")
work=$(mktemp -d "${BENCH_S3_DIR:-${TMPDIR:-/tmp}}/gm-bench-s3.XXXXXX")
server_pid=""
cleanup() { [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
age-keygen -o "$work/backup.key" 2>/dev/null
recipient=$(age-keygen -y "$work/backup.key")

certs=$(( mib * 400000 / 1146 )); events=$(( certs * 5 ))
"$gm" quickstart --home "$work/big" --no-serve >/dev/null 2>&1
"$gm" quickstart --home "$work/drill" --no-serve >/dev/null 2>&1
scripts/make-big-db.sh "$work/big" "$certs" "$events" 2000 >/dev/null
scripts/make-big-db.sh "$work/drill" "$drill_certs" "$(( drill_certs * 5 ))" 2000 >/dev/null
db="$work/big/na.db"
cat "$db" "$work/drill/na.db" >/dev/null   # warm the page cache for every contender alike

mkdir -p "$work/s3/gm-bench" "$work/local"
export AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret-not-real
RUST_LOG=info "$s3s" --host 127.0.0.1 --port 0 --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/s3" >"$work/s3s.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  port=$(sed 's/\x1b\[[0-9;]*m//g' "$work/s3s.log" | sed -n 's/.*running at http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "s3s-fs did not start:" >&2; cat "$work/s3s.log" >&2; exit 1; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"

# run NAME CMD...: times CMD; keeps the faster of this and an earlier run of NAME (seconds, and
# the peak RSS of that run, KiB) as $NAME_s / $NAME_kb. Each contender runs twice, interleaved,
# so none is favoured by going first into a cold cache.
run() {
  local name="$1"; shift
  sync # the previous run's writeback must not land in this one's time
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" \
    || { echo "$name failed:" >&2; cat "$work/$name.err" >&2; exit 1; }
  read -r secs kb <"$work/time"
  local prev="${name}_s"
  if [ -z "${!prev:-}" ] || [ "$(echo "$secs < ${!prev}" | bc)" = 1 ]; then
    printf -v "${name}_s" '%s' "$secs"; printf -v "${name}_kb" '%s' "$kb"
  fi
}
backup=("$gm" managed backup --home "$work/big" --recipient "$recipient")
"$gm" managed backup --home "$work/drill" --recipient "$recipient" --dir "$work/drill-local" --to s3://gm-bench/drill >/dev/null
drill_file=$(ls "$work/drill-local"/*.tar.gz.age)
drill_object="s3://gm-bench/drill/$(basename "$drill_file")"
drill=("$gm" managed restore-drill --home "$work/drill" --identity "$work/backup.key" --json)
for round in 1 2; do
  run local "${backup[@]}" --dir "$work/local"
  run s3 "${backup[@]}" --dir s3://gm-bench/big
  run both "${backup[@]}" --dir "$work/local" --to s3://gm-bench/both
  run drill_file "${drill[@]}" --backup "$drill_file"
  run drill_s3 "${drill[@]}" --backup "$drill_object"
  [ "$round" = 2 ] || sleep 1 # a new second: the next backups get new names
done
archive=$(ls "$work/local"/*.tar.gz.age | head -1)

mb() { echo "scale=0; $1 / 1048576" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }
verdict() { [ "$(echo "$1 <= $2" | bc)" = 1 ] && echo met || echo MISSED; }
echo "database: $(mb "$(stat -c %s "$db")") MiB ($certs certificates); archive: $(mb "$(stat -c %s "$archive")") MiB; drill database: $(mb "$(stat -c %s "$work/drill/na.db")") MiB"
printf '%-52s %8s %10s\n' measurement seconds "peak RSS"
row() { printf '%-52s %8s %7s MiB\n' "$1" "$2" "$(( $3 / 1024 ))"; }
row 'gm managed backup --dir FOLDER' "$local_s" "$local_kb"
row 'gm managed backup --dir s3://... (multipart, 8 MiB parts)' "$s3_s" "$s3_kb"
row 'gm managed backup --dir FOLDER --to s3://... (both)' "$both_s" "$both_kb"
row 'gm managed restore-drill --backup FILE' "$drill_file_s" "$drill_file_kb"
row 'gm managed restore-drill --backup s3://...' "$drill_s3_s" "$drill_s3_kb"
echo "targets:"
echo "  S3 backup <= 1.3x local:   $(ratio "$s3_s" "$local_s")x   $(verdict "$s3_s" "$(echo "1.3 * $local_s" | bc)")"
echo "  both <= 1.3x local:        $(ratio "$both_s" "$local_s")x   $(verdict "$both_s" "$(echo "1.3 * $local_s" | bc)")"
echo "  S3 backup RSS <= 64 MiB:   $(( s3_kb / 1024 )) MiB   $(verdict "$s3_kb" 65536)"
echo "  drill from S3 / from file: $(ratio "$drill_s3_s" "$drill_file_s")x"
