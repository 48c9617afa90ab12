/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* virtio-net driver on the two split rings, and the test frame format. */
#include "vhu.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#define VHU_RX_FRAME_MAX (65536u + 64u)
#define VHU_TX_SEG_MAX 64u

int vhu_net_init(struct vhu_dev *d)
{
	const struct vhu_opts *o = &d->o;
	bool ev = d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	uint16_t num = (uint16_t)o->ring;
	int r;

	if (o->ring < 2 || o->ring > 32768 || (o->ring & (o->ring - 1))) {
		snprintf(d->err, sizeof(d->err),
			 "ring size %u: must be a power of two in 2..32768", o->ring);
		return -EINVAL;
	}
	for (unsigned q = 0; q < 2; q++)
		if ((r = vhu_vq_init(&d->vq[q], &d->mem, q, num, ev))) {
			snprintf(d->err, sizeof(d->err), "ring %u: %s", q,
				 strerror(-r));
			return r;
		}
	d->rx_buf = o->rx_buf;
	if (!d->mrg && d->rx_buf < d->hdr_len + o->mtu + 18)
		d->rx_buf = d->hdr_len + o->mtu + 18;
	d->rx_gpa = calloc(num, sizeof(*d->rx_gpa));
	d->rx_free = calloc(num, sizeof(*d->rx_free));
	d->rx_posted = calloc(num, sizeof(*d->rx_posted));
	d->rx_frame_cap = VHU_RX_FRAME_MAX;
	d->rx_frame = malloc(d->rx_frame_cap);
	unsigned segs = o->segments ? o->segments : 1;
	if (segs > VHU_TX_SEG_MAX)
		segs = VHU_TX_SEG_MAX;
	d->tx_descs = segs + (o->hdr_desc ? 1 : 0);
	if (!o->indirect && d->tx_descs > num) {
		snprintf(d->err, sizeof(d->err),
			 "%u descriptors per frame do not fit a ring of %u",
			 d->tx_descs, num);
		return -EINVAL;
	}
	d->tx_slots = o->indirect ? num : num / d->tx_descs;
	d->tx_gpa = calloc(d->tx_slots, sizeof(*d->tx_gpa));
	d->tx_ind_gpa = calloc(d->tx_slots, sizeof(*d->tx_ind_gpa));
	d->tx_free = calloc(d->tx_slots, sizeof(*d->tx_free));
	d->tx_busy = calloc(d->tx_slots, sizeof(*d->tx_busy));
	if (!d->rx_gpa || !d->rx_free || !d->rx_posted || !d->rx_frame ||
	    !d->tx_gpa || !d->tx_ind_gpa || !d->tx_free || !d->tx_busy)
		return -ENOMEM;
	d->tx_slot_len = (d->hdr_len + o->tx_max_frame + 63) & ~63ull;
	unsigned nr = d->mem.nregions;
	for (unsigned i = 0; i < num; i++) {
		d->rx_gpa[i] = vhu_mem_alloc(&d->mem, i % nr, d->rx_buf, 64);
		if (d->rx_gpa[i] == UINT64_MAX)
			goto nomem;
		d->vq[0].desc[i] = (struct vring_desc){
			.addr = d->rx_gpa[i], .len = d->rx_buf,
			.flags = VRING_DESC_F_WRITE };
		d->rx_free[d->rx_nfree++] = (uint16_t)(num - 1 - i);
	}
	for (unsigned s = 0; s < d->tx_slots; s++) {
		d->tx_gpa[s] = vhu_mem_alloc(&d->mem, (s + 1) % nr,
					     d->tx_slot_len, 64);
		if (d->tx_gpa[s] == UINT64_MAX)
			goto nomem;
		if (o->indirect) {
			d->tx_ind_gpa[s] = vhu_mem_alloc(
				&d->mem, 0, 16ull * d->tx_descs, 16);
			if (d->tx_ind_gpa[s] == UINT64_MAX)
				goto nomem;
		}
		d->tx_free[d->tx_nfree++] = (uint16_t)(d->tx_slots - 1 - s);
	}
	return 0;
nomem:
	snprintf(d->err, sizeof(d->err),
		 "guest memory of %u MB too small for %u RX buffers of %u and "
		 "%u TX slots of %llu bytes", o->mem_mb, num, d->rx_buf,
		 d->tx_slots, (unsigned long long)d->tx_slot_len);
	return -ENOMEM;
}

void vhu_net_fini(struct vhu_dev *d)
{
	free(d->rx_gpa);
	free(d->rx_free);
	free(d->rx_posted);
	free(d->rx_frame);
	free(d->tx_gpa);
	free(d->tx_ind_gpa);
	free(d->tx_free);
	free(d->tx_busy);
	d->rx_gpa = d->tx_gpa = d->tx_ind_gpa = NULL;
	d->rx_free = d->tx_free = NULL;
	d->rx_posted = d->tx_busy = NULL;
	d->rx_frame = NULL;
}

void vhu_net_rx_refill(struct vhu_dev *d)
{
	if (!d->rx_nfree)
		return;
	while (d->rx_nfree) {
		uint16_t id = d->rx_free[--d->rx_nfree];
		d->rx_posted[id] = true;
		vhu_vq_push(&d->vq[0], id);
	}
	vhu_vq_publish(&d->vq[0]);
}

/* Copies up to len bytes of the chain at head into out; returns bytes. */
static uint32_t chain_read(struct vhu_dev *d, uint16_t head, uint32_t len,
			   uint8_t *out, uint32_t cap)
{
	struct vhu_vq *vq = &d->vq[0];
	uint32_t done = 0;
	uint16_t i = head;

	for (unsigned n = 0; n < vq->num && done < len; n++) {
		const struct vring_desc *de = &vq->desc[i];
		uint32_t take = de->len < len - done ? de->len : len - done;
		const uint8_t *p = vhu_gpa_va(&d->mem, de->addr, take);
		if (!p || take > cap - done)
			break;
		memcpy(out + done, p, take);
		done += take;
		if (!(de->flags & VRING_DESC_F_NEXT) || de->next >= vq->num)
			break;
		i = de->next;
	}
	return done;
}

static bool rx_take(struct vhu_dev *d, uint32_t *id, uint32_t *len)
{
	if (!vhu_vq_get_used(&d->vq[0], id, len))
		return false;
	if (*id >= d->vq[0].num || !d->rx_posted[*id]) {
		d->rx_bad_used++;
		return false;
	}
	d->rx_posted[*id] = false;
	d->rx_free[d->rx_nfree++] = (uint16_t)*id;
	return true;
}

int vhu_net_rx(struct vhu_dev *d, struct vhu_rx_info *ri)
{
	struct vhu_vq *vq = &d->vq[0];
	uint16_t avail_used = (uint16_t)(vhu_vq_used_idx(vq) - vq->last_used);
	uint32_t id, len;

	if (!avail_used)
		return 0;
	if (d->mrg) {
		/* All buffers of a frame must be visible before the first. */
		const struct vring_used_elem *e =
			&vq->used->ring[vq->last_used & (vq->num - 1)];
		uint16_t nb = 1;
		if (e->id < vq->num && d->rx_posted[e->id]) {
			const struct virtio_net_hdr_mrg_rxbuf *h =
				vhu_gpa_va(&d->mem, d->rx_gpa[e->id], 12);
			if (h && h->num_buffers)
				nb = h->num_buffers;
		}
		if (nb > avail_used)
			return 0;
	}
	if (!rx_take(d, &id, &len))
		return -1;
	uint8_t hdr[12] = { 0 };
	uint32_t got = chain_read(d, (uint16_t)id, len, d->rx_frame, d->rx_frame_cap);
	if (got < d->hdr_len || got != len) {
		d->rx_bad_used++;
		vhu_net_rx_refill(d);
		return -1;
	}
	memcpy(hdr, d->rx_frame, d->hdr_len);
	const struct virtio_net_hdr_mrg_rxbuf *h = (const void *)hdr;
	uint16_t nb = d->mrg ? (h->num_buffers ? h->num_buffers : 1) : 1;
	uint32_t flen = got - d->hdr_len;
	memmove(d->rx_frame, d->rx_frame + d->hdr_len, flen);
	for (uint16_t b = 1; b < nb; b++) {
		if (!rx_take(d, &id, &len)) {
			vhu_net_rx_refill(d);
			return -1;
		}
		flen += chain_read(d, (uint16_t)id, len, d->rx_frame + flen,
				   d->rx_frame_cap - flen);
	}
	if (nb > d->rx_max_bufs)
		d->rx_max_bufs = nb;
	ri->flags = h->hdr.flags;
	ri->csum_start = h->hdr.csum_start;
	ri->csum_offset = h->hdr.csum_offset;
	ri->num_buffers = nb;
	ri->len = flen;
	ri->frame = d->rx_frame;
	if (ri->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		d->rx_flags_needs_csum++;
	if (ri->flags & VIRTIO_NET_HDR_F_DATA_VALID)
		d->rx_flags_data_valid++;
	d->rx_frames++;
	d->rx_bytes += flen;
	/* Refill in batches, or at once when the device has nothing left. */
	if (d->rx_nfree >= 32 || vhu_vq_used_idx(vq) == vq->last_used)
		vhu_net_rx_refill(d);
	return 1;
}

void vhu_net_tx_reap(struct vhu_dev *d)
{
	uint32_t id, len;

	while (vhu_vq_get_used(&d->vq[1], &id, &len)) {
		unsigned per = d->o.indirect ? 1 : d->tx_descs;
		unsigned s = id / per;
		if (id % per || s >= d->tx_slots || !d->tx_busy[s]) {
			d->tx_bad_used++;
			continue;
		}
		d->tx_busy[s] = false;
		d->tx_free[d->tx_nfree++] = (uint16_t)s;
		d->tx_reaped++;
	}
}

int vhu_net_tx(struct vhu_dev *d, const struct vhu_tx_req *r)
{
	struct vhu_vq *vq = &d->vq[1];
	struct vring_desc *tbl;
	uint16_t head;

	if (d->hdr_len + r->len > d->tx_slot_len)
		return -EMSGSIZE;
	if (!d->tx_nfree)
		vhu_net_tx_reap(d);
	if (!d->tx_nfree)
		return -EAGAIN;
	unsigned s = d->tx_free[--d->tx_nfree];
	uint8_t *buf = vhu_gpa_va(&d->mem, d->tx_gpa[s], d->tx_slot_len);
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	h.hdr.flags = r->flags;
	h.hdr.csum_start = r->csum_start;
	h.hdr.csum_offset = r->csum_offset;
	memcpy(buf, &h, d->hdr_len);
	memcpy(buf + d->hdr_len, r->frame, r->len);

	/* Pieces: optional header descriptor, then the rest split evenly. */
	uint64_t piece_addr[VHU_TX_SEG_MAX + 1];
	uint32_t piece_len[VHU_TX_SEG_MAX + 1];
	unsigned np = 0;
	uint32_t off = 0, total = d->hdr_len + r->len;
	if (d->o.hdr_desc) {
		piece_addr[np] = d->tx_gpa[s];
		piece_len[np++] = d->hdr_len;
		off = d->hdr_len;
	}
	unsigned k = d->tx_descs - np;
	uint32_t rest = total - off;
	if (k > rest)
		k = rest;
	for (unsigned j = 0; j < k; j++) {
		uint32_t l = rest / k + (j < rest % k ? 1 : 0);
		piece_addr[np] = d->tx_gpa[s] + off;
		piece_len[np++] = l;
		off += l;
	}
	if (d->o.indirect) {
		head = (uint16_t)s;
		tbl = vhu_gpa_va(&d->mem, d->tx_ind_gpa[s], 16ull * np);
		vq->desc[head] = (struct vring_desc){
			.addr = d->tx_ind_gpa[s], .len = (uint32_t)(16 * np),
			.flags = VRING_DESC_F_INDIRECT };
		for (unsigned j = 0; j < np; j++)
			tbl[j] = (struct vring_desc){
				.addr = piece_addr[j], .len = piece_len[j],
				.flags = j + 1 < np ? VRING_DESC_F_NEXT : 0,
				.next = (uint16_t)(j + 1 < np ? j + 1 : 0) };
	} else {
		head = (uint16_t)(s * d->tx_descs);
		for (unsigned j = 0; j < np; j++)
			vq->desc[head + j] = (struct vring_desc){
				.addr = piece_addr[j], .len = piece_len[j],
				.flags = j + 1 < np ? VRING_DESC_F_NEXT : 0,
				.next = (uint16_t)(j + 1 < np ? head + j + 1 : 0) };
	}
	d->tx_busy[s] = true;
	vhu_vq_push(vq, head);
	vhu_vq_publish(vq);
	d->tx_frames++;
	d->tx_bytes += r->len;
	return 0;
}

void vhu_net_wait(struct vhu_dev *d, unsigned timeout_ms)
{
	struct pollfd p[3] = {
		{ .fd = d->vq[0].callfd, .events = POLLIN },
		{ .fd = d->vq[1].callfd, .events = POLLIN },
		{ .fd = d->sock, .events = POLLRDHUP },
	};

	if (d->o.busy_poll) {
		if (vhu_peer_closed(d, 0))
			return;
		return;
	}
	bool ready = vhu_vq_want_call(&d->vq[0]);
	ready |= vhu_vq_want_call(&d->vq[1]);
	if (!ready && poll(p, 3, (int)timeout_ms) > 0 &&
	    (p[2].revents & (POLLHUP | POLLRDHUP | POLLERR)))
		d->closed = true;
	vhu_vq_drain_call(&d->vq[0]);
	vhu_vq_drain_call(&d->vq[1]);
}

/* ---- test frames --------------------------------------------------------- */

struct vhu_payload_hdr {
	uint32_t magic;
	uint32_t seed;
	uint64_t seq;
	uint32_t len;
	uint32_t pad;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t pattern_seed(uint64_t seq, uint32_t seed)
{
	uint32_t x = seed ^ ((uint32_t)seq * 0x9e3779b1u) ^ (uint32_t)(seq >> 32);
	return x ? x : 1;
}

static void pattern_fill(uint8_t *p, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++) {
		if ((i & 3) == 0) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
		}
		p[i] = (uint8_t)(x >> (8 * (i & 3)));
	}
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t udp_pseudo(const uint8_t *ip, uint16_t udp_len)
{
	uint32_t sum = csum_add(0, ip + 12, 8);
	return sum + 17 + udp_len;
}

uint32_t vhu_frame_build(uint8_t *buf, uint32_t size,
			 const struct vhu_frame_meta *fm, struct vhu_tx_req *req)
{
	uint32_t p0 = 14;

	memset(req, 0, sizeof(*req));
	memcpy(buf, fm->dst, 6);
	memcpy(buf + 6, fm->src, 6);
	if (fm->udp) {
		if (size < VHU_FRAME_MIN_UDP)
			size = VHU_FRAME_MIN_UDP;
		put16(buf + 12, 0x0800);
		uint8_t *ip = buf + 14, *udp = buf + 34;
		memset(ip, 0, 20);
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(size - 14));
		put16(ip + 4, (uint16_t)fm->seq);
		put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, (const uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
		put16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, 20)));
		put16(udp, 4000);
		put16(udp + 2, 4001);
		put16(udp + 4, (uint16_t)(size - 34));
		/* Partial checksum: the folded pseudo header, as Linux does. */
		put16(udp + 6, csum_fold(udp_pseudo(ip, (uint16_t)(size - 34))));
		p0 = 42;
		req->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		req->csum_start = 34;
		req->csum_offset = 6;
	} else {
		if (size < VHU_FRAME_MIN)
			size = VHU_FRAME_MIN;
		put16(buf + 12, VHU_ETHERTYPE_TEST);
	}
	struct vhu_payload_hdr ph = { VHU_MAGIC, fm->seed, fm->seq, size, 0 };
	memcpy(buf + p0, &ph, sizeof(ph));
	pattern_fill(buf + p0 + sizeof(ph), size - p0 - (uint32_t)sizeof(ph),
		     pattern_seed(fm->seq, fm->seed));
	req->frame = buf;
	req->len = size;
	return size;
}

const char *vhu_check_name(enum vhu_check c)
{
	static const char *const n[] = { "ok", "not_test", "bad_len",
					 "bad_pattern", "bad_csum" };
	return n[c];
}

enum vhu_check vhu_frame_check(const struct vhu_rx_info *ri,
			       struct vhu_frame_meta *fm)
{
	const uint8_t *f = ri->frame;
	uint32_t p0 = 14;
	struct vhu_payload_hdr ph;

	if (ri->len < VHU_FRAME_MIN)
		return VHU_CHECK_NOT_TEST;
	memcpy(fm->dst, f, 6);
	memcpy(fm->src, f + 6, 6);
	uint16_t et = get16(f + 12);
	fm->udp = et == 0x0800;
	if (fm->udp) {
		if (ri->len < VHU_FRAME_MIN_UDP || f[14] != 0x45 || f[23] != 17)
			return VHU_CHECK_NOT_TEST;
		p0 = 42;
	} else if (et != VHU_ETHERTYPE_TEST) {
		return VHU_CHECK_NOT_TEST;
	}
	memcpy(&ph, f + p0, sizeof(ph));
	if (ph.magic != VHU_MAGIC)
		return VHU_CHECK_NOT_TEST;
	fm->seq = ph.seq;
	fm->seed = ph.seed;
	if (ph.len != ri->len)
		return VHU_CHECK_BAD_LEN;
	uint8_t tmp[64];
	uint32_t x = pattern_seed(ph.seq, ph.seed), n = ri->len - p0 - sizeof(ph);
	const uint8_t *p = f + p0 + sizeof(ph);
	/* Regenerate the pattern in chunks that keep the xorshift phase. */
	for (uint32_t off = 0; off < n; off += sizeof(tmp)) {
		uint32_t c = n - off < sizeof(tmp) ? n - off : sizeof(tmp);
		pattern_fill(tmp, c, x);
		for (unsigned i = 0; i < sizeof(tmp) / 4; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
		}
		if (memcmp(tmp, p + off, c))
			return VHU_CHECK_BAD_PATTERN;
	}
	if (fm->udp) {
		const uint8_t *ip = f + 14;
		uint16_t ulen = (uint16_t)(ri->len - 34);
		if (ri->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
			if (ri->csum_start != 34 || ri->csum_offset != 6 ||
			    get16(f + 40) != csum_fold(udp_pseudo(ip, ulen)))
				return VHU_CHECK_BAD_CSUM;
		} else if (!(ri->flags & VIRTIO_NET_HDR_F_DATA_VALID) &&
			   get16(f + 40) != 0) {
			uint32_t s = udp_pseudo(ip, ulen) + csum_add(0, f + 34, ulen);
			if (csum_fold(s) != 0xffff)
				return VHU_CHECK_BAD_CSUM;
		}
	}
	return VHU_CHECK_OK;
}

int vhu_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

void vhu_fmt_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
}
