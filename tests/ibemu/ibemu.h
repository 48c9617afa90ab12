/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibemu public test interface: counters of the emulated fabric.
 *
 * Programs running on the emulated libibverbs.so.1 (LD_LIBRARY_PATH) may
 * look these symbols up with dlsym(RTLD_DEFAULT, "ibemu_get_counters") so
 * that they still link against rdma-core's real library.
 */
#ifndef IBEMU_H
#define IBEMU_H

#include <stdint.h>

/* One node's counters. Drops are counted on the node that would have
 * received the message (that is where a real HCA counts them). */
struct ibemu_counters {
	uint64_t tx_pkts;          /* messages sent by this node's QPs */
	uint64_t tx_bytes;
	uint64_t rx_pkts;          /* messages scattered into posted recvs */
	uint64_t rx_bytes;         /* payload bytes, GRH area excluded */
	uint64_t drop_qkey;        /* Q_Key mismatch */
	uint64_t drop_no_recv;     /* no receive WR posted */
	uint64_t drop_qp_state;    /* destination QP not in RTR/RTS */
	uint64_t drop_no_dest;     /* unknown LID/GID or QPN on the fabric */
	uint64_t drop_mcast_qpn;   /* multicast DLID with QPN != 0xFFFFFF */
	uint64_t drop_fault;       /* dropped by fault injection (drop_pct) */
	uint64_t rx_len_err;       /* receive WR too small: LOC_LEN_ERR */
	uint64_t rx_prot_err;      /* receive SGE outside its MR: LOC_PROT_ERR */
	uint64_t tx_prot_err;      /* send SGE outside its MR: LOC_PROT_ERR */
	uint64_t tx_len_err;       /* send larger than the path MTU */
	uint64_t cq_overflow;      /* completion queues that overflowed */
	uint64_t doorbells;        /* completion-channel wake-ups sent */
	uint64_t fault_reg_mr;     /* ibv_reg_mr failed by fault injection */
	uint64_t fault_qp_error;   /* QPs moved to error by fault injection */
};

/* Counters of the calling process's node; 0, or -1 with errno (ENODEV when
 * the device was never opened). */
int ibemu_get_counters(struct ibemu_counters *out);
/* Counters of the node with this LID on the same fabric. */
int ibemu_get_node_counters(uint16_t lid, struct ibemu_counters *out);

#endif
