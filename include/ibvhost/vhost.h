/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * vhost: the glue between ports and librte_vhost.
 *
 * Owns the registration of each port's vhost-user socket (feature set,
 * callbacks, start, unregister) and the librte_vhost callbacks, which
 * record state in the port (port_note_*) and call the port hooks. Also
 * owns EAL start-up and shutdown for the daemon.
 */
#ifndef IBVHOST_VHOST_H
#define IBVHOST_VHOST_H

#include <stddef.h>

#include "ibvhost/config.h"

struct port;

/* Initialise DPDK's EAL for the daemon: no hugepages (memfd-backed memory),
 * no PCI, no telemetry, a per-process file prefix so several daemons can
 * run side by side, lcores = main core + poll cores, log level and extra
 * arguments from the config. DPDK's log lines go through our log. 0 or -1
 * (logged). */
int vhost_eal_init(const struct cfg *cfg, const char *argv0);
void vhost_eal_cleanup(void);

/* Register, configure and start the port's socket. In server mode a stale
 * socket file left by a dead process is removed first; one that someone
 * still listens on is an error. 0, or -1 with a message in err. */
int vhost_port_start(struct port *p, char *err, size_t errlen);
/* Unregister the socket (stops and destroys a connected device through the
 * callbacks) and remove the socket file in server mode. */
void vhost_port_stop(struct port *p);

#endif
