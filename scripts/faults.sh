#!/usr/bin/env bash
# Fault injection (issue 8 item 3); figures go to RELIABILITY.md ("Fault injection").
#  a. kill -9 trials of `gm managed backup` and `gm managed restore` (tests/it/backup_faults.rs):
#     no partial backup under a final name, the old or the new database whole after each restore.
#  b. A full disk under `gm serve`, `gm managed backup` and `gm managed restore`: an 8 MiB tmpfs
#     holds the database (or the backup's output), a filler file takes the rest. Writes must fail
#     with clean 500s / exit 2 and a message, nothing may be corrupted or left behind, and the
#     server must take writes again without a restart once the filler is deleted
#     (tests/it/durability.rs with GM_FULL_DISK_DIR). Without permission to mount, the serve part
#     falls back to RLIMIT_FSIZE and the backup/restore part is skipped (backup_faults.rs covers
#     the backup with `ulimit -f`).
#  c. `gm serve` killed with SIGKILL (2 of 3) or stopped with SIGTERM (1 of 3) at random moments
#     while three writers invite and join; every 2xx-acknowledged invite and certificate must be
#     in the database after each restart, and it must pass integrity_check.
# Usage: scripts/faults.sh [TRIALS]   (default 100: kill -9 trials each for backup and restore,
#        and restarts of gm serve; GM_FAULT_SEED=N replays a printed seed)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-100}
case $trials in
  ''|*[!0-9]*) echo "usage: scripts/faults.sh [TRIALS]  (TRIALS: a positive number)" >&2; exit 2 ;;
esac
cargo build --quiet
cargo test --quiet --test it --no-run 2>/dev/null
gm=$PWD/target/debug/gm
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== a. kill -9 trials of backup and restore ($trials each)"
GM_FAULT_TRIALS=$trials cargo test --quiet --test it backup_faults::killed -- --nocapture --test-threads 1 2>&1 |
  grep -oE 'seed [0-9]+: .*|test result.*|panicked.*|FAILED.*'

echo "== c. gm serve restarts under writes ($trials: SIGKILL twice for each SIGTERM)"
GM_DURABILITY_RESTARTS=$trials cargo test --quiet --test it durability::acknowledged -- --nocapture 2>&1 |
  grep -oE 'seed [0-9]+: .*|test result.*|panicked.*|FAILED.*'

echo "== b. full disk"
work=$(mktemp -d)
small="$work/small"
mkdir -p "$small"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  mountpoint -q "$small" && umount "$small"
  rm -rf "$work"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=8m tmpfs "$small" 2>/dev/null; then
  echo "cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN): serve part with RLIMIT_FSIZE, backup/restore part skipped"
  cargo test --quiet --test it durability::full_disk -- --nocapture 2>&1 | grep -oE 'full disk: .*|test result.*|panicked.*|FAILED.*'
  exit 0
fi
echo "-- serve: database on an 8 MiB tmpfs, filled while admin invites are written"
GM_FULL_DISK_DIR=$small cargo test --quiet --test it durability::full_disk -- --nocapture 2>&1 |
  grep -oE 'full disk: .*|test result.*|panicked.*|FAILED.*'
rm -rf "${small:?}"/*

fill() { dd if=/dev/zero of="$small/filler" bs=64k 2>/dev/null || true; }
invites() { sqlite3 "$1" 'SELECT COUNT(*) FROM invite_tokens'; }
integrity() { sqlite3 "$1" 'PRAGMA integrity_check'; }
serve_and_invite() { # HOME N: start gm serve on HOME, create N invites, stop it with SIGTERM
  "$gm" serve --home "$1" --bind 127.0.0.1:0 --no-scheduler >"$work/out" 2>"$work/serve.log" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  local url
  url=$(sed -n 's#listening on ##p' "$work/out")
  for _ in $(seq "$2"); do "$gm" admin invite --na "$url" --home "$1" --role client >/dev/null 2>&1; done
  kill -TERM "$pid"; wait "$pid"; pid=""
}
expect_clean_failure() { # WHAT STATUS STDERR-FILE
  local status=$2
  if [ "$status" -ne 2 ] || grep -q panicked "$3" || ! grep -q '^error: ' "$3" || ! grep -q '^hint: ' "$3"; then
    echo "FAILED: $1 on a full disk exited $status:"; cat "$3"; exit 1
  fi
  echo "$1 on a full disk: exit $status, $(grep -m1 '^error: ' "$3") / $(grep -m1 '^hint: ' "$3")"
}

age-keygen -o "$work/backup.key" 2>/dev/null
recipient=$(age-keygen -y "$work/backup.key")
"$gm" quickstart --home "$work/sb" --no-serve >/dev/null 2>&1
serve_and_invite "$work/sb" 3

echo "-- backup: output on the full tmpfs"
fill
status=0; "$gm" managed backup --home "$work/sb" --recipient "$recipient" --output "$small/b.age" 2>"$work/err" || status=$?
expect_clean_failure "gm managed backup" "$status" "$work/err"
left=$(find "$small" -mindepth 1 ! -name filler | wc -l)
[ "$left" -eq 0 ] || { echo "FAILED: the failed backup left files: $(ls -A "$small")"; exit 1; }
rm "$small/filler"
"$gm" managed backup --home "$work/sb" --recipient "$recipient" --output "$small/b.age" >/dev/null 2>&1
"$gm" managed verify "$small/b.age" --identity "$work/backup.key" >/dev/null
echo "space back: backup written and verified ($(du -h "$small/b.age" | cut -f1))"
mv "$small/b.age" "$work/b.age"

echo "-- restore: the database being replaced lives on the full tmpfs"
cp -r "$work/sb" "$small/sb"
serve_and_invite "$small/sb" 1
before=$(invites "$small/sb/na.db")
fill
status=0; "$gm" managed restore --home "$small/sb" --backup "$work/b.age" --identity "$work/backup.key" --yes 2>"$work/err" || status=$?
expect_clean_failure "gm managed restore" "$status" "$work/err"
left=$(find "$small/sb" -name '*.tmp*' -o -name '.gm-restore-*' -o -name '*restore-tmp*' | wc -l)
[ "$left" -eq 0 ] || { echo "FAILED: the failed restore left files behind"; exit 1; }
# sqlite3 itself needs room for the -shm file, so the old database is checked once space is back.
rm "$small/filler"
[ "$(integrity "$small/sb/na.db")" = ok ] && [ "$(invites "$small/sb/na.db")" = "$before" ] ||
  { echo "FAILED: the old database changed or is damaged after the failed restore"; exit 1; }
echo "old database intact: integrity ok, $before invites"
"$gm" managed restore --home "$small/sb" --backup "$work/b.age" --identity "$work/backup.key" --yes >/dev/null 2>&1
echo "space back: restore done, integrity $(integrity "$small/sb/na.db"), $(invites "$small/sb/na.db") invites (the backup's)"
echo "faults: all checks passed"
