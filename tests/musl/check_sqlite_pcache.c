/*
 * Checks src/musl/sqlite_pcache.c (the wrapper around SQLite's page cache in the static musl build)
 * through the methods it hands to sqlite3_config. A stand-in sqlite3_config below gives it, as
 * "SQLite's default cache", a model that keeps a flag per page number and counts the truncations
 * that reach it:
 *   - the constructor installs the wrapper, and init, create, cachesize, pagecount, unpin, shrink and
 *     destroy reach the model;
 *   - the pending-byte page number is 2^30 / page size + 1 for every page size SQLite allows;
 *   - balance_nonroot()'s swap of two pages through the pending-byte page leaves a commit's
 *     truncation to the end of the database skipped (the walk this file exists to avoid), while a
 *     truncation that drops pages (a rollback, a page moved to a higher number), or one while a page
 *     sits at the pending number, reaches the model;
 *   - 200,000 random fetches, swaps and truncations on several page sizes: after every truncation
 *     the model holds no page at or above the limit, skipped or not (what SQLite relies on).
 * Built and run by scripts/test-musl.sh with the system cc or musl-gcc. Exit 0 and "ok: N checks",
 * or 1 naming the first failure.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/musl/sqlite_pcache.c"

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

/* The model of SQLite's default cache: a flag per page number up to MAX_KEY, and the numbers
 * present as a list (so a truncation or a check walks the cached pages, not every number). */
#define MAX_KEY (GM_PENDING_BYTE / 512 + 1000)
#define MAX_PAGES 4096
struct model {
	unsigned char *present;
	unsigned keys[MAX_PAGES];
	int n;
	gm_sqlite3_pcache_page page;
	int size_limit;
	long truncations;
};
static void add_key(struct model *m, unsigned k)
{
	if (m->present[k])
		return;
	if (m->n == MAX_PAGES)
		FAIL("the model holds at most %d pages", MAX_PAGES);
	m->present[k] = 1;
	m->keys[m->n++] = k;
}
static void drop_key(struct model *m, unsigned k)
{
	for (int i = 0; i < m->n; i++)
		if (m->keys[i] == k) {
			m->keys[i] = m->keys[--m->n];
			m->present[k] = 0;
			return;
		}
}
static long checks;
static int inits, shutdowns, shrinks, unpins, destroys;
static gm_sqlite3_pcache_methods2 installed;
static int installed_once;

static int m_init(void *arg)
{
	if (arg != (void *)&inits)
		FAIL("xInit got another pArg than the default cache's");
	inits++;
	return GM_SQLITE_OK;
}
static void m_shutdown(void *arg)
{
	(void)arg;
	shutdowns++;
}
static gm_sqlite3_pcache *m_create(int sz_page, int sz_extra, int purgeable)
{
	(void)sz_page, (void)sz_extra, (void)purgeable;
	struct model *m = calloc(1, sizeof *m);
	if (!m || !(m->present = calloc(MAX_KEY + 1, 1)))
		FAIL("out of memory");
	return (gm_sqlite3_pcache *)m;
}
static struct model *model(gm_sqlite3_pcache *p)
{
	return (struct model *)p;
}
static void m_cachesize(gm_sqlite3_pcache *p, int n)
{
	model(p)->size_limit = n;
}
static int m_pagecount(gm_sqlite3_pcache *p)
{
	return model(p)->n;
}
static gm_sqlite3_pcache_page *m_fetch(gm_sqlite3_pcache *p, unsigned key, int create)
{
	struct model *m = model(p);
	if (key > MAX_KEY)
		FAIL("fetch of page %u beyond the model", key);
	if (!m->present[key] && !create)
		return NULL;
	add_key(m, key);
	return &m->page;
}
static void m_unpin(gm_sqlite3_pcache *p, gm_sqlite3_pcache_page *page, int discard)
{
	(void)p, (void)page, (void)discard;
	unpins++;
}
static void m_rekey(gm_sqlite3_pcache *p, gm_sqlite3_pcache_page *page, unsigned old_key, unsigned new_key)
{
	struct model *m = model(p);
	(void)page;
	if (!m->present[old_key] || m->present[new_key])
		FAIL("rekey %u -> %u: SQLite only moves a cached page to a free number", old_key, new_key);
	drop_key(m, old_key);
	add_key(m, new_key);
}
static void m_truncate(gm_sqlite3_pcache *p, unsigned limit)
{
	struct model *m = model(p);
	m->truncations++;
	for (int i = m->n - 1; i >= 0; i--)
		if (m->keys[i] >= limit)
			drop_key(m, m->keys[i]);
}
static void m_destroy(gm_sqlite3_pcache *p)
{
	free(model(p)->present);
	free(p);
	destroys++;
}
static void m_shrink(gm_sqlite3_pcache *p)
{
	(void)p;
	shrinks++;
}

int sqlite3_config(int op, ...)
{
	va_list ap;
	va_start(ap, op);
	if (op == GM_SQLITE_CONFIG_GETPCACHE2) {
		gm_sqlite3_pcache_methods2 *out = va_arg(ap, gm_sqlite3_pcache_methods2 *);
		gm_sqlite3_pcache_methods2 def = {
			1, &inits, m_init, m_shutdown, m_create, m_cachesize, m_pagecount, m_fetch,
			m_unpin, m_rekey, m_truncate, m_destroy, m_shrink,
		};
		*out = def;
	} else if (op == GM_SQLITE_CONFIG_PCACHE2) {
		installed = *va_arg(ap, gm_sqlite3_pcache_methods2 *);
		installed_once++;
	}
	va_end(ap);
	return GM_SQLITE_OK;
}

static struct model *inner_of(gm_sqlite3_pcache *c)
{
	return model(((struct gm_cache *)c)->inner);
}

/* No page at or above `limit` is left in the model: what a truncation promises SQLite. */
static void check_truncated(gm_sqlite3_pcache *c, unsigned limit, const char *what)
{
	struct model *m = inner_of(c);
	for (int i = 0; i < m->n; i++)
		if (m->keys[i] >= limit)
			FAIL("%s: page %u survived a truncation to %u", what, m->keys[i], limit);
	checks++;
}

static void check_plumbing(void)
{
	if (installed_once != 1 || installed.xTruncate != gm_pc_truncate || installed.iVersion != 1)
		FAIL("the constructor did not install the wrapper with sqlite3_config");
	if (installed.xInit(installed.pArg) != GM_SQLITE_OK || inits != 1)
		FAIL("xInit must reach the default cache with its pArg");
	gm_sqlite3_pcache *c = installed.xCreate(4096, 64, 1);
	if (!c)
		FAIL("xCreate");
	installed.xCachesize(c, 2000);
	if (inner_of(c)->size_limit != 2000)
		FAIL("xCachesize must reach the default cache");
	for (unsigned k = 1; k <= 10; k++)
		if (installed.xFetch(c, k, 1) != &inner_of(c)->page)
			FAIL("xFetch must hand back the default cache's page");
	if (installed.xFetch(c, 11, 0) != NULL)
		FAIL("xFetch without create of a page not cached is NULL");
	if (installed.xPagecount(c) != 10)
		FAIL("xPagecount");
	installed.xUnpin(c, &inner_of(c)->page, 0);
	installed.xShrink(c);
	if (unpins != 1 || shrinks != 1)
		FAIL("xUnpin and xShrink must reach the default cache");
	installed.xDestroy(c);
	installed.xShutdown(installed.pArg);
	if (destroys != 1 || shutdowns != 1)
		FAIL("xDestroy and xShutdown must reach the default cache");
	checks += 8;
}

static void check_pending_numbers(void)
{
	for (int size = 512; size <= 65536; size *= 2) {
		gm_sqlite3_pcache *c = installed.xCreate(size, 0, 1);
		unsigned want = 0x40000000u / (unsigned)size + 1;
		if (((struct gm_cache *)c)->pending != want)
			FAIL("page size %d: pending-byte page %u, want %u", size, ((struct gm_cache *)c)->pending, want);
		installed.xDestroy(c);
		checks++;
	}
}

/* The sequence of a commit after a split: pages 1..N cached, two swapped through the pending-byte
 * page, then the commit truncates to the end of the database. */
static void check_split_then_commit(void)
{
	gm_sqlite3_pcache *c = installed.xCreate(4096, 0, 1);
	unsigned pending = 0x40000000u / 4096 + 1;
	struct model *m = inner_of(c);
	for (unsigned k = 1; k <= 500; k++)
		installed.xFetch(c, k, 1);
	installed.xRekey(c, &m->page, 300, pending);
	installed.xRekey(c, &m->page, 200, 300);
	installed.xRekey(c, &m->page, pending, 200);
	long before = m->truncations;
	installed.xTruncate(c, 501);
	if (m->truncations != before)
		FAIL("a commit's truncation after a split must be skipped (nothing at or above 501)");
	check_truncated(c, 501, "split then commit");
	/* A page left at the pending number: the truncation reaches the model and drops it. */
	installed.xRekey(c, &m->page, 400, pending);
	installed.xTruncate(c, 501);
	if (m->truncations != before + 1)
		FAIL("a truncation while a page sits at the pending number must reach the default cache");
	check_truncated(c, 501, "page at the pending number");
	/* A rollback that shrinks the database drops pages: it reaches the model. */
	installed.xTruncate(c, 251);
	if (m->truncations != before + 2)
		FAIL("a truncation below the largest page must reach the default cache");
	check_truncated(c, 251, "rollback");
	installed.xFetch(c, 260, 1);
	installed.xTruncate(c, 261);
	if (m->truncations != before + 2)
		FAIL("after the rollback, a truncation above the largest page is skipped");
	installed.xTruncate(c, 260);
	if (m->truncations != before + 3)
		FAIL("a new page at 260 makes a truncation to 260 reach the default cache");
	check_truncated(c, 260, "page fetched after the rollback");
	/* A page moved to a higher free number (as auto-vacuum's sqlite3PagerMovepage does). */
	installed.xRekey(c, &m->page, 100, 900);
	installed.xTruncate(c, 800);
	if (m->truncations != before + 4)
		FAIL("a page moved to 900 makes a truncation to 800 reach the default cache");
	check_truncated(c, 800, "page moved up");
	installed.xTruncate(c, 1);
	check_truncated(c, 1, "clear");
	installed.xDestroy(c);
	checks += 6;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned next(unsigned n)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* A page number of the random test: up to 600, and for 512-byte pages also within 300 of the
 * pending-byte page (a database past 1 GiB), never the pending-byte page itself. */
static unsigned random_key(unsigned pending, int size)
{
	unsigned k = size == 512 && next(2) ? pending - 300 + next(600) : 1 + next(600);
	return k == pending ? k + 1 : k;
}

static void check_random(int size)
{
	gm_sqlite3_pcache *c = installed.xCreate(size, 0, 1);
	unsigned pending = 0x40000000u / (unsigned)size + 1;
	unsigned top = size == 512 ? pending + 301 : 601;
	struct model *m = inner_of(c);
	long skipped = 0, reached = 0;
	for (int op = 0; op < 50000; op++) {
		unsigned r = next(100);
		if (r < 55) {
			installed.xFetch(c, random_key(pending, size), 1);
		} else if (r < 85) {
			/* balance_nonroot's swap of two cached pages a and b through the pending number. */
			unsigned a = random_key(pending, size), b = random_key(pending, size);
			if (a == b || !m->present[a] || !m->present[b] || m->present[pending])
				continue;
			installed.xRekey(c, &m->page, a, pending);
			installed.xRekey(c, &m->page, b, a);
			installed.xRekey(c, &m->page, pending, b);
		} else if (r < 88) {
			/* A page moved to the pending number and not yet moved away (any truncation now). */
			unsigned a = random_key(pending, size);
			if (m->present[a] && !m->present[pending]) {
				installed.xRekey(c, &m->page, a, pending);
				unsigned limit = 1 + next(top + 60);
				installed.xTruncate(c, limit);
				check_truncated(c, limit, "random, page at the pending number");
				if (m->present[pending])
					installed.xRekey(c, &m->page, pending, a);
			}
		} else {
			/* Mostly a commit's truncation past the end, sometimes a rollback's anywhere. */
			unsigned limit = r < 97 ? top + next(60) : 1 + random_key(pending, size);
			long before = m->truncations;
			installed.xTruncate(c, limit);
			check_truncated(c, limit, "random");
			if (m->truncations == before)
				skipped++;
			else
				reached++;
		}
	}
	if (!skipped || !reached)
		FAIL("page size %d: the random test never %s a truncation", size, skipped ? "passed on" : "skipped");
	installed.xDestroy(c);
}

int main(void)
{
	check_plumbing();
	check_pending_numbers();
	check_split_then_commit();
	check_random(4096);
	check_random(1024);
	check_random(512);
	check_random(65536);
	printf("ok: %ld checks\n", checks);
	return 0;
}
