/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * cmocka tests of the fabric across processes (each process is a node):
 * multicast to every attached QP on every node, a completion channel woken
 * from another process, rdma_cm multicast joins and SIDR, fault injection
 * through the control file, and reclaim of a node killed with SIGKILL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/ib.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ibemu.h"
#include "test_util.h"

#define GRH 40u
#define MC_QKEY 0x0badcafeu

static char fabric[64];

/* ---- a child process as the second node; talks over two pipes ---- */

struct peer {
	pid_t pid;
	int to_child, from_child;
};

static int rd_u32(int fd, uint32_t *v)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1)
		return -1;
	return read(fd, v, sizeof(*v)) == (ssize_t)sizeof(*v) ? 0 : -1;
}

static void wr_u32(int fd, uint32_t v)
{
	(void)!write(fd, &v, sizeof(v));
}

static void peer_start(struct peer *p, void (*fn)(int in, int out))
{
	int a[2], b[2];

	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		close(a[1]);
		close(b[0]);
		alarm(20);
		fn(a[0], b[1]);
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	p->to_child = a[1];
	p->from_child = b[0];
}

static int peer_wait(struct peer *p)
{
	int st = 0;

	close(p->to_child);
	close(p->from_child);
	for (int i = 0; i < 500; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	return -1;
}

/* Child: a QP attached to the group; arms its CQ and waits on the channel
 * fd for the parent's multicast; reports the payload's first word. */
static void mc_child(int in, int out)
{
	struct tu_node n;
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, [15] = 7 } };
	struct ibv_cq *ecq;
	void *ectx;
	struct ibv_wc wc;
	uint32_t go;

	if (tu_open(&n, 64, 1))
		_exit(2);
	struct ibv_qp *qp = tu_qp(&n, MC_QKEY, 0, 0, 8);
	if (!qp || ibv_attach_mcast(qp, &mgid, 0) || tu_post_recv(qp, n.mr, n.buf, 4096, 1) ||
	    ibv_req_notify_cq(n.cq, 0))
		_exit(3);
	wr_u32(out, n.lid);
	struct pollfd p = { .fd = n.ch->fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || ibv_get_cq_event(n.ch, &ecq, &ectx))
		_exit(4);
	ibv_ack_cq_events(ecq, 1);
	if (tu_poll(n.cq, &wc, 1, 1000) != 1 || wc.status != IBV_WC_SUCCESS ||
	    !(wc.wc_flags & IBV_WC_GRH))
		_exit(5);
	uint32_t word;
	memcpy(&word, n.buf + GRH, 4);
	wr_u32(out, word);
	wr_u32(out, wc.slid);
	rd_u32(in, &go);
	ibv_detach_mcast(qp, &mgid, 0);
	ibv_destroy_qp(qp);
	tu_close(&n);
}

static void test_mcast_every_node(void **state)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, [15] = 7 } };
	struct peer p;
	struct tu_node n;
	struct ibv_wc wc[4];
	uint32_t child_lid, word, slid;

	(void)state;
	peer_start(&p, mc_child);
	assert_int_equal(tu_open(&n, 64, 0), 0);
	assert_int_equal(rd_u32(p.from_child, &child_lid), 0);
	assert_int_not_equal(child_lid, n.lid);
	struct ibv_qp *a = tu_qp(&n, MC_QKEY, 1, 0, 8), *b = tu_qp(&n, MC_QKEY, 0, 0, 8);
	assert_int_equal(ibv_attach_mcast(a, &mgid, 0), 0);
	assert_int_equal(ibv_attach_mcast(b, &mgid, 0), 0);
	assert_int_equal(tu_post_recv(a, n.mr, n.buf, 4096, 1), 0);
	assert_int_equal(tu_post_recv(b, n.mr, n.buf + 8192, 4096, 2), 0);
	struct ibv_ah *ah = tu_ah(&n, 0, &mgid); /* by MGID; MLID found by the fabric */
	assert_non_null(ah);
	uint32_t magic = 0x5a5a1234;
	memcpy(n.buf + 65536, &magic, 4);
	assert_int_equal(tu_send(a, ah, 0xFFFFFF, MC_QKEY, n.buf + 65536, 64,
				 n.mr->lkey, 0, 3), 0);
	/* the sender's own node: both QPs, the sending one included */
	assert_int_equal(tu_poll(n.cq, wc, 3, 2000), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wc[i].status, IBV_WC_SUCCESS);
	/* the other node, woken through its completion channel */
	assert_int_equal(rd_u32(p.from_child, &word), 0);
	assert_int_equal(word, magic);
	assert_int_equal(rd_u32(p.from_child, &slid), 0);
	assert_int_equal(slid, n.lid);
	wr_u32(p.to_child, 1);
	assert_int_equal(peer_wait(&p), 0);
	/* a multicast DLID with a QPN other than 0xFFFFFF is dropped */
	struct ibemu_counters c0, c1;
	tu_counters(&c0);
	assert_int_equal(tu_post_recv(b, n.mr, n.buf + 8192, 4096, 4), 0);
	assert_int_equal(tu_send(a, ah, b->qp_num, MC_QKEY, n.buf, 8, n.mr->lkey, 0, 5), 0);
	tu_counters(&c1);
	assert_int_equal(c1.drop_mcast_qpn - c0.drop_mcast_qpn, 1);
	/* a QP created with IBV_QP_CREATE_BLOCK_SELF_MCAST_LB does not get
	 * its own multicast back; the other QP still does */
	struct ibv_qp_init_attr_ex ax = {
		.send_cq = n.cq, .recv_cq = n.cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
			 .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS,
		.pd = n.pd, .create_flags = IBV_QP_CREATE_BLOCK_SELF_MCAST_LB,
	};
	struct ibv_qp *s = ibv_create_qp_ex(n.ctx, &ax);
	assert_non_null(s);
	struct ibv_qp_attr at = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = MC_QKEY };
	assert_int_equal(ibv_modify_qp(s, &at, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				       IBV_QP_PORT | IBV_QP_QKEY), 0);
	at.qp_state = IBV_QPS_RTR;
	assert_int_equal(ibv_modify_qp(s, &at, IBV_QP_STATE), 0);
	at.qp_state = IBV_QPS_RTS;
	assert_int_equal(ibv_modify_qp(s, &at, IBV_QP_STATE | IBV_QP_SQ_PSN), 0);
	assert_int_equal(ibv_attach_mcast(s, &mgid, 0), 0);
	assert_int_equal(tu_post_recv(s, n.mr, n.buf + 16384, 4096, 6), 0);
	assert_int_equal(tu_send(s, ah, 0xFFFFFF, MC_QKEY, n.buf, 8, n.mr->lkey,
				 IBV_SEND_SIGNALED, 7), 0);
	int r = tu_poll(n.cq, wc, 4, 200);
	/* a's earlier send (QPN check), s's send, b's receive (wr 4) */
	assert_int_equal(r, 3);
	for (int i = 0; i < r; i++)
		assert_int_not_equal(wc[i].wr_id, 6);
	assert_int_equal(ibv_detach_mcast(s, &mgid, 0), 0);
	ibv_destroy_qp(s);
	assert_int_equal(ibv_detach_mcast(a, &mgid, 0), 0);
	assert_int_equal(ibv_detach_mcast(b, &mgid, 0), 0);
	assert_int_equal(ibv_detach_mcast(b, &mgid, 0), EINVAL);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
	tu_close(&n);
}

/* ---- rdma_cm ---- */

static struct rdma_cm_event *cm_wait(struct rdma_event_channel *ch,
				     enum rdma_cm_event_type want)
{
	struct pollfd p = { .fd = ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;

	if (poll(&p, 1, 5000) != 1 || rdma_get_cm_event(ch, &ev))
		return NULL;
	if (ev->event != want) {
		fprintf(stderr, "got %s (%d), wanted %s\n", rdma_event_str(ev->event),
			ev->status, rdma_event_str(want));
		rdma_ack_cm_event(ev);
		return NULL;
	}
	return ev;
}

static void join_child(int in, int out)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *id;
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct sockaddr_in mc = { .sin_family = AF_INET };
	uint32_t go;

	inet_pton(AF_INET, "239.1.2.3", &mc.sin_addr);
	if (!ch || rdma_create_id(ch, &id, NULL, RDMA_PS_UDP) ||
	    rdma_bind_addr(id, (struct sockaddr *)&any) ||
	    rdma_join_multicast(id, (struct sockaddr *)&mc, NULL))
		_exit(2);
	struct rdma_cm_event *ev = cm_wait(ch, RDMA_CM_EVENT_MULTICAST_JOIN);
	if (!ev)
		_exit(3);
	wr_u32(out, ev->param.ud.ah_attr.dlid);
	rdma_ack_cm_event(ev);
	rd_u32(in, &go);
	rdma_leave_multicast(id, (struct sockaddr *)&mc);
	rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
}

static void test_rdma_cm_join(void **state)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *id, *ib_id;
	struct sockaddr_in mc = { .sin_family = AF_INET };
	struct peer p;
	uint32_t child_mlid;
	int ctx_tag;

	(void)state;
	assert_non_null(ch);
	inet_pton(AF_INET, "239.1.2.3", &mc.sin_addr);
	assert_int_equal(rdma_create_id(ch, &id, NULL, RDMA_PS_UDP), 0);
	/* our own IPoIB address binds, another one does not */
	struct ibemu_counters dummy;
	assert_int_equal(tu_counters(&dummy), 0);
	struct sockaddr_in bad = { .sin_family = AF_INET };
	inet_pton(AF_INET, "192.0.2.1", &bad.sin_addr);
	assert_int_equal(rdma_bind_addr(id, (struct sockaddr *)&bad), -1);
	assert_int_equal(errno, EADDRNOTAVAIL);

	struct ibv_cq *cq = ibv_create_cq(id->verbs, 16, NULL, NULL, 0);
	struct ibv_qp_init_attr qa = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	assert_int_equal(rdma_create_qp(id, NULL, &qa), 0);
	assert_int_equal(id->qp->state, IBV_QPS_RTS);
	assert_int_equal(rdma_join_multicast(id, (struct sockaddr *)&mc, &ctx_tag), 0);
	struct rdma_cm_event *ev = cm_wait(ch, RDMA_CM_EVENT_MULTICAST_JOIN);
	assert_non_null(ev);
	assert_ptr_equal(ev->id, id);
	assert_ptr_equal(ev->param.ud.private_data, &ctx_tag);
	assert_int_equal(ev->param.ud.qp_num, 0xFFFFFF);
	assert_int_equal(ev->param.ud.qkey, RDMA_UDP_QKEY);
	assert_true(ev->param.ud.ah_attr.is_global);
	assert_true(ev->param.ud.ah_attr.dlid >= 0xC000);
	assert_int_equal(ev->param.ud.ah_attr.grh.dgid.raw[0], 0xff);
	assert_int_equal(ev->param.ud.ah_attr.grh.dgid.raw[3], 0x01); /* RDMA CM signature */
	uint16_t mlid = ev->param.ud.ah_attr.dlid;
	rdma_ack_cm_event(ev);

	/* resolving a multicast address first, as librdmacm's mckey does */
	struct rdma_cm_id *mid;
	struct sockaddr_in mc2 = { .sin_family = AF_INET };
	inet_pton(AF_INET, "239.9.9.9", &mc2.sin_addr);
	assert_int_equal(rdma_create_id(ch, &mid, NULL, RDMA_PS_UDP), 0);
	assert_int_equal(rdma_resolve_addr(mid, NULL, (struct sockaddr *)&mc2, 1000), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_ADDR_RESOLVED);
	assert_non_null(ev);
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_join_multicast(mid, (struct sockaddr *)&mc2, NULL), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_MULTICAST_JOIN);
	assert_non_null(ev);
	rdma_ack_cm_event(ev);
	rdma_destroy_id(mid);

	/* another node joining the same address gets the same MLID */
	peer_start(&p, join_child);
	assert_int_equal(rd_u32(p.from_child, &child_mlid), 0);
	assert_int_equal(child_mlid, mlid);
	wr_u32(p.to_child, 1);
	assert_int_equal(peer_wait(&p), 0);

	/* AF_IB: bind on the port GID, join an MGID given as is */
	union ibv_gid gid;
	assert_int_equal(ibv_query_gid(id->verbs, 1, 0, &gid), 0);
	struct sockaddr_ib sib = { .sib_family = AF_IB };
	memcpy(&sib.sib_addr, &gid, 16);
	assert_int_equal(rdma_create_id(ch, &ib_id, NULL, RDMA_PS_IPOIB), 0);
	assert_int_equal(rdma_bind_addr(ib_id, (struct sockaddr *)&sib), 0);
	struct sockaddr_ib mcib = { .sib_family = AF_IB };
	uint8_t mg[16] = { 0xff, 0x12, 0x40, 0x1b, 0x80, 0x01, [15] = 0x42 };
	memcpy(&mcib.sib_addr, mg, 16);
	struct rdma_cm_join_mc_attr_ex jx = {
		.comp_mask = RDMA_CM_JOIN_MC_ATTR_ADDRESS | RDMA_CM_JOIN_MC_ATTR_JOIN_FLAGS,
		.join_flags = RDMA_MC_JOIN_FLAG_FULLMEMBER,
		.addr = (struct sockaddr *)&mcib,
	};
	assert_int_equal(rdma_join_multicast_ex(ib_id, &jx, NULL), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_MULTICAST_JOIN);
	assert_non_null(ev);
	assert_memory_equal(ev->param.ud.ah_attr.grh.dgid.raw, mg, 16);
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_leave_multicast(ib_id, (struct sockaddr *)&mcib), 0);
	assert_int_equal(rdma_leave_multicast(id, (struct sockaddr *)&mc), 0);
	rdma_destroy_qp(id);
	ibv_destroy_cq(cq);
	rdma_destroy_id(ib_id);
	rdma_destroy_id(id);
	assert_string_equal(rdma_event_str(RDMA_CM_EVENT_MULTICAST_JOIN),
			    "RDMA_CM_EVENT_MULTICAST_JOIN");
	rdma_destroy_event_channel(ch);
}

/* SIDR server in the child: accept with its QP. */
static void sidr_child(int in, int out)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	struct rdma_cm_id *lid, *cid;
	struct rdma_addrinfo hints = { .ai_flags = RAI_PASSIVE, .ai_port_space = RDMA_PS_UDP },
			     *res;
	uint32_t go;

	if (!ch || rdma_getaddrinfo(NULL, "7471", &hints, &res) ||
	    rdma_create_id(ch, &lid, NULL, RDMA_PS_UDP) ||
	    rdma_bind_addr(lid, res->ai_src_addr) || rdma_listen(lid, 4))
		_exit(2);
	rdma_freeaddrinfo(res);
	struct ibemu_counters c;
	ibemu_get_counters(&c);
	struct sockaddr_in *me = (struct sockaddr_in *)rdma_get_local_addr(lid);
	wr_u32(out, me->sin_addr.s_addr);
	struct rdma_cm_event *ev = cm_wait(ch, RDMA_CM_EVENT_CONNECT_REQUEST);
	if (!ev || ev->listen_id != lid || ev->param.ud.private_data_len != 5 ||
	    memcmp(ev->param.ud.private_data, "hello", 5))
		_exit(3);
	cid = ev->id;
	rdma_ack_cm_event(ev);
	struct ibv_cq *cq = ibv_create_cq(cid->verbs, 8, NULL, NULL, 0);
	struct ibv_qp_init_attr qa = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 2, .max_recv_wr = 2, .max_send_sge = 1,
			 .max_recv_sge = 1 },
	};
	if (rdma_create_qp(cid, NULL, &qa))
		_exit(4);
	wr_u32(out, cid->qp->qp_num);
	struct rdma_conn_param cp = { .qp_num = cid->qp->qp_num };
	if (rdma_accept(cid, &cp))
		_exit(5);
	rd_u32(in, &go);
	rdma_destroy_qp(cid);
	ibv_destroy_cq(cq);
	rdma_destroy_id(cid);
	rdma_destroy_id(lid);
	rdma_destroy_event_channel(ch);
}

static void test_sidr(void **state)
{
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	struct peer p;
	uint32_t srv_ip, srv_qpn;

	(void)state;
	peer_start(&p, sidr_child);
	assert_int_equal(rd_u32(p.from_child, &srv_ip), 0);
	ch = rdma_create_event_channel();
	assert_int_equal(rdma_create_id(ch, &id, NULL, RDMA_PS_UDP), 0);
	char ip[32];
	inet_ntop(AF_INET, &srv_ip, ip, sizeof(ip));
	struct rdma_addrinfo *res;
	assert_int_equal(rdma_getaddrinfo(ip, "7471", NULL, &res), 0);
	assert_int_equal(rdma_resolve_addr(id, NULL, res->ai_dst_addr, 1000), 0);
	rdma_freeaddrinfo(res);
	struct rdma_cm_event *ev = cm_wait(ch, RDMA_CM_EVENT_ADDR_RESOLVED);
	assert_non_null(ev);
	rdma_ack_cm_event(ev);
	assert_int_equal(rdma_resolve_route(id, 1000), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_ROUTE_RESOLVED);
	assert_non_null(ev);
	rdma_ack_cm_event(ev);
	struct rdma_conn_param cp = { .private_data = "hello", .private_data_len = 5 };
	assert_int_equal(rdma_connect(id, &cp), 0);
	assert_int_equal(rd_u32(p.from_child, &srv_qpn), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_ESTABLISHED);
	assert_non_null(ev);
	assert_int_equal(ev->param.ud.qp_num, srv_qpn);
	assert_int_equal(ev->param.ud.qkey, RDMA_UDP_QKEY);
	assert_int_equal(ev->param.ud.ah_attr.dlid, be16toh(id->route.path_rec->dlid));
	rdma_ack_cm_event(ev);
	wr_u32(p.to_child, 1);
	assert_int_equal(peer_wait(&p), 0);

	/* nobody listens on that port any more: UNREACHABLE */
	struct rdma_cm_id *id2;
	assert_int_equal(rdma_create_id(ch, &id2, NULL, RDMA_PS_UDP), 0);
	struct sockaddr_in self = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr_in *mine = (struct sockaddr_in *)rdma_get_local_addr(id);
	self.sin_addr = mine->sin_addr;
	assert_int_equal(rdma_resolve_addr(id2, NULL, (struct sockaddr *)&self, 1000), 0);
	rdma_ack_cm_event(cm_wait(ch, RDMA_CM_EVENT_ADDR_RESOLVED));
	assert_int_equal(rdma_resolve_route(id2, 1000), 0);
	rdma_ack_cm_event(cm_wait(ch, RDMA_CM_EVENT_ROUTE_RESOLVED));
	assert_int_equal(rdma_connect(id2, NULL), 0);
	ev = cm_wait(ch, RDMA_CM_EVENT_UNREACHABLE);
	assert_non_null(ev);
	rdma_ack_cm_event(ev);
	rdma_destroy_id(id2);
	rdma_destroy_id(id);
	rdma_destroy_event_channel(ch);
}

/* ---- faults through the control file ---- */

static void set_faults(const char *text)
{
	char path[128];

	snprintf(path, sizeof(path), "/dev/shm/ibemu-%s.faults", fabric);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	usleep(250000); /* picked up within 100 ms */
}

static void test_faults(void **state)
{
	struct tu_node n;
	struct ibemu_counters c0, c1;
	struct ibv_wc wc[64];

	(void)state;
	assert_int_equal(tu_open(&n, 256, 0), 0);
	struct ibv_qp *a = tu_qp(&n, 5, 1, 0, 64), *b = tu_qp(&n, 5, 0, 0, 64);
	struct ibv_ah *ah = tu_ah(&n, n.lid, NULL);

	set_faults("drop_pct=100\n");
	tu_counters(&c0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(tu_post_recv(b, n.mr, n.buf, 4096, 1), 0);
		assert_int_equal(tu_send(a, ah, b->qp_num, 5, n.buf, 8, n.mr->lkey, 0, 1), 0);
	}
	assert_int_equal(tu_poll(n.cq, wc, 10, 1000), 10); /* sends only */
	tu_counters(&c1);
	assert_int_equal(c1.drop_fault - c0.drop_fault, 10);

	set_faults("reg_mr_max=65536, latency_us=200000\n");
	uint8_t *big = malloc(1 << 20);
	errno = 0;
	assert_null(ibv_reg_mr(n.pd, big, 1 << 20, IBV_ACCESS_LOCAL_WRITE));
	assert_int_equal(errno, ENOMEM);
	struct ibv_mr *small = ibv_reg_mr(n.pd, big, 4096, IBV_ACCESS_LOCAL_WRITE);
	assert_non_null(small);
	ibv_dereg_mr(small);
	free(big);
	/* latency: visible only after 200 ms */
	assert_int_equal(tu_send(a, ah, b->qp_num, 5, n.buf, 8, n.mr->lkey, 0, 2), 0);
	int got = tu_poll(n.cq, wc, 2, 50);
	assert_int_equal(got, 1); /* the send completion only */
	assert_int_equal(tu_poll(n.cq, wc, 1, 1000), 1);
	assert_int_equal(wc[0].opcode, IBV_WC_RECV);

	set_faults("qp_error_after=3\n");
	struct ibv_qp *e = tu_qp(&n, 5, 1, 0, 4);
	for (int i = 0; i < 5; i++)
		tu_send(e, ah, b->qp_num, 5, n.buf, 8, n.mr->lkey, 0, (uint64_t)i);
	assert_int_equal(tu_poll(n.cq, wc, 5, 1000), 5);
	assert_int_equal(wc[2].status, IBV_WC_SUCCESS);
	assert_int_equal(wc[3].status, IBV_WC_LOC_QP_OP_ERR);
	assert_int_equal(wc[4].status, IBV_WC_WR_FLUSH_ERR);
	set_faults("");
	tu_poll(n.cq, wc, 64, 100);
	ibv_destroy_qp(e);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
	tu_close(&n);
}

/* ---- several nodes sending to one QP at once ---- */

#define STRESS_MSGS 20000

static void stress_sender(int in, int out)
{
	struct tu_node n;
	uint32_t qpn, lid;

	if (tu_open(&n, 256, 0) || rd_u32(in, &qpn) || rd_u32(in, &lid))
		_exit(2);
	struct ibv_qp *qp = tu_qp(&n, 9, 0, 0, 1);
	struct ibv_ah *ah = tu_ah(&n, (uint16_t)lid, NULL);
	struct ibv_wc wc[16];
	uint32_t me = (uint32_t)getpid();
	for (uint32_t i = 0; i < STRESS_MSGS; i++) {
		/* header: sender, sequence, length; then a pattern */
		uint32_t len = 12 + (i * 37) % 1990; /* + GRH fits 2048 */
		uint32_t *w = (uint32_t *)n.buf;
		w[0] = me;
		w[1] = i;
		w[2] = len;
		for (uint32_t k = 12; k < len; k++)
			n.buf[k] = (uint8_t)(me + i + k);
		while (tu_send(qp, ah, qpn, 9, n.buf, len, n.mr->lkey,
			       (i % 16) == 15 ? IBV_SEND_SIGNALED : 0, i) == ENOMEM)
			ibv_poll_cq(n.cq, 16, wc);
		if ((i % 16) == 15)
			while (ibv_poll_cq(n.cq, 16, wc) == 0)
				;
	}
	wr_u32(out, STRESS_MSGS);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(qp);
	tu_close(&n);
}

static void test_many_senders(void **state)
{
	enum { NSEND = 2, DEPTH = 512 };
	struct peer p[NSEND];
	struct tu_node n;
	struct ibemu_counters c0, c1;
	struct ibv_wc wc[32];
	uint32_t last[NSEND] = { 0 }, pids[NSEND];
	uint64_t got = 0;

	(void)state;
	for (int i = 0; i < NSEND; i++)
		peer_start(&p[i], stress_sender);
	assert_int_equal(tu_open(&n, 2 * DEPTH, 0), 0);
	struct ibv_qp *qp = tu_qp(&n, 9, 0, 0, DEPTH);
	for (uint64_t i = 0; i < DEPTH; i++)
		assert_int_equal(tu_post_recv(qp, n.mr, n.buf + i * 2048, 2048, i), 0);
	tu_counters(&c0);
	for (int i = 0; i < NSEND; i++) {
		pids[i] = (uint32_t)p[i].pid;
		last[i] = UINT32_MAX;
		wr_u32(p[i].to_child, qp->qp_num);
		wr_u32(p[i].to_child, n.lid);
	}
	int done = 0;
	uint32_t dummy;
	while (done < NSEND) {
		int k = ibv_poll_cq(n.cq, 32, wc);
		assert_true(k >= 0);
		for (int j = 0; j < k; j++) {
			assert_int_equal(wc[j].status, IBV_WC_SUCCESS);
			const uint8_t *m = n.buf + wc[j].wr_id * 2048 + GRH;
			const uint32_t *w = (const uint32_t *)m;
			int s = w[0] == pids[0] ? 0 : w[0] == pids[1] ? 1 : -1;
			assert_true(s >= 0);
			/* per sender in order, never twice, intact */
			assert_true(last[s] == UINT32_MAX || w[1] > last[s]);
			last[s] = w[1];
			assert_int_equal(wc[j].byte_len, GRH + w[2]);
			for (uint32_t b = 12; b < w[2]; b++)
				if (m[b] != (uint8_t)(w[0] + w[1] + b))
					fail_msg("corrupt byte %u of message %u", b, w[1]);
			assert_int_equal(tu_post_recv(qp, n.mr, n.buf + wc[j].wr_id * 2048,
						      2048, wc[j].wr_id), 0);
			got++;
		}
		for (int i = 0; i < NSEND; i++) {
			struct pollfd pf = { .fd = p[i].from_child, .events = POLLIN };
			if (p[i].pid && poll(&pf, 1, 0) == 1 && rd_u32(p[i].from_child, &dummy) == 0) {
				assert_int_equal(peer_wait(&p[i]), 0);
				p[i].pid = 0;
				done++;
			}
		}
	}
	for (int k; (k = tu_poll(n.cq, wc, 32, 100)) > 0;)
		got += (uint64_t)k; /* what arrived before the senders said done */
	tu_counters(&c1);
	/* every message was either received or dropped for want of a WR */
	assert_int_equal(got + (c1.drop_no_recv - c0.drop_no_recv),
			 (uint64_t)NSEND * STRESS_MSGS);
	assert_true(got > 0);
	ibv_destroy_qp(qp);
	tu_close(&n);
}

/* ---- a node killed with SIGKILL is reclaimed ---- */

static void dying_child(int in, int out)
{
	struct tu_node n;

	(void)in;
	if (tu_open(&n, 16, 0))
		_exit(2);
	struct ibv_qp *qp = tu_qp(&n, 5, 0, 0, 4);
	wr_u32(out, n.lid);
	wr_u32(out, qp->qp_num);
	kill(getpid(), SIGKILL);
}

static void test_dead_node_reclaimed(void **state)
{
	struct peer p;
	struct tu_node n;
	struct ibemu_counters c0, c1;
	uint32_t lid, qpn;

	(void)state;
	peer_start(&p, dying_child);
	assert_int_equal(rd_u32(p.from_child, &lid), 0);
	assert_int_equal(rd_u32(p.from_child, &qpn), 0);
	assert_int_equal(peer_wait(&p), 128 + SIGKILL);
	/* opening reclaims dead nodes: the LID and the QP are free again */
	assert_int_equal(tu_open(&n, 16, 0), 0);
	struct ibv_wc wc;
	/* an idle poll runs the once-a-second liveness check */
	for (int i = 0; i < 30 && ibemu_get_node_counters((uint16_t)lid, &c0) == 0; i++)
		tu_poll(n.cq, &wc, 1, 100);
	assert_int_equal(ibemu_get_node_counters((uint16_t)lid, &c0), -1);
	struct ibv_qp *a = tu_qp(&n, 5, 1, 0, 4);
	struct ibv_ah *ah = tu_ah(&n, n.lid, NULL);
	tu_counters(&c0);
	assert_int_equal(tu_send(a, ah, qpn, 5, n.buf, 8, n.mr->lkey, 0, 1), 0);
	tu_counters(&c1);
	assert_int_equal(c1.drop_no_dest - c0.drop_no_dest, 1);
	assert_int_equal(tu_poll(n.cq, &wc, 1, 1000), 1);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(a);
	tu_close(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mcast_every_node),
		cmocka_unit_test(test_rdma_cm_join),
		cmocka_unit_test(test_sidr),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_many_senders),
		cmocka_unit_test(test_dead_node_reclaimed),
	};
	snprintf(fabric, sizeof(fabric), "fabric%d", (int)getpid());
	setenv("IBEMU_FABRIC", fabric, 1);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -f /dev/shm/ibemu-%s /dev/shm/ibemu-%s.*",
		 fabric, fabric);
	(void)!system(cmd);
	return rc;
}
