/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * verbs_dev.c — the device: list, open/close (one fabric node per
 * process, shared by every context), queries of device, port, GID and
 * P_Key, async events, and the small helper verbs of libibverbs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ibemu_int.h"

/*
 * The device, laid out as the head of rdma-core's struct verbs_device
 * (driver.h): provider libraries' direct-verbs entry points
 * (mlx5dv_is_supported, mlx5dv_open_device, efadv_query_device, ...) tell
 * their own devices by verbs_device.ops. Ours is NULL, so they answer
 * "not mine" (EOPNOTSUPP) instead of reading past an ibv_device.
 */
static struct {
	struct ibv_device device;
	const void *ops;
	int refcount;
	void *entry[2];
	void *sysfs;
	uint64_t core_support;
} ibemu_vdev = {
	.device = {
		.node_type = IBV_NODE_CA,
		.transport_type = IBV_TRANSPORT_IB,
		.name = "ibemu0",
		.dev_name = "uverbs0",
		.dev_path = "/sys/class/infiniband_verbs/uverbs0",
		.ibdev_path = "/sys/class/infiniband/ibemu0",
	},
};

struct async_msg {
	enum ibv_event_type type;
	void *obj;
};

IBEMU_EXPORT struct ibv_device **ibv_get_device_list(int *num)
{
	struct ibv_device **l = calloc(2, sizeof(*l));

	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	l[0] = &ibemu_vdev.device;
	if (num)
		*num = 1;
	return l;
}

IBEMU_EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	free(list);
}

IBEMU_EXPORT const char *ibv_get_device_name(struct ibv_device *device)
{
	return device->name;
}

IBEMU_EXPORT int ibv_get_device_index(struct ibv_device *device)
{
	return device == &ibemu_vdev.device ? 0 : -1;
}

static uint64_t node_guid_be(void)
{
	return ibemu_g.me ? ibemu_g.me->guid_be : 0;
}

IBEMU_EXPORT __be64 ibv_get_device_guid(struct ibv_device *device)
{
	(void)device;
	if (ibemu_g.me)
		return ibemu_g.me->guid_be;
	/* before open: what the node will get if nothing else attaches */
	const char *g = getenv("IBEMU_GUID");
	return htobe64(g ? strtoull(g, NULL, 0) : 0);
}

int ibemu_port_mtu_bytes(void)
{
	return (int)ibemu_g.mtu_bytes;
}

static int query_device(struct ibv_context *ctx, struct ibv_device_attr *a)
{
	(void)ctx;
	memset(a, 0, sizeof(*a));
	snprintf(a->fw_ver, sizeof(a->fw_ver), "44.0.1");
	a->node_guid = node_guid_be();
	a->sys_image_guid = node_guid_be();
	a->max_mr_size = 1ull << 40;
	a->page_size_cap = 0xfffff000;
	a->vendor_id = 0x02c9;
	a->vendor_part_id = 0xe40;
	a->hw_ver = 1;
	a->max_qp = IBEMU_MAX_QPS - 1;
	a->max_qp_wr = IBEMU_MAX_WR;
	a->device_cap_flags = IBV_DEVICE_PORT_ACTIVE_EVENT |
			      IBV_DEVICE_SYS_IMAGE_GUID | IBV_DEVICE_UD_AV_PORT_ENFORCE;
	a->max_sge = IBEMU_MAX_SGE;
	a->max_cq = IBEMU_MAX_CQS;
	a->max_cqe = IBEMU_MAX_CQE;
	a->max_mr = IBEMU_MAX_MR - 1;
	a->max_pd = 1 << 16;
	a->max_ah = 1 << 20;
	a->max_mcast_grp = IBEMU_MAX_MCAST;
	a->max_mcast_qp_attach = IBEMU_MCAST_MEMBERS;
	a->max_total_mcast_qp_attach = IBEMU_MAX_MCAST * IBEMU_MCAST_MEMBERS;
	a->max_pkeys = IBEMU_PKEY_TBL_LEN;
	a->local_ca_ack_delay = 16;
	a->phys_port_cnt = 1;
	a->atomic_cap = IBV_ATOMIC_NONE;
	return 0;
}

IBEMU_EXPORT int ibv_query_device(struct ibv_context *ctx,
				  struct ibv_device_attr *attr)
{
	return query_device(ctx, attr);
}

static int query_device_ex(struct ibv_context *ctx,
			   const struct ibv_query_device_ex_input *in,
			   struct ibv_device_attr_ex *attr, size_t sz)
{
	(void)in;
	if (sz < sizeof(attr->orig_attr))
		return EINVAL;
	memset(attr, 0, sz);
	query_device(ctx, &attr->orig_attr);
	return 0;
}

static int query_port(struct ibv_context *ctx, uint8_t port,
		      struct ibv_port_attr *pa, size_t sz)
{
	struct ibv_port_attr a;

	(void)ctx;
	if (port != 1)
		return EINVAL;
	memset(&a, 0, sizeof(a));
	a.state = IBV_PORT_ACTIVE;
	a.max_mtu = IBV_MTU_4096;
	a.active_mtu = ibemu_g.mtu_enum;
	a.gid_tbl_len = IBEMU_GID_TBL_LEN;
	a.port_cap_flags = IBV_PORT_CM_SUP | IBV_PORT_SYS_IMAGE_GUID_SUP;
	a.max_msg_sz = ibemu_g.mtu_bytes; /* UD: one packet */
	a.bad_pkey_cntr = 0;
	a.qkey_viol_cntr = (uint32_t)__atomic_load_n(&ibemu_g.me->counters.drop_qkey,
						     __ATOMIC_RELAXED);
	a.pkey_tbl_len = IBEMU_PKEY_TBL_LEN;
	a.lid = ibemu_g.me->lid;
	a.sm_lid = 1;
	a.lmc = 0;
	a.max_vl_num = 4;
	a.sm_sl = 0;
	a.subnet_timeout = 18;
	a.active_width = 2;      /* 4x */
	a.active_speed = 32;     /* EDR 25 Gb/s per lane */
	a.phys_state = 5;        /* LinkUp */
	a.link_layer = IBV_LINK_LAYER_INFINIBAND;
	memcpy(pa, &a, sz < sizeof(a) ? sz : sizeof(a));
	return 0;
}

#undef ibv_query_port
IBEMU_EXPORT int ibv_query_port(struct ibv_context *ctx, uint8_t port,
				struct _compat_ibv_port_attr *pa)
{
	/* the compat layout is a prefix of struct ibv_port_attr */
	return query_port(ctx, port, (struct ibv_port_attr *)pa,
			  offsetof(struct ibv_port_attr, link_layer) + 1);
}

IBEMU_EXPORT int ibv_query_gid(struct ibv_context *ctx, uint8_t port, int index,
			       union ibv_gid *gid)
{
	(void)ctx;
	if (port != 1 || index < 0 || index >= (int)IBEMU_GID_TBL_LEN)
		return -1;
	memset(gid, 0, sizeof(*gid));
	if (index == 0)
		ibemu_node_gid(ibemu_g.me, gid);
	return 0;
}

IBEMU_EXPORT int _ibv_query_gid_ex(struct ibv_context *ctx, uint32_t port,
				   uint32_t index, struct ibv_gid_entry *e,
				   uint32_t flags, size_t sz)
{
	if (flags || sz < sizeof(*e))
		return EINVAL;
	if (port != 1 || index >= IBEMU_GID_TBL_LEN)
		return EINVAL;
	if (index != 0)
		return ENODATA;
	memset(e, 0, sizeof(*e));
	ibv_query_gid(ctx, 1, 0, &e->gid);
	e->gid_index = 0;
	e->port_num = 1;
	e->gid_type = IBV_GID_TYPE_IB;
	e->ndev_ifindex = 0;
	return 0;
}

IBEMU_EXPORT ssize_t _ibv_query_gid_table(struct ibv_context *ctx,
					  struct ibv_gid_entry *e, size_t max,
					  uint32_t flags, size_t sz)
{
	if (max < 1)
		return -EINVAL;
	int rc = _ibv_query_gid_ex(ctx, 1, 0, e, flags, sz);
	return rc ? -rc : 1;
}

/* enum ibv_gid_type_sysfs lives in rdma-core's private driver.h */
#define GID_TYPE_SYSFS_IB_ROCE_V1 0
IBEMU_EXPORT int ibv_query_gid_type(struct ibv_context *ctx, uint8_t port,
				    unsigned int index, int *type)
{
	(void)ctx;
	if (port != 1 || index >= IBEMU_GID_TBL_LEN)
		return -1;
	*type = GID_TYPE_SYSFS_IB_ROCE_V1; /* "IB/RoCE v1": IB on this link */
	return 0;
}

IBEMU_EXPORT int ibv_query_pkey(struct ibv_context *ctx, uint8_t port, int index,
				__be16 *pkey)
{
	(void)ctx;
	if (port != 1 || index < 0 || index >= (int)IBEMU_PKEY_TBL_LEN)
		return -1;
	*pkey = index == 0 ? htons(0xffff) : 0;
	return 0;
}

IBEMU_EXPORT int ibv_get_pkey_index(struct ibv_context *ctx, uint8_t port,
				    __be16 pkey)
{
	(void)ctx;
	if (port == 1 && (ntohs(pkey) & 0x7fff) == 0x7fff)
		return 0;
	errno = ENOENT;
	return -1;
}

/* ---- open / close ---- */

static int query_rt_values(struct ibv_context *ctx, struct ibv_values_ex *v)
{
	(void)ctx;
	if (v->comp_mask & ~(uint32_t)IBV_VALUES_MASK_RAW_CLOCK)
		return EINVAL;
	uint64_t ns = ibemu_now_ns();
	v->raw_clock.tv_sec = (time_t)(ns / 1000000000ull);
	v->raw_clock.tv_nsec = (long)(ns % 1000000000ull);
	return 0;
}

IBEMU_EXPORT struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	struct ibemu_context *c;

	if (device != &ibemu_vdev.device) {
		errno = ENODEV;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_lock(&ibemu_g.lock);
	if (ibemu_g.refs == 0 && ibemu_fabric_attach()) {
		int e = errno;
		pthread_mutex_unlock(&ibemu_g.lock);
		fprintf(stderr, "ibemu: cannot join fabric '%s' in %s: %s\n",
			ibemu_g.fabric, ibemu_g.shm_dir, strerror(e));
		free(c);
		errno = e;
		return NULL;
	}
	ibemu_g.refs++;
	pthread_mutex_unlock(&ibemu_g.lock);

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, c->async_fd))
		goto fail;
	fcntl(c->async_fd[1], F_SETFL, O_NONBLOCK);

	struct verbs_context *v = &c->vctx;
	struct ibv_context *ctx = &v->context;
	ctx->device = device;
	ctx->cmd_fd = dup(ibemu_g.fab_fd);
	ctx->async_fd = c->async_fd[0];
	ctx->num_comp_vectors = 1;
	pthread_mutex_init(&ctx->mutex, NULL);
	ctx->abi_compat = __VERBS_ABI_IS_EXTENDED;
	ctx->ops.poll_cq = ibemu_poll_cq;
	ctx->ops.req_notify_cq = ibemu_req_notify_cq;
	ctx->ops.post_send = ibemu_post_send;
	ctx->ops.post_recv = ibemu_post_recv;
	v->sz = sizeof(*v);
	v->query_port = query_port;
	v->query_device_ex = query_device_ex;
	v->query_rt_values = query_rt_values;
	v->create_qp_ex = ibemu_create_qp_ex;
	return ctx;
fail:
	free(c);
	pthread_mutex_lock(&ibemu_g.lock);
	if (--ibemu_g.refs == 0)
		ibemu_fabric_detach();
	pthread_mutex_unlock(&ibemu_g.lock);
	return NULL;
}

IBEMU_EXPORT int ibv_close_device(struct ibv_context *ctx)
{
	struct ibemu_context *c = (struct ibemu_context *)verbs_get_ctx(ctx);

	close(c->async_fd[0]);
	close(c->async_fd[1]);
	close(ctx->cmd_fd);
	free(c);
	pthread_mutex_lock(&ibemu_g.lock);
	if (--ibemu_g.refs == 0)
		ibemu_fabric_detach();
	pthread_mutex_unlock(&ibemu_g.lock);
	return 0;
}

IBEMU_EXPORT struct ibv_context *ibv_import_device(int cmd_fd)
{
	(void)cmd_fd;
	errno = EOPNOTSUPP;
	return NULL;
}

/* ---- async events ---- */

void ibemu_async_event(struct ibv_context *ctx, enum ibv_event_type type,
		       void *obj)
{
	struct ibemu_context *c = (struct ibemu_context *)verbs_get_ctx(ctx);
	struct async_msg m = { type, obj };

	(void)!send(c->async_fd[1], &m, sizeof(m), MSG_DONTWAIT);
}

IBEMU_EXPORT int ibv_get_async_event(struct ibv_context *ctx,
				     struct ibv_async_event *ev)
{
	struct async_msg m;

	if (recv(ctx->async_fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m))
		return -1;
	ev->event_type = m.type;
	switch (m.type) {
	case IBV_EVENT_CQ_ERR:
		ev->element.cq = m.obj;
		break;
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
		ev->element.qp = m.obj;
		break;
	default:
		ev->element.port_num = 1;
	}
	return 0;
}

IBEMU_EXPORT void ibv_ack_async_event(struct ibv_async_event *ev)
{
	(void)ev;
}

/* ---- helpers with no device behind them ---- */

IBEMU_EXPORT int ibv_fork_init(void)
{
	return 0;
}

IBEMU_EXPORT enum ibv_fork_status ibv_is_fork_initialized(void)
{
	return IBV_FORK_UNNEEDED;
}

IBEMU_EXPORT int ibv_dontfork_range(void *base, size_t size)
{
	(void)base;
	(void)size;
	return 0;
}

IBEMU_EXPORT int ibv_dofork_range(void *base, size_t size)
{
	(void)base;
	(void)size;
	return 0;
}

IBEMU_EXPORT const char *ibv_get_sysfs_path(void)
{
	return "/sys";
}

IBEMU_EXPORT int ibv_read_sysfs_file(const char *dir, const char *file,
				     char *buf, size_t size)
{
	(void)dir;
	(void)file;
	(void)buf;
	(void)size;
	errno = ENOENT;
	return -1;
}

IBEMU_EXPORT int ibv_resolve_eth_l2_from_gid(struct ibv_context *ctx,
					     struct ibv_ah_attr *attr,
					     uint8_t eth_mac[6], uint16_t *vid)
{
	(void)ctx;
	(void)attr;
	(void)eth_mac;
	(void)vid;
	return EOPNOTSUPP; /* no Ethernet link layer on this fabric */
}
