/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ib: device, memory registration, UD queue pairs, address handles and
 * multicast groups. See include/ibvhost/ib.h.
 */
#include "ibvhost/ib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <infiniband/ib.h>

#include "ibvhost/log.h"

/* Signature in the default multicast GID: "ibvh". */
static const uint8_t mcast_gid_prefix[10] = {
	0xff, 0x12, 'i', 'b', 'v', 'h', 0, 0, 0, 0,
};

uint32_t ib_mtu_bytes(enum ibv_mtu mtu)
{
	switch (mtu) {
	case IBV_MTU_256: return 256;
	case IBV_MTU_512: return 512;
	case IBV_MTU_1024: return 1024;
	case IBV_MTU_2048: return 2048;
	case IBV_MTU_4096: return 4096;
	}
	return 0;
}

void ib_gid_format(const uint8_t gid[16], char out[40])
{
	if (!inet_ntop(AF_INET6, gid, out, 40))
		snprintf(out, 40, "?");
}

static bool gid_is_zero(const uint8_t *gid)
{
	static const uint8_t zero[16];

	return memcmp(gid, zero, sizeof(zero)) == 0;
}

/* ::ffff:a.b.c.d, the RoCE v2 GID of an IPv4 address. */
static bool gid_is_v4_mapped(const uint8_t gid[16])
{
	static const uint8_t prefix[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	return memcmp(gid, prefix, sizeof(prefix)) == 0;
}

static struct ibv_device *pick_device(struct ibv_device **list, int n,
				      const char *name, uint8_t port)
{
	for (int i = 0; i < n; i++) {
		const char *dn = ibv_get_device_name(list[i]);

		if (name && name[0]) {
			if (strcmp(dn, name) == 0)
				return list[i];
			continue;
		}
		/* No name: the first device whose port is up. */
		struct ibv_context *ctx = ibv_open_device(list[i]);
		struct ibv_port_attr pa;
		bool active = false;

		if (ctx) {
			active = ibv_query_port(ctx, port, &pa) == 0 &&
				 pa.state == IBV_PORT_ACTIVE;
			ibv_close_device(ctx);
		}
		if (active)
			return list[i];
	}
	return NULL;
}

static void log_no_device(const char *name, int n)
{
	if (n == 0)
		log_err("ib: no RDMA device found: check that the HCA driver "
			"(or rdma_rxe for Soft-RoCE) is loaded and that "
			"`ibv_devinfo` lists a device; tests run on the "
			"emulated fabric with LD_LIBRARY_PATH=build/tests/ibemu");
	else if (name && name[0])
		log_err("ib: device %s not found among %d device(s): check "
			"ib_device in the config against `ibv_devinfo -l`",
			name, n);
	else
		log_err("ib: none of %d device(s) has an ACTIVE port: check "
			"the cable/link and the subnet manager (`ibv_devinfo`)",
			n);
}

int ib_dev_open(const char *name, uint8_t port, int gid_index,
		struct ib_dev **out)
{
	struct ibv_device **list;
	struct ibv_device *device;
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	struct ib_dev *dev;
	int n = 0, err;

	list = ibv_get_device_list(&n);
	if (!list) {
		err = errno ? errno : ENODEV;
		log_err("ib: ibv_get_device_list failed: %s (is the ib_uverbs "
			"module loaded?)", strerror(err));
		return -err;
	}
	device = pick_device(list, n, name, port);
	if (!device) {
		log_no_device(name, n);
		ibv_free_device_list(list);
		return -ENODEV;
	}

	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		ibv_free_device_list(list);
		return -ENOMEM;
	}
	snprintf(dev->name, sizeof(dev->name), "%s",
		 ibv_get_device_name(device));
	dev->port = port;
	dev->gid_index = gid_index;

	dev->ctx = ibv_open_device(device);
	ibv_free_device_list(list);
	if (!dev->ctx) {
		err = errno ? errno : ENODEV;
		log_err("ib: %s: ibv_open_device failed: %s (permissions on "
			"/dev/infiniband/uverbs*?)", dev->name, strerror(err));
		goto err_free;
	}
	if ((err = ibv_query_device(dev->ctx, &da)) != 0) {
		log_err("ib: %s: ibv_query_device failed: %s", dev->name,
			strerror(err));
		goto err_close;
	}
	if ((err = ibv_query_port(dev->ctx, port, &pa)) != 0) {
		log_err("ib: %s: ibv_query_port(%u) failed: %s (check ib_port "
			"in the config; the device has %u port(s))", dev->name,
			port, strerror(err), da.phys_port_cnt);
		goto err_close;
	}
	if (pa.state != IBV_PORT_ACTIVE)
		log_warn("ib: %s port %u is %s, not ACTIVE: frames will not "
			 "pass until the link is up", dev->name, port,
			 ibv_port_state_str(pa.state));
	if (gid_index < 0 || gid_index >= pa.gid_tbl_len) {
		log_err("ib: %s port %u: GID index %d out of range (table has "
			"%d entries)", dev->name, port, gid_index,
			pa.gid_tbl_len);
		err = EINVAL;
		goto err_close;
	}
	if ((err = ibv_query_gid(dev->ctx, port, gid_index, &dev->gid)) != 0) {
		log_err("ib: %s port %u: ibv_query_gid(%d) failed: %s",
			dev->name, port, gid_index, strerror(err));
		goto err_close;
	}
	dev->lid = pa.lid;
	dev->roce = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
	dev->active_mtu = pa.active_mtu;
	dev->mtu_bytes = ib_mtu_bytes(pa.active_mtu);
	dev->max_qp_wr = (uint32_t)da.max_qp_wr;
	dev->max_sge = (uint32_t)da.max_sge;
	dev->max_cqe = (uint32_t)da.max_cqe;
	dev->pkey_index = 0;
	if (dev->roce && gid_is_zero(dev->gid.raw)) {
		log_err("ib: %s port %u: GID index %d is empty; RoCE needs a "
			"GID (see `show_gids` or rdma link)", dev->name, port,
			gid_index);
		err = EINVAL;
		goto err_close;
	}

	dev->pd = ibv_alloc_pd(dev->ctx);
	if (!dev->pd) {
		err = errno ? errno : ENOMEM;
		log_err("ib: %s: ibv_alloc_pd failed: %s", dev->name,
			strerror(err));
		goto err_close;
	}

	char gid[40];

	ib_gid_format(dev->gid.raw, gid);
	log_notice("ib: using %s port %u (%s): LID 0x%x, GID[%d] %s, "
		   "active MTU %u, max_sge %u, max_qp_wr %u", dev->name, port,
		   dev->roce ? "RoCE" : "InfiniBand", dev->lid, gid_index, gid,
		   dev->mtu_bytes, dev->max_sge, dev->max_qp_wr);
	*out = dev;
	return 0;

err_close:
	ibv_close_device(dev->ctx);
err_free:
	free(dev);
	return -err;
}

void ib_dev_close(struct ib_dev *dev)
{
	if (!dev)
		return;
	if (dev->pd && ibv_dealloc_pd(dev->pd) != 0)
		log_warn("ib: %s: ibv_dealloc_pd failed: %s (objects still "
			 "use it)", dev->name, strerror(errno));
	ibv_close_device(dev->ctx);
	free(dev);
}

static void format_size(size_t len, char *out, size_t outlen)
{
	if (len >= (1ull << 30) && len % (1ull << 30) == 0)
		snprintf(out, outlen, "%zu GiB", len >> 30);
	else if (len >= (1ull << 20))
		snprintf(out, outlen, "%zu MiB", len >> 20);
	else
		snprintf(out, outlen, "%zu bytes", len);
}

struct ibv_mr *ib_reg_mr(struct ib_dev *dev, void *addr, size_t len,
			 const char *what)
{
	struct ibv_mr *mr;
	char size[32];

	mr = ibv_reg_mr(dev->pd, addr, len, IBV_ACCESS_LOCAL_WRITE);
	if (mr)
		return mr;

	int err = errno ? errno : ENOMEM;

	format_size(len, size, sizeof(size));
	if (err == ENOMEM || err == EPERM || err == EAGAIN) {
		struct rlimit rl = { 0, 0 };
		char lim[32] = "unlimited";

		getrlimit(RLIMIT_MEMLOCK, &rl);
		if (rl.rlim_cur != RLIM_INFINITY)
			format_size((size_t)rl.rlim_cur, lim, sizeof(lim));
		log_err("%s: ibv_reg_mr(%s) failed: %s (memlock limit %s: "
			"raise LimitMEMLOCK / ulimit -l)", what, size,
			strerror(err), lim);
	} else {
		log_err("%s: ibv_reg_mr(%s) failed: %s", what, size,
			strerror(err));
	}
	errno = err;
	return NULL;
}

int ib_ud_qp_activate(struct ib_dev *dev, struct ibv_qp *qp, uint32_t qkey,
		      const char *what)
{
	struct ibv_qp_attr attr;
	int err;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_INIT;
	attr.pkey_index = dev->pkey_index;
	attr.port_num = dev->port;
	attr.qkey = qkey;
	err = ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT | IBV_QP_QKEY);
	if (err) {
		log_err("%s: QP 0x%x to INIT failed: %s", what, qp->qp_num,
			strerror(err));
		return -err;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTR;
	err = ibv_modify_qp(qp, &attr, IBV_QP_STATE);
	if (err) {
		log_err("%s: QP 0x%x to RTR failed: %s", what, qp->qp_num,
			strerror(err));
		return -err;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTS;
	attr.sq_psn = 0;
	err = ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_SQ_PSN);
	if (err) {
		log_err("%s: QP 0x%x to RTS failed: %s", what, qp->qp_num,
			strerror(err));
		return -err;
	}
	return 0;
}

static int qp_to_state(struct ibv_qp *qp, enum ibv_qp_state state,
		       const char *name, const char *what)
{
	struct ibv_qp_attr attr;
	int err;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = state;
	err = ibv_modify_qp(qp, &attr, IBV_QP_STATE);
	if (err)
		log_err("%s: QP 0x%x to %s failed: %s", what, qp->qp_num,
			name, strerror(err));
	return -err;
}

int ib_qp_to_err(struct ibv_qp *qp, const char *what)
{
	return qp_to_state(qp, IBV_QPS_ERR, "ERR", what);
}

int ib_qp_to_reset(struct ibv_qp *qp, const char *what)
{
	return qp_to_state(qp, IBV_QPS_RESET, "RESET", what);
}

static uint32_t clamp_u32(uint32_t v, uint32_t max)
{
	return v > max ? max : v;
}

struct ibv_qp *ib_ud_qp_create(struct ib_dev *dev, struct ibv_cq *send_cq,
			       struct ibv_cq *recv_cq, uint32_t qkey,
			       struct ib_qp_caps *caps, const char *what)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp *qp;

	memset(&init, 0, sizeof(init));
	init.send_cq = send_cq;
	init.recv_cq = recv_cq;
	init.qp_type = IBV_QPT_UD;
	init.sq_sig_all = 0;
	init.cap.max_send_wr = clamp_u32(caps->send_wr, dev->max_qp_wr);
	init.cap.max_recv_wr = clamp_u32(caps->recv_wr, dev->max_qp_wr);
	init.cap.max_send_sge = clamp_u32(caps->send_sge, dev->max_sge);
	init.cap.max_recv_sge = clamp_u32(caps->recv_sge, dev->max_sge);
	init.cap.max_inline_data = caps->max_inline;

	qp = ibv_create_qp(dev->pd, &init);
	if (!qp && init.cap.max_inline_data) {
		/* Inline data is an optimisation; not every HCA has it. */
		init.cap.max_inline_data = 0;
		qp = ibv_create_qp(dev->pd, &init);
	}
	if (!qp) {
		int err = errno ? errno : ENOMEM;

		log_err("%s: ibv_create_qp(UD, %u send / %u recv WRs, %u/%u "
			"SGEs) failed: %s", what, init.cap.max_send_wr,
			init.cap.max_recv_wr, init.cap.max_send_sge,
			init.cap.max_recv_sge, strerror(err));
		errno = err;
		return NULL;
	}
	caps->send_wr = init.cap.max_send_wr;
	caps->recv_wr = init.cap.max_recv_wr;
	caps->send_sge = init.cap.max_send_sge;
	caps->recv_sge = init.cap.max_recv_sge;
	caps->max_inline = init.cap.max_inline_data;

	if (ib_ud_qp_activate(dev, qp, qkey, what) != 0) {
		ibv_destroy_qp(qp);
		errno = EIO;
		return NULL;
	}
	return qp;
}

struct ibv_ah *ib_ah_create(struct ib_dev *dev, uint16_t lid,
			    const uint8_t *gid)
{
	struct ibv_ah_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.dlid = lid;
	attr.port_num = dev->port;
	if (dev->roce || (gid && !gid_is_zero(gid))) {
		if (!gid || gid_is_zero(gid)) {
			errno = EINVAL; /* RoCE cannot address by LID */
			return NULL;
		}
		attr.is_global = 1;
		memcpy(attr.grh.dgid.raw, gid, 16);
		attr.grh.sgid_index = (uint8_t)dev->gid_index;
		attr.grh.hop_limit = 64;
	}
	return ibv_create_ah(dev->pd, &attr);
}

/* RFC 1071 checksum over a 20-byte IPv4 header: 0 when it is valid. */
static uint16_t ipv4_hdr_csum(const uint8_t h[20])
{
	uint32_t sum = 0;

	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void ib_grh_sgid(const uint8_t grh[IB_GRH_LEN], uint8_t sgid[16])
{
	const uint8_t *ip4 = grh + 20;
	bool v4 = (ip4[0] >> 4) == 4 && (ip4[0] & 0xf) == 5;

	/* As rdma-core's ibv_init_ah_from_wc: a RoCE v2 message that came
	 * over IPv4 leaves its 20-byte IPv4 header in the last 20 bytes of
	 * the GRH area. If the area also reads as an IPv6 header, only a
	 * valid IPv4 header checksum makes it IPv4. */
	if (v4 && (grh[0] >> 4) == 6 && ipv4_hdr_csum(ip4) != 0)
		v4 = false;
	if (v4) {
		memset(sgid, 0, 10);
		sgid[10] = 0xff;
		sgid[11] = 0xff;
		memcpy(sgid + 12, ip4 + 12, 4); /* the IPv4 source address */
		return;
	}
	memcpy(sgid, grh + 8, 16); /* IB GRH / RoCE v1 / RoCE v2 over IPv6 */
}

void ib_mcast_default_gid(uint32_t qkey, uint8_t mgid[16])
{
	memcpy(mgid, mcast_gid_prefix, sizeof(mcast_gid_prefix));
	mgid[10] = 0;
	mgid[11] = 0;
	mgid[12] = (uint8_t)(qkey >> 24);
	mgid[13] = (uint8_t)(qkey >> 16);
	mgid[14] = (uint8_t)(qkey >> 8);
	mgid[15] = (uint8_t)qkey;
}

/* The local address rdma_cm binds to: the port GID on InfiniBand (AF_IB,
 * no IPoIB interface needed), the IPv4 address behind a RoCE v2 GID. */
static int mcast_addresses(struct ib_dev *dev, const uint8_t mgid[16],
			   struct sockaddr_storage *src,
			   struct sockaddr_storage *grp)
{
	memset(src, 0, sizeof(*src));
	memset(grp, 0, sizeof(*grp));
	if (dev->roce) {
		struct sockaddr_in *s = (struct sockaddr_in *)src;
		struct sockaddr_in *g = (struct sockaddr_in *)grp;

		if (!gid_is_v4_mapped(dev->gid.raw)) {
			log_err("ib: %s: RoCE GID index %d is not an IPv4 "
				"(RoCE v2) GID; choose gid_index of the "
				"IPv4-mapped GID", dev->name, dev->gid_index);
			return -EINVAL;
		}
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, dev->gid.raw + 12, 4);
		/* Administratively scoped IPv4 group from the MGID's tail. */
		g->sin_family = AF_INET;
		uint8_t ip[4] = { 239, mgid[13], mgid[14], mgid[15] };
		memcpy(&g->sin_addr, ip, 4);
		return 0;
	}

	struct sockaddr_ib *s = (struct sockaddr_ib *)src;
	struct sockaddr_ib *g = (struct sockaddr_ib *)grp;

	s->sib_family = AF_IB;
	s->sib_pkey = htons(0xffff);
	memcpy(&s->sib_addr, dev->gid.raw, 16);
	g->sib_family = AF_IB;
	g->sib_pkey = htons(0xffff);
	memcpy(&g->sib_addr, mgid, 16);
	return 0;
}

/* Wait for the next event of `type` on the channel, bounded in time. */
static int mcast_wait_event(struct rdma_event_channel *ch,
			    enum rdma_cm_event_type type,
			    struct rdma_cm_event **out)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	int n = poll(&pfd, 1, IB_MCAST_JOIN_TIMEOUT_MS);

	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return -errno;
	if (rdma_get_cm_event(ch, out) != 0)
		return -errno;
	if ((*out)->event != type) {
		int status = (*out)->status;

		log_err("ib: rdma_cm: expected %s, got %s (status %d)",
			rdma_event_str(type), rdma_event_str((*out)->event),
			status);
		rdma_ack_cm_event(*out);
		return status < 0 ? status : -EPROTO;
	}
	return 0;
}

int ib_mcast_join(struct ib_dev *dev, const uint8_t mgid[16],
		  struct ib_mcast **out)
{
	struct sockaddr_storage src;
	struct rdma_cm_event *ev;
	struct ib_mcast *mc;
	char group[40];
	int err;

	ib_gid_format(mgid, group);
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	err = mcast_addresses(dev, mgid, &src, &mc->addr);
	if (err)
		goto err_free;
	mc->channel = rdma_create_event_channel();
	if (!mc->channel) {
		err = -errno;
		log_err("ib: multicast %s: rdma_create_event_channel failed: "
			"%s (is rdma_ucm loaded?)", group, strerror(-err));
		goto err_free;
	}
	if (rdma_create_id(mc->channel, &mc->id, mc, RDMA_PS_UDP) != 0) {
		err = -errno;
		log_err("ib: multicast %s: rdma_create_id failed: %s", group,
			strerror(-err));
		goto err_channel;
	}
	if (rdma_bind_addr(mc->id, (struct sockaddr *)&src) != 0) {
		err = -errno;
		log_err("ib: multicast %s: rdma_bind_addr to %s port %u failed: "
			"%s", group, dev->name, dev->port, strerror(-err));
		goto err_id;
	}
	if (rdma_join_multicast(mc->id, (struct sockaddr *)&mc->addr, mc)) {
		err = -errno;
		log_err("ib: multicast %s: rdma_join_multicast failed: %s",
			group, strerror(-err));
		goto err_id;
	}
	err = mcast_wait_event(mc->channel, RDMA_CM_EVENT_MULTICAST_JOIN, &ev);
	if (err) {
		log_err("ib: multicast %s: join failed: %s (is a subnet "
			"manager running?)", group, strerror(-err));
		goto err_id;
	}

	struct ibv_ah_attr ah_attr = ev->param.ud.ah_attr;

	rdma_ack_cm_event(ev);
	mc->mgid = ah_attr.grh.dgid;
	mc->mlid = ah_attr.dlid;
	ah_attr.port_num = dev->port;
	ah_attr.grh.sgid_index = (uint8_t)dev->gid_index;
	mc->ah = ibv_create_ah(dev->pd, &ah_attr);
	if (!mc->ah) {
		err = -(errno ? errno : EINVAL);
		log_err("ib: multicast %s: ibv_create_ah failed: %s", group,
			strerror(-err));
		goto err_leave;
	}
	ib_gid_format(mc->mgid.raw, group);
	log_info("ib: joined multicast group %s (MLID 0x%x)", group, mc->mlid);
	*out = mc;
	return 0;

err_leave:
	rdma_leave_multicast(mc->id, (struct sockaddr *)&mc->addr);
err_id:
	rdma_destroy_id(mc->id);
err_channel:
	rdma_destroy_event_channel(mc->channel);
err_free:
	free(mc);
	return err;
}

void ib_mcast_leave(struct ib_mcast *mc)
{
	if (!mc)
		return;
	if (mc->ah)
		ibv_destroy_ah(mc->ah);
	rdma_leave_multicast(mc->id, (struct sockaddr *)&mc->addr);
	rdma_destroy_id(mc->id);
	rdma_destroy_event_channel(mc->channel);
	free(mc);
}
