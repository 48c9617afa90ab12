/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vhost_guard: see include/ibvhost/vhost_guard.h. */
/* rte_vhost_extern_callback_register() is experimental in DPDK 22.11. */
#define ALLOW_EXPERIMENTAL_API

#include "ibvhost/vhost_guard.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_version.h>
#include <rte_vhost.h>

#include "ibvhost/dp.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"
#include "ibvhost/port_hooks.h"

/* ---- librte_vhost 22.11's message as the hooks receive it ----------------- */

/* The hooks get a `struct vhu_msg_context *` (lib/vhost/vhost_user.h, not
 * installed): the packed VhostUserMsg, then the fds that came with it.
 * DPDK keeps that layout stable for external handlers ("can't be changed
 * carelessly"); we mirror it and pin the version. */
#if RTE_VER_YEAR != 22 || RTE_VER_MONTH != 11
#error "vhost_guard mirrors librte_vhost 22.11's message layout: check lib/vhost/vhost_user.h"
#endif

#define GUARD_MAX_FDS 8		    /* VHOST_MEMORY_MAX_NREGIONS */
#define GUARD_PAYLOAD_SIZE 632	    /* sizeof(VhostUserMsg.payload): crypto */
#define GUARD_NEED_REPLY (1u << 3)  /* VHOST_USER_NEED_REPLY */
#define GUARD_VRING_NOFD (1u << 8)  /* VHOST_USER_VRING_NOFD_MASK */

enum guard_request { /* VhostUserRequest values we look at */
	REQ_GET_FEATURES = 1,
	REQ_SET_FEATURES = 2,
	REQ_SET_OWNER = 3,
	REQ_RESET_OWNER = 4,
	REQ_SET_MEM_TABLE = 5,
	REQ_SET_LOG_BASE = 6,
	REQ_SET_LOG_FD = 7,
	REQ_SET_VRING_KICK = 12,
	REQ_SET_VRING_CALL = 13,
	REQ_SET_VRING_ERR = 14,
	REQ_SET_SLAVE_REQ_FD = 21,
	REQ_GET_INFLIGHT_FD = 31,
	REQ_SET_INFLIGHT_FD = 32,
};

struct guard_region_wire {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct __attribute__((packed)) guard_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct {
			uint32_t nregions;
			uint32_t padding;
			struct guard_region_wire regions[GUARD_MAX_FDS];
		} memory;
		uint8_t raw[GUARD_PAYLOAD_SIZE];
	} payload;
	int fds[GUARD_MAX_FDS];
	int fd_num;
};
_Static_assert(offsetof(struct guard_msg, payload) == 12, "VhostUserMsg header");
_Static_assert(offsetof(struct guard_msg, fds) == 12 + GUARD_PAYLOAD_SIZE,
	       "vhu_msg_context.fds");

/* ---- per-device state ---------------------------------------------------- */

struct guard_region {
	uint64_t gpa, size, uaddr;
};

struct guard_dev {
	struct port *port;
	bool attached;
	bool have_mem;	     /* librte_vhost holds a table we accepted */
	bool mem_pending;    /* SET_MEM_TABLE handed on, outcome not seen yet */
	bool broken;	     /* a table change failed: drop on next message */
	unsigned nregions;
	struct guard_region regions[GUARD_MAX_FDS];
};

static struct guard_dev guard_devs[RTE_MAX_VHOST_DEVICE];
static uint64_t guard_refused_count;

static struct guard_dev *guard_dev(int vid)
{
	if (vid < 0 || vid >= RTE_MAX_VHOST_DEVICE)
		return NULL;
	return &guard_devs[vid];
}

uint64_t vhost_guard_refused(void)
{
	return __atomic_load_n(&guard_refused_count, __ATOMIC_RELAXED);
}

bool vhost_guard_mem_ok(int vid)
{
	struct guard_dev *g = guard_dev(vid);

	/* Devices the guard never saw (none today) are left to the library. */
	return !g || !g->attached || (g->have_mem && !g->broken);
}

/* Refuse a message and drop its connection: close the fds it brought
 * (librte_vhost closes them only for messages nobody handled), and clear
 * NEED_REPLY so that the library closes the connection instead of sending
 * a NACK and carrying on with a device in an unknown state. */
static enum rte_vhost_msg_result guard_refuse(struct guard_dev *g,
					      struct guard_msg *m,
					      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum rte_vhost_msg_result guard_refuse(struct guard_dev *g,
					      struct guard_msg *m,
					      const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("port %s: vhost-user request %" PRIu32 " refused: %s; closing the connection",
		g->port ? g->port->cfg.name : "?", m->request, why);
	for (int i = 0; i < m->fd_num && i < GUARD_MAX_FDS; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		m->fds[i] = -1;
	}
	m->fd_num = 0;
	m->flags &= ~GUARD_NEED_REPLY;
	__atomic_fetch_add(&guard_refused_count, 1, __ATOMIC_RELAXED);
	return RTE_VHOST_MSG_RESULT_ERR;
}

bool vhost_guard_fd_is_eventfd(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* The message is packed: copy its regions out before using them. */
static uint32_t load_regions(const struct guard_msg *m,
			     struct guard_region_wire out[GUARD_MAX_FDS])
{
	uint32_t n = m->payload.memory.nregions;

	if (n > GUARD_MAX_FDS)
		n = GUARD_MAX_FDS;
	memcpy(out, (const uint8_t *)m + offsetof(struct guard_msg, payload) + 8,
	       n * sizeof(out[0]));
	return n;
}

static bool add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

/* The most guest memory a port accepts in one table: its memory_max_mb,
 * else this host's physical memory (all of it is registered, so pinned:
 * a sparse memory file of any size would otherwise be faulted in). */
static uint64_t port_memory_max(const struct port *p)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

	if (p && p->cfg.memory_max_mb)
		return (uint64_t)p->cfg.memory_max_mb << 20;
	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page
				     : UINT64_MAX;
}

/* Every check librte_vhost 22.11 lacks for a table, before it maps it. */
static enum rte_vhost_msg_result check_mem_table(struct guard_dev *g,
						 struct guard_msg *m)
{
	uint32_t n = m->payload.memory.nregions;
	struct guard_region_wire reg[GUARD_MAX_FDS];

	if (n == 0 || n > GUARD_MAX_FDS)
		return guard_refuse(g, m, "SET_MEM_TABLE with %" PRIu32 " regions (1..%d)",
				    n, GUARD_MAX_FDS);
	if (m->size < 8 + n * sizeof(struct guard_region_wire))
		return guard_refuse(g, m, "SET_MEM_TABLE payload of %" PRIu32 " bytes for %" PRIu32 " regions",
				    m->size, n);
	if (m->fd_num != (int)n)
		return guard_refuse(g, m, "SET_MEM_TABLE with %d fds for %" PRIu32 " regions",
				    m->fd_num, n);
	load_regions(m, reg);
	uint64_t total = 0, max = port_memory_max(g->port);

	for (uint32_t i = 0; i < n; i++) {
		const struct guard_region_wire *r = &reg[i];
		struct stat st;

		if (r->memory_size == 0 ||
		    add_overflows(r->guest_phys_addr, r->memory_size) ||
		    add_overflows(r->userspace_addr, r->memory_size) ||
		    add_overflows(r->mmap_offset, r->memory_size))
			return guard_refuse(g, m, "region %" PRIu32 ": size 0x%" PRIx64
					    " with GPA 0x%" PRIx64 ", address 0x%" PRIx64
					    " or offset 0x%" PRIx64 " wraps 2^64",
					    i, r->memory_size, r->guest_phys_addr,
					    r->userspace_addr, r->mmap_offset);
		if (fstat(m->fds[i], &st) != 0)
			return guard_refuse(g, m, "region %" PRIu32 ": fstat: %s", i,
					    strerror(errno));
		if (!S_ISREG(st.st_mode))
			return guard_refuse(g, m, "region %" PRIu32 ": fd is not a memory file (mode 0%o)",
					    i, (unsigned)st.st_mode & S_IFMT);
		if (r->mmap_offset + r->memory_size > (uint64_t)st.st_size)
			return guard_refuse(g, m, "region %" PRIu32 ": offset 0x%" PRIx64
					    " + size 0x%" PRIx64 " beyond its file of %lld bytes"
					    " (would fault when touched)",
					    i, r->mmap_offset, r->memory_size,
					    (long long)st.st_size);
		total += r->memory_size; /* each below 2^64 - its GPA */
		if (total < r->memory_size || total > max)
			return guard_refuse(g, m, "memory table gives %" PRIu64
					    " MB or more (regions 0..%" PRIu32 "), above the "
					    "port's limit of %" PRIu64 " MB (memory_max_mb, "
					    "default: this host's memory)", total >> 20, i,
					    max >> 20);
		for (uint32_t j = 0; j < i; j++) {
			const struct guard_region_wire *o = &reg[j];

			if (r->guest_phys_addr < o->guest_phys_addr + o->memory_size &&
			    o->guest_phys_addr < r->guest_phys_addr + r->memory_size)
				return guard_refuse(g, m, "regions %" PRIu32 " and %" PRIu32
						    " overlap in guest physical memory", j, i);
		}
	}
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static bool mem_table_changed(const struct guard_dev *g, const struct guard_msg *m)
{
	struct guard_region_wire reg[GUARD_MAX_FDS];

	if (!g->have_mem || g->nregions != load_regions(m, reg))
		return true;
	for (unsigned i = 0; i < g->nregions; i++) {
		const struct guard_region_wire *r = &reg[i];

		if (g->regions[i].gpa != r->guest_phys_addr ||
		    g->regions[i].size != r->memory_size ||
		    g->regions[i].uaddr != r->userspace_addr)
			return true;
	}
	return false;
}

static bool takes_fds(uint32_t request)
{
	switch (request) {
	case REQ_SET_MEM_TABLE:
	case REQ_SET_VRING_KICK:
	case REQ_SET_VRING_CALL:
	case REQ_SET_VRING_ERR:
	case REQ_SET_SLAVE_REQ_FD:
		return true;
	default:
		return false;
	}
}

static enum rte_vhost_msg_result guard_pre(int vid, void *msg)
{
	struct guard_dev *g = guard_dev(vid);
	struct guard_msg *m = msg;

	if (!g || !g->attached)
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	if (m->fd_num < 0 || m->fd_num > GUARD_MAX_FDS)
		m->fd_num = 0; /* not ours to close: the library's read failed */
	if (g->mem_pending) {
		/* The previous SET_MEM_TABLE never reached the post hook:
		 * librte_vhost failed it, dropped the old table and kept the
		 * old ring pointers. Nothing valid can follow. */
		g->mem_pending = false;
		g->broken = true;
	}
	if (g->broken)
		return guard_refuse(g, m, "the memory table could not be applied");
	if (m->fd_num > 0 && !takes_fds(m->request))
		return guard_refuse(g, m, "%d fds on a message that takes none",
				    m->fd_num);

	switch (m->request) {
	case REQ_SET_MEM_TABLE: {
		enum rte_vhost_msg_result r = check_mem_table(g, m);
		if (r != RTE_VHOST_MSG_RESULT_NOT_HANDLED)
			return r;
		if (!mem_table_changed(g, m))
			return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
		/* librte_vhost unmaps the old table as soon as we return:
		 * every work request pointing into it must be done first. */
		port_hook_mem_changing(g->port, vid);
		g->have_mem = false;
		g->mem_pending = true;
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	}
	case REQ_SET_VRING_KICK:
	case REQ_SET_VRING_CALL:
	case REQ_SET_VRING_ERR:
		if (m->payload.u64 & GUARD_VRING_NOFD)
			return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
		if (m->fd_num != 1)
			return guard_refuse(g, m, "ring fd message with %d fds", m->fd_num);
		if (!vhost_guard_fd_is_eventfd(m->fds[0]))
			return guard_refuse(g, m, "ring %u: the %s fd is not an eventfd",
					    (unsigned)(m->payload.u64 & 0xff),
					    m->request == REQ_SET_VRING_KICK ? "kick" :
					    m->request == REQ_SET_VRING_CALL ? "call" : "error");
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	case REQ_GET_INFLIGHT_FD:
	case REQ_SET_INFLIGHT_FD:
		return guard_refuse(g, m, "inflight fd requested, INFLIGHT_SHMFD was not negotiated");
	case REQ_SET_LOG_BASE:
	case REQ_SET_LOG_FD:
		return guard_refuse(g, m, "dirty log requested, LOG_ALL was not negotiated");
	default:
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	}
}

static enum rte_vhost_msg_result guard_post(int vid, void *msg)
{
	struct guard_dev *g = guard_dev(vid);
	struct guard_msg *m = msg;

	if (!g || !g->attached || m->request != REQ_SET_MEM_TABLE ||
	    !g->mem_pending)
		return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
	/* librte_vhost applied the table (this hook runs on success only). */
	g->mem_pending = false;
	g->have_mem = true;
	struct guard_region_wire reg[GUARD_MAX_FDS];
	g->nregions = load_regions(m, reg);
	for (unsigned i = 0; i < g->nregions; i++) {
		g->regions[i].gpa = reg[i].guest_phys_addr;
		g->regions[i].size = reg[i].memory_size;
		g->regions[i].uaddr = reg[i].userspace_addr;
	}
	port_hook_mem_changed(g->port, vid);
	return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

static const struct rte_vhost_user_extern_ops guard_ops = {
	.pre_msg_handle = guard_pre,
	.post_msg_handle = guard_post,
};

/* ---- the connection's socket ------------------------------------------- */

static bool sun_path_is(const struct sockaddr_un *sa, socklen_t len,
			const char *path)
{
	size_t plen = strlen(path);

	return sa->sun_family == AF_UNIX &&
	       len >= offsetof(struct sockaddr_un, sun_path) + plen &&
	       strncmp(sa->sun_path, path, sizeof(sa->sun_path)) == 0;
}

/* librte_vhost does not hand out the connection's fd. It is the one UNIX
 * stream socket of ours connected through the port's path: accepted on it
 * (server mode: local name = path, not listening) or connected to it
 * (client mode: peer name = path). Calls fn for each such socket (older
 * connections of the port, not yet torn down, too); returns how many
 * fn accepted, or -1. */
static int for_each_connection(const char *path, bool (*fn)(int fd))
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_un sa;
		socklen_t len = sizeof(sa);
		int fd, listening = 0;
		socklen_t ol = sizeof(listening);

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) != 0 ||
		    listening)
			continue;
		memset(&sa, 0, sizeof(sa));
		bool match = getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
			     sun_path_is(&sa, len, path);
		if (!match) {
			len = sizeof(sa);
			memset(&sa, 0, sizeof(sa));
			match = getpeername(fd, (struct sockaddr *)&sa, &len) == 0 &&
				sun_path_is(&sa, len, path);
		}
		if (match && fn(fd))
			n++;
	}
	closedir(d);
	return n;
}

static bool set_timeouts(int fd)
{
	struct timeval tv = {
		.tv_sec = VHOST_GUARD_IO_TIMEOUT_MS / 1000,
		.tv_usec = (VHOST_GUARD_IO_TIMEOUT_MS % 1000) * 1000,
	};

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	       setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0;
}

/* The peer has not hung up. */
static bool is_live(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 0 ||
	       !(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int vhost_guard_live_connections(const char *path)
{
	return for_each_connection(path, is_live);
}

int vhost_guard_attach(struct port *p, int vid)
{
	struct guard_dev *g = guard_dev(vid);

	if (!g) {
		log_err("port %s: device id %d out of range", p->cfg.name, vid);
		return -1;
	}
	memset(g, 0, sizeof(*g));
	g->port = p;
	if (rte_vhost_extern_callback_register(vid, &guard_ops, NULL) != 0) {
		log_err("port %s: cannot install the vhost-user message guard; refusing the connection",
			p->cfg.name);
		return -1;
	}
	g->attached = true;
	if (for_each_connection(p->cfg.socket_path, set_timeouts) <= 0)
		log_warn("port %s: connection socket not found: a frontend withholding a message's payload can stall all ports",
			 p->cfg.name);
	return 0;
}

void vhost_guard_detach(int vid)
{
	struct guard_dev *g = guard_dev(vid);

	if (g)
		memset(g, 0, sizeof(*g));
}
