/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of include/ibvhost/fdb.h: learning, lookup, moves, static
 * entries, deletion, aging, eviction when full, iteration, counters, and
 * a randomized comparison against a trivial reference table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ibvhost/fdb.h"

static const uint8_t MAC_A[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t MAC_B[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x0b };
static const uint8_t MAC_C[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x0c };

static struct fdb_addr addr(uint16_t lid, uint32_t qpn)
{
	struct fdb_addr a;

	memset(&a, 0, sizeof(a));
	a.lid = lid;
	a.qpn = qpn;
	a.gid[0] = 0xfe;
	a.gid[1] = 0x80;
	a.gid[15] = (uint8_t)lid;
	return a;
}

static void mac_n(uint8_t mac[6], uint32_t n)
{
	mac[0] = 0x02; /* locally administered unicast */
	mac[1] = 0;
	mac[2] = (uint8_t)(n >> 24);
	mac[3] = (uint8_t)(n >> 16);
	mac[4] = (uint8_t)(n >> 8);
	mac[5] = (uint8_t)n;
}

/* Released address handles, recorded by the callbacks. */
static void *released[64];
static unsigned nreleased;

static void record_release(const struct fdb_entry *e, void *arg)
{
	(void)arg;
	if (nreleased < 64)
		released[nreleased] = e->ah;
	nreleased++;
}

static int reset_released(void **state)
{
	(void)state;
	nreleased = 0;
	memset(released, 0, sizeof(released));
	return 0;
}

static void test_create_limits(void **state)
{
	(void)state;
	errno = 0;
	assert_null(fdb_create(0));
	assert_int_equal(errno, EINVAL);
	assert_null(fdb_create(FDB_CAPACITY_MAX + 1));
	fdb_destroy(fdb_create(1), NULL, NULL);
	fdb_destroy(NULL, NULL, NULL);
}

static void test_learn_lookup_refresh_move(void **state)
{
	struct fdb *f = fdb_create(16);
	struct fdb_addr a1 = addr(1, 0x100), a2 = addr(2, 0x200);
	struct fdb_entry *e, *e2;
	void *stale = (void *)1;
	struct fdb_stats st;
	int ah1, ah2;
	(void)state;

	assert_null(fdb_lookup(f, MAC_A));
	assert_int_equal(fdb_learn(f, MAC_A, &a1, 10, &e, &stale), FDB_LEARN_NEW);
	assert_null(stale);
	assert_non_null(e);
	assert_memory_equal(e->mac, MAC_A, 6);
	assert_int_equal(e->addr.qpn, 0x100);
	assert_int_equal(e->last_seen, 10);
	assert_false(e->is_static);
	assert_null(e->ah);
	e->ah = &ah1; /* the caller creates the AH */

	assert_ptr_equal(fdb_lookup(f, MAC_A), e);
	assert_null(fdb_lookup(f, MAC_B));

	assert_int_equal(fdb_learn(f, MAC_A, &a1, 20, &e2, &stale),
			 FDB_LEARN_REFRESHED);
	assert_ptr_equal(e2, e);
	assert_null(stale);
	assert_int_equal(e->last_seen, 20);
	assert_ptr_equal(e->ah, &ah1);

	assert_int_equal(fdb_learn(f, MAC_A, &a2, 30, &e2, &stale),
			 FDB_LEARN_MOVED);
	assert_ptr_equal(stale, &ah1); /* old AH handed back */
	assert_null(e->ah);
	assert_int_equal(e->addr.lid, 2);
	assert_int_equal(e->addr.gid[15], 2);
	e->ah = &ah2;

	/* A GID change alone is a move too. */
	a2.gid[3] = 9;
	assert_int_equal(fdb_learn(f, MAC_A, &a2, 31, NULL, &stale),
			 FDB_LEARN_MOVED);
	assert_ptr_equal(stale, &ah2);

	fdb_get_stats(f, &st);
	assert_int_equal(st.learned, 1);
	assert_int_equal(st.refreshed, 1);
	assert_int_equal(st.moved, 2);
	assert_int_equal(st.lookups, 3);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.capacity, 16);
	fdb_destroy(f, NULL, NULL);
}

static void test_learn_rejects(void **state)
{
	struct fdb *f = fdb_create(4);
	struct fdb_addr a = addr(1, 1);
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	const uint8_t zero[6] = { 0 };
	struct fdb_entry *e = (void *)1;
	struct fdb_stats st;
	(void)state;

	assert_int_equal(fdb_learn(f, bcast, &a, 1, &e, NULL), FDB_LEARN_BAD_MAC);
	assert_null(e);
	assert_int_equal(fdb_learn(f, mcast, &a, 1, NULL, NULL), FDB_LEARN_BAD_MAC);
	assert_int_equal(fdb_learn(f, zero, &a, 1, NULL, NULL), FDB_LEARN_BAD_MAC);
	a.qpn = 0x1000000;
	assert_int_equal(fdb_learn(f, MAC_A, &a, 1, NULL, NULL), FDB_LEARN_BAD_ADDR);
	assert_int_equal(fdb_add_static(f, MAC_A, &a, 1, NULL, NULL), -EINVAL);
	a.qpn = 1;
	assert_int_equal(fdb_add_static(f, mcast, &a, 1, NULL, NULL), -EINVAL);
	assert_null(fdb_lookup(f, zero));
	assert_int_equal(fdb_del(f, zero, NULL), -ENOENT);
	fdb_get_stats(f, &st);
	assert_int_equal(st.rejected, 4);
	assert_int_equal(st.entries, 0);
	fdb_destroy(f, NULL, NULL);
}

static void test_static_entries(void **state)
{
	struct fdb *f = fdb_create(4);
	struct fdb_addr a1 = addr(1, 1), a2 = addr(2, 2);
	struct fdb_entry *e;
	void *stale;
	int ah;
	struct fdb_stats st;
	(void)state;

	/* A dynamic entry becomes static; its address changes. */
	assert_int_equal(fdb_learn(f, MAC_A, &a1, 1, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah;
	assert_int_equal(fdb_add_static(f, MAC_A, &a2, 2, &e, &stale), 0);
	assert_ptr_equal(stale, &ah);
	assert_true(e->is_static);
	assert_int_equal(e->addr.lid, 2);

	/* Learning never overrides a static entry. */
	assert_int_equal(fdb_learn(f, MAC_A, &a1, 3, NULL, &stale),
			 FDB_LEARN_STATIC);
	assert_null(stale);
	assert_int_equal(fdb_lookup(f, MAC_A)->addr.lid, 2);

	/* Static entries never age. */
	assert_int_equal(fdb_age(f, 1000000, 300, record_release, NULL), 0);
	assert_non_null(fdb_lookup(f, MAC_A));

	/* Same address again keeps the AH. */
	e->ah = &ah;
	assert_int_equal(fdb_add_static(f, MAC_A, &a2, 4, &e, &stale), 0);
	assert_null(stale);
	assert_ptr_equal(e->ah, &ah);

	fdb_get_stats(f, &st);
	assert_int_equal(st.static_entries, 1);
	assert_int_equal(fdb_del(f, MAC_A, &stale), 0);
	assert_ptr_equal(stale, &ah);
	assert_null(fdb_lookup(f, MAC_A));
	assert_int_equal(fdb_del(f, MAC_A, &stale), -ENOENT);
	assert_null(stale);
	fdb_get_stats(f, &st);
	assert_int_equal(st.static_entries, 0);
	assert_int_equal(st.entries, 0);
	fdb_destroy(f, NULL, NULL);
}

static void test_age(void **state)
{
	struct fdb *f = fdb_create(8);
	struct fdb_addr a = addr(1, 1);
	struct fdb_entry *e;
	int ah[3];
	struct fdb_stats st;
	(void)state;

	assert_int_equal(fdb_learn(f, MAC_A, &a, 100, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah[0];
	assert_int_equal(fdb_learn(f, MAC_B, &a, 200, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah[1];
	assert_int_equal(fdb_learn(f, MAC_C, &a, 300, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah[2];
	/* A refresh moves A to the young end. */
	assert_int_equal(fdb_learn(f, MAC_A, &a, 350, NULL, NULL),
			 FDB_LEARN_REFRESHED);

	assert_int_equal(fdb_age(f, 400, 300, record_release, NULL), 0);
	assert_int_equal(fdb_age(f, 500, 300, record_release, NULL), 1);
	assert_int_equal(nreleased, 1);
	assert_ptr_equal(released[0], &ah[1]); /* B: age exactly max_age */
	assert_null(fdb_lookup(f, MAC_B));
	assert_int_equal(fdb_age(f, 649, 300, record_release, NULL), 1);
	assert_ptr_equal(released[1], &ah[2]);
	assert_non_null(fdb_lookup(f, MAC_A));
	/* A clock behind last_seen expires nothing. */
	assert_int_equal(fdb_age(f, 10, 0, record_release, NULL), 0);
	assert_int_equal(fdb_age(f, 650, 300, NULL, NULL), 1);
	fdb_get_stats(f, &st);
	assert_int_equal(st.aged, 3);
	assert_int_equal(st.entries, 0);
	fdb_destroy(f, NULL, NULL);
}

static void test_full_evicts_oldest_dynamic(void **state)
{
	struct fdb *f = fdb_create(3);
	struct fdb_addr a = addr(1, 1);
	struct fdb_entry *e;
	void *stale;
	int ah[3];
	uint8_t mac[6];
	struct fdb_stats st;
	(void)state;

	assert_int_equal(fdb_add_static(f, MAC_A, &a, 1, &e, NULL), 0);
	e->ah = &ah[0];
	assert_int_equal(fdb_learn(f, MAC_B, &a, 2, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah[1];
	assert_int_equal(fdb_learn(f, MAC_C, &a, 3, &e, NULL), FDB_LEARN_NEW);
	e->ah = &ah[2];
	assert_int_equal(fdb_learn(f, MAC_B, &a, 4, NULL, NULL),
			 FDB_LEARN_REFRESHED); /* C is now the oldest */

	mac_n(mac, 1);
	assert_int_equal(fdb_learn(f, mac, &a, 5, &e, &stale), FDB_LEARN_NEW);
	assert_ptr_equal(stale, &ah[2]);
	assert_null(fdb_lookup(f, MAC_C));
	assert_non_null(fdb_lookup(f, MAC_A)); /* static survives */
	assert_non_null(fdb_lookup(f, MAC_B));

	/* A static add evicts a dynamic entry too. */
	mac_n(mac, 2);
	assert_int_equal(fdb_add_static(f, mac, &a, 6, NULL, &stale), 0);
	assert_ptr_equal(stale, &ah[1]);
	mac_n(mac, 3); /* evicts the last dynamic entry, mac 1 (no AH) */
	assert_int_equal(fdb_add_static(f, mac, &a, 7, NULL, &stale), 0);
	assert_null(stale);
	mac_n(mac, 1);
	assert_null(fdb_lookup(f, mac));

	/* Full of static entries: nothing learned, nothing evicted. */
	mac_n(mac, 4);
	assert_int_equal(fdb_learn(f, mac, &a, 8, &e, &stale), FDB_LEARN_FULL);
	assert_null(e);
	assert_int_equal(fdb_add_static(f, mac, &a, 8, NULL, NULL), -ENOSPC);
	fdb_get_stats(f, &st);
	assert_int_equal(st.evicted, 3);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.static_entries, 3);
	fdb_destroy(f, NULL, NULL);
}

static int count_visit(const struct fdb_entry *e, void *arg)
{
	unsigned *n = arg;

	assert_true(fdb_mac_is_learnable(e->mac));
	(*n)++;
	return 0;
}

static int stop_visit(const struct fdb_entry *e, void *arg)
{
	unsigned *n = arg;

	(void)e;
	return ++(*n) == 2;
}

static void test_foreach_and_destroy(void **state)
{
	struct fdb *f = fdb_create(32);
	struct fdb_addr a = addr(1, 1);
	struct fdb_entry *e;
	uint8_t mac[6];
	unsigned n = 0, i;
	static int ahs[10];
	(void)state;

	for (i = 0; i < 10; i++) {
		mac_n(mac, i + 1);
		assert_int_equal(fdb_learn(f, mac, &a, i, &e, NULL), FDB_LEARN_NEW);
		e->ah = &ahs[i];
	}
	mac_n(mac, 5);
	assert_int_equal(fdb_del(f, mac, NULL), 0);
	fdb_foreach(f, count_visit, &n);
	assert_int_equal(n, 9);
	n = 0;
	fdb_foreach(f, stop_visit, &n);
	assert_int_equal(n, 2);
	fdb_destroy(f, record_release, NULL);
	assert_int_equal(nreleased, 9);
}

/* Random learn/delete/age against a flat reference, with a table small
 * enough to force long probe runs and wrap-around in the index. */
#define REF_MACS 200u
static void test_randomized_against_reference(void **state)
{
	struct fdb *f = fdb_create(64);
	bool present[REF_MACS];
	uint64_t seen[REF_MACS];
	uint32_t count = 0, i, step;
	uint64_t now = 1;
	uint8_t mac[6];
	struct fdb_addr a = addr(7, 7);
	unsigned seed = 12345;
	(void)state;

	memset(present, 0, sizeof(present));
	for (step = 0; step < 200000; step++) {
		uint32_t m, op;

		seed = seed * 1103515245u + 12345u;
		m = (seed >> 8) % REF_MACS;
		op = (seed >> 20) % 8;
		mac_n(mac, m + 1);
		now++;
		if (op < 5) {
			enum fdb_learn_result r = fdb_learn(f, mac, &a, now, NULL, NULL);

			if (present[m]) {
				assert_int_equal(r, FDB_LEARN_REFRESHED);
			} else {
				assert_int_equal(r, FDB_LEARN_NEW);
				if (count == 64) {
					/* The oldest one went. */
					uint32_t old = REF_MACS, k;

					for (k = 0; k < REF_MACS; k++)
						if (present[k] &&
						    (old == REF_MACS || seen[k] < seen[old]))
							old = k;
					present[old] = false;
					count--;
				}
				present[m] = true;
				count++;
			}
			seen[m] = now;
		} else if (op < 7) {
			int rc = fdb_del(f, mac, NULL);

			assert_int_equal(rc, present[m] ? 0 : -ENOENT);
			if (present[m])
				count--;
			present[m] = false;
		} else if (step % 64 == 0) {
			uint32_t removed = fdb_age(f, now, 500, NULL, NULL), k, exp = 0;

			for (k = 0; k < REF_MACS; k++)
				if (present[k] && now - seen[k] >= 500) {
					present[k] = false;
					exp++;
				}
			assert_int_equal(removed, exp);
			count -= exp;
		}
		if (step % 1024 == 0) {
			for (i = 0; i < REF_MACS; i++) {
				mac_n(mac, i + 1);
				assert_int_equal(fdb_lookup(f, mac) != NULL, present[i]);
			}
		}
	}
	fdb_destroy(f, NULL, NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset_released, NULL)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_limits),
		T(test_learn_lookup_refresh_move),
		T(test_learn_rejects),
		T(test_static_entries),
		T(test_age),
		T(test_full_evicts_oldest_dynamic),
		T(test_foreach_and_destroy),
		T(test_randomized_against_reference),
	};

	return cmocka_run_group_tests_name("fdb", tests, NULL, NULL);
}
