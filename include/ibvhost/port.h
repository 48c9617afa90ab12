/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * port: one configured vhost-user port and the table of all of them.
 *
 * Owns the per-port control-plane state that librte_vhost's callbacks
 * record (connection state, negotiated features, memory table, vring
 * states) and the per-port counters that the data path fills. The table
 * is changed on the main thread only (start, reload, stop); callbacks on
 * librte_vhost's thread find their port by socket path.
 *
 * Locking: `port.lock` guards the fields marked [lock]; it is taken by the
 * control plane only (callbacks, control socket). The data path never
 * takes it: it owns `dp` and writes `counters` (single writer, relaxed
 * 64-bit stores; readers use port_get_info()).
 *
 * No DPDK here: src/vhost.c is the glue that calls the port_note_*()
 * functions from librte_vhost's callbacks, so this module is unit-tested
 * without an EAL.
 */
#ifndef IBVHOST_PORT_H
#define IBVHOST_PORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ibvhost/config.h"

enum port_state {
	PORT_WAITING,	/* socket registered, no frontend connected */
	PORT_CONNECTED, /* frontend connected, device not (yet) ready */
	PORT_RUNNING,	/* features, memory table and rings are set */
};

/* librte_vhost 22.11 handles up to 8 regions per memory table
 * (VHOST_MEMORY_MAX_NREGIONS); we keep what it gives us. */
#define PORT_MEM_REGIONS_MAX 8
/* One queue pair: no VIRTIO_NET_F_MQ is offered. */
#define PORT_VRINGS_MAX 2

struct port_mem_region {
	uint64_t guest_phys_addr;
	uint64_t size;
	uint64_t host_user_addr; /* where librte_vhost mapped it in our process */
};

struct port_vring {
	bool enabled;
	uint16_t size; /* descriptors; 0 if not known */
};

/* Data-path counters. One line per counter; the control protocol prints
 * them all by name, so adding one here is all it takes. Frames the fabric
 * drops before they reach a port (another segment's Q_Key, no receive
 * posted) are counted by the HCA, per device: see show-stats. rx_starved
 * counts the times the port ran out of posted receives because the guest
 * had given no RX buffers (frames arriving then are lost). drop_too_big
 * counts frames above the port's MTU in both directions (a guest's, or a
 * peer's whose host uses a larger segment MTU). drop_spoofed
 * counts frames with a wrong source MAC both ways (a guest's not its
 * configured MAC; a remote peer's claiming a local port's configured MAC).
 * rx_returned_empty counts
 * RX buffers given back unfilled as used entries of length 0 when the
 * device stopped (those that could not be left in the ring).
 * announces counts the announcements the port sent when it started (its
 * configured MAC at its new QP, so that peers relearn it at once);
 * rx_announces those it learned from peers' ports.
 * tx_deferred counts the polling rounds in which the port's TX waited
 * because its chains had used more than its share of descriptors.
 * tx_fragments and rx_fragments count the messages of frames larger than
 * one IB message (a jumbo frame is sent as several, each with its own
 * header, the payload in place); rx_reassembled the frames put back
 * together, drop_reasm those given up (a fragment lost, out of order,
 * inconsistent, or not completed within DP_REASM_TIMEOUT_S), and
 * reasm_copies the fragments copied into a guest without mergeable RX
 * buffers (its single buffer must hold the whole frame). */
#define PORT_COUNTERS(X)                                                       \
	X(tx_frames) X(tx_bytes) X(rx_frames) X(rx_bytes) X(flooded)           \
	X(rx_starved) X(drop_too_big) X(drop_bad_desc)                         \
	X(drop_spoofed) X(drop_bad_wire) X(bounce_copies) X(csum_computed)    \
	X(rx_returned_empty) X(tx_deferred) X(announces) X(rx_announces)      \
	X(tx_fragments) X(rx_fragments) X(rx_reassembled) X(drop_reasm)       \
	X(reasm_copies)

struct port_counters {
#define PORT_COUNTER_FIELD(name) uint64_t name;
	PORT_COUNTERS(PORT_COUNTER_FIELD)
#undef PORT_COUNTER_FIELD
};

enum {
#define PORT_COUNTER_ENUM(name) PORT_COUNTER_##name,
	PORT_COUNTERS(PORT_COUNTER_ENUM)
#undef PORT_COUNTER_ENUM
	PORT_COUNTER_COUNT
};
extern const char *const port_counter_names[PORT_COUNTER_COUNT];

struct port {
	struct cfg_port cfg;	/* copy: the port outlives a reload's cfg */
	struct cfg_segment seg; /* copy of its segment */
	uint64_t offered_features; /* from the config only, fixed */

	pthread_mutex_t lock;
	enum port_state state;	/* [lock] */
	int vid;		/* [lock] librte_vhost device id, -1: none */
	uint64_t features;	/* [lock] negotiated (valid when RUNNING) */
	uint64_t protocol_features; /* [lock] */
	uint16_t mtu;		/* [lock] frontend's MTU (0: not set) */
	unsigned n_regions;	/* [lock] 0 unless RUNNING */
	struct port_mem_region regions[PORT_MEM_REGIONS_MAX]; /* [lock] */
	unsigned n_vrings;	/* [lock] */
	struct port_vring vrings[PORT_VRINGS_MAX]; /* [lock] */
	uint64_t connects;	/* [lock] frontend connections so far */
	uint64_t device_starts; /* [lock] times the device became RUNNING */

	/* The device life cycle, owned by port_hooks (src/port_hooks.c),
	 * under life_lock: which connection owns the port and what of its
	 * device is usable. The data path runs exactly when all of it is. */
	pthread_mutex_t life_lock;
	struct port_life {
		int vid;	   /* the owning connection, -1: none */
		bool device;	   /* librte_vhost reported the device ready */
		bool ring[2];	   /* RX, TX ready (addresses, fds, enabled) */
		bool mem_changing; /* a memory table is being replaced */
	} life;

	struct port_counters counters; /* data path: single writer */
	void *dp; /* data-path state, owned by the port hooks */
	bool registered; /* main thread: socket registered with librte_vhost */
};

/* Consistent copy of a port for the control plane. */
struct port_info {
	struct cfg_port cfg;
	struct cfg_segment seg;
	uint64_t offered_features;
	enum port_state state;
	int vid;
	uint64_t features;
	uint64_t protocol_features;
	uint16_t mtu;
	unsigned n_regions;
	struct port_mem_region regions[PORT_MEM_REGIONS_MAX];
	unsigned n_vrings;
	struct port_vring vrings[PORT_VRINGS_MAX];
	uint64_t connects;
	uint64_t device_starts;
	struct port_counters counters;
};

const char *port_state_name(enum port_state state);

/* ---- virtio feature policy ----------------------------------------------- */

/* The feature bits offered to frontends. Depends on the config only, never
 * on anything probed at run time: a frontend reconnecting to a restarted
 * daemon must see the same set. */
uint64_t port_offered_features(const struct cfg_port *cfg);
/* Feature bits we decline on purpose (reported, and checked by tests). */
uint64_t port_declined_features(void);
/* vhost-user protocol features we refuse although librte_vhost has them. */
uint64_t port_declined_protocol_features(void);
/* Name of a virtio feature bit, or NULL if we do not know it. */
const char *port_feature_name(unsigned bit);

/* ---- the table (main thread) ---------------------------------------------- */

/* Create a port (state WAITING) and add it to the table. NULL if full or
 * out of memory. Does not touch librte_vhost: see vhost_port_start(). */
struct port *port_add(const struct cfg *cfg, const struct cfg_port *pc);
/* Remove from the table and free. The caller has unregistered it. */
void port_remove(struct port *p);

struct port *port_find(const char *name);
unsigned port_count(void);
/* Snapshot of the table's port pointers (main thread: stable until the
 * main thread changes the table). Returns the count. */
unsigned port_list(struct port **out, unsigned max);

/* ---- state recorded by the vhost callbacks (any thread) ------------------- */
/* For show-ports. Each note but connected names the connection (vid) it
 * is about and is ignored unless that connection owns the port. */

struct port *port_find_by_socket(const char *socket_path);
void port_note_connected(struct port *p, int vid);
/* The device is ready: record what was negotiated. */
void port_note_running(struct port *p, int vid, uint64_t features,
		       uint64_t protocol_features, uint16_t mtu,
		       const struct port_mem_region *regions, unsigned n_regions,
		       const struct port_vring *vrings, unsigned n_vrings);
/* The device stopped (frontend gone, reset, or memory table change):
 * rings and memory table are no longer valid. */
void port_note_stopped(struct port *p, int vid);
void port_note_vring(struct port *p, int vid, unsigned queue,
		     bool enabled);
/* vid -1: whichever connection owns it. False if another owns it. */
bool port_note_disconnected(struct port *p, int vid);

void port_get_info(struct port *p, struct port_info *out);

#endif
