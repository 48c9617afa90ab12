/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * vhu: a vhost-user frontend for tests. It plays the guest: owns a memfd
 * "guest memory", speaks the vhost-user protocol to a backend, and drives
 * the two virtio-net split virtqueues (0 = RX, 1 = TX) on that memory.
 *
 * vhu_proto.c  messages, negotiation, memory table, ring setup and stop
 * vhu_ring.c   guest memory allocator, canaries, split virtqueues
 * vhu_net.c    virtio-net RX/TX on the rings, test frame format
 * vhu_hostile.c  protocol and ring misbehaviour cases
 * vhu_json.c     the one-line JSON summary
 * vhu_frontend.c the CLI (usage: vhu-frontend --help)
 */
#ifndef VHU_H
#define VHU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

/* ---- vhost-user wire protocol ------------------------------------------ */

enum vhu_req {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_LOG_BASE = 6,
	VHU_SET_LOG_FD = 7,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SEND_RARP = 19,
	VHU_NET_SET_MTU = 20,
	VHU_REQ_MAX,
	VHU_GET_INFLIGHT_FD = 31,
	VHU_SET_INFLIGHT_FD = 32,
};

#define VHU_HDR_VERSION 0x1u
#define VHU_HDR_F_REPLY 0x4u
#define VHU_HDR_F_NEED_REPLY 0x8u
#define VHU_VRING_NOFD (1u << 8)
#define VHU_MAX_REGIONS 8
#define VHU_MAX_FDS 8
#define VHU_PAYLOAD_MAX 512

#define VHU_F_PROTOCOL_FEATURES 30
#define VHU_PF_MQ 0
#define VHU_PF_REPLY_ACK 3
#define VHU_PF_NET_MTU 4

struct vhu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

struct vhu_region_wire {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vhu_mem_wire {
	uint32_t nregions;
	uint32_t padding;
	struct vhu_region_wire r[VHU_MAX_REGIONS];
};

struct vhu_state_wire {
	uint32_t index;
	uint32_t num;
};

struct vhu_addr_wire {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_msg {
	struct vhu_msg_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_state_wire state;
		struct vhu_addr_wire addr;
		struct vhu_mem_wire mem;
		uint8_t raw[VHU_PAYLOAD_MAX];
	} p;
};

/* ---- guest memory -------------------------------------------------------- */

#define VHU_CANARY 0xa5u
#define VHU_MAX_ALLOCS (2 * 32768 + 256) /* RX buffers + TX slots of a 32768 ring */
#define VHU_REGION1_GPA 0x100000000ull /* second region sits above 4 GiB */

struct vhu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;
	uint8_t *va;
	uint64_t next; /* bump allocator, offset into the region */
};

struct vhu_alloc {
	uint8_t region;
	uint64_t off;
	uint64_t len;
};

struct vhu_mem {
	int fd;
	size_t size;
	uint8_t *base;
	unsigned nregions;
	struct vhu_region r[2];
	unsigned nallocs;
	struct vhu_alloc allocs[VHU_MAX_ALLOCS];
};

int vhu_mem_init(struct vhu_mem *m, size_t size, unsigned nregions);
void vhu_mem_fini(struct vhu_mem *m);
/* Returns the guest-physical address of len bytes in region r, 0 when full. */
uint64_t vhu_mem_alloc(struct vhu_mem *m, unsigned r, uint64_t len, uint64_t align);
void *vhu_gpa_va(const struct vhu_mem *m, uint64_t gpa, uint64_t len);
/* Bytes outside every allocation that no longer hold the canary. */
uint64_t vhu_mem_canary_changed(const struct vhu_mem *m);

/* ---- split virtqueue ----------------------------------------------------- */

struct vhu_vq {
	unsigned index;
	uint16_t num;
	bool event_idx;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	int kickfd;
	int callfd;
	uint16_t avail_idx;  /* next avail index to publish */
	uint16_t kicked_idx; /* avail index at the last kick decision */
	uint16_t last_used;
	uint32_t start_base; /* SET_VRING_BASE value when nonzero, else last_used */
	uint64_t kicks;
	uint64_t calls;
};

int vhu_vq_init(struct vhu_vq *vq, struct vhu_mem *m, unsigned index,
		uint16_t num, bool event_idx);
void vhu_vq_fini(struct vhu_vq *vq);
void vhu_vq_push(struct vhu_vq *vq, uint16_t head);
/* Publishes pushed heads; kicks unless the device suppressed it. */
void vhu_vq_publish(struct vhu_vq *vq);
bool vhu_vq_get_used(struct vhu_vq *vq, uint32_t *id, uint32_t *len);
/* Asks for a call at the next used entry; true if one is already there. */
bool vhu_vq_want_call(struct vhu_vq *vq);
uint16_t vhu_vq_used_idx(const struct vhu_vq *vq);
void vhu_vq_drain_call(struct vhu_vq *vq);

/* ---- device: connection, negotiation, rings ---------------------------- */

struct vhu_opts {
	const char *socket;
	bool listen;
	uint8_t mac[6];
	unsigned ring;
	unsigned mem_mb;
	unsigned regions;
	uint64_t features_mask;
	unsigned rx_buf;
	unsigned mtu;
	unsigned timeout_ms;
	bool busy_poll;
	bool verbose;
	bool indirect;
	unsigned segments;
	bool hdr_desc;
	unsigned tx_max_frame;
};

#define VHU_DEFAULT_FEATURES                                                   \
	((1ull << 32) | (1ull << 15) | (1ull << 0) | (1ull << 1) |             \
	 (1ull << 29) | (1ull << 3) | (1ull << VHU_F_PROTOCOL_FEATURES))

struct vhu_frame;

struct vhu_dev {
	struct vhu_opts o;
	int sock;
	bool closed;
	uint64_t features_offered;
	uint64_t features;
	uint64_t proto_offered;
	uint64_t proto;
	struct vhu_mem mem;
	struct vhu_vq vq[2];
	unsigned hdr_len;
	bool mrg;
	/* RX: descriptor i is buffer i of rx_buf bytes */
	uint64_t *rx_gpa;
	uint16_t *rx_free;
	unsigned rx_nfree;
	bool *rx_posted;
	bool *tx_busy;
	uint32_t rx_buf;
	uint8_t *rx_frame; /* reassembly */
	uint32_t rx_frame_cap;
	/* TX: slot s owns descriptors [s*tx_descs, (s+1)*tx_descs) */
	unsigned tx_descs;
	unsigned tx_slots;
	uint64_t *tx_gpa;      /* frame buffer of each slot */
	uint64_t *tx_ind_gpa;  /* indirect table of each slot */
	uint16_t *tx_free;
	unsigned tx_nfree;
	uint64_t tx_slot_len;
	/* counters */
	uint64_t rx_frames, rx_bytes, rx_bad_used, tx_frames, tx_bytes;
	uint64_t tx_reaped, tx_bad_used;
	uint64_t rx_flags_needs_csum, rx_flags_data_valid;
	uint64_t rx_max_bufs;
	uint32_t base_at_stop[2];
	bool stopped;
	char err[256];
};

/* Connects (or listens and accepts), negotiates and starts both rings. */
int vhu_dev_open(struct vhu_dev *d, const struct vhu_opts *o);
/* Connection and memory only; rings set up later (hostile cases). */
int vhu_dev_connect(struct vhu_dev *d, const struct vhu_opts *o);
int vhu_dev_negotiate(struct vhu_dev *d);
int vhu_dev_set_mem_table(struct vhu_dev *d);
int vhu_dev_start_ring(struct vhu_dev *d, unsigned q);
int vhu_dev_stop(struct vhu_dev *d);
void vhu_dev_close(struct vhu_dev *d);

int vhu_msg_send(int fd, uint32_t req, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds);
int vhu_msg_recv(int fd, struct vhu_msg *m, unsigned timeout_ms);
/* Sends a request and reads its reply (or its REPLY_ACK when negotiated).
 * reply may be NULL for requests without a reply. 0 or -errno. */
int vhu_request(struct vhu_dev *d, uint32_t req, const void *payload,
		uint32_t size, const int *fds, unsigned nfds,
		struct vhu_msg *reply);
const char *vhu_req_name(uint32_t req);
/* True when the backend closed the connection (checked without blocking). */
bool vhu_peer_closed(struct vhu_dev *d, unsigned wait_ms);

/* ---- virtio-net on the rings -------------------------------------------- */

#define VHU_ETHERTYPE_TEST 0x88b5
#define VHU_MAGIC 0x56485531u /* "VHU1" */

struct vhu_rx_info {
	uint8_t flags;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
	uint32_t len; /* frame length without the virtio-net header */
	const uint8_t *frame;
};

struct vhu_tx_req {
	const uint8_t *frame;
	uint32_t len;
	uint8_t flags;
	uint16_t csum_start;
	uint16_t csum_offset;
};

int vhu_net_init(struct vhu_dev *d);
void vhu_net_fini(struct vhu_dev *d);
/* Posts every free RX descriptor. */
void vhu_net_rx_refill(struct vhu_dev *d);
/* One received frame: 1, none: 0, malformed used entries: -1 (counted). */
int vhu_net_rx(struct vhu_dev *d, struct vhu_rx_info *info);
/* Queues one frame; -EAGAIN when every TX slot is in flight. */
int vhu_net_tx(struct vhu_dev *d, const struct vhu_tx_req *r);
void vhu_net_tx_reap(struct vhu_dev *d);
/* Waits for a call, a used entry or timeout. */
void vhu_net_wait(struct vhu_dev *d, unsigned timeout_ms);

/* Test frames: Ethernet (or IPv4/UDP with csum) + sequence + pattern. */
struct vhu_frame_meta {
	uint8_t dst[6];
	uint8_t src[6];
	uint64_t seq;
	uint32_t seed;
	bool udp;
};

#define VHU_FRAME_MIN 38u
#define VHU_FRAME_MIN_UDP 66u

uint32_t vhu_frame_build(uint8_t *buf, uint32_t size,
			 const struct vhu_frame_meta *fm,
			 struct vhu_tx_req *req);
enum vhu_check {
	VHU_CHECK_OK,
	VHU_CHECK_NOT_TEST,
	VHU_CHECK_BAD_LEN,
	VHU_CHECK_BAD_PATTERN,
	VHU_CHECK_BAD_CSUM,
};
enum vhu_check vhu_frame_check(const struct vhu_rx_info *ri,
			       struct vhu_frame_meta *fm);
const char *vhu_check_name(enum vhu_check c);

int vhu_hostile_run(const struct vhu_opts *o, const char *name);
void vhu_hostile_list(void);

/* JSON summary line: vj_key opens the object on first use, vj_end closes it. */
void vj_key(const char *k);
void vj_u64(const char *k, uint64_t v);
void vj_hex(const char *k, uint64_t v);
void vj_dbl(const char *k, double v);
void vj_bool(const char *k, bool v);
void vj_str(const char *k, const char *v);
void vj_end(void);

uint64_t vhu_now_ns(void);
int vhu_parse_mac(const char *s, uint8_t mac[6]);
void vhu_fmt_mac(const uint8_t mac[6], char out[18]);

#endif
