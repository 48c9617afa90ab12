/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * cmocka tests of the emulated HCA's verbs semantics on one node:
 * queries, MRs and lkeys, the UD state machine, UD delivery rules, CQs
 * and completion channels, AHs from completions, declined features.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ibemu.h"
#include "test_util.h"

#define GRH 40u

static int setup(void **state)
{
	struct tu_node *n = calloc(1, sizeof(*n));

	if (!n || tu_open(n, 256, 1))
		return -1;
	*state = n;
	return 0;
}

static int teardown(void **state)
{
	tu_close(*state);
	free(*state);
	return 0;
}

static void test_device_and_port(void **state)
{
	struct tu_node *n = *state;
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	union ibv_gid gid;
	__be16 pkey;
	int num;

	struct ibv_device **l = ibv_get_device_list(&num);
	assert_int_equal(num, 1);
	assert_string_equal(ibv_get_device_name(l[0]), "ibemu0");
	assert_null(l[1]);
	ibv_free_device_list(l);

	assert_int_equal(ibv_query_device(n->ctx, &da), 0);
	assert_int_equal(da.phys_port_cnt, 1);
	assert_true(da.max_qp_wr >= 1024);
	assert_true(da.max_sge >= 16);
	assert_true(da.max_cqe >= 65536);
	assert_true(da.max_mcast_grp > 0);

	assert_int_equal(ibv_query_port(n->ctx, 1, &pa), 0);
	assert_int_equal(pa.state, IBV_PORT_ACTIVE);
	assert_int_equal(pa.active_mtu, IBV_MTU_4096);
	assert_int_equal(pa.link_layer, IBV_LINK_LAYER_INFINIBAND);
	assert_true(pa.lid > 0 && pa.lid < 0xC000);
	assert_int_not_equal(ibv_query_port(n->ctx, 2, &pa), 0);

	assert_int_equal(ibv_query_gid(n->ctx, 1, 0, &gid), 0);
	assert_int_equal(be64toh(gid.global.subnet_prefix), 0xfe80000000000000ull);
	assert_int_equal(gid.global.interface_id, da.node_guid);
	assert_int_equal(ibv_query_pkey(n->ctx, 1, 0, &pkey), 0);
	assert_int_equal(be16toh(pkey), 0xffff);
}

static void test_qp_state_machine(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp_init_attr ia = {
		.send_cq = n->cq, .recv_cq = n->cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(n->pd, &ia);
	struct ibv_qp_attr a = { 0 };
	struct ibv_qp_init_attr qi;

	assert_non_null(qp);
	assert_int_equal(qp->state, IBV_QPS_RESET);
	a.qp_state = IBV_QPS_RTR;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), EINVAL);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qkey = 0x1234;
	/* INIT without QKEY, and INIT with an RC-only attribute */
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT), EINVAL);
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT | IBV_QP_QKEY | IBV_QP_ACCESS_FLAGS),
			 EINVAL);
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT | IBV_QP_QKEY), 0);
	a.qp_state = IBV_QPS_RTS;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN), EINVAL);
	a.qp_state = IBV_QPS_RTR;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV), EINVAL);
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
	a.qp_state = IBV_QPS_RTS;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), EINVAL);
	a.sq_psn = 0x123456;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN), 0);
	assert_int_equal(ibv_query_qp(qp, &a, IBV_QP_STATE | IBV_QP_QKEY | IBV_QP_CAP,
				      &qi), 0);
	assert_int_equal(a.qp_state, IBV_QPS_RTS);
	assert_int_equal(a.qkey, 0x1234);
	assert_int_equal(a.sq_psn, 0x123456);
	assert_int_equal(qi.cap.max_recv_wr, 4);
	assert_int_equal(qi.qp_type, IBV_QPT_UD);
	a.qp_state = IBV_QPS_RESET;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
	assert_int_equal(ibv_destroy_qp(qp), 0);
}

static void test_loopback_grh_imm(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 0, 0, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL), *gah = tu_ah(n, 0, &n->gid);
	struct ibv_wc wc[4];

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(ah);
	assert_non_null(gah);
	memset(n->buf, 0xEE, 8192);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096 + GRH, 1), 0);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf + 8192, 4096 + GRH, 2), 0);
	strcpy((char *)n->buf + 65536, "hello ud");
	assert_int_equal(tu_send_imm(a, ah, b->qp_num, TU_QKEY, n->buf + 65536, 9,
				     n->mr->lkey, IBV_SEND_SIGNALED, htobe32(0xabcd)), 0);
	/* by GID only (LID 0): routed by the GRH, IBV_WC_GRH set */
	assert_int_equal(tu_send(a, gah, b->qp_num, TU_QKEY, n->buf + 65536, 9,
				 n->mr->lkey, IBV_SEND_SIGNALED, 9), 0);
	assert_int_equal(tu_poll(n->cq, wc, 4, 1000), 4);
	int seen_recv = 0;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
		if (wc[i].opcode == IBV_WC_SEND)
			continue;
		assert_int_equal(wc[i].opcode, IBV_WC_RECV);
		assert_int_equal(wc[i].byte_len, GRH + 9);
		assert_int_equal(wc[i].src_qp, a->qp_num);
		assert_int_equal(wc[i].qp_num, b->qp_num);
		assert_int_equal(wc[i].slid, n->lid);
		if (wc[i].wr_id == 1) {
			assert_true(wc[i].wc_flags & IBV_WC_WITH_IMM);
			assert_false(wc[i].wc_flags & IBV_WC_GRH);
			assert_int_equal(be32toh(wc[i].imm_data), 0xabcd);
			assert_string_equal((char *)n->buf + GRH, "hello ud");
			assert_int_equal(n->buf[0], 0xEE); /* GRH area untouched */
		} else {
			struct ibv_grh *g = (struct ibv_grh *)(n->buf + 8192);
			assert_true(wc[i].wc_flags & IBV_WC_GRH);
			assert_memory_equal(&g->sgid, &n->gid, 16);
			assert_memory_equal(&g->dgid, &n->gid, 16);
			assert_string_equal((char *)n->buf + 8192 + GRH, "hello ud");
			/* answer through an AH made from the completion */
			struct ibv_ah *r = ibv_create_ah_from_wc(n->pd, &wc[i], g, 1);
			struct ibv_ah_attr aa;
			assert_non_null(r);
			assert_int_equal(ibv_init_ah_from_wc(n->ctx, 1, &wc[i], g, &aa), 0);
			assert_int_equal(aa.dlid, n->lid);
			assert_true(aa.is_global);
			assert_memory_equal(&aa.grh.dgid, &n->gid, 16);
			ibv_destroy_ah(r);
		}
		seen_recv++;
	}
	assert_int_equal(seen_recv, 2);
	ibv_destroy_ah(ah);
	ibv_destroy_ah(gah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

static void test_drops_counted(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 1, 0, 16), *b = tu_qp(n, 0x2222, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibemu_counters c0, c1;
	struct ibv_wc wc[8];

	assert_int_equal(tu_counters(&c0), 0);
	/* no receive posted: dropped silently, the sender still completes */
	assert_int_equal(tu_send(a, ah, b->qp_num, 0x2222, n->buf, 64, n->mr->lkey, 0, 1), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	assert_int_equal(wc[0].status, IBV_WC_SUCCESS);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf + 4096, 4096 + GRH, 5), 0);
	/* wrong Q_Key: dropped silently */
	assert_int_equal(tu_send(a, ah, b->qp_num, 0x3333, n->buf, 64, n->mr->lkey, 0, 2), 0);
	/* high bit set: the sending QP's Q_Key (TU_QKEY) is used: dropped */
	assert_int_equal(tu_send(a, ah, b->qp_num, 0x80000000u, n->buf, 64, n->mr->lkey, 0, 3), 0);
	/* unknown QPN */
	assert_int_equal(tu_send(a, ah, 0xABCDE, 0x2222, n->buf, 64, n->mr->lkey, 0, 4), 0);
	assert_int_equal(tu_poll(n->cq, wc, 8, 200), 3); /* only send completions */
	assert_int_equal(tu_counters(&c1), 0);
	assert_int_equal(c1.drop_no_recv - c0.drop_no_recv, 1);
	assert_int_equal(c1.drop_qkey - c0.drop_qkey, 2);
	assert_int_equal(c1.drop_no_dest - c0.drop_no_dest, 1);
	/* right Q_Key: delivered */
	assert_int_equal(tu_send(a, ah, b->qp_num, 0x2222, n->buf, 64, n->mr->lkey, 0, 6), 0);
	assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

static void test_lkey_and_bounds(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 1, 0, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_wc wc[8];

	/* send SGE with a wrong lkey: LOC_PROT_ERR, QP to error */
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 64,
				 n->mr->lkey ^ 0x100, 0, 1), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	assert_int_equal(wc[0].status, IBV_WC_LOC_PROT_ERR);
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	ibv_query_qp(a, &qa, IBV_QP_STATE, &qi);
	assert_int_equal(qa.qp_state, IBV_QPS_ERR);
	/* later sends are flushed */
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 64, n->mr->lkey, 0, 2), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	assert_int_equal(wc[0].status, IBV_WC_WR_FLUSH_ERR);
	ibv_destroy_qp(a);

	/* receive SGE past the end of its MR: LOC_PROT_ERR on the receive */
	a = tu_qp(n, TU_QKEY, 1, 0, 16);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf + TU_BUF_SIZE - 100, 200, 3), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 100, n->mr->lkey, 0, 4), 0);
	assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
	int prot = 0;
	for (int i = 0; i < 2; i++)
		if (wc[i].opcode == IBV_WC_RECV && wc[i].status == IBV_WC_LOC_PROT_ERR)
			prot++;
	assert_int_equal(prot, 1);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

static void test_recv_too_small_and_flush(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 0, 0, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_wc wc[8];

	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 100, 1), 0); /* < 40 + 512 */
	assert_int_equal(tu_post_recv(b, n->mr, n->buf + 4096, 4096, 2), 0);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf + 8192, 4096, 3), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf + 65536, 512,
				 n->mr->lkey, 0, 9), 0);
	assert_int_equal(tu_poll(n->cq, wc, 3, 1000), 3);
	assert_int_equal(wc[0].wr_id, 1);
	assert_int_equal(wc[0].status, IBV_WC_LOC_LEN_ERR);
	assert_int_equal(wc[1].status, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(wc[2].status, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(b->state, IBV_QPS_ERR);

	/* modify to ERR flushes outstanding receives; RESET and back works */
	struct ibv_qp_attr at = { .qp_state = IBV_QPS_ERR };
	assert_int_equal(tu_post_recv(a, n->mr, n->buf, 4096, 11), 0);
	assert_int_equal(tu_post_recv(a, n->mr, n->buf, 4096, 12), 0);
	assert_int_equal(ibv_modify_qp(a, &at, IBV_QP_STATE), 0);
	assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
	assert_int_equal(wc[0].status, IBV_WC_WR_FLUSH_ERR);
	assert_int_equal(wc[1].wr_id, 12);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

/* What a daemon does when a QP fell into error: RESET, back to RTS,
 * repost, and traffic flows again. */
static void test_recover_from_error(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 1, 0, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_qp_attr at = { .qp_state = IBV_QPS_ERR };
	struct ibv_wc wc[8];

	for (int round = 0; round < 3; round++) {
		assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 1), 0);
		assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf + 8192, 100,
					 n->mr->lkey, 0, 2), 0);
		assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
		assert_int_equal(wc[0].status, IBV_WC_SUCCESS);
		assert_int_equal(wc[1].status, IBV_WC_SUCCESS);
		/* a message that arrives while b is in error is dropped */
		at.qp_state = IBV_QPS_ERR;
		assert_int_equal(ibv_modify_qp(b, &at, IBV_QP_STATE), 0);
		assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf + 8192, 100,
					 n->mr->lkey, 0, 3), 0);
		assert_int_equal(tu_poll(n->cq, wc, 8, 50), 1);
		at.qp_state = IBV_QPS_RESET;
		assert_int_equal(ibv_modify_qp(b, &at, IBV_QP_STATE), 0);
		at.qp_state = IBV_QPS_INIT;
		at.port_num = 1;
		at.pkey_index = 0;
		at.qkey = TU_QKEY;
		assert_int_equal(ibv_modify_qp(b, &at, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					       IBV_QP_PORT | IBV_QP_QKEY), 0);
		/* receives posted in INIT are kept for RTR */
		assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 4), 0);
		at.qp_state = IBV_QPS_RTR;
		assert_int_equal(ibv_modify_qp(b, &at, IBV_QP_STATE), 0);
		at.qp_state = IBV_QPS_RTS;
		at.sq_psn = 0;
		assert_int_equal(ibv_modify_qp(b, &at, IBV_QP_STATE | IBV_QP_SQ_PSN), 0);
		assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf + 8192, 100,
					 n->mr->lkey, 0, 5), 0);
		assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
		int recv_ok = 0;
		for (int i = 0; i < 2; i++)
			recv_ok += wc[i].opcode == IBV_WC_RECV && wc[i].wr_id == 4 &&
				   wc[i].status == IBV_WC_SUCCESS;
		assert_int_equal(recv_ok, 1);
	}
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

static void test_mtu_inline_signaling(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 0, 64, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 64);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	struct ibv_wc wc[80];
	uint8_t stack_msg[64] = "inline";

	ibv_query_qp(a, &qa, IBV_QP_CAP, &qi);
	assert_true(qi.cap.max_inline_data >= 64);
	/* larger than the path MTU: LOC_LEN_ERR */
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 4097, n->mr->lkey,
				 IBV_SEND_SIGNALED, 1), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	assert_int_equal(wc[0].status, IBV_WC_LOC_LEN_ERR);
	ibv_destroy_qp(a);
	a = tu_qp(n, TU_QKEY, 0, 64, 16);

	/* inline: no lkey needed, data from unregistered memory */
	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 2), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, stack_msg, 7, 0,
				 IBV_SEND_INLINE | IBV_SEND_SIGNALED, 3), 0);
	assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
	assert_string_equal((char *)n->buf + GRH, "inline");
	/* more than max_inline_data: EINVAL at post time */
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 1024, 0,
				 IBV_SEND_INLINE, 4), EINVAL);

	/* unsignaled sends produce no completion and fill the SQ (64) */
	int rc = 0, posted = 0;
	for (int i = 0; i < 100 && !rc; i++)
		if (!(rc = tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 8, n->mr->lkey, 0, 5)))
			posted++;
	assert_int_equal(rc, ENOMEM);
	assert_int_equal(posted, 64);
	assert_int_equal(tu_poll(n->cq, wc, 1, 100), 0);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

/* A UD QP of 8 send/8 receive WRs on `cq`, every send signalled, in RTS. */
static struct ibv_qp *small_ud_qp(struct tu_node *n, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD, .sq_sig_all = 1,
		.cap = { .max_send_wr = 8, .max_recv_wr = 8, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(n->pd, &ia);

	assert_non_null(qp);
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = 1 };
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT | IBV_QP_QKEY), 0);
	a.qp_state = IBV_QPS_RTR;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
	a.qp_state = IBV_QPS_RTS;
	assert_int_equal(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN), 0);
	return qp;
}

/* A CQ grows in use: queued completions survive, the larger size takes
 * what overflowed the smaller one; shrinking below what is queued fails. */
static void test_cq_resize(void **state)
{
	struct tu_node *n = *state;
	struct ibv_cq *cq = ibv_create_cq(n->ctx, 2, NULL, NULL, 0);
	struct ibemu_counters c0, c1;
	struct ibv_wc wc[8];
	int got = 0;

	assert_non_null(cq);
	tu_counters(&c0);
	struct ibv_qp *qp = small_ud_qp(n, cq);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	tu_send(qp, ah, 0xFFFF00, 1, n->buf, 8, n->mr->lkey, 0, 100);
	tu_send(qp, ah, 0xFFFF00, 1, n->buf, 8, n->mr->lkey, 0, 101);
	assert_int_equal(ibv_resize_cq(cq, 0), EINVAL);
	assert_int_equal(ibv_resize_cq(cq, 1), EINVAL); /* 2 queued */
	assert_int_equal(ibv_resize_cq(cq, 8), 0);
	assert_int_equal(cq->cqe, 8);
	for (int i = 0; i < 6; i++)
		tu_send(qp, ah, 0xFFFF00, 1, n->buf, 8, n->mr->lkey, 0,
			(uint64_t)i);
	while (got < 8) {
		int r = tu_poll(cq, wc + got, 8 - got, 1000);

		assert_true(r > 0);
		got += r;
	}
	assert_int_equal(wc[0].wr_id, 100); /* moved across the resize */
	assert_int_equal(wc[1].wr_id, 101);
	for (int i = 0; i < 8; i++)
		assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
	tu_counters(&c1);
	assert_int_equal(c1.cq_overflow - c0.cq_overflow, 0);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(qp);
	ibv_destroy_cq(cq);
}

static void test_cq_overflow(void **state)
{
	struct tu_node *n = *state;
	struct ibv_cq *cq = ibv_create_cq(n->ctx, 2, NULL, NULL, 0);
	struct ibemu_counters c0, c1;
	struct ibv_wc wc[4];

	tu_counters(&c0);
	struct ibv_qp *qp = small_ud_qp(n, cq);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	for (int i = 0; i < 4; i++)
		tu_send(qp, ah, 0xFFFF00, 1, n->buf, 8, n->mr->lkey, 0, (uint64_t)i);
	assert_int_equal(ibv_poll_cq(cq, 4, wc), -1);
	tu_counters(&c1);
	assert_int_equal(c1.cq_overflow - c0.cq_overflow, 1);
	struct ibv_async_event ev;
	assert_int_equal(ibv_get_async_event(n->ctx, &ev), 0);
	assert_int_equal(ev.event_type, IBV_EVENT_CQ_ERR);
	assert_ptr_equal(ev.element.cq, cq);
	ibv_ack_async_event(&ev);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(qp);
	assert_int_equal(ibv_destroy_cq(cq), 0);
}

static void test_comp_channel(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp *a = tu_qp(n, TU_QKEY, 0, 0, 16), *b = tu_qp(n, TU_QKEY, 0, 0, 16);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct pollfd pfd = { .fd = n->ch->fd, .events = POLLIN };
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	struct ibv_wc wc[2];

	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 1), 0);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 2), 0);
	/* not armed: no event */
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 8, n->mr->lkey, 0, 1), 0);
	assert_int_equal(poll(&pfd, 1, 50), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	/* solicited only: an unsolicited message does not wake, a solicited does */
	assert_int_equal(ibv_req_notify_cq(n->cq, 1), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 8, n->mr->lkey, 0, 2), 0);
	assert_int_equal(poll(&pfd, 1, 50), 0);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 3), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 8, n->mr->lkey,
				 IBV_SEND_SOLICITED, 3), 0);
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(ibv_get_cq_event(n->ch, &ev_cq, &ev_ctx), 0);
	assert_ptr_equal(ev_cq, n->cq);
	ibv_ack_cq_events(ev_cq, 1);
	assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
	/* armed for any: the next completion wakes, once */
	assert_int_equal(ibv_req_notify_cq(n->cq, 0), 0);
	assert_int_equal(tu_post_recv(b, n->mr, n->buf, 4096, 4), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, TU_QKEY, n->buf, 8, n->mr->lkey, 0, 4), 0);
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(ibv_get_cq_event(n->ch, &ev_cq, &ev_ctx), 0);
	ibv_ack_cq_events(ev_cq, 1);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(tu_poll(n->cq, wc, 1, 1000), 1);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
}

/* Many QPs sharing one CQ (a polling core's ports): all are served. */
static void test_many_qps_one_cq(void **state)
{
	struct tu_node *n = *state;
	enum { NQP = 100 };
	struct ibv_qp *qp[NQP];
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_wc wc[8];

	for (int i = 0; i < NQP; i++) {
		qp[i] = tu_qp(n, TU_QKEY, 1, 0, 2);
		assert_non_null(qp[i]);
	}
	for (int i = 0; i < NQP; i += 33) {
		assert_int_equal(tu_post_recv(qp[i], n->mr, n->buf, 4096, (uint64_t)i), 0);
		assert_int_equal(tu_send(qp[0], ah, qp[i]->qp_num, TU_QKEY, n->buf + 8192,
					 16, n->mr->lkey, 0, 1000), 0);
		assert_int_equal(tu_poll(n->cq, wc, 2, 1000), 2);
		int seen = 0;
		for (int k = 0; k < 2; k++)
			seen += wc[k].opcode == IBV_WC_RECV && wc[k].qp_num == qp[i]->qp_num;
		assert_int_equal(seen, 1);
	}
	for (int i = 0; i < NQP; i++)
		assert_int_equal(ibv_destroy_qp(qp[i]), 0);
	ibv_destroy_ah(ah);
}

static void test_declined_features(void **state)
{
	struct tu_node *n = *state;
	struct ibv_qp_init_attr ia = {
		.send_cq = n->cq, .recv_cq = n->cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 4, .max_sge = 1 } };

	errno = 0;
	assert_null(ibv_create_qp(n->pd, &ia));
	assert_int_equal(errno, EOPNOTSUPP);
	errno = 0;
	assert_null(ibv_create_srq(n->pd, &sa));
	assert_int_equal(errno, EOPNOTSUPP);
	errno = 0;
	assert_null(ibv_alloc_mw(n->pd, IBV_MW_TYPE_1));
	assert_int_equal(errno, EOPNOTSUPP);
	/* an RDMA write on a UD QP is invalid */
	struct ibv_qp *qp = tu_qp(n, 1, 0, 0, 4);
	struct ibv_ah *ah = tu_ah(n, n->lid, NULL);
	struct ibv_sge s = { (uintptr_t)n->buf, 8, n->mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &s, .num_sge = 1,
				  .opcode = IBV_WR_RDMA_WRITE }, *bad;
	wr.wr.ud.ah = ah;
	assert_int_equal(ibv_post_send(qp, &wr, &bad), EINVAL);
	assert_ptr_equal(bad, &wr);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(qp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_device_and_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qp_state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_grh_imm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drops_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lkey_and_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_too_small_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_from_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mtu_inline_signaling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cq_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cq_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_comp_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_qps_one_cq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_declined_features, setup, teardown),
	};
	char fab[64];

	snprintf(fab, sizeof(fab), "verbs%d", (int)getpid());
	setenv("IBEMU_FABRIC", fab, 1);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -f /dev/shm/ibemu-%s /dev/shm/ibemu-%s.*", fab, fab);
	(void)!system(cmd);
	return rc;
}
