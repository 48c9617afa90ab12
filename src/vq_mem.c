/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Guest memory table: validation on load, GPA → HVA translation, and
 * segment-list helpers. See include/ibvhost/vq.h. */
#include <stdbool.h>
#include <string.h>

#include "ibvhost/vq.h"

static const char *const vq_mem_err_names[] = {
	[VQ_MEM_OK] = "ok",
	[VQ_MEM_ERR_COUNT] = "bad region count",
	[VQ_MEM_ERR_SIZE] = "zero-size region",
	[VQ_MEM_ERR_WRAP] = "region wraps the address space",
	[VQ_MEM_ERR_OVERLAP] = "regions overlap",
};

const char *vq_mem_strerror(enum vq_mem_err err)
{
	if ((unsigned)err >= sizeof(vq_mem_err_names) / sizeof(vq_mem_err_names[0]))
		return "unknown";
	return vq_mem_err_names[err];
}

/* Last byte of [base, base + size) without computing base + size, which may
 * wrap; callers have checked size > 0. */
static inline uint64_t range_last(uint64_t base, uint64_t size)
{
	return base + (size - 1);
}

static inline bool range_wraps(uint64_t base, uint64_t size)
{
	return size - 1 > UINT64_MAX - base;
}

enum vq_mem_err vq_mem_load(struct vq_mem *mem,
			    const struct vq_mem_region *regions, uint32_t n,
			    uint32_t *bad)
{
	uint32_t order[VQ_MEM_MAX_REGIONS];
	uint32_t i, j;

	mem->nregions = 0;
	if (bad)
		*bad = 0;
	if (n == 0 || n > VQ_MEM_MAX_REGIONS)
		return VQ_MEM_ERR_COUNT;

	for (i = 0; i < n; i++) {
		const struct vq_mem_region *reg = &regions[i];

		if (bad)
			*bad = i;
		if (reg->size == 0)
			return VQ_MEM_ERR_SIZE;
		if (range_wraps(reg->gpa, reg->size) ||
		    range_wraps(reg->hva, reg->size))
			return VQ_MEM_ERR_WRAP;
	}

	/* Insertion sort by gpa: at most VQ_MEM_MAX_REGIONS entries, once per
	 * memory-table change. */
	for (i = 0; i < n; i++) {
		uint32_t k = i;

		while (k > 0 && regions[order[k - 1]].gpa > regions[i].gpa) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}

	/* Sorted, so only neighbours can overlap. */
	for (j = 1; j < n; j++) {
		const struct vq_mem_region *prev = &regions[order[j - 1]];
		const struct vq_mem_region *cur = &regions[order[j]];

		if (range_last(prev->gpa, prev->size) >= cur->gpa) {
			if (bad)
				*bad = order[j];
			return VQ_MEM_ERR_OVERLAP;
		}
	}

	for (i = 0; i < n; i++)
		mem->regions[i] = regions[order[i]];
	mem->nregions = n;
	return VQ_MEM_OK;
}

const struct vq_mem_region *vq_mem_translate(const struct vq_mem *mem,
					     uint64_t gpa, uint64_t *hva,
					     uint64_t *avail)
{
	uint32_t i;

	for (i = 0; i < mem->nregions; i++) {
		const struct vq_mem_region *reg = &mem->regions[i];
		uint64_t off;

		/* gpa - reg->gpa cannot wrap once gpa >= reg->gpa, and
		 * off < size keeps hva + off inside the validated region. */
		if (gpa < reg->gpa)
			break; /* sorted: no later region can hold it */
		off = gpa - reg->gpa;
		if (off >= reg->size)
			continue;
		*hva = reg->hva + off;
		*avail = reg->size - off;
		return reg;
	}
	return NULL;
}

uint32_t vq_segs_advance(struct vq_seg *segs, uint32_t nseg, uint32_t bytes)
{
	uint32_t i;

	for (i = 0; i < nseg; i++) {
		if (bytes < segs[i].len) {
			segs[i].addr += bytes;
			segs[i].len -= bytes;
			return i;
		}
		bytes -= segs[i].len;
	}
	return nseg;
}

/* Copy between a linear buffer and bytes [off, off + len) of a segment
 * list: to the buffer (to_segs false) or into the segments. */
static uint32_t segs_copy(const struct vq_seg *segs, uint32_t nseg,
			  uint32_t off, uint8_t *buf, uint32_t len, bool to_segs)
{
	uint32_t done = 0, i;

	for (i = 0; i < nseg && done < len; i++) {
		uint32_t n;

		if (off >= segs[i].len) {
			off -= segs[i].len;
			continue;
		}
		n = segs[i].len - off;
		if (n > len - done)
			n = len - done;
		uint8_t *seg = (uint8_t *)(uintptr_t)segs[i].addr + off;

		if (to_segs)
			memcpy(seg, buf + done, n);
		else
			memcpy(buf + done, seg, n);
		done += n;
		off = 0;
	}
	return done;
}

uint32_t vq_segs_read(const struct vq_seg *segs, uint32_t nseg, uint32_t off,
		      void *dst, uint32_t len)
{
	uint32_t done = segs_copy(segs, nseg, off, dst, len, false);

	/* The caller validates the copy, never guest memory. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return done;
}

uint32_t vq_segs_write(const struct vq_seg *segs, uint32_t nseg, uint32_t off,
		       const void *src, uint32_t len)
{
	/* segs_copy only reads buf when writing into the segments. */
	return segs_copy(segs, nseg, off, (uint8_t *)(uintptr_t)src, len, true);
}
