/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Per-frame cost of the pure data-path blocks, single core, no I/O:
 * TX (avail count, walk, header parse/strip, wire header, used put,
 * publish and call decision per burst of 32), RX header write, and FDB
 * lookup/learn. Prints ns per frame; not a pass/fail test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibvhost/fdb.h"
#include "ibvhost/vnet.h"
#include "ibvhost/vq.h"
#include "ibvhost/wire.h"

#define BENCH_RING   256u
#define BENCH_BURST  32u
#define BENCH_FRAMES (1u << 24)
#define BENCH_MEM    (1u << 20)
#define BENCH_GPA    0x100000u

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint64_t sink;

static void bench_tx(void)
{
	uint8_t *mem = aligned_alloc(4096, BENCH_MEM);
	struct vq_mem_region reg = { BENCH_GPA, BENCH_MEM, (uintptr_t)mem, 7 };
	struct vq_mem table;
	struct vq_ring r;
	struct vnet_cfg cfg = { VNET_HDR_LEN_MRG, true, true };
	struct vring_desc *desc = (void *)mem;
	struct vring_avail *avail = (void *)(mem + 0x1000);
	struct vring_used *used = (void *)(mem + 0x2000);
	struct vq_seg segs[VQ_SEGS_DEFAULT];
	uint8_t wire[WIRE_HDR_LEN];
	uint32_t i, done = 0, calls = 0;
	double t0, t1;

	memset(mem, 0, BENCH_MEM);
	if (vq_mem_load(&table, &reg, 1, NULL) != VQ_MEM_OK ||
	    !vq_ring_init(&r, desc, avail, used, BENCH_RING, 0, 0,
			  VQ_RING_F_EVENT_IDX))
		abort();
	for (i = 0; i < BENCH_RING; i++) {
		desc[i].addr = BENCH_GPA + 0x10000 + 2048ull * i;
		desc[i].len = 12 + 64;
		avail->ring[i] = (uint16_t)i;
	}

	t0 = now_ns();
	while (done < BENCH_FRAMES) {
		uint16_t n, k;

		/* The "guest" refills what we returned. */
		avail->idx = (uint16_t)(r.last_avail_idx + BENCH_BURST);
		if (vq_avail_count(&r, &n) != VQ_OK)
			abort();
		for (k = 0; k < n; k++) {
			struct vq_chain c;
			struct vnet_tx tx;

			if (vq_walk_chain(&r, &table, vq_avail_head(&r, k), VQ_DIR_TX,
					  segs, VQ_SEGS_DEFAULT, &c) != VQ_OK ||
			    vnet_tx_parse(&cfg, segs, c.nseg, &tx) != VQ_OK)
				abort();
			wire_hdr_build(wire, &tx.off);
			sink += segs[tx.first].addr + wire[1];
			vq_used_put(&r, c.head, 0);
		}
		vq_avail_consume(&r, n);
		vq_used_publish(&r);
		calls += vq_need_call(&r);
		done += n;
	}
	t1 = now_ns();
	printf("tx  walk+hdr+wire+used: %6.1f ns/frame (%u frames, %u calls)\n",
	       (t1 - t0) / done, done, calls);
	free(mem);
}

static void bench_rx_hdr(void)
{
	static uint8_t buf[64];
	struct vq_seg s[2] = { { (uintptr_t)buf, 4, 0 }, { (uintptr_t)buf + 8, 40, 0 } };
	struct vnet_cfg cfg = { VNET_HDR_LEN_MRG, true, true };
	struct wire_offload off = { WIRE_F_NEEDS_CSUM, 34, 16 };
	uint8_t msg[WIRE_HDR_LEN + 64];
	struct wire_msg m;
	uint32_t i;
	double t0, t1;

	wire_hdr_build(msg, &off);
	t0 = now_ns();
	for (i = 0; i < BENCH_FRAMES; i++) {
		if (wire_msg_parse(msg, sizeof(msg), &m) != WIRE_OK ||
		    vnet_rx_write_hdr(&cfg, s, 2, &m.off, m.len, 1) != VQ_OK)
			abort();
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	t1 = now_ns();
	printf("rx  wire parse+vnet hdr write (split): %6.1f ns/frame\n",
	       (t1 - t0) / BENCH_FRAMES);
}

static void bench_fdb(void)
{
	struct fdb *f = fdb_create(4096);
	struct fdb_addr a = { 1, 0x123, { 0 } };
	uint8_t mac[FDB_MAC_LEN] = { 0x02, 0, 0, 0, 0, 0 };
	uint32_t i;
	double t0, t1;

	for (i = 0; i < 1024; i++) {
		mac[4] = (uint8_t)(i >> 8);
		mac[5] = (uint8_t)i;
		fdb_learn(f, mac, &a, 1, NULL, NULL);
	}
	t0 = now_ns();
	for (i = 0; i < BENCH_FRAMES; i++) {
		mac[5] = (uint8_t)(i & 7); /* a few peers */
		sink += (uintptr_t)fdb_lookup(f, mac);
	}
	t1 = now_ns();
	printf("fdb lookup, 8 peers of 1024:   %6.1f ns\n", (t1 - t0) / BENCH_FRAMES);
	t0 = now_ns();
	for (i = 0; i < BENCH_FRAMES; i++) {
		mac[4] = (uint8_t)((i >> 8) & 3);
		mac[5] = (uint8_t)i;
		sink += (uintptr_t)fdb_lookup(f, mac);
	}
	t1 = now_ns();
	printf("fdb lookup, 1024 peers:        %6.1f ns\n", (t1 - t0) / BENCH_FRAMES);
	t0 = now_ns();
	for (i = 0; i < BENCH_FRAMES; i++) {
		mac[4] = (uint8_t)((i >> 8) & 3);
		mac[5] = (uint8_t)i;
		fdb_learn(f, mac, &a, i, NULL, NULL);
	}
	t1 = now_ns();
	printf("fdb learn (refresh), 1024 peers: %4.1f ns\n", (t1 - t0) / BENCH_FRAMES);
	fdb_destroy(f, NULL, NULL);
}

int main(void)
{
	bench_tx();
	bench_rx_hdr();
	bench_fdb();
	return 0;
}
