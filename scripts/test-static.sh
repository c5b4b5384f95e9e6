#!/usr/bin/env bash
# Runs the integration tests (tests/it) against the static musl binary that install.sh ships,
# instead of the debug glibc build `cargo test` uses: that binary alone links gm's own C
# (src/musl: memcpy/memmove/memcmp and SQLite's allocator), so this is where the whole suite's
# SQLite work, serving and backups exercise it. .ci/run calls it after scripts/test.sh.
#
# Builds with scripts/build-static.sh (musl-tools and the rustup target x86_64-unknown-linux-musl,
# which it installs when it can), then `GM_TEST_BIN=<static gm> cargo test --test it`. Both builds
# get one SOURCE_DATE_EPOCH (HEAD's commit time), because tests compare the binary's build date and
# commit with their own. About 2 min when the static build is cached, 6-7 min from scratch.
# Usage: scripts/test-static.sh [TEST FILTER...]   (arguments go to the test binary)
set -euo pipefail
cd "$(dirname "$0")/.."
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
scripts/build-static.sh
GM_TEST_BIN="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/gm" cargo test --quiet --test it -- "$@"
