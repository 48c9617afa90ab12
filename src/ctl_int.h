/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_int: what the control-protocol files share among themselves
 * (src/ctl_commands.c, src/ctl_metrics.c, src/ctl_dp.c). Main thread only.
 */
#ifndef IBVHOST_CTL_INT_H
#define IBVHOST_CTL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ibvhost/ctl.h"
#include "ibvhost/port.h"

/* port_get_info() with the counters as the show-* commands present them:
 * since the last clear-counters of the port (or since it was created). */
void ctl_port_get_info(struct port *p, struct port_info *out);

/* clear-counters: the port's counters (all ports' when p is NULL) read 0
 * in show-* from now on. The data path's own counters are not touched
 * (it is their only writer); a baseline is subtracted instead. */
void ctl_clear_counters(struct port *p);

/* A port's rates over the interval that ended at ctl_rates_sample()
 * number `sample` (0: no sample yet). interval_s is 0, and so are the
 * rates, until the port has two samples. */
struct ctl_port_rates {
	uint64_t sample;
	double interval_s;
	double tx_frames_per_s, tx_bytes_per_s;
	double rx_frames_per_s, rx_bytes_per_s;
};
void ctl_port_rates(const struct port *p, struct ctl_port_rates *out);
/* The port is going: drop its samples (ctl_port_forget does). */
void ctl_rates_forget(const struct port *p);

/* The Prometheus text exposition (format 0.0.4) of every counter and
 * gauge: ports (labels port, segment; drops also reason), polling cores
 * (core, reason), the IB device and the daemon. Counters are raw, since
 * the daemon or the port started: clear-counters does not reset them, so
 * rate() stays right. dp may be NULL (no data path). A malloc'd string,
 * NULL when out of memory. */
char *ctl_metrics_text(const struct ctl_dp_ops *dp,
		       const struct ctl_daemon_info *info);

#endif
