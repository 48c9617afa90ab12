/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * rdmacm internals: event channels are datagram sockets in the abstract
 * namespace; every event, local or from another node (SIDR), travels
 * through them as a `struct cm_wire`, so the channel fd is a real fd.
 */
#ifndef IBEMU_RDMACM_INT_H
#define IBEMU_RDMACM_INT_H

#include <infiniband/ib.h>
#include <rdma/rdma_cma.h>
#include <stdbool.h>

#include "ibemu_priv.h"

#define CM_EXPORT __attribute__((visibility("default")))
#define CM_PDATA_MAX 136 /* SIDR REQ private data, IBA 16.3.5 */
#define IPOIB_QKEY 0x0000000Bu

struct cm_chan {
	struct rdma_event_channel ch;
	uint32_t id;
};

struct cm_join {
	struct cm_join *next;
	struct sockaddr_storage addr;
	union ibv_gid mgid;
	uint16_t mlid;
	bool sendonly;
	bool attached;
	void *context;
};

struct cm_id {
	struct rdma_cm_id id;
	struct cm_id *next_live;
	bool bound, listening, sync, own_pd;
	uint16_t port;             /* host order */
	struct cm_join *joins;
	struct ibv_sa_path_rec path;
	struct ibemu_node_addr peer;
	/* SIDR: where the answer goes (server side) / what we asked (client) */
	pid_t peer_pid;
	uint32_t peer_chan;
	uint64_t peer_cookie;
};

enum cm_wire_kind { W_LOCAL = 1, W_SIDR_REQ, W_SIDR_REP, W_SIDR_REJ };

struct cm_wire {
	uint32_t kind;
	uint32_t event;
	int32_t status;
	uint32_t qp_num;
	uint32_t qkey;
	uint16_t src_port, dst_port, ps;
	uint8_t pdata_len;
	uint8_t pad;
	uint64_t cookie;           /* local event: the cm_id; SIDR: client id */
	void *join_ctx;
	struct ibv_ah_attr ah_attr;
	struct ibemu_node_addr src;
	pid_t src_pid;
	uint32_t src_chan;
	struct sockaddr_storage src_addr, dst_addr;
	uint8_t pdata[CM_PDATA_MAX];
};

/* rdmacm.c */
struct ibv_context *cm_verbs(void);
int cm_send_local(struct cm_id *id, const struct cm_wire *w);
int cm_send_to(pid_t pid, uint32_t chan, const struct cm_wire *w);
bool cm_id_live(struct cm_id *id);
void cm_id_link(struct cm_id *id);
int cm_sync_wait(struct cm_id *id, int keep_event);
void cm_fill_route(struct cm_id *id, const struct ibemu_node_addr *self,
		   const struct ibemu_node_addr *peer);

struct rdma_cm_id *cm_find_listener(uint16_t port, uint16_t ps);

/* rdmacm_sidr.c */
int cm_sidr_event(struct cm_chan *ch, const struct cm_wire *w,
		  struct rdma_cm_event *ev);

#endif
