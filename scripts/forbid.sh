#!/usr/bin/env bash
# Fails on markers that must not be committed: TODO/FIXME/XXX comments and dbg! calls.
set -euo pipefail
cd "$(dirname "$0")/.."
if grep -rnE '\b(TODO|FIXME|XXX)\b|dbg!\(' src tests/it scripts --include='*.rs' --include='*.sh' | grep -v 'scripts/forbid.sh'; then
  echo "forbid: remove the markers above (open an issue instead)"; exit 1
fi
echo "forbid: ok"
