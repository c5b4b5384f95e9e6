/*
 * Checks src/musl/sqlite_mem.c (SQLite's allocator in the static musl build) through the methods it
 * hands to sqlite3_config, which a stand-in sqlite3_config below captures:
 *   - every request size 0..70,000 and growing sizes to 1 MiB: 16-byte alignment, xSize >= the
 *     request, xRoundup(n) == xSize(xMalloc(n)), at most 25% slack above 256 bytes;
 *   - blocks never overlap: each is filled with its own pattern, checked after all were allocated;
 *   - xRealloc keeps the contents across every kind of move (same class, another class, to and from
 *     blocks too big to cache, shrinking), and xRealloc(NULL, n) allocates;
 *   - the cache: a freed block of a class is handed out again, and however much is freed the cache
 *     never keeps more than CACHE_BYTES;
 *   - four threads allocating, reallocating and freeing at random, each block checked against its
 *     pattern before it is freed (a race on the free lists shows as a corrupted pattern or a crash).
 * Built and run by scripts/test-musl.sh with the system cc or musl-gcc. Exit 0 and "ok: N checks",
 * or 1 naming the first failure.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../src/musl/sqlite_mem.c"

static const gm_sqlite3_mem_methods *m;
static long checks;

int sqlite3_config(int op, ...)
{
	va_list ap;
	va_start(ap, op);
	if (op == GM_SQLITE_CONFIG_MALLOC)
		m = va_arg(ap, const gm_sqlite3_mem_methods *);
	va_end(ap);
	return GM_SQLITE_OK;
}

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static void fill(unsigned char *p, int n, unsigned seed)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 31 + (unsigned)i * 7 + 1);
}

static int intact(const unsigned char *p, int n, unsigned seed)
{
	for (int i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 31 + (unsigned)i * 7 + 1))
			return 0;
	return 1;
}

static void check_sizes(void)
{
	for (int n = 0; n <= 1 << 20; n += n < 70000 ? 1 : 9973) {
		unsigned char *p = m->xMalloc(n);
		if (!p)
			FAIL("xMalloc(%d) returned NULL", n);
		if ((uintptr_t)p % 16)
			FAIL("xMalloc(%d) is not 16-byte aligned", n);
		int size = m->xSize(p);
		if (size < n)
			FAIL("xSize %d below the request %d", size, n);
		if (m->xRoundup(n) != size)
			FAIL("xRoundup(%d) = %d but the block holds %d", n, m->xRoundup(n), size);
		if (n > 256 && (size + HEADER) > (n + HEADER) + (n + HEADER) / 4 + 16)
			FAIL("xMalloc(%d) gives %d bytes: more than 25%% slack", n, size);
		fill(p, size, (unsigned)n);
		m->xFree(p);
		checks += 5;
	}
	if (m->xMalloc(-1) != NULL || m->xRealloc(NULL, -5) != NULL)
		FAIL("a negative size must fail");
	m->xFree(NULL);
	if (m->xSize(NULL) != 0)
		FAIL("xSize(NULL) must be 0");
	checks += 3;
}

static void check_no_overlap(void)
{
	enum { N = 3000 };
	static unsigned char *p[N];
	static int len[N];
	for (int i = 0; i < N; i++) {
		len[i] = (i * 7919) % (i % 10 == 0 ? 200000 : 5000);
		p[i] = m->xMalloc(len[i]);
		if (!p[i])
			FAIL("xMalloc(%d) returned NULL", len[i]);
		fill(p[i], len[i], (unsigned)i);
	}
	for (int i = 0; i < N; i++) {
		if (!intact(p[i], len[i], (unsigned)i))
			FAIL("block %d (%d bytes) was overwritten by another", i, len[i]);
		checks++;
	}
	for (int i = 0; i < N; i++)
		m->xFree(p[i]);
}

static void check_realloc(void)
{
	static const int sizes[] = {0, 1, 15, 16, 17, 240, 241, 256, 257, 1000, 1024, 1040, 4096, 4100,
		65536, 65600, 131000, 131056, 131057, 200000, 300000, 100, 70000, 5, 0};
	int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
	for (int a = 0; a < nsizes; a++)
		for (int b = 0; b < nsizes; b++) {
			unsigned char *p = m->xMalloc(sizes[a]);
			fill(p, sizes[a], (unsigned)a);
			unsigned char *q = m->xRealloc(p, sizes[b]);
			if (!q)
				FAIL("xRealloc to %d returned NULL", sizes[b]);
			int keep = sizes[a] < sizes[b] ? sizes[a] : sizes[b];
			if (!intact(q, keep, (unsigned)a))
				FAIL("xRealloc %d -> %d lost the contents", sizes[a], sizes[b]);
			if (m->xSize(q) < sizes[b] || m->xSize(q) != m->xRoundup(sizes[b]))
				FAIL("xRealloc %d -> %d: xSize %d", sizes[a], sizes[b], m->xSize(q));
			fill(q, m->xSize(q), 99);
			m->xFree(q);
			checks += 3;
		}
	unsigned char *p = m->xRealloc(NULL, 100);
	if (!p || m->xSize(p) < 100)
		FAIL("xRealloc(NULL, 100) must allocate");
	m->xFree(p);
	checks++;
}

static void check_cache(void)
{
	/* A freed block comes back for the next request of its class. */
	void *a = m->xMalloc(1000);
	m->xFree(a);
	void *b = m->xMalloc(1001);
	if (a != b)
		FAIL("a freed 1000-byte block was not reused for 1001 bytes");
	m->xFree(b);
	/* Blocks too big for a class are never cached. */
	size_t before = cached_bytes;
	void *big = m->xMalloc(500000);
	m->xFree(big);
	if (cached_bytes != before)
		FAIL("a 500,000-byte block was cached");
	/* However much is freed, the cache stays within its bound. */
	enum { N = 4000 };
	static void *p[N];
	for (int i = 0; i < N; i++)
		p[i] = m->xMalloc(1 + (i * 104729) % 100000);
	for (int i = 0; i < N; i++)
		m->xFree(p[i]);
	if (cached_bytes > CACHE_BYTES)
		FAIL("the cache keeps %zu bytes, over its bound of %zu", cached_bytes, CACHE_BYTES);
	if (cached_bytes < CACHE_BYTES / 2)
		FAIL("the cache kept only %zu bytes of ~200 MB freed", cached_bytes);
	checks += 4;
}

struct slot {
	unsigned char *p;
	int n;
	unsigned seed;
};

static void *stress(void *arg)
{
	unsigned rng = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	enum { SLOTS = 64, STEPS = 100000 };
	struct slot s[SLOTS] = {{0}};
	for (int step = 0; step < STEPS; step++) {
		rng = rng * 1103515245u + 12345u;
		struct slot *x = &s[(rng >> 8) % SLOTS];
		int n = (int)((rng >> 4) % ((rng & 0xf00) == 0 ? 70000 : 2000));
		if (x->p && !intact(x->p, x->n, x->seed))
			FAIL("thread %lu: a %d-byte block was corrupted", (unsigned long)(uintptr_t)arg, x->n);
		if (x->p && (rng & 3) == 0) {
			x->p = m->xRealloc(x->p, n);
			if (!x->p)
				FAIL("xRealloc returned NULL");
			if (!intact(x->p, x->n < n ? x->n : n, x->seed))
				FAIL("xRealloc lost the contents under contention");
		} else {
			m->xFree(x->p);
			x->p = m->xMalloc(n);
			if (!x->p)
				FAIL("xMalloc returned NULL");
		}
		x->n = n;
		x->seed = rng;
		fill(x->p, n, x->seed);
	}
	for (int i = 0; i < SLOTS; i++)
		m->xFree(s[i].p);
	return NULL;
}

int main(void)
{
	if (!m)
		FAIL("the constructor did not install the methods with sqlite3_config");
	if (m->xInit(NULL) != GM_SQLITE_OK)
		FAIL("xInit must succeed");
	check_sizes();
	check_no_overlap();
	check_realloc();
	check_cache();
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, stress, (void *)i))
			FAIL("pthread_create");
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	checks += 4 * 100000;
	if (cached_bytes > CACHE_BYTES)
		FAIL("after the threads the cache keeps %zu bytes, over its bound", cached_bytes);
	m->xShutdown(NULL);
	printf("ok: %ld checks\n", checks);
	return 0;
}
