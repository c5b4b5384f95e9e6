#!/usr/bin/env bash
# kill -9 trials of `gm managed backup` and `gm managed restore` with more iterations than CI runs
# (tests/it/backup_faults.rs runs 50 each): every backup killed at a random moment must leave no
# file under its final name unless it verifies, the next run must remove the leftovers, and every
# killed restore must leave the old or the new database, whole.
# Usage: scripts/fault-backup.sh [TRIALS]   (default 500; GM_FAULT_SEED=N replays a printed seed)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-500}
case $trials in
  ''|*[!0-9]*) echo "usage: scripts/fault-backup.sh [TRIALS]  (TRIALS: a positive number)" >&2; exit 2 ;;
esac
GM_FAULT_TRIALS=$trials cargo test --test it backup_faults::killed -- --nocapture --test-threads 1
