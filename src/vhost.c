/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vhost: see include/ibvhost/vhost.h. */
/* rte_vhost_get_negotiated_protocol_features() is still marked
 * experimental in DPDK 22.11. */
#define ALLOW_EXPERIMENTAL_API

#include "ibvhost/vhost.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_vhost.h>

#include "ibvhost/log.h"
#include "ibvhost/port.h"
#include "ibvhost/port_hooks.h"
#include "ibvhost/vhost_guard.h"

/* ---- EAL -------------------------------------------------------------------- */

/* DPDK writes its log lines to a stdio stream; this cookie stream hands
 * them to our logger with DPDK's level, so all output has one format. */
static ssize_t dpdk_log_write(void *cookie, const char *buf, size_t size)
{
	int rte_level = (int)rte_log_cur_msg_loglevel();
	/* RTE_LOG_ERR (4) .. RTE_LOG_NOTICE (6) map to syslog 3 .. 5; DPDK's
	 * INFO is a line per protocol message, so it counts as our debug. */
	int level = rte_level >= (int)RTE_LOG_INFO ? LOGL_DEBUG : rte_level - 1;

	(void)cookie;
	if (level < LOGL_ERR)
		level = LOGL_ERR;
	if (level > LOGL_DEBUG)
		level = LOGL_DEBUG;
	log_msg((enum log_level)level, "dpdk: %.*s", (int)size, buf);
	return (ssize_t)size;
}

#define EAL_ARGV_MAX 64

int vhost_eal_init(const struct cfg *cfg, const char *argv0)
{
	static char extra[CFG_EAL_ARGS_MAX];
	static char mem[16], prefix[64], cores[256], main_core[16], loglvl[16];
	char *argv[EAL_ARGV_MAX];
	int argc = 0;
	size_t n;

	cookie_io_functions_t io = { .write = dpdk_log_write };
	FILE *logf = fopencookie(NULL, "w", io);
	if (logf) {
		setvbuf(logf, NULL, _IOLBF, 0);
		rte_openlog_stream(logf);
	}

	snprintf(mem, sizeof(mem), "%u", cfg->eal_memory_mb);
	/* A prefix per process: two daemons (or a daemon and testpmd) never
	 * share DPDK runtime files. */
	snprintf(prefix, sizeof(prefix), "ibvhostd-%ld", (long)getpid());
	n = (size_t)snprintf(cores, sizeof(cores), "%u", cfg->main_core);
	for (unsigned i = 0; i < cfg->n_poll_cores && n < sizeof(cores); i++)
		n += (size_t)snprintf(cores + n, sizeof(cores) - n, ",%u",
				      cfg->poll_cores[i]);
	snprintf(main_core, sizeof(main_core), "%u", cfg->main_core);
	/* Our level -> DPDK's: DPDK INFO only when we log debug. */
	snprintf(loglvl, sizeof(loglvl), "%d",
		 cfg->log_level >= LOGL_DEBUG ? (int)RTE_LOG_DEBUG
		 : cfg->log_level >= LOGL_NOTICE ? (int)RTE_LOG_NOTICE
		 : (int)cfg->log_level + 1);

	argv[argc++] = (char *)(uintptr_t)argv0;
	argv[argc++] = "--no-huge"; /* memory is memfd-backed, no hugetlbfs */
	argv[argc++] = "-m";
	argv[argc++] = mem;
	argv[argc++] = "--no-pci"; /* a vhost backend drives no NIC */
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "--no-shconf";
	argv[argc++] = "--file-prefix";
	argv[argc++] = prefix;
	argv[argc++] = "-l";
	argv[argc++] = cores;
	argv[argc++] = "--main-lcore";
	argv[argc++] = main_core;
	argv[argc++] = "--log-level";
	argv[argc++] = loglvl;

	snprintf(extra, sizeof(extra), "%s", cfg->eal_args);
	char *save = NULL;
	for (char *t = strtok_r(extra, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		if (argc == EAL_ARGV_MAX - 1) {
			log_err("eal_args: more than %d arguments", EAL_ARGV_MAX - 16);
			return -1;
		}
		argv[argc++] = t;
	}
	argv[argc] = NULL;

	if (log_enabled(LOGL_DEBUG)) {
		char line[1024];
		size_t m = 0;
		for (int i = 0; i < argc && m < sizeof(line); i++)
			m += (size_t)snprintf(line + m, sizeof(line) - m, " %s", argv[i]);
		log_debug("EAL arguments:%s", line);
	}
	if (rte_eal_init(argc, argv) < 0) {
		log_err("DPDK EAL initialisation failed: %s (check main_core/poll_cores exist and eal_args)",
			rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

void vhost_eal_cleanup(void)
{
	char dir[PATH_MAX];

	/* With --no-shconf the per-process runtime directory stays empty, but
	 * EAL leaves it behind; remove it so restarts do not pile them up. */
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (dir[0] && rmdir(dir) != 0 && errno != ENOENT)
		log_debug("cannot remove DPDK runtime directory %s: %s", dir,
			  strerror(errno));
}

/* ---- callbacks (librte_vhost's thread) ------------------------------------- */

static struct port *port_of_vid(int vid)
{
	char path[PATH_MAX];

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0)
		return NULL;
	struct port *p = port_find_by_socket(path);
	if (!p)
		log_warn("vhost device %d on %s: no such port", vid, path);
	return p;
}

static int cb_new_connection(int vid)
{
	struct port *p = port_of_vid(vid);

	if (!p)
		return -1;
	if (port_hook_connected(p, vid) != 0)
		return -1;
	if (vhost_guard_attach(p, vid) != 0) {
		port_hook_disconnected(p, vid);
		return -1;
	}
	port_note_connected(p, vid);
	log_info("port %s: frontend connected (device %d)", p->cfg.name, vid);
	return 0;
}

static void cb_destroy_connection(int vid)
{
	struct port *p = port_of_vid(vid);

	if (p) {
		/* The owner's data path stops before its memory goes. */
		port_hook_disconnected(p, vid);
	}
	vhost_guard_detach(vid);
	if (!p || !port_note_disconnected(p, vid))
		return;
	log_info("port %s: frontend disconnected, waiting", p->cfg.name);
}

static int cb_new_device(int vid)
{
	struct port *p = port_of_vid(vid);
	struct rte_vhost_memory *mem = NULL;
	struct port_mem_region regions[PORT_MEM_REGIONS_MAX];
	struct port_vring vrings[PORT_VRINGS_MAX];
	uint64_t features = 0, pfeatures = 0;
	uint16_t mtu = 0;
	unsigned nreg = 0, nvr;

	if (!p)
		return -1;
	if (!vhost_guard_mem_ok(vid)) {
		log_err("port %s: no valid memory table; refusing device", p->cfg.name);
		return -1;
	}
	if (rte_vhost_get_negotiated_features(vid, &features) != 0 ||
	    rte_vhost_get_negotiated_protocol_features(vid, &pfeatures) != 0) {
		log_err("port %s: cannot read negotiated features; refusing device",
			p->cfg.name);
		return -1;
	}
	if (rte_vhost_get_mtu(vid, &mtu) != 0)
		mtu = 0; /* MTU not negotiated or not set by the frontend */
	if (rte_vhost_get_mem_table(vid, &mem) != 0) {
		log_err("port %s: cannot read the memory table; refusing device",
			p->cfg.name);
		return -1;
	}
	if (mem->nregions > PORT_MEM_REGIONS_MAX)
		log_warn("port %s: %u memory regions, showing the first %d",
			 p->cfg.name, mem->nregions, PORT_MEM_REGIONS_MAX);
	for (uint32_t i = 0; i < mem->nregions && nreg < PORT_MEM_REGIONS_MAX; i++) {
		regions[nreg].guest_phys_addr = mem->regions[i].guest_phys_addr;
		regions[nreg].size = mem->regions[i].size;
		regions[nreg].host_user_addr = mem->regions[i].host_user_addr;
		nreg++;
	}
	free(mem); /* rte_vhost_get_mem_table allocates with malloc */

	nvr = rte_vhost_get_vring_num(vid);
	if (nvr > PORT_VRINGS_MAX)
		nvr = PORT_VRINGS_MAX;
	memset(vrings, 0, sizeof(vrings));
	for (unsigned i = 0; i < nvr; i++) {
		struct rte_vhost_vring vr;

		if (rte_vhost_get_vhost_vring(vid, (uint16_t)i, &vr) == 0)
			vrings[i].size = vr.size;
	}
	port_note_running(p, vid, features, pfeatures, mtu, regions, nreg, vrings, nvr);
	int rc = port_hook_device_ready(p, vid);
	if (rc == -EAGAIN) {
		log_debug("port %s: rings not all set up yet", p->cfg.name);
		port_note_stopped(p, vid);
		return -1;
	}
	if (rc < 0) {
		log_err("port %s: data path refused the device: %s", p->cfg.name,
			strerror(-rc));
		port_note_stopped(p, vid);
		return -1;
	}
	log_info("port %s: running, features 0x%" PRIx64 ", %u memory region(s), %u ring(s)",
		 p->cfg.name, features, nreg, nvr);
	return 0;
}

static void cb_destroy_device(int vid)
{
	struct port *p = port_of_vid(vid);

	if (!p)
		return;
	/* Data path first: it must stop touching guest memory before the
	 * table is forgotten and librte_vhost unmaps it. */
	port_hook_device_stop(p, vid);
	port_note_stopped(p, vid);
	log_info("port %s: device stopped", p->cfg.name);
}

static int cb_vring_state_changed(int vid, uint16_t queue, int enable)
{
	struct port *p = port_of_vid(vid);

	if (!p)
		return -1;
	port_note_vring(p, vid, queue, enable != 0);
	port_hook_vring_state(p, vid, queue, enable != 0);
	log_debug("port %s: ring %u %s", p->cfg.name, queue,
		  enable ? "enabled" : "disabled");
	return 0;
}

static int cb_features_changed(int vid, uint64_t features)
{
	struct port *p = port_of_vid(vid);

	if (p)
		log_debug("port %s: features changed to 0x%" PRIx64, p->cfg.name,
			  features);
	return 0;
}

static const struct rte_vhost_device_ops vhost_ops = {
	.new_device = cb_new_device,
	.destroy_device = cb_destroy_device,
	.vring_state_changed = cb_vring_state_changed,
	.features_changed = cb_features_changed,
	.new_connection = cb_new_connection,
	.destroy_connection = cb_destroy_connection,
};

/* ---- registration (main thread) ------------------------------------------- */

/* A server socket path may hold the socket of a daemon that died. Remove
 * it if nobody listens; refuse if somebody does or if it is not a socket. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket (remove it or change socket =)", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "%s is in use by another process (another ibvhostd?)", path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "%s: cannot probe: %s", path, strerror(e));
		return -1;
	}
	if (unlink(path) != 0) {
		snprintf(err, errlen, "%s: cannot remove stale socket: %s", path, strerror(errno));
		return -1;
	}
	log_notice("removed stale socket %s", path);
	return 0;
}

/* The server socket is created under umask 0177 (owner only), then given
 * the configured mode and group: never more open than configured, not
 * even between bind() and chmod(). */
static int apply_socket_access(const struct cfg_port *pc, char *err,
			       size_t errlen)
{
	gid_t gid = (gid_t)-1;

	if (pc->socket_group[0]) {
		struct group *gr = getgrnam(pc->socket_group);
		char *end;
		unsigned long v = strtoul(pc->socket_group, &end, 10);

		if (gr)
			gid = gr->gr_gid;
		else if (*end == '\0' && end != pc->socket_group)
			gid = (gid_t)v;
		else {
			snprintf(err, errlen, "socket_group %s: no such group",
				 pc->socket_group);
			return -1;
		}
	}
	if (gid != (gid_t)-1 && chown(pc->socket_path, (uid_t)-1, gid) != 0) {
		snprintf(err, errlen, "%s: chown to group %u: %s", pc->socket_path,
			 (unsigned)gid, strerror(errno));
		return -1;
	}
	if (chmod(pc->socket_path, pc->socket_mode) != 0) {
		snprintf(err, errlen, "%s: chmod %04o: %s", pc->socket_path,
			 (unsigned)pc->socket_mode, strerror(errno));
		return -1;
	}
	return 0;
}

int vhost_port_start(struct port *p, char *err, size_t errlen)
{
	const char *path = p->cfg.socket_path;
	uint64_t flags = 0, pf = 0;

	if (p->cfg.mode == CFG_PORT_CLIENT)
		flags |= RTE_VHOST_USER_CLIENT; /* librte_vhost reconnects */
	else if (clear_stale_socket(path, err, errlen) != 0)
		return -1;

	if (rte_vhost_driver_register(path, flags) != 0) {
		snprintf(err, errlen, "%s: librte_vhost refused to register the socket (see the dpdk: lines above)", path);
		return -1;
	}
	if (rte_vhost_driver_set_features(path, p->offered_features) != 0) {
		snprintf(err, errlen, "%s: cannot set the feature set", path);
		goto fail;
	}
	if (rte_vhost_driver_get_protocol_features(path, &pf) != 0 ||
	    rte_vhost_driver_set_protocol_features(
		    path, pf & ~port_declined_protocol_features()) != 0) {
		snprintf(err, errlen, "%s: cannot set the protocol features", path);
		goto fail;
	}
	if (rte_vhost_driver_callback_register(path, &vhost_ops) != 0) {
		snprintf(err, errlen, "%s: cannot register callbacks", path);
		goto fail;
	}
	mode_t old_umask = umask(0177);
	int started = rte_vhost_driver_start(path);
	umask(old_umask);
	if (started != 0) {
		snprintf(err, errlen, "%s: cannot start the %s socket (see the dpdk: lines above)",
			 path, cfg_port_mode_name(p->cfg.mode));
		goto fail;
	}
	if (p->cfg.mode == CFG_PORT_SERVER &&
	    apply_socket_access(&p->cfg, err, errlen) != 0)
		goto fail;
	p->registered = true;
	return 0;
fail:
	rte_vhost_driver_unregister(path);
	return -1;
}

void vhost_port_stop(struct port *p)
{
	const char *path = p->cfg.socket_path;
	struct stat st;

	if (!p->registered)
		return;
	/* Destroys a connected device through cb_destroy_device on this
	 * thread before it returns. */
	if (rte_vhost_driver_unregister(path) != 0)
		log_warn("port %s: unregistering %s failed", p->cfg.name, path);
	p->registered = false;
	port_note_disconnected(p, -1);
	if (p->cfg.mode == CFG_PORT_SERVER && lstat(path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && unlink(path) != 0)
		log_warn("port %s: cannot remove %s: %s", p->cfg.name, path,
			 strerror(errno));
}
