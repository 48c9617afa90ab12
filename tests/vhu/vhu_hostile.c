/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Hostile frontend behaviours, one table row per case. Each case misbehaves
 * once, then watches the backend for a while and reports what it did:
 * connection closed or not, replies and NACKs, used entries written, guest
 * bytes outside every buffer changed, ring indexes at stop. */
#include "vhu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#define OBSERVE_MS 1000u
#define BAD_GPA 0x7000000000ull

struct hctx {
	struct vhu_dev d;
	unsigned replies;
	unsigned nacks;
	unsigned send_errors;
	uint16_t used0[2];
	bool started; /* rings started: stopping them is meaningful */
	char note[160];
};

/* How far the normal setup goes before the case runs; RUNNING_NO_RX leaves
 * the RX ring without buffers for the case to post its own. */
enum setup { SETUP_CONNECT, SETUP_MEM, SETUP_RUNNING, SETUP_RUNNING_NO_RX };

struct hcase {
	const char *name;
	const char *what;
	enum setup setup;
	bool hold; /* observe for the whole --timeout, not OBSERVE_MS */
	int (*run)(struct hctx *h);
};

/* Records a request's outcome without stopping the case. */
static void tally(struct hctx *h, int r)
{
	if (r == 0)
		h->replies++;
	else if (r == -EREMOTEIO)
		h->nacks++;
	else
		h->send_errors++;
}

/* Publishes one head on the TX ring. */
static void tx_head(struct hctx *h, uint16_t head)
{
	vhu_vq_push(&h->d.vq[1], head);
	vhu_vq_publish(&h->d.vq[1]);
}

static void set_desc(struct vhu_dev *d, unsigned q, uint16_t i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	d->vq[q].desc[i] = (struct vring_desc){ .addr = addr, .len = len,
						.flags = flags, .next = next };
}

/* A TX frame buffer in guest memory: virtio-net header + Ethernet frame. */
static uint64_t tx_frame(struct hctx *h, uint32_t flen, uint16_t flags,
			 uint16_t cstart, uint16_t coff)
{
	struct vhu_dev *d = &h->d;
	uint64_t gpa = vhu_mem_alloc(&d->mem, 0, d->hdr_len + flen, 64);
	uint8_t *p = vhu_gpa_va(&d->mem, gpa, d->hdr_len + flen);
	struct virtio_net_hdr_mrg_rxbuf vh = { 0 };

	vh.hdr.flags = (uint8_t)flags;
	vh.hdr.csum_start = cstart;
	vh.hdr.csum_offset = coff;
	memcpy(p, &vh, d->hdr_len);
	memset(p + d->hdr_len, 0xff, 6);
	memcpy(p + d->hdr_len + 6, d->o.mac, 6);
	p[d->hdr_len + 12] = 0x88;
	p[d->hdr_len + 13] = 0xb5;
	return gpa;
}

/* ---- ring cases ------------------------------------------------------------ */

static int c_desc_out_of_range(struct hctx *h)
{
	set_desc(&h->d, 1, 0, BAD_GPA, 128, 0, 0);
	tx_head(h, 0);
	return 0;
}

static int c_desc_straddle(struct hctx *h)
{
	const struct vhu_region *r = &h->d.mem.r[0];
	set_desc(&h->d, 1, 0, r->gpa + r->size - 64, 256, 0, 0);
	tx_head(h, 0);
	return 0;
}

static int c_chain_loop(struct hctx *h)
{
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	set_desc(&h->d, 1, 0, f, h->d.hdr_len + 30, VRING_DESC_F_NEXT, 1);
	set_desc(&h->d, 1, 1, f + h->d.hdr_len + 30, 30, VRING_DESC_F_NEXT, 0);
	tx_head(h, 0);
	return 0;
}

/* An indirect table twice the ring size, linked linearly, no loop. */
static int c_chain_too_long(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	unsigned n = 2u * d->vq[1].num;
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	uint64_t t = vhu_mem_alloc(&d->mem, 0, 16ull * n, 16);
	struct vring_desc *tbl = vhu_gpa_va(&d->mem, t, 16ull * n);

	for (unsigned i = 0; i < n; i++)
		tbl[i] = (struct vring_desc){ .addr = f, .len = 1,
			.flags = i + 1 < n ? VRING_DESC_F_NEXT : 0,
			.next = (uint16_t)(i + 1) };
	tbl[0].len = d->hdr_len;
	set_desc(d, 1, 0, t, 16 * n, VRING_DESC_F_INDIRECT, 0);
	tx_head(h, 0);
	return 0;
}

static int c_indirect_nested(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	uint64_t t = vhu_mem_alloc(&d->mem, 0, 32, 16);
	struct vring_desc *tbl = vhu_gpa_va(&d->mem, t, 32);

	tbl[0] = (struct vring_desc){ .addr = f, .len = d->hdr_len + 60,
				      .flags = VRING_DESC_F_NEXT, .next = 1 };
	tbl[1] = (struct vring_desc){ .addr = t, .len = 32,
				      .flags = VRING_DESC_F_INDIRECT };
	set_desc(d, 1, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
	tx_head(h, 0);
	return 0;
}

static int c_indirect_bad_len(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	uint64_t t = vhu_mem_alloc(&d->mem, 0, 32, 16);
	struct vring_desc *tbl = vhu_gpa_va(&d->mem, t, 32);

	tbl[0] = (struct vring_desc){ .addr = f, .len = d->hdr_len + 60 };
	/* Not a multiple of 16, and longer than the table in memory. */
	set_desc(d, 1, 0, t, 16 * 4096 + 7, VRING_DESC_F_INDIRECT, 0);
	tx_head(h, 0);
	return 0;
}

static int c_zero_len(struct hctx *h)
{
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	set_desc(&h->d, 1, 0, f, 0, VRING_DESC_F_NEXT, 1);
	set_desc(&h->d, 1, 1, f, 0, 0, 0);
	tx_head(h, 0);
	return 0;
}

static int c_avail_idx_jump(struct hctx *h)
{
	struct vhu_vq *vq = &h->d.vq[1];
	uint64_t f = tx_frame(h, 60, 0, 0, 0);

	for (uint16_t i = 0; i < vq->num; i++) {
		set_desc(&h->d, 1, i, f, h->d.hdr_len + 60, 0, 0);
		vq->avail->ring[i] = i;
	}
	vq->avail_idx = (uint16_t)(vq->avail_idx + vq->num + 10);
	vhu_vq_publish(vq);
	return 0;
}

static int c_head_out_of_range(struct hctx *h)
{
	tx_head(h, (uint16_t)(h->d.vq[1].num + 5));
	return 0;
}

static int c_csum_out_of_frame(struct hctx *h)
{
	uint64_t f = tx_frame(h, 60, VIRTIO_NET_HDR_F_NEEDS_CSUM, 1000, 1000);
	set_desc(&h->d, 1, 0, f, h->d.hdr_len + 60, 0, 0);
	tx_head(h, 0);
	return 0;
}

/* RX chains of 4 + 4 + 4 + 1536 bytes, each piece in its own allocation
 * with canary around it; a frame sent to this port (by another frontend)
 * must be written in pieces. */
static int c_rx_hdr_split3(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	struct vhu_vq *vq = &d->vq[0];
	unsigned chains = vq->num / 4;
	static const uint32_t piece[4] = { 4, 4, 4, 1536 };

	for (unsigned c = 0; c < chains; c++) {
		for (unsigned j = 0; j < 4; j++) {
			uint16_t i = (uint16_t)(c * 4 + j);
			uint64_t g = vhu_mem_alloc(&d->mem, j % d->mem.nregions,
						   piece[j], 4);
			if (g == UINT64_MAX)
				return -ENOMEM;
			set_desc(d, 0, i, g, piece[j],
				 VRING_DESC_F_WRITE | (j < 3 ? VRING_DESC_F_NEXT : 0),
				 (uint16_t)(i + 1));
		}
		vhu_vq_push(vq, (uint16_t)(c * 4));
	}
	vhu_vq_publish(vq);
	snprintf(h->note, sizeof(h->note),
		 "%u RX chains of 4+4+4+1536 bytes posted", chains);
	return 0;
}

/* ---- protocol cases ---------------------------------------------------------- */

static int send_mem_table(struct hctx *h, const struct vhu_region_wire *r,
			  unsigned n)
{
	struct vhu_mem_wire w;
	int fds[VHU_MAX_REGIONS];

	memset(&w, 0, sizeof(w));
	w.nregions = n;
	for (unsigned i = 0; i < n; i++) {
		w.r[i] = r[i];
		fds[i] = h->d.mem.fd;
	}
	int rc = vhu_request(&h->d, VHU_SET_MEM_TABLE, &w,
			     8 + n * (uint32_t)sizeof(w.r[0]), fds, n, NULL);
	tally(h, rc);
	return 0;
}

static int c_memtable_overlap(struct hctx *h)
{
	struct vhu_mem *m = &h->d.mem;
	struct vhu_region_wire r[2] = {
		{ 0, m->size, (uint64_t)(uintptr_t)m->base, 0 },
		{ m->size / 2, m->size / 2, (uint64_t)(uintptr_t)m->base, 0 },
	};
	return send_mem_table(h, r, 2);
}

/* The region claims 1 GiB over the small memfd; the rings lie inside the
 * file, one TX descriptor points past its end, inside the claimed region. */
static int c_memtable_huge(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	struct vhu_mem *m = &d->mem;
	struct vhu_region_wire r = { 0, 1ull << 30, (uint64_t)(uintptr_t)m->base, 0 };
	int rc;

	send_mem_table(h, &r, 1);
	if (d->closed)
		return 0;
	if ((rc = vhu_net_init(d)))
		return rc;
	for (unsigned q = 0; q < 2 && !rc; q++)
		rc = vhu_dev_start_ring(d, q);
	tally(h, rc);
	if (rc)
		return 0;
	h->started = true;
	h->used0[1] = vhu_vq_used_idx(&d->vq[1]);
	set_desc(d, 1, 0, m->size + 4096, 128, 0, 0);
	tx_head(h, 0);
	snprintf(h->note, sizeof(h->note),
		 "TX descriptor at 0x%llx, beyond the %zu-byte memfd",
		 (unsigned long long)(m->size + 4096), m->size);
	return 0;
}

/* A sparse memory file of 1 TiB, all of it one region: legal for a
 * frontend to send, but registering it would fault in and pin 1 TiB. */
static int c_memtable_sparse(struct hctx *h)
{
	const uint64_t size = 1ull << 40;
	int fd = memfd_create("vhu-sparse", MFD_CLOEXEC);
	struct vhu_mem_wire w;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	memset(&w, 0, sizeof(w));
	w.nregions = 1;
	w.r[0] = (struct vhu_region_wire){ 0, size, 0x7f0000000000ull, 0 };
	tally(h, vhu_request(&h->d, VHU_SET_MEM_TABLE, &w,
			     8 + (uint32_t)sizeof(w.r[0]), &fd, 1, NULL));
	close(fd);
	snprintf(h->note, sizeof(h->note), "one region of %llu GiB over a "
		 "sparse memfd", (unsigned long long)(size >> 30));
	return 0;
}

/* 100 identical tables on a running device, a valid TX frame in flight
 * around each: a backend must quiesce the ring before it unmaps. */
static int c_repeat_set_mem_table(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	struct vhu_mem *m = &d->mem;
	struct vhu_region_wire r = { 0, m->size, (uint64_t)(uintptr_t)m->base, 0 };
	uint64_t f = tx_frame(h, 60, 0, 0, 0);

	for (unsigned i = 0; i < 100 && !d->closed; i++) {
		uint16_t id = (uint16_t)(i & (d->vq[1].num - 1));
		set_desc(d, 1, id, f, d->hdr_len + 60, 0, 0);
		tx_head(h, id);
		send_mem_table(h, &r, 1);
	}
	return 0;
}

/* mmap_offset + size wraps around 2^64. */
static int c_memtable_offset_overflow(struct hctx *h)
{
	struct vhu_mem *m = &h->d.mem;
	struct vhu_region_wire r = { 0, 0x10000, (uint64_t)(uintptr_t)m->base,
				     UINT64_MAX - 0xfff };
	return send_mem_table(h, &r, 1);
}

/* A table the backend cannot map (unaligned offset) on a running device,
 * then valid TX traffic: are the old ring pointers still used? */
static int c_memtable_fail_running(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	struct vhu_mem *m = &d->mem;
	struct vhu_region_wire r = { 0, m->size - 4096,
				     (uint64_t)(uintptr_t)m->base + 1, 1 };
	uint64_t f = tx_frame(h, 60, 0, 0, 0);

	send_mem_table(h, &r, 1);
	for (uint16_t i = 0; i < 8 && !d->closed; i++) {
		set_desc(d, 1, i, f, d->hdr_len + 60, 0, 0);
		tx_head(h, i);
	}
	return 0;
}

/* SET_VRING_BASE with an index that does not fit 16 bits, then one frame. */
static int c_vring_base_32bit(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	int rc;

	if ((rc = vhu_dev_start_ring(d, 0)))
		return rc;
	d->vq[1].start_base = 0x10005;
	tally(h, vhu_dev_start_ring(d, 1));
	h->started = true;
	d->vq[1].avail_idx = d->vq[1].kicked_idx = 5;
	d->vq[1].last_used = 5;
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	set_desc(d, 1, 0, f, d->hdr_len + 60, 0, 0);
	h->used0[1] = vhu_vq_used_idx(&d->vq[1]);
	tx_head(h, 0);
	return 0;
}

/* SET_VRING_NUM of 0x10000 and of 3 (not a power of two). */
static int c_vring_num_bad(struct hctx *h)
{
	struct vhu_state_wire st = { 1, 0x10000 };

	tally(h, vhu_request(&h->d, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0,
			     NULL));
	st.num = 3;
	tally(h, vhu_request(&h->d, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0,
			     NULL));
	return 0;
}

/* 100 SET_VRING_CALL with a fresh eventfd each: old fds must be closed. */
static int c_repeat_set_vring_call(struct hctx *h)
{
	for (unsigned i = 0; i < 100 && !h->d.closed; i++) {
		uint64_t idx = i & 1;
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		tally(h, vhu_request(&h->d, VHU_SET_VRING_CALL, &idx, 8, &fd, 1,
				     NULL));
		close(fd);
	}
	return 0;
}

/* GET_INFLIGHT_FD although INFLIGHT_SHMFD was never negotiated, asking for
 * 65535 queues of 32768 entries. */
static int c_inflight_unnegotiated(struct hctx *h)
{
	struct {
		uint64_t mmap_size;
		uint64_t mmap_offset;
		uint16_t num_queues;
		uint16_t queue_size;
		uint32_t pad;
	} inf = { 0, 0, 0xffff, 0x8000, 0 };
	struct vhu_msg m;
	int r = vhu_msg_send(h->d.sock, VHU_GET_INFLIGHT_FD, VHU_HDR_VERSION,
			     &inf, sizeof(inf), NULL, 0);
	if (r) {
		h->send_errors++;
		return 0;
	}
	r = vhu_msg_recv(h->d.sock, &m, h->d.o.timeout_ms < 2000 ? h->d.o.timeout_ms : 2000);
	if (r == 0) {
		h->replies++;
		memcpy(&inf, m.p.raw, sizeof(inf) < m.hdr.size ? sizeof(inf) : m.hdr.size);
		snprintf(h->note, sizeof(h->note),
			 "replied: mmap_size %llu", (unsigned long long)inf.mmap_size);
	} else {
		snprintf(h->note, sizeof(h->note), "no reply: %s", strerror(-r));
	}
	return 0;
}

static int c_extra_fds(struct hctx *h)
{
	int fds[3];
	struct vhu_msg m;

	for (unsigned i = 0; i < 3; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	tally(h, vhu_request(&h->d, VHU_GET_FEATURES, NULL, 0, fds, 3, &m));
	tally(h, vhu_request(&h->d, VHU_SET_OWNER, NULL, 0, fds, 3, NULL));
	for (unsigned i = 0; i < 3; i++)
		close(fds[i]);
	/* Still usable afterwards? */
	tally(h, vhu_request(&h->d, VHU_GET_FEATURES, NULL, 0, NULL, 0, &m));
	return 0;
}

static int c_bad_msg_size(struct hctx *h)
{
	static uint8_t junk[8192];
	int r = vhu_msg_send(h->d.sock, VHU_SET_FEATURES, VHU_HDR_VERSION, junk,
			     sizeof(junk), NULL, 0);
	if (r)
		h->send_errors++;
	return 0;
}

static int c_truncated_msg(struct hctx *h)
{
	struct vhu_msg_hdr hd = { VHU_SET_MEM_TABLE, VHU_HDR_VERSION, 40 };
	if (send(h->d.sock, &hd, sizeof(hd), MSG_NOSIGNAL) != sizeof(hd))
		h->send_errors++;
	snprintf(h->note, sizeof(h->note),
		 "header of SET_MEM_TABLE sent, payload withheld");
	return 0;
}

static int c_pipe_callfd(struct hctx *h)
{
	int p[2];
	uint64_t idx;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	for (idx = 0; idx < 2; idx++)
		tally(h, vhu_request(&h->d, VHU_SET_VRING_CALL, &idx, 8, &p[1], 1,
				     NULL));
	close(p[1]);
	/* Valid traffic so that the backend calls: many small TX frames. */
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	struct vhu_vq *vq = &h->d.vq[1];
	for (uint16_t i = 0; i < vq->num; i++) {
		set_desc(&h->d, 1, i, f, h->d.hdr_len + 60, 0, 0);
		vhu_vq_push(vq, i);
	}
	vhu_vq_publish(vq);
	/* Keep the read end, never read: the pipe fills. */
	close(h->d.vq[1].callfd);
	h->d.vq[1].callfd = p[0];
	close(h->d.vq[0].callfd);
	h->d.vq[0].callfd = -1;
	return 0;
}

/* ---- life-cycle cases ------------------------------------------------------ */

/* A second frontend on the running port's socket: it must be refused, and
 * the first connection keeps its device (one TX frame is still served). */
static int c_second_connection(struct hctx *h)
{
	static struct vhu_dev d2;
	struct vhu_opts o2 = h->d.o;
	int r = vhu_dev_connect(&d2, &o2);

	if (r == 0)
		r = vhu_dev_negotiate(&d2);
	if (r == 0)
		r = vhu_dev_set_mem_table(&d2);
	bool refused = r != 0 || vhu_peer_closed(&d2, OBSERVE_MS / 2);
	snprintf(h->note, sizeof(h->note), "second connection %s",
		 refused ? "refused" : "accepted");
	vhu_dev_close(&d2);
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	set_desc(&h->d, 1, 0, f, h->d.hdr_len + 60, 0, 0);
	tx_head(h, 0);
	return 0;
}

/* Both rings disabled, then only TX enabled again, then a TX frame: the
 * port must stay stopped (its RX ring is disabled), nothing is used. */
static int c_ring_reenable_one(struct hctx *h)
{
	struct vhu_state_wire st;

	for (unsigned q = 0; q < 2; q++) {
		st = (struct vhu_state_wire){ q, 0 };
		tally(h, vhu_request(&h->d, VHU_SET_VRING_ENABLE, &st,
				     sizeof(st), NULL, 0, NULL));
	}
	st = (struct vhu_state_wire){ 1, 1 };
	tally(h, vhu_request(&h->d, VHU_SET_VRING_ENABLE, &st, sizeof(st),
			     NULL, 0, NULL));
	h->used0[1] = vhu_vq_used_idx(&h->d.vq[1]);
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	set_desc(&h->d, 1, 0, f, h->d.hdr_len + 60, 0, 0);
	tx_head(h, 0);
	return 0;
}

/* The TX ring set up with 8 entries at the very end of region 0 (so
 * librte_vhost checks its addresses for 8), then SET_VRING_NUM 32768
 * and enable: rings that size would reach far past the region. */
static int c_vring_num_grow(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	const struct vhu_region *r = &d->mem.r[0];
	uint8_t *end = r->va + r->size;
	struct vhu_state_wire st = { 1, 8 };
	struct vhu_addr_wire a = {
		.index = 1,
		.desc = (uint64_t)(uintptr_t)(end - 512),
		.avail = (uint64_t)(uintptr_t)(end - 256),
		.used = (uint64_t)(uintptr_t)(end - 128),
	};
	uint64_t idx = 1;
	int rc;

	vhu_net_rx_refill(d);
	if ((rc = vhu_dev_start_ring(d, 0)))
		return rc;
	tally(h, vhu_request(d, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0,
			     NULL));
	st.num = 0;
	tally(h, vhu_request(d, VHU_SET_VRING_BASE, &st, sizeof(st), NULL, 0,
			     NULL));
	tally(h, vhu_request(d, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0,
			     NULL));
	tally(h, vhu_request(d, VHU_SET_VRING_CALL, &idx, 8, &d->vq[1].callfd,
			     1, NULL));
	tally(h, vhu_request(d, VHU_SET_VRING_KICK, &idx, 8, &d->vq[1].kickfd,
			     1, NULL));
	st = (struct vhu_state_wire){ 1, 32768 };
	tally(h, vhu_request(d, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0,
			     NULL));
	st.num = 1;
	tally(h, vhu_request(d, VHU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0,
			     NULL));
	h->started = true;
	return 0;
}

/* The TX call fd: a blocking eventfd whose counter is one below its
 * maximum, so the backend's first call would block forever; then TX
 * frames, so that it calls. */
static int c_callfd_blocking_full(struct hctx *h)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	uint64_t idx = 1, full = 0xfffffffffffffffeull;

	if (fd < 0)
		return -errno;
	if (write(fd, &full, sizeof(full)) != sizeof(full)) {
		close(fd);
		return -errno;
	}
	tally(h, vhu_request(&h->d, VHU_SET_VRING_CALL, &idx, 8, &fd, 1, NULL));
	close(h->d.vq[1].callfd);
	h->d.vq[1].callfd = fd;
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	struct vhu_vq *vq = &h->d.vq[1];
	for (uint16_t i = 0; i < 8; i++) {
		set_desc(&h->d, 1, i, f, h->d.hdr_len + 60, 0, 0);
		vhu_vq_push(vq, i);
	}
	vhu_vq_publish(vq);
	return 0;
}

/* Valid TX frames whose chains are 254 zero-length descriptors and the
 * frame, as many as the ring holds, re-posted as they complete for half
 * of --timeout: costly to walk, legal to post. The port's neighbours on
 * its polling core must keep their share (the test measures them). */
static int c_long_chains(struct hctx *h)
{
	struct vhu_dev *d = &h->d;
	struct vhu_vq *vq = &d->vq[1];
	const uint16_t len = 255;
	uint16_t nchains = (uint16_t)(vq->num / len);
	uint64_t until = vhu_now_ns() + (uint64_t)d->o.timeout_ms * 500000ull;
	uint64_t done = 0;

	if (nchains == 0) {
		snprintf(h->note, sizeof(h->note), "a ring of %u holds no "
			 "%u-descriptor chain (--ring)", vq->num, len);
		return -EINVAL;
	}
	uint64_t f = tx_frame(h, 60, 0, 0, 0);
	for (uint16_t k = 0; k < nchains; k++) {
		uint16_t b = (uint16_t)(k * len);

		for (uint16_t j = 0; j + 1 < len; j++)
			set_desc(d, 1, (uint16_t)(b + j), f, 0, VRING_DESC_F_NEXT,
				 (uint16_t)(b + j + 1));
		set_desc(d, 1, (uint16_t)(b + len - 1), f, d->hdr_len + 60, 0,
			 0);
		vhu_vq_push(vq, b);
	}
	vhu_vq_publish(vq);
	while (vhu_now_ns() < until && !d->closed) {
		uint32_t id, l;
		bool any = false;

		while (vhu_vq_get_used(vq, &id, &l)) {
			vhu_vq_push(vq, (uint16_t)id);
			done++;
			any = true;
		}
		if (any)
			vhu_vq_publish(vq);
		else
			usleep(200); /* leave the CPU to the other frontends */
	}
	snprintf(h->note, sizeof(h->note), "%llu frames of %u descriptors, "
		 "%u chains in flight", (unsigned long long)done, len, nchains);
	return 0;
}

static const struct hcase cases[] = {
	{ "desc-out-of-range", "TX descriptor address outside every region", SETUP_RUNNING, false, c_desc_out_of_range },
	{ "desc-straddle", "TX descriptor crossing the end of region 0", SETUP_RUNNING, false, c_desc_straddle },
	{ "chain-loop", "TX chain whose next points back to its head", SETUP_RUNNING, false, c_chain_loop },
	{ "chain-too-long", "indirect chain of 2x ring size descriptors", SETUP_RUNNING, false, c_chain_too_long },
	{ "indirect-nested", "indirect table containing an indirect descriptor", SETUP_RUNNING, false, c_indirect_nested },
	{ "indirect-bad-len", "indirect table length not a multiple of 16 and oversized", SETUP_RUNNING, false, c_indirect_bad_len },
	{ "zero-len", "TX chain of two zero-length descriptors", SETUP_RUNNING, false, c_zero_len },
	{ "avail-idx-jump", "TX avail->idx ring size + 10 ahead", SETUP_RUNNING, false, c_avail_idx_jump },
	{ "head-out-of-range", "TX avail entry >= ring size", SETUP_RUNNING, false, c_head_out_of_range },
	{ "csum-out-of-frame", "NEEDS_CSUM with csum_start/offset beyond the frame", SETUP_RUNNING, false, c_csum_out_of_frame },
	{ "rx-hdr-split3", "RX chains whose virtio-net header spans three descriptors", SETUP_RUNNING_NO_RX, true, c_rx_hdr_split3 },
	{ "memtable-overlap", "SET_MEM_TABLE with two overlapping regions", SETUP_CONNECT, false, c_memtable_overlap },
	{ "memtable-huge", "SET_MEM_TABLE region of 1 GiB over a small memfd, then a TX descriptor beyond the file", SETUP_CONNECT, false, c_memtable_huge },
	{ "memtable-sparse", "SET_MEM_TABLE of 1 TiB over a sparse memfd (above this host's memory)", SETUP_CONNECT, false, c_memtable_sparse },
	{ "repeat-set-mem-table", "100 SET_MEM_TABLE on a running device, TX in flight", SETUP_RUNNING, false, c_repeat_set_mem_table },
	{ "memtable-offset-overflow", "region whose mmap_offset + size wraps 2^64", SETUP_CONNECT, false, c_memtable_offset_overflow },
	{ "memtable-fail-running", "unmappable SET_MEM_TABLE on a running device, then TX", SETUP_RUNNING, false, c_memtable_fail_running },
	{ "vring-base-32bit", "SET_VRING_BASE 0x10005 on TX, then one frame", SETUP_MEM, false, c_vring_base_32bit },
	{ "vring-num-bad", "SET_VRING_NUM 0x10000 and 3", SETUP_CONNECT, false, c_vring_num_bad },
	{ "repeat-set-vring-call", "100 SET_VRING_CALL with fresh eventfds", SETUP_RUNNING, false, c_repeat_set_vring_call },
	{ "inflight-unnegotiated", "GET_INFLIGHT_FD for 65535 x 32768 without INFLIGHT_SHMFD", SETUP_CONNECT, false, c_inflight_unnegotiated },
	{ "extra-fds", "GET_FEATURES and SET_OWNER carrying 3 fds", SETUP_CONNECT, false, c_extra_fds },
	{ "bad-msg-size", "SET_FEATURES whose header says 8192 bytes", SETUP_CONNECT, false, c_bad_msg_size },
	{ "truncated-msg", "message header without its payload, connection held", SETUP_MEM, true, c_truncated_msg },
	{ "pipe-callfd", "call fds are a pipe that is never read", SETUP_RUNNING, false, c_pipe_callfd },
	{ "second-connection", "a second frontend connects to a running port", SETUP_RUNNING, false, c_second_connection },
	{ "ring-reenable-one", "both rings disabled, TX enabled alone, a TX frame", SETUP_RUNNING, false, c_ring_reenable_one },
	{ "callfd-blocking-full", "TX call fd: a blocking eventfd with a full counter, then TX", SETUP_RUNNING, false, c_callfd_blocking_full },
	{ "long-chains", "TX frames of 255 descriptors (254 empty), the ring kept full for half of --timeout", SETUP_RUNNING, false, c_long_chains },
	{ "vring-num-grow", "TX ring translated for 8 entries at a region end, then SET_VRING_NUM 32768", SETUP_MEM, false, c_vring_num_grow },
};

void vhu_hostile_list(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		printf("%-22s %s\n", cases[i].name, cases[i].what);
}

static int setup(struct hctx *h, const struct vhu_opts *o, enum setup s)
{
	int r = vhu_dev_connect(&h->d, o);

	if (r || (r = vhu_dev_negotiate(&h->d)))
		return r;
	if (s == SETUP_CONNECT)
		return 0;
	if ((r = vhu_dev_set_mem_table(&h->d)) || (r = vhu_net_init(&h->d)))
		return r;
	if (s == SETUP_MEM)
		return 0;
	if (s == SETUP_RUNNING)
		vhu_net_rx_refill(&h->d);
	for (unsigned q = 0; q < 2 && !r; q++)
		r = vhu_dev_start_ring(&h->d, q);
	h->started = r == 0;
	return r;
}

int vhu_hostile_run(const struct vhu_opts *o, const char *name)
{
	const struct hcase *hc = NULL;
	struct vhu_opts ho = *o;
	static struct hctx h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!strcmp(cases[i].name, name))
			hc = &cases[i];
	if (!hc) {
		fprintf(stderr, "vhu-frontend: unknown hostile case '%s' "
				"(vhu-frontend hostile list)\n", name);
		return 2;
	}
	ho.features_mask |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	memset(&h, 0, sizeof(h));
	int r = setup(&h, &ho, hc->setup);
	if (r) {
		vj_str("cmd", "hostile");
		vj_str("case", name);
		vj_bool("ok", false);
		vj_str("error", h.d.err[0] ? h.d.err : strerror(-r));
		vj_end();
		vhu_dev_close(&h.d);
		return 2;
	}
	if (hc->setup >= SETUP_RUNNING) {
		h.used0[0] = vhu_vq_used_idx(&h.d.vq[0]);
		h.used0[1] = vhu_vq_used_idx(&h.d.vq[1]);
	}
	fprintf(stderr, "vhu: hostile %s ready on %s\n", name, o->socket);
	int cr = hc->run(&h);

	unsigned window = o->timeout_ms < OBSERVE_MS || hc->hold ?
				  o->timeout_ms : OBSERVE_MS;
	bool closed = vhu_peer_closed(&h.d, window);
	uint64_t changed = vhu_mem_canary_changed(&h.d.mem);
	uint16_t used[2] = { 0, 0 };
	bool rings = h.started; /* some cases start rings late */
	if (rings) {
		used[0] = vhu_vq_used_idx(&h.d.vq[0]);
		used[1] = vhu_vq_used_idx(&h.d.vq[1]);
	}
	/* Still talking? A short-timeout stop tells a hang from a clean stop. */
	bool stop_ok = false;
	if (!closed && rings) {
		h.d.o.timeout_ms = window;
		stop_ok = vhu_dev_stop(&h.d) == 0;
		closed = h.d.closed;
	}
	vj_str("cmd", "hostile");
	vj_str("case", name);
	vj_str("what", hc->what);
	vj_bool("ok", cr == 0);
	vj_bool("backend_closed", closed);
	vj_u64("replies", h.replies);
	vj_u64("nacks", h.nacks);
	vj_u64("send_errors", h.send_errors);
	vj_key("used_written");
	printf("[%u,%u]", (uint16_t)(used[0] - h.used0[0]),
	       (uint16_t)(used[1] - h.used0[1]));
	vj_u64("canary_changed", changed);
	vj_bool("stop_replied", stop_ok);
	vj_key("vring_base");
	printf("[%u,%u]", h.d.base_at_stop[0], h.d.base_at_stop[1]);
	vj_str("note", h.note[0] ? h.note : NULL);
	vj_str("error", h.d.err[0] ? h.d.err : NULL);
	vj_end();
	vhu_dev_close(&h.d);
	return cr == 0 ? 0 : 2;
}
