/*
 * SQLite's page cache for the static musl build of gm: SQLite's own default page cache, behind a
 * thin wrapper that skips a truncation that has nothing to drop. Installed with
 * sqlite3_config(SQLITE_CONFIG_PCACHE2) before main runs.
 *
 * Why: when a B-tree insert splits pages, SQLite's balance_nonroot() sorts the new pages by page
 * number, swapping two pages' numbers through a temporary one: the number of the "pending byte"
 * page (2^30 / page size + 1, page 262,145 with 4 KiB pages), which no database below 1 GiB
 * reaches. The default cache (pcache1) remembers the largest page number it has seen, and every
 * commit asks it to drop the pages past the end of the database. With the remembered largest at
 * 262,145, "past the end" looks like a quarter of a million pages, so pcache1 walks its whole hash
 * table, every cached page of the connection, at the first commit after each split. gm's writer
 * inserts random keys (UUID4 ids, node keys) into five indexes per join, so most batches split a
 * page: that walk was 5.4% of the db-writer thread's time during joins (perf, BENCHMARKS.md "issue
 * 19, eighth part"), the thread every write waits for.
 *
 * What: the wrapper keeps its own largest page number per cache, raised by every fetch and every
 * change of a page's number except a change to the pending-byte page, and while a page sits at that
 * number it passes every truncation through. A truncation to a limit above that largest number
 * has no page to drop, and is skipped; any other goes to pcache1 as before. Everything else is
 * pcache1's, unchanged: the wrapper holds no pages and allocates only its small per-cache record.
 * A cache belongs to one connection, which gm uses from one thread at a time, so the record needs
 * no lock.
 *
 * Only the static x86_64 musl build links this file (build.rs), like sqlite_mem.c; the glibc build
 * keeps SQLite's cache as it is. scripts/test-musl.sh checks the wrapper against a recording
 * stand-in for pcache1 (tests/musl/check_sqlite_pcache.c), and scripts/test-static.sh (run by CI)
 * runs the integration tests against the static binary, so all of their SQLite work goes through
 * it.
 */

#include <stdlib.h>

/* From sqlite3.h; the layout of sqlite3_pcache_methods2 is fixed (iVersion 1 since SQLite 3.7.10). */
typedef struct gm_sqlite3_pcache gm_sqlite3_pcache;
typedef struct {
	void *pBuf;
	void *pExtra;
} gm_sqlite3_pcache_page;
typedef struct {
	int iVersion;
	void *pArg;
	int (*xInit)(void *);
	void (*xShutdown)(void *);
	gm_sqlite3_pcache *(*xCreate)(int szPage, int szExtra, int bPurgeable);
	void (*xCachesize)(gm_sqlite3_pcache *, int nCachesize);
	int (*xPagecount)(gm_sqlite3_pcache *);
	gm_sqlite3_pcache_page *(*xFetch)(gm_sqlite3_pcache *, unsigned key, int createFlag);
	void (*xUnpin)(gm_sqlite3_pcache *, gm_sqlite3_pcache_page *, int discard);
	void (*xRekey)(gm_sqlite3_pcache *, gm_sqlite3_pcache_page *, unsigned oldKey, unsigned newKey);
	void (*xTruncate)(gm_sqlite3_pcache *, unsigned iLimit);
	void (*xDestroy)(gm_sqlite3_pcache *);
	void (*xShrink)(gm_sqlite3_pcache *);
} gm_sqlite3_pcache_methods2;
#define GM_SQLITE_CONFIG_PCACHE2 18
#define GM_SQLITE_CONFIG_GETPCACHE2 19
#define GM_SQLITE_OK 0
/* SQLite's PENDING_BYTE: the page holding it is never used for data. */
#define GM_PENDING_BYTE 0x40000000u
int sqlite3_config(int, ...);

/* pcache1, as SQLite would have used it. */
static gm_sqlite3_pcache_methods2 inner;

struct gm_cache {
	gm_sqlite3_pcache *inner;
	/* The pending-byte page's number for this page size. */
	unsigned pending;
	/* No page of the cache has a number above this, except one at `pending` while `at_pending`. */
	unsigned largest;
	int at_pending;
};

static int gm_pc_init(void *arg)
{
	return inner.xInit ? inner.xInit(arg) : GM_SQLITE_OK;
}

static void gm_pc_shutdown(void *arg)
{
	if (inner.xShutdown)
		inner.xShutdown(arg);
}

static gm_sqlite3_pcache *gm_pc_create(int sz_page, int sz_extra, int purgeable)
{
	struct gm_cache *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->inner = inner.xCreate(sz_page, sz_extra, purgeable);
	if (!c->inner) {
		free(c);
		return NULL;
	}
	c->pending = sz_page > 0 ? GM_PENDING_BYTE / (unsigned)sz_page + 1 : 0;
	c->largest = 0;
	c->at_pending = 0;
	return (gm_sqlite3_pcache *)c;
}

static struct gm_cache *cache(gm_sqlite3_pcache *p)
{
	return (struct gm_cache *)p;
}

static void gm_pc_cachesize(gm_sqlite3_pcache *p, int n)
{
	inner.xCachesize(cache(p)->inner, n);
}

static int gm_pc_pagecount(gm_sqlite3_pcache *p)
{
	return inner.xPagecount(cache(p)->inner);
}

static gm_sqlite3_pcache_page *gm_pc_fetch(gm_sqlite3_pcache *p, unsigned key, int create)
{
	struct gm_cache *c = cache(p);
	gm_sqlite3_pcache_page *page = inner.xFetch(c->inner, key, create);
	if (page && key > c->largest)
		c->largest = key;
	return page;
}

static void gm_pc_unpin(gm_sqlite3_pcache *p, gm_sqlite3_pcache_page *page, int discard)
{
	inner.xUnpin(cache(p)->inner, page, discard);
}

static void gm_pc_rekey(gm_sqlite3_pcache *p, gm_sqlite3_pcache_page *page, unsigned old_key, unsigned new_key)
{
	struct gm_cache *c = cache(p);
	inner.xRekey(c->inner, page, old_key, new_key);
	if (old_key == c->pending)
		c->at_pending = 0;
	if (new_key == c->pending)
		c->at_pending = 1;
	else if (new_key > c->largest)
		c->largest = new_key;
}

static void gm_pc_truncate(gm_sqlite3_pcache *p, unsigned limit)
{
	struct gm_cache *c = cache(p);
	if (limit > c->largest && !c->at_pending)
		return; /* no page has a number >= limit */
	inner.xTruncate(c->inner, limit);
	if (limit == 0) {
		c->largest = 0;
		c->at_pending = 0;
	} else if (limit - 1 < c->largest) {
		c->largest = limit - 1;
	}
	if (limit <= c->pending)
		c->at_pending = 0;
}

static void gm_pc_destroy(gm_sqlite3_pcache *p)
{
	struct gm_cache *c = cache(p);
	inner.xDestroy(c->inner);
	free(c);
}

static void gm_pc_shrink(gm_sqlite3_pcache *p)
{
	inner.xShrink(cache(p)->inner);
}

/* Runs before main, so before anything can initialise SQLite (sqlite3_config must come first).
 * If SQLite refuses either call, it keeps its own cache unwrapped. */
__attribute__((constructor)) static void gm_sqlite_pcache_install(void)
{
	if (sqlite3_config(GM_SQLITE_CONFIG_GETPCACHE2, &inner) != GM_SQLITE_OK || !inner.xCreate || !inner.xFetch ||
	    !inner.xTruncate || !inner.xRekey || !inner.xUnpin || !inner.xDestroy || !inner.xCachesize ||
	    !inner.xPagecount || !inner.xShrink || inner.iVersion < 1)
		return;
	gm_sqlite3_pcache_methods2 wrapped = {
		1,
		inner.pArg,
		gm_pc_init,
		gm_pc_shutdown,
		gm_pc_create,
		gm_pc_cachesize,
		gm_pc_pagecount,
		gm_pc_fetch,
		gm_pc_unpin,
		gm_pc_rekey,
		gm_pc_truncate,
		gm_pc_destroy,
		gm_pc_shrink,
	};
	sqlite3_config(GM_SQLITE_CONFIG_PCACHE2, &wrapped);
}
