#!/usr/bin/env bash
# The one command that runs every check and test (README, .ci/run): the tools the tests need
# (scripts/install-test-deps.sh installs them as root, or says what to install and exits 2), house
# rules, the static build's own C (scripts/test-musl.sh), formatting, lints, then the unit
# and integration tests (which start the real gm binary on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
scripts/forbid.sh
scripts/check-layers.sh
scripts/test-musl.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test
