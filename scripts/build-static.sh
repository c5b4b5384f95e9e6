#!/usr/bin/env bash
# Builds the release `gm` as one static x86_64 musl binary (the artefact install.sh ships), checks
# that it really is static (no ELF interpreter, no shared libraries) and that it fits the 8 MiB
# size target (8,388,608 bytes), and prints where it is.
#
# Needs the rustup target x86_64-unknown-linux-musl (added with `rustup target add` when missing)
# and musl-gcc from the Debian package musl-tools: the bundled SQLite and ring's assembly are C,
# and C built against glibc headers cannot be linked into a musl binary. When root on Debian, the
# script installs musl-tools itself.
#
# Usage: scripts/build-static.sh      (honours CARGO_TARGET_DIR; exit 0 ok, 1 a check failed,
#                                      2 the build could not run)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly TARGET=x86_64-unknown-linux-musl
readonly MAX_BYTES=8388608

die() { echo "build-static: error: $1" >&2; [ -z "${2:-}" ] || echo "hint: $2" >&2; exit 2; }

command -v cargo >/dev/null || die "cargo is not installed" "install the Rust toolchain with rustup"

if ! rustc --print target-libdir --target "$TARGET" 2>/dev/null | xargs -r test -d; then
  command -v rustup >/dev/null || die "the Rust standard library for $TARGET is missing and rustup is not installed" \
    "install the $TARGET target of your Rust toolchain"
  echo "build-static: adding the rustup target $TARGET" >&2
  rustup target add "$TARGET" >&2 || die "rustup could not download the standard library for $TARGET" \
    "this machine may have no access to the Rust distribution server: run 'rustup target add $TARGET' where it has, or copy the toolchain's lib/rustlib/$TARGET folder here"
fi

if ! command -v musl-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build-static: installing musl-tools (musl-gcc)" >&2
    { apt-get install -y -qq --no-install-recommends musl-tools >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends musl-tools >/dev/null; }; } ||
      die "apt-get could not install musl-tools"
  else
    die "musl-gcc is not installed (needed to compile the bundled SQLite for musl)" "apt-get install musl-tools"
  fi
fi

# The cc crate would find musl-gcc on its own; naming it keeps a cross gcc on PATH from winning.
export CC_x86_64_unknown_linux_musl=musl-gcc
# Relative relocations packed as DT_RELR (binutils >= 2.38; musl >= 1.2.4 applies them when the
# static-pie relocates itself): .rela.dyn shrinks from ~196 KB to ~3 KB with the same position-
# independent, ASLR'd binary. (A RUSTFLAGS in the environment replaces this, as cargo does.)
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS:--C link-arg=-Wl,-z,pack-relative-relocs}"
cargo build --release --locked --target "$TARGET" --bin gm >&2 || die "cargo build --release --target $TARGET failed (see above)"

bin="${CARGO_TARGET_DIR:-target}/$TARGET/release/gm"
[ -x "$bin" ] || die "the build finished but $bin is not there"

failed=0
if command -v file >/dev/null; then
  kind=$(file -b "$bin")
  case "$kind" in
    *"statically linked"* | *"static-pie linked"*) echo "linking: static ($kind)" ;;
    *) echo "linking: NOT static: $kind" >&2; failed=1 ;;
  esac
fi
# ldd answers "not a dynamic executable" (or "statically linked") for a static binary and lists the
# libraries otherwise; its exit status differs between glibc versions, so read its words.
ldd_out=$(ldd "$bin" 2>&1 || true)
case "$ldd_out" in
  *"not a dynamic executable"* | *"statically linked"*) echo "ldd: $ldd_out" | tr -s '\t ' ' ' ;;
  *) echo "ldd: NOT static:" >&2; echo "$ldd_out" >&2; failed=1 ;;
esac

bytes=$(stat -c %s "$bin")
size="$bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.2f MB, %.2f MiB", b / 1e6, b / 1048576 }'))"
if [ "$bytes" -le "$MAX_BYTES" ]; then
  echo "size: $size, within the 8 MiB target"
else
  echo "size: $size, OVER the 8 MiB target" >&2
  failed=1
fi
echo "binary: $bin"
exit "$failed"
