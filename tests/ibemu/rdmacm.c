/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * rdmacm.c — the rdma_cm subset UD users need: event channels, ids,
 * address binding (AF_INET on the node's emulated IPoIB address, AF_IB on
 * its port GID), address and route resolution over the fabric, events,
 * rdma_getaddrinfo for numeric addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rdmacm_int.h"

static pthread_mutex_t cm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibv_context *cm_ctx;
static uint32_t next_chan_id;
static struct cm_id *live_ids;
static uint16_t next_port = 0xC000;
static int tx_sock = -1;

static void cm_atfork_child(void)
{
	pthread_mutex_init(&cm_lock, NULL);
	cm_ctx = NULL; /* the parent's node; the child opens its own */
	live_ids = NULL;
	tx_sock = -1;
}

__attribute__((constructor)) static void cm_init(void)
{
	pthread_atfork(NULL, NULL, cm_atfork_child);
}

struct ibv_context *cm_verbs(void)
{
	pthread_mutex_lock(&cm_lock);
	if (!cm_ctx) {
		struct ibv_device **l = ibv_get_device_list(NULL);
		if (l && l[0])
			cm_ctx = ibv_open_device(l[0]);
		ibv_free_device_list(l);
	}
	pthread_mutex_unlock(&cm_lock);
	return cm_ctx;
}

static socklen_t chan_addr(struct sockaddr_un *sa, pid_t pid, uint32_t id)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
			 "ibemu.%s.%d.cm%u", ibemu_priv_fabric(), (int)pid, id);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int cm_send_to(pid_t pid, uint32_t chan, const struct cm_wire *w)
{
	struct sockaddr_un sa;

	pthread_mutex_lock(&cm_lock);
	if (tx_sock < 0)
		tx_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	pthread_mutex_unlock(&cm_lock);
	socklen_t len = chan_addr(&sa, pid, chan);
	if (sendto(tx_sock, w, sizeof(*w), 0, (struct sockaddr *)&sa, len) !=
	    (ssize_t)sizeof(*w))
		return errno ? errno : EIO;
	return 0;
}

int cm_send_local(struct cm_id *id, const struct cm_wire *w)
{
	struct cm_chan *ch = (struct cm_chan *)id->id.channel;
	struct cm_wire m = *w;

	m.kind = W_LOCAL;
	m.cookie = (uint64_t)(uintptr_t)id;
	return cm_send_to(getpid(), ch->id, &m);
}

void cm_id_link(struct cm_id *id)
{
	pthread_mutex_lock(&cm_lock);
	id->next_live = live_ids;
	live_ids = id;
	pthread_mutex_unlock(&cm_lock);
}

bool cm_id_live(struct cm_id *id)
{
	bool found = false;

	pthread_mutex_lock(&cm_lock);
	for (struct cm_id *i = live_ids; i && !found; i = i->next_live)
		found = i == id;
	pthread_mutex_unlock(&cm_lock);
	return found;
}

struct rdma_cm_id *cm_find_listener(uint16_t port, uint16_t ps)
{
	struct rdma_cm_id *found = NULL;

	pthread_mutex_lock(&cm_lock);
	for (struct cm_id *i = live_ids; i && !found; i = i->next_live)
		if (i->listening && i->port == port && i->id.ps == ps)
			found = &i->id;
	pthread_mutex_unlock(&cm_lock);
	return found;
}

static void cm_id_unlink(struct cm_id *id)
{
	pthread_mutex_lock(&cm_lock);
	for (struct cm_id **p = &live_ids; *p; p = &(*p)->next_live)
		if (*p == id) {
			*p = id->next_live;
			break;
		}
	pthread_mutex_unlock(&cm_lock);
}

CM_EXPORT struct rdma_event_channel *rdma_create_event_channel(void)
{
	struct cm_chan *ch = calloc(1, sizeof(*ch));
	struct sockaddr_un sa;

	if (!ch)
		return NULL;
	if (!cm_verbs()) {
		free(ch);
		errno = ENODEV;
		return NULL;
	}
	ch->ch.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ch->ch.fd < 0)
		goto fail;
	pthread_mutex_lock(&cm_lock);
	ch->id = next_chan_id++;
	pthread_mutex_unlock(&cm_lock);
	socklen_t len = chan_addr(&sa, getpid(), ch->id);
	if (bind(ch->ch.fd, (struct sockaddr *)&sa, len) == 0)
		return &ch->ch;
	close(ch->ch.fd);
fail:
	free(ch);
	return NULL;
}

CM_EXPORT void rdma_destroy_event_channel(struct rdma_event_channel *channel)
{
	close(channel->fd);
	free(channel);
}

CM_EXPORT int rdma_create_id(struct rdma_event_channel *channel,
			     struct rdma_cm_id **out, void *context,
			     enum rdma_port_space ps)
{
	struct cm_id *id;

	if (ps != RDMA_PS_UDP && ps != RDMA_PS_IPOIB) {
		errno = EOPNOTSUPP; /* connected port spaces need RC */
		return -1;
	}
	if (!cm_verbs()) {
		errno = ENODEV;
		return -1;
	}
	id = calloc(1, sizeof(*id));
	if (!id)
		return -1;
	if (!channel) {
		channel = rdma_create_event_channel();
		if (!channel) {
			free(id);
			return -1;
		}
		id->sync = true;
	}
	id->id.verbs = cm_ctx;
	id->id.channel = channel;
	id->id.context = context;
	id->id.ps = ps;
	id->id.qp_type = IBV_QPT_UD;
	id->id.port_num = 1;
	cm_id_link(id);
	*out = &id->id;
	return 0;
}

CM_EXPORT int rdma_destroy_id(struct rdma_cm_id *cid)
{
	struct cm_id *id = (struct cm_id *)cid;

	while (id->joins)
		rdma_leave_multicast(cid, (struct sockaddr *)&id->joins->addr);
	if (id->listening)
		ibemu_priv_cm_listen(id->port, (uint16_t)cid->ps, 0, 0);
	cm_id_unlink(id);
	if (id->sync)
		rdma_destroy_event_channel(cid->channel);
	free(cid->route.path_rec);
	free(id);
	return 0;
}

void cm_fill_route(struct cm_id *id, const struct ibemu_node_addr *self,
		   const struct ibemu_node_addr *peer)
{
	struct rdma_ib_addr *ib = &id->id.route.addr.addr.ibaddr;

	ib->sgid = self->gid;
	ib->pkey = htons(0xffff);
	if (peer) {
		ib->dgid = peer->gid;
		id->peer = *peer;
	}
}

static uint16_t addr_port(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	if (a->sa_family == AF_IB)
		return (uint16_t)be64toh(((const struct sockaddr_ib *)a)->sib_sid);
	return 0;
}

static socklen_t addr_len(const struct sockaddr *a)
{
	return a->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	       a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	       sizeof(struct sockaddr_ib);
}

CM_EXPORT int rdma_bind_addr(struct rdma_cm_id *cid, struct sockaddr *addr)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct ibemu_node_addr self;

	if (!addr || id->bound) {
		errno = EINVAL;
		return -1;
	}
	if (ibemu_priv_self(&self)) {
		errno = ENODEV;
		return -1;
	}
	switch (addr->sa_family) {
	case AF_INET: {
		uint32_t ip = ((struct sockaddr_in *)addr)->sin_addr.s_addr;
		if (ip != INADDR_ANY && ip != self.ip_be) {
			errno = EADDRNOTAVAIL; /* not this node's IPoIB address */
			return -1;
		}
		break;
	}
	case AF_IB: {
		struct sockaddr_ib *sib = (struct sockaddr_ib *)addr;
		static const uint8_t zero[16];
		if (memcmp(&sib->sib_addr, zero, 16) &&
		    memcmp(&sib->sib_addr, &self.gid, 16)) {
			errno = EADDRNOTAVAIL; /* not this port's GID */
			return -1;
		}
		break;
	}
	case AF_INET6: {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)addr;
		if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) &&
		    memcmp(&s6->sin6_addr, &self.gid, 16)) {
			errno = EADDRNOTAVAIL;
			return -1;
		}
		break;
	}
	default:
		errno = EAFNOSUPPORT;
		return -1;
	}
	memcpy(&cid->route.addr.src_storage, addr, addr_len(addr));
	id->port = addr_port(addr);
	if (!id->port) {
		pthread_mutex_lock(&cm_lock);
		id->port = next_port++;
		pthread_mutex_unlock(&cm_lock);
	}
	if (addr->sa_family == AF_INET) {
		struct sockaddr_in *s = &cid->route.addr.src_sin;
		s->sin_addr.s_addr = self.ip_be;
		s->sin_port = htons(id->port);
	} else if (addr->sa_family == AF_IB) {
		struct sockaddr_ib *s = (struct sockaddr_ib *)&cid->route.addr.src_storage;
		memcpy(&s->sib_addr, &self.gid, 16);
		s->sib_sid = htobe64(id->port);
	}
	cm_fill_route(id, &self, NULL);
	id->bound = true;
	return 0;
}

static bool is_mcast(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 28) == 0xE;
	if (a->sa_family == AF_INET6)
		return ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr[0] == 0xff;
	if (a->sa_family == AF_IB)
		return ((const struct sockaddr_ib *)a)->sib_addr.sib_raw[0] == 0xff;
	return false;
}

/* Destination → node of the fabric. */
static int lookup_dst(const struct sockaddr *dst, struct ibemu_node_addr *out)
{
	if (dst->sa_family == AF_INET)
		return ibemu_priv_by_ip(((const struct sockaddr_in *)dst)->sin_addr.s_addr, out);
	if (dst->sa_family == AF_IB)
		return ibemu_priv_by_gid((const union ibv_gid *)
					 &((const struct sockaddr_ib *)dst)->sib_addr, out);
	if (dst->sa_family == AF_INET6)
		return ibemu_priv_by_gid((const union ibv_gid *)
					 &((const struct sockaddr_in6 *)dst)->sin6_addr, out);
	return EAFNOSUPPORT;
}

CM_EXPORT int rdma_resolve_addr(struct rdma_cm_id *cid, struct sockaddr *src,
				struct sockaddr *dst, int timeout_ms)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct cm_wire w = { .event = RDMA_CM_EVENT_ADDR_RESOLVED };
	struct ibemu_node_addr peer;

	(void)timeout_ms;
	if (!dst) {
		errno = EINVAL;
		return -1;
	}
	if (!id->bound) {
		struct sockaddr_storage any = { .ss_family = dst->sa_family };
		if (rdma_bind_addr(cid, src ? src : (struct sockaddr *)&any))
			return -1;
	}
	memcpy(&cid->route.addr.dst_storage, dst, addr_len(dst));
	/* a multicast destination resolves to the local port (as rdma_cm
	 * does before rdma_join_multicast) */
	int rc = is_mcast(dst) ? ibemu_priv_self(&peer) : lookup_dst(dst, &peer);
	if (rc) {
		w.event = RDMA_CM_EVENT_ADDR_ERROR;
		w.status = -EHOSTUNREACH;
	} else {
		struct ibemu_node_addr self;
		ibemu_priv_self(&self);
		cm_fill_route(id, &self, &peer);
	}
	if ((rc = cm_send_local(id, &w))) {
		errno = rc;
		return -1;
	}
	return id->sync ? cm_sync_wait(id, 0) : 0;
}

CM_EXPORT int rdma_resolve_route(struct rdma_cm_id *cid, int timeout_ms)
{
	struct cm_id *id = (struct cm_id *)cid;
	struct cm_wire w = { .event = RDMA_CM_EVENT_ROUTE_RESOLVED };
	struct ibemu_node_addr self;
	struct ibv_port_attr pa;

	(void)timeout_ms;
	if (!id->peer.lid || ibemu_priv_self(&self)) {
		errno = EINVAL; /* rdma_resolve_addr first */
		return -1;
	}
	if (!cid->route.path_rec)
		cid->route.path_rec = calloc(1, sizeof(*cid->route.path_rec));
	if (!cid->route.path_rec)
		return -1;
	ibv_query_port(cid->verbs, 1, &pa);
	struct ibv_sa_path_rec *p = cid->route.path_rec;
	p->dgid = id->peer.gid;
	p->sgid = self.gid;
	p->dlid = htons(id->peer.lid);
	p->slid = htons(self.lid);
	p->pkey = htons(0xffff);
	p->mtu = (uint8_t)pa.active_mtu;
	p->mtu_selector = 2;
	p->hop_limit = 0;
	p->reversible = 1;
	p->numb_path = 1;
	cid->route.num_paths = 1;
	int rc = cm_send_local(id, &w);
	if (rc) {
		errno = rc;
		return -1;
	}
	return id->sync ? cm_sync_wait(id, 0) : 0;
}

CM_EXPORT int rdma_get_cm_event(struct rdma_event_channel *channel,
				struct rdma_cm_event **event)
{
	struct cm_chan *ch = (struct cm_chan *)channel;
	struct cm_wire w;

	for (;;) {
		ssize_t r = recv(channel->fd, &w, sizeof(w), 0);
		if (r < 0)
			return -1;
		if (r != (ssize_t)sizeof(w))
			continue;
		struct rdma_cm_event *ev = calloc(1, sizeof(*ev) + CM_PDATA_MAX);
		if (!ev)
			return -1;
		if (w.kind != W_LOCAL) {
			if (cm_sidr_event(ch, &w, ev) == 0) {
				*event = ev;
				return 0;
			}
			free(ev);
			continue;
		}
		struct cm_id *id = (struct cm_id *)(uintptr_t)w.cookie;
		if (!cm_id_live(id)) {
			free(ev);
			continue;
		}
		ev->id = &id->id;
		ev->event = (enum rdma_cm_event_type)w.event;
		ev->status = w.status;
		if (w.event == RDMA_CM_EVENT_MULTICAST_JOIN ||
		    w.event == RDMA_CM_EVENT_MULTICAST_ERROR ||
		    w.event == RDMA_CM_EVENT_ESTABLISHED) {
			ev->param.ud.ah_attr = w.ah_attr;
			ev->param.ud.qp_num = w.qp_num;
			ev->param.ud.qkey = w.qkey;
			ev->param.ud.private_data = w.join_ctx;
		}
		*event = ev;
		return 0;
	}
}

CM_EXPORT int rdma_ack_cm_event(struct rdma_cm_event *event)
{
	free(event);
	return 0;
}

/* Synchronous ids (no channel): wait for the event just queued. */
int cm_sync_wait(struct cm_id *id, int keep_event)
{
	struct rdma_cm_event *ev;

	if (rdma_get_cm_event(id->id.channel, &ev))
		return -1;
	int status = ev->status;
	if (keep_event)
		id->id.event = ev;
	else
		rdma_ack_cm_event(ev);
	if (status) {
		errno = -status;
		return -1;
	}
	return 0;
}

CM_EXPORT const char *rdma_event_str(enum rdma_cm_event_type event)
{
	static const char *const s[] = {
		[RDMA_CM_EVENT_ADDR_RESOLVED] = "RDMA_CM_EVENT_ADDR_RESOLVED",
		[RDMA_CM_EVENT_ADDR_ERROR] = "RDMA_CM_EVENT_ADDR_ERROR",
		[RDMA_CM_EVENT_ROUTE_RESOLVED] = "RDMA_CM_EVENT_ROUTE_RESOLVED",
		[RDMA_CM_EVENT_ROUTE_ERROR] = "RDMA_CM_EVENT_ROUTE_ERROR",
		[RDMA_CM_EVENT_CONNECT_REQUEST] = "RDMA_CM_EVENT_CONNECT_REQUEST",
		[RDMA_CM_EVENT_CONNECT_RESPONSE] = "RDMA_CM_EVENT_CONNECT_RESPONSE",
		[RDMA_CM_EVENT_CONNECT_ERROR] = "RDMA_CM_EVENT_CONNECT_ERROR",
		[RDMA_CM_EVENT_UNREACHABLE] = "RDMA_CM_EVENT_UNREACHABLE",
		[RDMA_CM_EVENT_REJECTED] = "RDMA_CM_EVENT_REJECTED",
		[RDMA_CM_EVENT_ESTABLISHED] = "RDMA_CM_EVENT_ESTABLISHED",
		[RDMA_CM_EVENT_DISCONNECTED] = "RDMA_CM_EVENT_DISCONNECTED",
		[RDMA_CM_EVENT_DEVICE_REMOVAL] = "RDMA_CM_EVENT_DEVICE_REMOVAL",
		[RDMA_CM_EVENT_MULTICAST_JOIN] = "RDMA_CM_EVENT_MULTICAST_JOIN",
		[RDMA_CM_EVENT_MULTICAST_ERROR] = "RDMA_CM_EVENT_MULTICAST_ERROR",
		[RDMA_CM_EVENT_ADDR_CHANGE] = "RDMA_CM_EVENT_ADDR_CHANGE",
		[RDMA_CM_EVENT_TIMEWAIT_EXIT] = "RDMA_CM_EVENT_TIMEWAIT_EXIT",
	};
	return (unsigned)event < sizeof(s) / sizeof(s[0]) ? s[event] :
	       "UNKNOWN EVENT";
}

/* ---- rdma_getaddrinfo: numeric addresses only ---- */

static struct sockaddr *numeric_addr(const char *node, const char *service,
				     int family, socklen_t *len)
{
	struct sockaddr_storage *ss = calloc(1, sizeof(*ss));
	uint16_t port = service ? (uint16_t)strtoul(service, NULL, 10) : 0;

	if (!ss)
		return NULL;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if ((family == AF_UNSPEC || family == AF_INET) &&
	    (!node || inet_pton(AF_INET, node, &s4->sin_addr) == 1)) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return (struct sockaddr *)ss;
	}
	if ((family == AF_UNSPEC || family == AF_INET6) && node &&
	    inet_pton(AF_INET6, node, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return (struct sockaddr *)ss;
	}
	free(ss);
	return NULL;
}

CM_EXPORT int rdma_getaddrinfo(const char *node, const char *service,
			       const struct rdma_addrinfo *hints,
			       struct rdma_addrinfo **res)
{
	struct rdma_addrinfo *ai = calloc(1, sizeof(*ai));
	int family = hints ? hints->ai_family : AF_UNSPEC;
	int passive = hints && (hints->ai_flags & RAI_PASSIVE);
	socklen_t len = 0;

	if (!ai)
		return -1;
	if (!node && !service) {
		free(ai);
		errno = EINVAL;
		return -1;
	}
	struct sockaddr *a = numeric_addr(node, service, family, &len);
	if (!a) {
		free(ai);
		errno = EADDRNOTAVAIL; /* names are not resolved on this fabric */
		return -1;
	}
	ai->ai_flags = hints ? hints->ai_flags : 0;
	ai->ai_family = a->sa_family;
	ai->ai_qp_type = hints && hints->ai_qp_type ? hints->ai_qp_type : IBV_QPT_UD;
	ai->ai_port_space = hints && hints->ai_port_space ? hints->ai_port_space :
			    RDMA_PS_UDP;
	if (passive) {
		ai->ai_src_addr = a;
		ai->ai_src_len = len;
	} else {
		ai->ai_dst_addr = a;
		ai->ai_dst_len = len;
	}
	*res = ai;
	return 0;
}

CM_EXPORT void rdma_freeaddrinfo(struct rdma_addrinfo *res)
{
	while (res) {
		struct rdma_addrinfo *n = res->ai_next;
		free(res->ai_src_addr);
		free(res->ai_dst_addr);
		free(res);
		res = n;
	}
}

CM_EXPORT struct ibv_context **rdma_get_devices(int *num)
{
	struct ibv_context **l = calloc(2, sizeof(*l));

	if (!l)
		return NULL;
	l[0] = cm_verbs();
	if (num)
		*num = l[0] ? 1 : 0;
	return l;
}

CM_EXPORT void rdma_free_devices(struct ibv_context **list)
{
	free(list);
}

CM_EXPORT __be16 rdma_get_src_port(struct rdma_cm_id *cid)
{
	return htons(((struct cm_id *)cid)->port);
}

CM_EXPORT __be16 rdma_get_dst_port(struct rdma_cm_id *cid)
{
	const struct sockaddr *d = &cid->route.addr.dst_addr;
	return htons(addr_port(d));
}

CM_EXPORT int rdma_set_option(struct rdma_cm_id *cid, int level, int optname,
			      void *optval, size_t optlen)
{
	(void)cid; (void)optval; (void)optlen;
	/* harmless on a flat emulated subnet: TOS, REUSEADDR, AFONLY */
	if (level == RDMA_OPTION_ID &&
	    (optname == RDMA_OPTION_ID_TOS || optname == RDMA_OPTION_ID_REUSEADDR ||
	     optname == RDMA_OPTION_ID_AFONLY))
		return 0;
	errno = EOPNOTSUPP;
	return -1;
}

CM_EXPORT int rdma_migrate_id(struct rdma_cm_id *cid,
			      struct rdma_event_channel *channel)
{
	struct cm_id *id = (struct cm_id *)cid;

	if (!channel) {
		errno = EINVAL;
		return -1;
	}
	if (id->sync)
		rdma_destroy_event_channel(cid->channel);
	id->sync = false;
	cid->channel = channel;
	return 0;
}
