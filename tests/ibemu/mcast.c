/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * mcast.c — multicast groups of the fabric: MGID → MLID (stable for the
 * life of the fabric, derived from a hash of the MGID, >= 0xC000), the
 * member QPs of each group, ibv_attach_mcast / ibv_detach_mcast.
 */
#include <errno.h>
#include <string.h>

#include "ibemu_int.h"

#define MLID_SPAN (0xFFFEu - IBEMU_MLID_BASE) /* 0xC000..0xFFFD; 0xFFFF = permissive */

static uint16_t mgid_hash(const uint8_t mgid[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ mgid[i]) * 16777619u;
	return (uint16_t)(IBEMU_MLID_BASE + h % MLID_SPAN);
}

int ibemu_mcast_by_mlid(uint16_t mlid)
{
	for (uint32_t i = 0; i < IBEMU_MAX_MCAST; i++) {
		struct shm_mcast *g = &ibemu_g.fab->mcast[i];
		if (atomic_load_explicit(&g->in_use, memory_order_acquire) &&
		    g->mlid == mlid)
			return (int)i;
	}
	return -1;
}

static int by_mgid_locked(const uint8_t mgid[16])
{
	for (uint32_t i = 0; i < IBEMU_MAX_MCAST; i++) {
		struct shm_mcast *g = &ibemu_g.fab->mcast[i];
		if (atomic_load(&g->in_use) && !memcmp(g->mgid, mgid, 16))
			return (int)i;
	}
	return -1;
}

static int find_or_create_locked(const uint8_t mgid[16], uint16_t *mlid)
{
	int g = by_mgid_locked(mgid);

	if (g >= 0) {
		*mlid = ibemu_g.fab->mcast[g].mlid;
		return g;
	}
	for (uint32_t i = 0; i < IBEMU_MAX_MCAST; i++) {
		struct shm_mcast *m = &ibemu_g.fab->mcast[i];
		if (atomic_load(&m->in_use))
			continue;
		uint16_t l = mgid_hash(mgid);
		while (ibemu_mcast_by_mlid(l) >= 0)
			l = (uint16_t)(IBEMU_MLID_BASE + (l - IBEMU_MLID_BASE + 1) % MLID_SPAN);
		memcpy(m->mgid, mgid, 16);
		m->mlid = l;
		for (uint32_t k = 0; k < IBEMU_MCAST_MEMBERS; k++)
			atomic_store(&m->members[k], 0);
		atomic_store_explicit(&m->in_use, 1, memory_order_release);
		*mlid = l;
		return (int)i;
	}
	return -1;
}

int ibemu_mcast_find_or_create(const uint8_t mgid[16], uint16_t lid_hint,
			       uint16_t *mlid)
{
	(void)lid_hint; /* the fabric's SA decides the MLID */
	if (mgid[0] != 0xff)
		return EINVAL;
	if (ibemu_fab_lock())
		return EIO;
	int g = find_or_create_locked(mgid, mlid);
	ibemu_fab_unlock();
	return g < 0 ? ENOSPC : 0;
}

void ibemu_mcast_remove_qpn_locked(uint32_t qpn)
{
	for (uint32_t i = 0; i < IBEMU_MAX_MCAST; i++) {
		struct shm_mcast *g = &ibemu_g.fab->mcast[i];
		if (!atomic_load(&g->in_use))
			continue;
		for (uint32_t k = 0; k < IBEMU_MCAST_MEMBERS; k++)
			if (atomic_load(&g->members[k]) == qpn)
				atomic_store(&g->members[k], 0);
	}
}

IBEMU_EXPORT int ibv_attach_mcast(struct ibv_qp *ibqp, const union ibv_gid *gid,
				  uint16_t lid)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	uint16_t mlid;
	int rc = 0;

	(void)lid;
	if (gid->raw[0] != 0xff || ibqp->qp_type != IBV_QPT_UD)
		return EINVAL;
	if (ibemu_fab_lock())
		return EIO;
	int g = find_or_create_locked(gid->raw, &mlid);
	if (g < 0) {
		rc = ENOMEM;
		goto out;
	}
	struct shm_mcast *m = &ibemu_g.fab->mcast[g];
	int free_slot = -1;
	for (uint32_t k = 0; k < IBEMU_MCAST_MEMBERS; k++) {
		uint32_t v = atomic_load(&m->members[k]);
		if (v == ibqp->qp_num)
			goto out; /* already attached */
		if (!v && free_slot < 0)
			free_slot = (int)k;
	}
	if (free_slot < 0) {
		rc = ENOMEM;
		goto out;
	}
	atomic_store_explicit(&m->members[free_slot], ibqp->qp_num, memory_order_release);
	qp->mcast_count++;
out:
	ibemu_fab_unlock();
	return rc;
}

IBEMU_EXPORT int ibv_detach_mcast(struct ibv_qp *ibqp, const union ibv_gid *gid,
				  uint16_t lid)
{
	struct ibemu_qp *qp = (struct ibemu_qp *)ibqp;
	int rc = EINVAL;

	(void)lid;
	if (ibemu_fab_lock())
		return EIO;
	int g = by_mgid_locked(gid->raw);
	if (g >= 0) {
		struct shm_mcast *m = &ibemu_g.fab->mcast[g];
		for (uint32_t k = 0; k < IBEMU_MCAST_MEMBERS; k++)
			if (atomic_load(&m->members[k]) == ibqp->qp_num) {
				atomic_store(&m->members[k], 0);
				qp->mcast_count--;
				rc = 0;
				break;
			}
	}
	ibemu_fab_unlock();
	return rc;
}
