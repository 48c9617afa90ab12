/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * priv.c — the private services libibverbs offers to ibemu's librdmacm:
 * address resolution on the fabric, multicast MLIDs, SIDR listeners.
 */
#include <errno.h>
#include <string.h>

#include "ibemu_int.h"
#include "ibemu_priv.h"

static void fill(uint32_t ni, struct ibemu_node_addr *out)
{
	const struct shm_node *n = &ibemu_g.fab->node[ni];

	out->lid = n->lid;
	ibemu_node_gid(n, &out->gid);
	out->ip_be = n->ip_be;
	out->pid = n->pid;
}

IBEMU_EXPORT int ibemu_priv_self(struct ibemu_node_addr *out)
{
	if (!ibemu_g.me)
		return ENODEV;
	fill(ibemu_g.node_idx, out);
	return 0;
}

IBEMU_EXPORT int ibemu_priv_by_ip(uint32_t ip_be, struct ibemu_node_addr *out)
{
	if (!ibemu_g.fab)
		return ENODEV;
	int n = ibemu_node_by_ip(ip_be);
	if (n < 0)
		return ENOENT;
	fill((uint32_t)n, out);
	return 0;
}

IBEMU_EXPORT int ibemu_priv_by_gid(const union ibv_gid *gid,
				   struct ibemu_node_addr *out)
{
	if (!ibemu_g.fab)
		return ENODEV;
	int n = ibemu_node_by_gid(gid->raw);
	if (n < 0)
		return ENOENT;
	fill((uint32_t)n, out);
	return 0;
}

IBEMU_EXPORT int ibemu_priv_mcast_mlid(const union ibv_gid *mgid, uint16_t *mlid)
{
	if (!ibemu_g.fab)
		return ENODEV;
	return ibemu_mcast_find_or_create(mgid->raw, 0, mlid);
}

IBEMU_EXPORT int ibemu_priv_cm_listen(uint16_t port, uint16_t ps,
				      uint32_t chan_id, int on)
{
	struct shm_node *me = ibemu_g.me;
	int free_slot = -1;

	if (!me)
		return ENODEV;
	if (ibemu_fab_lock())
		return EIO;
	for (uint32_t i = 0; i < IBEMU_MAX_LISTEN; i++) {
		struct shm_cm_listen *l = &me->cm_listen[i];
		if (!atomic_load(&l->in_use)) {
			if (free_slot < 0)
				free_slot = (int)i;
			continue;
		}
		if (l->port == port && l->ps == ps) {
			if (!on)
				atomic_store(&l->in_use, 0);
			ibemu_fab_unlock();
			return on ? EADDRINUSE : 0;
		}
	}
	int rc = on ? (free_slot < 0 ? ENOSPC : 0) : ENOENT;
	if (on && free_slot >= 0) {
		struct shm_cm_listen *l = &me->cm_listen[free_slot];
		l->port = port;
		l->ps = ps;
		l->chan_id = chan_id;
		atomic_store(&l->in_use, 1);
	}
	ibemu_fab_unlock();
	return rc;
}

IBEMU_EXPORT int ibemu_priv_cm_lookup(const struct ibemu_node_addr *node,
				      uint16_t port, uint16_t ps, uint32_t *chan_id)
{
	if (!ibemu_g.fab)
		return ENODEV;
	int n = ibemu_node_by_lid(node->lid);
	if (n < 0)
		return ENOENT;
	struct shm_node *sn = &ibemu_g.fab->node[n];
	for (uint32_t i = 0; i < IBEMU_MAX_LISTEN; i++) {
		struct shm_cm_listen *l = &sn->cm_listen[i];
		if (atomic_load(&l->in_use) && l->port == port && l->ps == ps) {
			*chan_id = l->chan_id;
			return 0;
		}
	}
	return ENOENT;
}

IBEMU_EXPORT const char *ibemu_priv_fabric(void)
{
	return ibemu_g.fabric;
}
