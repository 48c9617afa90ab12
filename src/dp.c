/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * dp: polling cores, the control-plane mailbox, segments' multicast
 * groups, device open/close. See include/ibvhost/dp.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "dp_int.h"
#include "ibvhost/log.h"
#include "ibvhost/wire.h"

struct dp_global dp = {
	.seg_lock = PTHREAD_MUTEX_INITIALIZER,
};

const struct ib_dev *dp_ib_dev(void)
{
	return dp.dev;
}

int dp_async_fd(void)
{
	return dp.dev ? dp.dev->ctx->async_fd : -1;
}

void dp_handle_async_events(void)
{
	struct ibv_async_event ev;

	while (ibv_get_async_event(dp.dev->ctx, &ev) == 0) {
		switch (ev.event_type) {
		case IBV_EVENT_QP_FATAL:
		case IBV_EVENT_QP_REQ_ERR:
		case IBV_EVENT_QP_ACCESS_ERR:
			/* The polling core sees the failed WRs and recovers
			 * the QP; this is the fabric's side of the story. */
			log_warn("ib: %s on QP 0x%x",
				 ibv_event_type_str(ev.event_type),
				 ev.element.qp->qp_num);
			break;
		case IBV_EVENT_CQ_ERR:
			log_err("ib: %s: a completion queue overflowed; "
				"frames are being lost",
				ibv_event_type_str(ev.event_type));
			break;
		case IBV_EVENT_PORT_ACTIVE:
		case IBV_EVENT_PORT_ERR:
		case IBV_EVENT_LID_CHANGE:
		case IBV_EVENT_GID_CHANGE:
		case IBV_EVENT_SM_CHANGE:
		case IBV_EVENT_PKEY_CHANGE:
		case IBV_EVENT_CLIENT_REREGISTER:
			log_notice("ib: %s port %u: %s", dp.dev->name,
				   ev.element.port_num,
				   ibv_event_type_str(ev.event_type));
			break;
		case IBV_EVENT_DEVICE_FATAL:
			log_err("ib: %s: %s: the HCA needs a reset; restart "
				"ibvhostd", dp.dev->name,
				ibv_event_type_str(ev.event_type));
			break;
		default:
			log_info("ib: %s", ibv_event_type_str(ev.event_type));
			break;
		}
		ibv_ack_async_event(&ev);
	}
}

uint16_t dp_port_mtu(const struct cfg_segment *seg, const struct cfg_port *pc)
{
	uint16_t mtu = seg->mtu;

	/* A frame above one IB message goes as several (dp_fast.c). */
	if (pc->mtu && pc->mtu < mtu)
		mtu = pc->mtu;
	return mtu;
}

bool dp_core_get_info(unsigned i, struct dp_core_info *out)
{
	if (i >= dp.n_cores)
		return false;
	const struct dp_core *c = &dp.cores[i];

	/* Written by the core alone; a slightly stale read is fine here. */
	out->cpu = c->cpu;
	out->ports = c->n_ports;
	out->adaptive = c->adaptive;
	out->sleeps = __atomic_load_n(&c->sleeps, __ATOMIC_RELAXED);
	out->wakeups_cq = __atomic_load_n(&c->wakeups_cq, __ATOMIC_RELAXED);
	out->wakeups_kick = __atomic_load_n(&c->wakeups_kick, __ATOMIC_RELAXED);
	out->wakeups_mailbox =
		__atomic_load_n(&c->wakeups_mailbox, __ATOMIC_RELAXED);
	out->cq_entries = (uint32_t)__atomic_load_n(&c->cq->cqe,
						    __ATOMIC_RELAXED);
	out->cq_need = __atomic_load_n(&c->cq_need, __ATOMIC_RELAXED);
	out->cq_resizes = __atomic_load_n(&c->cq_resizes, __ATOMIC_RELAXED);
	return true;
}

/* ---- mailbox ------------------------------------------------------------ */

void dp_request_complete(struct dp_request *req, int result)
{
	req->result = result;
	sem_post(&req->done);
}

int dp_core_call(struct dp_core *core, struct dp_request *req)
{
	struct timespec deadline;
	int rc;

	req->result = 0;
	req->deferred = false;
	sem_init(&req->done, 0, 0);
	pthread_mutex_lock(&core->mailbox_lock);
	atomic_store_explicit(&core->mailbox, req, memory_order_release);
	if (core->adaptive)
		eventfd_write(core->wake_fd, 1); /* it may be asleep */
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += DP_MAILBOX_TIMEOUT_S;
		rc = sem_timedwait(&req->done, &deadline);
		if (rc == 0)
			break;
		if (errno == EINTR)
			continue;
		/* The request lives on our stack: we must not return while
		 * the core may still use it, so say so and keep waiting. */
		log_err("dp: polling core %u has not answered a request for "
			"%d s; still waiting", core->cpu, DP_MAILBOX_TIMEOUT_S);
	}
	pthread_mutex_unlock(&core->mailbox_lock);
	sem_destroy(&req->done);
	return req->result;
}

static void core_check_mailbox(struct dp_core *core)
{
	struct dp_request *req;
	int rc;

	req = atomic_load_explicit(&core->mailbox, memory_order_acquire);
	if (!req)
		return;
	atomic_store_explicit(&core->mailbox, NULL, memory_order_relaxed);
	rc = req->fn(core, req);
	if (!req->deferred)
		dp_request_complete(req, rc);
}

static void *core_main(void *arg)
{
	struct dp_core *core = arg;
	cpu_set_t set;
	char name[16];

	CPU_ZERO(&set);
	CPU_SET(core->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		log_warn("dp: cannot pin the polling thread to CPU %u: it "
			 "runs unpinned", core->cpu);
	snprintf(name, sizeof(name), "ibvh-poll%u", core->cpu);
	pthread_setname_np(pthread_self(), name);
	log_info("dp: polling core %u running", core->cpu);

	uint64_t idle_since = 0;

	while (!atomic_load_explicit(&core->stop, memory_order_relaxed)) {
		bool busy = dp_core_round(core);

		core_check_mailbox(core);
		if (!core->adaptive || busy) {
			idle_since = 0;
			continue;
		}
		/* Only idle rounds read the clock. */
		uint64_t now = dp_now_ns();

		if (idle_since == 0)
			idle_since = now;
		else if (now - idle_since >= DP_IDLE_BEFORE_SLEEP_NS) {
			dp_core_sleep(core);
			idle_since = 0;
		}
	}
	/* Answer a request that raced with the stop. */
	core_check_mailbox(core);
	return NULL;
}

/* SIGUSR2 only interrupts a polling core's blocked system call. */
static void on_interrupt(int sig)
{
	(void)sig;
}

void dp_check_cores(void)
{
	uint64_t now = dp_now_ns();

	for (unsigned i = 0; i < dp.n_cores; i++) {
		struct dp_core *core = &dp.cores[i];
		uint64_t since = __atomic_load_n(&core->guest_fd_since,
						 __ATOMIC_ACQUIRE);

		if (core->thread_started && since &&
		    now - since > DP_GUEST_FD_MAX_MS * 1000000ull)
			pthread_kill(core->thread, SIGUSR2);
	}
}

/* ---- init / fini ---------------------------------------------------------- */

static int core_init(struct dp_core *core, unsigned cpu, bool adaptive)
{
	int cqe = (int)DP_CQ_MIN_ENTRIES;
	int err;

	core->cpu = cpu;
	core->adaptive = adaptive;
	core->wake_fd = -1;
	pthread_mutex_init(&core->mailbox_lock, NULL);
	atomic_init(&core->mailbox, NULL);
	atomic_init(&core->stop, false);
	if ((uint32_t)cqe > dp.dev->max_cqe)
		cqe = (int)dp.dev->max_cqe;
	core->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	core->channel = ibv_create_comp_channel(dp.dev->ctx);
	if (core->wake_fd < 0 || !core->channel) {
		err = errno ? errno : ENOMEM;
		log_err("dp: core %u: cannot create its wake-up fds: %s", cpu,
			strerror(err));
		return -err;
	}
	core->cq = ibv_create_cq(dp.dev->ctx, cqe, core, core->channel, 0);
	if (!core->cq) {
		err = errno ? errno : ENOMEM;
		log_err("dp: core %u: ibv_create_cq(%d) failed: %s", cpu, cqe,
			strerror(err));
		return -err;
	}
	err = pthread_create(&core->thread, NULL, core_main, core);
	if (err) {
		log_err("dp: core %u: cannot start the polling thread: %s",
			cpu, strerror(err));
		return -err;
	}
	core->thread_started = true;
	return 0;
}

static void core_fini(struct dp_core *core)
{
	if (core->thread_started) {
		atomic_store(&core->stop, true);
		pthread_join(core->thread, NULL);
		core->thread_started = false;
	}
	if (core->cq && ibv_destroy_cq(core->cq) != 0)
		log_warn("dp: core %u: ibv_destroy_cq failed: %s", core->cpu,
			 strerror(errno));
	core->cq = NULL;
	if (core->channel)
		ibv_destroy_comp_channel(core->channel);
	core->channel = NULL;
	if (core->wake_fd >= 0)
		close(core->wake_fd);
	core->wake_fd = -1;
	pthread_mutex_destroy(&core->mailbox_lock);
}

int dp_init(const struct cfg *cfg)
{
	unsigned n = cfg->n_poll_cores ? cfg->n_poll_cores : 1;
	int err;

	err = ib_dev_open(cfg->ib_device, cfg->ib_port, cfg->gid_index,
			  &dp.dev);
	if (err)
		return err;
	if (dp.dev->mtu_bytes < 1024) {
		log_err("dp: %s port %u: active MTU %u is too small for "
			"Ethernet frames (need 1024 or more; on Soft-RoCE raise "
			"the netdev MTU)", dp.dev->name, dp.dev->port,
			dp.dev->mtu_bytes);
		err = -EINVAL;
		goto err_dev;
	}
	snprintf(dp.rxp_prefix, sizeof(dp.rxp_prefix), "%s", cfg->ctl_socket);
	struct sigaction sa = { .sa_handler = on_interrupt }; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	dp.cores = calloc(n, sizeof(*dp.cores));
	if (!dp.cores) {
		err = -ENOMEM;
		goto err_dev;
	}
	for (dp.n_cores = 0; dp.n_cores < n; dp.n_cores++) {
		unsigned cpu = cfg->n_poll_cores ? cfg->poll_cores[dp.n_cores]
						 : cfg->main_core;

		err = core_init(&dp.cores[dp.n_cores], cpu,
				cfg->poll_mode == CFG_POLL_ADAPTIVE);
		if (err) {
			core_fini(&dp.cores[dp.n_cores]);
			goto err_cores;
		}
	}
	int fl = fcntl(dp.dev->ctx->async_fd, F_GETFL);

	if (fl < 0 ||
	    fcntl(dp.dev->ctx->async_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		log_warn("dp: cannot make the async event fd non-blocking: %s",
			 strerror(errno));
	log_info("dp: %u polling core(s), %s polling", dp.n_cores,
		 cfg_poll_mode_name(cfg->poll_mode));
	return 0;

err_cores:
	while (dp.n_cores > 0)
		core_fini(&dp.cores[--dp.n_cores]);
	free(dp.cores);
	dp.cores = NULL;
err_dev:
	ib_dev_close(dp.dev);
	dp.dev = NULL;
	return err;
}

void dp_fini(void)
{
	for (unsigned i = 0; i < dp.n_cores; i++)
		core_fini(&dp.cores[i]);
	free(dp.cores);
	dp.cores = NULL;
	dp.n_cores = 0;
	for (unsigned i = 0; i < dp.n_segments; i++) {
		ib_mcast_leave(dp.segments[i]->mc);
		free(dp.segments[i]);
	}
	dp.n_segments = 0;
	ib_dev_close(dp.dev);
	dp.dev = NULL;
}

/* ---- segments --------------------------------------------------------------- */

/* The segment's group, joined on first use. Main thread (port creation),
 * under seg_lock because show commands read the table. */
struct dp_segment *dp_segment_get(const struct cfg_segment *cs)
{
	struct dp_segment *s = NULL;
	uint8_t mgid[16];

	if (cs->has_mcast_gid)
		memcpy(mgid, cs->mcast_gid, 16);
	else
		ib_mcast_default_gid(cs->qkey, mgid);

	pthread_mutex_lock(&dp.seg_lock);
	for (unsigned i = 0; i < dp.n_segments; i++) {
		struct dp_segment *t = dp.segments[i];

		if (strcmp(t->name, cs->name) == 0 && t->qkey == cs->qkey &&
		    memcmp(t->mgid, mgid, 16) == 0) {
			s = t;
			break;
		}
	}
	if (!s && dp.n_segments < CFG_SEGMENTS_MAX) {
		s = calloc(1, sizeof(*s));
		if (s) {
			snprintf(s->name, sizeof(s->name), "%s", cs->name);
			s->qkey = cs->qkey;
			memcpy(s->mgid, mgid, 16);
			if (ib_mcast_join(dp.dev, mgid, &s->mc) != 0) {
				log_err("segment %s: cannot join its multicast "
					"group: broadcast and unknown unicast "
					"will not pass", cs->name);
				free(s);
				s = NULL;
			} else {
				dp.segments[dp.n_segments++] = s;
			}
		}
	}
	if (s)
		s->refs++;
	pthread_mutex_unlock(&dp.seg_lock);
	return s;
}

void dp_segment_put(struct dp_segment *s)
{
	pthread_mutex_lock(&dp.seg_lock);
	if (--s->refs == 0) {
		for (unsigned i = 0; i < dp.n_segments; i++) {
			if (dp.segments[i] == s) {
				dp.segments[i] = dp.segments[--dp.n_segments];
				break;
			}
		}
		ib_mcast_leave(s->mc);
		free(s);
	}
	pthread_mutex_unlock(&dp.seg_lock);
}
