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
#  d. Device errors: the same serve, backup and restore checks with the database (or the backup's
#     output) on scripts/eio-fs.py, a FUSE file system whose writes fail with EIO while a flag file
#     exists (tests/it/durability.rs device_errors, ignored in `cargo test`). Skipped with a
#     message when /dev/fuse or the Python package fusepy is missing.
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
  if mountpoint -q "$work/eio" 2>/dev/null; then fusermount -u "$work/eio" || umount -l "$work/eio"; fi
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
expect_clean_failure() { # WHAT STATUS STDERR-FILE LABEL
  local status=$2
  if [ "$status" -ne 2 ] || grep -q panicked "$3" || ! grep -q '^error: ' "$3" || ! grep -q '^hint: ' "$3"; then
    echo "FAILED: $1 on the $4 exited $status:"; cat "$3"; exit 1
  fi
  echo "$1 on the $4: exit $status, $(grep -m1 '^error: ' "$3") / $(grep -m1 '^hint: ' "$3")"
}

age-keygen -o "$work/backup.key" 2>/dev/null
recipient=$(age-keygen -y "$work/backup.key")
"$gm" quickstart --home "$work/sb" --no-serve >/dev/null 2>&1
serve_and_invite "$work/sb" 3

# backup_and_restore_fail_cleanly LABEL DIR BREAK HEAL: a backup written into DIR and a restore
# over a database in DIR while BREAK is in effect must exit 2 with an error and a hint and leave
# nothing behind (the old database intact); after HEAL both must succeed.
backup_and_restore_fail_cleanly() {
  local label=$1 dir=$2 break_cmd=$3 heal_cmd=$4 status left before
  echo "-- backup: output on the $label"
  $break_cmd
  status=0; "$gm" managed backup --home "$work/sb" --recipient "$recipient" --output "$dir/b.age" 2>"$work/err" || status=$?
  expect_clean_failure "gm managed backup" "$status" "$work/err" "$label"
  # No file under the final name. On a full disk the failed run removed its scratch itself; a
  # failing device may refuse the removal too, so there the next run must clean up.
  [ ! -e "$dir/b.age" ] || { echo "FAILED: the failed backup left $dir/b.age"; exit 1; }
  [ ! -e "$dir/b.age.sig" ] || { echo "FAILED: the failed backup left a signature for no archive"; exit 1; }
  left=$(find "$dir" -mindepth 1 ! -name filler | wc -l)
  [ "$left" -eq 0 ] || [ "$label" != "full tmpfs" ] || { echo "FAILED: the failed backup left files: $(ls -A "$dir")"; exit 1; }
  $heal_cmd
  "$gm" managed backup --home "$work/sb" --recipient "$recipient" --output "$dir/b.age" >/dev/null 2>&1
  "$gm" managed verify "$dir/b.age" --identity "$work/backup.key" --home "$work/sb" >/dev/null
  left=$(find "$dir" -mindepth 1 ! -name filler ! -name b.age ! -name b.age.sig | wc -l)
  [ "$left" -eq 0 ] || { echo "FAILED: scratch files remain after the next backup: $(ls -A "$dir")"; exit 1; }
  echo "$label over: backup written and verified ($(du -h "$dir/b.age" | cut -f1))"
  mv "$dir/b.age" "$work/b.age" && mv "$dir/b.age.sig" "$work/b.age.sig"

  echo "-- restore: the database being replaced lives on the $label"
  cp -r "$work/sb" "$dir/sb"
  serve_and_invite "$dir/sb" 1
  before=$(invites "$dir/sb/na.db")
  $break_cmd
  status=0; "$gm" managed restore --home "$dir/sb" --backup "$work/b.age" --identity "$work/backup.key" --yes 2>"$work/err" || status=$?
  expect_clean_failure "gm managed restore" "$status" "$work/err" "$label"
  left=$(find "$dir/sb" -name '*.tmp*' -o -name '.gm-restore-*' -o -name '*restore-tmp*' | wc -l)
  [ "$left" -eq 0 ] || [ "$label" != "full tmpfs" ] || { echo "FAILED: the failed restore left files behind"; exit 1; }
  # sqlite3 itself needs to write the -shm file, so the old database is checked once healed.
  $heal_cmd
  [ "$(integrity "$dir/sb/na.db")" = ok ] && [ "$(invites "$dir/sb/na.db")" = "$before" ] ||
    { echo "FAILED: the old database changed or is damaged after the failed restore"; exit 1; }
  echo "old database intact: integrity ok, $before invites"
  "$gm" managed restore --home "$dir/sb" --backup "$work/b.age" --identity "$work/backup.key" --yes >/dev/null 2>&1
  echo "$label over: restore done, integrity $(integrity "$dir/sb/na.db"), $(invites "$dir/sb/na.db") invites (the backup's)"
  left=$(find "$dir/sb" -name '*.tmp*' -o -name '.gm-restore-*' -o -name '*restore-tmp*' | wc -l)
  [ "$left" -eq 0 ] || { echo "FAILED: scratch files remain after the next restore"; exit 1; }
  rm -rf "${dir:?}/sb"
}
unfill() { rm "$small/filler"; }
backup_and_restore_fail_cleanly "full tmpfs" "$small" fill unfill

echo "== d. device errors (EIO)"
# scripts/eio-fs.py: a pass-through FUSE file system whose writes fail with EIO while a flag file
# exists. Needs /dev/fuse, libfuse2 and the Python package fusepy.
if [ ! -e /dev/fuse ] || ! python3 -c 'import fuse' 2>/dev/null; then
  echo "SKIPPED: no /dev/fuse or no fusepy (apt-get install libfuse2t64 fuse3; pip install fusepy)"
  echo "faults: all checks passed (device errors skipped)"
  exit 0
fi
mkdir -p "$work/eio-backing" "$work/eio"
python3 scripts/eio-fs.py "$work/eio-backing" "$work/eio" "$work/eio-flag" 2>"$work/eio-fs.log" &
fuse_pid=$!
for _ in $(seq 100); do mountpoint -q "$work/eio" && break; sleep 0.05; done
mountpoint -q "$work/eio" || { echo "FAILED: eio-fs.py did not mount:"; cat "$work/eio-fs.log"; exit 1; }
echo "-- serve: database on the failing device, writes fail with EIO, then the device recovers"
mkdir "$work/eio/serve"
GM_EIO_DIR=$work/eio/serve GM_EIO_FLAG=$work/eio-flag cargo test --quiet --test it durability::device_errors -- --ignored --nocapture 2>&1 |
  grep -oE 'device errors.*|test result.*|panicked.*|FAILED.*'
rm -rf "$work/eio/serve"
eio_on() { touch "$work/eio-flag"; }
eio_off() { rm -f "$work/eio-flag"; }
backup_and_restore_fail_cleanly "failing device" "$work/eio" eio_on eio_off
# The device fails part-way: the first 40 writing calls still succeed.
eio_midway() { echo 40 >"$work/eio-flag"; }
backup_and_restore_fail_cleanly "device failing part-way" "$work/eio" eio_midway eio_off
echo "faults: all checks passed"
