/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* libFuzzer harness for the split-ring walker and the virtio-net / wire
 * header code: the input becomes a memory table, the contents of guest
 * memory (descriptor table, avail and used rings, indirect tables,
 * buffers) and the device's indices. Every segment the walker produces
 * must lie inside one region; ASan catches any access outside the
 * exactly-sized region allocations.
 *
 * Input layout (missing bytes read as 0):
 *   0      log2 of the ring size, mod 9 (1..256 entries)
 *   1      flags: 1 EVENT_IDX, 2 INDIRECT, 4 RX direction, 8 VERSION_1,
 *          16 CSUM, 32 GUEST_CSUM
 *   2..3   last_avail_idx      4..5  used index
 *   6..7   region 1 gpa / 16   8..9  region 2 gpa - REG2_BASE
 *   10     number of regions (1..3)
 *   11     max segments per chain (1..64)
 *   12..   contents of region 0, then 1, then 2
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "ibvhost/vnet.h"
#include "ibvhost/vq.h"
#include "ibvhost/wire.h"

#define FUZZ_REG_SIZE 4096u
#define FUZZ_NREG     3u
#define FUZZ_HDR      12u
#define FUZZ_REG2_BASE 0x10000u
#define FUZZ_BURST    32u

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void check_segs(const struct vq_mem_region *regs, uint32_t nreg,
		       const struct vq_seg *segs, uint32_t nseg, uint32_t len)
{
	uint64_t total = 0;
	uint32_t i, r;

	for (i = 0; i < nseg; i++) {
		bool inside = false;

		if (segs[i].len == 0)
			abort();
		for (r = 0; r < nreg; r++) {
			if (segs[i].addr >= regs[r].hva &&
			    segs[i].addr - regs[r].hva < regs[r].size &&
			    segs[i].len <= regs[r].size - (segs[i].addr - regs[r].hva) &&
			    segs[i].lkey == regs[r].lkey)
				inside = true;
		}
		if (!inside)
			abort();
		total += segs[i].len;
	}
	if (total != len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hdr[FUZZ_HDR] = { 0 };
	uint8_t *mem[FUZZ_NREG];
	struct vq_mem_region regs[FUZZ_NREG];
	struct vq_mem table;
	struct vq_ring ring;
	struct vq_seg segs[VQ_SEGS_DEFAULT];
	struct vnet_cfg cfg;
	uint32_t ring_size, nreg, max_segs, i, used_off;
	uint64_t features = 0;
	uint16_t n;
	enum vq_dir dir;

	memcpy(hdr, data, size < FUZZ_HDR ? size : FUZZ_HDR);
	for (i = 0; i < FUZZ_NREG; i++) {
		size_t off = FUZZ_HDR + (size_t)i * FUZZ_REG_SIZE, k = 0;

		mem[i] = calloc(1, FUZZ_REG_SIZE);
		if (!mem[i])
			abort();
		if (size > off)
			k = size - off < FUZZ_REG_SIZE ? size - off : FUZZ_REG_SIZE;
		if (k)
			memcpy(mem[i], data + off, k);
	}

	ring_size = 1u << (hdr[0] % 9);
	nreg = 1 + hdr[10] % FUZZ_NREG;
	max_segs = 1 + hdr[11] % VQ_SEGS_DEFAULT;
	dir = (hdr[1] & 4) ? VQ_DIR_RX : VQ_DIR_TX;
	if (hdr[1] & 8)
		features |= 1ull << VIRTIO_F_VERSION_1;
	if (hdr[1] & 16)
		features |= 1ull << VIRTIO_NET_F_CSUM;
	if (hdr[1] & 32)
		features |= 1ull << VIRTIO_NET_F_GUEST_CSUM;
	vnet_cfg_init(&cfg, features);

	regs[0] = (struct vq_mem_region){ 0, FUZZ_REG_SIZE,
					   (uintptr_t)mem[0], 0x11 };
	regs[1] = (struct vq_mem_region){ (uint64_t)get16(hdr + 6) * 16,
					   FUZZ_REG_SIZE, (uintptr_t)mem[1], 0x22 };
	regs[2] = (struct vq_mem_region){ FUZZ_REG2_BASE + get16(hdr + 8),
					   FUZZ_REG_SIZE, (uintptr_t)mem[2], 0x33 };
	if (vq_mem_load(&table, regs, nreg, NULL) != VQ_MEM_OK)
		nreg = 0; /* every translation must now fail */

	/* Descriptor table at the start of region 0; avail then used (4-byte
	 * aligned) at the start of region 2. */
	used_off = (4 + 2 * ring_size + 2 + 3) & ~3u;
	if (!vq_ring_init(&ring, mem[0], mem[2], mem[2] + used_off, ring_size,
			  get16(hdr + 2), get16(hdr + 4),
			  ((hdr[1] & 1) ? VQ_RING_F_EVENT_IDX : 0) |
			  ((hdr[1] & 2) ? VQ_RING_F_INDIRECT : 0)))
		abort();

	if (vq_avail_count(&ring, &n) == VQ_OK) {
		if (n > FUZZ_BURST)
			n = FUZZ_BURST;
		for (i = 0; i < n; i++) {
			struct vq_chain c;
			struct vnet_tx tx;
			enum vq_err err;

			err = vq_walk_chain(&ring, &table, vq_avail_head(&ring, (uint16_t)i),
					    dir, segs, max_segs, &c);
			if (c.nseg > max_segs)
				abort();
			if (err != VQ_OK)
				break; /* the queue is broken */
			if (nreg == 0 || c.len == 0)
				abort();
			check_segs(regs, nreg, segs, c.nseg, c.len);
			if (dir == VQ_DIR_TX) {
				if (vnet_tx_parse(&cfg, segs, c.nseg, &tx) == VQ_OK) {
					uint8_t wire[WIRE_HDR_LEN];
					struct wire_msg m;

					if (tx.first >= c.nseg)
						abort();
					check_segs(regs, nreg, segs + tx.first,
						   c.nseg - tx.first, tx.frame_len);
					uint8_t macs[12];

					/* Ethernet addresses, possibly spanning
					 * descriptors. */
					if (vq_segs_read(segs + tx.first, c.nseg - tx.first,
							 0, macs, sizeof(macs)) != sizeof(macs))
						abort();
					wire_hdr_build(wire, &tx.off);
					if (wire_msg_parse(wire, WIRE_HDR_LEN + tx.frame_len,
							   &m) != WIRE_OK)
						abort();
					if (tx.off.flags & WIRE_F_NEEDS_CSUM)
						vnet_csum_complete(segs + tx.first,
								   c.nseg - tx.first,
								   tx.frame_len,
								   tx.off.csum_start,
								   tx.off.csum_offset);
				}
			} else {
				struct wire_msg m;

				/* A received message: wire header from the
				 * guest bytes, frame of the chain's size. */
				if (wire_msg_parse(mem[1], WIRE_HDR_LEN + c.len,
						   &m) != WIRE_OK || m.kind != WIRE_WHOLE)
					memset(&m, 0, sizeof(m));
				struct vq_seg hdr[VNET_HDR_MAX_SEGS];
				uint32_t nhdr = vnet_rx_hdr_segs(&cfg, segs, c.nseg, hdr);
				uint32_t first = vq_segs_advance(segs, c.nseg,
								 cfg.hdr_len);

				if (nhdr) {
					check_segs(regs, nreg, hdr, nhdr, cfg.hdr_len);
					check_segs(regs, nreg, segs + first,
						   c.nseg - first, c.len - cfg.hdr_len);
				}
				vnet_rx_write_hdr(&cfg, hdr, nhdr, &m.off,
						  c.len > cfg.hdr_len ? c.len - cfg.hdr_len : 0,
						  (uint16_t)(i + 1));
			}
			vq_used_put(&ring, c.head, c.len);
		}
		vq_avail_consume(&ring, (uint16_t)i);
		vq_used_publish(&ring);
		(void)vq_need_call(&ring);
		(void)vq_kick_enable(&ring);
		vq_kick_disable(&ring);
	}

	for (i = 0; i < FUZZ_NREG; i++)
		free(mem[i]);
	return 0;
}
