/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * dp: the data path. Polling cores, the ports they own, and the segments'
 * multicast groups.
 *
 * Owns the polling threads (one per configured poll core, pinned), each
 * with one completion queue shared by its ports; the per-port UD QP, FDB,
 * registered guest memory and virtqueue state; and the hand-over between
 * the control plane (main thread, librte_vhost's thread) and the polling
 * threads.
 *
 * Ownership: a dp_port belongs to exactly one core from dp_port_create()
 * to dp_port_destroy(). Everything the fast path touches (rings, FDB, QP
 * work requests, counters) is changed by that core's thread only. Other
 * threads ask the core to act through its mailbox (a one-slot lock-free
 * hand-over checked once per polling round) and wait until it has: the
 * polling loop never takes a lock.
 *
 * No DPDK here: src/port_hooks.c translates librte_vhost's view of a
 * device into struct dp_device.
 */
#ifndef IBVHOST_DP_H
#define IBVHOST_DP_H

#include <stdbool.h>
#include <stdint.h>

#include "ibvhost/config.h"
#include "ibvhost/fdb.h"
#include "ibvhost/vq.h"

struct port;
struct ib_dev;
struct dp_port;

/* Virtqueue numbers of a virtio-net queue pair. */
#define DP_RXQ 0 /* device writes frames for the guest */
#define DP_TXQ 1 /* guest's frames to send */

/* Open the IB device of `cfg`, start one polling thread per poll core
 * (the main core when none is configured). 0 or -errno, logged. */
int dp_init(const struct cfg *cfg);
/* Stop the threads, close the device. Every port is destroyed before. */
void dp_fini(void);

/* Facts for the control plane. NULL before dp_init(). */
const struct ib_dev *dp_ib_dev(void);

/* The device's asynchronous event fd (non-blocking), for the main loop,
 * and the handler to call when it is readable: logs each event (port
 * state changes, QP and CQ errors) and acknowledges it. */
int dp_async_fd(void);
void dp_handle_async_events(void);

/* A polling core's read or write on a guest's eventfd that lasts longer
 * is interrupted: the frontend shares the fd's open file description and
 * can make it blocking with a full (or empty) counter. */
#define DP_GUEST_FD_MAX_MS 100u
/* Main thread, every DP_GUEST_FD_MAX_MS / 2: interrupt such a core. */
void dp_check_cores(void);

/* The MTU a port's guest gets: its segment's, or the port's own if
 * lower. Receive WRs and the TX size check follow it. */
uint16_t dp_port_mtu(const struct cfg_segment *seg, const struct cfg_port *pc);

/* Create the data-path side of a port from its config copy (p->cfg,
 * p->seg): its QP (attached to the segment's multicast group), its FDB
 * with the static entries, and assign it to a core. The QP lives as long as the port, so peers' FDB entries
 * stay valid across frontend reconnects. 0 or -errno, logged. */
int dp_port_create(struct port *p);
/* Stop the port (if started) and release everything. */
void dp_port_destroy(struct port *p);

/* Guest memory region as librte_vhost mapped it. */
struct dp_region {
	uint64_t gpa, size, hva;
};

/* One vring as the frontend set it up. */
struct dp_vring {
	void *desc, *avail, *used;
	uint16_t size;
	uint16_t last_avail_idx, last_used_idx;
	int callfd; /* eventfd to interrupt the guest, -1 for none */
	int kickfd; /* eventfd the guest kicks, -1 for none */
};

/* A running device: what the frontend negotiated and set up. */
struct dp_device {
	uint64_t features;
	unsigned n_regions;
	struct dp_region regions[VQ_MEM_MAX_REGIONS];
	struct dp_vring vring[2]; /* DP_RXQ, DP_TXQ */
};

/* Register the guest memory and hand the rings to the port's core, which
 * starts receiving and transmitting. Synchronous. 0 or -errno (logged;
 * the port stays down, other ports are not affected). */
int dp_port_start(struct port *p, const struct dp_device *dev);

/* Stop moving frames: every work request that points into guest memory
 * has completed or been flushed, the used rings are up to date, and the
 * guest memory is deregistered when this returns. `final` (may be NULL)
 * receives the ring indexes the frontend must get back
 * (GET_VRING_BASE). Synchronous; a no-op returning false if the port
 * was not started. */
bool dp_port_stop(struct port *p, struct dp_vring final[2]);
/* True between a successful dp_port_start() and dp_port_stop(). */
bool dp_port_started(struct port *p);

/* Address-handle/QP facts for show-ports. */
struct dp_port_info {
	bool started;
	bool broken; /* a hostile ring stopped it until the next start */
	uint32_t qpn;
	uint32_t qkey;
	uint16_t lid;
	uint16_t mtu; /* advertised guest MTU */
	unsigned n_mrs;
	uint32_t lkeys[VQ_MEM_MAX_REGIONS];
	uint32_t tx_inflight, rx_posted_wrs;
	uint32_t send_wr, recv_wr; /* the QP's queue depths */
	uint64_t qp_recoveries;
	uint64_t mrs_registered, mrs_deregistered;
	struct fdb_stats fdb;
};
int dp_port_get_info(struct port *p, struct dp_port_info *out);

/* FDB control, executed by the owning core. */
typedef int (*dp_fdb_visit_fn)(const struct fdb_entry *e, void *arg);
int dp_fdb_foreach(struct port *p, dp_fdb_visit_fn visit, void *arg);
int dp_fdb_add(struct port *p, const uint8_t mac[6],
	       const struct fdb_addr *addr);
int dp_fdb_del(struct port *p, const uint8_t mac[6]);
/* Age every port's FDB (main thread timer). */
void dp_fdb_age_all(unsigned max_age_s);

/* A polling core's facts for show-stats. */
struct dp_core_info {
	unsigned cpu;
	unsigned ports;
	bool adaptive;
	uint64_t sleeps, wakeups_cq, wakeups_kick, wakeups_mailbox;
	uint32_t cq_entries, cq_need, cq_resizes;
};
/* Fill `out` for core i; false past the last core. */
bool dp_core_get_info(unsigned i, struct dp_core_info *out);

/* Install the data path's control commands (src/ctl_dp.c). */
void ctl_dp_install(void);

#endif
