/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * Helpers shared by the ibemu cmocka tests: one node's verbs objects, a UD
 * QP brought to RTS, posting and bounded polling.
 */
#ifndef IBEMU_TEST_UTIL_H
#define IBEMU_TEST_UTIL_H

#include <infiniband/verbs.h>
#include <stdint.h>

#define TU_BUF_SIZE (1u << 20)
#define TU_QKEY 0x11111111u

struct tu_node {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_comp_channel *ch;
	struct ibv_mr *mr;
	uint8_t *buf;
	uint16_t lid;
	union ibv_gid gid;
};

int tu_open(struct tu_node *n, int cqe, int with_channel);
void tu_close(struct tu_node *n);
struct ibv_qp *tu_qp(struct tu_node *n, uint32_t qkey, int sq_sig_all,
		     uint32_t max_inline, uint32_t max_recv_wr);
struct ibv_ah *tu_ah(struct tu_node *n, uint16_t dlid, const union ibv_gid *dgid);
int tu_post_recv(struct ibv_qp *qp, struct ibv_mr *mr, void *addr,
		 uint32_t len, uint64_t wr_id);
int tu_send(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn, uint32_t qkey,
	    void *addr, uint32_t len, uint32_t lkey, unsigned flags,
	    uint64_t wr_id);
int tu_send_imm(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn,
		uint32_t qkey, void *addr, uint32_t len, uint32_t lkey,
		unsigned flags, uint32_t imm_be);
/* poll until n completions or timeout_ms elapsed; returns count or -1 */
int tu_poll(struct ibv_cq *cq, struct ibv_wc *wc, int n, int timeout_ms);
int tu_counters(void *out); /* ibemu_get_counters through the library */

#endif
