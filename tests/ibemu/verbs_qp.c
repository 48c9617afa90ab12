/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * verbs_qp.c — UD queue pairs: creation with their shared-memory inbox,
 * the state machine with the attribute masks a real HCA requires for UD,
 * query, destroy, error flushing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibemu_int.h"

#define SLOT_SIZE IBEMU_SLOT_SIZE

static struct ibemu_cq *to_cq(struct ibv_cq *c)
{
	return (struct ibemu_cq *)c;
}

/* Completions a CQ can be asked to hold at once; the per-poll overflow
 * check is needed only when that exceeds its size. Under ibemu_g.lock. */
static void cq_account(struct ibemu_cq *cq, uint32_t depth, int sign)
{
	cq->users += (uint32_t)sign;
	cq->wr_capacity += sign > 0 ? depth : -(uint64_t)depth;
	cq->may_overflow = cq->wr_capacity > (uint64_t)cq->ibv.cqe;
}

static int create_ring(struct ibemu_qp *qp, uint32_t slots, uint32_t qpn,
		       uint32_t rcq_slot)
{
	char path[256];
	size_t bytes = sizeof(struct ring_hdr) + (size_t)slots * SLOT_SIZE;

	ibemu_ring_path(path, sizeof(path), qp->idx);
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		close(fd);
		unlink(path);
		return -1;
	}
	struct ring_hdr *h = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		unlink(path);
		return -1;
	}
	h->slots = slots;
	h->slot_size = SLOT_SIZE;
	h->owner_node = ibemu_g.node_idx;
	h->qpn = qpn;
	static _Atomic uint32_t seq;
	h->nonce = (uint32_t)ibemu_now_ns() ^ (uint32_t)getpid() << 16 ^
		   atomic_fetch_add(&seq, 0x9e3779b9u);
	atomic_store(&h->cq_slot, rcq_slot);
	atomic_store(&h->claimed, IBEMU_CLOSED_BIT);
	atomic_store(&h->posted, 0);
	atomic_store_explicit((_Atomic uint32_t *)&h->magic, IBEMU_MAGIC,
			      memory_order_release);
	qp->ring = h;
	qp->ring_bytes = bytes;
	return 0;
}

static int check_cap(struct ibv_qp_cap *c)
{
	if (c->max_send_wr < 1 || c->max_send_wr > IBEMU_MAX_WR ||
	    c->max_recv_wr > IBEMU_MAX_WR || c->max_send_sge > IBEMU_MAX_SGE ||
	    c->max_recv_sge > IBEMU_MAX_SGE || c->max_inline_data > IBEMU_MAX_INLINE)
		return EINVAL;
	if (c->max_send_sge == 0)
		c->max_send_sge = 1;
	if (c->max_recv_sge == 0)
		c->max_recv_sge = 1;
	return 0;
}

IBEMU_EXPORT struct ibv_qp *ibv_create_qp(struct ibv_pd *pd,
					  struct ibv_qp_init_attr *attr)
{
	struct ibemu_qp *qp;
	int err;

	if (attr->qp_type != IBV_QPT_UD || attr->srq) {
		errno = EOPNOTSUPP; /* ibemu offers UD queue pairs only */
		return NULL;
	}
	if (!attr->send_cq || !attr->recv_cq || check_cap(&attr->cap)) {
		errno = EINVAL;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	qp->cap = attr->cap;
	qp->rq_slots = 1;
	while (qp->rq_slots < qp->cap.max_recv_wr)
		qp->rq_slots <<= 1;
	qp->rq_wqe_size = (uint32_t)(sizeof(struct ibemu_recv_wqe) +
				     qp->cap.max_recv_sge * sizeof(struct ibv_sge));
	qp->rq_wqes = ibemu_queue_alloc((size_t)qp->rq_slots * qp->rq_wqe_size);
	if (!qp->rq_wqes)
		goto fail_free;

	struct shm_fabric *f = ibemu_g.fab;
	if ((err = ibemu_fab_lock()))
		goto fail_errno;
	uint32_t idx;
	for (idx = 1; idx < IBEMU_MAX_QPS; idx++)
		if (!atomic_load(&f->qp[idx].node_plus1))
			break;
	if (idx == IBEMU_MAX_QPS) {
		ibemu_fab_unlock();
		err = ENOMEM;
		goto fail_errno;
	}
	atomic_store(&f->qp[idx].node_plus1, ibemu_g.node_idx + 1);
	ibemu_fab_unlock();
	qp->idx = idx;
	uint32_t qpn = atomic_load(&f->qp[idx].gen) << IBEMU_QP_IDX_BITS | idx;
	if (create_ring(qp, qp->rq_slots, qpn, to_cq(attr->recv_cq)->slot)) {
		err = errno;
		atomic_store(&f->qp[idx].node_plus1, 0);
		goto fail_errno;
	}
	if (attr->qp_type == IBV_QPT_UD && attr->sq_sig_all)
		qp->sq_sig_all = true;
	pthread_spin_init(&qp->sq_lock, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_init(&qp->rq_lock, PTHREAD_PROCESS_PRIVATE);
	qp->state = IBV_QPS_RESET;
	qp->ibv.context = pd->context;
	qp->ibv.qp_context = attr->qp_context;
	qp->ibv.pd = pd;
	qp->ibv.send_cq = attr->send_cq;
	qp->ibv.recv_cq = attr->recv_cq;
	qp->ibv.handle = idx;
	qp->ibv.qp_num = qpn;
	qp->ibv.state = IBV_QPS_RESET;
	qp->ibv.qp_type = IBV_QPT_UD;
	pthread_mutex_init(&qp->ibv.mutex, NULL);
	pthread_cond_init(&qp->ibv.cond, NULL);
	pthread_mutex_lock(&ibemu_g.lock);
	ibemu_g.qp_by_idx[idx] = qp;
	cq_account(to_cq(attr->send_cq), qp->cap.max_send_wr, 1);
	cq_account(to_cq(attr->recv_cq), qp->cap.max_recv_wr, 1);
	pthread_mutex_unlock(&ibemu_g.lock);
	if ((err = ibemu_cq_attach_rx(to_cq(attr->recv_cq), qp))) {
		ibv_destroy_qp(&qp->ibv);
		errno = err;
		return NULL;
	}
	return &qp->ibv;

fail_errno:
	ibemu_queue_free(qp->rq_wqes, (size_t)qp->rq_slots * qp->rq_wqe_size);
	free(qp);
	errno = err;
	return NULL;
fail_free:
	free(qp);
	errno = ENOMEM;
	return NULL;
}

/* ibv_create_qp_ex: PD and the multicast self-loopback block only. */
struct ibv_qp *ibemu_create_qp_ex(struct ibv_context *ctx,
				  struct ibv_qp_init_attr_ex *ax)
{
	const uint32_t known = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS;

	(void)ctx;
	if ((ax->comp_mask & ~known) || !(ax->comp_mask & IBV_QP_INIT_ATTR_PD) ||
	    ((ax->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) &&
	     (ax->create_flags & ~(uint32_t)IBV_QP_CREATE_BLOCK_SELF_MCAST_LB))) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	struct ibv_qp_init_attr a = {
		.qp_context = ax->qp_context, .send_cq = ax->send_cq,
		.recv_cq = ax->recv_cq, .srq = ax->srq, .cap = ax->cap,
		.qp_type = ax->qp_type, .sq_sig_all = ax->sq_sig_all,
	};
	struct ibv_qp *qp = ibv_create_qp(ax->pd, &a);
	if (!qp)
		return NULL;
	ax->cap = a.cap;
	if ((ax->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) &&
	    (ax->create_flags & IBV_QP_CREATE_BLOCK_SELF_MCAST_LB))
		atomic_fetch_or(&((struct ibemu_qp *)qp)->ring->flags,
				IBEMU_RING_BLOCK_SELF_MC);
	return qp;
}

/* Freeze the inbox: no sender can claim a credit afterwards. Messages
 * already written are discarded (their WQEs are flushed by the caller). */
void ibemu_qp_close_ring(struct ibemu_qp *qp)
{
	struct ring_hdr *h = qp->ring;
	uint64_t c = atomic_fetch_or(&h->claimed, IBEMU_CLOSED_BIT);

	if (c & IBEMU_CLOSED_BIT) {
		/* already closed: only WRs posted meanwhile (INIT) are dropped */
		atomic_store(&h->posted, qp->rq_head);
		return;
	}

	for (uint64_t i = qp->rq_head; i < c; i++) {
		struct slot_hdr *s = ring_slot(h, i);
		/* a writer inside its copy finishes within microseconds; a
		 * dead one never does, so the wait is bounded */
		for (int t = 0; t < 100000 && atomic_load(&s->seq) != i + 1; t++)
			;
	}
	/* Burn one index: once reopened, `claimed` never again takes a value
	 * a sender may have read before the close, so its CAS cannot succeed
	 * on a stale value (no ABA), and senders' cached `posted` values are
	 * invalidated by the epoch. */
	qp->rq_head = (c > qp->rq_head ? c : qp->rq_head) + 1;
	atomic_store(&h->posted, qp->rq_head);
	atomic_fetch_add(&h->epoch, 1);
}

/* Complete (or, for RESET, drop) every outstanding receive WR. The RQ lock
 * is released before the CQ lock is taken: ibv_poll_cq takes them in the
 * other order. */
static void flush_rq(struct ibemu_qp *qp, bool rcq_locked, bool completions)
{
	struct ibemu_cq *rcq = to_cq(qp->ibv.recv_cq);
	uint64_t *ids = NULL;
	uint32_t n = 0;

	pthread_spin_lock(&qp->rq_lock);
	uint64_t cnt = qp->wqe_tail - qp->wqe_head;
	if (completions && cnt)
		ids = malloc(cnt * sizeof(*ids));
	for (; qp->wqe_head < qp->wqe_tail; qp->wqe_head++) {
		struct ibemu_recv_wqe *w = (struct ibemu_recv_wqe *)(qp->rq_wqes +
			(qp->wqe_head & (qp->rq_slots - 1)) * qp->rq_wqe_size);
		if (ids)
			ids[n++] = w->wr_id;
	}
	pthread_spin_unlock(&qp->rq_lock);
	for (uint32_t i = 0; i < n; i++) {
		struct ibv_wc wc = {
			.wr_id = ids[i],
			.status = IBV_WC_WR_FLUSH_ERR,
			.opcode = IBV_WC_RECV,
			.qp_num = qp->ibv.qp_num,
		};
		ibemu_cq_push(rcq, &wc, NULL, 0, rcq_locked);
	}
	free(ids);
}

void ibemu_qp_to_error(struct ibemu_qp *qp, bool rcq_locked)
{
	if (qp->state == IBV_QPS_ERR)
		return;
	ibemu_qp_close_ring(qp);
	qp->state = IBV_QPS_ERR;
	qp->ibv.state = IBV_QPS_ERR;
	flush_rq(qp, rcq_locked, true);
}

/* UD transitions: required and optional attribute masks (IBA 11.2.5.3). */
struct ud_transition {
	enum ibv_qp_state from, to;
	int required, optional;
};

static const struct ud_transition ud_table[] = {
	{ IBV_QPS_RESET, IBV_QPS_INIT,
	  IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY, 0 },
	{ IBV_QPS_INIT, IBV_QPS_INIT, 0,
	  IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY },
	{ IBV_QPS_INIT, IBV_QPS_RTR, IBV_QP_STATE,
	  IBV_QP_PKEY_INDEX | IBV_QP_QKEY },
	{ IBV_QPS_RTR, IBV_QPS_RTS, IBV_QP_STATE | IBV_QP_SQ_PSN, IBV_QP_QKEY },
	{ IBV_QPS_RTS, IBV_QPS_RTS, 0, IBV_QP_QKEY },
};

static bool transition_ok(enum ibv_qp_state from, enum ibv_qp_state to, int mask)
{
	mask &= ~IBV_QP_CUR_STATE;
	if (to == IBV_QPS_RESET || to == IBV_QPS_ERR)
		return mask == IBV_QP_STATE;
	for (size_t i = 0; i < sizeof(ud_table) / sizeof(ud_table[0]); i++) {
		const struct ud_transition *t = &ud_table[i];
		if (t->from != from || t->to != to)
			continue;
		int req = t->required | (from != to ? IBV_QP_STATE : 0);
		int allowed = req | t->optional | IBV_QP_STATE;
		return (mask & req) == req && !(mask & ~allowed);
	}
	return false;
}

IBEMU_EXPORT int ibv_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			       int mask)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	enum ibv_qp_state cur = qp->state;
	enum ibv_qp_state to = (mask & IBV_QP_STATE) ? attr->qp_state : cur;

	if ((mask & IBV_QP_CUR_STATE) && attr->cur_qp_state != cur)
		return EINVAL;
	if (!transition_ok(cur, to, mask))
		return EINVAL;
	if ((mask & IBV_QP_PORT) && attr->port_num != 1)
		return EINVAL;
	if ((mask & IBV_QP_PKEY_INDEX) && attr->pkey_index != 0)
		return EINVAL; /* only index 0 holds a valid P_Key */
	if (mask & IBV_QP_PKEY_INDEX)
		qp->pkey_index = attr->pkey_index;
	if (mask & IBV_QP_PORT)
		qp->port_num = attr->port_num;
	if (mask & IBV_QP_QKEY) {
		qp->qkey = attr->qkey;
		atomic_store(&qp->ring->qkey, attr->qkey);
	}
	if (mask & IBV_QP_SQ_PSN)
		qp->sq_psn = attr->sq_psn & 0xFFFFFF;

	switch (to) {
	case IBV_QPS_RESET:
		if (cur != IBV_QPS_RESET) {
			ibemu_qp_close_ring(qp);
			flush_rq(qp, false, false);
			qp->sq_retired = qp->sq_posted;
			qp->sends = 0;
		}
		break;
	case IBV_QPS_ERR:
		ibemu_qp_to_error(qp, false);
		break;
	case IBV_QPS_RTR:
		if (cur == IBV_QPS_INIT) /* open the inbox */
			atomic_store(&qp->ring->claimed, qp->rq_head);
		break;
	default:
		break;
	}
	qp->state = to;
	ibqp->state = to;
	return 0;
}

IBEMU_EXPORT int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			      int mask, struct ibv_qp_init_attr *init)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;

	(void)mask; /* everything is cheap to report */
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = qp->state;
	attr->cur_qp_state = qp->state;
	attr->path_mtu = ibemu_g.mtu_enum;
	attr->qkey = qp->qkey;
	attr->sq_psn = qp->sq_psn;
	attr->pkey_index = qp->pkey_index;
	attr->port_num = qp->port_num;
	attr->cap = qp->cap;
	if (init) {
		memset(init, 0, sizeof(*init));
		init->qp_context = ibqp->qp_context;
		init->send_cq = ibqp->send_cq;
		init->recv_cq = ibqp->recv_cq;
		init->cap = qp->cap;
		init->qp_type = IBV_QPT_UD;
		init->sq_sig_all = qp->sq_sig_all;
	}
	return 0;
}

IBEMU_EXPORT int ibv_destroy_qp(struct ibv_qp *ibqp)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	struct shm_fabric *f = ibemu_g.fab;
	char path[256];

	if (qp->mcast_count)
		return EBUSY; /* detach from multicast groups first */
	ibemu_qp_close_ring(qp);
	ibemu_cq_detach_rx(to_cq(ibqp->recv_cq), qp);
	/* forget this QP in queued send completions too */
	ibemu_cq_detach_rx(to_cq(ibqp->send_cq), qp);
	if (ibemu_fab_lock() == 0) {
		ibemu_mcast_remove_qpn_locked(ibqp->qp_num);
		uint32_t gen = atomic_load(&f->qp[qp->idx].gen) + 1;
		atomic_store(&f->qp[qp->idx].gen, (gen & 0xFFF) ? gen & 0xFFF : 1);
		atomic_store(&f->qp[qp->idx].node_plus1, 0);
		ibemu_fab_unlock();
	}
	ibemu_ring_path(path, sizeof(path), qp->idx);
	unlink(path);
	munmap(qp->ring, qp->ring_bytes);
	pthread_mutex_lock(&ibemu_g.lock);
	ibemu_g.qp_by_idx[qp->idx] = NULL;
	cq_account(to_cq(ibqp->send_cq), qp->cap.max_send_wr, -1);
	cq_account(to_cq(ibqp->recv_cq), qp->cap.max_recv_wr, -1);
	pthread_mutex_unlock(&ibemu_g.lock);
	ibemu_queue_free(qp->rq_wqes, (size_t)qp->rq_slots * qp->rq_wqe_size);
	free(qp);
	return 0;
}

int ibemu_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
				 struct ibv_recv_wr **bad)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	int rc = 0;

	pthread_spin_lock(&qp->rq_lock);
	for (; wr; wr = wr->next) {
		if (qp->state == IBV_QPS_RESET || wr->num_sge < 0 ||
		    (uint32_t)wr->num_sge > qp->cap.max_recv_sge) {
			rc = EINVAL;
			break;
		}
		if (qp->state == IBV_QPS_ERR) {
			/* completes at once, flushed; CQ lock is taken
			 * without the RQ lock (poll takes them the other way) */
			struct ibv_wc wc = { .wr_id = wr->wr_id,
					     .status = IBV_WC_WR_FLUSH_ERR,
					     .opcode = IBV_WC_RECV,
					     .qp_num = ibqp->qp_num };
			pthread_spin_unlock(&qp->rq_lock);
			ibemu_cq_push(to_cq(ibqp->recv_cq), &wc, NULL, 0, false);
			pthread_spin_lock(&qp->rq_lock);
			continue;
		}
		if (qp->wqe_tail - qp->wqe_head >= qp->cap.max_recv_wr) {
			rc = ENOMEM;
			break;
		}
		struct ibemu_recv_wqe *w = (struct ibemu_recv_wqe *)(qp->rq_wqes +
			(qp->wqe_tail & (qp->rq_slots - 1)) * qp->rq_wqe_size);
		w->wr_id = wr->wr_id;
		w->num_sge = (uint32_t)wr->num_sge;
		memcpy(w->sge, wr->sg_list, (size_t)wr->num_sge * sizeof(struct ibv_sge));
		qp->wqe_tail++;
		atomic_fetch_add_explicit(&qp->ring->posted, 1, memory_order_release);
	}
	pthread_spin_unlock(&qp->rq_lock);
	if (rc && bad)
		*bad = wr;
	return rc;
}
