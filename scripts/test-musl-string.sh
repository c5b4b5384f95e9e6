#!/usr/bin/env bash
# Checks the memcpy/memmove/memcmp the static musl build links instead of musl's (src/musl/string.c)
# against byte-by-byte references (tests/musl_string/check.c: every length to 300 and growing ones
# to 5000 at all source/destination alignments; memmove at every overlap; memcmp with a difference
# at every position). Built with the same flags build.rs uses, with musl-gcc when installed (as the
# static build), else the system cc: the code uses no libc, so either checks it. scripts/test.sh
# runs it; about 3 s.
# Usage: scripts/test-musl-string.sh   (exit 0 ok, 1 a check failed, 2 no C compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
cc=$(command -v musl-gcc || command -v cc || true)
[ -n "$cc" ] || { echo "test-musl-string: no C compiler (apt-get install gcc, or musl-tools)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O2 -fno-builtin -ffreestanding -fno-tree-loop-distribute-patterns)
"$cc" "${flags[@]}" -c src/musl/string.c -o "$work/string.o"
"$cc" -O2 -fno-builtin -c tests/musl_string/check.c -o "$work/check.o"
# The functions must call nothing: a compiler that turned a loop back into a call to memcpy would
# make memcpy call itself. The one jump allowed is memmove handing a non-overlapping copy to memcpy.
calls=$(objdump -d "$work/string.o" | awk '/^[0-9a-f]+ <[a-z_]+>:$/ { fn = $2 }
  /[ \t]call[ \t]/ || /[ \t]jmp[ \t]+[0-9a-f]+ <mem(cpy|move)>$/ { if (!(fn == "<memmove>:" && / <memcpy>$/)) print fn, $0 }')
if [ -n "$calls" ]; then
  echo "test-musl-string: the functions call out (the compiler may have turned a loop into memcpy):" >&2
  echo "$calls" >&2
  exit 1
fi
"$cc" "$work/check.o" "$work/string.o" -o "$work/check"
echo "test-musl-string ($(basename "$cc")): $("$work/check")"
