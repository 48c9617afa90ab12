/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ib: the daemon's InfiniBand transport.
 *
 * Owns the verbs device the daemon uses (context, port facts, one PD), and
 * the slow-path verbs operations every other module needs: registering
 * guest memory, creating and driving UD queue pairs through their state
 * machine, address handles by LID or by GID, and joining a segment's
 * multicast group through rdma_cm. Every failure is logged here with the
 * object it concerns and what to check, so callers only decide what to do.
 *
 * Not on the per-frame path: the polling core posts and polls with the
 * verbs directly.
 */
#ifndef IBVHOST_IB_H
#define IBVHOST_IB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* A UD receive buffer starts with room for the Global Route Header, filled
 * by the HCA whether or not the sender used one. */
#define IB_GRH_LEN 40
/* The Q_Key the multicast group is sent to with: the QPN of "all QPs
 * attached to the destination multicast LID/GID". */
#define IB_MCAST_QPN 0xFFFFFFu
/* How long a multicast join may take before we give up (the SA answers
 * in milliseconds on a healthy fabric). */
#define IB_MCAST_JOIN_TIMEOUT_MS 5000

/* The source GID of a received UD message, from the GRH area its receive
 * WR began with (valid when the completion has IBV_WC_GRH): the GRH's
 * source GID on InfiniBand, RoCE v1 and RoCE v2 over IPv6; on RoCE v2
 * over IPv4 the area holds the IPv4 header in its last 20 bytes instead,
 * and the GID is the IPv4-mapped source address (::ffff:a.b.c.d), as the
 * sender's RoCE v2 GID table has it. */
void ib_grh_sgid(const uint8_t grh[IB_GRH_LEN], uint8_t sgid[16]);

struct ib_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char name[64];
	uint8_t port;
	int gid_index;
	uint16_t lid;
	union ibv_gid gid;
	bool roce;		 /* link layer Ethernet: no LIDs, GRH always */
	enum ibv_mtu active_mtu;
	uint32_t mtu_bytes;	 /* the largest UD message, in bytes */
	uint32_t max_qp_wr;
	uint32_t max_sge;	 /* per WR, send and receive */
	uint32_t max_cqe;
	uint16_t pkey_index;
};

/* Open `name` (empty or NULL: the first device with `port` ACTIVE), query
 * the port and GID, allocate the PD. 0, or -errno with the reason logged. */
int ib_dev_open(const char *name, uint8_t port, int gid_index,
		struct ib_dev **out);
void ib_dev_close(struct ib_dev *dev);

/* "4096" for IBV_MTU_4096, 0 for an unknown value. */
uint32_t ib_mtu_bytes(enum ibv_mtu mtu);

/* Register [addr, addr+len) for local write (the HCA scatters received
 * frames into it and gathers sent ones from it). On failure logs
 * "<what>: ibv_reg_mr(<len>) failed: <why> (<what to do>)" and returns NULL
 * with errno set. */
struct ibv_mr *ib_reg_mr(struct ib_dev *dev, void *addr, size_t len,
			 const char *what);

/* The sizes a UD QP is created with. */
struct ib_qp_caps {
	uint32_t send_wr, recv_wr;
	uint32_t send_sge, recv_sge;
	uint32_t max_inline;
};

/* Create a UD QP on the given CQs and bring it to RTS with `qkey`.
 * `caps` is clamped to the device limits; the granted values are written
 * back. NULL with the reason logged on failure. */
struct ibv_qp *ib_ud_qp_create(struct ib_dev *dev, struct ibv_cq *send_cq,
			       struct ibv_cq *recv_cq, uint32_t qkey,
			       struct ib_qp_caps *caps, const char *what);
/* RESET -> INIT -> RTR -> RTS. Used at creation and to recover a QP that
 * fell into the error state (after its WRs were flushed and it was reset). */
int ib_ud_qp_activate(struct ib_dev *dev, struct ibv_qp *qp, uint32_t qkey,
		      const char *what);
/* Move to ERR (every outstanding WR completes with a flush error). */
int ib_qp_to_err(struct ibv_qp *qp, const char *what);
int ib_qp_to_reset(struct ibv_qp *qp, const char *what);

/* An address handle to a remote port: by GID when `gid` is non-NULL and
 * not all zero (global route, mandatory on RoCE), else by LID. */
struct ibv_ah *ib_ah_create(struct ib_dev *dev, uint16_t lid,
			    const uint8_t *gid);

/* One joined multicast group: where a segment floods. */
struct ib_mcast {
	struct rdma_event_channel *channel;
	struct rdma_cm_id *id;
	struct sockaddr_storage addr; /* the group, as joined */
	union ibv_gid mgid;
	uint16_t mlid;
	struct ibv_ah *ah; /* on our PD: send to the group with this */
};

/* Join the group `mgid` through rdma_cm (bound to our port's GID, or to
 * its IPv4 address on RoCE), waiting at most IB_MCAST_JOIN_TIMEOUT_MS.
 * 0 or -errno, logged with the group and the cause. */
int ib_mcast_join(struct ib_dev *dev, const uint8_t mgid[16],
		  struct ib_mcast **out);
void ib_mcast_leave(struct ib_mcast *mc);

/* The segment's default group when the config names none: a link-local,
 * transient IB multicast GID that carries the Q_Key, so every host derives
 * the same group for the same segment. */
void ib_mcast_default_gid(uint32_t qkey, uint8_t mgid[16]);

void ib_gid_format(const uint8_t gid[16], char out[40]);

#endif
