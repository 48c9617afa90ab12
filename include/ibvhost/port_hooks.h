/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * port_hooks: the one owner of a port's device life cycle, where the data
 * path plugs into librte_vhost's view of a connection.
 *
 * src/vhost.c and src/vhost_guard.c report events here, in one place
 * each; the port table calls the add/remove hooks. The events update one
 * record per port (struct port_life, under port->life_lock), and a single
 * function (life_sync in src/port_hooks.c) then starts or stops the data
 * path so that it runs exactly when
 *   - the event's connection owns the port (one connection per port: a
 *     second live connection is refused; one that comes while the
 *     previous frontend has hung up but is not torn down yet takes over),
 *   - librte_vhost reported the device ready and has not stopped it,
 *   - both rings are ready (addresses, fds, enabled) — a ring disabled or
 *     given a new fd stops the port before the old fd is closed,
 *   - the memory table is valid and not being replaced.
 * Events of a connection that does not own the port change nothing.
 *
 * Threads and order (librte_vhost 22.11):
 *  - every hook but port_added/port_removed runs on librte_vhost's thread
 *    (device_stop and disconnected also on the main thread while a port
 *    is unregistered), serialised per port by life_lock, WITHOUT
 *    port->lock held: they may sleep (ibv_reg_mr, waiting for the core).
 *  - librte_vhost 22.11 unmaps the old regions of a memory-table change
 *    without stopping the device; vhost_guard's pre-message hook reports
 *    mem_changing before it does, and mem_changed after it applied.
 *  - stopping is synchronous: when a hook returns, no work request and no
 *    polling core touches the guest's memory or rings any more, because
 *    librte_vhost reads the ring indexes and may unmap right after.
 *  - port_added / port_removed run on the main thread; port_removed runs
 *    after the socket is unregistered (no device any more).
 */
#ifndef IBVHOST_PORT_HOOKS_H
#define IBVHOST_PORT_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

struct port;

/* The port entered the table and its socket is registered. 0 or -errno. */
int port_hook_port_added(struct port *p);
/* The port leaves the table; release p->dp. */
void port_hook_port_removed(struct port *p);

/* A frontend connected as device vid. 0, or -EBUSY: another live
 * connection owns the port (logged; the caller refuses this one). */
int port_hook_connected(struct port *p, int vid);
/* Connection vid is gone. */
void port_hook_disconnected(struct port *p, int vid);
/* librte_vhost reports the device ready (state RUNNING is recorded).
 * 0, -EAGAIN (not both rings ready yet: librte_vhost asks again), or
 * another negative errno to refuse the device. */
int port_hook_device_ready(struct port *p, int vid);
/* The device stops (frontend gone, reset, GET_VRING_BASE). */
void port_hook_device_stop(struct port *p, int vid);
/* A ring became ready or stopped being ready. */
void port_hook_vring_state(struct port *p, int vid, uint16_t queue,
			   bool ready);
/* A new memory table is about to replace the mapped one. */
void port_hook_mem_changing(struct port *p, int vid);
/* librte_vhost applied the new table. */
void port_hook_mem_changed(struct port *p, int vid);

#endif
