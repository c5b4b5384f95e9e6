/*
 * SQLite's memory allocator for the static musl build of gm: musl's malloc behind a small cache of
 * freed blocks, installed with sqlite3_config(SQLITE_CONFIG_MALLOC) before main runs.
 *
 * Why: musl's malloc (mallocng) hands a group of small blocks back to the kernel with munmap as soon
 * as every block in it is free, and the next allocation of that size maps a new group. SQLite's
 * write path frees and reallocates the same sizes over and over: every job in the writer's group
 * commit runs in a savepoint whose sub-journal is a chain of 1 KiB chunks (or one 64 KiB chunk),
 * freed when the savepoint ends, and B-tree cursors are allocated per statement. `strace` counted
 * ~0.6 munmap per join (a gdb backtrace of 2,387 of them: 1,958 from SQLite's memjrnlFreeChunks,
 * 371 from closing cursors). An munmap in a process with several threads interrupts every other core
 * to flush its TLB: 17% of the static build's CPU during joins went to those shootdowns, and it
 * joined at half the glibc build's rate (glibc keeps freed blocks in its heap). BENCHMARKS.md
 * ("issue 19, fifth part") has the figures before and after.
 *
 * What: every block carries a 16-byte header with its size (SQLite asks for sizes back), so the
 * 16-byte alignment of musl's malloc is kept. Requests up to 128 KiB are rounded up to a size class
 * (multiples of 16 up to 256 bytes, then four classes per power of two, at most 25% slack, which
 * SQLite may use: xRoundup reports it). A freed block of a class goes on that class's free list
 * while the cache holds less than CACHE_BYTES in all; otherwise, and for bigger blocks, it goes back
 * to musl. So the memory kept beyond what SQLite uses is at most CACHE_BYTES, and the blocks SQLite
 * frees and takes again are reused without a system call. One mutex guards the lists; musl's
 * malloc has a global lock of its own, so this adds no contention that was not there.
 *
 * Only the static x86_64 musl build links this file (build.rs); the glibc build keeps SQLite's
 * default allocator. scripts/test-musl.sh checks the functions directly (sizes, alignment,
 * contents kept by realloc, the cache bound, four threads), and scripts/test-static.sh (run by CI)
 * runs the integration tests against the static binary, so all of their SQLite work goes through it.
 */

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* From sqlite3.h; the layout of sqlite3_mem_methods has not changed since SQLite 3.6. */
typedef struct {
	void *(*xMalloc)(int);
	void (*xFree)(void *);
	void *(*xRealloc)(void *, int);
	int (*xSize)(void *);
	int (*xRoundup)(int);
	int (*xInit)(void *);
	void (*xShutdown)(void *);
	void *pAppData;
} gm_sqlite3_mem_methods;
#define GM_SQLITE_CONFIG_MALLOC 4
#define GM_SQLITE_OK 0
int sqlite3_config(int, ...);

#define HEADER 16
/* Largest block (header included) that has a size class and can be cached. */
#define MAX_CLASS_BYTES ((size_t)128 * 1024)
/* 16 classes of 16..256 bytes, then 4 per power of two from 2^8 to 2^17. */
#define CLASSES (16 + 4 * 9)
/* Bytes of freed blocks the cache keeps at most. */
#define CACHE_BYTES ((size_t)1024 * 1024)

struct block {
	size_t size;	/* bytes of the whole block, header included */
	size_t unused;
};
struct free_block {
	struct free_block *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_block *lists[CLASSES];
static size_t cached_bytes;

/* The class of a block of `total` bytes (header included, 1 <= total <= MAX_CLASS_BYTES), and the
 * class's block size through *size. */
static unsigned size_class(size_t total, size_t *size)
{
	if (total <= 256) {
		size_t s = (total + 15) & ~(size_t)15;
		*size = s;
		return (unsigned)(s / 16 - 1);
	}
	/* 2^k < total <= 2^(k+1) with k >= 8: classes 2^k + j * 2^(k-2), j = 1..4. */
	unsigned k = 63 - (unsigned)__builtin_clzll((unsigned long long)(total - 1));
	size_t step = (size_t)1 << (k - 2);
	size_t s = (total + step - 1) & ~(step - 1);
	*size = s;
	return 16 + 4 * (k - 8) + (unsigned)(s / step - 5);
}

/* Bytes of the block (header included) that a request of n bytes gets. */
static size_t block_bytes(size_t n)
{
	size_t total = n + HEADER, size;
	if (total > MAX_CLASS_BYTES)
		return (total + 15) & ~(size_t)15;
	size_class(total, &size);
	return size;
}

static void *gm_malloc(int n)
{
	if (n < 0)
		return NULL;
	size_t total = (size_t)n + HEADER, size;
	struct block *b = NULL;
	if (total <= MAX_CLASS_BYTES) {
		unsigned c = size_class(total, &size);
		pthread_mutex_lock(&lock);
		struct free_block *f = lists[c];
		if (f) {
			lists[c] = f->next;
			cached_bytes -= size;
		}
		pthread_mutex_unlock(&lock);
		b = (struct block *)f;
	} else {
		size = (total + 15) & ~(size_t)15;
	}
	if (!b) {
		b = malloc(size);
		if (!b)
			return NULL;
	}
	b->size = size;
	return (char *)b + HEADER;
}

static void gm_free(void *p)
{
	if (!p)
		return;
	struct block *b = (struct block *)((char *)p - HEADER);
	size_t size = b->size;
	if (size <= MAX_CLASS_BYTES) {
		unsigned c = size_class(size, &size);
		pthread_mutex_lock(&lock);
		if (cached_bytes + size <= CACHE_BYTES) {
			struct free_block *f = (struct free_block *)b;
			f->next = lists[c];
			lists[c] = f;
			cached_bytes += size;
			b = NULL;
		}
		pthread_mutex_unlock(&lock);
	}
	free(b);
}

static int gm_size(void *p)
{
	if (!p)
		return 0;
	return (int)(((struct block *)((char *)p - HEADER))->size - HEADER);
}

static void *gm_realloc(void *p, int n)
{
	if (n < 0)
		return NULL;
	if (!p)
		return gm_malloc(n);
	struct block *b = (struct block *)((char *)p - HEADER);
	size_t want = block_bytes((size_t)n);
	if (want == b->size)
		return p;
	if (want > MAX_CLASS_BYTES && b->size > MAX_CLASS_BYTES) {
		/* Both unclassed: musl may grow or shrink the block in place. */
		struct block *nb = realloc(b, want);
		if (!nb)
			return NULL;
		nb->size = want;
		return (char *)nb + HEADER;
	}
	void *q = gm_malloc(n);
	if (!q)
		return NULL;
	size_t keep = b->size - HEADER;
	memcpy(q, p, keep < (size_t)n ? keep : (size_t)n);
	gm_free(p);
	return q;
}

static int gm_roundup(int n)
{
	if (n < 0 || (size_t)n > (size_t)0x7fff0000)
		return n;
	return (int)(block_bytes((size_t)n) - HEADER);
}

static int gm_init(void *unused)
{
	(void)unused;
	return GM_SQLITE_OK;
}

static void gm_shutdown(void *unused)
{
	(void)unused;
}

static const gm_sqlite3_mem_methods methods = {
	gm_malloc, gm_free, gm_realloc, gm_size, gm_roundup, gm_init, gm_shutdown, NULL,
};

/* Runs before main, so before anything can initialise SQLite (sqlite3_config must come first). */
__attribute__((constructor)) static void gm_sqlite_mem_install(void)
{
	sqlite3_config(GM_SQLITE_CONFIG_MALLOC, &methods);
}
