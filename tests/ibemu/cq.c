/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * cq.c — completion queues and completion channels.
 *
 * Send completions are generated when the WR is processed (at post time)
 * and queued locally; receive completions are produced by scattering the
 * QP inboxes while polling. A completion channel is a datagram socket in
 * the abstract namespace: a sender writes to it only when the CQ is armed
 * (one atomic load per message otherwise), so it wakes poll/epoll/libev in
 * the receiving process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ibemu_int.h"

struct chan_msg {
	uint32_t cq_slot;
	uint32_t gen;
};

static int doorbell_sock = -1;
static pthread_once_t doorbell_once = PTHREAD_ONCE_INIT;

static void doorbell_init(void)
{
	doorbell_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

static socklen_t chan_addr(struct sockaddr_un *sa, pid_t pid, uint32_t id)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
			 "ibemu.%s.%d.ch%u", ibemu_g.fabric, (int)pid, id);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

IBEMU_EXPORT struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
	struct ibemu_chan *ch = calloc(1, sizeof(*ch));
	struct sockaddr_un sa;

	if (!ch)
		return NULL;
	ch->ibv.context = ctx;
	ch->ibv.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ch->ibv.fd < 0)
		goto fail;
	pthread_mutex_lock(&ibemu_g.lock);
	ch->id = ibemu_g.next_chan_id++;
	pthread_mutex_unlock(&ibemu_g.lock);
	socklen_t len = chan_addr(&sa, getpid(), ch->id);
	if (bind(ch->ibv.fd, (struct sockaddr *)&sa, len) < 0) {
		close(ch->ibv.fd);
		goto fail;
	}
	return &ch->ibv;
fail:
	free(ch);
	return NULL;
}

IBEMU_EXPORT int ibv_destroy_comp_channel(struct ibv_comp_channel *ibch)
{
	if (ibch->refcnt)
		return EBUSY;
	close(ibch->fd);
	free(ibch);
	return 0;
}

IBEMU_EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe,
					  void *cq_context,
					  struct ibv_comp_channel *channel,
					  int comp_vector)
{
	struct ibemu_cq *cq;
	uint32_t slot, size = 4;

	if (cqe < 1 || (uint32_t)cqe > IBEMU_MAX_CQE || comp_vector != 0) {
		errno = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	while (size < 2u * (uint32_t)cqe + 2)
		size <<= 1;
	cq->ring = ibemu_queue_alloc((size_t)size * sizeof(*cq->ring));
	if (!cq->ring) {
		free(cq);
		return NULL;
	}
	cq->ring_mask = size - 1;
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);
	cq->ibv.context = ctx;
	cq->ibv.channel = channel;
	cq->ibv.cq_context = cq_context;
	cq->ibv.cqe = cqe;
	pthread_mutex_init(&cq->ibv.mutex, NULL);
	pthread_cond_init(&cq->ibv.cond, NULL);

	pthread_mutex_lock(&ibemu_g.lock);
	for (slot = 0; slot < IBEMU_MAX_CQS; slot++)
		if (!ibemu_g.cq_by_slot[slot])
			break;
	if (slot == IBEMU_MAX_CQS) {
		pthread_mutex_unlock(&ibemu_g.lock);
		ibemu_queue_free(cq->ring, (size_t)size * sizeof(*cq->ring));
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	struct shm_cq_notify *n = &ibemu_g.me->cq[slot];
	cq->slot = slot;
	cq->gen = ++n->gen;
	cq->ibv.handle = slot;
	n->chan_id = channel ? ((struct ibemu_chan *)channel)->id : ~0u;
	atomic_store(&n->armed, 0);
	ibemu_g.cq_by_slot[slot] = cq;
	if (channel)
		channel->refcnt++;
	pthread_mutex_unlock(&ibemu_g.lock);
	return &cq->ibv;
}

IBEMU_EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	struct ibemu_cq *cq = (struct ibemu_cq *)ibcq;

	pthread_mutex_lock(&ibemu_g.lock);
	if (cq->users) {
		pthread_mutex_unlock(&ibemu_g.lock);
		return EBUSY;
	}
	atomic_store(&ibemu_g.me->cq[cq->slot].armed, 0);
	ibemu_g.me->cq[cq->slot].chan_id = ~0u;
	ibemu_g.cq_by_slot[cq->slot] = NULL;
	if (ibcq->channel)
		ibcq->channel->refcnt--;
	pthread_mutex_unlock(&ibemu_g.lock);
	pthread_spin_destroy(&cq->lock);
	free(cq->rx_qps);
	ibemu_queue_free(cq->ring,
			 (size_t)(cq->ring_mask + 1) * sizeof(*cq->ring));
	free(cq);
	return 0;
}

/* Grow or shrink while in use, as devices do: the queued completions move
 * to the new ring; a size below what is queued is refused. */
IBEMU_EXPORT int ibv_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct ibemu_cq *cq = (struct ibemu_cq *)ibcq;
	struct ibemu_cqe *ring, *old;
	size_t old_bytes;
	uint32_t size = 4;

	if (cqe < 1 || (uint32_t)cqe > IBEMU_MAX_CQE)
		return EINVAL;
	while (size < 2u * (uint32_t)cqe + 2)
		size <<= 1;
	ring = ibemu_queue_alloc((size_t)size * sizeof(*ring));
	if (!ring)
		return ENOMEM;
	pthread_mutex_lock(&ibemu_g.lock); /* cq_account's lock */
	pthread_spin_lock(&cq->lock);
	if (cq->ring_tail - cq->ring_head > (uint64_t)cqe) {
		pthread_spin_unlock(&cq->lock);
		pthread_mutex_unlock(&ibemu_g.lock);
		ibemu_queue_free(ring, (size_t)size * sizeof(*ring));
		return EINVAL;
	}
	for (uint64_t i = cq->ring_head; i < cq->ring_tail; i++)
		ring[i & (size - 1)] = cq->ring[i & cq->ring_mask];
	old = cq->ring;
	old_bytes = (size_t)(cq->ring_mask + 1) * sizeof(*cq->ring);
	cq->ring = ring;
	cq->ring_mask = size - 1;
	cq->ibv.cqe = cqe;
	cq->may_overflow = cq->wr_capacity > (uint64_t)cqe;
	pthread_spin_unlock(&cq->lock);
	pthread_mutex_unlock(&ibemu_g.lock);
	ibemu_queue_free(old, old_bytes);
	return 0;
}

/* Wake the owner of an armed CQ (any process). */
void ibemu_cq_signal(uint32_t node, uint32_t cq_slot, bool solicited)
{
	struct shm_node *n = &ibemu_g.fab->node[node];
	struct shm_cq_notify *c;
	struct sockaddr_un sa;

	if (cq_slot >= IBEMU_MAX_CQS)
		return;
	c = &n->cq[cq_slot];
	uint32_t armed = atomic_load(&c->armed);
	if (!armed || (armed == IBEMU_ARM_SOLICITED && !solicited))
		return;
	if (!atomic_compare_exchange_strong(&c->armed, &armed, 0))
		return;
	if (c->chan_id == ~0u)
		return;
	pthread_once(&doorbell_once, doorbell_init);
	struct chan_msg m = { cq_slot, c->gen };
	socklen_t len = chan_addr(&sa, n->pid, c->chan_id);
	if (sendto(doorbell_sock, &m, sizeof(m), MSG_DONTWAIT,
		   (struct sockaddr *)&sa, len) == (ssize_t)sizeof(m))
		IBEMU_COUNT(n, doorbells);
}

IBEMU_EXPORT int ibv_get_cq_event(struct ibv_comp_channel *channel,
				  struct ibv_cq **cq, void **cq_context)
{
	struct chan_msg m;

	for (;;) {
		ssize_t r = recv(channel->fd, &m, sizeof(m), 0);
		if (r < 0)
			return -1;
		if (r != (ssize_t)sizeof(m) || m.cq_slot >= IBEMU_MAX_CQS)
			continue;
		struct ibemu_cq *c = ibemu_g.cq_by_slot[m.cq_slot];
		if (!c || c->gen != m.gen || c->ibv.channel != channel)
			continue; /* CQ destroyed since the event was sent */
		*cq = &c->ibv;
		*cq_context = c->ibv.cq_context;
		return 0;
	}
}

IBEMU_EXPORT void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_cond_signal(&cq->cond);
	pthread_mutex_unlock(&cq->mutex);
}

static void cq_overflowed(struct ibemu_cq *cq)
{
	if (cq->overflow)
		return;
	cq->overflow = true;
	IBEMU_COUNT(ibemu_g.me, cq_overflow);
	ibemu_async_event(cq->ibv.context, IBV_EVENT_CQ_ERR, &cq->ibv);
}

int ibemu_cq_push(struct ibemu_cq *cq, const struct ibv_wc *wc,
		  struct ibemu_qp *sq_qp, uint64_t sq_idx, bool locked)
{
	int rc = 0;

	if (!locked)
		pthread_spin_lock(&cq->lock);
	if (cq->overflow || cq->ring_tail - cq->ring_head >= (uint64_t)cq->ibv.cqe) {
		cq_overflowed(cq);
		rc = -1;
	} else {
		struct ibemu_cqe *e = &cq->ring[cq->ring_tail & cq->ring_mask];
		e->wc = *wc;
		e->sq_qp = sq_qp;
		e->sq_idx = sq_idx;
		cq->ring_tail++;
	}
	if (!locked)
		pthread_spin_unlock(&cq->lock);
	if (rc == 0)
		ibemu_cq_signal(ibemu_g.node_idx, cq->slot,
				wc->status != IBV_WC_SUCCESS);
	return rc;
}

int ibemu_cq_attach_rx(struct ibemu_cq *cq, struct ibemu_qp *qp)
{
	struct ibemu_qp **grown = NULL;
	int rc = 0;

	pthread_spin_lock(&cq->lock);
	if (cq->n_rx_qps == cq->cap_rx_qps) {
		uint32_t cap = cq->cap_rx_qps ? 2 * cq->cap_rx_qps : 8;
		/* no allocation under a spinlock: grow outside, then retry */
		pthread_spin_unlock(&cq->lock);
		grown = calloc(cap, sizeof(*grown));
		if (!grown)
			return ENOMEM;
		pthread_spin_lock(&cq->lock);
		if (cq->cap_rx_qps < cap) {
			if (cq->n_rx_qps)
				memcpy(grown, cq->rx_qps, cq->n_rx_qps * sizeof(*grown));
			free(cq->rx_qps);
			cq->rx_qps = grown;
			cq->cap_rx_qps = cap;
			grown = NULL;
		}
	}
	if (cq->n_rx_qps < cq->cap_rx_qps)
		cq->rx_qps[cq->n_rx_qps++] = qp;
	else
		rc = EAGAIN;
	pthread_spin_unlock(&cq->lock);
	free(grown);
	return rc;
}

void ibemu_cq_detach_rx(struct ibemu_cq *cq, struct ibemu_qp *qp)
{
	pthread_spin_lock(&cq->lock);
	for (uint32_t i = 0; i < cq->n_rx_qps; i++)
		if (cq->rx_qps[i] == qp) {
			cq->rx_qps[i] = cq->rx_qps[--cq->n_rx_qps];
			break;
		}
	/* drop its queued completions: the QP is gone */
	for (uint64_t i = cq->ring_head; i < cq->ring_tail; i++) {
		struct ibemu_cqe *e = &cq->ring[i & cq->ring_mask];
		if (e->sq_qp == qp)
			e->sq_qp = NULL;
	}
	pthread_spin_unlock(&cq->lock);
}

int ibemu_poll_cq(struct ibv_cq *ibcq, int num, struct ibv_wc *wc)
{
	struct ibemu_cq *cq = (struct ibemu_cq *)ibcq;
	int got = 0;

	if (num <= 0)
		return 0;
	pthread_spin_lock(&cq->lock);
	if (!cq->overflow && cq->may_overflow) {
		uint64_t pending = cq->ring_tail - cq->ring_head;
		for (uint32_t i = 0; i < cq->n_rx_qps; i++)
			pending += ibemu_qp_rx_pending(cq->rx_qps[i]);
		if (pending > (uint64_t)cq->ibv.cqe)
			cq_overflowed(cq);
	}
	if (cq->overflow) {
		pthread_spin_unlock(&cq->lock);
		errno = EOVERFLOW;
		return -1;
	}
	while (got < num && cq->ring_head < cq->ring_tail) {
		struct ibemu_cqe *e = &cq->ring[cq->ring_head++ & cq->ring_mask];
		wc[got++] = e->wc;
		if (e->sq_qp)
			e->sq_qp->sq_retired = e->sq_idx + 1;
	}
	/* round robin: a busy QP cannot starve the others of a shared CQ */
	uint32_t nq = cq->n_rx_qps;
	for (uint32_t i = 0; i < nq && got < num; i++)
		got += ibemu_qp_rx_progress(cq->rx_qps[(cq->rr + i) % nq], wc + got,
					    num - got);
	if (nq)
		cq->rr = (cq->rr + 1) % nq;
	pthread_spin_unlock(&cq->lock);
	if (!got && (++cq->idle_polls & 255) == 0)
		ibemu_maintenance();
	return got;
}

int ibemu_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct ibemu_cq *cq = (struct ibemu_cq *)ibcq;

	atomic_store(&ibemu_g.me->cq[cq->slot].armed,
		     solicited_only ? IBEMU_ARM_SOLICITED : IBEMU_ARM_ANY);
	return 0;
}
