/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * dp_fast: the per-frame path of a polling core.
 *
 * TX: guest chain -> [wire header in daemon memory, guest frame in place]
 * as one UD send to the FDB's destination or the segment's multicast
 * group; the chain goes back to the used ring when its send completes.
 * RX: receive WRs scatter GRH + wire header into daemon scratch and the
 * frame straight into guest chains; the daemon then writes the virtio-net
 * header and the used ring.
 *
 * No allocation, no locks, no logging per frame: counters only. Errors
 * that break a port (a hostile ring) are logged once, when they happen.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <time.h>

#include "dp_int.h"
#include "ibvhost/log.h"
#include "ibvhost/wire.h"

#define TX_MASK (DP_TX_INFLIGHT - 1)
#define RX_MASK (DP_RX_WRS - 1)
#define POOL_MASK (DP_RX_POOL - 1)

_Static_assert(sizeof(struct vq_seg) == sizeof(struct ibv_sge) &&
		       offsetof(struct vq_seg, addr) ==
			       offsetof(struct ibv_sge, addr) &&
		       offsetof(struct vq_seg, len) ==
			       offsetof(struct ibv_sge, length) &&
		       offsetof(struct vq_seg, lkey) ==
			       offsetof(struct ibv_sge, lkey),
	       "a segment list is handed to the HCA as an SGE list");
_Static_assert((DP_TX_INFLIGHT & TX_MASK) == 0, "power of two");
_Static_assert((DP_RX_WRS & RX_MASK) == 0, "power of two");
_Static_assert((DP_RX_POOL & POOL_MASK) == 0, "power of two");

static inline uint64_t wr_id(struct dp_port *d, unsigned kind, uint16_t idx)
{
	return (uint64_t)(uintptr_t)d | kind |
	       ((uint64_t)idx << DP_WR_IDX_SHIFT);
}

static inline uint8_t *tx_hdr(struct dp_port *d, uint16_t idx)
{
	return d->scratch + (size_t)(idx & TX_MASK) * DP_SCRATCH_SLOT;
}

static inline uint8_t *rx_hdr(struct dp_port *d, uint16_t idx)
{
	return d->scratch + (size_t)(DP_TX_INFLIGHT + (idx & RX_MASK)) *
				    DP_SCRATCH_SLOT;
}

/* A guest broke its ring: stop the port until the frontend restarts the
 * device. Logged once; the daemon and other ports carry on. */
static void port_break(struct dp_port *d, const char *queue, enum vq_err err)
{
	DP_COUNT(d, drop_bad_desc, 1);
	if (d->broken)
		return;
	d->broken = true;
	log_err("port %s: %s queue: %s: queue stopped until the frontend "
		"restarts the device", d->name, queue, vq_strerror(err));
	if (d->state == DP_RUNNING)
		dp_port_begin_drain(d);
}

/* ---- TX ------------------------------------------------------------------- */

static void tx_return(struct dp_port *d, uint16_t head)
{
	vq_used_put(&d->g.txq, head, 0);
	d->tx_dirty = true;
}

/* SGE0 of a send: the wire header followed by the frame's Ethernet
 * header, both in daemon memory. The Ethernet header is copied out of the
 * guest before it is checked (anti-spoofing) and looked up (FDB), so what
 * was checked is what goes on the wire even if the guest rewrites its
 * buffer meanwhile; the rest of the frame goes zero-copy. */
#define TX_HDR_LEN (WIRE_HDR_LEN + VNET_ETH_HLEN)

/* Fill the SGEs of one send: `hlen` bytes of daemon header in the slot's
 * scratch, then `len` bytes of the frame's segments from `start`.
 * Returns the SGE count. */
static unsigned tx_sges(struct dp_port *d, uint16_t slot, uint32_t hlen,
			const struct vq_seg *segs, uint32_t nseg, uint32_t start,
			uint32_t len, struct ibv_sge *sge)
{
	uint32_t n = 1, k = 0, off = start, left = len;

	sge[0].addr = (uintptr_t)tx_hdr(d, slot);
	sge[0].length = hlen;
	sge[0].lkey = d->scratch_mr->lkey;
	while (k < nseg && off >= segs[k].len) /* skip to `start` */
		off -= segs[k++].len;
	for (; k < nseg && left > 0 && n < d->caps.send_sge; k++, n++) {
		uint32_t take = segs[k].len - off;

		if (take > left)
			take = left;
		sge[n].addr = segs[k].addr + off;
		sge[n].length = take;
		sge[n].lkey = segs[k].lkey;
		left -= take;
		off = 0;
	}
	if (left == 0)
		return n;
	/* More pieces than the HCA gathers: copy, counted. */
	uint8_t *b = d->bounce + (size_t)(slot & TX_MASK) * dp.dev->mtu_bytes;

	memcpy(b, tx_hdr(d, slot), hlen);
	vq_segs_read(segs, nseg, start, b + hlen, len);
	sge[0].addr = (uintptr_t)b;
	sge[0].length = hlen + len;
	DP_COUNT(d, bounce_copies, 1);
	return 1;
}

/* Messages a frame of `len` bytes takes: the first carries
 * mtu - WIRE_HDR_LEN frame bytes, each continuation mtu - WIRE_CONT_LEN. */
static inline uint32_t tx_messages(uint32_t len)
{
	uint32_t first = dp.dev->mtu_bytes - WIRE_HDR_LEN;
	uint32_t cont = dp.dev->mtu_bytes - WIRE_CONT_LEN;

	return len <= first ? 1 : 1 + (len - first + cont - 1) / cont;
}

/* One frame as 1..n send WRs from slot d->tx_head on: a whole frame, or
 * a first fragment and continuations, all pointing at the guest's frame
 * in place. `f` holds the frame after its Ethernet header (which the
 * caller copied behind the wire header of the first slot). Returns the
 * WRs written. */
static unsigned tx_build(struct dp_port *d, const struct vnet_tx *tx,
			 const struct vq_seg *f, uint32_t nf, uint16_t head,
			 struct ibv_send_wr *wrs,
			 struct ibv_sge (*sges)[DP_SGE_WANTED],
			 struct ibv_ah *ah, uint32_t qpn)
{
	uint32_t nmsg = tx_messages(tx->frame_len);
	uint32_t first = dp.dev->mtu_bytes - WIRE_HDR_LEN;
	uint32_t cont = dp.dev->mtu_bytes - WIRE_CONT_LEN;
	uint32_t done = 0; /* frame bytes placed */

	for (uint32_t i = 0; i < nmsg; i++) {
		uint16_t slot = d->tx_head;
		uint8_t *hdr = tx_hdr(d, slot);
		struct ibv_send_wr *wr = &wrs[i];
		uint32_t hlen, len, start;

		if (i == 0) {
			len = tx->frame_len < first ? tx->frame_len : first;
			if (nmsg == 1)
				wire_hdr_build(hdr, &tx->off);
			else
				wire_first_build(hdr, &tx->off, d->tx_frame_id,
						 tx->frame_len);
			hlen = TX_HDR_LEN;
			start = 0;
			len -= VNET_ETH_HLEN;
		} else {
			len = tx->frame_len - done < cont ? tx->frame_len - done
							  : cont;
			wire_cont_build(hdr, d->tx_frame_id, done);
			hlen = WIRE_CONT_LEN;
			start = done - VNET_ETH_HLEN;
		}
		wr->num_sge = (int)tx_sges(d, slot, hlen, f, nf, start, len,
					   sges[i]);
		done += i == 0 ? len + VNET_ETH_HLEN : len;
		wr->sg_list = sges[i];
		wr->wr_id = wr_id(d, DP_WR_KIND_TX, slot);
		wr->opcode = IBV_WR_SEND;
		wr->send_flags = 0;
		wr->wr.ud.ah = ah;
		wr->wr.ud.remote_qpn = qpn;
		wr->wr.ud.remote_qkey = d->qkey;
		wr->next = &wrs[i + 1];
		d->tx_ids[slot & TX_MASK] =
			i + 1 == nmsg ? head : DP_TX_NO_CHAIN;
		d->tx_head++;
	}
	if (nmsg > 1) {
		d->tx_frame_id++;
		DP_COUNT(d, tx_fragments, nmsg);
	}
	return nmsg;
}

static unsigned port_tx(struct dp_port *d)
{
	struct ibv_send_wr wrs[DP_TX_WRS], *bad;
	struct ibv_sge sges[DP_TX_WRS][DP_SGE_WANTED];
	struct vq_seg segs[DP_TX_SEGS];
	uint16_t avail, room, n, nwr = 0, frames = 0;
	uint64_t bytes = 0, flooded = 0;
	enum vq_err err;

	err = vq_avail_count(&d->g.txq, &avail);
	if (err) {
		port_break(d, "TX", err);
		return 0;
	}
	if (avail == 0)
		return 0;
	/* Fair share of the core: credit per round, chains cost what they
	 * walked (see DP_TX_DESC_QUANTUM). */
	d->tx_credit += DP_TX_DESC_QUANTUM;
	if (d->tx_credit > DP_TX_DESC_QUANTUM)
		d->tx_credit = DP_TX_DESC_QUANTUM;
	if (d->tx_credit <= 0) {
		DP_COUNT(d, tx_deferred, 1);
		return 1; /* work is waiting: not idle */
	}
	room = (uint16_t)(DP_TX_INFLIGHT - (uint16_t)(d->tx_head - d->tx_tail));
	n = avail < room ? avail : room;
	if (n > DP_BURST)
		n = DP_BURST;

	for (uint16_t i = 0; i < n; i++) {
		uint16_t head = vq_avail_head(&d->g.txq, i);
		uint16_t slot = d->tx_head;

		if (d->tx_credit <= 0) {
			n = i; /* the rest waits for the next rounds */
			break;
		}
		uint8_t *eth = tx_hdr(d, slot) + WIRE_HDR_LEN;
		struct vq_chain chain = { .ndesc = 0 };
		struct vnet_tx tx;

		err = vq_walk_chain(&d->g.txq, &d->g.mem, head, VQ_DIR_TX, segs,
				    DP_TX_SEGS, &chain);
		d->tx_credit -= chain.ndesc ? chain.ndesc : 1;
		if (err) {
			n = i; /* the bad chain is not consumed */
			port_break(d, "TX", err);
			break;
		}
		err = vnet_tx_parse(&d->g.vnet, segs, chain.nseg, &tx);
		if (err) {
			DP_COUNT(d, drop_bad_desc, 1);
			tx_return(d, head);
			continue;
		}
		if (tx.frame_len > d->max_frame) {
			DP_COUNT(d, drop_too_big, 1);
			tx_return(d, head);
			continue;
		}
		uint32_t nmsg = tx_messages(tx.frame_len);

		if (nwr + nmsg > DP_TX_WRS ||
		    (uint16_t)(d->tx_head - d->tx_tail) + nmsg > DP_TX_INFLIGHT) {
			n = i; /* no room for its fragments: next round */
			break;
		}
		/* vnet_tx_parse guarantees an Ethernet header's worth. */
		struct vq_seg *f = &segs[tx.first];
		uint32_t nf = chain.nseg - tx.first;

		if (f->len > VNET_ETH_HLEN) {
			memcpy(eth, (const void *)(uintptr_t)f->addr,
			       VNET_ETH_HLEN);
			f->addr += VNET_ETH_HLEN;
			f->len -= VNET_ETH_HLEN;
		} else {
			vq_segs_read(f, nf, 0, eth, VNET_ETH_HLEN);
			uint32_t k = vq_segs_advance(f, nf, VNET_ETH_HLEN);

			f += k;
			nf -= k;
		}
		__atomic_signal_fence(__ATOMIC_SEQ_CST); /* eth is ours now */
		if (d->has_mac && memcmp(eth + 6, d->mac, 6) != 0) {
			DP_COUNT(d, drop_spoofed, 1);
			tx_return(d, head);
			continue;
		}

		struct fdb_entry *e = NULL;
		struct ibv_ah *ah;
		uint32_t qpn;

		if (!(eth[0] & 1))
			e = fdb_lookup(d->fdb, eth);
		if (e && e->ah) {
			ah = e->ah;
			qpn = e->addr.qpn;
		} else {
			ah = d->seg->mc->ah;
			qpn = IB_MCAST_QPN;
			flooded++;
		}
		nwr = (uint16_t)(nwr + tx_build(d, &tx, f, nf, head, &wrs[nwr],
						&sges[nwr], ah, qpn));
		bytes += tx.frame_len;
		frames++;
	}
	vq_avail_consume(&d->g.txq, n);
	if (nwr == 0)
		return n;

	/* One completion per burst: sends complete in order, so it returns
	 * every chain of the burst. */
	wrs[nwr - 1].next = NULL;
	wrs[nwr - 1].send_flags = IBV_SEND_SIGNALED;
	int rc = ibv_post_send(d->qp, wrs, &bad);

	if (rc) {
		/* The QP refused: recover it; the refused chains go back
		 * (a frame whose last fragment was refused with them). */
		uint16_t refused = (uint16_t)(&wrs[nwr] - bad);

		d->tx_head = (uint16_t)(d->tx_head - refused);
		for (uint16_t k = 0; k < refused; k++) {
			uint16_t id = d->tx_ids[(d->tx_head + k) & TX_MASK];

			if (id != DP_TX_NO_CHAIN) {
				tx_return(d, id);
				frames--;
			}
		}
		if (d->state == DP_RUNNING)
			dp_port_begin_drain(d);
	}
	DP_COUNT(d, tx_frames, frames);
	DP_COUNT(d, tx_bytes, bytes);
	DP_COUNT(d, flooded, flooded);
	return n;
}

static void tx_complete(struct dp_port *d, const struct ibv_wc *wc,
			uint16_t idx)
{
	if (wc->status != IBV_WC_SUCCESS && wc->status != IBV_WC_WR_FLUSH_ERR &&
	    d->state == DP_RUNNING) {
		log_warn("port %s: send failed: %s; recovering the QP", d->name,
			 ibv_wc_status_str(wc->status));
		dp_port_begin_drain(d);
	}
	/* Ignore a completion for slots already returned. */
	if ((uint16_t)(idx - d->tx_tail) >= (uint16_t)(d->tx_head - d->tx_tail))
		return;
	while (d->tx_tail != (uint16_t)(idx + 1)) {
		uint16_t id = d->tx_ids[d->tx_tail & TX_MASK];

		if (id != DP_TX_NO_CHAIN) /* a frame's last (or only) send */
			tx_return(d, id);
		d->tx_tail++;
	}
}

/* A port that starts has a new QP: peers that learned its MAC before
 * (this daemon restarted, or the port did) would send to a QP that is
 * gone until their entry ages out. One frame to the segment's group
 * from the configured MAC, flagged so that receivers learn it and
 * deliver nothing. Its own send slot (send_wr = DP_TX_INFLIGHT + 1),
 * signaled, its completion ignored. */
void dp_port_announce(struct dp_port *d)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct wire_offload off = { WIRE_F_ANNOUNCE, 0, 0 };
	uint8_t *eth = d->announce + WIRE_HDR_LEN;

	if (!d->has_mac || d->state != DP_RUNNING)
		return;
	memset(d->announce, 0, DP_ANNOUNCE_LEN);
	wire_hdr_build(d->announce, &off);
	memset(eth, 0xff, 6);
	memcpy(eth + 6, d->mac, 6);
	eth[12] = 0x80; /* RARP, as a guest's own announcement would be */
	eth[13] = 0x35;
	sge = (struct ibv_sge){ .addr = (uintptr_t)d->announce,
				.length = DP_ANNOUNCE_LEN,
				.lkey = d->scratch_mr->lkey };
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id(d, DP_WR_KIND_ANNOUNCE, 0);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.ud.ah = d->seg->mc->ah;
	wr.wr.ud.remote_qpn = IB_MCAST_QPN;
	wr.wr.ud.remote_qkey = d->qkey;
	if (ibv_post_send(d->qp, &wr, &bad) == 0)
		DP_COUNT(d, announces, 1);
	else
		log_warn("port %s: could not announce its MAC: %s", d->name,
			 strerror(errno));
}

/* ---- RX ------------------------------------------------------------------- */

/* A used RX entry: no longer held in the crash record. Cleared before the
 * used index is published, so a crash in between loses the buffer, never
 * hands it out twice (struct dp_rx_persist). */
static inline void rx_used_put(struct dp_port *d, uint16_t id, uint32_t len)
{
	d->rxp->held[id & (VQ_RING_MAX_SIZE - 1)] = 0;
	vq_used_put(&d->g.rxq, id, len);
}

static inline void spare_push(struct dp_port *d, uint16_t h)
{
	d->spare[d->spare_head++ & POOL_MASK] = h;
}

static inline uint16_t spare_count(const struct dp_port *d)
{
	return (uint16_t)(d->spare_head - d->spare_tail);
}

/* The next chain for a receive WR: a spare one, else one from the ring.
 * Returns the pool index, or -1 (ring empty) or -2 (ring broken). */
static int rx_next_head(struct dp_port *d, uint16_t *avail_left)
{
	struct dp_rx_head *h;
	struct vq_chain chain;
	uint16_t idx, head;
	enum vq_err err;

	if (spare_count(d))
		return d->spare[d->spare_tail++ & POOL_MASK];
	if (*avail_left == 0 || d->n_free == 0)
		return -1;
	idx = d->free_list[--d->n_free];
	h = &d->pool[idx];
	head = vq_avail_head(&d->g.rxq, 0);
	h->avail_pos = d->g.rxq.last_avail_idx;
	err = vq_walk_chain(&d->g.rxq, &d->g.mem, head, VQ_DIR_RX, h->segs,
			    DP_RX_HEAD_SEGS, &chain);
	vq_avail_consume(&d->g.rxq, 1);
	(*avail_left)--;
	if (err == VQ_OK && chain.len < d->g.vnet.hdr_len)
		err = VQ_ERR_HDR_SHORT;
	if (err) {
		d->free_list[d->n_free++] = idx;
		port_break(d, "RX", err);
		return -2;
	}
	h->id = head;
	d->rxp->held[head] = 1; /* before the record says it was taken */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	d->rxp->last_avail = d->g.rxq.last_avail_idx;
	h->nseg = (uint8_t)chain.nseg;
	h->len = chain.len;
	/* Where the frame starts, past the header (usually in segs[0]). */
	uint32_t skip = d->g.vnet.hdr_len;
	uint8_t k = 0;

	while (k < h->nseg && skip >= h->segs[k].len)
		skip -= h->segs[k++].len;
	h->body_seg = k;
	h->body_off = skip;
	return idx;
}

/* Give a chain taken for an unfinished WR back, in front of the spares
 * (it was taken from the front). */
static inline void rx_unget(struct dp_port *d, uint16_t hi)
{
	d->spare[--d->spare_tail & POOL_MASK] = hi;
}

/* Append a chain's segments from (seg, off) to an SGE list, at most
 * `room` SGEs; returns the bytes added, *n the SGEs. */
static uint32_t rx_add_sges(struct ibv_sge *sge, const struct dp_rx_head *h,
			    uint32_t seg, uint32_t off, uint32_t room,
			    uint32_t *n)
{
	uint32_t bytes = 0;

	for (*n = 0; seg < h->nseg && *n < room; seg++, (*n)++) {
		sge[*n].addr = h->segs[seg].addr + off;
		sge[*n].length = h->segs[seg].len - off;
		sge[*n].lkey = h->segs[seg].lkey;
		bytes += sge[*n].length;
		off = 0;
	}
	return bytes;
}

/* Fill one receive WR with guest chains: as many as the segment's frame
 * needs (mergeable buffers smaller than a frame), else one. A WR whose
 * chains hold less than a frame is still posted, so a guest that posts
 * small buffers (allowed without MRG_RXBUF) gets every frame that fits;
 * the discard SGE after the guest's takes the rest of a longer message,
 * which is then dropped and counted. Returns false when no chain is
 * left (or the ring broke). */
static bool rx_fill_wr(struct dp_port *d, struct dp_rx_wr *w,
		       struct ibv_sge *sge, uint32_t *nsge, uint16_t *avail)
{
	/* One message's worth of frame: a fragment of a larger frame (a
	 * continuation's first WIRE_HOLE_LEN bytes go to scratch) or all
	 * of a smaller one. */
	uint32_t msg_max = dp.dev->mtu_bytes - WIRE_HDR_LEN;
	uint32_t need = d->g.vnet.hdr_len +
			(d->max_frame < msg_max ? d->max_frame : msg_max);
	/* SGE0 (GRH + wire header) and the discard SGE are ours. */
	uint32_t room = d->caps.recv_sge - 2, have = 0;

	*nsge = 1;
	w->nheads = 0;
	while (have < need && room > 0 && w->nheads < DP_RX_WR_HEADS &&
	       (w->nheads == 0 || d->g.mrg_rxbuf)) {
		int hi = rx_next_head(d, avail);

		if (hi < 0)
			break;
		const struct dp_rx_head *h = &d->pool[hi];
		uint32_t seg = w->nheads ? 0 : h->body_seg;
		uint32_t off = w->nheads ? 0 : h->body_off;
		uint32_t n, bytes;

		if (w->nheads > 0 && h->nseg > room) {
			rx_unget(d, (uint16_t)hi); /* for the next WR */
			break;
		}
		bytes = rx_add_sges(&sge[*nsge], h, seg, off, room, &n);
		*nsge += n;
		room -= n;
		/* cap counts the header space of the first chain, as the
		 * used length does. */
		w->cap[w->nheads] = w->nheads ? bytes
					       : d->g.vnet.hdr_len + bytes;
		have += w->cap[w->nheads];
		w->heads[w->nheads++] = (uint16_t)hi;
	}
	if (w->nheads == 0)
		return false;
	if (have < need && d->g.mrg_rxbuf && w->nheads < DP_RX_WR_HEADS &&
	    room > 0 && d->rx_head != d->rx_tail) {
		/* Mergeable chains that do not make a frame yet, the ring
		 * dry, other WRs posted: keep them for the next round
		 * rather than post a WR that cannot take a full frame. */
		while (w->nheads > 0)
			rx_unget(d, w->heads[--w->nheads]);
		return false;
	}
	sge[*nsge].addr = (uintptr_t)d->discard;
	sge[*nsge].length = d->discard_len;
	sge[*nsge].lkey = d->scratch_mr->lkey;
	(*nsge)++;
	return true;
}

/* Post receive WRs while guest chains and WR slots last. */
unsigned dp_port_refill_rx(struct dp_port *d)
{
	struct ibv_recv_wr wrs[DP_BURST], *bad;
	struct ibv_sge sges[DP_BURST][DP_SGE_WANTED];
	uint16_t avail, nwr = 0;

	if (d->state != DP_RUNNING)
		return 0;
	if (vq_avail_count(&d->g.rxq, &avail) != VQ_OK) {
		port_break(d, "RX", VQ_ERR_AVAIL_IDX);
		return 0;
	}
	while ((avail > 0 || spare_count(d) > 0) && nwr < DP_BURST &&
	       (uint16_t)(d->rx_head - d->rx_tail) < DP_RX_WRS) {
		uint16_t slot = d->rx_head;
		struct ibv_sge *sge = sges[nwr];
		uint32_t nsge;

		if (!rx_fill_wr(d, &d->rx[slot & RX_MASK], sge, &nsge, &avail))
			break;
		sge[0].addr = (uintptr_t)rx_hdr(d, slot);
		sge[0].length = IB_GRH_LEN + WIRE_HDR_LEN;
		sge[0].lkey = d->scratch_mr->lkey;
		wrs[nwr].wr_id = wr_id(d, DP_WR_KIND_RX, slot);
		wrs[nwr].sg_list = sge;
		wrs[nwr].num_sge = (int)nsge;
		wrs[nwr].next = &wrs[nwr + 1];
		d->rx_head++;
		nwr++;
	}
	if (nwr == 0) {
		bool starved = d->rx_head == d->rx_tail;

		if (starved && !d->rx_starved && d->state == DP_RUNNING)
			DP_COUNT(d, rx_starved, 1);
		d->rx_starved = starved;
		return 0;
	}
	d->rx_starved = false;
	wrs[nwr - 1].next = NULL;
	if (ibv_post_recv(d->qp, wrs, &bad) != 0) {
		uint16_t refused = (uint16_t)(&wrs[nwr] - bad);

		/* Keep the refused WRs' chains, newest last; recover. */
		for (uint16_t k = 0; k < refused; k++) {
			struct dp_rx_wr *w =
				&d->rx[(uint16_t)(d->rx_head - 1 - k) & RX_MASK];

			for (unsigned i = w->nheads; i > 0; i--)
				rx_unget(d, w->heads[i - 1]);
		}
		d->rx_head = (uint16_t)(d->rx_head - refused);
		nwr = (uint16_t)(nwr - refused);
		if (d->state == DP_RUNNING)
			dp_port_begin_drain(d);
	}
	return nwr;
}

/* False if smac is a local port's configured MAC and the frame did not
 * come from that port's QP: a remote peer impersonating a guest of this
 * host (it would pull that guest's unicast traffic onto the fabric). */
static bool rx_src_allowed(const struct dp_port *d, const struct ibv_wc *wc,
			   const uint8_t *sgid, const uint8_t smac[6])
{
	uint64_t key = dp_local_mac_key(smac);
	bool from_here = dp.dev->roce
				 ? sgid && memcmp(sgid, dp.dev->gid.raw, 16) == 0
				 : wc->slid == dp.dev->lid;

	for (unsigned i = 0; i < CFG_PORTS_MAX; i++) {
		const struct dp_local_mac *l = &d->seg->local[i];

		if (__atomic_load_n(&l->key, __ATOMIC_ACQUIRE) == key)
			return from_here && l->qpn == wc->src_qp;
	}
	return true;
}

/* Learn (or refresh) the sender; false if the frame must be dropped. */
static bool rx_learn(struct dp_port *d, const struct ibv_wc *wc,
		     const uint8_t *sgid, const uint8_t smac[6])
{
	struct fdb_addr a = { .lid = wc->slid, .qpn = wc->src_qp };
	uint64_t now = d->core->now_s;
	struct fdb_entry *e;
	void *stale = NULL;

	/* Same peer as the last frame, within the same second: nothing to
	 * learn or refresh. (On RoCE, LID 0: the GID is compared too.) */
	if (d->learned.when_s == now && d->learned.qpn == wc->src_qp &&
	    d->learned.lid == wc->slid &&
	    memcmp(d->learned.mac, smac, 6) == 0 && !dp.dev->roce)
		return true;
	if (!rx_src_allowed(d, wc, sgid, smac))
		return false;
	if (sgid)
		memcpy(a.gid, sgid, 16);
	enum fdb_learn_result r = fdb_learn(d->fdb, smac, &a, now, &e, &stale);

	if (stale)
		ibv_destroy_ah(stale);
	if (r == FDB_LEARN_NEW || r == FDB_LEARN_MOVED)
		e->ah = ib_ah_create(dp.dev, a.lid, sgid);
	memcpy(d->learned.mac, smac, 6);
	d->learned.lid = wc->slid;
	d->learned.qpn = wc->src_qp;
	d->learned.when_s = now;
	return true;
}

/* The received frame's segments (past the virtio-net header) into out[]
 * (the slow paths: a source MAC or checksum that spans chains). */
static uint32_t rx_frame_segs(const struct dp_port *d, const struct dp_rx_wr *w,
			      struct vq_seg *out, uint32_t max)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < w->nheads; i++) {
		const struct dp_rx_head *h = &d->pool[w->heads[i]];
		uint32_t seg = i ? 0 : h->body_seg, off = i ? 0 : h->body_off;

		for (; seg < h->nseg && n < max; seg++, n++) {
			out[n] = h->segs[seg];
			out[n].addr += off;
			out[n].len -= off;
			off = 0;
		}
	}
	return n;
}

/* A message the guest's buffers cannot take, or longer than the
 * segment's frame: dropped, counted; the sender is named once per port
 * (all hosts of a segment must agree on its MTU). */
static void rx_too_big(struct dp_port *d, const struct ibv_wc *wc,
		       uint32_t frame_len)
{
	DP_COUNT(d, drop_too_big, 1);
	if (frame_len > d->max_frame && !d->mtu_mismatch_logged) {
		d->mtu_mismatch_logged = true;
		log_warn("port %s: a %u-byte frame from LID %u QPN 0x%x exceeds "
			 "this port's %u-byte frames: does its host use a "
			 "larger segment MTU? (dropped, counted in "
			 "drop_too_big; logged once)", d->name, frame_len,
			 wc->slid, wc->src_qp, d->max_frame);
	}
}

/* ---- reassembly of fragmented frames ---- */

static bool reasm_sender_is(const struct dp_reasm *r, const struct ibv_wc *wc,
			    const uint8_t *sgid)
{
	return r->active && r->qpn == wc->src_qp && r->lid == wc->slid &&
	       (!sgid || memcmp(r->gid, sgid, 16) == 0);
}

static void reasm_end(struct dp_port *d, struct dp_reasm *r)
{
	r->active = false;
	r->nheads = 0;
	d->n_reasm--;
}

/* Give up a frame: its chains go back to the spares, unused. A frame
 * already refused (too big) is not counted twice. */
static void reasm_drop(struct dp_port *d, struct dp_reasm *r)
{
	for (unsigned i = 0; i < r->nheads; i++)
		spare_push(d, r->heads[i]);
	if (!r->discard)
		DP_COUNT(d, drop_reasm, 1);
	reasm_end(d, r);
}

/* Frames that waited too long for a fragment (a sender that died or a
 * fragment lost): their buffers are needed. */
static void reasm_expire(struct dp_port *d, uint64_t now_s)
{
	for (unsigned i = 0; i < DP_REASM_SLOTS && d->n_reasm; i++) {
		struct dp_reasm *r = &d->reasm[i];

		if (r->active && now_s - r->since_s >= DP_REASM_TIMEOUT_S)
			reasm_drop(d, r);
	}
}

/* Every frame in reassembly given up (the QP is reset or the device
 * stops: fragments still to come are lost). */
static void reasm_drop_all(struct dp_port *d)
{
	for (unsigned i = 0; i < DP_REASM_SLOTS && d->n_reasm; i++)
		if (d->reasm[i].active)
			reasm_drop(d, &d->reasm[i]);
}

/* The segments of a reassembled frame (past the first chain's
 * virtio-net header), for a checksum the guest cannot complete. */
static uint32_t reasm_segs(const struct dp_port *d, const struct dp_reasm *r,
			   struct vq_seg *out, uint32_t max)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < r->nheads && n < max; i++) {
		const struct dp_rx_head *h = &d->pool[r->heads[i]];
		uint32_t off = i ? 0 : d->g.vnet.hdr_len;
		uint32_t left = r->used[i] - off;

		for (unsigned k = 0; k < h->nseg && left > 0 && n < max; k++) {
			if (off >= h->segs[k].len) {
				off -= h->segs[k].len;
				continue;
			}
			out[n] = h->segs[k];
			out[n].addr += off;
			out[n].len -= off;
			if (out[n].len > left)
				out[n].len = left;
			left -= out[n].len;
			off = 0;
			n++;
		}
	}
	return n;
}

/* The last fragment is in: one virtio-net header, the used entries. */
static void reasm_finish(struct dp_port *d, struct dp_reasm *r)
{
	struct dp_rx_head *first = &d->pool[r->heads[0]];
	struct wire_offload off = r->off;

	if ((off.flags & WIRE_F_NEEDS_CSUM) && !d->g.vnet.guest_csum) {
		struct vq_seg fseg[DP_REASM_HEADS * DP_RX_HEAD_SEGS];
		uint32_t nf = reasm_segs(d, r, fseg,
					 sizeof(fseg) / sizeof(fseg[0]));

		if (vnet_csum_complete(fseg, nf, r->frame_len, off.csum_start,
				       off.csum_offset) != VQ_OK) {
			reasm_drop(d, r); /* the guest would drop it */
			return;
		}
		DP_COUNT(d, csum_computed, 1);
		off.flags = 0;
	}
	vnet_rx_write_hdr(&d->g.vnet, first->segs, first->nseg, &off,
			  r->frame_len, r->nheads);
	for (unsigned i = 0; i < r->nheads; i++) {
		rx_used_put(d, d->pool[r->heads[i]].id, r->used[i]);
		d->free_list[d->n_free++] = r->heads[i];
	}
	d->rx_dirty = true;
	reasm_end(d, r);
	DP_COUNT(d, rx_frames, 1);
	DP_COUNT(d, rx_bytes, r->frame_len);
	DP_COUNT(d, rx_reassembled, 1);
}

/* A frame's first fragment landed in w's chains (header room, then its
 * first m->len bytes). Keeps the chains it filled; false if the frame
 * cannot be taken (the caller keeps the WR's chains). */
static bool rx_first(struct dp_port *d, struct dp_rx_wr *w,
		     const struct ibv_wc *wc, const uint8_t *sgid,
		     const struct wire_msg *m)
{
	uint32_t used[DP_RX_WR_HEADS];
	struct dp_reasm *r = NULL, *oldest = NULL;
	uint32_t h = d->g.vnet.hdr_len;
	/* Mergeable buffers come with a WIRE_HOLE_LEN-byte header: later
	 * fragments then fill their own buffers in place. */
	bool copy = !d->g.mrg_rxbuf || h != WIRE_HOLE_LEN;
	uint16_t nb;

	if (m->frame_len > d->max_frame) {
		nb = 0;
	} else if (!copy) {
		nb = vnet_rx_spread(w->cap, w->nheads, h + m->len, used);
	} else {
		/* One buffer takes the whole frame; the fragments after
		 * this one are copied into it. */
		nb = w->cap[0] >= h + m->frame_len ? 1 : 0;
		used[0] = h + m->frame_len;
	}
	/* The sender's frame before this one never completed. */
	for (unsigned i = 0; i < DP_REASM_SLOTS; i++) {
		struct dp_reasm *x = &d->reasm[i];

		if (reasm_sender_is(x, wc, sgid))
			reasm_drop(d, x);
		if (!x->active && !r)
			r = x;
		if (x->active && (!oldest || x->since_s < oldest->since_s))
			oldest = x;
	}
	if (!r) { /* every slot busy: the oldest frame gives way */
		reasm_drop(d, oldest);
		r = oldest;
	}
	*r = (struct dp_reasm){
		.active = true,
		.copy = copy,
		.discard = nb == 0,
		.frame_id = m->frame_id,
		.lid = wc->slid,
		.qpn = wc->src_qp,
		.frame_len = m->frame_len,
		.next = m->len,
		.since_s = d->core->now_s,
		.off = m->off,
		.nheads = nb,
	};
	if (sgid)
		memcpy(r->gid, sgid, 16);
	d->n_reasm++;
	if (nb == 0) {
		/* Too big for this guest: counted once; the continuations
		 * are passed over quietly. */
		rx_too_big(d, wc, m->frame_len);
		return false;
	}
	for (unsigned i = 0; i < nb; i++) {
		r->heads[i] = w->heads[i];
		r->used[i] = used[i];
	}
	for (unsigned i = nb; i < w->nheads; i++)
		spare_push(d, w->heads[i]);
	DP_COUNT(d, rx_fragments, 1);
	return true;
}

/* A continuation: its first WIRE_HOLE_LEN bytes are in scratch (`lead`),
 * the rest in w's chains after the first chain's header room. */
static void rx_cont(struct dp_port *d, struct dp_rx_wr *w,
		    const struct ibv_wc *wc, const uint8_t *sgid,
		    const struct wire_msg *m, const uint8_t *lead)
{
	struct dp_rx_head *first = &d->pool[w->heads[0]];
	struct dp_reasm *r = NULL;
	uint32_t nlead = m->len < WIRE_HOLE_LEN ? m->len : WIRE_HOLE_LEN;

	for (unsigned i = 0; i < DP_REASM_SLOTS && !r; i++)
		if (reasm_sender_is(&d->reasm[i], wc, sgid))
			r = &d->reasm[i];
	if (!r) { /* its first fragment was lost or refused */
		DP_COUNT(d, drop_reasm, 1);
		goto keep_all;
	}
	if (r->frame_id != m->frame_id || r->next != m->offset ||
	    m->len > r->frame_len - r->next) {
		if (r->discard)
			reasm_end(d, r);
		else /* lost or out of order: the frame is gone */
			reasm_drop(d, r);
		goto keep_all;
	}
	if (r->discard) { /* a frame refused at its first fragment */
		r->next += m->len;
		if (r->next == r->frame_len)
			reasm_end(d, r);
		goto keep_all;
	}
	if (r->copy && m->len - nlead > w->cap[0] - d->g.vnet.hdr_len) {
		/* The fragment did not fit this WR's buffer (the rest went
		 * to the discard SGE): the frame is incomplete. */
		reasm_drop(d, r);
		goto keep_all;
	}
	if (r->copy) {
		/* Into the first chain, at the fragment's place. */
		struct dp_rx_head *t = &d->pool[r->heads[0]];
		uint32_t at = d->g.vnet.hdr_len + m->offset;
		struct vq_seg src[DP_RX_HEAD_SEGS];
		uint32_t ns = rx_frame_segs(d, w, src, DP_RX_HEAD_SEGS);

		vq_segs_write(t->segs, t->nseg, at, lead, nlead);
		at += nlead;
		for (uint32_t k = 0, left = m->len - nlead; k < ns && left; k++) {
			uint32_t take = src[k].len < left ? src[k].len : left;

			vq_segs_write(t->segs, t->nseg, at,
				      (const void *)(uintptr_t)src[k].addr, take);
			at += take;
			left -= take;
		}
		for (unsigned i = 0; i < w->nheads; i++)
			spare_push(d, w->heads[i]);
		DP_COUNT(d, reasm_copies, 1);
	} else {
		uint32_t used[DP_RX_WR_HEADS];
		/* The first chain's header room is the hole: with mergeable
		 * buffers it is WIRE_HOLE_LEN bytes, so cap[0] counts it. */
		uint16_t nb = vnet_rx_spread(w->cap, w->nheads, m->len, used);

		if (nb == 0 || r->nheads + nb > DP_REASM_HEADS) {
			reasm_drop(d, r);
			goto keep_all;
		}
		vq_segs_write(first->segs, first->nseg, 0, lead, nlead);
		for (unsigned i = 0; i < nb; i++) {
			r->heads[r->nheads] = w->heads[i];
			r->used[r->nheads++] = used[i];
		}
		for (unsigned i = nb; i < w->nheads; i++)
			spare_push(d, w->heads[i]);
	}
	r->next += m->len;
	DP_COUNT(d, rx_fragments, 1);
	if (r->next == r->frame_len)
		reasm_finish(d, r);
	return;

keep_all:
	for (unsigned i = 0; i < w->nheads; i++)
		spare_push(d, w->heads[i]);
}

static void rx_deliver(struct dp_port *d, struct dp_rx_wr *w,
		       const struct ibv_wc *wc, const uint8_t *hdr)
{
	uint32_t used[DP_RX_WR_HEADS];
	struct dp_rx_head *first = &d->pool[w->heads[0]];
	struct vq_seg fseg[DP_RX_WR_HEADS * DP_RX_HEAD_SEGS];
	struct wire_msg m;
	uint32_t frame_len, nf = 0;
	uint8_t smac[6];
	uint16_t nb = 0;

	/* Malformed, from whoever sent it; the QP is fine. A frame's first
	 * message holds at least an Ethernet header. */
	if (wc->byte_len < IB_GRH_LEN ||
	    wire_msg_parse(hdr + IB_GRH_LEN, wc->byte_len - IB_GRH_LEN, &m) !=
		    WIRE_OK ||
	    (m.kind != WIRE_CONT && m.len < VNET_ETH_HLEN) ||
	    (m.kind == WIRE_FIRST && (m.off.flags & WIRE_F_ANNOUNCE))) {
		DP_COUNT(d, drop_bad_wire, 1);
		goto keep_all;
	}
	frame_len = m.frame_len;
	/* The sender's GID, when it sent with a global route (always on
	 * RoCE, where the GRH area may hold an IPv4 header instead). */
	uint8_t sgid_buf[16];
	const uint8_t *sgid = NULL;

	if (wc->wc_flags & IBV_WC_GRH) {
		ib_grh_sgid(hdr, sgid_buf);
		sgid = sgid_buf;
	}
	/* Our own flooded frame, replicated back to us by the group. */
	if (wc->src_qp == d->qp->qp_num &&
	    (dp.dev->roce ? sgid && memcmp(sgid, dp.dev->gid.raw, 16) == 0
			  : wc->slid == dp.dev->lid))
		goto keep_all;
	if (m.kind == WIRE_CONT) {
		rx_cont(d, w, wc, sgid, &m,
			hdr + IB_GRH_LEN + WIRE_CONT_LEN);
		return;
	}

	if (m.kind == WIRE_WHOLE) {
		nb = frame_len <= d->max_frame
			     ? vnet_rx_spread(w->cap, w->nheads,
					      d->g.vnet.hdr_len + frame_len,
					      used)
			     : 0;
		if (nb == 0) {
			rx_too_big(d, wc, frame_len);
			goto keep_all;
		}
	}

	/* The source MAC, for learning: bytes 6..11 of the frame. */
	if (first->body_seg < first->nseg &&
	    first->segs[first->body_seg].len - first->body_off >= 12) {
		memcpy(smac, (const uint8_t *)(uintptr_t)
				     first->segs[first->body_seg].addr +
				     first->body_off + 6, 6);
	} else {
		nf = rx_frame_segs(d, w, fseg, sizeof(fseg) / sizeof(fseg[0]));
		vq_segs_read(fseg, nf, 6, smac, 6);
	}
	if (!rx_learn(d, wc, sgid, smac)) {
		DP_COUNT(d, drop_spoofed, 1);
		goto keep_all;
	}
	if (m.kind == WIRE_FIRST) {
		if (!rx_first(d, w, wc, sgid, &m))
			goto keep_all;
		return;
	}
	struct wire_offload off = m.off;

	if (off.flags & WIRE_F_ANNOUNCE) { /* learnt: nothing to deliver */
		DP_COUNT(d, rx_announces, 1);
		goto keep_all;
	}

	if ((off.flags & WIRE_F_NEEDS_CSUM) && !d->g.vnet.guest_csum) {
		/* The guest cannot take a partial checksum: complete it. */
		if (nf == 0)
			nf = rx_frame_segs(d, w, fseg,
					   sizeof(fseg) / sizeof(fseg[0]));
		if (vnet_csum_complete(fseg, nf, frame_len, off.csum_start,
				       off.csum_offset) == VQ_OK)
			DP_COUNT(d, csum_computed, 1);
		off.flags = 0;
	}
	vnet_rx_write_hdr(&d->g.vnet, first->segs, first->nseg, &off, frame_len,
			  nb);
	for (unsigned i = 0; i < nb; i++) {
		rx_used_put(d, d->pool[w->heads[i]].id, used[i]);
		d->free_list[d->n_free++] = w->heads[i];
	}
	for (unsigned i = nb; i < w->nheads; i++)
		spare_push(d, w->heads[i]);
	d->rx_dirty = true;
	DP_COUNT(d, rx_frames, 1);
	DP_COUNT(d, rx_bytes, frame_len);
	return;

keep_all:
	for (unsigned i = 0; i < w->nheads; i++)
		spare_push(d, w->heads[i]);
}

static void rx_complete(struct dp_port *d, const struct ibv_wc *wc,
			uint16_t idx)
{
	struct dp_rx_wr *w = &d->rx[idx & RX_MASK];

	if (idx != d->rx_tail) /* receives complete in order */
		log_warn("port %s: receive %u completed, expected %u", d->name,
			 idx, d->rx_tail);
	d->rx_tail = (uint16_t)(idx + 1);
	if (wc->status == IBV_WC_SUCCESS) {
		rx_deliver(d, w, wc, rx_hdr(d, idx));
		return;
	}
	for (unsigned i = 0; i < w->nheads; i++)
		spare_push(d, w->heads[i]);
	if (wc->status != IBV_WC_WR_FLUSH_ERR && d->state == DP_RUNNING) {
		log_warn("port %s: receive failed: %s; recovering the QP",
			 d->name, ibv_wc_status_str(wc->status));
		dp_port_begin_drain(d);
	}
}

/* ---- drain and recovery ----------------------------------------------------- */

void dp_port_begin_drain(struct dp_port *d)
{
	d->state = DP_DRAINING;
	ib_qp_to_err(d->qp, d->name);
}

bool dp_port_drained(const struct dp_port *d)
{
	return d->tx_head == d->tx_tail && d->rx_head == d->rx_tail;
}

/* Read or write 8 bytes on one of the guest's eventfds. The frontend
 * shares the fd's open file description: it may clear O_NONBLOCK and
 * fill the counter (a write blocks) or race us to empty it (a read
 * blocks). The main thread interrupts an operation that lasts; the port
 * then stops and never touches its fds again. EAGAIN is fine: a full
 * call counter notifies the guest anyway. */
static void guest_fd_op(struct dp_port *d, int fd, bool wr, const char *what)
{
	uint64_t v = 1;
	ssize_t r;

	if (fd < 0 || d->fds_blocked)
		return;
	__atomic_store_n(&d->core->guest_fd_since, dp_now_ns() | 1,
			 __ATOMIC_RELEASE);
	r = wr ? write(fd, &v, sizeof(v)) : read(fd, &v, sizeof(v));
	__atomic_store_n(&d->core->guest_fd_since, 0, __ATOMIC_RELEASE);
	if (r >= 0 || errno != EINTR)
		return;
	d->fds_blocked = true;
	DP_COUNT(d, drop_bad_desc, 1);
	if (!d->broken) {
		d->broken = true;
		log_err("port %s: the guest's %s fd blocked the polling core "
			"for over %u ms (a blocking eventfd with a full or empty "
			"counter): port stopped until the frontend restarts it",
			d->name, what, DP_GUEST_FD_MAX_MS);
	}
	if (d->state == DP_RUNNING)
		dp_port_begin_drain(d);
}

static void publish(struct dp_port *d)
{
	if (d->tx_dirty) {
		d->tx_dirty = false;
		vq_used_publish(&d->g.txq);
		if (vq_need_call(&d->g.txq))
			guest_fd_op(d, d->g.tx_callfd, true, "TX call");
	}
	if (d->rx_dirty) {
		d->rx_dirty = false;
		d->rxp->used = d->g.rxq.used_idx; /* the record first */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		vq_used_publish(&d->g.rxq);
		if (vq_need_call(&d->g.rxq))
			guest_fd_op(d, d->g.rx_callfd, true, "RX call");
	}
}

/* The device stops: every chain we hold (all of them are spares once the
 * WRs have flushed) was never filled. Those the ring gave us last are
 * handed back by rewinding the avail index, so the guest keeps them as
 * posted buffers; a chain older than one the guest already got back
 * cannot be rewound past and is returned as used with length 0 (only
 * with mergeable buffers smaller than a frame, where a WR's unused chain
 * may wait behind a later WR). */
static void rx_give_back(struct dp_port *d)
{
	/* Held chains by distance from the avail index: bit k-1 = the k-th
	 * newest entry. The tail that can be rewound is at most n long. */
	uint64_t held[DP_RX_POOL / 64] = { 0 };
	uint16_t n = spare_count(d), rewind = 0;

	for (uint16_t i = 0; i < n; i++) {
		const struct dp_rx_head *h =
			&d->pool[d->spare[(d->spare_tail + i) & POOL_MASK]];
		uint16_t k = (uint16_t)(d->g.rxq.last_avail_idx - h->avail_pos);

		if (k >= 1 && k <= DP_RX_POOL)
			held[(k - 1) / 64] |= 1ull << ((k - 1) % 64);
	}
	while (rewind < n && (held[rewind / 64] >> (rewind % 64)) & 1)
		rewind++;
	for (uint16_t i = 0; i < n; i++) {
		const struct dp_rx_head *h =
			&d->pool[d->spare[(d->spare_tail + i) & POOL_MASK]];
		uint16_t k = (uint16_t)(d->g.rxq.last_avail_idx - h->avail_pos);

		if (k == 0 || k > rewind) {
			rx_used_put(d, h->id, 0);
			d->rx_dirty = true;
		}
	}
	vq_avail_rewind(&d->g.rxq, rewind);
	d->spare_tail = d->spare_head;
	DP_COUNT(d, rx_returned_empty, n - rewind);
}

void dp_port_finish_drain(struct dp_port *d)
{
	bool to_idle = d->stop_requested || d->broken;

	reasm_drop_all(d); /* their remaining fragments are lost */
	if (to_idle) {
		rx_give_back(d);
		publish(d);
		/* Stopped cleanly: the frontend gets our indexes. */
		d->rxp->magic = 0;
	}
	if (ib_qp_to_reset(d->qp, d->name) == 0 &&
	    ib_ud_qp_activate(dp.dev, d->qp, d->qkey, d->name) == 0 &&
	    !to_idle) {
		d->qp_recoveries++;
		d->state = DP_RUNNING;
		dp_port_refill_rx(d);
		return;
	}
	d->state = DP_IDLE;
}

/* ---- the polling round ---------------------------------------------------- */

/* Process up to one burst of completions, publish the used rings, finish
 * drains. Returns the completions processed. */
int dp_core_poll_cq(struct dp_core *core)
{
	struct ibv_wc wcs[DP_BURST];
	int n;

	n = ibv_poll_cq(core->cq, DP_BURST, wcs);
	if (n > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		core->now_s = (uint64_t)ts.tv_sec;
	}
	for (int i = 0; i < n; i++) {
		uint64_t id = wcs[i].wr_id;
		struct dp_port *d = (struct dp_port *)(uintptr_t)(
			id & ((1ull << DP_WR_IDX_SHIFT) - 1) &
			~(uint64_t)DP_WR_KIND_MASK);
		uint16_t idx = (uint16_t)(id >> DP_WR_IDX_SHIFT);

		if ((id & DP_WR_KIND_MASK) == DP_WR_KIND_TX)
			tx_complete(d, &wcs[i], idx);
		else if ((id & DP_WR_KIND_MASK) == DP_WR_KIND_RX)
			rx_complete(d, &wcs[i], idx);
		/* An announcement's: nothing to do (d may be gone). */
	}

	for (unsigned i = 0; i < core->n_ports; i++) {
		struct dp_port *d = core->ports[i];

		publish(d);
		if (d->state == DP_DRAINING && dp_port_drained(d)) {
			dp_port_finish_drain(d);
			if (d->state == DP_IDLE && d->stop_requested &&
			    core->pending_stop &&
			    core->pending_stop->port == d) {
				struct dp_request *req = core->pending_stop;

				core->pending_stop = NULL;
				d->stop_requested = false;
				dp_request_complete(req, 0);
			}
		}
	}
	return n < 0 ? 0 : n;
}

bool dp_core_round(struct dp_core *core)
{
	unsigned work = 0;

	for (unsigned i = 0; i < core->n_ports; i++) {
		struct dp_port *d = core->ports[i];

		if (d->state != DP_RUNNING)
			continue;
		if (d->n_reasm) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
			reasm_expire(d, (uint64_t)ts.tv_sec);
		}
		/* Receive credits first: a frame that finds no posted
		 * receive is lost without trace (UD). */
		if ((uint16_t)(d->rx_head - d->rx_tail) <=
		    DP_RX_WRS - DP_RX_REFILL_MIN)
			work += dp_port_refill_rx(d);
		work += port_tx(d);
	}
	return dp_core_poll_cq(core) > 0 || work > 0;
}

/* ---- adaptive polling ------------------------------------------------------ */

static void drain_fd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
}

/* Ask for wake-ups (CQ event, guest kicks, mailbox), re-check for work
 * that raced with the arming, and sleep until one of them fires. */
void dp_core_sleep(struct dp_core *core)
{
	struct pollfd fds[2 + 2 * DP_CORE_PORTS_MAX];
	struct dp_port *kicker[2 + 2 * DP_CORE_PORTS_MAX];
	unsigned n = 0;
	bool pending = false;

	fds[n++] = (struct pollfd){ .fd = core->wake_fd, .events = POLLIN };
	fds[n++] = (struct pollfd){ .fd = core->channel->fd, .events = POLLIN };
	for (unsigned i = 0; i < core->n_ports; i++) {
		struct dp_port *d = core->ports[i];

		if (d->state != DP_RUNNING)
			continue;
		if (d->g.tx_kickfd >= 0) {
			pending |= vq_kick_enable(&d->g.txq);
			kicker[n] = d;
			fds[n++] = (struct pollfd){ .fd = d->g.tx_kickfd,
						    .events = POLLIN };
		}
		/* RX buffers matter only while we could post more. */
		if (d->g.rx_kickfd >= 0 &&
		    (uint16_t)(d->rx_head - d->rx_tail) <=
			    DP_RX_WRS - DP_RX_REFILL_MIN &&
		    d->n_free > 0) {
			pending |= vq_kick_enable(&d->g.rxq);
			kicker[n] = d;
			fds[n++] = (struct pollfd){ .fd = d->g.rx_kickfd,
						    .events = POLLIN };
		}
	}
	if (!pending && ibv_req_notify_cq(core->cq, 0) == 0 &&
	    dp_core_poll_cq(core) == 0 &&
	    !atomic_load_explicit(&core->mailbox, memory_order_acquire)) {
		__atomic_store_n(&core->sleeps, core->sleeps + 1, __ATOMIC_RELAXED);
		if (poll(fds, n, DP_SLEEP_MAX_MS) > 0) {
			if (fds[0].revents) {
				drain_fd(core->wake_fd);
				__atomic_store_n(&core->wakeups_mailbox, core->wakeups_mailbox + 1, __ATOMIC_RELAXED);
			}
			if (fds[1].revents) {
				struct ibv_cq *cq;
				void *ctx;

				if (ibv_get_cq_event(core->channel, &cq,
						     &ctx) == 0)
					ibv_ack_cq_events(cq, 1);
				__atomic_store_n(&core->wakeups_cq, core->wakeups_cq + 1, __ATOMIC_RELAXED);
			}
			for (unsigned i = 2; i < n; i++) {
				if (fds[i].revents) {
					guest_fd_op(kicker[i], fds[i].fd, false,
						    "kick");
					__atomic_store_n(&core->wakeups_kick, core->wakeups_kick + 1, __ATOMIC_RELAXED);
				}
			}
		}
	}
	for (unsigned i = 0; i < core->n_ports; i++) {
		struct dp_port *d = core->ports[i];

		if (d->state == DP_RUNNING) {
			vq_kick_disable(&d->g.txq);
			vq_kick_disable(&d->g.rxq);
		}
	}
}
