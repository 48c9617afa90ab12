/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * config: the ibvhostd configuration file (INI) and its in-memory form.
 *
 * Owns parsing and validation. A parsed `struct cfg` is immutable and
 * self-contained (no pointers into other objects), so a reload can parse a
 * new one next to the running one and compare them. Knows nothing about
 * DPDK or verbs. Every error message starts with "FILE:LINE: ".
 */
#ifndef IBVHOST_CONFIG_H
#define IBVHOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ibvhost/log.h"

#define CFG_DEFAULT_PATH "/etc/ibvhostd/ibvhostd.conf"
#define CFG_DEFAULT_CTL_SOCKET "/run/ibvhostd/ibvhostd.sock"
#define CFG_DEFAULT_CTL_MODE 0660
#define CFG_DEFAULT_SOCKET_MODE 0660
#define CFG_DEFAULT_FDB_AGING_S 300
#define CFG_DEFAULT_EAL_MEMORY_MB 128
#define CFG_DEFAULT_IB_PORT 1

/* EX_CONFIG from sysexits.h: the exit status for a bad configuration. */
#define CFG_EXIT_CONFIG 78

#define CFG_NAME_MAX 32		/* section names, incl. NUL */
#define CFG_SOCKET_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define CFG_ID_MAX 64		/* user, group, device names */
#define CFG_EAL_ARGS_MAX 512
#define CFG_POLL_CORES_MAX 16
#define CFG_PORTS_MAX 64
#define CFG_SEGMENTS_MAX 64
#define CFG_PORT_FDB_MAX 64

#define CFG_CORE_MAX 1023
#define CFG_MTU_MIN 68
#define CFG_MTU_MAX 9000
/* A segment's MTU unless configured: Ethernet's. */
#define CFG_SEGMENT_MTU_DEFAULT 1500

enum cfg_port_mode {
	CFG_PORT_SERVER, /* the daemon listens, the frontend connects */
	CFG_PORT_CLIENT, /* the frontend listens, the daemon (re)connects */
};

enum cfg_poll_mode {
	CFG_POLL_BUSY,
	CFG_POLL_ADAPTIVE,
};

struct cfg_segment {
	char name[CFG_NAME_MAX];
	uint32_t qkey;
	bool has_mcast_gid;
	uint8_t mcast_gid[16];
	/* The largest IP packet on the segment; every host of the segment
	 * must use the same value (frames above it are dropped). */
	uint16_t mtu;
	bool has_mtu; /* configured; else the default, lowered to what one
		       * message of the fabric carries (Soft-RoCE: 998) */
	unsigned line;
};

/* A static forwarding entry: MAC -> remote port address. */
struct cfg_fdb_entry {
	uint8_t mac[6];
	uint16_t lid;
	uint32_t qpn;
	bool has_gid;
	uint8_t gid[16];
};

struct cfg_port {
	char name[CFG_NAME_MAX];
	char socket_path[CFG_SOCKET_PATH_MAX];
	enum cfg_port_mode mode;
	char segment[CFG_NAME_MAX];
	bool has_mac;
	uint8_t mac[6];
	uint16_t mtu; /* 0: the segment's; else lower, for this guest */
	/* Guest memory the port accepts in one memory table (it is all
	 * registered, so pinned), MB; 0: this host's physical memory. */
	unsigned long long memory_max_mb;
	mode_t socket_mode;	       /* server socket mode, default 0660 */
	char socket_group[CFG_ID_MAX]; /* server socket group, empty: ours */
	unsigned n_fdb;
	struct cfg_fdb_entry fdb[CFG_PORT_FDB_MAX];
	unsigned line;
};

struct cfg {
	char path[4096];

	enum log_level log_level;

	char ctl_socket[CFG_SOCKET_PATH_MAX];
	char ctl_owner[CFG_ID_MAX]; /* empty: the daemon's user */
	char ctl_group[CFG_ID_MAX]; /* empty: the daemon's group */
	mode_t ctl_mode;

	char ib_device[CFG_ID_MAX]; /* empty: first active device */
	uint8_t ib_port;
	int gid_index;

	unsigned main_core;
	unsigned n_poll_cores;
	unsigned poll_cores[CFG_POLL_CORES_MAX];
	enum cfg_poll_mode poll_mode;

	unsigned eal_memory_mb;
	char eal_args[CFG_EAL_ARGS_MAX];

	unsigned fdb_aging_s; /* 0: entries never age */

	unsigned n_segments;
	struct cfg_segment segments[CFG_SEGMENTS_MAX];
	unsigned n_ports;
	struct cfg_port ports[CFG_PORTS_MAX];
};

/* Parse and validate FILE. On success *out owns a new cfg (cfg_free).
 * On failure returns -1 and err holds "FILE:LINE: what is wrong". */
int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen);

/* Same for text in memory; `name` stands for the file name in errors. */
int cfg_parse_string(const char *text, const char *name, struct cfg **out,
		     char *err, size_t errlen);

void cfg_free(struct cfg *cfg);

const struct cfg_segment *cfg_find_segment(const struct cfg *cfg,
					   const char *name);
const struct cfg_port *cfg_find_port(const struct cfg *cfg, const char *name);

/* True when a port would be served identically under both configs: its
 * own settings and its segment's settings are equal. Reload keeps such
 * ports untouched. */
bool cfg_port_unchanged(const struct cfg *a, const struct cfg_port *pa,
			const struct cfg *b, const struct cfg_port *pb);

const char *cfg_port_mode_name(enum cfg_port_mode mode);
const char *cfg_poll_mode_name(enum cfg_poll_mode mode);

/* Helpers shared with the control tools. 0 on success. */
int cfg_parse_mac(const char *s, uint8_t mac[6]);
int cfg_parse_gid(const char *s, uint8_t gid[16]);
void cfg_format_mac(const uint8_t mac[6], char out[18]);

#endif
