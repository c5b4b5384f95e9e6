#!/usr/bin/env bash
# Checks the C the static musl build links (src/musl/):
#   - string.c, the memcpy/memmove/memcmp used instead of musl's, against byte-by-byte references
#     (tests/musl/check_string.c: every length to 300 and growing ones to 5000 at all
#     source/destination alignments; memmove at every overlap; memcmp with a difference at every
#     position), built with the flags build.rs uses; and that the compiler turned no loop into a call;
#   - sqlite_mem.c, SQLite's allocator there (tests/musl/check_sqlite_mem.c: sizes, alignment,
#     xRoundup, realloc contents, the cache bound, four threads at once);
#   - sqlite_pcache.c, the wrapper around SQLite's page cache there (tests/musl/check_sqlite_pcache.c:
#     a model cache; after every truncation, skipped or not, no page at or above the limit is left).
# Built with musl-gcc when installed (as the static build), else the system cc: either checks the
# code. scripts/test.sh runs it; about 5 s.
# Usage: scripts/test-musl.sh   (exit 0 ok, 1 a check failed, 2 no C compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
cc=$(command -v musl-gcc || command -v cc || true)
[ -n "$cc" ] || { echo "test-musl: no C compiler (apt-get install gcc, or musl-tools)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O2 -fno-builtin -ffreestanding -fno-tree-loop-distribute-patterns)
"$cc" "${flags[@]}" -c src/musl/string.c -o "$work/string.o"
"$cc" -O2 -fno-builtin -c tests/musl/check_string.c -o "$work/check_string.o"
# The functions must call nothing: a compiler that turned a loop back into a call to memcpy would
# make memcpy call itself. The one jump allowed is memmove handing a non-overlapping copy to memcpy.
calls=$(objdump -d "$work/string.o" | awk '/^[0-9a-f]+ <[a-z_]+>:$/ { fn = $2 }
  /[ \t]call[ \t]/ || /[ \t]jmp[ \t]+[0-9a-f]+ <mem(cpy|move)>$/ { if (!(fn == "<memmove>:" && / <memcpy>$/)) print fn, $0 }')
if [ -n "$calls" ]; then
  echo "test-musl: the functions call out (the compiler may have turned a loop into memcpy):" >&2
  echo "$calls" >&2
  exit 1
fi
"$cc" "$work/check_string.o" "$work/string.o" -o "$work/check_string"
# Each result goes through a variable: a failing check inside an echo's $(...) would not stop set -e.
out=$("$work/check_string")
echo "test-musl string.c ($(basename "$cc")): $out"
# sqlite_mem.c is included by its check (its functions are static) and built as build.rs builds it.
"$cc" -O2 -Wall -Wextra -Werror -pthread tests/musl/check_sqlite_mem.c -o "$work/check_sqlite_mem"
out=$("$work/check_sqlite_mem")
echo "test-musl sqlite_mem.c ($(basename "$cc")): $out"
"$cc" -O2 -Wall -Wextra -Werror tests/musl/check_sqlite_pcache.c -o "$work/check_sqlite_pcache"
out=$("$work/check_sqlite_pcache")
echo "test-musl sqlite_pcache.c ($(basename "$cc")): $out"
