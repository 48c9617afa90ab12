/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * dp_int: what the data-path files share (dp.c: cores and mailbox;
 * dp_port.c: port life cycle; dp_fast.c: the per-frame path). Not a
 * public interface.
 */
#ifndef IBVHOST_DP_INT_H
#define IBVHOST_DP_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "ibvhost/dp.h"
#include "ibvhost/fdb.h"
#include "ibvhost/ib.h"
#include "ibvhost/port.h"
#include "ibvhost/vnet.h"
#include "ibvhost/vq.h"
#include "ibvhost/wire.h"

/* Frames handled per step of a port, completions per poll. */
#define DP_BURST 32u
/* TX descriptors lent to the HCA per port at most: well below any ring
 * size a guest uses (256+), so a slow CQ never starves the guest of TX
 * descriptors, and small enough that the 16-bit slot index in wr_id never
 * wraps ambiguously. Power of two. */
#define DP_TX_INFLIGHT 128u
/* Receive WRs posted per port at most. Power of two. */
#define DP_RX_WRS 256u
/* Receive WRs a port tops up at once: fewer missing wait for the next
 * round, so a refill is worth its fixed cost. */
#define DP_RX_REFILL_MIN 8u
/* Guest RX chains one receive WR may span (mergeable buffers smaller
 * than the segment's frame). */
#define DP_RX_WR_HEADS 8u
/* Segments one guest RX chain may have (Linux "big packets" without
 * mergeable buffers uses up to 19). */
#define DP_RX_HEAD_SEGS 20u
/* Guest RX chains a port holds at most (posted or spare). Power of
 * two. */
#define DP_RX_POOL 1024u
/* Descriptors a port's TX may walk per polling round, on average: each
 * round adds this much credit (capped at this much), each chain costs the
 * descriptors it visited, and a port in debt waits. Ordinary guests (1-4
 * descriptors a frame, bursts of DP_BURST) never wait; chains of hundreds
 * of empty descriptors cannot take the core from the other ports. */
#define DP_TX_DESC_QUANTUM 128
/* Segments one TX chain may expand to before it is refused. */
#define DP_TX_SEGS VQ_SEGS_DEFAULT
/* SGEs we ask for per WR (clamped to the device). */
#define DP_SGE_WANTED 32u
/* Bytes of daemon scratch per WR: GRH + wire header, cache-line padded. */
#define DP_SCRATCH_SLOT 64u
/* An announcement: wire header + a minimum Ethernet frame. */
#define DP_ANNOUNCE_LEN (WIRE_HDR_LEN + 60u)
/* Send WRs one TX burst posts at most (a frame above one message takes
 * one per fragment). */
#define DP_TX_WRS 64u
/* The TX slot of a fragment that is not its frame's last: no chain to
 * return when it completes (chain ids are below VQ_RING_MAX_SIZE). */
#define DP_TX_NO_CHAIN 0xffffu
/* Frames a port reassembles at once (one per sending QP: a sender never
 * interleaves two frames' fragments), the guest chains one may hold, and
 * how long one may wait for its next fragment. */
#define DP_REASM_SLOTS 4u
#define DP_REASM_HEADS 64u
#define DP_REASM_TIMEOUT_S 2u
/* Completion queue entries a core starts with; the CQ grows as ports
 * join the core so that it holds a completion for every WR its ports
 * may have outstanding (dp_port.c core_add_port). */
#define DP_CQ_MIN_ENTRIES 4096u
/* Ports one core serves at most. */
#define DP_CORE_PORTS_MAX 64u
/* Adaptive polling: a core idle this long arms its CQ and the guests'
 * kicks and sleeps, at most DP_SLEEP_MAX_MS at a time (a bound for kicks
 * on an fd the frontend has replaced while we slept). */
#define DP_IDLE_BEFORE_SLEEP_NS 200000ull
#define DP_SLEEP_MAX_MS 10
/* How long a control request may wait for a polling core (it answers
 * within one polling round unless something is badly wrong). */
#define DP_MAILBOX_TIMEOUT_S 10

/* wr_id = port pointer | kind (low bits: pointers are 8-byte aligned) |
 * slot index << 48 (user-space pointers fit in 47 bits). */
#define DP_WR_KIND_TX 1u
#define DP_WR_KIND_RX 2u
#define DP_WR_KIND_ANNOUNCE 3u /* the port's announcement; its completion is ignored */
#define DP_WR_KIND_MASK 7u
#define DP_WR_IDX_SHIFT 48

enum dp_port_state {
	DP_IDLE,     /* no device: QP in RTS, nothing posted */
	DP_RUNNING,  /* moving frames */
	DP_DRAINING, /* QP in ERR, waiting for outstanding WRs to flush */
};

/* A guest RX chain popped from the avail ring and not yet used. */
/* A port's receive state that outlives the process: a file next to the
 * control socket, mapped shared. Receive chains are returned out of
 * avail order (a dropped frame's, a WR's unused mergeable ones are
 * reused later), while a frontend whose backend died restarts it at
 * used->idx (QEMU: last_avail_idx = used idx). Without this record the
 * next process would take avail entries the guest already got back
 * ("id is not a head": the guest's RX queue is dead). With it, the next
 * start on the same rings returns the chains the dead process held as
 * 0-length used entries and resumes at its avail index. */
#define DP_RXP_MAGIC 0x69627278u /* "ibrx" */
struct dp_rx_persist {
	uint32_t magic;      /* DP_RXP_MAGIC while a data path runs */
	uint32_t size;       /* the RX ring's size */
	uint64_t ring_gpa[3]; /* desc, avail, used: which rings */
	uint16_t last_avail; /* avail entries taken */
	uint16_t used;       /* used index published last */
	uint16_t pad[2];
	uint8_t held[VQ_RING_MAX_SIZE]; /* chain ids the device holds */
};

struct dp_rx_head {
	uint16_t id;
	uint16_t avail_pos; /* the avail ring entry it came from */
	uint8_t nseg;
	/* Where the frame starts when this chain comes first in a WR (after
	 * the virtio-net header the daemon writes): segs[body_seg] +
	 * body_off; body_seg == nseg if the chain holds only the header. */
	uint8_t body_seg;
	uint32_t body_off;
	uint32_t len; /* bytes in segs */
	struct vq_seg segs[DP_RX_HEAD_SEGS];
};

/* One posted receive WR: the pool indexes of the guest chains it
 * scatters into, in order, and the bytes of each it lent the HCA (all of
 * the chain unless the HCA's SGE limit cut it short). */
struct dp_rx_wr {
	uint8_t nheads;
	uint16_t heads[DP_RX_WR_HEADS];
	uint32_t cap[DP_RX_WR_HEADS];
};

/* What a started device lends the data path: its memory (registered),
 * rings and notification fds. Prepared by dp_port_start on the control
 * thread and handed to the core in one piece. */
struct dp_guest {
	struct vq_mem mem;
	unsigned n_mrs;
	struct ibv_mr *mrs[VQ_MEM_MAX_REGIONS];
	struct vnet_cfg vnet;
	bool mrg_rxbuf;		/* guest chains may be merged in one WR */
	struct vq_ring rxq, txq;
	int rx_callfd, tx_callfd;
	int rx_kickfd, tx_kickfd; /* our duplicates, -1 for none */
};

/* A fragmented frame being received (dp_fast.c rx_first/rx_cont): the
 * guest chains its fragments landed in, in frame order, and the bytes of
 * each. With mergeable buffers they are the frame's buffers; without,
 * the first chain holds the whole frame and later fragments are copied
 * into it (their chains go back to the spares). */
struct dp_reasm {
	bool active;
	bool copy;		/* no mergeable buffers: fragments copied */
	bool discard;		/* refused (too big): continuations skipped */
	uint16_t frame_id;
	uint16_t lid;
	uint32_t qpn;
	uint8_t gid[16];	/* RoCE: the sender's GID */
	uint32_t frame_len, next; /* bytes of the frame, bytes received */
	uint64_t since_s;
	struct wire_offload off;
	uint16_t nheads;
	uint16_t heads[DP_REASM_HEADS];
	uint32_t used[DP_REASM_HEADS];
};

struct dp_core;

struct dp_port {
	struct port *port;	/* control-plane side (name, cfg, counters) */
	struct dp_core *core;
	struct dp_segment *seg;
	char name[CFG_NAME_MAX];
	bool has_mac;
	uint8_t mac[6];
	uint32_t max_frame;	/* Ethernet frame bytes, headers included */

	/* IB objects: created on the control plane, used by the core. */
	struct ibv_qp *qp;
	uint32_t qkey;
	struct ib_qp_caps caps;
	uint8_t *scratch;	/* TX wire headers, RX GRH+wire, bounce */
	struct ibv_mr *scratch_mr;
	struct fdb *fdb;
	atomic_bool started;	/* control plane: between start and stop */

	/* Everything below belongs to the core's thread. */
	enum dp_port_state state;
	bool stop_requested;	/* DRAINING towards IDLE (not recovery) */
	struct dp_guest g;	/* the running device, set by start */
	bool rx_dirty, tx_dirty; /* used entries put, not yet published */

	/* TX: slots tx_tail..tx_head hold heads lent to the HCA. */
	uint16_t tx_head, tx_tail;
	uint16_t tx_ids[DP_TX_INFLIGHT];
	uint16_t tx_unsignaled;	/* sends posted since the last signaled one */
	uint16_t tx_frame_id;	/* the next fragmented frame's number */
	int32_t tx_credit;	/* descriptors TX may still walk (DP_TX_DESC_QUANTUM) */

	/* RX: WRs rx_tail..rx_head are posted. Popped chains live in
	 * `pool`; `spare` is a FIFO of pool indexes popped but not in a
	 * posted WR (a completed WR's unused chains, or chains gathered while
	 * the ring ran dry): kept for the next WR, never returned empty. */
	uint16_t rx_head, rx_tail;
	bool rx_starved;	/* no receive posted: counted once per episode */
	/* The last source learned, to skip the FDB when a burst comes from
	 * one peer: refreshed at most once per second. */
	struct {
		uint8_t mac[6];
		uint16_t lid;
		uint32_t qpn;
		uint64_t when_s;
	} learned;
	struct dp_rx_wr rx[DP_RX_WRS];
	unsigned n_reasm;	/* active reassembly slots */
	struct dp_reasm reasm[DP_REASM_SLOTS];
	uint16_t spare_head, spare_tail;
	uint16_t spare[DP_RX_POOL];
	uint16_t n_free;
	uint16_t free_list[DP_RX_POOL];
	struct dp_rx_head pool[DP_RX_POOL];

	uint8_t *bounce;	/* one path-MTU buffer per TX slot */
	/* The last SGE of every receive WR: room for the rest of a path-MTU
	 * message, so that a message longer than the guest's buffers
	 * completes (and is dropped, counted) instead of failing the QP.
	 * Its content is never read. */
	uint8_t *discard;
	uint32_t discard_len;
	uint8_t *announce;	/* DP_ANNOUNCE_LEN bytes: wire header + frame */
	struct dp_rx_persist *rxp; /* shared mapping (or anonymous memory) */
	bool rxp_file;		/* rxp is the file's mapping */
	bool mtu_mismatch_logged; /* a peer above the segment MTU, once */
	bool broken;		/* a hostile ring: stopped until restart */
	bool fds_blocked;	/* a guest fd blocked: never touched again */
	uint64_t qp_recoveries;
	uint64_t mrs_registered, mrs_deregistered;
};

/* A segment's multicast group, shared by the local ports of the segment. */
/* A local port of the segment with a configured MAC: frames claiming
 * that MAC as source are its own only if they come from its QP. */
struct dp_local_mac {
	uint64_t key; /* [atomic] MAC in the low 48 bits, bit 63 set; 0: free */
	uint32_t qpn;
};

struct dp_segment {
	char name[CFG_NAME_MAX];
	uint32_t qkey;
	uint8_t mgid[16];
	unsigned refs;
	struct ib_mcast *mc;
	/* Written by the main thread (port create/destroy: qpn first, then
	 * key with release; key cleared first), read by every core. */
	struct dp_local_mac local[CFG_PORTS_MAX];
};

/* The MAC as a dp_local_mac key. */
static inline uint64_t dp_local_mac_key(const uint8_t mac[6])
{
	uint64_t k = 1ull << 63;

	for (unsigned i = 0; i < 6; i++)
		k |= (uint64_t)mac[i] << (8 * i);
	return k;
}

/* A request for a core, executed on its thread. */
struct dp_request {
	int (*fn)(struct dp_core *core, struct dp_request *req);
	struct dp_port *port;
	void *arg;
	int result;
	bool deferred; /* fn did not finish; completed later by the core */
	sem_t done;
};

struct dp_core {
	unsigned cpu;
	pthread_t thread;
	bool thread_started;
	struct ibv_cq *cq;
	struct ibv_comp_channel *channel; /* adaptive polling: CQ events */
	int wake_fd;	/* eventfd: a mailbox request for a sleeping core */
	bool adaptive;
	uint64_t sleeps, wakeups_cq, wakeups_kick, wakeups_mailbox;
	/* [atomic] When the core entered a read or write on a guest's
	 * eventfd (ns, CLOCK_MONOTONIC, odd), 0 outside: the main thread
	 * interrupts one that lasts (dp_check_cores). */
	uint64_t guest_fd_since;
	atomic_bool stop;
	/* One-slot mailbox: senders serialise on `mailbox_lock` (control
	 * plane only); the core reads `mailbox` once per round. */
	pthread_mutex_t mailbox_lock;
	_Atomic(struct dp_request *) mailbox;
	struct dp_request *pending_stop; /* a deferred stop in progress */

	uint64_t now_s;	/* coarse clock, read once per completion burst */
	/* WRs the core's ports may have outstanding (send + receive queue
	 * depths); the CQ holds at least as many entries. Core-owned. */
	uint32_t cq_need;
	uint32_t cq_resizes;
	unsigned n_ports;
	struct dp_port *ports[DP_CORE_PORTS_MAX];
};

struct dp_global {
	struct ib_dev *dev;
	/* Receive state files: this path + ".rx-" + port name (the control
	 * socket's path, unique per daemon). */
	char rxp_prefix[CFG_SOCKET_PATH_MAX];
	unsigned n_cores;
	struct dp_core *cores;
	unsigned next_core;
	pthread_mutex_t seg_lock;
	unsigned n_segments;
	struct dp_segment *segments[CFG_SEGMENTS_MAX];
};

extern struct dp_global dp;

struct dp_segment *dp_segment_get(const struct cfg_segment *cs);
void dp_segment_put(struct dp_segment *s);

/* Run `fn` on the port's core and wait for it. Returns req->result. */
int dp_core_call(struct dp_core *core, struct dp_request *req);
/* Finish a request whose fn set `deferred`. */
void dp_request_complete(struct dp_request *req, int result);

/* dp_fast.c: one polling round over a core's ports, and the pieces the
 * life cycle needs. */
bool dp_core_round(struct dp_core *core);
int dp_core_poll_cq(struct dp_core *core);
void dp_port_announce(struct dp_port *d);
void dp_core_sleep(struct dp_core *core);
unsigned dp_port_refill_rx(struct dp_port *dp);
void dp_port_begin_drain(struct dp_port *dp);
bool dp_port_drained(const struct dp_port *dp);
void dp_port_finish_drain(struct dp_port *dp);

static inline uint64_t dp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Relaxed counter update: the core is the only writer, readers on other
 * threads see whole 64-bit values. */
#define DP_COUNT(dp, field, n)                                                 \
	__atomic_store_n(&(dp)->port->counters.field,                          \
			 (dp)->port->counters.field + (n), __ATOMIC_RELAXED)

#endif
