/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibemu_bench — messages/s and ns/message between two processes (two
 * nodes) on the emulated fabric, for a few message sizes.
 *
 *   ibemu_bench [-n messages] [-c cpu_a,cpu_b] [size...]   (default 64 4096)
 *
 * stream:  A sends, B receives and reposts; a shared counter of messages
 *          consumed bounds the window so that no message is dropped.
 * pingpong: one message each way; half the round trip is the latency.
 */
#include <infiniband/verbs.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 1024
#define WINDOW 768
#define QKEY 0x42u

struct shared {
	_Atomic uint32_t qpn[2];
	_Atomic uint32_t lid[2];
	_Atomic uint64_t consumed;
	_Atomic int ready;
};

struct node {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	struct ibv_ah *ah;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void node_open(struct node *n, size_t slot)
{
	struct ibv_device **l = ibv_get_device_list(NULL);

	if (!l || !l[0] || !(n->ctx = ibv_open_device(l[0])))
		die("open device");
	ibv_free_device_list(l);
	n->pd = ibv_alloc_pd(n->ctx);
	n->scq = ibv_create_cq(n->ctx, 4 * DEPTH, NULL, NULL, 0);
	n->rcq = ibv_create_cq(n->ctx, 4 * DEPTH, NULL, NULL, 0);
	n->buf = aligned_alloc(4096, (DEPTH + 1) * slot);
	if (!n->pd || !n->scq || !n->rcq || !n->buf)
		die("resources");
	memset(n->buf, 1, (DEPTH + 1) * slot);
	n->mr = ibv_reg_mr(n->pd, n->buf, (DEPTH + 1) * slot, IBV_ACCESS_LOCAL_WRITE);
	struct ibv_qp_init_attr ia = {
		.send_cq = n->scq, .recv_cq = n->rcq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = DEPTH, .max_recv_wr = DEPTH,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	if (!n->mr || !(n->qp = ibv_create_qp(n->pd, &ia)))
		die("qp");
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = QKEY };
	if (ibv_modify_qp(n->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			  IBV_QP_QKEY))
		die("init");
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(n->qp, &a, IBV_QP_STATE))
		die("rtr");
	a.qp_state = IBV_QPS_RTS;
	if (ibv_modify_qp(n->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
		die("rts");
}

static void post_recv(struct node *n, size_t slot, uint64_t i)
{
	struct ibv_sge s = { (uintptr_t)(n->buf + (i % DEPTH) * slot), (uint32_t)slot,
			     n->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &s, .num_sge = 1 }, *bad;

	if (ibv_post_recv(n->qp, &wr, &bad))
		die("post_recv");
}

static void send_one(struct node *n, uint32_t qpn, uint32_t size, int signaled,
		     uint64_t wr_id)
{
	struct ibv_sge s = { (uintptr_t)(n->buf + DEPTH * (size_t)(size + 40)), size,
			     n->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = wr_id, .sg_list = &s, .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = signaled ? IBV_SEND_SIGNALED : 0 }, *bad;

	wr.wr.ud.ah = n->ah;
	wr.wr.ud.remote_qpn = qpn;
	wr.wr.ud.remote_qkey = QKEY;
	if (ibv_post_send(n->qp, &wr, &bad))
		die("post_send");
}

/* A signaled completion retires every send before it (SQ occupancy). */
static void drain_sends(struct node *n, uint64_t *retired)
{
	struct ibv_wc wc[32];
	int k = ibv_poll_cq(n->scq, 32, wc);

	for (int i = 0; i < k; i++) {
		if (wc[i].status)
			die("send completion");
		*retired = wc[i].wr_id + 1;
	}
}

/* side 0 = sender/pinger, side 1 = receiver/ponger */
static void run(int side, struct shared *sh, uint32_t size, uint64_t count, int cpu)
{
	struct node n;
	size_t slot = size + 40;
	struct ibv_wc wc[32];
	struct ibv_port_attr pa;

	pin(cpu);
	node_open(&n, slot);
	ibv_query_port(n.ctx, 1, &pa);
	for (uint64_t i = 0; i < DEPTH; i++)
		post_recv(&n, slot, i);
	sh->qpn[side] = n.qp->qp_num;
	sh->lid[side] = pa.lid;
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->ready) < 2)
		;
	struct ibv_ah_attr aa = { .dlid = (uint16_t)sh->lid[!side], .port_num = 1 };
	n.ah = ibv_create_ah(n.pd, &aa);
	uint32_t peer = sh->qpn[!side];
	uint64_t retired = 0;

	/* stream */
	uint64_t t0 = now_ns(), got = 0, sent = 0;
	if (side == 0) {
		while (sent < count) {
			if (sent - atomic_load_explicit(&sh->consumed, memory_order_acquire) >=
			    WINDOW || sent - retired >= DEPTH - 64) {
				drain_sends(&n, &retired);
				continue;
			}
			send_one(&n, peer, size, (sent % 64) == 63 || sent == count - 1, sent);
			sent++;
		}
		while (atomic_load(&sh->consumed) < count || retired < sent)
			drain_sends(&n, &retired);
		uint64_t dt = now_ns() - t0;
		printf("%6u B  stream    %10.0f msg/s  %7.1f ns/msg  %8.2f Gbit/s\n", size,
		       count * 1e9 / (double)dt, (double)dt / (double)count,
		       count * size * 8.0 / (double)dt);
	} else {
		while (got < count) {
			int k = ibv_poll_cq(n.rcq, 32, wc);
			for (int i = 0; i < k; i++) {
				if (wc[i].status)
					die("recv completion");
				post_recv(&n, slot, wc[i].wr_id + DEPTH);
			}
			got += (uint64_t)k;
			if (k)
				atomic_store_explicit(&sh->consumed, got, memory_order_release);
		}
	}

	/* pingpong */
	uint64_t iters = count / 4 ? count / 4 : 1;
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->ready) < 4)
		;
	t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		if (side == 0)
			send_one(&n, peer, size, 1, i);
		int k;
		while ((k = ibv_poll_cq(n.rcq, 1, wc)) == 0)
			;
		if (k < 0 || wc[0].status)
			die("pingpong recv");
		post_recv(&n, slot, wc[0].wr_id + DEPTH);
		if (side == 1)
			send_one(&n, peer, size, 1, i);
		while ((k = ibv_poll_cq(n.scq, 1, wc)) == 0)
			;
	}
	if (side == 0) {
		uint64_t dt = now_ns() - t0;
		printf("%6u B  pingpong  %10.0f rtt/s  %7.1f ns one-way\n", size,
		       iters * 1e9 / (double)dt, (double)dt / (double)iters / 2);
	}
	exit(0);
}

/* One process, one core: sender and receiver costs together, no
 * cross-core cache traffic. Bursts of 32 as a polling daemon does. */
static void loopback(uint32_t size, uint64_t count, int cpu)
{
	struct node n;
	size_t slot = size + 40;
	struct ibv_wc wc[32];
	struct ibv_port_attr pa;
	uint64_t retired = 0, got = 0, sent = 0;

	pin(cpu);
	node_open(&n, slot);
	ibv_query_port(n.ctx, 1, &pa);
	for (uint64_t i = 0; i < DEPTH; i++)
		post_recv(&n, slot, i);
	struct ibv_ah_attr aa = { .dlid = pa.lid, .port_num = 1 };
	n.ah = ibv_create_ah(n.pd, &aa);
	uint64_t t0 = now_ns(), c0 = cpu_ns();
	while (got < count) {
		for (int b = 0; b < 32 && sent < count && sent - got < DEPTH - 32 &&
				sent - retired < DEPTH - 64; b++, sent++)
			send_one(&n, n.qp->qp_num, size, (sent % 32) == 31 || sent == count - 1,
				 sent);
		drain_sends(&n, &retired);
		int k = ibv_poll_cq(n.rcq, 32, wc);
		for (int i = 0; i < k; i++) {
			if (wc[i].status)
				die("recv completion");
			post_recv(&n, slot, wc[i].wr_id + DEPTH);
		}
		got += (uint64_t)(k > 0 ? k : 0);
	}
	uint64_t dt = now_ns() - t0, dc = cpu_ns() - c0;
	printf("%6u B  loopback  %10.0f msg/s  %7.1f ns/msg (send+recv, one core; "
	       "%.1f ns CPU)\n", size, count * 1e9 / (double)dt,
	       (double)dt / (double)count, (double)dc / (double)count);
	exit(0);
}

int main(int argc, char **argv)
{
	uint64_t count = 1000000;
	int cpu[2] = { 0, 1 }, opt;
	uint32_t sizes[16] = { 64, 4096 };
	int nsizes = 2;

	while ((opt = getopt(argc, argv, "n:c:")) != -1) {
		if (opt == 'n')
			count = strtoull(optarg, NULL, 0);
		else if (opt == 'c' && sscanf(optarg, "%d,%d", &cpu[0], &cpu[1]) == 2)
			;
		else {
			fprintf(stderr, "usage: %s [-n messages] [-c cpuA,cpuB] [size...]\n",
				argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		nsizes = 0;
		for (int i = optind; i < argc && nsizes < 16; i++)
			sizes[nsizes++] = (uint32_t)strtoul(argv[i], NULL, 0);
	}
	printf("ibemu_bench: %llu messages, CPUs %d and %d, window %d\n",
	       (unsigned long long)count, cpu[0], cpu[1], WINDOW);
	for (int s = 0; s < nsizes; s++) {
		struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED)
			die("mmap");
		memset(sh, 0, sizeof(*sh));
		fflush(stdout);
		pid_t p[2], lp = fork();
		int st, bad = 0;
		if (lp == 0)
			loopback(sizes[s], count, cpu[0]);
		waitpid(lp, &st, 0);
		for (int side = 0; side < 2; side++)
			if ((p[side] = fork()) == 0)
				run(side, sh, sizes[s], count, cpu[side]);
		for (int side = 0; side < 2; side++) {
			waitpid(p[side], &st, 0);
			bad |= !WIFEXITED(st) || WEXITSTATUS(st);
		}
		munmap(sh, sizeof(*sh));
		if (bad)
			return 1;
	}
	return 0;
}
