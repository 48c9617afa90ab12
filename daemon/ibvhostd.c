/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibvhostd: the daemon's main thread.
 *
 * Reads the configuration, starts DPDK's EAL, opens the control socket,
 * registers one vhost-user socket per [port], then runs the libev loop:
 * control requests, SIGTERM/SIGINT (clean stop), SIGHUP (reload) and the
 * systemd watchdog. librte_vhost serves the vhost-user protocol on its own
 * thread; src/vhost.c records what it negotiates in the ports.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>
#include <rte_version.h>
#include <systemd/sd-daemon.h>

#include "ibvhost/config.h"
#include "ibvhost/dp.h"
#include "ibvhost/ctl.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"
#include "ibvhost/port_hooks.h"
#include "ibvhost/vhost.h"

#ifndef IBVHOSTD_VERSION
#define IBVHOSTD_VERSION "unknown"
#endif
/* meson's prefix and sysconfdir (daemon/meson.build), so the default
 * follows the install prefix. */
#ifndef IBVHOSTD_CONFIG_PATH
#define IBVHOSTD_CONFIG_PATH CFG_DEFAULT_PATH
#endif

static struct {
	const char *config_path;
	bool verbose;
	struct cfg *cfg; /* the running configuration */
	struct ev_loop *loop;
	ev_signal sig_term, sig_int, sig_hup;
	ev_timer watchdog;
	ev_timer core_check;
	ev_timer fdb_aging;
	ev_io ib_async;
	int exit_code;
} d = {
	.config_path = IBVHOSTD_CONFIG_PATH,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ibvhostd [-c FILE] [-f] [-v] [--check-config] [--version]\n"
		"  -c, --config FILE   configuration (default " IBVHOSTD_CONFIG_PATH ")\n"
		"  -f, --foreground    stay in the foreground (always: systemd supervises)\n"
		"  -v, --verbose       log at debug level, whatever the config says\n"
		"      --check-config  validate the configuration and exit (78 if bad)\n"
		"      --version       print the version and exit\n");
}

/* ---- ports ------------------------------------------------------------------ */

/* Create the port and its socket. On failure the reason (also logged)
 * is in why. */
static int port_start(const struct cfg *cfg, const struct cfg_port *pc,
		      char *why, size_t whylen)
{
	struct port *p = port_add(cfg, pc);

	if (!p) {
		snprintf(why, whylen, "cannot create: out of memory or too many ports");
		log_err("port %s: %s", pc->name, why);
		return -1;
	}
	/* The data path first: a frontend may connect as soon as the
	 * socket is registered. */
	int rc = port_hook_port_added(p);
	if (rc < 0) {
		snprintf(why, whylen, "data path setup failed: %s", strerror(-rc));
		log_err("port %s: %s", pc->name, why);
		port_remove(p);
		return -1;
	}
	if (vhost_port_start(p, why, whylen) != 0) {
		log_err("port %s: %s", pc->name, why);
		port_hook_port_removed(p);
		port_remove(p);
		return -1;
	}
	log_info("port %s: %s socket %s, segment %s (qkey 0x%x)", pc->name,
		 cfg_port_mode_name(pc->mode), pc->socket_path, p->seg.name,
		 p->seg.qkey);
	return 0;
}

static void port_stop(struct port *p)
{
	log_info("port %s: removing socket %s", p->cfg.name, p->cfg.socket_path);
	vhost_port_stop(p); /* device destroyed first, through the hooks */
	port_hook_port_removed(p);
	ctl_port_forget(p);
	port_remove(p);
}

static void ports_stop_all(void)
{
	struct port *ports[CFG_PORTS_MAX];
	unsigned n = port_list(ports, CFG_PORTS_MAX);

	for (unsigned i = 0; i < n; i++)
		port_stop(ports[i]);
}

/* ---- reload ------------------------------------------------------------------ */

/* Settings that only take effect at start. Keep the running values and
 * say so, rather than pretending they changed. */
static void keep_restart_only_settings(const struct cfg *old, struct cfg *new)
{
#define KEEP(field, what)                                                      \
	if (memcmp(&old->field, &new->field, sizeof(old->field)) != 0) {       \
		log_warn("reload: %s changed; takes effect after a restart", what); \
		memcpy(&new->field, &old->field, sizeof(old->field));          \
	}
	KEEP(ctl_socket, "control_socket")
	KEEP(ctl_owner, "control_owner")
	KEEP(ctl_group, "control_group")
	KEEP(ctl_mode, "control_mode")
	KEEP(ib_device, "ib_device")
	KEEP(ib_port, "ib_port")
	KEEP(gid_index, "gid_index")
	KEEP(main_core, "main_core")
	KEEP(n_poll_cores, "poll_cores")
	KEEP(poll_cores, "poll_cores")
	KEEP(poll_mode, "poll_mode")
	KEEP(eal_memory_mb, "eal_memory_mb")
	KEEP(eal_args, "eal_args")
#undef KEEP
}

static void report_port(json_t *report, const char *name, const char *action,
			const char *why)
{
	json_t *o = json_pack("{s:s, s:s}", "name", name, "action", action);

	if (o && why)
		json_object_set_new(o, "error", json_string(why));
	if (o)
		json_array_append_new(report, o);
}

/* Re-read the configuration file and apply it by difference. Returns 0
 * with *result = {"config", "ports": [{name, action}], "running"} when
 * the file was accepted and every port started; -1 with err set when the
 * file was rejected (nothing changed) or some ports failed to start (the
 * others are applied). Used by SIGHUP and by the "reload" command. */
static int reload(json_t **result, char *err, size_t errlen)
{
	struct cfg *new = NULL;
	char why[512];
	struct port *ports[CFG_PORTS_MAX];
	unsigned n, removed = 0, added = 0, failed = 0;
	json_t *report = json_array();
	size_t fl = 0;
	struct timespec now;

	/* systemd's Type=notify-reload protocol wants the monotonic time of
	 * the reload start with RELOADING=1. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now.tv_sec * 1000000ULL +
			   (unsigned long long)now.tv_nsec / 1000ULL);
	log_notice("reload: reading %s", d.config_path);
	if (cfg_load(d.config_path, &new, why, sizeof(why)) != 0) {
		log_err("reload: %s; keeping the running configuration", why);
		sd_notify(0, "READY=1\nSTATUS=reload rejected: bad configuration");
		snprintf(err, errlen, "rejected, running configuration kept: %s", why);
		json_decref(report);
		return -1;
	}
	keep_restart_only_settings(d.cfg, new);
	if (!d.verbose)
		log_set_level(new->log_level);

	/* Removed or changed ports go first, so a port that moved its socket
	 * to another name can be added afterwards. */
	n = port_list(ports, CFG_PORTS_MAX);
	for (unsigned i = 0; i < n; i++) {
		struct port *p = ports[i];
		const struct cfg_port *np = cfg_find_port(new, p->cfg.name);
		const struct cfg_port *op = cfg_find_port(d.cfg, p->cfg.name);

		if (np && op && cfg_port_unchanged(d.cfg, op, new, np)) {
			report_port(report, p->cfg.name, "kept", NULL);
			continue; /* untouched: its frontend keeps running */
		}
		if (np)
			log_notice("reload: port %s changed; restarting it", p->cfg.name);
		else
			report_port(report, p->cfg.name, "removed", NULL);
		port_stop(p);
		removed++;
	}
	for (unsigned i = 0; i < new->n_ports; i++) {
		const struct cfg_port *pc = &new->ports[i];
		bool existed = cfg_find_port(d.cfg, pc->name) != NULL;

		if (port_find(pc->name))
			continue;
		if (port_start(new, pc, why, sizeof(why)) == 0) {
			report_port(report, pc->name, existed ? "restarted" : "added",
				    NULL);
			added++;
			continue;
		}
		report_port(report, pc->name, "failed", why);
		if (failed++ == 0)
			fl = (size_t)snprintf(err, errlen, "port(s) failed to start: %s: %s",
					      pc->name, why);
		else if (fl < errlen)
			fl += (size_t)snprintf(err + fl, errlen - fl, "; %s", pc->name);
	}
	cfg_free(d.cfg);
	d.cfg = new;
	log_notice("reload: done: %u port(s) removed or restarted, %u added, %u failed, %u running",
		   removed, added, failed, port_count());
	sd_notifyf(0, "READY=1\nSTATUS=%u port(s)%s", port_count(),
		   failed ? ", some failed to start (see log)" : "");
	if (failed) {
		json_decref(report);
		return -1;
	}
	*result = json_pack("{s:s, s:o, s:I}", "config", d.config_path, "ports",
			    report, "running", (json_int_t)port_count());
	return 0;
}

/* ---- signals and timers ------------------------------------------------------ */

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_notice("%s: stopping", strsignal(w->signum));
	sd_notify(0, "STOPPING=1");
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	json_t *result = NULL;
	char err[256];

	(void)loop;
	(void)w;
	(void)revents;
	/* The outcome is logged; only "ibvhostctl reload" can report it. */
	if (reload(&result, err, sizeof(err)) == 0)
		json_decref(result);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	sd_notify(0, "WATCHDOG=1");
}

static void on_core_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	dp_check_cores();
}

static void on_fdb_aging(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (d.cfg->fdb_aging_s)
		dp_fdb_age_all(d.cfg->fdb_aging_s);
}

static void on_ib_async(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	dp_handle_async_events();
}

/* Entries expire within a tenth of their age (at least every second). */
static void start_fdb_aging(void)
{
	double period = d.cfg->fdb_aging_s ? d.cfg->fdb_aging_s / 10.0 : 10.0;

	if (period < 1.0)
		period = 1.0;
	ev_timer_init(&d.fdb_aging, on_fdb_aging, period, period);
	ev_timer_start(d.loop, &d.fdb_aging);
}

static void start_watchdog(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	/* Ping at half the interval, as sd_watchdog_enabled(3) advises. */
	double period = (double)usec / 2e6;
	ev_timer_init(&d.watchdog, on_watchdog, period, period);
	ev_timer_start(d.loop, &d.watchdog);
	log_info("systemd watchdog: ping every %.3f s", period);
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_VERSION };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool check_only = false;
	char err[512];
	int c;

	log_init();
	while ((c = getopt_long(argc, argv, "c:fvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'f':
			break;
		case 'v':
			d.verbose = true;
			break;
		case OPT_CHECK:
			check_only = true;
			break;
		case OPT_VERSION:
			printf("ibvhostd %s (%s)\n", IBVHOSTD_VERSION, rte_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (cfg_load(d.config_path, &d.cfg, err, sizeof(err)) != 0) {
		log_err("%s", err);
		return CFG_EXIT_CONFIG;
	}
	if (check_only) {
		printf("%s: OK (%u segment(s), %u port(s))\n", d.config_path,
		       d.cfg->n_segments, d.cfg->n_ports);
		cfg_free(d.cfg);
		return 0;
	}
	log_set_level(d.verbose ? LOGL_DEBUG : d.cfg->log_level);
	log_notice("ibvhostd %s starting with %s", IBVHOSTD_VERSION, d.config_path);

	/* Files we create (vhost-user sockets) are never world-accessible. */
	umask(0007);
	signal(SIGPIPE, SIG_IGN);

	if (vhost_eal_init(d.cfg, argv[0]) != 0) {
		cfg_free(d.cfg);
		return 1;
	}
	if (dp_init(d.cfg) != 0) {
		log_err("cannot start the data path; stopping");
		vhost_eal_cleanup();
		cfg_free(d.cfg);
		return 1;
	}
	ctl_dp_install();
	d.loop = ev_default_loop(EVFLAG_AUTO);
	if (!d.loop) {
		log_err("cannot create the event loop (libev)");
		goto fail_eal;
	}
	ev_signal_init(&d.sig_term, on_stop_signal, SIGTERM);
	ev_signal_init(&d.sig_int, on_stop_signal, SIGINT);
	ev_signal_init(&d.sig_hup, on_hup, SIGHUP);
	ev_signal_start(d.loop, &d.sig_term);
	ev_signal_start(d.loop, &d.sig_int);
	ev_signal_start(d.loop, &d.sig_hup);

	ctl_set_daemon_info(&(struct ctl_daemon_info){
		.version = IBVHOSTD_VERSION,
		.dpdk_version = rte_version(),
		.config_path = d.config_path,
		.reload = reload,
	});
	if (ctl_server_open(d.loop, d.cfg, err, sizeof(err)) != 0) {
		log_err("%s", err);
		goto fail_eal;
	}
	for (unsigned i = 0; i < d.cfg->n_ports; i++) {
		if (port_start(d.cfg, &d.cfg->ports[i], err, sizeof(err)) != 0) {
			log_err("cannot start port %s; stopping (fix the config or free the socket)",
				d.cfg->ports[i].name);
			goto fail_ports;
		}
	}
	start_watchdog();
	start_fdb_aging();
	/* A polling core blocked on a guest's fd is interrupted. */
	ev_timer_init(&d.core_check, on_core_check,
		      DP_GUEST_FD_MAX_MS / 2000.0, DP_GUEST_FD_MAX_MS / 2000.0);
	ev_timer_start(d.loop, &d.core_check);
	ev_io_init(&d.ib_async, on_ib_async, dp_async_fd(), EV_READ);
	ev_io_start(d.loop, &d.ib_async);
	/* Every server socket exists now: frontends may connect. */
	sd_notifyf(0, "READY=1\nSTATUS=%u port(s)\nMAINPID=%lu", port_count(),
		   (unsigned long)getpid());
	log_notice("ready: %u port(s), control socket %s", port_count(),
		   d.cfg->ctl_socket);

	ev_run(d.loop, 0);

	ports_stop_all();
	ctl_server_close();
	dp_fini();
	vhost_eal_cleanup();
	cfg_free(d.cfg);
	log_notice("stopped");
	return 0;

fail_ports:
	ports_stop_all();
	ctl_server_close();
fail_eal:
	dp_fini();
	vhost_eal_cleanup();
	cfg_free(d.cfg);
	return 1;
}
