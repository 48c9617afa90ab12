/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * rdmacm_sidr.c — UD service ID resolution between nodes: rdma_listen
 * registers (port, port space) in the fabric, rdma_connect on a UD id
 * sends a SIDR REQ to the listener's event channel, rdma_accept answers
 * with the QPN and Q_Key (client: ESTABLISHED with ud parameters),
 * rdma_reject or no listener gives the client UNREACHABLE. The connected
 * (RC) calls answer EOPNOTSUPP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdmacm_int.h"

CM_EXPORT int rdma_listen(struct rdma_cm_id *cid, int backlog)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct cm_chan *ch = (struct cm_chan *)cid->channel;

	(void)backlog;
	if (!id->bound || id->sync) {
		errno = EINVAL;
		return -1;
	}
	int rc = ibemu_priv_cm_listen(id->port, (uint16_t)cid->ps, ch->id, 1);
	if (rc) {
		errno = rc;
		return -1;
	}
	id->listening = true;
	return 0;
}

static void client_unreachable(struct cm_id *id, int status)
{
	struct cm_wire w = { .event = RDMA_CM_EVENT_UNREACHABLE, .status = status };

	cm_send_local(id, &w);
}

CM_EXPORT int rdma_connect(struct rdma_cm_id *cid, struct rdma_conn_param *param)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct cm_chan *ch = (struct cm_chan *)cid->channel;
	struct cm_wire w = { .kind = W_SIDR_REQ };
	uint32_t chan;

	if (!cid->route.num_paths) {
		errno = EINVAL; /* rdma_resolve_route first */
		return -1;
	}
	if (param && param->private_data_len > CM_PDATA_MAX) {
		errno = EINVAL;
		return -1;
	}
	uint16_t dport = ntohs(rdma_get_dst_port(cid));
	if (ibemu_priv_cm_lookup(&id->peer, dport, (uint16_t)cid->ps, &chan)) {
		client_unreachable(id, -ECONNREFUSED);
		return id->sync ? cm_sync_wait(id, 0) : 0;
	}
	ibemu_priv_self(&w.src);
	w.cookie = (uint64_t)(uintptr_t)id;
	w.src_pid = getpid();
	w.src_chan = ch->id;
	w.src_port = id->port;
	w.dst_port = dport;
	w.ps = (uint16_t)cid->ps;
	w.src_addr = cid->route.addr.src_storage;
	w.dst_addr = cid->route.addr.dst_storage;
	if (param && param->private_data_len) {
		w.pdata_len = param->private_data_len;
		memcpy(w.pdata, param->private_data, param->private_data_len);
	}
	if (cm_send_to(id->peer.pid, chan, &w)) {
		client_unreachable(id, -ECONNREFUSED);
	}
	return id->sync ? cm_sync_wait(id, 1) : 0;
}

static int reply(struct cm_id *id, uint32_t kind, uint32_t qpn, uint32_t qkey,
		 const void *pdata, uint8_t plen)
{
	struct cm_wire w = { .kind = kind, .qp_num = qpn, .qkey = qkey };

	if (!id->peer_pid) {
		errno = EINVAL; /* not a connection request id */
		return -1;
	}
	ibemu_priv_self(&w.src);
	w.cookie = id->peer_cookie;
	if (plen > CM_PDATA_MAX)
		plen = CM_PDATA_MAX;
	if (plen)
		memcpy(w.pdata, pdata, plen);
	w.pdata_len = plen;
	int rc = cm_send_to(id->peer_pid, id->peer_chan, &w);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

CM_EXPORT int rdma_accept(struct rdma_cm_id *cid, struct rdma_conn_param *param)
{
	struct cm_id *id = (struct cm_id *)cid;
	uint32_t qpn = cid->qp ? cid->qp->qp_num : (param ? param->qp_num : 0);
	uint32_t qkey = cid->ps == RDMA_PS_IPOIB ? IPOIB_QKEY : RDMA_UDP_QKEY;

	if (!qpn) {
		errno = EINVAL; /* a UD accept names the QP that serves */
		return -1;
	}
	if (cid->qp) {
		struct ibv_qp_attr a;
		struct ibv_qp_init_attr ia;
		if (ibv_query_qp(cid->qp, &a, IBV_QP_QKEY, &ia) == 0)
			qkey = a.qkey;
	}
	return reply(id, W_SIDR_REP, qpn, qkey, param ? param->private_data : NULL,
		     param ? param->private_data_len : 0);
}

CM_EXPORT int rdma_reject(struct rdma_cm_id *cid, const void *pdata, uint8_t len)
{
	return reply((struct cm_id *)cid, W_SIDR_REJ, 0, 0, pdata, len);
}

/* A datagram from another node (or from us as another node) → event. */
int cm_sidr_event(struct cm_chan *ch, const struct cm_wire *w,
		  struct rdma_cm_event *ev)
{
	uint8_t *pdata = (uint8_t *)(ev + 1);

	(void)ch;
	if (w->pdata_len) {
		memcpy(pdata, w->pdata, w->pdata_len);
		ev->param.ud.private_data = pdata;
		ev->param.ud.private_data_len = w->pdata_len;
	}
	if (w->kind == W_SIDR_REQ) {
		/* the listener registered this channel for (port, ps) */
		struct rdma_cm_id *listen = cm_find_listener(w->dst_port, w->ps);
		if (!listen)
			return -1;
		struct rdma_cm_id *nid;
		if (rdma_create_id(listen->channel, &nid, listen->context,
				   (enum rdma_port_space)w->ps))
			return -1;
		struct cm_id *c = (struct cm_id *)nid;
		struct ibemu_node_addr self;
		ibemu_priv_self(&self);
		c->bound = true;
		c->port = w->dst_port;
		nid->route.addr.src_storage = w->dst_addr;
		nid->route.addr.dst_storage = w->src_addr;
		cm_fill_route(c, &self, &w->src);
		c->peer_pid = w->src_pid;
		c->peer_chan = w->src_chan;
		c->peer_cookie = w->cookie;
		ev->id = nid;
		ev->listen_id = listen;
		ev->event = RDMA_CM_EVENT_CONNECT_REQUEST;
		return 0;
	}
	struct cm_id *id = (struct cm_id *)(uintptr_t)w->cookie;
	if (!cm_id_live(id))
		return -1;
	ev->id = &id->id;
	if (w->kind == W_SIDR_REP) {
		ev->event = RDMA_CM_EVENT_ESTABLISHED;
		ev->param.ud.qp_num = w->qp_num;
		ev->param.ud.qkey = w->qkey;
		ev->param.ud.ah_attr.dlid = w->src.lid;
		ev->param.ud.ah_attr.port_num = 1;
		ev->param.ud.ah_attr.is_global = 0;
		ev->param.ud.ah_attr.grh.dgid = w->src.gid;
		return 0;
	}
	ev->event = RDMA_CM_EVENT_UNREACHABLE;
	ev->status = -ECONNREFUSED;
	return 0;
}

/* ---- connected-mode and endpoint calls: not on a UD-only fabric ---- */

#define CM_NOTSUP(decl, ...)                                                   \
	CM_EXPORT decl                                                         \
	{                                                                      \
		__VA_ARGS__;                                                   \
		errno = EOPNOTSUPP;                                            \
		return -1;                                                     \
	}

CM_NOTSUP(int rdma_disconnect(struct rdma_cm_id *id), (void)id)
CM_NOTSUP(int rdma_establish(struct rdma_cm_id *id), (void)id)
CM_NOTSUP(int rdma_notify(struct rdma_cm_id *id, enum ibv_event_type e),
	  (void)id, (void)e)
CM_NOTSUP(int rdma_get_request(struct rdma_cm_id *l, struct rdma_cm_id **id),
	  (void)l, (void)id)
CM_NOTSUP(int rdma_init_qp_attr(struct rdma_cm_id *id, struct ibv_qp_attr *a,
				int *m), (void)id, (void)a, (void)m)
CM_NOTSUP(int rdma_create_ep(struct rdma_cm_id **id, struct rdma_addrinfo *res,
			     struct ibv_pd *pd, struct ibv_qp_init_attr *qa),
	  (void)id, (void)res, (void)pd, (void)qa)
CM_NOTSUP(int rdma_create_srq(struct rdma_cm_id *id, struct ibv_pd *pd,
			      struct ibv_srq_init_attr *a), (void)id, (void)pd, (void)a)
CM_NOTSUP(int rdma_create_srq_ex(struct rdma_cm_id *id,
				 struct ibv_srq_init_attr_ex *a), (void)id, (void)a)

CM_NOTSUP(int rdma_set_local_ece(struct rdma_cm_id *id, struct ibv_ece *e),
	  (void)id, (void)e)
CM_NOTSUP(int rdma_get_remote_ece(struct rdma_cm_id *id, struct ibv_ece *e),
	  (void)id, (void)e)
CM_NOTSUP(int rdma_reject_ece(struct rdma_cm_id *id, const void *p, uint8_t l),
	  (void)id, (void)p, (void)l)

CM_EXPORT void rdma_destroy_ep(struct rdma_cm_id *id)
{
	rdma_destroy_qp(id);
	rdma_destroy_id(id);
}

CM_EXPORT void rdma_destroy_srq(struct rdma_cm_id *id)
{
	(void)id;
}
