/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vq — guest memory translation and split-virtqueue walking.
 *
 * Owns: the validated guest memory table (GPA → HVA + lkey), the walk of
 * one descriptor chain into a segment list, the used ring, and the
 * notification decisions (calls to the guest, kicks from the guest).
 *
 * Pure code: no DPDK, no verbs, no allocation, no syscalls. Everything in
 * guest memory is untrusted and may change under us at any moment (the
 * guest's vCPUs write it concurrently): every guest field is loaded once
 * into a local copy and only the copy is validated and used.
 *
 * Threading: a struct vq_ring and the struct vq_mem it is walked against
 * belong to one thread (the port's polling thread). Replacing the memory
 * table while a walk runs, or while segments produced from it are in
 * flight, is the caller's job to prevent (quiesce first).
 *
 * Host byte order is assumed little-endian (as virtio 1.0 and every legacy
 * x86/arm64 guest on such a host).
 *
 * Per burst, TX (guest → wire):
 *   vq_avail_count(r, &n)            error → stop the queue
 *   for k < min(n, 32):
 *     vq_walk_chain(r, mem, vq_avail_head(r, k), VQ_DIR_TX, segs, 64, &c)
 *                                    error → count it, stop the queue
 *     vnet_tx_parse(cfg, segs, c.nseg, &tx)
 *                                    error → count, drop: used (c.head, 0)
 *     vq_segs_read(segs + tx.first, .., 0, macs, 12)   FDB / anti-spoof
 *     wire_hdr_build(sge0, &tx.off); SGE1.. = segs[tx.first..c.nseg)
 *   vq_avail_consume(r, k)
 *   on send completion: vq_used_put(r, c.head, 0) ...; vq_used_publish(r);
 *   if (vq_need_call(r)) call the guest.
 *
 * RX (wire → guest), when posting: walk chains with VQ_DIR_RX; for the
 * first chain of a message keep vnet_rx_hdr_segs() and post
 * segs + vq_segs_advance(segs, nseg, hdr_len), then further chains
 * whole. On completion: wire_hdr_parse() the scratch after the GRH,
 * vnet_rx_spread() the bytes (hdr_len + frame) over the chains' lengths
 * (num_buffers = its result), vnet_rx_write_hdr() into the kept header
 * segments, vq_used_put() each filled chain, vq_used_publish(),
 * vq_need_call(). Chains that received nothing stay for the next post.
 */
#ifndef IBVHOST_VQ_H
#define IBVHOST_VQ_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

/* vhost-user allows 8 regions by default, up to 509 with
 * CONFIGURE_MEM_SLOTS; we keep the lookup a short linear scan. */
#define VQ_MEM_MAX_REGIONS 32u

/* Largest split ring the virtio spec allows (entries). */
#define VQ_RING_MAX_SIZE 32768u

/* Upper bound on the bytes one chain may describe. Far above any frame we
 * carry (path MTU ≤ 4096, no TSO) and far below 2^32, so sums of
 * descriptor lengths never wrap a 32-bit length. */
#define VQ_CHAIN_MAX_BYTES (16u * 1024u * 1024u)

/* Segments a chain may expand to when the caller does not care to pick:
 * enough for any sane chain (descriptors split at region borders count
 * twice). */
#define VQ_SEGS_DEFAULT 64u

/* Size of one descriptor as laid out in guest memory (bytes). */
#define VQ_DESC_SIZE 16u

/* One failure kind per value, so the data path can count each one. */
enum vq_err {
	VQ_OK = 0,
	VQ_ERR_AVAIL_IDX,        /* avail->idx ran more than size ahead */
	VQ_ERR_HEAD_IDX,         /* head index >= ring size */
	VQ_ERR_NEXT_IDX,         /* next index >= ring/table size */
	VQ_ERR_CHAIN_LOOP,       /* more descriptors than the table holds */
	VQ_ERR_DESC_ADDR,        /* buffer not (fully) inside guest memory */
	VQ_ERR_DIRECTION,        /* write-only in TX or read-only in RX */
	VQ_ERR_TOO_MANY_SEGS,    /* more segments than the caller's array */
	VQ_ERR_CHAIN_BYTES,      /* chain describes > VQ_CHAIN_MAX_BYTES */
	VQ_ERR_EMPTY_CHAIN,      /* chain describes zero bytes */
	VQ_ERR_INDIRECT_LEN,     /* table length 0, not 16*n, or > size */
	VQ_ERR_INDIRECT_ADDR,    /* table not inside one guest region */
	VQ_ERR_INDIRECT_NESTED,  /* indirect descriptor inside a table */
	VQ_ERR_INDIRECT_NEXT,    /* INDIRECT together with NEXT */
	VQ_ERR_INDIRECT_NOT_HEAD,/* INDIRECT after a chained descriptor */
	VQ_ERR_INDIRECT_OFF,     /* INDIRECT_DESC not negotiated */
	VQ_ERR_HDR_SHORT,        /* chain shorter than the virtio-net header */
	VQ_ERR_HDR_GSO,          /* GSO requested but not negotiated */
	VQ_ERR_HDR_CSUM,         /* csum_start/csum_offset outside the frame */
	VQ_ERR_HDR_FLAGS,        /* unknown virtio-net header flags */
	VQ_ERR_FRAME_SHORT,      /* frame shorter than an Ethernet header */
	VQ_ERR__COUNT
};

/* Short stable name of an error, for logs and counter labels. */
const char *vq_strerror(enum vq_err err);

/* --- guest memory table ------------------------------------------------ */

struct vq_mem_region {
	uint64_t gpa;   /* guest physical address of the first byte */
	uint64_t size;  /* bytes, > 0 */
	uint64_t hva;   /* where the daemon mapped the first byte */
	uint32_t lkey;  /* opaque per-region key (the MR's lkey) */
};

struct vq_mem {
	uint32_t nregions;
	struct vq_mem_region regions[VQ_MEM_MAX_REGIONS];
};

enum vq_mem_err {
	VQ_MEM_OK = 0,
	VQ_MEM_ERR_COUNT,    /* 0 or more than VQ_MEM_MAX_REGIONS regions */
	VQ_MEM_ERR_SIZE,     /* a region of size 0 */
	VQ_MEM_ERR_WRAP,     /* gpa + size or hva + size wraps 2^64 */
	VQ_MEM_ERR_OVERLAP,  /* two regions share guest-physical addresses */
};

/* Validate `n` regions and store them in `mem` sorted by gpa. On error
 * `mem` is left empty (nregions = 0: every translation fails) and, if
 * `bad` is not NULL, *bad is the index (in the caller's array) of a
 * region at fault. */
enum vq_mem_err vq_mem_load(struct vq_mem *mem,
			    const struct vq_mem_region *regions, uint32_t n,
			    uint32_t *bad);

const char *vq_mem_strerror(enum vq_mem_err err);

/* Translate `gpa`. Returns the region that holds it (NULL if none) and
 * sets *hva and *avail to the host address and the bytes contiguous from
 * there to the end of that region (≥ 1). */
const struct vq_mem_region *vq_mem_translate(const struct vq_mem *mem,
					     uint64_t gpa, uint64_t *hva,
					     uint64_t *avail);

/* --- segments ----------------------------------------------------------- */

/* One contiguous piece of guest memory. Same layout as struct ibv_sge
 * (addr, length, lkey) so a segment list can be handed to the HCA as is;
 * len is never 0. */
struct vq_seg {
	uint64_t addr;
	uint32_t len;
	uint32_t lkey;
};

/* Drop the first `bytes` bytes of a segment list in place: returns the
 * index of the first segment that still holds data, whose addr/len are
 * advanced; segments before it are to be ignored. Returns nseg if the
 * list holds `bytes` bytes or fewer. */
uint32_t vq_segs_advance(struct vq_seg *segs, uint32_t nseg, uint32_t bytes);

/* Copy `len` bytes starting `off` bytes into the list out of the segments
 * (e.g. the Ethernet addresses of a frame whose first bytes may span
 * descriptors, or a bounce copy). Returns the bytes copied, short if the
 * list ends first. Guest memory is read once; validate the copy. */
uint32_t vq_segs_read(const struct vq_seg *segs, uint32_t nseg, uint32_t off,
		      void *dst, uint32_t len);

/* Copy `len` bytes into the segments starting `off` bytes into the list,
 * never past the end of any segment. Returns the bytes written. */
uint32_t vq_segs_write(const struct vq_seg *segs, uint32_t nseg, uint32_t off,
		       const void *src, uint32_t len);

/* --- split virtqueue ---------------------------------------------------- */

struct vq_ring {
	struct vring_desc *desc;   /* descriptor table, `size` entries */
	struct vring_avail *avail; /* driver area */
	struct vring_used *used;   /* device area */
	uint16_t size;             /* entries, power of two */
	uint16_t mask;             /* size - 1 */
	uint16_t last_avail_idx;   /* next avail entry we will consume */
	uint16_t used_idx;         /* next used entry we will write */
	uint16_t signalled_used;   /* used idx at our last call (EVENT_IDX) */
	bool signalled_valid;      /* signalled_used is meaningful */
	bool event_idx;            /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;             /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	/* The region of the last translation: a guest's buffers nearly
	 * always sit in one region. Only used if it belongs to the memory
	 * table the chain is walked against. */
	const struct vq_mem_region *hint;
};

/* Flags for vq_ring_init(). */
#define VQ_RING_F_EVENT_IDX (1u << 0)
#define VQ_RING_F_INDIRECT  (1u << 1)

/* Set up a ring over already-translated (host) addresses. `size` must be
 * a power of two in [1, VQ_RING_MAX_SIZE]; the indices come from the
 * frontend (SET_VRING_BASE) or 0. Returns false on a bad size or NULL
 * area. The used index is taken from `last_used_idx`, not from guest
 * memory. */
bool vq_ring_init(struct vq_ring *r, void *desc, void *avail, void *used,
		  uint32_t size, uint16_t last_avail_idx,
		  uint16_t last_used_idx, unsigned flags);

/* Heads the guest has made available and we have not consumed, in
 * [0, size]. Returns VQ_ERR_AVAIL_IDX if the guest moved avail->idx more
 * than `size` ahead (broken queue: stop it). Acquire: descriptor loads
 * after this call see what the guest wrote before publishing. */
enum vq_err vq_avail_count(const struct vq_ring *r, uint16_t *count);

/* The n-th not yet consumed head (n < the count above). Unvalidated: the
 * walk checks it. */
static inline uint16_t vq_avail_head(const struct vq_ring *r, uint16_t n)
{
	uint16_t slot = (uint16_t)(r->last_avail_idx + n) & r->mask;

	return le16toh(__atomic_load_n(&r->avail->ring[slot], __ATOMIC_RELAXED));
}

/* Mark `n` heads consumed. */
static inline void vq_avail_consume(struct vq_ring *r, uint16_t n)
{
	r->last_avail_idx = (uint16_t)(r->last_avail_idx + n);
}

/* Give back the last `n` consumed heads, which the device did not use:
 * they are consumed again next (by this device or, through the index
 * handed back at GET_VRING_BASE, by the next one). */
static inline void vq_avail_rewind(struct vq_ring *r, uint16_t n)
{
	r->last_avail_idx = (uint16_t)(r->last_avail_idx - n);
}

/* Direction of a chain, as the device sees it. */
enum vq_dir {
	VQ_DIR_TX = 0, /* guest → device: every descriptor device-readable */
	VQ_DIR_RX = 1, /* device → guest: every descriptor device-writable */
};

/* What one walk produced. */
struct vq_chain {
	uint16_t head;  /* id to return in the used ring */
	uint16_t ndesc; /* descriptors visited (indirect table entries too) */
	uint32_t nseg;  /* segments written to the caller's array */
	uint32_t len;   /* bytes in those segments, ≤ VQ_CHAIN_MAX_BYTES */
};

/* Walk the chain starting at `head` into segments[0..max_segs).
 *
 * Every address is translated against `mem`; a descriptor crossing a
 * region border becomes several segments (one per region). Zero-length
 * descriptors are skipped: they carry nothing and would make a 0-byte
 * SGE, but they still count against the chain length. A chain that
 * describes 0 bytes in total is an error. On error the contents of
 * `segs` are unspecified (but nothing beyond segs[max_segs - 1] is
 * written), `out->head` is set and the queue should be stopped. */
enum vq_err vq_walk_chain(struct vq_ring *r, const struct vq_mem *mem,
			  uint16_t head, enum vq_dir dir, struct vq_seg *segs,
			  uint32_t max_segs, struct vq_chain *out);

/* Write one used element at our used index (not yet visible). */
static inline void vq_used_put(struct vq_ring *r, uint16_t id, uint32_t len)
{
	struct vring_used_elem *e = &r->used->ring[r->used_idx & r->mask];

	/* Plain stores: the guest reads them only after the release store
	 * of used->idx in vq_used_publish(). */
	e->id = htole32(id);
	e->len = htole32(len);
	r->used_idx++;
}

/* Write n used elements (e.g. the completions of one CQ poll) in order;
 * same visibility rule as vq_used_put(). */
void vq_used_put_burst(struct vq_ring *r, const struct vring_used_elem *elems,
		       uint16_t n);

/* Make every used element put so far visible to the guest: a release
 * store of used->idx. Call once per burst. */
static inline void vq_used_publish(struct vq_ring *r)
{
	__atomic_store_n(&r->used->idx, htole16(r->used_idx), __ATOMIC_RELEASE);
}

/* After vq_used_publish(): should the guest be called (interrupted)?
 * EVENT_IDX: only if used->idx crossed the guest's used_event since the
 * last call we made; otherwise unless the guest set NO_INTERRUPT. Records
 * the call as made when it returns true. */
bool vq_need_call(struct vq_ring *r);

/* While the port is busy-polling, ask the guest not to kick us. Without
 * EVENT_IDX this sets VRING_USED_F_NO_NOTIFY. With EVENT_IDX the flag is
 * ignored by the guest; we simply stop advancing avail_event, so at most
 * one kick per 2^16 buffers slips through. */
void vq_kick_disable(struct vq_ring *r);

/* Before sleeping on the kick fd: ask for kicks again. Returns true if
 * buffers arrived in the meantime (the caller must poll again instead of
 * sleeping, or it would miss them). */
bool vq_kick_enable(struct vq_ring *r);

#endif /* IBVHOST_VQ_H */
