/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibemu.h"

int tu_open(struct tu_node *n, int cqe, int with_channel)
{
	struct ibv_device **l = ibv_get_device_list(NULL);
	struct ibv_port_attr pa;

	memset(n, 0, sizeof(*n));
	if (!l || !l[0])
		return -1;
	n->ctx = ibv_open_device(l[0]);
	ibv_free_device_list(l);
	if (!n->ctx)
		return -1;
	n->pd = ibv_alloc_pd(n->ctx);
	if (with_channel)
		n->ch = ibv_create_comp_channel(n->ctx);
	n->cq = ibv_create_cq(n->ctx, cqe, NULL, n->ch, 0);
	n->buf = aligned_alloc(4096, TU_BUF_SIZE);
	if (!n->pd || !n->cq || !n->buf || (with_channel && !n->ch))
		return -1;
	memset(n->buf, 0, TU_BUF_SIZE);
	n->mr = ibv_reg_mr(n->pd, n->buf, TU_BUF_SIZE, IBV_ACCESS_LOCAL_WRITE);
	if (!n->mr || ibv_query_port(n->ctx, 1, &pa) || ibv_query_gid(n->ctx, 1, 0, &n->gid))
		return -1;
	n->lid = pa.lid;
	return 0;
}

void tu_close(struct tu_node *n)
{
	if (n->mr)
		ibv_dereg_mr(n->mr);
	if (n->cq)
		ibv_destroy_cq(n->cq);
	if (n->ch)
		ibv_destroy_comp_channel(n->ch);
	if (n->pd)
		ibv_dealloc_pd(n->pd);
	if (n->ctx)
		ibv_close_device(n->ctx);
	free(n->buf);
	memset(n, 0, sizeof(*n));
}

struct ibv_qp *tu_qp(struct tu_node *n, uint32_t qkey, int sq_sig_all,
		     uint32_t max_inline, uint32_t max_recv_wr)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = n->cq,
		.recv_cq = n->cq,
		.cap = { .max_send_wr = 64, .max_recv_wr = max_recv_wr,
			 .max_send_sge = 4, .max_recv_sge = 4,
			 .max_inline_data = max_inline },
		.qp_type = IBV_QPT_UD,
		.sq_sig_all = sq_sig_all,
	};
	struct ibv_qp *qp = ibv_create_qp(n->pd, &ia);
	if (!qp)
		return NULL;
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .pkey_index = 0,
				 .port_num = 1, .qkey = qkey };
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			  IBV_QP_QKEY))
		goto fail;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		goto fail;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
		goto fail;
	return qp;
fail:
	ibv_destroy_qp(qp);
	return NULL;
}

struct ibv_ah *tu_ah(struct tu_node *n, uint16_t dlid, const union ibv_gid *dgid)
{
	struct ibv_ah_attr a = { .dlid = dlid, .port_num = 1 };

	if (dgid) {
		a.is_global = 1;
		a.grh.dgid = *dgid;
		a.grh.hop_limit = 1;
	}
	return ibv_create_ah(n->pd, &a);
}

int tu_post_recv(struct ibv_qp *qp, struct ibv_mr *mr, void *addr,
		 uint32_t len, uint64_t wr_id)
{
	struct ibv_sge s = { (uintptr_t)addr, len, mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &s, .num_sge = 1 }, *bad;

	return ibv_post_recv(qp, &wr, &bad);
}

int tu_send_imm(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn,
		uint32_t qkey, void *addr, uint32_t len, uint32_t lkey,
		unsigned flags, uint32_t imm_be)
{
	struct ibv_sge s = { (uintptr_t)addr, len, lkey };
	struct ibv_send_wr wr = {
		.wr_id = 7, .sg_list = &s, .num_sge = 1,
		.opcode = IBV_WR_SEND_WITH_IMM, .send_flags = flags,
		.imm_data = imm_be,
	}, *bad;

	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = qpn;
	wr.wr.ud.remote_qkey = qkey;
	return ibv_post_send(qp, &wr, &bad);
}

int tu_send(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn, uint32_t qkey,
	    void *addr, uint32_t len, uint32_t lkey, unsigned flags, uint64_t wr_id)
{
	struct ibv_sge s = { (uintptr_t)addr, len, lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &s, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = flags,
	}, *bad;

	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = qpn;
	wr.wr.ud.remote_qkey = qkey;
	return ibv_post_send(qp, &wr, &bad);
}

int tu_poll(struct ibv_cq *cq, struct ibv_wc *wc, int n, int timeout_ms)
{
	struct timespec t0, t;
	int got = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0)
			return -1;
		got += r;
		if (got >= n)
			return got;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
		    timeout_ms)
			return got;
	}
}

int tu_counters(void *out)
{
	return ibemu_get_counters(out);
}
