/*
 * Checks src/musl/string.c (the memcpy/memmove/memcmp of the static musl build) against byte-by-byte
 * references: memcpy for every length 0..300 and growing lengths up to 5000, each at all 16x16
 * source/destination alignments, with guard bytes on both sides; memmove for lengths 0..600 at every
 * overlap distance in both directions; memcmp for lengths 0..300 and growing to 5000 at 8x8
 * alignments, equal and with a difference (either way, bytes above and below 0x80) at every
 * position, followed within 8 bytes by a difference the other way round. Built and run by scripts/test-musl.sh, linked with that file so its definitions
 * are the ones called. Exit 0 and "ok: N checks", or 1 naming the first failure.
 */
#include <stdio.h>
#include <string.h>

static void ref_copy(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}

static int ref_compare(const unsigned char *l, const unsigned char *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] != r[i])
			return l[i] < r[i] ? -1 : 1;
	return 0;
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static int same(const unsigned char *a, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

enum { MAX = 5000, PAD = 64, SPAN = MAX + 2 * PAD };
static unsigned char src[SPAN], dst[SPAN], want[SPAN], buf[2 * SPAN], ref[2 * SPAN], tmp[MAX];

int main(void)
{
	unsigned long checks = 0;
	for (size_t i = 0; i < SPAN; i++)
		src[i] = (unsigned char)(i * 131 + 7);
	for (size_t n = 0; n <= MAX; n = n < 300 ? n + 1 : n * 5 / 4 + 1) {
		for (size_t sa = 0; sa < 16; sa++) {
			for (size_t da = 0; da < 16; da++) {
				for (size_t i = 0; i < SPAN; i++)
					dst[i] = want[i] = 0xEE;
				ref_copy(want + PAD + da, src + PAD + sa, n);
				void *r = memcpy(dst + PAD + da, src + PAD + sa, n);
				if (r != dst + PAD + da || !same(dst, want, SPAN)) {
					printf("memcpy wrong: length %zu, source offset %zu, destination offset %zu\n", n, sa, da);
					return 1;
				}
				checks++;
			}
		}
	}
	for (size_t n = 0; n <= 600; n = n < 200 ? n + 1 : n + 37) {
		for (long off = -(long)n - 2; off <= (long)n + 2; off++) {
			size_t base = MAX / 2;
			for (size_t i = 0; i < 2 * SPAN; i++)
				buf[i] = ref[i] = (unsigned char)(i * 17 + 3);
			ref_copy(tmp, ref + base, n);
			ref_copy(ref + base + off, tmp, n);
			void *r = memmove(buf + base + off, buf + base, n);
			if (r != buf + base + off || !same(buf, ref, 2 * SPAN)) {
				printf("memmove wrong: length %zu, destination %ld bytes from the source\n", n, off);
				return 1;
			}
			checks++;
		}
	}
	for (size_t n = 0; n <= MAX; n = n < 300 ? n + 1 : n * 5 / 4 + 1) {
		for (size_t la = 0; la < 8; la++) {
			for (size_t ra = 0; ra < 8; ra++) {
				unsigned char *l = buf + PAD + la, *r = ref + PAD + ra;
				for (size_t i = 0; i < n; i++)
					l[i] = r[i] = src[i];
				if (memcmp(l, r, n) != 0) {
					printf("memcmp wrong: equal length %zu reported different\n", n);
					return 1;
				}
				checks++;
				/* One differing byte at each position (every position up to 300, then a spread). */
				for (size_t at = 0; at < n; at = at < 300 ? at + 1 : at + 97) {
					static const unsigned char pairs[][2] = { { 0x10, 0x11 }, { 0x7f, 0x80 }, { 0x01, 0xff } };
					for (size_t p = 0; p < 3; p++) {
						for (int flip = 0; flip < 2; flip++) {
							/* And a later difference the other way round, which must not decide. */
							size_t later = at + 1 + at % 7;
							int two = later < n;
							unsigned char keep_l = l[at], keep_r = r[at];
							unsigned char keep_ll = two ? l[later] : 0, keep_rl = two ? r[later] : 0;
							l[at] = pairs[p][flip];
							r[at] = pairs[p][!flip];
							if (two) {
								l[later] = pairs[2][!flip];
								r[later] = pairs[2][flip];
							}
							int got = sign(memcmp(l, r, n)), want_sign = ref_compare(l, r, n);
							l[at] = keep_l;
							r[at] = keep_r;
							if (two) {
								l[later] = keep_ll;
								r[later] = keep_rl;
							}
							if (got != want_sign) {
								printf("memcmp wrong: length %zu, difference at %zu (%#x vs %#x): %d, want %d\n", n,
								       at, pairs[p][flip], pairs[p][!flip], got, want_sign);
								return 1;
							}
							checks++;
						}
					}
				}
			}
		}
	}
	printf("ok: %lu checks\n", checks);
	return 0;
}
