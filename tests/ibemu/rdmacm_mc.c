/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * rdmacm_mc.c — multicast joins (IPv4/IPv6 → MGID mapping as the kernel's
 * rdma_cm does, AF_IB and SA-style MGIDs as given), and the QP helpers
 * rdma_create_qp / rdma_destroy_qp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "rdmacm_int.h"

/* IPoIB mapping (RFC 4391), with the RDMA CM signature 0x01 in byte 3
 * for RDMA_PS_UDP, as the kernel's cma_set_mgid(). */
static int addr_to_mgid(const struct cm_id *id, const struct sockaddr *a,
			union ibv_gid *mgid)
{
	memset(mgid, 0, sizeof(*mgid));
	if (a->sa_family == AF_IB) {
		memcpy(mgid, &((const struct sockaddr_ib *)a)->sib_addr, 16);
	} else if (a->sa_family == AF_INET6) {
		const uint8_t *s6 = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
		if (s6[0] != 0xff)
			return EINVAL;
		if ((s6[1] & 0xF0) == 0x10 && s6[2] == 0xA0 && s6[3] == 0x1B) {
			memcpy(mgid, s6, 16); /* an SA-assigned MGID */
		} else {
			mgid->raw[0] = 0xff;
			mgid->raw[1] = 0x12;
			mgid->raw[2] = 0x60;
			mgid->raw[3] = 0x1b;
			mgid->raw[4] = 0xff;
			mgid->raw[5] = 0xff;
			memcpy(mgid->raw + 6, s6 + 6, 10);
		}
	} else if (a->sa_family == AF_INET) {
		const uint8_t *ip = (const uint8_t *)
			&((const struct sockaddr_in *)a)->sin_addr.s_addr;
		if ((ip[0] & 0xF0) != 0xE0)
			return EINVAL; /* not an IPv4 multicast address */
		mgid->raw[0] = 0xff;
		mgid->raw[1] = 0x12;
		mgid->raw[2] = 0x40;
		mgid->raw[3] = 0x1b;
		mgid->raw[4] = 0xff;
		mgid->raw[5] = 0xff;
		mgid->raw[12] = ip[0] & 0x0f;
		mgid->raw[13] = ip[1];
		mgid->raw[14] = ip[2];
		mgid->raw[15] = ip[3];
	} else {
		return EAFNOSUPPORT;
	}
	if (id->id.ps == RDMA_PS_UDP && a->sa_family != AF_IB &&
	    !(mgid->raw[2] == 0xA0))
		mgid->raw[3] = 0x01;
	return mgid->raw[0] == 0xff ? 0 : EINVAL;
}

static uint32_t ps_qkey(const struct cm_id *id)
{
	return id->id.ps == RDMA_PS_IPOIB ? IPOIB_QKEY : RDMA_UDP_QKEY;
}

static int join(struct rdma_cm_id *cid, struct sockaddr *addr, bool sendonly,
		void *context)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct cm_wire w = { .event = RDMA_CM_EVENT_MULTICAST_JOIN };
	struct ibemu_node_addr self;
	struct cm_join *j;
	int rc;

	if (!addr) {
		errno = EINVAL;
		return -1;
	}
	if (!id->bound) {
		struct sockaddr_storage any = { .ss_family =
			addr->sa_family == AF_IB ? AF_IB : AF_INET };
		if (rdma_bind_addr(cid, (struct sockaddr *)&any))
			return -1;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	if ((rc = addr_to_mgid(id, addr, &j->mgid)) ||
	    (rc = ibemu_priv_mcast_mlid(&j->mgid, &j->mlid)) ||
	    (rc = ibemu_priv_self(&self))) {
		free(j);
		errno = rc;
		return -1;
	}
	memcpy(&j->addr, addr, addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	       addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	       sizeof(struct sockaddr_ib));
	j->sendonly = sendonly;
	j->context = context;
	/* as librdmacm does: an id with a QP gets it attached */
	if (cid->qp && !sendonly) {
		if ((rc = ibv_attach_mcast(cid->qp, &j->mgid, j->mlid))) {
			free(j);
			errno = rc;
			return -1;
		}
		j->attached = true;
	}
	j->next = id->joins;
	id->joins = j;
	w.ah_attr.dlid = j->mlid;
	w.ah_attr.port_num = 1;
	w.ah_attr.is_global = 1;
	w.ah_attr.grh.dgid = j->mgid;
	w.ah_attr.grh.sgid_index = 0;
	w.ah_attr.grh.hop_limit = 0;
	w.qp_num = 0xFFFFFF;
	w.qkey = ps_qkey(id);
	w.join_ctx = context;
	if ((rc = cm_send_local(id, &w))) {
		errno = rc;
		return -1;
	}
	return id->sync ? cm_sync_wait(id, 1) : 0;
}

CM_EXPORT int rdma_join_multicast(struct rdma_cm_id *cid, struct sockaddr *addr,
				  void *context)
{
	return join(cid, addr, false, context);
}

CM_EXPORT int rdma_join_multicast_ex(struct rdma_cm_id *cid,
				     struct rdma_cm_join_mc_attr_ex *attr,
				     void *context)
{
	if (!attr || (attr->comp_mask & ~(uint32_t)(RDMA_CM_JOIN_MC_ATTR_ADDRESS |
						    RDMA_CM_JOIN_MC_ATTR_JOIN_FLAGS)) ||
	    !(attr->comp_mask & RDMA_CM_JOIN_MC_ATTR_ADDRESS)) {
		errno = EINVAL;
		return -1;
	}
	uint32_t flags = attr->comp_mask & RDMA_CM_JOIN_MC_ATTR_JOIN_FLAGS ?
			 attr->join_flags : RDMA_MC_JOIN_FLAG_FULLMEMBER;
	if (flags != RDMA_MC_JOIN_FLAG_FULLMEMBER &&
	    flags != RDMA_MC_JOIN_FLAG_SENDONLY_FULLMEMBER) {
		errno = EINVAL;
		return -1;
	}
	return join(cid, attr->addr, flags == RDMA_MC_JOIN_FLAG_SENDONLY_FULLMEMBER,
		    context);
}

CM_EXPORT int rdma_leave_multicast(struct rdma_cm_id *cid, struct sockaddr *addr)
{
	struct cm_id *id = (struct cm_id *)cid;
	union ibv_gid mgid;

	if (!addr || addr_to_mgid(id, addr, &mgid)) {
		errno = EINVAL;
		return -1;
	}
	for (struct cm_join **p = &id->joins; *p; p = &(*p)->next) {
		struct cm_join *j = *p;
		if (memcmp(&j->mgid, &mgid, 16))
			continue;
		if (j->attached && cid->qp)
			ibv_detach_mcast(cid->qp, &j->mgid, j->mlid);
		*p = j->next;
		free(j);
		return 0;
	}
	errno = EADDRNOTAVAIL;
	return -1;
}

CM_EXPORT int rdma_create_qp(struct rdma_cm_id *cid, struct ibv_pd *pd,
			     struct ibv_qp_init_attr *attr)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct ibv_qp_attr a = { 0 };

	if (attr->qp_type != IBV_QPT_UD) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (!pd) {
		cid->pd = ibv_alloc_pd(cid->verbs);
		if (!cid->pd)
			return -1;
		id->own_pd = true;
		pd = cid->pd;
	}
	struct ibv_qp *qp = ibv_create_qp(pd, attr);
	if (!qp)
		goto fail;
	/* UD QPs of rdma_cm go straight to RTS with the port space's Q_Key */
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.pkey_index = 0;
	a.qkey = ps_qkey(id);
	int rc = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			       IBV_QP_PORT | IBV_QP_QKEY);
	a.qp_state = IBV_QPS_RTR;
	if (!rc)
		rc = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	if (!rc)
		rc = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	if (rc) {
		ibv_destroy_qp(qp);
		errno = rc;
		goto fail;
	}
	cid->qp = qp;
	cid->send_cq = attr->send_cq;
	cid->recv_cq = attr->recv_cq;
	/* joins made before the QP existed now attach it */
	for (struct cm_join *j = id->joins; j; j = j->next)
		if (!j->sendonly && !j->attached &&
		    ibv_attach_mcast(qp, &j->mgid, j->mlid) == 0)
			j->attached = true;
	return 0;
fail:
	if (id->own_pd) {
		ibv_dealloc_pd(cid->pd);
		cid->pd = NULL;
		id->own_pd = false;
	}
	return -1;
}

CM_EXPORT void rdma_destroy_qp(struct rdma_cm_id *cid)
{
	struct cm_id *id = (struct cm_id *)cid;

	if (!cid->qp)
		return;
	for (struct cm_join *j = id->joins; j; j = j->next)
		if (j->attached) {
			ibv_detach_mcast(cid->qp, &j->mgid, j->mlid);
			j->attached = false;
		}
	ibv_destroy_qp(cid->qp);
	cid->qp = NULL;
	if (id->own_pd) {
		ibv_dealloc_pd(cid->pd);
		cid->pd = NULL;
		id->own_pd = false;
	}
}

CM_EXPORT int rdma_create_qp_ex(struct rdma_cm_id *cid,
				struct ibv_qp_init_attr_ex *ax)
{
	if (ax->comp_mask & ~(uint32_t)IBV_QP_INIT_ATTR_PD) {
		errno = EOPNOTSUPP;
		return -1;
	}
	struct ibv_qp_init_attr a = {
		.qp_context = ax->qp_context, .send_cq = ax->send_cq,
		.recv_cq = ax->recv_cq, .srq = ax->srq, .cap = ax->cap,
		.qp_type = ax->qp_type, .sq_sig_all = ax->sq_sig_all,
	};
	int rc = rdma_create_qp(cid, ax->comp_mask & IBV_QP_INIT_ATTR_PD ? ax->pd :
				NULL, &a);
	if (!rc)
		ax->cap = a.cap;
	return rc;
}

/* rsockets' poll: ibemu has no rsockets, so every fd is an ordinary one
 * (librdmacm's examples wait on their event channel with it). */
CM_EXPORT int rpoll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	return poll(fds, nfds, timeout);
}
