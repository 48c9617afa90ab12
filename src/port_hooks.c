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

	/* librte_vhost reports an external backend ready as soon as one
	 * ring is: wait for both, quietly (device_ready comes again). */
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
	}
	return 0;
}

int port_hook_device_ready(struct port *p, int vid)
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

void port_hook_device_stop(struct port *p, int vid)
{
	struct dp_vring final[2];

	if (!dp_port_stop(p, final) || vid < 0)
		return;
	for (uint16_t q = 0; q < 2; q++)
		rte_vhost_set_vring_base(vid, q, final[q].last_avail_idx,
					 final[q].last_used_idx);
}

void port_hook_vring_state(struct port *p, int vid, uint16_t queue,
			   bool enabled)
{
	/* A ring the frontend disables must not be touched any more: stop
	 * the port (both rings), the next device_ready restarts it. */
	if (queue >= 2)
		return;
	if (!enabled) {
		port_hook_device_stop(p, vid);
		return;
	}
	/* Enabled again on a device librte_vhost still runs: it will not
	 * call device_ready a second time, so restart here. */
	pthread_mutex_lock(&p->lock);
	bool running = p->state == PORT_RUNNING && p->vid == vid;
	pthread_mutex_unlock(&p->lock);
	if (running && !dp_port_started(p) &&
	    port_hook_device_ready(p, vid) != 0)
		log_err("port %s: cannot restart after ring %u was enabled",
			p->cfg.name, queue);
}
