/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vhost-user frontend: messages, negotiation, memory table, ring start/stop. */
#include "vhu.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum vhu_reply { R_NONE, R_U64, R_STATE };

/* One row per request: its name and what the backend answers. */
static const struct {
	const char *name;
	enum vhu_reply reply;
} req_table[VHU_REQ_MAX] = {
	[VHU_GET_FEATURES] = { "GET_FEATURES", R_U64 },
	[VHU_SET_FEATURES] = { "SET_FEATURES", R_NONE },
	[VHU_SET_OWNER] = { "SET_OWNER", R_NONE },
	[VHU_RESET_OWNER] = { "RESET_OWNER", R_NONE },
	[VHU_SET_MEM_TABLE] = { "SET_MEM_TABLE", R_NONE },
	[VHU_SET_LOG_BASE] = { "SET_LOG_BASE", R_NONE },
	[VHU_SET_LOG_FD] = { "SET_LOG_FD", R_NONE },
	[VHU_SET_VRING_NUM] = { "SET_VRING_NUM", R_NONE },
	[VHU_SET_VRING_ADDR] = { "SET_VRING_ADDR", R_NONE },
	[VHU_SET_VRING_BASE] = { "SET_VRING_BASE", R_NONE },
	[VHU_GET_VRING_BASE] = { "GET_VRING_BASE", R_STATE },
	[VHU_SET_VRING_KICK] = { "SET_VRING_KICK", R_NONE },
	[VHU_SET_VRING_CALL] = { "SET_VRING_CALL", R_NONE },
	[VHU_SET_VRING_ERR] = { "SET_VRING_ERR", R_NONE },
	[VHU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", R_U64 },
	[VHU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", R_NONE },
	[VHU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", R_U64 },
	[VHU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", R_NONE },
	[VHU_SEND_RARP] = { "SEND_RARP", R_NONE },
	[VHU_NET_SET_MTU] = { "NET_SET_MTU", R_NONE },
};

const char *vhu_req_name(uint32_t req)
{
	if (req < VHU_REQ_MAX && req_table[req].name)
		return req_table[req].name;
	return "UNKNOWN";
}

static int wait_fd(int fd, short ev, unsigned timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, (int)timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

int vhu_msg_send(int fd, uint32_t req, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds)
{
	struct vhu_msg_hdr h = { req, flags, size };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = payload ? 2 : 1 };

	if (nfds > VHU_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	size_t want = sizeof(h) + (payload ? size : 0);
	ssize_t n;
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != want)
		return -EIO;
	return 0;
}

static int read_full(int fd, void *buf, size_t len, unsigned timeout_ms)
{
	uint8_t *p = buf;
	uint64_t deadline = vhu_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (len) {
		uint64_t now = vhu_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		int r = wait_fd(fd, POLLIN, (unsigned)((deadline - now) / 1000000ull) + 1);
		if (r)
			return r;
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vhu_msg_recv(int fd, struct vhu_msg *m, unsigned timeout_ms)
{
	int r = read_full(fd, &m->hdr, sizeof(m->hdr), timeout_ms);

	if (r)
		return r;
	if (m->hdr.size > sizeof(m->p))
		return -EMSGSIZE;
	return read_full(fd, &m->p, m->hdr.size, timeout_ms);
}

bool vhu_peer_closed(struct vhu_dev *d, unsigned wait_ms)
{
	struct pollfd p = { .fd = d->sock, .events = POLLIN | POLLRDHUP };

	if (d->closed || d->sock < 0)
		return true;
	if (poll(&p, 1, (int)wait_ms) <= 0)
		return false;
	if (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) {
		d->closed = true;
		return true;
	}
	char c;
	ssize_t n = recv(d->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0) {
		d->closed = true;
		return true;
	}
	return false;
}

int vhu_request(struct vhu_dev *d, uint32_t req, const void *payload,
		uint32_t size, const int *fds, unsigned nfds,
		struct vhu_msg *reply)
{
	enum vhu_reply rt = req < VHU_REQ_MAX ? req_table[req].reply : R_NONE;
	bool ack = rt == R_NONE && (d->proto & (1ull << VHU_PF_REPLY_ACK));
	uint32_t flags = VHU_HDR_VERSION | (ack ? VHU_HDR_F_NEED_REPLY : 0);
	struct vhu_msg tmp;
	int r;

	if (d->closed)
		return -ECONNRESET;
	r = vhu_msg_send(d->sock, req, flags, payload, size, fds, nfds);
	if (r) {
		snprintf(d->err, sizeof(d->err), "%s: send: %s",
			 vhu_req_name(req), strerror(-r));
		if (r == -EPIPE || r == -ECONNRESET)
			d->closed = true;
		return r;
	}
	if (rt == R_NONE && !ack)
		return 0;
	if (!reply)
		reply = &tmp;
	r = vhu_msg_recv(d->sock, reply, d->o.timeout_ms);
	if (r) {
		snprintf(d->err, sizeof(d->err), "%s: no reply: %s",
			 vhu_req_name(req), strerror(-r));
		if (r == -ECONNRESET)
			d->closed = true;
		return r;
	}
	if (reply->hdr.request != req || !(reply->hdr.flags & VHU_HDR_F_REPLY)) {
		snprintf(d->err, sizeof(d->err),
			 "%s: reply is request %u flags 0x%x", vhu_req_name(req),
			 reply->hdr.request, reply->hdr.flags);
		return -EPROTO;
	}
	uint32_t want = rt == R_STATE ? sizeof(struct vhu_state_wire) : 8;
	if (reply->hdr.size != want) {
		snprintf(d->err, sizeof(d->err), "%s: reply size %u, want %u",
			 vhu_req_name(req), reply->hdr.size, want);
		return -EPROTO;
	}
	if (ack && reply->p.u64 != 0) {
		snprintf(d->err, sizeof(d->err), "%s: backend NACK %llu",
			 vhu_req_name(req), (unsigned long long)reply->p.u64);
		return -EREMOTEIO;
	}
	return 0;
}

static int connect_or_accept(struct vhu_dev *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const struct vhu_opts *o = &d->o;

	if (strlen(o->socket) >= sizeof(sa.sun_path)) {
		snprintf(d->err, sizeof(d->err), "socket path too long: %s",
			 o->socket);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, o->socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (o->listen) {
		struct stat sb;
		/* A stale socket from an earlier run; never remove other files. */
		if (lstat(o->socket, &sb) == 0 && S_ISSOCK(sb.st_mode))
			unlink(o->socket);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fd, 1) < 0) {
			int e = -errno;
			snprintf(d->err, sizeof(d->err), "listen on %s: %s",
				 o->socket, strerror(-e));
			close(fd);
			return e;
		}
		int r = wait_fd(fd, POLLIN, o->timeout_ms);
		if (r) {
			snprintf(d->err, sizeof(d->err),
				 "no backend connected to %s within %u ms",
				 o->socket, o->timeout_ms);
			close(fd);
			return r;
		}
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		int e = -errno;
		close(fd);
		unlink(o->socket);
		if (c < 0)
			return e;
		d->sock = c;
		return 0;
	}
	/* The backend may still be starting: retry until the timeout. */
	uint64_t deadline = vhu_now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;
		if ((e != ENOENT && e != ECONNREFUSED) || vhu_now_ns() >= deadline) {
			snprintf(d->err, sizeof(d->err), "connect to %s: %s",
				 o->socket, strerror(e));
			close(fd);
			return -e;
		}
		usleep(50000);
	}
	d->sock = fd;
	return 0;
}

int vhu_dev_connect(struct vhu_dev *d, const struct vhu_opts *o)
{
	memset(d, 0, sizeof(*d));
	d->o = *o;
	d->sock = -1;
	d->vq[0].kickfd = d->vq[0].callfd = -1;
	d->vq[1].kickfd = d->vq[1].callfd = -1;
	int r = vhu_mem_init(&d->mem, (size_t)o->mem_mb << 20, o->regions);
	if (r) {
		snprintf(d->err, sizeof(d->err), "guest memory %u MB: %s",
			 o->mem_mb, strerror(-r));
		return r;
	}
	return connect_or_accept(d);
}

int vhu_dev_negotiate(struct vhu_dev *d)
{
	struct vhu_msg m;
	int r;

	if ((r = vhu_request(d, VHU_SET_OWNER, NULL, 0, NULL, 0, NULL)))
		return r;
	if ((r = vhu_request(d, VHU_GET_FEATURES, NULL, 0, NULL, 0, &m)))
		return r;
	d->features_offered = m.p.u64;
	d->features = d->features_offered & d->o.features_mask;
	if (d->features & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		r = vhu_request(d, VHU_GET_PROTOCOL_FEATURES, NULL, 0, NULL, 0, &m);
		if (r)
			return r;
		d->proto_offered = m.p.u64;
		uint64_t want = d->proto_offered &
				((1ull << VHU_PF_REPLY_ACK) | (1ull << VHU_PF_NET_MTU));
		r = vhu_request(d, VHU_SET_PROTOCOL_FEATURES, &want, 8, NULL, 0,
				NULL);
		if (r)
			return r;
		d->proto = want;
	}
	r = vhu_request(d, VHU_SET_FEATURES, &d->features, 8, NULL, 0, NULL);
	if (r)
		return r;
	if ((d->features & (1ull << 3)) && (d->proto & (1ull << VHU_PF_NET_MTU))) {
		uint64_t mtu = d->o.mtu;
		r = vhu_request(d, VHU_NET_SET_MTU, &mtu, 8, NULL, 0, NULL);
		if (r)
			return r;
	}
	d->mrg = d->features & (1ull << 15);
	d->hdr_len = (d->mrg || (d->features & (1ull << 32))) ? 12 : 10;
	return 0;
}

int vhu_dev_set_mem_table(struct vhu_dev *d)
{
	struct vhu_mem_wire w;
	int fds[2];

	memset(&w, 0, sizeof(w));
	w.nregions = d->mem.nregions;
	for (unsigned i = 0; i < d->mem.nregions; i++) {
		w.r[i].gpa = d->mem.r[i].gpa;
		w.r[i].size = d->mem.r[i].size;
		w.r[i].uaddr = (uint64_t)(uintptr_t)d->mem.r[i].va;
		w.r[i].mmap_offset = d->mem.r[i].mmap_offset;
		fds[i] = d->mem.fd;
	}
	return vhu_request(d, VHU_SET_MEM_TABLE, &w,
			   8 + w.nregions * sizeof(w.r[0]), fds, w.nregions,
			   NULL);
}

int vhu_dev_start_ring(struct vhu_dev *d, unsigned q)
{
	struct vhu_vq *vq = &d->vq[q];
	struct vhu_state_wire st = { q, vq->num };
	struct vhu_addr_wire a = {
		.index = q,
		.desc = (uint64_t)(uintptr_t)vq->desc,
		.used = (uint64_t)(uintptr_t)vq->used,
		.avail = (uint64_t)(uintptr_t)vq->avail,
	};
	uint64_t idx = q;
	int r;

	if ((r = vhu_request(d, VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0, NULL)))
		return r;
	st.num = vq->start_base ? vq->start_base : vq->last_used;
	if ((r = vhu_request(d, VHU_SET_VRING_BASE, &st, sizeof(st), NULL, 0, NULL)))
		return r;
	if ((r = vhu_request(d, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL)))
		return r;
	if ((r = vhu_request(d, VHU_SET_VRING_CALL, &idx, 8, &vq->callfd, 1, NULL)))
		return r;
	if ((r = vhu_request(d, VHU_SET_VRING_KICK, &idx, 8, &vq->kickfd, 1, NULL)))
		return r;
	if (d->features & (1ull << VHU_F_PROTOCOL_FEATURES)) {
		st.num = 1;
		r = vhu_request(d, VHU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0,
				NULL);
	}
	return r;
}

int vhu_dev_open(struct vhu_dev *d, const struct vhu_opts *o)
{
	int r = vhu_dev_connect(d, o);

	if (r)
		return r;
	if ((r = vhu_dev_negotiate(d)))
		return r;
	if ((r = vhu_dev_set_mem_table(d)))
		return r;
	if ((r = vhu_net_init(d)))
		return r;
	/* Buffers first, so the backend finds RX buffers as soon as it starts. */
	vhu_net_rx_refill(d);
	for (unsigned q = 0; q < 2; q++)
		if ((r = vhu_dev_start_ring(d, q)))
			return r;
	return 0;
}

int vhu_dev_stop(struct vhu_dev *d)
{
	struct vhu_msg m;
	int r = 0;

	if (d->closed || d->sock < 0)
		return -ECONNRESET;
	for (unsigned q = 0; q < 2 && !r; q++) {
		struct vhu_state_wire st = { q, 0 };
		if (d->features & (1ull << VHU_F_PROTOCOL_FEATURES))
			r = vhu_request(d, VHU_SET_VRING_ENABLE, &st, sizeof(st),
					NULL, 0, NULL);
	}
	for (unsigned q = 0; q < 2 && !r; q++) {
		struct vhu_state_wire st = { q, 0 };
		r = vhu_request(d, VHU_GET_VRING_BASE, &st, sizeof(st), NULL, 0, &m);
		if (!r)
			d->base_at_stop[q] = m.p.state.num;
	}
	d->stopped = r == 0;
	return r;
}

void vhu_dev_close(struct vhu_dev *d)
{
	if (d->sock >= 0)
		close(d->sock);
	d->sock = -1;
	vhu_net_fini(d);
	vhu_vq_fini(&d->vq[0]);
	vhu_vq_fini(&d->vq[1]);
	vhu_mem_fini(&d->mem);
}
