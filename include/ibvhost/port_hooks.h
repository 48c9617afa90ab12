/*
 * port_hooks: where the data path plugs into a port's life cycle.
 *
 * src/vhost.c calls exactly these functions, in one place each, from
 * librte_vhost's callbacks; the port table calls the add/remove hooks.
 * The bodies in src/port_hooks.c do nothing yet: no frames move until the
 * data path fills them in.
 *
 * Threads and order (librte_vhost 22.11):
 *  - device_ready / device_stop / vring_state run on librte_vhost's thread
 *    (device_stop also on the main thread while a port is unregistered),
 *    serialised per device, WITHOUT port->lock held: they may sleep
 *    (ibv_reg_mr, waiting for the polling core).
 *  - A memory-table change on a running device arrives as device_stop,
 *    then device_ready with the new table: librte_vhost 22.11 itself does
 *    not stop the device before it unmaps the old regions; vhost_guard's
 *    pre-message hook does (src/vhost_guard.c).
 *  - device_stop must be synchronous: when it returns, no work request and
 *    no polling core may touch the guest's memory or rings any more,
 *    because librte_vhost reads the ring indexes and may unmap right after.
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

/* Features, memory table and rings are valid (state RUNNING is already
 * recorded). Return 0, or a negative errno to refuse the device:
 * librte_vhost then treats the device as not started. */
int port_hook_device_ready(struct port *p, int vid);
/* The device stops (frontend gone, reset, memory table change). */
void port_hook_device_stop(struct port *p, int vid);
/* A ring was enabled or disabled by the frontend. */
void port_hook_vring_state(struct port *p, int vid, uint16_t queue,
			   bool enabled);

#endif
