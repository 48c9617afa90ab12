/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * port_hooks: see include/ibvhost/port_hooks.h.
 *
 * Translates librte_vhost's view of a device (memory table, vrings, ring
 * indexes, call fds) into the data path's struct dp_device, and gives the
 * ring indexes back to librte_vhost when the data path stops, so that
 * GET_VRING_BASE reports where we really are (we walk the rings ourselves,
 * librte_vhost's own indexes never move).
 */
#include "ibvhost/port_hooks.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

#include <rte_vhost.h>

#include "ibvhost/dp.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"
#include "ibvhost/vhost_guard.h"

int port_hook_port_added(struct port *p)
{
	return dp_port_create(p);
}

void port_hook_port_removed(struct port *p)
{
	dp_port_destroy(p);
}

/* True if [hva, hva + len) lies inside one mapped region. */
static bool ring_mapped(const struct dp_device *dev, uint64_t hva, uint64_t len)
{
	for (unsigned i = 0; i < dev->n_regions; i++) {
		uint64_t lo = dev->regions[i].hva, sz = dev->regions[i].size;

		if (hva >= lo && hva - lo <= sz && len <= sz - (hva - lo))
			return true;
	}
	return false;
}

/* librte_vhost checks a ring's addresses for the size it had when they
 * were translated; SET_VRING_NUM (or EVENT_IDX) may have grown it since.
 * Check the geometry we will use against the memory table, every start. */
static int ring_geometry_ok(struct port *p, const struct dp_device *dev,
			    uint16_t q, const struct dp_vring *v)
{
	uint64_t n = v->size;
	uint64_t ev = dev->features & (1ull << VIRTIO_RING_F_EVENT_IDX) ? 2 : 0;
	const char *what = NULL;

	if (n == 0 || n > 32768 || (n & (n - 1)))
		what = "size is not a power of two up to 32768";
	else if (!ring_mapped(dev, (uintptr_t)v->desc, 16 * n))
		what = "descriptor table";
	else if (!ring_mapped(dev, (uintptr_t)v->avail, 4 + 2 * n + ev))
		what = "avail ring";
	else if (!ring_mapped(dev, (uintptr_t)v->used, 4 + 8 * n + ev))
		what = "used ring";
	if (!what)
		return 0;
	log_err("port %s: ring %u of %u entries: %s %s; refusing the device",
		p->cfg.name, q, v->size, what,
		what[0] == 's' ? "" : "lies outside the memory table");
	return -EINVAL;
}

static int collect_device(struct port *p, int vid, struct dp_device *dev)
{
	struct rte_vhost_memory *mem = NULL;

	memset(dev, 0, sizeof(*dev));
	if (rte_vhost_get_negotiated_features(vid, &dev->features) != 0)
		return -EIO;
	if (rte_vhost_get_mem_table(vid, &mem) != 0)
		return -EIO;
	if (mem->nregions > VQ_MEM_MAX_REGIONS) {
		log_err("port %s: %u memory regions, at most %u supported",
			p->cfg.name, mem->nregions, VQ_MEM_MAX_REGIONS);
		free(mem);
		return -E2BIG;
	}
	dev->n_regions = mem->nregions;
	for (unsigned i = 0; i < mem->nregions; i++) {
		dev->regions[i].gpa = mem->regions[i].guest_phys_addr;
		dev->regions[i].size = mem->regions[i].size;
		dev->regions[i].hva = mem->regions[i].host_user_addr;
	}
	free(mem);

	if (rte_vhost_get_vring_num(vid) < 2)
		return -EAGAIN;
	for (uint16_t q = 0; q < 2; q++) {
		struct rte_vhost_vring vr;
		struct dp_vring *v = &dev->vring[q];

		if (rte_vhost_get_vhost_vring(vid, q, &vr) != 0 ||
		    rte_vhost_get_vring_base(vid, q, &v->last_avail_idx,
					     &v->last_used_idx) != 0)
			return -EIO;
		if (!vr.desc || !vr.avail || !vr.used || vr.size == 0)
			return -EAGAIN;
		v->desc = vr.desc;
		v->avail = vr.avail;
		v->used = vr.used;
		v->size = vr.size;
		v->callfd = vr.callfd;
		v->kickfd = vr.kickfd;
		if (v->callfd >= 0 && !vhost_guard_fd_is_eventfd(v->callfd)) {
			log_err("port %s: ring %u: the call fd is not an "
				"eventfd; refusing the device", p->cfg.name, q);
			return -EINVAL;
		}
		int rc = ring_geometry_ok(p, dev, q, v);
		if (rc)
			return rc;
	}
	return 0;
}

static int start_data_path(struct port *p, int vid)
{
	struct dp_device *dev;
	int rc;

	dev = malloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	rc = collect_device(p, vid, dev);
	if (rc == 0) {
		uint16_t mtu = 0, max = dp_port_mtu(&p->seg, &p->cfg);

		/* The frontend's MTU (QEMU host_mtu=) is its own to choose;
		 * frames above ours cannot cross the fabric. */
		if (rte_vhost_get_mtu(vid, &mtu) == 0 && mtu > max)
			log_warn("port %s: the frontend set MTU %u, above the "
				 "%u this port carries: larger frames are "
				 "dropped (drop_too_big); set host_mtu=%u",
				 p->cfg.name, mtu, max, max);
		rc = dp_port_start(p, dev);
	}
	free(dev);
	return rc;
}

static void stop_data_path(struct port *p, int vid)
{
	struct dp_vring final[2];

	if (!dp_port_stop(p, final) || vid < 0)
		return;
	/* We walk the rings ourselves: GET_VRING_BASE must report where we
	 * are, not librte_vhost's own (unmoved) indexes. */
	for (uint16_t q = 0; q < 2; q++)
		rte_vhost_set_vring_base(vid, q, final[q].last_avail_idx,
					 final[q].last_used_idx);
}

/* The one place a port's data path starts and stops: make it run iff the
 * owning connection's device is entirely usable. Caller holds life_lock.
 * Returns 0, or why it could not start. */
static int life_sync(struct port *p)
{
	const struct port_life *l = &p->life;
	bool want = l->vid >= 0 && l->device && l->ring[0] && l->ring[1] &&
		    !l->mem_changing && vhost_guard_mem_ok(l->vid);

	if (want == dp_port_started(p))
		return 0;
	if (!want) {
		stop_data_path(p, l->vid);
		return 0;
	}
	return start_data_path(p, l->vid);
}

int port_hook_connected(struct port *p, int vid)
{
	int rc = 0;

	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid >= 0 && p->life.vid != vid) {
		/* The accepted socket is live; any other live one means the
		 * owner is still there. If the owner has hung up and only
		 * waits to be torn down, the new connection takes over. */
		if (vhost_guard_live_connections(p->cfg.socket_path) > 1) {
			log_warn("port %s: a frontend is already connected "
				 "(device %d): refusing another connection "
				 "(device %d)", p->cfg.name, p->life.vid, vid);
			rc = -EBUSY;
			goto out;
		}
		log_info("port %s: device %d hung up; device %d takes over",
			 p->cfg.name, p->life.vid, vid);
		p->life.device = false;
		life_sync(p);
	}
	p->life = (struct port_life){ .vid = vid };
out:
	pthread_mutex_unlock(&p->life_lock);
	return rc;
}

void port_hook_disconnected(struct port *p, int vid)
{
	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid == vid) {
		p->life.device = false;
		life_sync(p);
		p->life = (struct port_life){ .vid = -1 };
	}
	pthread_mutex_unlock(&p->life_lock);
}

int port_hook_device_ready(struct port *p, int vid)
{
	int rc;

	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid != vid) {
		rc = -EBUSY;
	} else if (!p->life.ring[0] || !p->life.ring[1]) {
		rc = -EAGAIN; /* librte_vhost reports ready with one ring */
	} else {
		p->life.device = true;
		rc = life_sync(p);
		if (rc != 0)
			p->life.device = false;
	}
	pthread_mutex_unlock(&p->life_lock);
	return rc;
}

void port_hook_device_stop(struct port *p, int vid)
{
	pthread_mutex_lock(&p->life_lock);
	if (vid < 0 || p->life.vid == vid) {
		p->life.device = false;
		life_sync(p);
	}
	pthread_mutex_unlock(&p->life_lock);
}

void port_hook_vring_state(struct port *p, int vid, uint16_t queue,
			   bool ready)
{
	if (queue >= 2)
		return; /* only one queue pair is offered */
	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid == vid) {
		p->life.ring[queue] = ready;
		if (life_sync(p) != 0)
			log_err("port %s: cannot restart after ring %u became "
				"ready", p->cfg.name, queue);
	}
	pthread_mutex_unlock(&p->life_lock);
}

void port_hook_mem_changing(struct port *p, int vid)
{
	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid == vid) {
		if (dp_port_started(p))
			log_info("port %s: memory table changes on a running "
				 "device: quiescing the data path", p->cfg.name);
		p->life.mem_changing = true;
		life_sync(p);
	}
	pthread_mutex_unlock(&p->life_lock);
}

void port_hook_mem_changed(struct port *p, int vid)
{
	pthread_mutex_lock(&p->life_lock);
	if (p->life.vid == vid) {
		bool was = p->life.device;

		p->life.mem_changing = false;
		int rc = life_sync(p);
		if (rc == 0 && was && dp_port_started(p))
			log_info("port %s: data path restarted on the new "
				 "memory table", p->cfg.name);
		else if (rc != 0)
			log_err("port %s: cannot restart on the new memory "
				"table: %s", p->cfg.name, strerror(-rc));
	}
	pthread_mutex_unlock(&p->life_lock);
}
