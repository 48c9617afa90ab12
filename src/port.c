/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* port: see include/ibvhost/port.h. */
#include "ibvhost/port.h"

#include <stdlib.h>
#include <string.h>

#include "ibvhost/log.h"

const char *const port_counter_names[PORT_COUNTER_COUNT] = {
#define PORT_COUNTER_NAME(name) [PORT_COUNTER_##name] = #name,
	PORT_COUNTERS(PORT_COUNTER_NAME)
#undef PORT_COUNTER_NAME
};

/* ---- virtio feature policy ----------------------------------------------- */

/* Bit numbers from the virtio 1.1 spec and the vhost-user spec. */
struct feature_row {
	unsigned bit;
	const char *name;
	bool offered; /* false: declined on purpose */
};

static const struct feature_row feature_table[] = {
	{ 0, "CSUM", true },		/* guest may hand us partial csums */
	{ 1, "GUEST_CSUM", true },	/* we may hand the guest partial csums */
	{ 2, "CTRL_GUEST_OFFLOADS", false },
	{ 3, "MTU", true },
	{ 5, "MAC", false },		/* the frontend owns the config space */
	{ 7, "GUEST_TSO4", false },	/* no segmentation offload: a UD */
	{ 8, "GUEST_TSO6", false },	/* message is at most one IB MTU */
	{ 9, "GUEST_ECN", false },
	{ 10, "GUEST_UFO", false },
	{ 11, "HOST_TSO4", false },
	{ 12, "HOST_TSO6", false },
	{ 13, "HOST_ECN", false },
	{ 14, "HOST_UFO", false },
	{ 15, "MRG_RXBUF", true },
	{ 16, "STATUS", false },
	{ 17, "CTRL_VQ", false },	/* no control queue is served */
	{ 18, "CTRL_RX", false },
	{ 19, "CTRL_VLAN", false },
	{ 21, "GUEST_ANNOUNCE", false },
	{ 22, "MQ", false },		/* one queue pair per port */
	{ 23, "CTRL_MAC_ADDR", false },
	{ 24, "NOTIFY_ON_EMPTY", false },
	{ 26, "LOG_ALL", false },	/* no live-migration dirty logging */
	{ 27, "ANY_LAYOUT", true },
	{ 28, "INDIRECT_DESC", false },
	{ 29, "EVENT_IDX", true },
	{ 30, "PROTOCOL_FEATURES", true }, /* vhost-user: needed for the
					    * protocol features below */
	{ 32, "VERSION_1", true },
	{ 33, "IOMMU_PLATFORM", false },/* no vIOMMU translation */
	{ 34, "RING_PACKED", false },	/* the data path walks split rings */
	{ 35, "IN_ORDER", false },
	{ 36, "ORDER_PLATFORM", false },
	{ 37, "SR_IOV", false },
	{ 38, "NOTIFICATION_DATA", false },
	{ 57, "HASH_REPORT", false },
	{ 60, "RSS", false },
	{ 61, "RSC_EXT", false },
	{ 62, "STANDBY", false },
	{ 63, "SPEED_DUPLEX", false },
};

#define FEATURE_ROWS (sizeof(feature_table) / sizeof(feature_table[0]))

uint64_t port_offered_features(const struct cfg_port *cfg)
{
	uint64_t f = 0;

	/* Nothing in the port config changes the set today; it takes the
	 * config so that future options (e.g. a MAC in config space) stay
	 * config-derived. */
	(void)cfg;
	for (size_t i = 0; i < FEATURE_ROWS; i++)
		if (feature_table[i].offered)
			f |= 1ULL << feature_table[i].bit;
	return f;
}

uint64_t port_declined_features(void)
{
	uint64_t f = 0;

	for (size_t i = 0; i < FEATURE_ROWS; i++)
		if (!feature_table[i].offered)
			f |= 1ULL << feature_table[i].bit;
	return f;
}

uint64_t port_declined_protocol_features(void)
{
	return (1ULL << 1)    /* LOG_SHMFD: no migration logging */
	       | (1ULL << 8)  /* PAGEFAULT: no postcopy */
	       | (1ULL << 11) /* HOST_NOTIFIER: no vDPA doorbells */
	       | (1ULL << 12); /* INFLIGHT_SHMFD: inflight tracking is for
				* block devices; its handling in librte_vhost
				* trusts sizes from the frontend */
}

const char *port_feature_name(unsigned bit)
{
	for (size_t i = 0; i < FEATURE_ROWS; i++)
		if (feature_table[i].bit == bit)
			return feature_table[i].name;
	return NULL;
}

const char *port_state_name(enum port_state state)
{
	switch (state) {
	case PORT_WAITING:
		return "waiting";
	case PORT_CONNECTED:
		return "connected";
	case PORT_RUNNING:
		return "running";
	}
	return "?";
}

/* ---- the table ------------------------------------------------------------ */

/* Guards the array, not the ports: callbacks look ports up under it while
 * the main thread adds or removes. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct port *table[CFG_PORTS_MAX];
static unsigned table_n;

struct port *port_add(const struct cfg *cfg, const struct cfg_port *pc)
{
	const struct cfg_segment *seg = cfg_find_segment(cfg, pc->segment);
	struct port *p;

	if (!seg)
		return NULL; /* config validation guarantees it exists */
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *pc;
	p->seg = *seg;
	p->offered_features = port_offered_features(pc);
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->life_lock, NULL);
	p->state = PORT_WAITING;
	p->vid = -1;
	p->life.vid = -1;

	pthread_mutex_lock(&table_lock);
	if (table_n == CFG_PORTS_MAX) {
		pthread_mutex_unlock(&table_lock);
		pthread_mutex_destroy(&p->lock);
		pthread_mutex_destroy(&p->life_lock);
		free(p);
		return NULL;
	}
	table[table_n++] = p;
	pthread_mutex_unlock(&table_lock);
	return p;
}

void port_remove(struct port *p)
{
	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < table_n; i++) {
		if (table[i] == p) {
			memmove(&table[i], &table[i + 1],
				(table_n - i - 1) * sizeof(table[0]));
			table_n--;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->life_lock);
	free(p);
}

struct port *port_find(const char *name)
{
	struct port *found = NULL;

	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < table_n && !found; i++)
		if (strcmp(table[i]->cfg.name, name) == 0)
			found = table[i];
	pthread_mutex_unlock(&table_lock);
	return found;
}

struct port *port_find_by_socket(const char *socket_path)
{
	struct port *found = NULL;

	pthread_mutex_lock(&table_lock);
	for (unsigned i = 0; i < table_n && !found; i++)
		if (strcmp(table[i]->cfg.socket_path, socket_path) == 0)
			found = table[i];
	pthread_mutex_unlock(&table_lock);
	return found;
}

unsigned port_count(void)
{
	unsigned n;

	pthread_mutex_lock(&table_lock);
	n = table_n;
	pthread_mutex_unlock(&table_lock);
	return n;
}

unsigned port_list(struct port **out, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&table_lock);
	n = table_n < max ? table_n : max;
	memcpy(out, table, n * sizeof(table[0]));
	pthread_mutex_unlock(&table_lock);
	return n;
}

/* ---- state from the callbacks ---------------------------------------------- */

void port_note_connected(struct port *p, int vid)
{
	pthread_mutex_lock(&p->lock);
	p->vid = vid;
	p->state = PORT_CONNECTED;
	p->connects++;
	pthread_mutex_unlock(&p->lock);
}

void port_note_running(struct port *p, int vid, uint64_t features,
		       uint64_t protocol_features, uint16_t mtu,
		       const struct port_mem_region *regions, unsigned n_regions,
		       const struct port_vring *vrings, unsigned n_vrings)
{
	if (n_regions > PORT_MEM_REGIONS_MAX)
		n_regions = PORT_MEM_REGIONS_MAX;
	if (n_vrings > PORT_VRINGS_MAX)
		n_vrings = PORT_VRINGS_MAX;
	pthread_mutex_lock(&p->lock);
	if (p->vid != vid) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->features = features;
	p->protocol_features = protocol_features;
	p->mtu = mtu;
	p->n_regions = n_regions;
	memcpy(p->regions, regions, n_regions * sizeof(regions[0]));
	/* Enable flags come from vring_state_changed, usually before the
	 * device is ready: keep them, take the sizes. */
	for (unsigned i = 0; i < n_vrings; i++)
		p->vrings[i].size = vrings[i].size;
	if (p->n_vrings < n_vrings)
		p->n_vrings = n_vrings;
	p->state = PORT_RUNNING;
	p->device_starts++;
	pthread_mutex_unlock(&p->lock);
}

void port_note_stopped(struct port *p, int vid)
{
	pthread_mutex_lock(&p->lock);
	if (p->vid != vid) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->n_regions = 0;
	memset(p->regions, 0, sizeof(p->regions));
	for (unsigned i = 0; i < p->n_vrings; i++)
		p->vrings[i].enabled = false;
	if (p->state == PORT_RUNNING)
		p->state = PORT_CONNECTED;
	pthread_mutex_unlock(&p->lock);
}

void port_note_vring(struct port *p, int vid, unsigned queue, bool enabled)
{
	if (queue >= PORT_VRINGS_MAX)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->vid != vid) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->vrings[queue].enabled = enabled;
	if (p->n_vrings <= queue)
		p->n_vrings = queue + 1;
	pthread_mutex_unlock(&p->lock);
}

bool port_note_disconnected(struct port *p, int vid)
{
	pthread_mutex_lock(&p->lock);
	if (vid >= 0 && p->vid != vid) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	p->vid = -1;
	p->state = PORT_WAITING;
	p->features = 0;
	p->protocol_features = 0;
	p->mtu = 0;
	p->n_regions = 0;
	p->n_vrings = 0;
	memset(p->regions, 0, sizeof(p->regions));
	memset(p->vrings, 0, sizeof(p->vrings));
	pthread_mutex_unlock(&p->lock);
	return true;
}

void port_get_info(struct port *p, struct port_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	out->cfg = p->cfg;
	out->seg = p->seg;
	out->offered_features = p->offered_features;
	out->state = p->state;
	out->vid = p->vid;
	out->features = p->features;
	out->protocol_features = p->protocol_features;
	out->mtu = p->mtu;
	out->n_regions = p->n_regions;
	memcpy(out->regions, p->regions, sizeof(out->regions));
	out->n_vrings = p->n_vrings;
	memcpy(out->vrings, p->vrings, sizeof(out->vrings));
	out->connects = p->connects;
	out->device_starts = p->device_starts;
	pthread_mutex_unlock(&p->lock);
	/* The data path writes counters without the lock: read each one
	 * atomically (no torn values), not as a consistent set. */
#define PORT_COUNTER_READ(name)                                                \
	out->counters.name = __atomic_load_n(&p->counters.name, __ATOMIC_RELAXED);
	PORT_COUNTERS(PORT_COUNTER_READ)
#undef PORT_COUNTER_READ
}
