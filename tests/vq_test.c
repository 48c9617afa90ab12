/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of include/ibvhost/vq.h: memory table, split-ring walk, used ring,
 * notifications. Rings live in malloc'd "guest memory" made of two
 * regions that are adjacent in guest-physical space but not in host
 * space, each surrounded by canary bytes that must survive every test. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ibvhost/vq.h"

#define GUARD_LEN   64u
#define CANARY      0xa5u
#define REG_SIZE    0x4000u
#define REG0_GPA    0x10000u
#define REG1_GPA    (REG0_GPA + REG_SIZE) /* adjacent in GPA space */
#define REG0_LKEY   0x100u
#define REG1_LKEY   0x200u
#define RING_SIZE   16u

/* Guest-physical layout of the ring inside region 0. */
#define DESC_GPA    REG0_GPA
#define AVAIL_GPA   (REG0_GPA + 0x100u)
#define USED_GPA    (REG0_GPA + 0x200u)
#define BUF_GPA     (REG0_GPA + 0x1000u)   /* buffers in region 0 */
#define BUF1_GPA    (REG1_GPA + 0x1000u)   /* buffers in region 1 */

struct guest {
	uint8_t *mem;        /* guard | reg0 | guard | reg1 | guard */
	uint8_t *reg[2];
	struct vq_mem table;
	struct vq_ring ring;
	struct vq_seg segs[VQ_SEGS_DEFAULT + 1]; /* +1: canary slot */
};

static void *g2h(struct guest *g, uint64_t gpa)
{
	if (gpa >= REG0_GPA && gpa < REG0_GPA + REG_SIZE)
		return g->reg[0] + (gpa - REG0_GPA);
	if (gpa >= REG1_GPA && gpa < REG1_GPA + REG_SIZE)
		return g->reg[1] + (gpa - REG1_GPA);
	fail_msg("gpa %#llx outside test memory", (unsigned long long)gpa);
	return NULL;
}

static void check_guards(const struct guest *g)
{
	const uint8_t *p = g->mem;
	size_t i;

	for (i = 0; i < GUARD_LEN; i++) {
		assert_int_equal(p[i], CANARY);
		assert_int_equal(p[GUARD_LEN + REG_SIZE + i], CANARY);
		assert_int_equal(p[2 * GUARD_LEN + 2 * REG_SIZE + i], CANARY);
	}
}

static int setup(void **state)
{
	struct guest *g = calloc(1, sizeof(*g));
	struct vq_mem_region regs[2];

	assert_non_null(g);
	g->mem = aligned_alloc(GUARD_LEN, 3 * GUARD_LEN + 2 * REG_SIZE);
	assert_non_null(g->mem);
	memset(g->mem, CANARY, 3 * GUARD_LEN + 2 * REG_SIZE);
	g->reg[0] = g->mem + GUARD_LEN;
	g->reg[1] = g->mem + 2 * GUARD_LEN + REG_SIZE;
	memset(g->reg[0], 0, REG_SIZE);
	memset(g->reg[1], 0, REG_SIZE);

	/* Given in reverse order: load sorts. */
	regs[0] = (struct vq_mem_region){ REG1_GPA, REG_SIZE,
					   (uintptr_t)g->reg[1], REG1_LKEY };
	regs[1] = (struct vq_mem_region){ REG0_GPA, REG_SIZE,
					   (uintptr_t)g->reg[0], REG0_LKEY };
	assert_int_equal(vq_mem_load(&g->table, regs, 2, NULL), VQ_MEM_OK);
	assert_true(vq_ring_init(&g->ring, g2h(g, DESC_GPA), g2h(g, AVAIL_GPA),
				 g2h(g, USED_GPA), RING_SIZE, 0, 0,
				 VQ_RING_F_INDIRECT));
	memset(g->segs, 0xee, sizeof(g->segs));
	*state = g;
	return 0;
}

static int teardown(void **state)
{
	struct guest *g = *state;

	check_guards(g);
	free(g->mem);
	free(g);
	return 0;
}

static void set_desc_at(struct vring_desc *table, uint16_t i, uint64_t addr,
			uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags,
				.next = next };

	memcpy(&table[i], &d, sizeof(d)); /* tables may be unaligned */
}

static void set_desc(struct guest *g, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	set_desc_at(g->ring.desc, i, addr, len, flags, next);
}

static void avail_push(struct guest *g, uint16_t head)
{
	struct vring_avail *a = g->ring.avail;

	a->ring[a->idx % RING_SIZE] = head;
	a->idx++;
}

static enum vq_err walk(struct guest *g, uint16_t head, enum vq_dir dir,
			uint32_t max, struct vq_chain *c)
{
	return vq_walk_chain(&g->ring, &g->table, head, dir, g->segs, max, c);
}

/* --- memory table ------------------------------------------------------- */

static void test_mem_load_rejects(void **state)
{
	struct vq_mem m;
	struct vq_mem_region r[3] = {
		{ 0x1000, 0x1000, 0x7000000, 1 },
		{ 0x3000, 0x1000, 0x8000000, 2 },
		{ 0x1800, 0x1000, 0x9000000, 3 }, /* overlaps r[0] */
	};
	uint32_t bad = 99;
	(void)state;

	assert_int_equal(vq_mem_load(&m, r, 0, &bad), VQ_MEM_ERR_COUNT);
	assert_int_equal(vq_mem_load(&m, r, VQ_MEM_MAX_REGIONS + 1, &bad),
			 VQ_MEM_ERR_COUNT);
	assert_int_equal(vq_mem_load(&m, r, 3, &bad), VQ_MEM_ERR_OVERLAP);
	assert_int_equal(bad, 2);
	assert_int_equal(m.nregions, 0);

	r[2] = (struct vq_mem_region){ 0x5000, 0, 0x9000000, 3 };
	assert_int_equal(vq_mem_load(&m, r, 3, &bad), VQ_MEM_ERR_SIZE);
	assert_int_equal(bad, 2);

	r[2] = (struct vq_mem_region){ UINT64_MAX - 0xfff, 0x1001, 0x9000, 3 };
	assert_int_equal(vq_mem_load(&m, r, 3, &bad), VQ_MEM_ERR_WRAP);
	r[2] = (struct vq_mem_region){ 0x5000, 0x1000, UINT64_MAX - 0x10, 3 };
	assert_int_equal(vq_mem_load(&m, r, 3, &bad), VQ_MEM_ERR_WRAP);

	/* Touching the last byte of the address space is fine. */
	r[2] = (struct vq_mem_region){ UINT64_MAX - 0xfff, 0x1000, 0x9000, 3 };
	assert_int_equal(vq_mem_load(&m, r, 3, &bad), VQ_MEM_OK);
	assert_int_equal(m.nregions, 3);
	assert_string_equal(vq_mem_strerror(VQ_MEM_ERR_OVERLAP), "regions overlap");
}

static void test_mem_translate(void **state)
{
	struct guest *g = *state;
	uint64_t hva, avail;
	const struct vq_mem_region *r;

	assert_int_equal(g->table.regions[0].gpa, REG0_GPA); /* sorted */
	r = vq_mem_translate(&g->table, REG0_GPA, &hva, &avail);
	assert_non_null(r);
	assert_int_equal(hva, (uintptr_t)g->reg[0]);
	assert_int_equal(avail, REG_SIZE);
	assert_int_equal(r->lkey, REG0_LKEY);

	r = vq_mem_translate(&g->table, REG1_GPA - 1, &hva, &avail);
	assert_non_null(r);
	assert_int_equal(avail, 1);
	assert_int_equal(r->lkey, REG0_LKEY);

	r = vq_mem_translate(&g->table, REG1_GPA + REG_SIZE - 1, &hva, &avail);
	assert_non_null(r);
	assert_int_equal(hva, (uintptr_t)g->reg[1] + REG_SIZE - 1);
	assert_int_equal(r->lkey, REG1_LKEY);

	assert_null(vq_mem_translate(&g->table, REG1_GPA + REG_SIZE, &hva, &avail));
	assert_null(vq_mem_translate(&g->table, REG0_GPA - 1, &hva, &avail));
	assert_null(vq_mem_translate(&g->table, 0, &hva, &avail));
	assert_null(vq_mem_translate(&g->table, UINT64_MAX, &hva, &avail));
}

static void test_segs_advance(void **state)
{
	struct vq_seg s[3] = { { 100, 4, 1 }, { 200, 4, 1 }, { 300, 10, 1 } };
	(void)state;

	assert_int_equal(vq_segs_advance(s, 3, 0), 0);
	assert_int_equal(s[0].addr, 100);
	assert_int_equal(vq_segs_advance(s, 3, 4), 1);
	assert_int_equal(s[1].addr, 200);
	assert_int_equal(s[1].len, 4);
	assert_int_equal(vq_segs_advance(s, 3, 10), 2);
	assert_int_equal(s[2].addr, 302);
	assert_int_equal(s[2].len, 8);
	assert_int_equal(vq_segs_advance(s, 3, 16), 3);
}

/* --- ring setup and avail ----------------------------------------------- */

static void test_ring_init_rejects(void **state)
{
	struct guest *g = *state;
	struct vq_ring r;
	void *d = g2h(g, DESC_GPA), *a = g2h(g, AVAIL_GPA), *u = g2h(g, USED_GPA);

	assert_false(vq_ring_init(&r, d, a, u, 0, 0, 0, 0));
	assert_false(vq_ring_init(&r, d, a, u, 3, 0, 0, 0));
	assert_false(vq_ring_init(&r, d, a, u, 65536, 0, 0, 0));
	assert_false(vq_ring_init(&r, NULL, a, u, 16, 0, 0, 0));
	assert_false(vq_ring_init(&r, (uint8_t *)d + 8, a, u, 16, 0, 0, 0));
	assert_false(vq_ring_init(&r, d, (uint8_t *)a + 1, u, 16, 0, 0, 0));
	assert_false(vq_ring_init(&r, d, a, (uint8_t *)u + 2, 16, 0, 0, 0));
	assert_true(vq_ring_init(&r, d, a, u, 32768, 0, 0, 0));
	assert_int_equal(r.mask, 32767);
}

static void test_avail_count(void **state)
{
	struct guest *g = *state;
	uint16_t n = 99;

	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_OK);
	assert_int_equal(n, 0);
	avail_push(g, 3);
	avail_push(g, 5);
	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_OK);
	assert_int_equal(n, 2);
	assert_int_equal(vq_avail_head(&g->ring, 0), 3);
	assert_int_equal(vq_avail_head(&g->ring, 1), 5);
	vq_avail_consume(&g->ring, 1);
	assert_int_equal(vq_avail_head(&g->ring, 0), 5);

	/* Exactly size outstanding is legal, one more is a broken queue. */
	g->ring.last_avail_idx = 0;
	g->ring.avail->idx = RING_SIZE;
	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_OK);
	assert_int_equal(n, RING_SIZE);
	g->ring.avail->idx = RING_SIZE + 1;
	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_ERR_AVAIL_IDX);
	assert_int_equal(n, 0);
	/* Going backwards looks like a huge jump forwards. */
	g->ring.last_avail_idx = 10;
	g->ring.avail->idx = 9;
	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_ERR_AVAIL_IDX);

	/* 16-bit wrap-around. */
	g->ring.last_avail_idx = 0xfffe;
	g->ring.avail->idx = 0x0002;
	assert_int_equal(vq_avail_count(&g->ring, &n), VQ_OK);
	assert_int_equal(n, 4);
	assert_string_equal(vq_strerror(VQ_ERR_AVAIL_IDX), "avail_idx");
	assert_string_equal(vq_strerror(VQ_ERR__COUNT), "unknown");
}

/* --- walk: happy paths ---------------------------------------------------- */

static void test_walk_single(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 2, BUF_GPA, 1500, 0, 0);
	assert_int_equal(walk(g, 2, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.head, 2);
	assert_int_equal(c.ndesc, 1);
	assert_int_equal(c.nseg, 1);
	assert_int_equal(c.len, 1500);
	assert_int_equal(g->segs[0].addr, (uintptr_t)g2h(g, BUF_GPA));
	assert_int_equal(g->segs[0].len, 1500);
	assert_int_equal(g->segs[0].lkey, REG0_LKEY);
}

static void test_walk_chain_rx(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 0, BUF_GPA, 12, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 7);
	set_desc(g, 7, BUF1_GPA, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	set_desc(g, 3, BUF_GPA + 512, 200, VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_RX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.ndesc, 3);
	assert_int_equal(c.nseg, 3);
	assert_int_equal(c.len, 312);
	assert_int_equal(g->segs[1].addr, (uintptr_t)g2h(g, BUF1_GPA));
	assert_int_equal(g->segs[1].lkey, REG1_LKEY);
	assert_int_equal(g->segs[2].len, 200);
}

/* CVE-2018-1059 class: a buffer crossing from region 0 to region 1 must
 * become two segments, because the regions are not contiguous in host
 * memory. */
static void test_walk_straddles_regions(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 1, REG1_GPA - 100, 300, 0, 0);
	assert_int_equal(walk(g, 1, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.nseg, 2);
	assert_int_equal(c.len, 300);
	assert_int_equal(g->segs[0].addr, (uintptr_t)g->reg[0] + REG_SIZE - 100);
	assert_int_equal(g->segs[0].len, 100);
	assert_int_equal(g->segs[0].lkey, REG0_LKEY);
	assert_int_equal(g->segs[1].addr, (uintptr_t)g->reg[1]);
	assert_int_equal(g->segs[1].len, 200);
	assert_int_equal(g->segs[1].lkey, REG1_LKEY);
}

/* Zero-length descriptors are skipped, never a 0-byte segment. */
static void test_walk_zero_len_skipped(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 0, BUF_GPA, 0, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, BUF_GPA, 64, VRING_DESC_F_NEXT, 2);
	set_desc(g, 2, 0xdead0000, 0, 0, 0); /* address irrelevant: no bytes */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.ndesc, 3);
	assert_int_equal(c.nseg, 1);
	assert_int_equal(g->segs[0].len, 64);

	set_desc(g, 1, BUF_GPA, 0, VRING_DESC_F_NEXT, 2);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c),
			 VQ_ERR_EMPTY_CHAIN);
	assert_int_equal(c.nseg, 0);
}

static void test_walk_indirect(void **state)
{
	struct guest *g = *state;
	struct vring_desc *t = g2h(g, BUF1_GPA);
	struct vq_chain c;

	set_desc_at(t, 0, BUF_GPA, 12, 0, 2);
	set_desc_at(t, 2, BUF_GPA + 100, 60, VRING_DESC_F_NEXT, 1);
	set_desc_at(t, 1, REG1_GPA - 10, 20, 0, 0); /* straddles too */
	t[0].flags = VRING_DESC_F_NEXT;
	set_desc(g, 4, BUF1_GPA, 3 * VQ_DESC_SIZE, VRING_DESC_F_INDIRECT, 0);
	assert_int_equal(walk(g, 4, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.ndesc, 4);
	assert_int_equal(c.nseg, 4);
	assert_int_equal(c.len, 92);
	assert_int_equal(g->segs[1].len, 60);
	assert_int_equal(g->segs[2].len, 10);
	assert_int_equal(g->segs[3].len, 10);
	assert_int_equal(g->segs[3].lkey, REG1_LKEY);

	/* The table may sit at any address: only host alignment changes. */
	t = g2h(g, BUF1_GPA + 0x101);
	set_desc_at(t, 0, BUF_GPA, 33, VRING_DESC_F_WRITE, 0);
	set_desc(g, 4, BUF1_GPA + 0x101, VQ_DESC_SIZE,
		 VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(g, 4, VQ_DIR_RX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.len, 33);
}

/* --- walk: hostile chains ----------------------------------------------- */

static void test_walk_bad_indices(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	assert_int_equal(walk(g, RING_SIZE, VQ_DIR_TX, 8, &c), VQ_ERR_HEAD_IDX);
	assert_int_equal(c.head, RING_SIZE);
	assert_int_equal(walk(g, 0xffff, VQ_DIR_TX, 8, &c), VQ_ERR_HEAD_IDX);
	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, RING_SIZE);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_NEXT_IDX);
}

static void test_walk_loops(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;
	uint16_t i;

	set_desc(g, 5, BUF_GPA, 10, VRING_DESC_F_NEXT, 5);
	assert_int_equal(walk(g, 5, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c),
			 VQ_ERR_CHAIN_LOOP);
	assert_int_equal(c.nseg, RING_SIZE);
	/* Zero-length descriptors produce no segment but still count. */
	set_desc(g, 5, BUF_GPA, 0, VRING_DESC_F_NEXT, 5);
	assert_int_equal(walk(g, 5, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c),
			 VQ_ERR_CHAIN_LOOP);
	assert_int_equal(c.ndesc, RING_SIZE);

	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, BUF_GPA, 10, VRING_DESC_F_NEXT, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c),
			 VQ_ERR_CHAIN_LOOP);

	/* A chain using every descriptor once is legal. */
	for (i = 0; i < RING_SIZE; i++)
		set_desc(g, i, BUF_GPA, 1, i + 1u < RING_SIZE ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	assert_int_equal(walk(g, 0, VQ_DIR_TX, VQ_SEGS_DEFAULT, &c), VQ_OK);
	assert_int_equal(c.len, RING_SIZE);
}

static void test_walk_bad_addresses(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 0, 0x100, 10, 0, 0); /* below every region */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DESC_ADDR);
	set_desc(g, 0, REG1_GPA + REG_SIZE - 10, 11, 0, 0); /* one byte past */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DESC_ADDR);
	set_desc(g, 0, REG1_GPA + REG_SIZE - 10, 10, 0, 0); /* exactly fits */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_OK);
	set_desc(g, 0, UINT64_MAX - 4, 10, 0, 0); /* addr + len wraps */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DESC_ADDR);
	/* A good first descriptor does not excuse a bad second one. */
	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, 0x7fff0000, 10, 0, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DESC_ADDR);
}

/* A buffer running off the top of the address space must not wrap into
 * a region at guest-physical 0. */
static void test_walk_addr_wraps_to_zero(void **state)
{
	struct guest *g = *state;
	struct vq_mem wrap;
	struct vq_chain c;
	struct vq_mem_region r[2] = {
		{ 0, REG_SIZE, (uintptr_t)g->reg[0], REG0_LKEY },
		{ UINT64_MAX - (REG_SIZE - 1), REG_SIZE, (uintptr_t)g->reg[1],
		  REG1_LKEY },
	};

	assert_int_equal(vq_mem_load(&wrap, r, 2, NULL), VQ_MEM_OK);
	set_desc(g, 0, UINT64_MAX - 7, 16, 0, 0);
	assert_int_equal(vq_walk_chain(&g->ring, &wrap, 0, VQ_DIR_TX, g->segs,
				       VQ_SEGS_DEFAULT, &c),
			 VQ_ERR_DESC_ADDR);
	set_desc(g, 0, UINT64_MAX - 7, 8, 0, 0); /* up to the last byte */
	assert_int_equal(vq_walk_chain(&g->ring, &wrap, 0, VQ_DIR_TX, g->segs,
				       VQ_SEGS_DEFAULT, &c),
			 VQ_OK);
	assert_int_equal(g->segs[0].addr, (uintptr_t)g->reg[1] + REG_SIZE - 8);
}

static void test_walk_direction(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, BUF_GPA, 10, VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DIRECTION);
	assert_int_equal(walk(g, 0, VQ_DIR_RX, 8, &c), VQ_ERR_DIRECTION);
	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	assert_int_equal(walk(g, 0, VQ_DIR_RX, 8, &c), VQ_OK);
}

static void test_walk_too_many_segs_no_overrun(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;
	struct vq_seg canary;
	uint16_t i;

	for (i = 0; i < 5; i++)
		set_desc(g, i, BUF_GPA + 64u * i, 64, i < 4 ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	memset(&canary, 0xee, sizeof(canary));
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 4, &c), VQ_ERR_TOO_MANY_SEGS);
	assert_int_equal(c.nseg, 4);
	assert_memory_equal(&g->segs[4], &canary, sizeof(canary));
	/* A straddling descriptor needs two slots. */
	memset(g->segs, 0xee, sizeof(g->segs));
	set_desc(g, 0, REG1_GPA - 8, 16, 0, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 1, &c), VQ_ERR_TOO_MANY_SEGS);
	assert_memory_equal(&g->segs[1], &canary, sizeof(canary));
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 0, &c), VQ_ERR_TOO_MANY_SEGS);
}

static void test_walk_chain_bytes(void **state)
{
	struct guest *g = *state;
	struct vq_chain c;

	set_desc(g, 0, BUF_GPA, VQ_CHAIN_MAX_BYTES + 1, 0, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_CHAIN_BYTES);
	/* Lengths that wrap a 32-bit sum. */
	set_desc(g, 0, BUF_GPA, 100, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, BUF_GPA, UINT32_MAX - 50, 0, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_CHAIN_BYTES);
	assert_int_equal(c.len <= VQ_CHAIN_MAX_BYTES, 1);
}

static void test_walk_indirect_hostile(void **state)
{
	struct guest *g = *state;
	struct vring_desc *t = g2h(g, BUF1_GPA);
	struct vq_chain c;
	const uint16_t ind = VRING_DESC_F_INDIRECT;

	set_desc_at(t, 0, BUF_GPA, 10, 0, 0);
	set_desc_at(t, 1, BUF_GPA, 10, 0, 0);

	set_desc(g, 0, BUF1_GPA, 0, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_LEN);
	set_desc(g, 0, BUF1_GPA, 17, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_LEN);
	set_desc(g, 0, BUF1_GPA, (RING_SIZE + 1) * VQ_DESC_SIZE, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_LEN);
	set_desc(g, 0, BUF1_GPA, 0xfffffff0u, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_LEN);

	/* Table crossing the region border, and table outside memory. */
	set_desc(g, 0, REG1_GPA - 16, 32, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_ADDR);
	set_desc(g, 0, 0x100, 32, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_ADDR);

	set_desc(g, 0, BUF1_GPA, 32, ind | VRING_DESC_F_NEXT, 1);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_NEXT);

	set_desc(g, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, 1);
	set_desc(g, 1, BUF1_GPA, 32, ind, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_NOT_HEAD);

	set_desc(g, 0, BUF1_GPA, 32, ind, 0);
	set_desc_at(t, 1, BUF1_GPA, 32, ind, 0); /* nested */
	set_desc_at(t, 0, BUF_GPA, 10, VRING_DESC_F_NEXT, 1);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_NESTED);

	set_desc_at(t, 1, BUF_GPA, 0, VRING_DESC_F_NEXT, 0); /* loop in table */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_CHAIN_LOOP);
	set_desc_at(t, 1, BUF_GPA, 10, VRING_DESC_F_NEXT, 2); /* past table */
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_NEXT_IDX);
	set_desc_at(t, 1, BUF_GPA, 10, VRING_DESC_F_WRITE, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_DIRECTION);

	g->ring.indirect = false;
	set_desc_at(t, 1, BUF_GPA, 10, 0, 0);
	assert_int_equal(walk(g, 0, VQ_DIR_TX, 8, &c), VQ_ERR_INDIRECT_OFF);
}

/* --- used ring and notifications ------------------------------------------ */

static void test_used_put_publish(void **state)
{
	struct guest *g = *state;
	struct vring_used *u = g->ring.used;
	uint16_t i;

	g->ring.used_idx = RING_SIZE - 1; /* wraps inside the burst */
	u->idx = RING_SIZE - 1;
	vq_used_put(&g->ring, 4, 100);
	vq_used_put(&g->ring, 9, 200);
	assert_int_equal(u->idx, RING_SIZE - 1); /* not yet visible */
	vq_used_publish(&g->ring);
	assert_int_equal(u->idx, RING_SIZE + 1);
	assert_int_equal(u->ring[RING_SIZE - 1].id, 4);
	assert_int_equal(u->ring[RING_SIZE - 1].len, 100);
	assert_int_equal(u->ring[0].id, 9);
	assert_int_equal(u->ring[0].len, 200);

	g->ring.used_idx = 0xffff;
	for (i = 0; i < 3; i++)
		vq_used_put(&g->ring, i, 0);
	vq_used_publish(&g->ring);
	assert_int_equal(u->idx, 2);

	{
		const struct vring_used_elem burst[2] = { { 11, 1 }, { 12, 2 } };

		vq_used_put_burst(&g->ring, burst, 2);
		vq_used_publish(&g->ring);
		assert_int_equal(u->idx, 4);
		assert_int_equal(u->ring[2].id, 11);
		assert_int_equal(u->ring[3].id, 12);
		assert_int_equal(u->ring[3].len, 2);
	}
}

static void test_need_call_flags(void **state)
{
	struct guest *g = *state;

	vq_used_put(&g->ring, 0, 10);
	vq_used_publish(&g->ring);
	assert_true(vq_need_call(&g->ring));
	g->ring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_need_call(&g->ring));
}

static uint16_t *used_event(struct guest *g)
{
	return &g->ring.avail->ring[RING_SIZE];
}

static uint16_t *avail_event(struct guest *g)
{
	return (uint16_t *)(void *)&g->ring.used->ring[RING_SIZE];
}

static void test_need_call_event_idx(void **state)
{
	struct guest *g = *state;

	g->ring.event_idx = true;
	g->ring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* ignored now */
	*used_event(g) = 0;
	vq_used_put(&g->ring, 0, 1);
	vq_used_publish(&g->ring);
	assert_true(vq_need_call(&g->ring)); /* first call always */

	/* Guest wants a call when used->idx passes 3 (i.e. reaches 4). */
	*used_event(g) = 3;
	vq_used_put(&g->ring, 0, 1); /* idx 2 */
	vq_used_publish(&g->ring);
	assert_false(vq_need_call(&g->ring));
	vq_used_put(&g->ring, 0, 1); /* idx 3 */
	vq_used_publish(&g->ring);
	assert_false(vq_need_call(&g->ring));
	vq_used_put(&g->ring, 0, 1); /* idx 4: crossed */
	vq_used_publish(&g->ring);
	assert_true(vq_need_call(&g->ring));
	assert_false(vq_need_call(&g->ring)); /* nothing new */

	/* 16-bit wrap: last call at 0xfffe, now at 0x0002. */
	g->ring.signalled_used = 0xfffe;
	g->ring.used_idx = 0x0002;
	*used_event(g) = 0xffff;
	assert_true(vq_need_call(&g->ring));
	g->ring.signalled_used = 0xfffe;
	*used_event(g) = 0x0002; /* not yet passed */
	assert_false(vq_need_call(&g->ring));
	g->ring.signalled_used = 0xfffe;
	*used_event(g) = 0x0001;
	assert_true(vq_need_call(&g->ring));
}

static void test_kick_suppression(void **state)
{
	struct guest *g = *state;

	vq_kick_disable(&g->ring);
	assert_int_equal(g->ring.used->flags & VRING_USED_F_NO_NOTIFY,
			 VRING_USED_F_NO_NOTIFY);
	assert_false(vq_kick_enable(&g->ring));
	assert_int_equal(g->ring.used->flags & VRING_USED_F_NO_NOTIFY, 0);
	avail_push(g, 1);
	assert_true(vq_kick_enable(&g->ring)); /* must poll before sleeping */

	g->ring.event_idx = true;
	g->ring.last_avail_idx = 0x1234;
	g->ring.avail->idx = 0x1234;
	vq_kick_disable(&g->ring);
	assert_int_equal(g->ring.used->flags & VRING_USED_F_NO_NOTIFY, 0);
	assert_false(vq_kick_enable(&g->ring));
	assert_int_equal(*avail_event(g), 0x1234);
}

/* The guest rewrites descriptors while we walk them. Whatever the walk
 * returns must be self-consistent: on success every segment lies inside
 * a region and the lengths add up; nothing is ever touched outside guest
 * memory (ASan, canaries). */
struct scribbler {
	struct guest *g;
	volatile bool stop;
	unsigned seed;
};

static const uint64_t scribble_addrs[] = {
	BUF_GPA, REG1_GPA - 8, BUF1_GPA, REG1_GPA + REG_SIZE - 4, 0x100,
	UINT64_MAX - 3, BUF1_GPA + 0x800,
};

static void *scribble(void *arg)
{
	struct scribbler *sc = arg;
	uint16_t i = 0;

	while (!sc->stop) {
		unsigned r;
		struct vring_desc d;
		struct vring_desc *table = (i & 32) ? g2h(sc->g, BUF1_GPA + 0x800)
						    : sc->g->ring.desc;

		sc->seed = sc->seed * 1103515245u + 12345u;
		r = sc->seed >> 8;
		d.addr = scribble_addrs[r % 7];
		d.len = (r >> 3) % 4 == 0 ? 0 : (r >> 5) % 64 * 4 + 1;
		d.flags = (uint16_t)((r >> 11) & (VRING_DESC_F_NEXT |
						  VRING_DESC_F_INDIRECT));
		if (d.flags & VRING_DESC_F_INDIRECT)
			d.addr = BUF1_GPA + 0x800;
		if ((d.flags & VRING_DESC_F_INDIRECT) && (r >> 14) % 2)
			d.len = 4 * VQ_DESC_SIZE;
		d.next = (uint16_t)((r >> 15) % (RING_SIZE + 2));
		__atomic_store_n(&table[i % RING_SIZE].addr, d.addr, __ATOMIC_RELAXED);
		__atomic_store_n(&table[i % RING_SIZE].len, d.len, __ATOMIC_RELAXED);
		__atomic_store_n(&table[i % RING_SIZE].flags, d.flags, __ATOMIC_RELAXED);
		__atomic_store_n(&table[i % RING_SIZE].next, d.next, __ATOMIC_RELAXED);
		i++;
	}
	return NULL;
}

static void test_walk_concurrent_guest(void **state)
{
	struct guest *g = *state;
	struct scribbler sc = { g, false, 7 };
	pthread_t t;
	unsigned iter, ok = 0, k;

	for (k = 0; k < RING_SIZE; k++)
		set_desc(g, (uint16_t)k, BUF_GPA, 64, 0, 0);
	assert_int_equal(pthread_create(&t, NULL, scribble, &sc), 0);
	for (iter = 0; iter < 2000000; iter++) {
		struct vq_chain c;
		uint64_t total = 0;

		if (walk(g, (uint16_t)(iter % RING_SIZE), VQ_DIR_TX,
			 VQ_SEGS_DEFAULT, &c) != VQ_OK)
			continue;
		ok++;
		assert_true(c.nseg > 0 && c.nseg <= VQ_SEGS_DEFAULT);
		for (k = 0; k < c.nseg; k++) {
			uint64_t a = g->segs[k].addr;
			int r = a >= (uintptr_t)g->reg[1];
			uint64_t base = (uintptr_t)g->reg[r];

			assert_true(g->segs[k].len > 0);
			assert_true(a >= base && a - base < REG_SIZE);
			assert_true(g->segs[k].len <= REG_SIZE - (a - base));
			assert_int_equal(g->segs[k].lkey, r ? REG1_LKEY : REG0_LKEY);
			total += g->segs[k].len;
		}
		assert_int_equal(total, c.len);
	}
	sc.stop = true;
	pthread_join(t, NULL);
	assert_true(ok > 0); /* some walks did succeed */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_load_rejects),
		T(test_mem_translate),
		cmocka_unit_test(test_segs_advance),
		T(test_ring_init_rejects),
		T(test_avail_count),
		T(test_walk_single),
		T(test_walk_chain_rx),
		T(test_walk_straddles_regions),
		T(test_walk_zero_len_skipped),
		T(test_walk_indirect),
		T(test_walk_bad_indices),
		T(test_walk_loops),
		T(test_walk_bad_addresses),
		T(test_walk_addr_wraps_to_zero),
		T(test_walk_direction),
		T(test_walk_too_many_segs_no_overrun),
		T(test_walk_chain_bytes),
		T(test_walk_indirect_hostile),
		T(test_walk_concurrent_guest),
		T(test_used_put_publish),
		T(test_need_call_flags),
		T(test_need_call_event_idx),
		T(test_kick_suppression),
	};

	return cmocka_run_group_tests_name("vq", tests, NULL, NULL);
}
