/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * verbs_mem.c — protection domains, memory regions (lkey table), address
 * handles (with their GRH prebuilt), and the verbs this HCA declines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibemu_int.h"

IBEMU_EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
	struct ibemu_pd *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return NULL;
	pd->ibv.context = ctx;
	pd->ibv.handle = (uint32_t)(uintptr_t)pd;
	return &pd->ibv;
}

IBEMU_EXPORT int ibv_dealloc_pd(struct ibv_pd *pd)
{
	free(pd);
	return 0;
}

struct ibemu_mr *ibemu_mr_lookup(uint32_t lkey)
{
	uint32_t idx = lkey >> 8;

	if (idx >= IBEMU_MAX_MR)
		return NULL;
	struct ibemu_mr *mr = atomic_load_explicit(&ibemu_g.mr[idx],
						   memory_order_acquire);
	return mr && mr->ibv.lkey == lkey ? mr : NULL;
}

/* A real HCA pins the pages: unmapped memory fails with EFAULT. */
static bool range_mapped(uintptr_t start, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = start & ~(uintptr_t)(pg - 1);
	size_t n = (start + len - a + (size_t)pg - 1) / (size_t)pg;
	unsigned char *vec = malloc(n);

	if (!vec)
		return true;
	int rc = mincore((void *)a, n * (size_t)pg, vec);
	free(vec);
	return rc == 0;
}

static struct ibv_mr *reg_mr(struct ibv_pd *pd, void *addr, size_t len,
			     uint64_t iova, unsigned access)
{
	const unsigned known = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC |
			       IBV_ACCESS_RELAXED_ORDERING;
	struct ibemu_mr *mr;

	if (!pd || !len || (access & ~known) ||
	    ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	     !(access & IBV_ACCESS_LOCAL_WRITE)) ||
	    (uintptr_t)addr + len < (uintptr_t)addr) {
		errno = EINVAL;
		return NULL;
	}
	ibemu_maintenance();
	if (atomic_load_explicit(&ibemu_faults_active, memory_order_relaxed) &&
	    ibemu_faults_now.reg_mr_max && len > ibemu_faults_now.reg_mr_max) {
		IBEMU_COUNT(ibemu_g.me, fault_reg_mr);
		errno = ENOMEM;
		return NULL;
	}
	if (!range_mapped((uintptr_t)addr, len)) {
		errno = EFAULT;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return NULL;
	pthread_mutex_lock(&ibemu_g.lock);
	uint32_t idx;
	for (idx = 1; idx < IBEMU_MAX_MR; idx++)
		if (!atomic_load(&ibemu_g.mr[idx]))
			break;
	if (idx == IBEMU_MAX_MR) {
		pthread_mutex_unlock(&ibemu_g.lock);
		free(mr);
		errno = ENOMEM;
		return NULL;
	}
	ibemu_g.mr_key_seq++;
	mr->ibv.context = pd->context;
	mr->ibv.pd = pd;
	mr->ibv.addr = addr;
	mr->ibv.length = len;
	mr->ibv.handle = idx;
	mr->ibv.lkey = idx << 8 | (ibemu_g.mr_key_seq & 0xff);
	mr->ibv.rkey = mr->ibv.lkey;
	mr->start = (uintptr_t)addr;
	mr->end = (uintptr_t)addr + len;
	mr->access = access;
	(void)iova;
	atomic_store_explicit(&ibemu_g.mr[idx], mr, memory_order_release);
	pthread_mutex_unlock(&ibemu_g.lock);
	return &mr->ibv;
}

#undef ibv_reg_mr
IBEMU_EXPORT struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr,
				       size_t len, int access)
{
	return reg_mr(pd, addr, len, (uintptr_t)addr, (unsigned)access);
}

#undef ibv_reg_mr_iova
IBEMU_EXPORT struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr,
					    size_t len, uint64_t iova, int access)
{
	if (iova != (uintptr_t)addr) {
		errno = EOPNOTSUPP; /* SGEs carry virtual addresses here */
		return NULL;
	}
	return reg_mr(pd, addr, len, iova, (unsigned)access);
}

IBEMU_EXPORT struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr,
					     size_t len, uint64_t iova,
					     unsigned int access)
{
	if (iova != (uintptr_t)addr) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return reg_mr(pd, addr, len, iova, access & ~(unsigned)IBV_ACCESS_OPTIONAL_RANGE);
}

IBEMU_EXPORT int ibv_dereg_mr(struct ibv_mr *ibmr)
{
	struct ibemu_mr *mr = (struct ibemu_mr *)ibmr;
	uint32_t idx = ibmr->lkey >> 8;

	pthread_mutex_lock(&ibemu_g.lock);
	if (idx >= IBEMU_MAX_MR || atomic_load(&ibemu_g.mr[idx]) != mr) {
		pthread_mutex_unlock(&ibemu_g.lock);
		return EINVAL;
	}
	atomic_store(&ibemu_g.mr[idx], NULL);
	pthread_mutex_unlock(&ibemu_g.lock);
	/* a poller may still hold the pointer for the SGE it is checking */
	mr->ibv.lkey = 0;
	mr->start = mr->end = 0;
	free(mr);
	return 0;
}

IBEMU_EXPORT int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd,
			      void *addr, size_t len, int access)
{
	(void)mr; (void)flags; (void)pd; (void)addr; (void)len; (void)access;
	errno = EOPNOTSUPP;
	return IBV_REREG_MR_ERR_INPUT;
}

IBEMU_EXPORT struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t off,
					      size_t len, uint64_t iova, int fd,
					      int access)
{
	(void)pd; (void)off; (void)len; (void)iova; (void)fd; (void)access;
	errno = EOPNOTSUPP;
	return NULL;
}

/* ---- address handles ---- */

static void build_grh(uint8_t *out, const struct ibv_ah_attr *a)
{
	struct ibv_grh *g = (struct ibv_grh *)out;
	union ibv_gid sgid;

	memset(out, 0, IBEMU_GRH_LEN);
	g->version_tclass_flow = htonl(6u << 28 | (uint32_t)a->grh.traffic_class << 20 |
				       (a->grh.flow_label & 0xFFFFF));
	g->next_hdr = 0x1B;
	g->hop_limit = a->grh.hop_limit;
	ibemu_node_gid(ibemu_g.me, &sgid);
	memcpy(&g->sgid, &sgid, 16);
	memcpy(&g->dgid, &a->grh.dgid, 16);
}

IBEMU_EXPORT struct ibv_ah *ibv_create_ah(struct ibv_pd *pd,
					  struct ibv_ah_attr *attr)
{
	struct ibemu_ah *ah;

	if (!pd || !attr || attr->port_num != 1 || attr->sl > 15 ||
	    (!attr->is_global && attr->dlid == 0) ||
	    (attr->is_global && attr->grh.sgid_index != 0) ||
	    attr->dlid == 0xFFFF) {
		errno = EINVAL;
		return NULL;
	}
	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return NULL;
	ah->ibv.context = pd->context;
	ah->ibv.pd = pd;
	ah->attr = *attr;
	atomic_store(&ah->node, -1);
	atomic_store(&ah->group, -1);
	if (attr->is_global)
		build_grh(ah->grh, attr);
	return &ah->ibv;
}

IBEMU_EXPORT int ibv_destroy_ah(struct ibv_ah *ah)
{
	free(ah);
	return 0;
}

IBEMU_EXPORT int ibv_init_ah_from_wc(struct ibv_context *ctx, uint8_t port,
				     struct ibv_wc *wc, struct ibv_grh *grh,
				     struct ibv_ah_attr *a)
{
	(void)ctx;
	memset(a, 0, sizeof(*a));
	a->dlid = wc->slid;
	a->sl = wc->sl;
	a->src_path_bits = wc->dlid_path_bits;
	a->port_num = port;
	if (wc->wc_flags & IBV_WC_GRH) {
		uint32_t f = ntohl(grh->version_tclass_flow);

		a->is_global = 1;
		memcpy(&a->grh.dgid, &grh->sgid, 16);
		a->grh.flow_label = f & 0xFFFFF;
		a->grh.traffic_class = (uint8_t)(f >> 20);
		a->grh.hop_limit = 0xFF;
		a->grh.sgid_index = 0; /* our only GID, also for multicast dgid */
		if (grh->dgid.raw[0] != 0xff) {
			union ibv_gid mine;
			ibemu_node_gid(ibemu_g.me, &mine);
			if (memcmp(&mine, &grh->dgid, 16)) {
				errno = ENOENT;
				return -1;
			}
		}
	}
	return 0;
}

IBEMU_EXPORT struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd,
						  struct ibv_wc *wc,
						  struct ibv_grh *grh,
						  uint8_t port)
{
	struct ibv_ah_attr a;

	if (ibv_init_ah_from_wc(pd->context, port, wc, grh, &a))
		return NULL;
	return ibv_create_ah(pd, &a);
}

/* ---- what this HCA does not offer ---- */

IBEMU_EXPORT struct ibv_srq *ibv_create_srq(struct ibv_pd *pd,
					    struct ibv_srq_init_attr *attr)
{
	(void)pd; (void)attr;
	errno = EOPNOTSUPP;
	return NULL;
}

IBEMU_EXPORT int ibv_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *a,
				int mask)
{
	(void)srq; (void)a; (void)mask;
	return EOPNOTSUPP;
}

IBEMU_EXPORT int ibv_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *a)
{
	(void)srq; (void)a;
	return EOPNOTSUPP;
}

IBEMU_EXPORT int ibv_destroy_srq(struct ibv_srq *srq)
{
	(void)srq;
	return EOPNOTSUPP;
}

IBEMU_EXPORT struct ibv_pd *ibv_import_pd(struct ibv_context *ctx, uint32_t h)
{
	(void)ctx; (void)h;
	errno = EOPNOTSUPP;
	return NULL;
}

IBEMU_EXPORT void ibv_unimport_pd(struct ibv_pd *pd)
{
	(void)pd;
}

IBEMU_EXPORT struct ibv_mr *ibv_import_mr(struct ibv_pd *pd, uint32_t h)
{
	(void)pd; (void)h;
	errno = EOPNOTSUPP;
	return NULL;
}

IBEMU_EXPORT void ibv_unimport_mr(struct ibv_mr *mr)
{
	(void)mr;
}

IBEMU_EXPORT struct ibv_dm *ibv_import_dm(struct ibv_context *ctx, uint32_t h)
{
	(void)ctx; (void)h;
	errno = EOPNOTSUPP;
	return NULL;
}

IBEMU_EXPORT void ibv_unimport_dm(struct ibv_dm *dm)
{
	(void)dm;
}

IBEMU_EXPORT int ibv_set_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	(void)qp; (void)ece;
	errno = EOPNOTSUPP;
	return EOPNOTSUPP;
}

IBEMU_EXPORT int ibv_query_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	(void)qp; (void)ece;
	errno = EOPNOTSUPP;
	return EOPNOTSUPP;
}

IBEMU_EXPORT struct ibv_qp_ex *ibv_qp_to_qp_ex(struct ibv_qp *qp)
{
	(void)qp;
	errno = EOPNOTSUPP;
	return NULL;
}

IBEMU_EXPORT int ibv_query_qp_data_in_order(struct ibv_qp *qp,
					    enum ibv_wr_opcode op, uint32_t flags)
{
	(void)qp; (void)op; (void)flags;
	return 0;
}
