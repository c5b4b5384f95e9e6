/*
 * memcpy, memmove and memcmp for the static x86_64 musl build of gm (the binary install.sh ships),
 * in place of musl's.
 *
 * Why: musl's x86_64 memcpy (src/string/x86_64/memcpy.s) starts every copy with `rep movsq` and
 * finishes it with a loop of single `movsb` instructions. `rep movs` has a fixed start-up cost of
 * tens of cycles, so a copy of 1 to 32 bytes, which is what formatting a log line or an HTTP head
 * is made of (~95 copies per /crl request), costs 30-40 ns where glibc's takes 2-3 ns. A perf profile
 * of `gm serve` answering /crl put 27% of the static build's CPU in musl's memcpy, and 29% of
 * `gm managed verify`'s (SQLite copies cells and pages). With memcpy fixed, verify's next cost was
 * musl's memcmp (15%), a loop of one byte per step, which SQLite calls for every index key it
 * compares. BENCHMARKS.md ("issue 19, fourth part") has the figures before and after.
 *
 * What: copies of up to 64 bytes load everything into registers and then store it, using two
 * overlapping loads of the largest width that fits (so there is no byte loop and no branch per
 * byte); 65 to 1023 bytes copy 16 bytes per step with an overlapping last step; 1024 bytes and more
 * use `rep movsb`, which CPUs with ERMS (Intel since Ivy Bridge, recent AMD) run at full speed; on
 * an older CPU such copies are slower than musl's `rep movsq`, never wrong.
 * memcmp compares 8 bytes per step and orders the first differing word by its first differing byte.
 * Only SSE2 is used: it is part of the x86_64 baseline, so the binary runs on every x86_64 CPU.
 *
 * memmove is here too because musl's memmove (memmove.s) jumps into musl's memcpy object: linking
 * it would bring musl's memcpy back and the link would fail with a duplicate definition.
 *
 * How it is linked: build.rs compiles this file only for x86_64 musl targets and links it as a
 * whole archive ahead of musl's libc.a, so the linker takes these definitions and never pulls
 * musl's memcpy.o, memmove.o or memcmp.o (if it ever did, the link fails on the duplicate: it can
 * never silently fall back). Compiled with -fno-builtin, -ffreestanding and
 * -fno-tree-loop-distribute-patterns, so the compiler cannot turn these loops back into calls to
 * memcpy. scripts/test-musl.sh checks all three against byte-by-byte references for every
 * length up to 300 and growing lengths to 5000 at all 256 source/destination alignments, memmove
 * at every overlap in both directions, and memcmp with the first difference at every position.
 */

#include <stddef.h>
#include <stdint.h>

/* Unaligned, aliasing-safe views of memory. */
typedef uint64_t u64u __attribute__((may_alias, aligned(1)));
typedef uint32_t u32u __attribute__((may_alias, aligned(1)));
typedef uint16_t u16u __attribute__((may_alias, aligned(1)));
typedef unsigned char v16u __attribute__((vector_size(16), may_alias, aligned(1)));

/* Copies n <= 64 bytes. Every load happens before any store, so it is correct for overlapping
 * buffers too (memmove uses it). */
static inline __attribute__((always_inline)) void copy_small(unsigned char *d, const unsigned char *s, size_t n)
{
	if (n >= 32) {
		v16u a = *(const v16u *)s, b = *(const v16u *)(s + 16);
		v16u c = *(const v16u *)(s + n - 32), e = *(const v16u *)(s + n - 16);
		*(v16u *)d = a;
		*(v16u *)(d + 16) = b;
		*(v16u *)(d + n - 32) = c;
		*(v16u *)(d + n - 16) = e;
	} else if (n >= 16) {
		v16u a = *(const v16u *)s, b = *(const v16u *)(s + n - 16);
		*(v16u *)d = a;
		*(v16u *)(d + n - 16) = b;
	} else if (n >= 8) {
		uint64_t a = *(const u64u *)s, b = *(const u64u *)(s + n - 8);
		*(u64u *)d = a;
		*(u64u *)(d + n - 8) = b;
	} else if (n >= 4) {
		uint32_t a = *(const u32u *)s, b = *(const u32u *)(s + n - 4);
		*(u32u *)d = a;
		*(u32u *)(d + n - 4) = b;
	} else if (n >= 2) {
		uint16_t a = *(const u16u *)s, b = *(const u16u *)(s + n - 2);
		*(u16u *)d = a;
		*(u16u *)(d + n - 2) = b;
	} else if (n == 1) {
		*d = *s;
	}
}

void *memcpy(void *restrict dest, const void *restrict src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	if (n <= 64) {
		copy_small(d, s, n);
		return dest;
	}
	if (n >= 1024) {
		__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
		return dest;
	}
	/* 65..1023 bytes: 16 bytes a step, then the last 16 bytes (which may overlap the last step). */
	v16u last = *(const v16u *)(s + n - 16);
	unsigned char *end = d + n - 16;
	while (d < end) {
		*(v16u *)d = *(const v16u *)s;
		d += 16;
		s += 16;
	}
	*(v16u *)end = last;
	return dest;
}

void *memmove(void *dest, const void *src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	/* No overlap (the unsigned distance either way is at least n): a plain copy. */
	if ((uintptr_t)d - (uintptr_t)s >= n && (uintptr_t)s - (uintptr_t)d >= n)
		return memcpy(dest, src, n);
	if (n <= 64) {
		copy_small(d, s, n);
		return dest;
	}
	if (d < s) {
		/* Forwards: each step loads its 16 bytes before storing them, and never stores over
		 * source bytes a later step still has to load. */
		while (n >= 16) {
			v16u a = *(const v16u *)s;
			*(v16u *)d = a;
			d += 16;
			s += 16;
			n -= 16;
		}
		while (n--)
			*d++ = *s++;
	} else {
		/* Backwards, for the mirror reason. */
		d += n;
		s += n;
		while (n >= 16) {
			d -= 16;
			s -= 16;
			n -= 16;
			v16u a = *(const v16u *)s;
			*(v16u *)d = a;
		}
		while (n--)
			*--d = *--s;
	}
	return dest;
}

/* Orders 8 bytes at l against 8 bytes at r as memcmp does. On little-endian x86_64 the byte-swapped
 * word has the first byte most significant, so words order as their first differing bytes do. */
static inline __attribute__((always_inline)) int order_words(const unsigned char *l, const unsigned char *r)
{
	uint64_t a = __builtin_bswap64(*(const u64u *)l), b = __builtin_bswap64(*(const u64u *)r);
	return a == b ? 0 : a < b ? -1 : 1;
}

int memcmp(const void *left, const void *right, size_t n)
{
	const unsigned char *l = left, *r = right;
	if (n < 8) {
		for (; n; n--, l++, r++) {
			if (*l != *r)
				return *l - *r;
		}
		return 0;
	}
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		if (*(const u64u *)(l + i) != *(const u64u *)(r + i))
			return order_words(l + i, r + i);
	}
	/* The last 1..7 bytes as the last 8, whose first bytes already compared equal. */
	return i == n ? 0 : order_words(l + n - 8, r + n - 8);
}
