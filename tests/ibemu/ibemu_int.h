/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibemu internals: the shared-memory fabric (nodes, QP table, multicast
 * groups, per-QP inbox rings) and the process-local verbs objects.
 *
 * Shared state lives in /dev/shm/ibemu-<fabric> (control plane, one robust
 * mutex) and one file per QP, /dev/shm/ibemu-<fabric>.q<idx>, holding that
 * QP's inbox ring. Senders copy a gathered message into a ring slot; the
 * owner scatters it into its posted receive WRs when it polls the CQ.
 */
#ifndef IBEMU_INT_H
#define IBEMU_INT_H

#include <infiniband/verbs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "ibemu.h"

#define IBEMU_EXPORT __attribute__((visibility("default")))

#define IBEMU_MAGIC          0x69626d75u /* "ibmu" */
#define IBEMU_VERSION        4u
#define IBEMU_MAX_NODES      64u
#define IBEMU_QP_IDX_BITS    12u
#define IBEMU_MAX_QPS        (1u << IBEMU_QP_IDX_BITS)
#define IBEMU_QP_IDX_MASK    (IBEMU_MAX_QPS - 1u)
#define IBEMU_MAX_CQS        256u   /* per node */
#define IBEMU_MAX_MCAST      256u
#define IBEMU_MCAST_MEMBERS  64u
#define IBEMU_MAX_MR         16384u
#define IBEMU_MAX_WR         16384u
#define IBEMU_MAX_SGE        30u
#define IBEMU_MAX_INLINE     512u
#define IBEMU_MAX_CQE        (1u << 22)
#define IBEMU_GRH_LEN        40u
#define IBEMU_MCAST_QPN      0xFFFFFFu
#define IBEMU_MLID_BASE      0xC000u
#define IBEMU_PKEY_TBL_LEN   128u
#define IBEMU_GID_TBL_LEN    16u
#define IBEMU_CLOSED_BIT     (1ull << 63)
#define IBEMU_SLOT_HDR       64u
#define IBEMU_NO_CQ          0xFFFFFFFFu
/* slot: header, GRH area, payload of the largest MTU */
#define IBEMU_SLOT_SIZE      ((IBEMU_SLOT_HDR + IBEMU_GRH_LEN + 4096u + 63u) & ~63u)

/* Counters in shared memory: same layout as struct ibemu_counters. */
#define IBEMU_COUNT(node, field) \
	__atomic_fetch_add(&(node)->counters.field, 1, __ATOMIC_RELAXED)
#define IBEMU_ADD(node, field, v) \
	__atomic_fetch_add(&(node)->counters.field, (v), __ATOMIC_RELAXED)

/* Armed state of one CQ, written by its owner, consumed by any sender. */
struct shm_cq_notify {
	_Atomic uint32_t armed;     /* 0, IBEMU_ARM_ANY or IBEMU_ARM_SOLICITED */
	uint32_t chan_id;           /* completion channel of the owner, or ~0 */
	uint32_t gen;
	uint32_t pad[13];
};
enum { IBEMU_ARM_ANY = 1, IBEMU_ARM_SOLICITED = 2 };

/* An rdma_cm listener (SIDR service) of a node. */
#define IBEMU_MAX_LISTEN 32u
struct shm_cm_listen {
	_Atomic uint32_t in_use;
	uint16_t port;
	uint16_t ps;
	uint32_t chan_id;
	uint32_t pad;
};

struct shm_node {
	_Atomic uint32_t in_use;
	pid_t pid;
	uint64_t start_time;        /* /proc/<pid>/stat starttime: pid reuse */
	uint16_t lid;
	uint8_t pad0[6];
	uint64_t guid_be;           /* port GUID = node GUID, network order */
	uint32_t ip_be;             /* emulated IPoIB address */
	uint32_t gen;
	uint8_t pad1[24];
	struct ibemu_counters counters;
	struct shm_cq_notify cq[IBEMU_MAX_CQS];
	struct shm_cm_listen cm_listen[IBEMU_MAX_LISTEN];
};

struct shm_qp {
	_Atomic uint32_t gen;       /* QPN = gen << 12 | idx */
	_Atomic uint32_t node_plus1; /* owner node + 1, 0 = free */
};

struct shm_mcast {
	_Atomic uint32_t in_use;
	uint16_t mlid;
	uint16_t pad;
	uint8_t mgid[16];
	_Atomic uint32_t members[IBEMU_MCAST_MEMBERS]; /* QPNs, 0 = empty */
};

struct shm_fabric {
	uint32_t magic;
	uint32_t version;
	_Atomic uint32_t ready;
	uint32_t pad;
	pthread_mutex_t lock;       /* robust, process-shared; control plane only */
	struct shm_node node[IBEMU_MAX_NODES];
	struct shm_qp qp[IBEMU_MAX_QPS];
	struct shm_mcast mcast[IBEMU_MAX_MCAST];
};

/* Head of a QP's inbox file, followed by `slots` slots of `slot_size`. */
struct ring_hdr {
	uint32_t magic;
	uint32_t slots;             /* power of two, >= max_recv_wr */
	uint32_t slot_size;
	uint32_t owner_node;
	uint32_t qpn;
	_Atomic uint32_t qkey;
	_Atomic uint32_t cq_slot;   /* receive CQ's notify slot in owner node */
	_Atomic uint32_t flags;     /* IBEMU_RING_* */
	_Atomic uint32_t epoch;     /* +1 each time the inbox closes */
	uint32_t nonce;             /* this inbox among all that had its QPN */
	uint8_t pad0[24];
	/* receive credits: claimed by senders with CAS, bounded by posted;
	 * bit 63 set while the QP is not able to receive (RESET/INIT/ERR) */
	_Alignas(64) _Atomic uint64_t claimed;
	_Alignas(64) _Atomic uint64_t posted;
	uint8_t pad1[56];
};
enum { IBEMU_RING_BLOCK_SELF_MC = 1 };

enum { SLOT_GRH = 1, SLOT_IMM = 2, SLOT_SOLICITED = 4, SLOT_LATE = 8 };
struct slot_hdr {
	_Atomic uint64_t seq;       /* credit index + 1 once the data is written */
	uint32_t len;               /* payload bytes (GRH area excluded) */
	uint32_t src_qpn;
	uint16_t slid;
	uint8_t sl;
	uint8_t flags;
	uint32_t imm_be;
	uint32_t writer_node;
	uint32_t pad;
	uint64_t deliver_at_ns;     /* fault latency */
	uint8_t pad2[24];
};

/* A device's queues: their own pages, resident from creation, returned
 * to the kernel when destroyed. Calloc'd queues would be paged in as
 * posting walks through them and, once glibc's mmap threshold has risen,
 * fragment the program's heap: leak checks would measure the emulator. */
static inline void *ibemu_queue_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline void ibemu_queue_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

static inline struct slot_hdr *ring_slot(struct ring_hdr *h, uint64_t i)
{
	return (struct slot_hdr *)((uint8_t *)(h + 1) +
				   (i & (h->slots - 1)) * (size_t)IBEMU_SLOT_SIZE);
}

/* ---------------- process-local objects ---------------- */

struct ibemu_context {
	struct verbs_context vctx;  /* must be first: ibv_context is its tail */
	int async_fd[2];            /* [0] given to the user, [1] written */
};

struct ibemu_pd {
	struct ibv_pd ibv;
};

struct ibemu_mr {
	struct ibv_mr ibv;
	uintptr_t start;
	uintptr_t end;              /* exclusive */
	unsigned access;
};

struct ibemu_ah {
	struct ibv_ah ibv;
	struct ibv_ah_attr attr;
	uint8_t grh[IBEMU_GRH_LEN]; /* prebuilt when is_global */
	/* route cache, revalidated on use */
	_Atomic int32_t node;       /* unicast destination node, -1 unknown */
	_Atomic uint32_t node_gen;
	_Atomic int32_t group;      /* multicast group, -1 unknown */
};

struct ibemu_cqe {
	struct ibv_wc wc;
	struct ibemu_qp *sq_qp;     /* send completions retire SQ slots */
	uint64_t sq_idx;
};

struct ibemu_cq {
	struct ibv_cq ibv;
	uint32_t slot;              /* index in node cq[] and in g.cq_by_slot */
	uint32_t gen;
	pthread_spinlock_t lock;
	struct ibemu_cqe *ring;     /* locally generated completions */
	uint32_t ring_mask;
	uint64_t ring_head, ring_tail;
	bool overflow;
	struct ibemu_qp **rx_qps;   /* QPs whose recv_cq is this CQ */
	uint32_t n_rx_qps, cap_rx_qps, rr;
	uint32_t users;             /* QPs using it as send or recv CQ */
	uint64_t wr_capacity;       /* sum of the WQ depths feeding it */
	bool may_overflow;          /* cqe < wr_capacity: check when polling */
	uint32_t idle_polls;
};

struct ibemu_chan {
	struct ibv_comp_channel ibv;
	uint32_t id;
};

struct ibemu_recv_wqe {
	uint64_t wr_id;
	uint32_t num_sge;
	struct ibv_sge sge[];       /* max_recv_sge entries */
};

struct ibemu_qp {
	struct ibv_qp ibv;
	uint32_t idx;
	pthread_spinlock_t sq_lock;
	pthread_spinlock_t rq_lock;
	struct ring_hdr *ring;      /* own inbox, mapped */
	size_t ring_bytes;
	enum ibv_qp_state state;
	uint32_t qkey;
	uint32_t sq_psn;
	uint16_t pkey_index;
	uint8_t port_num;
	bool sq_sig_all;
	struct ibv_qp_cap cap;
	uint64_t sq_posted, sq_retired; /* SQ occupancy: retired by polled CQEs */
	uint64_t rq_head;           /* next inbox slot (credit index) to consume */
	uint64_t wqe_head, wqe_tail; /* local receive WQE FIFO */
	uint64_t stuck_idx, stuck_since; /* slot whose writer never finished */
	uint32_t rq_slots;
	uint8_t *rq_wqes;           /* rq_slots * wqe_size */
	uint32_t rq_wqe_size;
	uint64_t sends;             /* for the qp_error_after fault */
	uint32_t mcast_count;
};

/* The process is one node; every context opened in it shares it. */
struct ibemu_global {
	pthread_mutex_t lock;
	int refs;
	struct shm_fabric *fab;
	int fab_fd;
	uint32_t node_idx;
	struct shm_node *me;
	char fabric[64];
	char shm_dir[128];
	uint32_t mtu_bytes;
	enum ibv_mtu mtu_enum;
	struct ibemu_mr *_Atomic mr[IBEMU_MAX_MR];
	uint32_t mr_key_seq;
	struct ibemu_cq *cq_by_slot[IBEMU_MAX_CQS];
	struct ibemu_qp *qp_by_idx[IBEMU_MAX_QPS];
	uint32_t next_chan_id;
};
extern struct ibemu_global ibemu_g;

/* remote inbox mapping cache */
struct ring_map {
	_Atomic uint32_t gen;
	struct ring_hdr *_Atomic hdr;
	size_t bytes;
};

/* faults.c */
struct ibemu_faults {
	uint32_t drop_pct;
	uint64_t qp_error_after;
	uint64_t reg_mr_max;
	uint32_t latency_us;
	uint16_t only_lid;
};
extern struct ibemu_faults ibemu_faults_now;
extern _Atomic int ibemu_faults_active;
void ibemu_faults_init(void);
void ibemu_faults_tick(void);
bool ibemu_fault_drop(void);

/* fabric.c */
int ibemu_fabric_attach(void);
void ibemu_fabric_detach(void);
int ibemu_fab_lock(void);
void ibemu_fab_unlock(void);
void ibemu_reclaim_dead(void);
int ibemu_node_by_lid(uint16_t lid);
int ibemu_node_by_gid(const uint8_t gid[16]);
int ibemu_node_by_ip(uint32_t ip_be);
void ibemu_node_gid(const struct shm_node *n, union ibv_gid *gid);
int ibemu_ring_path(char *buf, size_t len, uint32_t idx);
struct ring_hdr *ibemu_ring_lookup(uint32_t qpn);
uint64_t ibemu_now_ns(void);
void ibemu_tx_enter(void);
void ibemu_tx_leave(void);
void ibemu_maintenance(void);

/* verbs_dev.c */
void ibemu_async_event(struct ibv_context *ctx, enum ibv_event_type type,
		       void *obj);
int ibemu_port_mtu_bytes(void);

/* verbs_mem.c */
struct ibemu_mr *ibemu_mr_lookup(uint32_t lkey);

/* cq.c */
int ibemu_cq_push(struct ibemu_cq *cq, const struct ibv_wc *wc,
		  struct ibemu_qp *sq_qp, uint64_t sq_idx, bool locked);
void ibemu_cq_signal(uint32_t node, uint32_t cq_slot, bool solicited);
int ibemu_cq_attach_rx(struct ibemu_cq *cq, struct ibemu_qp *qp);
void ibemu_cq_detach_rx(struct ibemu_cq *cq, struct ibemu_qp *qp);
int ibemu_poll_cq(struct ibv_cq *ibcq, int num, struct ibv_wc *wc);
int ibemu_req_notify_cq(struct ibv_cq *ibcq, int solicited_only);

/* verbs_qp.c / qp_rx.c */
int ibemu_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		    struct ibv_send_wr **bad);
int ibemu_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		    struct ibv_recv_wr **bad);
int ibemu_qp_rx_progress(struct ibemu_qp *qp, struct ibv_wc *wc, int max);
uint64_t ibemu_qp_rx_pending(struct ibemu_qp *qp);
void ibemu_qp_to_error(struct ibemu_qp *qp, bool rcq_locked);
void ibemu_qp_close_ring(struct ibemu_qp *qp);
struct ibv_qp *ibemu_create_qp_ex(struct ibv_context *ctx,
				  struct ibv_qp_init_attr_ex *ax);

/* mcast.c */
int ibemu_mcast_find_or_create(const uint8_t mgid[16], uint16_t lid_hint,
			       uint16_t *mlid);
int ibemu_mcast_by_mlid(uint16_t mlid);
void ibemu_mcast_remove_qpn_locked(uint32_t qpn);

/* delivery, qp_tx.c */
struct ibemu_msg {
	const struct iovec *iov;
	uint32_t iovcnt;
	uint32_t len;
	uint32_t src_qpn;
	uint32_t imm_be;
	uint8_t flags;              /* SLOT_* */
	uint8_t sl;
	const uint8_t *grh;         /* NULL when the AH is not global */
	uint32_t qkey;
};
void ibemu_deliver_unicast(uint32_t dest_node, uint32_t dest_qpn,
			   const struct ibemu_msg *m);
void ibemu_deliver_mcast(int group, const struct ibemu_msg *m);

#endif
