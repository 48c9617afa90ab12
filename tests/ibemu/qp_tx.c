/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * qp_tx.c — the send side of a UD QP: WR validation, gather (lkeys,
 * bounds, inline), path MTU, Q_Key rule, routing by LID, GID or multicast
 * group, and delivery into the destination QP's inbox with a receive
 * credit claimed atomically (no credit = no posted receive = drop).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "ibemu_int.h"

/* per sending thread: no sharing, no tearing */
struct credit_cache {
	uint32_t qpn;
	uint32_t nonce;             /* QPNs repeat when a fabric is recreated */
	uint32_t epoch;
	uint64_t posted;
};
static _Thread_local struct credit_cache credit_cache[IBEMU_MAX_QPS];

static void deliver_ring(struct ring_hdr *h, uint32_t dest_node,
			 const struct ibemu_msg *m)
{
	struct shm_node *dn = &ibemu_g.fab->node[dest_node];

	if (atomic_load_explicit(&h->qkey, memory_order_relaxed) != m->qkey) {
		IBEMU_COUNT(dn, drop_qkey);
		return;
	}
	if (atomic_load_explicit(&ibemu_faults_active, memory_order_relaxed) &&
	    ibemu_fault_drop()) {
		IBEMU_COUNT(dn, drop_fault);
		return;
	}
	/* The receiver's `posted` line is re-read only when the credits seen
	 * last time are used up (or the inbox was closed since). */
	struct credit_cache *cc = &credit_cache[h->qpn & IBEMU_QP_IDX_MASK];
	uint64_t c = atomic_load_explicit(&h->claimed, memory_order_acquire);
	for (;;) {
		if (c & IBEMU_CLOSED_BIT) {
			IBEMU_COUNT(dn, drop_qp_state);
			return;
		}
		uint32_t epoch = atomic_load_explicit(&h->epoch, memory_order_acquire);
		if (cc->qpn != h->qpn || cc->nonce != h->nonce || cc->epoch != epoch ||
		    c >= cc->posted) {
			cc->qpn = h->qpn;
			cc->nonce = h->nonce;
			cc->epoch = epoch;
			cc->posted = atomic_load_explicit(&h->posted, memory_order_acquire);
		}
		if (c >= cc->posted) {
			IBEMU_COUNT(dn, drop_no_recv);
			return;
		}
		if (atomic_compare_exchange_weak_explicit(&h->claimed, &c, c + 1,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	struct slot_hdr *s = ring_slot(h, c);
	uint8_t *grh = (uint8_t *)(s + 1), *p = grh + IBEMU_GRH_LEN;
	s->len = m->len;
	s->src_qpn = m->src_qpn;
	s->slid = ibemu_g.me->lid;
	s->sl = m->sl;
	s->flags = m->flags;
	s->imm_be = m->imm_be;
	s->writer_node = ibemu_g.node_idx;
	if (m->grh) {
		memcpy(grh, m->grh, IBEMU_GRH_LEN);
		/* IPv6-style payload length: BTH 12 + DETH 8 [+ ImmDt 4] + ICRC 4 */
		((struct ibv_grh *)grh)->paylen =
			htobe16((uint16_t)(m->len + 24 + (m->flags & SLOT_IMM ? 4 : 0)));
		s->flags |= SLOT_GRH;
	}
	if (atomic_load_explicit(&ibemu_faults_active, memory_order_relaxed) &&
	    ibemu_faults_now.latency_us) {
		s->flags |= SLOT_LATE;
		s->deliver_at_ns = ibemu_now_ns() + ibemu_faults_now.latency_us * 1000ull;
	}
	for (uint32_t i = 0; i < m->iovcnt; i++) {
		memcpy(p, m->iov[i].iov_base, m->iov[i].iov_len);
		p += m->iov[i].iov_len;
	}
	atomic_store_explicit(&s->seq, c + 1, memory_order_release);
	/* pairs with the receiver's arm-then-poll: one of us sees the other */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t cq_slot = atomic_load_explicit(&h->cq_slot, memory_order_relaxed);
	if (cq_slot < IBEMU_MAX_CQS &&
	    atomic_load_explicit(&dn->cq[cq_slot].armed, memory_order_relaxed))
		ibemu_cq_signal(dest_node, cq_slot, m->flags & SLOT_SOLICITED);
}

void ibemu_deliver_unicast(uint32_t dest_node, uint32_t qpn,
			   const struct ibemu_msg *m)
{
	struct shm_node *dn = &ibemu_g.fab->node[dest_node];
	uint32_t idx = qpn & IBEMU_QP_IDX_MASK;

	if (qpn == 0 || qpn > 0xFFFFFF ||
	    atomic_load_explicit(&ibemu_g.fab->qp[idx].node_plus1,
				 memory_order_acquire) != dest_node + 1) {
		IBEMU_COUNT(dn, drop_no_dest);
		return;
	}
	struct ring_hdr *h = ibemu_ring_lookup(qpn);
	if (!h) {
		IBEMU_COUNT(dn, drop_no_dest);
		return;
	}
	deliver_ring(h, dest_node, m);
}

void ibemu_deliver_mcast(int group, const struct ibemu_msg *m)
{
	struct shm_mcast *g = &ibemu_g.fab->mcast[group];

	for (uint32_t i = 0; i < IBEMU_MCAST_MEMBERS; i++) {
		uint32_t qpn = atomic_load_explicit(&g->members[i], memory_order_acquire);
		if (!qpn)
			continue;
		uint32_t owner = atomic_load_explicit(
			&ibemu_g.fab->qp[qpn & IBEMU_QP_IDX_MASK].node_plus1,
			memory_order_acquire);
		if (!owner)
			continue;
		struct ring_hdr *h = ibemu_ring_lookup(qpn);
		if (!h)
			continue;
		if (qpn == m->src_qpn &&
		    (atomic_load_explicit(&h->flags, memory_order_relaxed) &
		     IBEMU_RING_BLOCK_SELF_MC))
			continue;
		deliver_ring(h, owner - 1, m);
	}
}

static int ah_group(struct ibemu_ah *ah)
{
	const struct ibv_ah_attr *a = &ah->attr;
	int g = atomic_load_explicit(&ah->group, memory_order_relaxed);
	struct shm_mcast *gr = g >= 0 ? &ibemu_g.fab->mcast[g] : NULL;

	if (gr && atomic_load_explicit(&gr->in_use, memory_order_acquire) &&
	    (a->dlid ? gr->mlid == a->dlid : !memcmp(gr->mgid, a->grh.dgid.raw, 16)))
		return g;
	g = a->dlid ? ibemu_mcast_by_mlid(a->dlid) : -1;
	if (g < 0 && a->is_global && a->grh.dgid.raw[0] == 0xff) {
		uint16_t mlid;
		if (ibemu_mcast_find_or_create(a->grh.dgid.raw, 0, &mlid) == 0)
			g = ibemu_mcast_by_mlid(mlid);
	}
	atomic_store_explicit(&ah->group, g, memory_order_relaxed);
	return g;
}

static int ah_node(struct ibemu_ah *ah)
{
	const struct ibv_ah_attr *a = &ah->attr;
	int n = atomic_load_explicit(&ah->node, memory_order_relaxed);

	if (n >= 0) {
		struct shm_node *sn = &ibemu_g.fab->node[n];
		if (atomic_load_explicit(&sn->in_use, memory_order_acquire) &&
		    sn->gen == atomic_load_explicit(&ah->node_gen, memory_order_relaxed))
			return n;
	}
	n = a->dlid ? ibemu_node_by_lid(a->dlid) : ibemu_node_by_gid(a->grh.dgid.raw);
	if (n >= 0)
		atomic_store_explicit(&ah->node_gen, ibemu_g.fab->node[n].gen,
				      memory_order_relaxed);
	atomic_store_explicit(&ah->node, n, memory_order_relaxed);
	return n;
}

/* Route one message by its AH: multicast LID or GID, unicast LID or GID. */
static void route(struct ibemu_ah *ah, uint32_t qpn, const struct ibemu_msg *m)
{
	const struct ibv_ah_attr *a = &ah->attr;

	if (a->dlid >= IBEMU_MLID_BASE || (!a->dlid && a->grh.dgid.raw[0] == 0xff)) {
		int g = ah_group(ah);
		if (g < 0) {
			IBEMU_COUNT(ibemu_g.me, drop_no_dest);
			return;
		}
		if (qpn != IBEMU_MCAST_QPN) {
			IBEMU_COUNT(ibemu_g.me, drop_mcast_qpn);
			return;
		}
		ibemu_deliver_mcast(g, m);
		return;
	}
	int n = ah_node(ah);
	if (n < 0) {
		IBEMU_COUNT(ibemu_g.me, drop_no_dest);
		return;
	}
	ibemu_deliver_unicast((uint32_t)n, qpn, m);
}

static bool send_sge_ok(const struct ibemu_qp *qp, const struct ibv_sge *s)
{
	const struct ibemu_mr *mr = ibemu_mr_lookup(s->lkey);

	return mr && mr->ibv.pd == qp->ibv.pd && s->addr >= mr->start &&
	       s->length <= mr->end - s->addr;
}

static void complete_send(struct ibemu_qp *qp, const struct ibv_send_wr *wr,
			  enum ibv_wc_status st, uint32_t len, uint64_t idx)
{
	struct ibv_wc wc = {
		.wr_id = wr->wr_id,
		.status = st,
		.opcode = IBV_WC_SEND,
		.byte_len = len,
		.qp_num = qp->ibv.qp_num,
	};
	ibemu_cq_push((struct ibemu_cq *)qp->ibv.send_cq, &wc, qp, idx, false);
}

static int post_one(struct ibemu_qp *qp, struct ibv_send_wr *wr)
{
	struct iovec iov[IBEMU_MAX_SGE];
	enum ibv_wc_status st = IBV_WC_SUCCESS;
	uint32_t total = 0;

	if (qp->state == IBV_QPS_ERR) {
		complete_send(qp, wr, IBV_WC_WR_FLUSH_ERR, 0, qp->sq_posted++);
		return 0;
	}
	if (qp->state != IBV_QPS_RTS ||
	    (wr->opcode != IBV_WR_SEND && wr->opcode != IBV_WR_SEND_WITH_IMM) ||
	    wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->cap.max_send_sge ||
	    !wr->wr.ud.ah)
		return EINVAL;
	if (qp->sq_posted - __atomic_load_n(&qp->sq_retired, __ATOMIC_RELAXED) >=
	    qp->cap.max_send_wr)
		return ENOMEM;
	for (int i = 0; i < wr->num_sge; i++) {
		total += wr->sg_list[i].length;
		iov[i].iov_base = (void *)(uintptr_t)wr->sg_list[i].addr;
		iov[i].iov_len = wr->sg_list[i].length;
	}
	if (wr->send_flags & IBV_SEND_INLINE) {
		if (total > qp->cap.max_inline_data)
			return EINVAL;
	} else {
		for (int i = 0; i < wr->num_sge; i++)
			if (wr->sg_list[i].length && !send_sge_ok(qp, &wr->sg_list[i])) {
				st = IBV_WC_LOC_PROT_ERR;
				IBEMU_COUNT(ibemu_g.me, tx_prot_err);
				break;
			}
	}
	if (st == IBV_WC_SUCCESS && total > ibemu_g.mtu_bytes) {
		st = IBV_WC_LOC_LEN_ERR;
		IBEMU_COUNT(ibemu_g.me, tx_len_err);
	}
	if (st == IBV_WC_SUCCESS &&
	    atomic_load_explicit(&ibemu_faults_active, memory_order_relaxed) &&
	    ibemu_faults_now.qp_error_after &&
	    ++qp->sends > ibemu_faults_now.qp_error_after) {
		st = IBV_WC_LOC_QP_OP_ERR;
		IBEMU_COUNT(ibemu_g.me, fault_qp_error);
	}
	if (st == IBV_WC_SUCCESS) {
		struct ibemu_ah *ah = (struct ibemu_ah *)wr->wr.ud.ah;
		uint32_t qkey = wr->wr.ud.remote_qkey;
		struct ibemu_msg m = {
			.iov = iov,
			.iovcnt = (uint32_t)wr->num_sge,
			.len = total,
			.src_qpn = qp->ibv.qp_num,
			.imm_be = wr->opcode == IBV_WR_SEND_WITH_IMM ? wr->imm_data : 0,
			.flags = (wr->opcode == IBV_WR_SEND_WITH_IMM ? SLOT_IMM : 0) |
				 (wr->send_flags & IBV_SEND_SOLICITED ? SLOT_SOLICITED : 0),
			.sl = ah->attr.sl,
			.grh = ah->attr.is_global ? ah->grh : NULL,
			/* IBA 10.2.5: a high-order bit set means the QP's own Q_Key */
			.qkey = (qkey & 0x80000000u) ? qp->qkey : qkey,
		};
		route(ah, wr->wr.ud.remote_qpn, &m);
		IBEMU_ADD(ibemu_g.me, tx_pkts, 1);
		IBEMU_ADD(ibemu_g.me, tx_bytes, total);
	}
	uint64_t idx = qp->sq_posted++;
	if (st != IBV_WC_SUCCESS || qp->sq_sig_all || (wr->send_flags & IBV_SEND_SIGNALED))
		complete_send(qp, wr, st, total, idx);
	if (st != IBV_WC_SUCCESS) {
		ibemu_qp_to_error(qp, false);
		if (st == IBV_WC_LOC_QP_OP_ERR)
			ibemu_async_event(qp->ibv.context, IBV_EVENT_QP_FATAL, &qp->ibv);
	}
	return 0;
}

int ibemu_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		    struct ibv_send_wr **bad)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	int rc = 0;

	ibemu_maintenance(); /* a coarse clock read, work every 100 ms */
	ibemu_tx_enter();
	pthread_spin_lock(&qp->sq_lock);
	for (; wr; wr = wr->next) {
		rc = post_one(qp, wr);
		if (rc)
			break;
	}
	pthread_spin_unlock(&qp->sq_lock);
	ibemu_tx_leave();
	if (rc && bad)
		*bad = wr;
	return rc;
}
