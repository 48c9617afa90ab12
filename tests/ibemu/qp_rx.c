/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * qp_rx.c — the receive side of a UD QP: scatter inbox messages into the
 * posted receive WRs (GRH area first, lkey/PD/bounds checked as the HCA's
 * DMA would), producing completions straight into the caller's array.
 * Runs under the receive CQ's lock, inside ibv_poll_cq.
 */
#include <string.h>

#include "ibemu_int.h"

#define STUCK_SLOT_NS 1000000000ull /* writer died inside its copy */

uint64_t ibemu_qp_rx_pending(struct ibemu_qp *qp)
{
	uint64_t c = atomic_load_explicit(&qp->ring->claimed, memory_order_relaxed) &
		     ~IBEMU_CLOSED_BIT;
	return c > qp->rq_head ? c - qp->rq_head : 0;
}

static bool sge_ok(const struct ibemu_qp *qp, const struct ibv_sge *s, uint64_t n)
{
	const struct ibemu_mr *mr = ibemu_mr_lookup(s->lkey);

	return mr && mr->ibv.pd == qp->ibv.pd && (mr->access & IBV_ACCESS_LOCAL_WRITE) &&
	       s->addr >= mr->start && n <= mr->end - s->addr;
}

/* Check every SGE that receives bytes, then copy. */
static enum ibv_wc_status scatter(const struct ibemu_qp *qp,
				  const struct ibemu_recv_wqe *w,
				  const struct slot_hdr *s)
{
	const uint8_t *grh = (const uint8_t *)(s + 1);
	const uint8_t *payload = grh + IBEMU_GRH_LEN;
	uint64_t total = IBEMU_GRH_LEN + (uint64_t)s->len, room = 0;

	for (uint32_t i = 0; i < w->num_sge && room < total; i++) {
		uint64_t n = w->sge[i].length;
		if (n > total - room)
			n = total - room;
		if (n && !sge_ok(qp, &w->sge[i], n))
			return IBV_WC_LOC_PROT_ERR;
		room += n;
	}
	if (room < total)
		return IBV_WC_LOC_LEN_ERR;

	uint64_t pos = 0;
	for (uint32_t i = 0; pos < total; i++) {
		uint8_t *d = (uint8_t *)(uintptr_t)w->sge[i].addr;
		uint64_t n = w->sge[i].length;
		if (n > total - pos)
			n = total - pos;
		if (pos < IBEMU_GRH_LEN) {
			uint64_t g = n < IBEMU_GRH_LEN - pos ? n : IBEMU_GRH_LEN - pos;
			if (s->flags & SLOT_GRH)
				memcpy(d, grh + pos, g);
			d += g;
			pos += g;
			n -= g;
		}
		if (n) {
			memcpy(d, payload + (pos - IBEMU_GRH_LEN), n);
			pos += n;
		}
	}
	return IBV_WC_SUCCESS;
}

/* A slot whose writer never published it: after STUCK_SLOT_NS skip it and
 * give the credit back (its WQE was not used). */
static bool skip_stuck(struct ibemu_qp *qp, uint64_t idx)
{
	uint64_t now = ibemu_now_ns();

	if (qp->stuck_idx != idx + 1) {
		qp->stuck_idx = idx + 1;
		qp->stuck_since = now;
		return false;
	}
	if (now - qp->stuck_since < STUCK_SLOT_NS)
		return false;
	qp->rq_head++;
	atomic_fetch_add(&qp->ring->posted, 1);
	IBEMU_COUNT(ibemu_g.me, drop_no_dest);
	return true;
}

int ibemu_qp_rx_progress(struct ibemu_qp *qp, struct ibv_wc *wc, int max)
{
	struct ring_hdr *h = qp->ring;
	uint64_t now = 0;
	int got = 0;

	if (qp->state != IBV_QPS_RTR && qp->state != IBV_QPS_RTS)
		return 0;
	while (got < max) {
		uint64_t idx = qp->rq_head;
		struct slot_hdr *s = ring_slot(h, idx);
		/* the slot itself says whether it holds message idx: the
		 * senders' credit counter is only read when it does not */
		if (atomic_load_explicit(&s->seq, memory_order_acquire) != idx + 1) {
			uint64_t c = atomic_load_explicit(&h->claimed, memory_order_relaxed) &
				     ~IBEMU_CLOSED_BIT;
			if (idx < c && skip_stuck(qp, idx))
				continue;
			break;
		}
		if (qp->wqe_head == qp->wqe_tail) {
			/* cannot happen while credits follow posted WQEs */
			qp->rq_head++;
			IBEMU_COUNT(ibemu_g.me, drop_no_recv);
			continue;
		}
		if (s->flags & SLOT_LATE) {
			if (!now)
				now = ibemu_now_ns();
			if (now < s->deliver_at_ns)
				break;
		}
		struct ibemu_recv_wqe *w = (struct ibemu_recv_wqe *)(qp->rq_wqes +
			(qp->wqe_head & (qp->rq_slots - 1)) * qp->rq_wqe_size);
		struct ibv_wc *e = &wc[got++];
		memset(e, 0, sizeof(*e));
		e->wr_id = w->wr_id;
		e->status = scatter(qp, w, s);
		e->opcode = IBV_WC_RECV;
		e->byte_len = IBEMU_GRH_LEN + s->len;
		e->qp_num = qp->ibv.qp_num;
		e->src_qp = s->src_qpn;
		e->slid = s->slid;
		e->sl = s->sl;
		if (s->flags & SLOT_GRH)
			e->wc_flags |= IBV_WC_GRH;
		if (s->flags & SLOT_IMM) {
			e->wc_flags |= IBV_WC_WITH_IMM;
			e->imm_data = s->imm_be;
		}
		qp->wqe_head++;
		qp->rq_head++;
		if (e->status == IBV_WC_SUCCESS) {
			ibemu_g.me->counters.rx_pkts++;
			ibemu_g.me->counters.rx_bytes += s->len;
			continue;
		}
		if (e->status == IBV_WC_LOC_LEN_ERR)
			IBEMU_COUNT(ibemu_g.me, rx_len_err);
		else
			IBEMU_COUNT(ibemu_g.me, rx_prot_err);
		ibemu_qp_to_error(qp, true);
		ibemu_async_event(qp->ibv.context, IBV_EVENT_QP_FATAL, &qp->ibv);
		break;
	}
	return got;
}
