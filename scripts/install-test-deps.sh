#!/usr/bin/env bash
# The one list of what gm's checks and tests need beyond the Rust toolchain, shared by
# scripts/test.sh (the README's test command) and .ci/run. It looks for each tool, and when some are
# missing: as root on a Debian-like host it installs their Debian packages with apt-get; otherwise it
# prints exactly what to install and exits 2, changing nothing.
#
# What scripts/test.sh needs (cargo test runs these):
#   cc         gcc, libc6-dev  the bundled SQLite and ring are C/assembly built by cargo
#   age        age             the backup ecosystem test decrypts gm's archives with the stock age CLI
#   promtool   prometheus      the cron tests run `promtool check metrics` on gm's /metrics series
#   systemd-analyze  systemd   tests/it/packaging.rs verifies and scores the units (no running systemd)
#   kill, prlimit, script, tar, gzip   procps, util-linux, bsdutils, tar, gzip (a minimal Debian root
#                              file system lacks procps)
#   bash, curl, jq   bash, curl, jq   tests/it/readme.rs and runbooks.rs run the README's and the
#                              runbooks' shell blocks as written
#   a CA bundle  ca-certificates  gm's https clients trust the host's roots (client/roots.rs)
#   nginx, caddy  nginx, caddy  tests/it/proxies.rs runs the shipped deploy/nginx/gm.conf and
#                              deploy/caddy/Caddyfile in front of gm serve (started by the test on
#                              loopback ports; the packages' own services are not needed)
#   localhost  /etc/hosts      tests dial localhost; checked, never edited (hint printed)
#   git        git             build.rs embeds the commit in `gm --version` (optional: without git
#                              the build says "unknown commit"; not installed, only reported)
#   s3s-fs     crates.io s3s-fs 0.14.1 (not a Debian package)  tests/it/s3_backup.rs backs up to a
#                              real S3 server: built with `cargo install` into target/test-tools/bin
#                              (about 2 min on 2 cores, once; skipped when that copy is 0.14.1)
# and, with --ci, what .ci/run's longer runs need: python3 (fuzz corpus, FUSE device), sqlite3
# (scripts/faults.sh), and where /dev/fuse exists, fuse + libfuse2 for scripts/eio-fs.py.
#
# The Rust side is not installed here: cargo, rustfmt and clippy come from rustup
# (`rustup component add rustfmt clippy`); this script names them when they are missing. s3s-fs
# is built with that cargo (as any user, no root needed) after the Debian packages (it needs cc).
#
# Usage: scripts/install-test-deps.sh [--ci] [--check]
#   --ci     also the packages of .ci/run's load, fault and fuzz runs
#   --check  only report; never install, even as root (exit 2 when something is missing)
# Exit status: 0 everything present (or installed now), 2 something is missing or could not be installed.
set -euo pipefail

ci=0
check_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1 ;;
    --check) check_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *)
      echo "install-test-deps: error: unknown argument '$1'" >&2
      echo "hint: scripts/install-test-deps.sh [--ci] [--check]" >&2
      exit 2
      ;;
  esac
  shift
done

packages=()
need() { # need COMMAND PACKAGE...: the packages when COMMAND is not on PATH
  local cmd="$1"
  shift
  type -P "$cmd" >/dev/null 2>&1 || packages+=("$@") # -P: the binary, not a shell builtin (kill)
}
need cc gcc libc6-dev
need age age
need promtool prometheus
need systemd-analyze systemd
need kill procps
need prlimit util-linux
need script bsdutils
need tar tar
need gzip gzip
need bash bash
need curl curl
need jq jq
# The shipped reverse-proxy configurations are tested against the real proxies (tests/it/proxies.rs).
# nginx sits in /usr/sbin, which a non-root PATH often lacks; the test looks there too.
type -P nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
need caddy caddy
# gm's outbound TLS trusts the host's CA bundle (src/client/roots.rs); a minimal root file system
# has none (curl only recommends it).
bundle_found=0
for b in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
  /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem; do
  [ -s "$b" ] && bundle_found=1
done
[ "$bundle_found" = 1 ] || packages+=(ca-certificates)
if [ "$ci" = 1 ]; then
  need python3 python3
  need sqlite3 sqlite3
  # scripts/faults.sh's device-error part: a FUSE file system (scripts/eio-fs.py) on libfuse2.
  if [ -e /dev/fuse ]; then
    need fusermount fuse
    if ! ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2'; then
      if apt-cache show libfuse2t64 >/dev/null 2>&1; then packages+=(libfuse2t64); else packages+=(libfuse2); fi
    fi
  fi
fi

# The network tests dial "localhost": a machine whose resolver does not map it to loopback (a
# debootstrapped root file system has no /etc/hosts) fails them. Reported, never edited here.
hosts_missing=0
if command -v getent >/dev/null 2>&1 && ! getent hosts localhost 2>/dev/null | grep -qE '^(127\.|::1)'; then
  hosts_missing=1
  echo "install-test-deps: error: localhost does not resolve to a loopback address" >&2
  echo "hint: add the line '127.0.0.1 localhost' to /etc/hosts" >&2
fi

# The toolchain: reported, never installed (rustup owns it).
rust_missing=()
if ! command -v cargo >/dev/null 2>&1; then
  rust_missing+=("cargo (install Rust with rustup: https://rustup.rs)")
else
  cargo fmt --version >/dev/null 2>&1 || rust_missing+=("rustfmt (rustup component add rustfmt)")
  cargo clippy --version >/dev/null 2>&1 || rust_missing+=("clippy (rustup component add clippy)")
fi
command -v git >/dev/null 2>&1 ||
  echo "install-test-deps: note: git is missing; gm --version will say \"unknown commit\" (apt-get install git)" >&2

if [ ${#rust_missing[@]} -gt 0 ]; then
  for what in "${rust_missing[@]}"; do echo "install-test-deps: error: missing $what" >&2; done
fi

# The S3 server of tests/it/s3_backup.rs: s3s-fs from crates.io, a real S3 server over a folder
# that checks SigV4 signatures. 0.14.1 is the newest that builds with rustc 1.95 (0.17 needs 1.96);
# --locked pins its dependencies. The tests find it at target/test-tools/bin/s3s-fs (or
# $GM_TEST_S3S_FS). Built below, after the Debian packages (it needs cc); --check only reports.
s3s_version=0.14.1
tools="$(cd "$(dirname "$0")/.." && pwd)/target/test-tools"
s3s_missing=0
s3s_build=0
if ! "$tools/bin/s3s-fs" --version 2>/dev/null | grep -qx "s3s-fs $s3s_version"; then
  if [ "$check_only" = 1 ]; then
    s3s_missing=1
    echo "install-test-deps: error: s3s-fs $s3s_version is not installed in $tools/bin" >&2
    echo "hint: run scripts/install-test-deps.sh (it runs: cargo install s3s-fs@$s3s_version --locked --features binary --root $tools)" >&2
  else
    s3s_build=1
  fi
fi

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$check_only" = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: installing ${packages[*]}" >&2
    if ! { apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }; then
      echo "install-test-deps: error: apt-get could not install ${packages[*]}" >&2
      echo "hint: check the apt sources (/etc/apt/sources.list*) and run: apt-get install --no-install-recommends ${packages[*]}" >&2
      exit 2
    fi
  else
    echo "install-test-deps: error: the tests need tools this machine lacks; install (Debian/Ubuntu):" >&2
    echo "  sudo apt-get install --no-install-recommends ${packages[*]}" >&2
    flag=""
    [ "$ci" = 0 ] || flag=" --ci"
    echo "hint: or run scripts/install-test-deps.sh$flag as root, which installs them with apt-get" >&2
    exit 2
  fi
fi
[ ${#rust_missing[@]} -eq 0 ] && [ "$hosts_missing" = 0 ] && [ "$s3s_missing" = 0 ] || exit 2

# The S3 server, built now that cc and cargo are there.
if [ "$s3s_build" = 1 ]; then
  echo "install-test-deps: building s3s-fs $s3s_version into $tools/bin (about 2 min on 2 cores)" >&2
  # Its own temporary build folder, not gm's target/ (CARGO_TARGET_DIR would point cargo install there).
  if ! env -u CARGO_TARGET_DIR cargo install "s3s-fs@$s3s_version" --locked --features binary --root "$tools" --quiet; then
    echo "install-test-deps: error: cargo install s3s-fs@$s3s_version failed" >&2
    echo "hint: it needs crates.io (or the crates in ~/.cargo/registry) and a C compiler; run it by hand to see why: cargo install s3s-fs@$s3s_version --locked --features binary --root $tools" >&2
    exit 2
  fi
fi
exit 0
