/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_server: the control socket on the main libev loop; see
 * include/ibvhost/ctl.h.
 *
 * Each connection has a bounded line buffer; a line longer than
 * CTL_REQUEST_MAX gets an error reply and is skipped up to its newline.
 * Replies are queued and written when the socket is writable; a client
 * that does not read its replies is dropped once CTL_REPLY_BACKLOG_MAX is
 * queued. Peers are checked with SO_PEERCRED when they connect. A timer
 * samples the ports' counters for their rates while the socket is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "ibvhost/ctl.h"
#include "ibvhost/log.h"

struct ctl_conn {
	ev_io rio, wio;
	int fd;
	uid_t uid;
	char rbuf[CTL_REQUEST_MAX + 1];
	size_t rlen;
	bool skipping; /* inside an oversized line: drop up to its newline */
	bool closing;  /* peer sent EOF: close when replies are flushed */
	char *wbuf;
	size_t wlen, wcap;
	struct ctl_conn *next;
};

static struct {
	struct ev_loop *loop;
	ev_io accept_io;
	ev_timer rates_timer;
	int fd;
	char path[CFG_SOCKET_PATH_MAX];
	uid_t owner_uid;
	gid_t group_gid;
	struct ctl_conn *conns;
	unsigned n_conns;
} srv = { .fd = -1 };

static void conn_close(struct ctl_conn *c)
{
	ev_io_stop(srv.loop, &c->rio);
	ev_io_stop(srv.loop, &c->wio);
	close(c->fd);
	for (struct ctl_conn **pp = &srv.conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	srv.n_conns--;
	free(c->wbuf);
	free(c);
}

/* Queue a reply line. Returns -1 if the client is hopelessly behind. */
static int conn_queue(struct ctl_conn *c, const char *s)
{
	size_t n = strlen(s);

	if (c->wlen + n + 1 > CTL_REPLY_BACKLOG_MAX)
		return -1;
	if (c->wlen + n + 1 > c->wcap) {
		size_t cap = (c->wlen + n + 1) * 2;
		char *nb = realloc(c->wbuf, cap);
		if (!nb)
			return -1;
		c->wbuf = nb;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, s, n);
	c->wbuf[c->wlen + n] = '\n';
	c->wlen += n + 1;
	ev_io_start(srv.loop, &c->wio);
	return 0;
}

static int conn_reply(struct ctl_conn *c, const char *line, size_t len)
{
	char *reply = ctl_handle_request(line, len);
	int rc = conn_queue(c, reply ? reply : "{\"ok\":false,\"error\":\"out of memory\"}");
	free(reply);
	return rc;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;
	(void)loop;
	(void)revents;

	while (c->wlen > 0) {
		ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(c);
			return;
		}
		memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
		c->wlen -= (size_t)n;
	}
	ev_io_stop(srv.loop, &c->wio);
	if (c->closing)
		conn_close(c);
}

/* Handle every complete line in the buffer. */
static int conn_process(struct ctl_conn *c)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(c->rbuf + start, '\n', c->rlen - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (c->rbuf + start));
		if (c->skipping) {
			c->skipping = false; /* end of the oversized line */
		} else if (len > 0 && conn_reply(c, c->rbuf + start, len) != 0) {
			return -1;
		}
		start += len + 1;
	}
	memmove(c->rbuf, c->rbuf + start, c->rlen - start);
	c->rlen -= start;
	if (c->rlen >= CTL_REQUEST_MAX + 1) {
		/* A full buffer without a newline: too long. Answer once. */
		if (!c->skipping) {
			char *r = ctl_handle_request(c->rbuf, c->rlen);
			int rc = conn_queue(c, r ? r : "{\"ok\":false}");
			free(r);
			if (rc != 0)
				return -1;
		}
		c->skipping = true;
		c->rlen = 0;
	}
	return 0;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;
	(void)loop;
	(void)revents;

	ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c);
		return;
	}
	if (n == 0) {
		ev_io_stop(srv.loop, &c->rio);
		c->closing = true;
		if (c->wlen == 0)
			conn_close(c);
		return;
	}
	c->rlen += (size_t)n;
	if (conn_process(c) != 0) {
		log_warn("control: client uid %u does not read its replies; dropped",
			 (unsigned)c->uid);
		conn_close(c);
	}
}

static bool peer_allowed(int fd, uid_t *uid_out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[64];
	socklen_t glen = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	*uid_out = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid() || cred.uid == srv.owner_uid ||
	    cred.gid == srv.group_gid)
		return true;
	/* Supplementary groups of the peer (Linux >= 4.13). */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
		for (size_t i = 0; i < glen / sizeof(gid_t); i++)
			if (groups[i] == srv.group_gid)
				return true;
	return false;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)w;
	(void)revents;
	int fd = accept4(srv.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	uid_t uid = (uid_t)-1;

	if (fd < 0)
		return;
	if (!peer_allowed(fd, &uid)) {
		static const char msg[] = "{\"ok\":false,\"error\":\"permission denied\"}\n";
		ssize_t r = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;
		log_warn("control: refused a client with uid %u", (unsigned)uid);
		close(fd);
		return;
	}
	if (srv.n_conns >= CTL_CONNS_MAX) {
		static const char msg[] = "{\"ok\":false,\"error\":\"too many control connections\"}\n";
		ssize_t r = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;
		close(fd);
		return;
	}
	struct ctl_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->uid = uid;
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(loop, &c->rio);
	c->next = srv.conns;
	srv.conns = c;
	srv.n_conns++;
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rates are sampled on the control plane's own clock: the counters the
 * data path already keeps, read once per interval. */
static void on_rates_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	ctl_rates_sample(monotonic_s());
}

static int resolve_ids(const struct cfg *cfg, uid_t *uid, gid_t *gid,
		       char *err, size_t errlen)
{
	*uid = geteuid();
	*gid = getegid();
	if (cfg->ctl_owner[0]) {
		struct passwd *pw = getpwnam(cfg->ctl_owner);
		char *end;
		unsigned long v = strtoul(cfg->ctl_owner, &end, 10);
		if (pw)
			*uid = pw->pw_uid;
		else if (*end == '\0')
			*uid = (uid_t)v;
		else {
			snprintf(err, errlen, "control_owner %s: no such user", cfg->ctl_owner);
			return -1;
		}
	}
	if (cfg->ctl_group[0]) {
		struct group *gr = getgrnam(cfg->ctl_group);
		char *end;
		unsigned long v = strtoul(cfg->ctl_group, &end, 10);
		if (gr)
			*gid = gr->gr_gid;
		else if (*end == '\0')
			*gid = (gid_t)v;
		else {
			snprintf(err, errlen, "control_group %s: no such group", cfg->ctl_group);
			return -1;
		}
	}
	return 0;
}

int ctl_server_open(struct ev_loop *loop, const struct cfg *cfg, char *err,
		    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (resolve_ids(cfg, &srv.owner_uid, &srv.group_gid, err, errlen) != 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->ctl_socket);
	if (lstat(cfg->ctl_socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s exists and is not a socket",
				 cfg->ctl_socket);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "control socket %s is in use (another ibvhostd running?)",
				 cfg->ctl_socket);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(cfg->ctl_socket); /* stale, from a process that died */
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	/* Bind under umask 0177 (socket 0600), then widen to the configured
	 * mode: never more open than configured, not even for a moment. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "control socket %s: bind: %s (does the directory exist?)",
			 cfg->ctl_socket, strerror(e));
		goto fail_close;
	}
	if ((cfg->ctl_owner[0] || cfg->ctl_group[0]) &&
	    chown(cfg->ctl_socket, srv.owner_uid, srv.group_gid) != 0) {
		snprintf(err, errlen, "control socket %s: chown %u:%u: %s", cfg->ctl_socket,
			 (unsigned)srv.owner_uid, (unsigned)srv.group_gid, strerror(errno));
		goto fail_unlink;
	}
	if (chmod(cfg->ctl_socket, cfg->ctl_mode) != 0) {
		snprintf(err, errlen, "control socket %s: chmod %04o: %s", cfg->ctl_socket,
			 (unsigned)cfg->ctl_mode, strerror(errno));
		goto fail_unlink;
	}
	if (listen(fd, 16) != 0) {
		snprintf(err, errlen, "control socket %s: listen: %s", cfg->ctl_socket,
			 strerror(errno));
		goto fail_unlink;
	}
	srv.loop = loop;
	srv.fd = fd;
	snprintf(srv.path, sizeof(srv.path), "%s", cfg->ctl_socket);
	ev_io_init(&srv.accept_io, on_accept, fd, EV_READ);
	ev_io_start(loop, &srv.accept_io);
	ctl_rates_sample(monotonic_s());
	ev_timer_init(&srv.rates_timer, on_rates_timer, CTL_RATE_INTERVAL_S,
		      CTL_RATE_INTERVAL_S);
	ev_timer_start(loop, &srv.rates_timer);
	return 0;

fail_unlink:
	unlink(cfg->ctl_socket);
fail_close:
	close(fd);
	return -1;
}

void ctl_server_close(void)
{
	if (srv.fd < 0)
		return;
	while (srv.conns)
		conn_close(srv.conns);
	ev_io_stop(srv.loop, &srv.accept_io);
	ev_timer_stop(srv.loop, &srv.rates_timer);
	ctl_rates_reset();
	close(srv.fd);
	srv.fd = -1;
	unlink(srv.path);
}
