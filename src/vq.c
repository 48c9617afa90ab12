/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Split virtqueue: avail consumption, chain walking, used ring and
 * notifications. See include/ibvhost/vq.h.
 *
 * Guest memory may change while we read it. Descriptors are copied to a
 * local with memcpy followed by a compiler barrier, so the compiler can
 * neither re-read the guest copy after validation nor rely on alignment
 * (indirect tables may sit at any guest address). Ring indices are loaded
 * with __atomic loads (their areas are checked for natural alignment at
 * init).
 */
#include <endian.h>
#include <string.h>

#include "ibvhost/vq.h"

#define VQ_LIKELY(x)   __builtin_expect(!!(x), 1)
#define VQ_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Alignment the virtio spec requires of each split-ring area (bytes). */
#define VQ_DESC_ALIGN  16u
#define VQ_AVAIL_ALIGN 2u
#define VQ_USED_ALIGN  4u

static const char *const vq_err_names[VQ_ERR__COUNT] = {
	[VQ_OK] = "ok",
	[VQ_ERR_AVAIL_IDX] = "avail_idx",
	[VQ_ERR_HEAD_IDX] = "head_idx",
	[VQ_ERR_NEXT_IDX] = "next_idx",
	[VQ_ERR_CHAIN_LOOP] = "chain_loop",
	[VQ_ERR_DESC_ADDR] = "desc_addr",
	[VQ_ERR_DIRECTION] = "direction",
	[VQ_ERR_TOO_MANY_SEGS] = "too_many_segs",
	[VQ_ERR_CHAIN_BYTES] = "chain_bytes",
	[VQ_ERR_EMPTY_CHAIN] = "empty_chain",
	[VQ_ERR_INDIRECT_LEN] = "indirect_len",
	[VQ_ERR_INDIRECT_ADDR] = "indirect_addr",
	[VQ_ERR_INDIRECT_NESTED] = "indirect_nested",
	[VQ_ERR_INDIRECT_NEXT] = "indirect_next",
	[VQ_ERR_INDIRECT_NOT_HEAD] = "indirect_not_head",
	[VQ_ERR_INDIRECT_OFF] = "indirect_not_negotiated",
	[VQ_ERR_HDR_SHORT] = "hdr_short",
	[VQ_ERR_HDR_GSO] = "hdr_gso",
	[VQ_ERR_HDR_CSUM] = "hdr_csum",
	[VQ_ERR_HDR_FLAGS] = "hdr_flags",
	[VQ_ERR_FRAME_SHORT] = "frame_short",
};

const char *vq_strerror(enum vq_err err)
{
	if ((unsigned)err >= VQ_ERR__COUNT || !vq_err_names[err])
		return "unknown";
	return vq_err_names[err];
}

static inline void vq_load_desc(const struct vring_desc *src,
				struct vring_desc *dst)
{
	memcpy(dst, src, sizeof(*dst));
	/* Forbid the compiler from re-reading guest memory in place of dst. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline bool vq_aligned(const void *p, uintptr_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

bool vq_ring_init(struct vq_ring *r, void *desc, void *avail, void *used,
		  uint32_t size, uint16_t last_avail_idx,
		  uint16_t last_used_idx, unsigned flags)
{
	memset(r, 0, sizeof(*r));
	if (size == 0 || size > VQ_RING_MAX_SIZE || (size & (size - 1)) != 0)
		return false;
	if (!desc || !avail || !used)
		return false;
	if (!vq_aligned(desc, VQ_DESC_ALIGN) ||
	    !vq_aligned(avail, VQ_AVAIL_ALIGN) ||
	    !vq_aligned(used, VQ_USED_ALIGN))
		return false;
	r->desc = desc;
	r->avail = avail;
	r->used = used;
	r->size = (uint16_t)size;
	r->mask = (uint16_t)(size - 1);
	r->last_avail_idx = last_avail_idx;
	r->used_idx = last_used_idx;
	r->event_idx = (flags & VQ_RING_F_EVENT_IDX) != 0;
	r->indirect = (flags & VQ_RING_F_INDIRECT) != 0;
	return true;
}

enum vq_err vq_avail_count(const struct vq_ring *r, uint16_t *count)
{
	uint16_t idx = le16toh(__atomic_load_n(&r->avail->idx, __ATOMIC_ACQUIRE));
	uint16_t n = (uint16_t)(idx - r->last_avail_idx);

	/* The guest can never have more than `size` heads outstanding; more
	 * means a corrupt or hostile index (CVE-2020-10723 class: compute in
	 * 16 bits, compare against the ring size). */
	if (VQ_UNLIKELY(n > r->size)) {
		*count = 0;
		return VQ_ERR_AVAIL_IDX;
	}
	*count = n;
	return VQ_OK;
}


/* Translate with a one-entry hint: consecutive descriptors of a chain
 * nearly always sit in the same region. */
static inline const struct vq_mem_region *
vq_translate_hint(const struct vq_mem *mem, const struct vq_mem_region **hint,
		  uint64_t gpa, uint64_t *hva, uint64_t *avail)
{
	const struct vq_mem_region *reg = *hint;

	if (VQ_LIKELY(reg != NULL) && gpa >= reg->gpa &&
	    gpa - reg->gpa < reg->size) {
		uint64_t off = gpa - reg->gpa;

		*hva = reg->hva + off;
		*avail = reg->size - off;
		return reg;
	}
	reg = vq_mem_translate(mem, gpa, hva, avail);
	*hint = reg;
	return reg;
}

/* Map [addr, addr + len) into segments, split at region borders
 * (CVE-2018-1059 class: a buffer must never be assumed contiguous past
 * the region its first byte lives in). len > 0. */
static inline enum vq_err vq_map_buf(const struct vq_mem *mem,
				     const struct vq_mem_region **hint,
				     uint64_t addr, uint32_t len,
				     struct vq_seg *segs, uint32_t max_segs,
				     uint32_t *nseg)
{
	if (VQ_UNLIKELY((uint64_t)len - 1 > UINT64_MAX - addr))
		return VQ_ERR_DESC_ADDR;
	while (len > 0) {
		const struct vq_mem_region *reg;
		uint64_t hva, avail;
		uint32_t chunk;

		reg = vq_translate_hint(mem, hint, addr, &hva, &avail);
		if (VQ_UNLIKELY(reg == NULL))
			return VQ_ERR_DESC_ADDR;
		if (VQ_UNLIKELY(*nseg >= max_segs))
			return VQ_ERR_TOO_MANY_SEGS;
		chunk = avail < len ? (uint32_t)avail : len;
		segs[*nseg].addr = hva;
		segs[*nseg].len = chunk;
		segs[*nseg].lkey = reg->lkey;
		(*nseg)++;
		addr += chunk;
		len -= chunk;
	}
	return VQ_OK;
}

/* Switch the walk to an indirect table after validating the descriptor
 * that points to it. */
static enum vq_err vq_enter_indirect(const struct vq_ring *r,
				     const struct vq_mem *mem,
				     uint16_t flags, uint64_t addr, uint32_t len,
				     bool in_indirect, uint32_t ndesc,
				     const struct vring_desc **table,
				     uint32_t *table_size)
{
	uint64_t hva, avail;

	if (!r->indirect)
		return VQ_ERR_INDIRECT_OFF;
	if (in_indirect)
		return VQ_ERR_INDIRECT_NESTED;
	if (flags & VRING_DESC_F_NEXT)
		return VQ_ERR_INDIRECT_NEXT;
	if (ndesc != 1)
		return VQ_ERR_INDIRECT_NOT_HEAD;
	if (len == 0 || len % VQ_DESC_SIZE != 0 || len / VQ_DESC_SIZE > r->size)
		return VQ_ERR_INDIRECT_LEN;
	/* The table is read through one host pointer, so it must not cross
	 * a region border. */
	if (!vq_mem_translate(mem, addr, &hva, &avail) || avail < len)
		return VQ_ERR_INDIRECT_ADDR;
	*table = (const struct vring_desc *)(uintptr_t)hva;
	*table_size = len / VQ_DESC_SIZE;
	return VQ_OK;
}

static inline bool vq_hint_valid(const struct vq_mem_region *hint,
				 const struct vq_mem *mem)
{
	return hint >= mem->regions && hint < mem->regions + mem->nregions;
}

static enum vq_err vq_walk_slow(struct vq_ring *r, const struct vq_mem *mem,
				uint16_t head, enum vq_dir dir,
				struct vq_seg *segs, uint32_t max_segs,
				struct vq_chain *out) __attribute__((noinline));

enum vq_err vq_walk_chain(struct vq_ring *r, const struct vq_mem *mem,
			  uint16_t head, enum vq_dir dir, struct vq_seg *segs,
			  uint32_t max_segs, struct vq_chain *out)
{
	const uint16_t want_write = dir == VQ_DIR_RX ? VRING_DESC_F_WRITE : 0;
	const struct vq_mem_region *reg = r->hint;
	struct vring_desc d;

	/* The common chain: one direct descriptor inside the region of the
	 * previous translation. Anything else takes the general walk, which
	 * loads the descriptor again and checks everything itself. */
	if (VQ_LIKELY(head < r->size && max_segs > 0 &&
		      vq_hint_valid(reg, mem))) {
		vq_load_desc(&r->desc[head], &d);
		uint16_t flags = le16toh(d.flags);
		uint32_t len = le32toh(d.len);
		uint64_t addr = le64toh(d.addr);
		uint64_t off = addr - reg->gpa;

		if (VQ_LIKELY((flags & (VRING_DESC_F_NEXT |
					VRING_DESC_F_INDIRECT |
					VRING_DESC_F_WRITE)) == want_write &&
			      len > 0 && len <= VQ_CHAIN_MAX_BYTES &&
			      addr >= reg->gpa && off < reg->size &&
			      len <= reg->size - off)) {
			segs[0].addr = reg->hva + off;
			segs[0].len = len;
			segs[0].lkey = reg->lkey;
			out->head = head;
			out->ndesc = 1;
			out->nseg = 1;
			out->len = len;
			return VQ_OK;
		}
	}
	return vq_walk_slow(r, mem, head, dir, segs, max_segs, out);
}

static enum vq_err vq_walk_slow(struct vq_ring *r, const struct vq_mem *mem,
				uint16_t head, enum vq_dir dir,
				struct vq_seg *segs, uint32_t max_segs,
				struct vq_chain *out)
{
	const uint16_t want_write = dir == VQ_DIR_RX ? VRING_DESC_F_WRITE : 0;
	const struct vq_mem_region *hint =
		vq_hint_valid(r->hint, mem) ? r->hint : NULL;
	const struct vring_desc *table = r->desc;
	uint32_t table_size = r->size;
	uint32_t budget = r->size; /* descriptors left before we call it a loop */
	uint32_t idx = head;
	uint32_t ndesc = 0, nseg = 0;
	uint64_t total = 0;
	bool in_indirect = false;
	enum vq_err err = VQ_OK;

	out->head = head;
	if (VQ_UNLIKELY(head >= r->size)) {
		err = VQ_ERR_HEAD_IDX;
		goto done;
	}

	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		uint32_t len;
		uint64_t addr;

		if (VQ_UNLIKELY(budget == 0)) {
			err = VQ_ERR_CHAIN_LOOP;
			goto done;
		}
		budget--;
		vq_load_desc(&table[idx], &d);
		ndesc++;
		flags = le16toh(d.flags);
		len = le32toh(d.len);
		addr = le64toh(d.addr);

		if (VQ_UNLIKELY(flags & VRING_DESC_F_INDIRECT)) {
			err = vq_enter_indirect(r, mem, flags, addr, len,
						in_indirect, ndesc, &table,
						&table_size);
			if (err != VQ_OK)
				goto done;
			in_indirect = true;
			budget = table_size;
			idx = 0;
			continue;
		}
		if (VQ_UNLIKELY((flags & VRING_DESC_F_WRITE) != want_write)) {
			err = VQ_ERR_DIRECTION;
			goto done;
		}
		if (len > 0) {
			total += len;
			if (VQ_UNLIKELY(total > VQ_CHAIN_MAX_BYTES)) {
				err = VQ_ERR_CHAIN_BYTES;
				goto done;
			}
			err = vq_map_buf(mem, &hint, addr, len, segs, max_segs,
					 &nseg);
			if (VQ_UNLIKELY(err != VQ_OK))
				goto done;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		idx = le16toh(d.next);
		if (VQ_UNLIKELY(idx >= table_size)) {
			err = VQ_ERR_NEXT_IDX;
			goto done;
		}
	}
	if (VQ_UNLIKELY(total == 0))
		err = VQ_ERR_EMPTY_CHAIN;
done:
	if (hint)
		r->hint = hint;
	out->ndesc = (uint16_t)(ndesc > UINT16_MAX ? UINT16_MAX : ndesc);
	out->nseg = nseg;
	out->len = (uint32_t)total;
	return err;
}


void vq_used_put_burst(struct vq_ring *r, const struct vring_used_elem *elems,
		       uint16_t n)
{
	uint16_t i;

	for (i = 0; i < n; i++)
		vq_used_put(r, (uint16_t)elems[i].id, elems[i].len);
}


/* The 16-bit field after the avail ring (used_event) and after the used
 * ring (avail_event), present with EVENT_IDX. */
static inline uint16_t *vq_used_event_ptr(const struct vq_ring *r)
{
	return &r->avail->ring[r->size];
}

static inline uint16_t *vq_avail_event_ptr(const struct vq_ring *r)
{
	return (uint16_t *)(void *)&r->used->ring[r->size];
}

/* True if `event` lies in [old, new): the guest asked to be called once
 * the used index passes it (virtio spec 2.7.10). */
static inline bool vq_event_crossed(uint16_t event, uint16_t new_idx,
				    uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_need_call(struct vq_ring *r)
{
	uint16_t old, event;
	bool valid;

	/* Our used->idx store must be visible before we read the guest's
	 * suppression state, or both sides may decide to skip (lost
	 * interrupt). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!r->event_idx) {
		uint16_t flags = le16toh(__atomic_load_n(&r->avail->flags,
							 __ATOMIC_RELAXED));
		return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
	}
	event = le16toh(__atomic_load_n(vq_used_event_ptr(r), __ATOMIC_RELAXED));
	old = r->signalled_used;
	valid = r->signalled_valid;
	r->signalled_used = r->used_idx;
	r->signalled_valid = true;
	if (VQ_UNLIKELY(!valid))
		return true;
	return vq_event_crossed(event, r->used_idx, old);
}

void vq_kick_disable(struct vq_ring *r)
{
	uint16_t flags;

	if (r->event_idx)
		return;
	flags = le16toh(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED));
	__atomic_store_n(&r->used->flags,
			 htole16(flags | VRING_USED_F_NO_NOTIFY),
			 __ATOMIC_RELAXED);
}

bool vq_kick_enable(struct vq_ring *r)
{
	uint16_t idx;

	if (r->event_idx) {
		__atomic_store_n(vq_avail_event_ptr(r),
				 htole16(r->last_avail_idx), __ATOMIC_RELAXED);
	} else {
		uint16_t flags = le16toh(__atomic_load_n(&r->used->flags,
							 __ATOMIC_RELAXED));
		__atomic_store_n(&r->used->flags,
				 htole16(flags & (uint16_t)~VRING_USED_F_NO_NOTIFY),
				 __ATOMIC_RELAXED);
	}
	/* Publish the request before re-checking avail->idx: a buffer added
	 * between the two would otherwise be neither seen nor kicked. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	idx = le16toh(__atomic_load_n(&r->avail->idx, __ATOMIC_ACQUIRE));
	return idx != r->last_avail_idx;
}
