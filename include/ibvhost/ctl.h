/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl: the control protocol and the control socket.
 *
 * Protocol: one JSON object per line over a UNIX stream socket.
 *   request: {"cmd": "show-port", "args": ["vm1"]}   ("args" optional)
 *   reply:   {"ok": true, "result": ...}
 *        or  {"ok": false, "error": "what is wrong"}
 * Every request gets exactly one reply line, also a malformed, unknown or
 * oversized one; the connection stays usable.
 *
 * Commands are rows of ctl_commands[] (src/ctl_commands.c): name, argument
 * count range, usage, handler. The dispatcher checks the request shape and
 * the argument count before a handler runs; a handler only does its job.
 * To add a command, add a row and a handler there.
 *
 * The server half runs on the main thread's libev loop only.
 */
#ifndef IBVHOST_CTL_H
#define IBVHOST_CTL_H

#include <stddef.h>

#include <jansson.h>

#include "ibvhost/config.h"

#define CTL_REQUEST_MAX 4096 /* bytes per request line, newline excluded */
#define CTL_ARGS_MAX 16
#define CTL_ARG_LEN_MAX 256
#define CTL_CONNS_MAX 32
#define CTL_REPLY_BACKLOG_MAX (1u << 20) /* unread reply bytes per client */

/* A handler fills *result (a new reference) and returns 0, or writes a
 * message to err and returns -1. */
typedef int ctl_handler_fn(unsigned argc, const char *const *argv,
			   json_t **result, char *err, size_t errlen);

struct ctl_command {
	const char *name;
	unsigned min_args, max_args;
	const char *usage; /* argument synopsis, e.g. "NAME" */
	const char *help;
	ctl_handler_fn *handler;
};

extern const struct ctl_command ctl_commands[];
extern const size_t ctl_n_commands;

/* Facts about the running daemon for show-version (set by the daemon). */
struct ctl_daemon_info {
	const char *version;
	const char *dpdk_version;
	const char *config_path;
	/* Re-read the config file and apply it (the "reload" command); NULL:
	 * the command answers "no reload in this process". Same contract as
	 * a handler. */
	int (*reload)(json_t **result, char *err, size_t errlen);
};
void ctl_set_daemon_info(const struct ctl_daemon_info *info);

/* The data path's part of the control protocol. The daemon installs it
 * (src/ctl_dp.c); without it (unit tests of the protocol alone) the
 * data-path commands answer "no data path". Handlers run on the main
 * thread and ask the polling cores for consistent answers. */
struct port;
struct ctl_dp_ops {
	/* Add the port's IB facts ("ib": {...}) to its JSON object. */
	void (*port_json)(struct port *p, json_t *obj);
	/* The port's FDB as a JSON array. */
	int (*fdb_show)(struct port *p, json_t **out, char *err, size_t errlen);
	/* argv: MAC LID QPN [GID] */
	int (*fdb_add)(struct port *p, unsigned argc, const char *const *argv,
		       char *err, size_t errlen);
	int (*fdb_del)(struct port *p, const char *mac, char *err,
		       size_t errlen);
	/* Device, cores, segments and totals. */
	json_t *(*stats)(void);
};
void ctl_set_dp_ops(const struct ctl_dp_ops *ops);

/* Handle one request line (without its newline). Returns the reply as a
 * malloc'd NUL-terminated JSON text without newline; never NULL unless out
 * of memory. */
char *ctl_handle_request(const char *line, size_t len);

/* The port is about to be removed: drop what the control protocol keeps
 * about it (its clear-counters baseline). */
void ctl_port_forget(const struct port *p);

/* Per-port rates (frames and bytes per second, TX and RX) over the last
 * sampling interval, in show-port(s) and show-metrics. The control
 * socket's timer calls ctl_rates_sample() every CTL_RATE_INTERVAL_S with
 * a monotonic time in seconds; each call compares every port's raw
 * counters with the previous call's. ctl_rates_reset() forgets every
 * sample (at close). */
#define CTL_RATE_INTERVAL_S 1.0
void ctl_rates_sample(double now_s);
void ctl_rates_reset(void);

/* Build the JSON object describing one port (used by show-ports). */
struct port_info;
json_t *ctl_port_info_json(const struct port_info *info);

/* ---- server (main thread) ------------------------------------------------ */

struct ev_loop;

/* Create the control socket from cfg (path, owner, group, mode): bound
 * under a tight umask, then chmod/chown, so it is never more open than
 * configured. A stale socket is replaced; a live one is an error.
 * 0, or -1 with err set. */
int ctl_server_open(struct ev_loop *loop, const struct cfg *cfg, char *err,
		    size_t errlen);
/* Close every connection and the socket, and unlink it. */
void ctl_server_close(void);

#endif
