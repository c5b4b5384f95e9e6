/*
 * Checks src/musl/memcpy.c (the memcpy/memmove of the static musl build) against a byte-by-byte
 * reference: memcpy for every length 0..300 and growing lengths up to 5000, each at all 16x16
 * source/destination alignments, with guard bytes on both sides; memmove for lengths 0..600 at every
 * overlap distance in both directions. Built and run by scripts/test-memcpy.sh, linked with that file
 * so its definitions are the ones called. Exit 0 and "ok: N checks", or 1 naming the first failure.
 */
#include <stdio.h>
#include <string.h>

static void ref_copy(unsigned char *d, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
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
	printf("ok: %lu checks\n", checks);
	return 0;
}
