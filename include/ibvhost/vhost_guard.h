/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * vhost_guard: defences at the vhost-user message level, in front of
 * librte_vhost 22.11.
 *
 * Owns a per-connection pre/post message hook pair (librte_vhost's
 * rte_vhost_extern_callback_register, installed from new_connection, as
 * SPDK does) and a receive/send timeout on the connection's socket. It
 * refuses, logs and drops the connection for what the library accepts but
 * cannot survive, and quiesces the data path around a memory-table change
 * on a running device (the library unmaps the old regions without telling
 * an application that does not use its async copy):
 *
 *  - SET_MEM_TABLE: payload shorter than its region count says, an fd count
 *    different from the region count, a region whose fd is not a regular
 *    file (memfd, tmpfs, hugetlbfs) or whose mmap_offset + size lies beyond
 *    the file (SIGBUS on first touch), sums that wrap 2^64, zero-sized or
 *    GPA-overlapping regions;
 *  - a SET_MEM_TABLE that librte_vhost failed to apply (the device then has
 *    no memory table but keeps its stale ring pointers): the next message
 *    drops the connection;
 *  - SET_VRING_CALL / SET_VRING_KICK / SET_VRING_ERR with an fd that is not
 *    an eventfd (a pipe blocks the polling core once full);
 *  - GET/SET_INFLIGHT_FD, SET_LOG_BASE, SET_LOG_FD: never negotiated
 *    (INFLIGHT_SHMFD and LOG_ALL are declined);
 *  - fds on a message that takes none (CVE-2019-14818 class; the library
 *    checks too, after this hook).
 *
 * Threads: the hooks and vhost_guard_attach/detach run on librte_vhost's
 * control thread only.
 */
#ifndef IBVHOST_VHOST_GUARD_H
#define IBVHOST_VHOST_GUARD_H

#include <stdbool.h>
#include <stdint.h>

struct port;

/* Upper bound for one vhost-user message's payload to arrive once its
 * header has: librte_vhost reads the payload with a blocking read() on its
 * only control thread, so a frontend that withholds it would stall every
 * other port's negotiation. The connection is dropped after this long. */
#define VHOST_GUARD_IO_TIMEOUT_MS 1000u

/* A new connection (device vid) on port p: install the hooks and the
 * socket timeouts. 0 or -1 (logged; the caller refuses the connection). */
int vhost_guard_attach(struct port *p, int vid);
/* The connection is gone: forget the device's state. */
void vhost_guard_detach(int vid);
/* False while the device has no usable memory table (none yet, or a
 * refused or failed change): the data path must not start. */
bool vhost_guard_mem_ok(int vid);
/* Connections of the port's socket path whose peer has not hung up
 * (including one just accepted), or -1. */
int vhost_guard_live_connections(const char *path);
/* Connections the guard dropped since start (all ports). */
uint64_t vhost_guard_refused(void);

/* True if fd is an eventfd: the only kind of call/kick fd the polling
 * core may write to or sleep on (a pipe blocks once full). */
bool vhost_guard_fd_is_eventfd(int fd);

#endif
