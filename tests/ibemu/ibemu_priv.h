/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * Private interface between ibemu's libibverbs.so.1 (which owns the
 * fabric) and its librdmacm.so.1. Exported in the IBEMU_PRIVATE_1.0
 * version node; not for applications.
 */
#ifndef IBEMU_PRIV_H
#define IBEMU_PRIV_H

#include <infiniband/verbs.h>
#include <stdint.h>
#include <sys/types.h>

struct ibemu_node_addr {
	uint16_t lid;
	union ibv_gid gid;
	uint32_t ip_be;
	pid_t pid;
};

/* The calling process's node (a device context must be open). */
int ibemu_priv_self(struct ibemu_node_addr *out);
/* Look a node up by IPv4 address or by port GID; 0 or ENOENT. */
int ibemu_priv_by_ip(uint32_t ip_be, struct ibemu_node_addr *out);
int ibemu_priv_by_gid(const union ibv_gid *gid, struct ibemu_node_addr *out);
/* The MLID of a multicast group, created on first use; 0 or errno. */
int ibemu_priv_mcast_mlid(const union ibv_gid *mgid, uint16_t *mlid);
/* rdma_cm listeners of this node: register (on=1) or drop (on=0). */
int ibemu_priv_cm_listen(uint16_t port, uint16_t ps, uint32_t chan_id, int on);
/* Find a listener on the node at `ip_be` (or by gid); 0 or ENOENT. */
int ibemu_priv_cm_lookup(const struct ibemu_node_addr *node, uint16_t port,
			 uint16_t ps, uint32_t *chan_id);
const char *ibemu_priv_fabric(void);

#endif
