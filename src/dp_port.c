/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * dp_port: a port's data-path life cycle. Creation and destruction of its
 * IB objects (control plane), start and stop of a device (registration of
 * guest memory on the caller's thread, the hand-over to the polling core
 * through its mailbox), and the FDB control requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "dp_int.h"
#include "ibvhost/log.h"
#include "ibvhost/wire.h"

/* Entries one port's FDB holds. */
#define DP_FDB_CAPACITY 4096u

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

static void release_ah(const struct fdb_entry *e, void *arg)
{
	(void)arg;
	if (e->ah)
		ibv_destroy_ah(e->ah);
}

/* A port's large areas (its state, its registered scratch) get pages of
 * their own, zeroed, returned to the kernel when the port goes: a
 * registered buffer shares no page with the heap, and restarting ports
 * does not fragment it (glibc would serve them from the heap once its
 * mmap threshold has risen). */
static void *pages_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void pages_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

/* ---- receive state across a crash (struct dp_rx_persist) ------------------ */

static uint64_t ring_gpa(const struct vq_mem *m, const void *p)
{
	uint64_t a = (uintptr_t)p;

	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct vq_mem_region *r = &m->regions[i];

		if (a >= r->hva && a - r->hva < r->size)
			return r->gpa + (a - r->hva);
	}
	return UINT64_MAX;
}

static void rxp_path(const struct dp_port *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s.rx-%s", dp.rxp_prefix, d->name);
}

/* Map the port's file, keeping what a previous process left in it. */
static void rxp_open(struct dp_port *d)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	rxp_path(d, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_size == sizeof(*d->rxp) ||
	     ftruncate(fd, sizeof(*d->rxp)) == 0)) {
		void *m = mmap(NULL, sizeof(*d->rxp), PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);

		if (m != MAP_FAILED) {
			d->rxp = m;
			d->rxp_file = true;
		}
	}
	if (!d->rxp_file) {
		log_warn("port %s: receive state file %s: %s; after a crash "
			 "its guest may need to reset its network device",
			 d->name, path, strerror(errno));
		d->rxp = pages_alloc(sizeof(*d->rxp));
	}
	if (fd >= 0)
		close(fd);
}

static void rxp_close(struct dp_port *d)
{
	char path[PATH_MAX];

	if (!d->rxp)
		return;
	if (d->rxp_file) {
		rxp_path(d, path, sizeof(path));
		unlink(path); /* the port goes: nothing to resume */
	}
	pages_free(d->rxp, sizeof(*d->rxp));
	d->rxp = NULL;
}

/* On the core, at start. If the previous process died with this port
 * running on these rings, give the guest back the chains it held (as
 * 0-length used entries: a short packet to the driver) and resume at
 * its avail index, so that no chain is used twice. Then start a fresh
 * record. */
static void rxp_resume(struct dp_port *d)
{
	struct dp_rx_persist *x = d->rxp;
	struct vq_ring *r = &d->g.rxq;
	uint64_t gpa[3] = { ring_gpa(&d->g.mem, r->desc),
			    ring_gpa(&d->g.mem, r->avail),
			    ring_gpa(&d->g.mem, r->used) };
	uint16_t avail = le16toh(__atomic_load_n(&r->avail->idx,
						 __ATOMIC_ACQUIRE));

	if (x->magic == DP_RXP_MAGIC && x->size == r->size &&
	    memcmp(x->ring_gpa, gpa, sizeof(gpa)) == 0) {
		uint16_t taken = (uint16_t)(x->last_avail - r->used_idx);
		unsigned held = 0;

		for (uint32_t id = 0; id < r->size; id++)
			held += x->held[id] != 0;
		if (r->used_idx == x->used && r->last_avail_idx == r->used_idx &&
		    held <= taken && taken <= r->size &&
		    (uint16_t)(avail - x->last_avail) <= r->size) {
			uint16_t from = r->last_avail_idx;

			for (uint32_t id = 0; id < r->size; id++)
				if (x->held[id])
					vq_used_put(r, (uint16_t)id, 0);
			r->last_avail_idx = x->last_avail;
			d->rx_dirty = held > 0;
			log_notice("port %s: the previous process held %u RX "
				   "buffer(s): returned empty; resuming at avail "
				   "index %u (not %u)", d->name, held,
				   x->last_avail, from);
		} else {
			log_warn("port %s: receive state of the previous "
				 "process does not match the rings (used %u/%u, "
				 "%u held of %u taken); ignored", d->name,
				 r->used_idx, x->used, held, taken);
		}
	}
	x->magic = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memset(x->held, 0, sizeof(x->held));
	x->size = r->size;
	memcpy(x->ring_gpa, gpa, sizeof(gpa));
	x->last_avail = r->last_avail_idx;
	x->used = r->used_idx;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	x->magic = DP_RXP_MAGIC;
}

static size_t scratch_size(void)
{
	return (size_t)(DP_TX_INFLIGHT + DP_RX_WRS) * DP_SCRATCH_SLOT +
	       (size_t)(DP_TX_INFLIGHT + 1) * dp.dev->mtu_bytes +
	       DP_ANNOUNCE_LEN;
}

/* ---- requests executed on the core ----------------------------------------- */

/* Completions one port may have outstanding: every WR of both queues
 * (a flush completes unsignalled sends too). */
static uint32_t port_cq_need(const struct dp_port *d)
{
	return d->caps.send_wr + d->caps.recv_wr;
}

/* Grow the core's CQ, before any WR of a new port is posted, so that it
 * holds a completion for every WR its ports may have outstanding: an
 * overflowed CQ is an error for every QP on it. On the core, between
 * polls. */
static int core_cq_reserve(struct dp_core *core, const struct dp_port *d)
{
	uint64_t need = (uint64_t)core->cq_need + port_cq_need(d);
	uint64_t want = DP_CQ_MIN_ENTRIES;
	int err;

	if (need <= (uint64_t)core->cq->cqe)
		return 0;
	while (want < need)
		want <<= 1;
	if (want > dp.dev->max_cqe)
		want = dp.dev->max_cqe;
	if (want < need) {
		log_err("port %s: polling core %u's CQ would need %llu entries, "
			"the device allows %u; use more polling cores",
			d->name, core->cpu, (unsigned long long)need,
			dp.dev->max_cqe);
		return -ENOSPC;
	}
	err = ibv_resize_cq(core->cq, (int)want);
	if (err) {
		log_err("port %s: ibv_resize_cq(polling core %u, %d -> %llu "
			"entries) failed: %s; use more polling cores", d->name,
			core->cpu, core->cq->cqe, (unsigned long long)want,
			strerror(err));
		return -ENOSPC;
	}
	core->cq_resizes++;
	log_info("dp: polling core %u: CQ resized to %d entries for %llu "
		 "outstanding WRs", core->cpu, core->cq->cqe,
		 (unsigned long long)need);
	return 0;
}

static int core_add_port(struct dp_core *core, struct dp_request *req)
{
	int err;

	if (core->n_ports >= DP_CORE_PORTS_MAX) {
		log_err("port %s: polling core %u serves %u ports already",
			req->port->name, core->cpu, DP_CORE_PORTS_MAX);
		return -ENOSPC;
	}
	err = core_cq_reserve(core, req->port);
	if (err)
		return err;
	__atomic_store_n(&core->cq_need, core->cq_need + port_cq_need(req->port),
			 __ATOMIC_RELAXED);
	core->ports[core->n_ports++] = req->port;
	return 0;
}

static int core_remove_port(struct dp_core *core, struct dp_request *req)
{
	for (unsigned i = 0; i < core->n_ports; i++) {
		if (core->ports[i] == req->port) {
			core->ports[i] = core->ports[--core->n_ports];
			__atomic_store_n(&core->cq_need,
					 core->cq_need - port_cq_need(req->port),
					 __ATOMIC_RELAXED);
			return 0;
		}
	}
	return -ENOENT;
}

static int core_start_port(struct dp_core *core, struct dp_request *req)
{
	struct dp_port *d = req->port;
	const struct dp_guest *ready = req->arg;

	(void)core;
	if (d->state != DP_IDLE)
		return -EBUSY;
	d->g = *ready;
	d->tx_head = d->tx_tail = 0;
	d->tx_credit = 0;
	d->rx_head = d->rx_tail = 0;
	d->spare_head = d->spare_tail = 0;
	d->n_free = DP_RX_POOL;
	for (uint16_t i = 0; i < DP_RX_POOL; i++)
		d->free_list[i] = (uint16_t)(DP_RX_POOL - 1 - i);
	d->rx_dirty = d->tx_dirty = false;
	d->broken = false;
	d->stop_requested = false;
	/* We poll: the guest need not kick us. */
	vq_kick_disable(&d->g.rxq);
	vq_kick_disable(&d->g.txq);
	rxp_resume(d);
	d->state = DP_RUNNING;
	dp_port_refill_rx(d);
	dp_port_announce(d);
	return 0;
}

static int core_stop_port(struct dp_core *core, struct dp_request *req)
{
	struct dp_port *d = req->port;

	if (d->state == DP_IDLE)
		return 0;
	d->stop_requested = true;
	if (d->state == DP_RUNNING)
		dp_port_begin_drain(d);
	/* Finished by the polling round once every WR has flushed. */
	req->deferred = true;
	core->pending_stop = req;
	return 0;
}

/* ---- create / destroy --------------------------------------------------- */

static struct dp_core *pick_core(void)
{
	struct dp_core *best = &dp.cores[0];

	for (unsigned i = 1; i < dp.n_cores; i++)
		if (dp.cores[i].n_ports < best->n_ports)
			best = &dp.cores[i];
	return best;
}

/* Publish (or withdraw) the port's configured MAC in its segment. */
static void local_mac_set(struct dp_port *d, bool add)
{
	uint64_t key = dp_local_mac_key(d->mac);
	struct dp_local_mac *free_slot = NULL;

	if (!d->has_mac || !d->seg)
		return;
	for (unsigned i = 0; i < CFG_PORTS_MAX; i++) {
		struct dp_local_mac *l = &d->seg->local[i];
		uint64_t k = __atomic_load_n(&l->key, __ATOMIC_RELAXED);

		if (!add && k == key && l->qpn == d->qp->qp_num) {
			__atomic_store_n(&l->key, 0, __ATOMIC_RELEASE);
			return;
		}
		if (add && k == 0 && !free_slot)
			free_slot = l;
	}
	if (add && free_slot) {
		free_slot->qpn = d->qp->qp_num;
		__atomic_store_n(&free_slot->key, key, __ATOMIC_RELEASE);
	}
}

static void port_release(struct dp_port *d)
{
	if (d->qp)
		local_mac_set(d, false);
	if (d->qp) {
		if (d->seg && d->seg->mc)
			ibv_detach_mcast(d->qp, &d->seg->mc->mgid,
					 d->seg->mc->mlid);
		if (ibv_destroy_qp(d->qp) != 0)
			log_warn("port %s: ibv_destroy_qp failed: %s", d->name,
				 strerror(errno));
	}
	if (d->fdb)
		fdb_destroy(d->fdb, release_ah, NULL);
	if (d->scratch_mr)
		ibv_dereg_mr(d->scratch_mr);
	pages_free(d->scratch, scratch_size());
	rxp_close(d);
	if (d->seg)
		dp_segment_put(d->seg);
	pages_free(d, sizeof(*d));
}

static int add_static_entries(struct dp_port *d, const struct cfg_port *pc)
{
	for (unsigned i = 0; i < pc->n_fdb; i++) {
		const struct cfg_fdb_entry *ce = &pc->fdb[i];
		struct fdb_addr a = { .lid = ce->lid, .qpn = ce->qpn };
		struct fdb_entry *e;
		void *stale = NULL;
		int rc;

		if (ce->has_gid)
			memcpy(a.gid, ce->gid, 16);
		rc = fdb_add_static(d->fdb, ce->mac, &a, now_s(), &e, &stale);
		if (stale)
			ibv_destroy_ah(stale);
		if (rc != 0) {
			log_err("port %s: static FDB entry %u: %s", d->name, i,
				strerror(-rc));
			return rc;
		}
		e->ah = ib_ah_create(dp.dev, a.lid, ce->has_gid ? a.gid : NULL);
		if (!e->ah)
			log_warn("port %s: static FDB entry %u: cannot create "
				 "an address handle (%s); frames to it are "
				 "flooded", d->name, i, strerror(errno));
	}
	return 0;
}

int dp_port_create(struct port *p)
{
	struct dp_request req = { .fn = core_add_port };
	char what[CFG_NAME_MAX + 16];
	struct dp_port *d;
	int err;

	if (!dp.dev)
		return -ENODEV;
	d = pages_alloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->port = p;
	d->g.rx_callfd = d->g.tx_callfd = -1;
	d->g.rx_kickfd = d->g.tx_kickfd = -1;
	snprintf(d->name, sizeof(d->name), "%s", p->cfg.name);
	snprintf(what, sizeof(what), "port %s", d->name);
	d->has_mac = p->cfg.has_mac;
	memcpy(d->mac, p->cfg.mac, 6);
	d->max_frame = dp_port_mtu(&p->seg, &p->cfg) + VNET_FRAME_OVERHEAD;
	d->qkey = p->seg.qkey;
	d->core = pick_core();

	d->seg = dp_segment_get(&p->seg);
	if (!d->seg) {
		err = -EIO;
		goto err;
	}
	d->fdb = fdb_create(DP_FDB_CAPACITY);
	if (!d->fdb) {
		err = -ENOMEM;
		goto err;
	}
	err = add_static_entries(d, &p->cfg);
	if (err)
		goto err;

	d->scratch = pages_alloc(scratch_size());
	if (!d->scratch) {
		err = -ENOMEM;
		goto err;
	}
	d->bounce = d->scratch +
		    (size_t)(DP_TX_INFLIGHT + DP_RX_WRS) * DP_SCRATCH_SLOT;
	d->discard = d->bounce + (size_t)DP_TX_INFLIGHT * dp.dev->mtu_bytes;
	d->discard_len = dp.dev->mtu_bytes;
	d->announce = d->discard + d->discard_len;
	rxp_open(d);
	if (!d->rxp) {
		err = -ENOMEM;
		goto err;
	}
	d->scratch_mr = ib_reg_mr(dp.dev, d->scratch, scratch_size(), what);
	if (!d->scratch_mr) {
		err = -errno;
		goto err;
	}

	d->caps = (struct ib_qp_caps){
		.send_wr = DP_TX_INFLIGHT + 1, /* + the announcement */
		.recv_wr = DP_RX_WRS,
		.send_sge = DP_SGE_WANTED,
		.recv_sge = DP_SGE_WANTED,
	};
	d->qp = ib_ud_qp_create(dp.dev, d->core->cq, d->core->cq, d->qkey,
				&d->caps, what);
	if (!d->qp) {
		err = -EIO;
		goto err;
	}
	if (d->caps.send_sge < 2 || d->caps.recv_sge < 2) {
		log_err("port %s: the device grants %u send / %u receive SGEs; "
			"at least 2 are needed", d->name, d->caps.send_sge,
			d->caps.recv_sge);
		err = -EINVAL;
		goto err;
	}
	err = ibv_attach_mcast(d->qp, &d->seg->mc->mgid, d->seg->mc->mlid);
	if (err) {
		log_err("port %s: ibv_attach_mcast to segment %s failed: %s",
			d->name, d->seg->name, strerror(err));
		err = -err;
		goto err;
	}

	req.port = d;
	err = dp_core_call(d->core, &req);
	if (err)
		goto err; /* core_add_port said why */
	p->dp = d;
	local_mac_set(d, true);
	log_info("port %s: QP 0x%x, Q_Key 0x%x, segment %s, MTU %u, polling "
		 "core %u", d->name, d->qp->qp_num, d->qkey, d->seg->name,
		 d->max_frame - VNET_FRAME_OVERHEAD, d->core->cpu);
	return 0;

err:
	port_release(d);
	return err;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void deregister_mrs(struct dp_port *d, struct ibv_mr **mrs,
			   unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (ibv_dereg_mr(mrs[i]) != 0)
			log_warn("port %s: ibv_dereg_mr(region %u) failed: %s",
				 d->name, i, strerror(errno));
		else
			d->mrs_deregistered++;
	}
}

void dp_port_destroy(struct port *p)
{
	struct dp_port *d = p->dp;
	struct dp_request req = { .fn = core_remove_port };

	if (!d)
		return;
	dp_port_stop(p, NULL);
	req.port = d;
	dp_core_call(d->core, &req);
	p->dp = NULL;
	port_release(d);
}

/* ---- start / stop -------------------------------------------------------- */

static int prepare_rings(struct dp_port *d, const struct dp_device *dev,
			 struct dp_guest *ready)
{
	unsigned flags = 0;

	if (dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX))
		flags |= VQ_RING_F_EVENT_IDX;
	if (dev->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC))
		flags |= VQ_RING_F_INDIRECT;
	for (unsigned q = 0; q < 2; q++) {
		const struct dp_vring *v = &dev->vring[q];
		struct vq_ring *r = q == DP_RXQ ? &ready->rxq : &ready->txq;

		if (!vq_ring_init(r, v->desc, v->avail, v->used, v->size,
				  v->last_avail_idx, v->last_used_idx, flags)) {
			log_err("port %s: vring %u: invalid (size %u)", d->name,
				q, v->size);
			return -EINVAL;
		}
	}
	ready->rx_callfd = dev->vring[DP_RXQ].callfd;
	ready->tx_callfd = dev->vring[DP_TXQ].callfd;
	/* Our own references: librte_vhost closes its fd when the frontend
	 * replaces it, possibly while the core sleeps on it. */
	ready->rx_kickfd = dev->vring[DP_RXQ].kickfd >= 0
				   ? fcntl(dev->vring[DP_RXQ].kickfd,
					   F_DUPFD_CLOEXEC, 0)
				   : -1;
	ready->tx_kickfd = dev->vring[DP_TXQ].kickfd >= 0
				   ? fcntl(dev->vring[DP_TXQ].kickfd,
					   F_DUPFD_CLOEXEC, 0)
				   : -1;
	vnet_cfg_init(&ready->vnet, dev->features);
	ready->mrg_rxbuf = dev->features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
	return 0;
}

int dp_port_start(struct port *p, const struct dp_device *dev)
{
	struct dp_port *d = p->dp;
	struct dp_request req = { .fn = core_start_port };
	struct vq_mem_region regions[VQ_MEM_MAX_REGIONS];
	struct dp_guest *ready;
	enum vq_mem_err merr;
	uint32_t bad = 0;
	char what[CFG_NAME_MAX + 32];
	int err;

	if (!d)
		return -ENODEV;
	if (dev->n_regions == 0 || dev->n_regions > VQ_MEM_MAX_REGIONS) {
		log_err("port %s: %u memory regions (1..%u supported)", d->name,
			dev->n_regions, VQ_MEM_MAX_REGIONS);
		return -EINVAL;
	}
	/* A scratch copy of the per-device fields, handed over at once. */
	ready = calloc(1, sizeof(*ready));
	if (!ready)
		return -ENOMEM;
	ready->rx_kickfd = ready->tx_kickfd = -1;
	for (unsigned i = 0; i < dev->n_regions; i++) {
		const struct dp_region *r = &dev->regions[i];

		snprintf(what, sizeof(what), "port %s: region %u", d->name, i);
		ready->mrs[i] = ib_reg_mr(dp.dev, (void *)(uintptr_t)r->hva,
					  r->size, what);
		if (!ready->mrs[i]) {
			err = -errno;
			deregister_mrs(d, ready->mrs, i);
			goto out;
		}
		ready->n_mrs = i + 1;
		d->mrs_registered++;
		regions[i] = (struct vq_mem_region){
			.gpa = r->gpa,
			.size = r->size,
			.hva = r->hva,
			.lkey = ready->mrs[i]->lkey,
		};
	}
	merr = vq_mem_load(&ready->mem, regions, dev->n_regions, &bad);
	if (merr != VQ_MEM_OK) {
		log_err("port %s: memory table refused: region %u: %s", d->name,
			bad, vq_mem_strerror(merr));
		err = -EINVAL;
		goto err_dereg;
	}
	err = prepare_rings(d, dev, ready);
	if (err)
		goto err_dereg;

	req.port = d;
	req.arg = ready;
	err = dp_core_call(d->core, &req);
	if (err) {
		log_err("port %s: cannot start: %s", d->name, strerror(-err));
		goto err_dereg;
	}
	atomic_store(&d->started, true);
	log_info("port %s: started: %u region(s) registered, rings %u/%u",
		 d->name, ready->n_mrs, dev->vring[DP_RXQ].size,
		 dev->vring[DP_TXQ].size);
	goto out;

err_dereg:
	deregister_mrs(d, ready->mrs, ready->n_mrs);
	close_fd(&ready->rx_kickfd);
	close_fd(&ready->tx_kickfd);
out:
	free(ready);
	return err;
}

bool dp_port_started(struct port *p)
{
	struct dp_port *d = p->dp;

	return d && atomic_load(&d->started);
}

bool dp_port_stop(struct port *p, struct dp_vring final[2])
{
	struct dp_port *d = p->dp;
	struct dp_request req = { .fn = core_stop_port };

	if (!d || !atomic_load(&d->started))
		return false;
	req.port = d;
	dp_core_call(d->core, &req);
	/* The core no longer touches the rings or the memory. */
	if (final) {
		final[DP_RXQ].last_avail_idx = d->g.rxq.last_avail_idx;
		final[DP_RXQ].last_used_idx = d->g.rxq.used_idx;
		final[DP_TXQ].last_avail_idx = d->g.txq.last_avail_idx;
		final[DP_TXQ].last_used_idx = d->g.txq.used_idx;
	}
	close_fd(&d->g.rx_kickfd);
	close_fd(&d->g.tx_kickfd);
	if (d->g.n_mrs) {
		deregister_mrs(d, d->g.mrs, d->g.n_mrs);
		log_info("port %s: stopped: %u region(s) deregistered", d->name,
			 d->g.n_mrs);
		d->g.n_mrs = 0;
		memset(&d->g.mem, 0, sizeof(d->g.mem));
	}
	atomic_store(&d->started, false);
	return true;
}

/* ---- info and FDB control ------------------------------------------------- */

static int core_get_info(struct dp_core *core, struct dp_request *req)
{
	const struct dp_port *d = req->port;
	struct dp_port_info *out = req->arg;

	(void)core;
	out->started = atomic_load(&d->started);
	out->broken = d->broken;
	out->qpn = d->qp->qp_num;
	out->qkey = d->qkey;
	out->lid = dp.dev->lid;
	out->mtu = (uint16_t)(d->max_frame - VNET_FRAME_OVERHEAD);
	/* The control thread may be deregistering the MRs of a stopping
	 * port right now: read the lkeys kept in the memory table, never
	 * through the MR pointers. */
	out->n_mrs = d->g.mem.nregions;
	for (unsigned i = 0; i < out->n_mrs && i < VQ_MEM_MAX_REGIONS; i++)
		out->lkeys[i] = d->g.mem.regions[i].lkey;
	out->tx_inflight = (uint16_t)(d->tx_head - d->tx_tail);
	out->rx_posted_wrs = (uint16_t)(d->rx_head - d->rx_tail);
	out->send_wr = d->caps.send_wr;
	out->recv_wr = d->caps.recv_wr;
	out->qp_recoveries = d->qp_recoveries;
	out->mrs_registered = d->mrs_registered;
	out->mrs_deregistered = d->mrs_deregistered;
	fdb_get_stats(d->fdb, &out->fdb);
	return 0;
}

int dp_port_get_info(struct port *p, struct dp_port_info *out)
{
	struct dp_request req = { .fn = core_get_info, .arg = out };

	if (!p->dp)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	req.port = p->dp;
	return dp_core_call(req.port->core, &req);
}

struct fdb_visit_req {
	dp_fdb_visit_fn visit;
	void *arg;
};

static int core_fdb_foreach(struct dp_core *core, struct dp_request *req)
{
	struct fdb_visit_req *v = req->arg;

	(void)core;
	fdb_foreach(req->port->fdb, v->visit, v->arg);
	return 0;
}

int dp_fdb_foreach(struct port *p, dp_fdb_visit_fn visit, void *arg)
{
	struct fdb_visit_req v = { visit, arg };
	struct dp_request req = { .fn = core_fdb_foreach, .arg = &v };

	if (!p->dp)
		return -ENODEV;
	req.port = p->dp;
	return dp_core_call(req.port->core, &req);
}

struct fdb_add_req {
	const uint8_t *mac;
	const struct fdb_addr *addr;
	struct ibv_ah *ah;
	void *stale;
};

static int core_fdb_add(struct dp_core *core, struct dp_request *req)
{
	struct fdb_add_req *a = req->arg;
	struct fdb_entry *e = NULL;
	int rc;

	(void)core;
	rc = fdb_add_static(req->port->fdb, a->mac, a->addr, now_s(), &e,
			    &a->stale);
	if (rc == 0) {
		void *old = e->ah;

		e->ah = a->ah;
		a->ah = NULL;
		if (old && old != a->stale)
			ibv_destroy_ah(old);
	}
	return rc;
}

int dp_fdb_add(struct port *p, const uint8_t mac[6],
	       const struct fdb_addr *addr)
{
	struct fdb_add_req a = { .mac = mac, .addr = addr };
	struct dp_request req = { .fn = core_fdb_add, .arg = &a };
	static const uint8_t zero[16];
	int rc;

	if (!p->dp)
		return -ENODEV;
	a.ah = ib_ah_create(dp.dev, addr->lid,
			    memcmp(addr->gid, zero, 16) ? addr->gid : NULL);
	if (!a.ah)
		return -(errno ? errno : EINVAL);
	req.port = p->dp;
	rc = dp_core_call(req.port->core, &req);
	if (a.ah)
		ibv_destroy_ah(a.ah);
	if (a.stale)
		ibv_destroy_ah(a.stale);
	return rc;
}

static int core_fdb_del(struct dp_core *core, struct dp_request *req)
{
	void *ah = NULL;
	int rc;

	(void)core;
	rc = fdb_del(req->port->fdb, req->arg, &ah);
	if (ah)
		ibv_destroy_ah(ah);
	return rc;
}

int dp_fdb_del(struct port *p, const uint8_t mac[6])
{
	struct dp_request req = { .fn = core_fdb_del, .arg = (void *)mac };

	if (!p->dp)
		return -ENODEV;
	req.port = p->dp;
	return dp_core_call(req.port->core, &req);
}

static int core_fdb_age(struct dp_core *core, struct dp_request *req)
{
	uint64_t max_age = *(const unsigned *)req->arg;
	uint64_t now = now_s();

	for (unsigned i = 0; i < core->n_ports; i++)
		fdb_age(core->ports[i]->fdb, now, max_age, release_ah, NULL);
	return 0;
}

void dp_fdb_age_all(unsigned max_age_s)
{
	for (unsigned i = 0; i < dp.n_cores; i++) {
		struct dp_request req = { .fn = core_fdb_age,
					  .arg = &max_age_s };

		dp_core_call(&dp.cores[i], &req);
	}
}
