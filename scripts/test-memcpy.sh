#!/usr/bin/env bash
# Checks the memcpy/memmove the static musl build links instead of musl's (src/musl/memcpy.c)
# against a byte-by-byte reference (tests/memcpy/check.c: every length to 300 and growing ones to
# 5000 at all source/destination alignments; memmove at every overlap). Built with the same flags
# build.rs uses, with musl-gcc when installed (as the static build), else the system cc: the code
# uses no libc, so either checks it. scripts/test.sh runs it; about 1 s.
# Usage: scripts/test-memcpy.sh      (exit 0 ok, 1 a check failed, 2 no C compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
cc=$(command -v musl-gcc || command -v cc || true)
[ -n "$cc" ] || { echo "test-memcpy: no C compiler (apt-get install gcc, or musl-tools)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O2 -fno-builtin -ffreestanding -fno-tree-loop-distribute-patterns)
"$cc" "${flags[@]}" -c src/musl/memcpy.c -o "$work/memcpy.o"
"$cc" -O2 -fno-builtin -c tests/memcpy/check.c -o "$work/check.o"
# The copies must call nothing: a compiler that turned a copy loop back into a call to memcpy would
# make memcpy call itself. The one jump allowed is memmove handing a non-overlapping copy to memcpy.
calls=$(objdump -d "$work/memcpy.o" | awk '/^[0-9a-f]+ <[a-z_]+>:$/ { fn = $2 }
  /[ \t]call[ \t]/ || /[ \t]jmp[ \t]+[0-9a-f]+ <mem(cpy|move)>$/ { if (!(fn == "<memmove>:" && / <memcpy>$/)) print fn, $0 }')
if [ -n "$calls" ]; then
  echo "test-memcpy: the copy functions call out (the compiler may have turned a loop into memcpy):" >&2
  echo "$calls" >&2
  exit 1
fi
"$cc" "$work/check.o" "$work/memcpy.o" -o "$work/check"
echo "test-memcpy ($(basename "$cc")): $("$work/check")"
