/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Guest memory (memfd, one or two regions, canary-filled) and split
 * virtqueues, driver side. */
#include "vhu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Gap kept between allocations so that writes past a buffer hit canary. */
#define VHU_ALLOC_GAP 64u

uint64_t vhu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vhu_mem_init(struct vhu_mem *m, size_t size, unsigned nregions)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (nregions < 1 || nregions > 2 || size < (1u << 20))
		return -EINVAL;
	m->fd = memfd_create("vhu-guest", MFD_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)size) < 0)
		goto fail;
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		goto fail;
	}
	m->size = size;
	memset(m->base, VHU_CANARY, size);
	m->nregions = nregions;
	uint64_t part = size / nregions;
	for (unsigned i = 0; i < nregions; i++) {
		m->r[i].gpa = i == 0 ? 0 : VHU_REGION1_GPA;
		m->r[i].size = part;
		m->r[i].mmap_offset = part * i;
		m->r[i].va = m->base + part * i;
		m->r[i].next = 0;
	}
	return 0;
fail:;
	int e = -errno;
	close(m->fd);
	m->fd = -1;
	return e;
}

void vhu_mem_fini(struct vhu_mem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
}

uint64_t vhu_mem_alloc(struct vhu_mem *m, unsigned r, uint64_t len,
		       uint64_t align)
{
	if (r >= m->nregions)
		r = m->nregions - 1;
	struct vhu_region *rg = &m->r[r];
	uint64_t off = rg->next + VHU_ALLOC_GAP;

	if (align > 1)
		off = (off + align - 1) & ~(align - 1);
	if (m->nallocs >= VHU_MAX_ALLOCS || len > rg->size ||
	    off > rg->size - len)
		return UINT64_MAX;
	rg->next = off + len;
	m->allocs[m->nallocs++] = (struct vhu_alloc){ (uint8_t)r, off, len };
	memset(rg->va + off, 0, len);
	return rg->gpa + off;
}

void *vhu_gpa_va(const struct vhu_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct vhu_region *rg = &m->r[i];
		if (gpa >= rg->gpa && gpa - rg->gpa <= rg->size &&
		    len <= rg->size - (gpa - rg->gpa))
			return rg->va + (gpa - rg->gpa);
	}
	return NULL;
}

static uint64_t count_changed(const uint8_t *p, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t i = 0; i < n; i++)
		c += p[i] != VHU_CANARY;
	return c;
}

uint64_t vhu_mem_canary_changed(const struct vhu_mem *m)
{
	uint64_t changed = 0;

	for (unsigned r = 0; r < m->nregions; r++) {
		uint64_t pos = 0;
		for (unsigned i = 0; i < m->nallocs; i++) {
			const struct vhu_alloc *a = &m->allocs[i];
			if (a->region != r)
				continue;
			changed += count_changed(m->r[r].va + pos, a->off - pos);
			pos = a->off + a->len;
		}
		changed += count_changed(m->r[r].va + pos, m->r[r].size - pos);
	}
	return changed;
}

/* ---- split virtqueue ----------------------------------------------------- */

int vhu_vq_init(struct vhu_vq *vq, struct vhu_mem *m, unsigned index,
		uint16_t num, bool event_idx)
{
	memset(vq, 0, sizeof(*vq));
	vq->kickfd = vq->callfd = -1;
	if (num == 0 || (num & (num - 1)) != 0)
		return -EINVAL;
	vq->index = index;
	vq->num = num;
	vq->event_idx = event_idx;
	uint64_t d = vhu_mem_alloc(m, 0, 16ull * num, 4096);
	uint64_t a = vhu_mem_alloc(m, 0, 6ull + 2ull * num, 4096);
	uint64_t u = vhu_mem_alloc(m, 0, 6ull + 8ull * num, 4096);
	if (d == UINT64_MAX || a == UINT64_MAX || u == UINT64_MAX)
		return -ENOMEM;
	vq->desc = vhu_gpa_va(m, d, 16ull * num);
	vq->avail = vhu_gpa_va(m, a, 6ull + 2ull * num);
	vq->used = vhu_gpa_va(m, u, 6ull + 8ull * num);
	vq->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->callfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vq->kickfd < 0 || vq->callfd < 0)
		return -errno;
	return 0;
}

void vhu_vq_fini(struct vhu_vq *vq)
{
	if (vq->kickfd >= 0)
		close(vq->kickfd);
	if (vq->callfd >= 0)
		close(vq->callfd);
	vq->kickfd = vq->callfd = -1;
}

void vhu_vq_push(struct vhu_vq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx & (vq->num - 1)] = head;
	vq->avail_idx++;
}

void vhu_vq_publish(struct vhu_vq *vq)
{
	uint16_t old = vq->kicked_idx, now = vq->avail_idx;
	bool kick;

	__atomic_store_n(&vq->avail->idx, now, __ATOMIC_RELEASE);
	/* The device's suppression must be read after idx is visible. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		uint16_t ev = __atomic_load_n(
			(uint16_t *)&vq->used->ring[vq->num], __ATOMIC_ACQUIRE);
		kick = vring_need_event(ev, now, old);
	} else {
		kick = !(__atomic_load_n(&vq->used->flags, __ATOMIC_ACQUIRE) &
			 VRING_USED_F_NO_NOTIFY);
	}
	vq->kicked_idx = now;
	if (kick && vq->kickfd >= 0) {
		uint64_t one = 1;
		if (write(vq->kickfd, &one, sizeof(one)) == sizeof(one))
			vq->kicks++;
	}
}

uint16_t vhu_vq_used_idx(const struct vhu_vq *vq)
{
	return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}

bool vhu_vq_get_used(struct vhu_vq *vq, uint32_t *id, uint32_t *len)
{
	if (vhu_vq_used_idx(vq) == vq->last_used)
		return false;
	const struct vring_used_elem *e =
		&vq->used->ring[vq->last_used & (vq->num - 1)];
	*id = e->id;
	*len = e->len;
	vq->last_used++;
	return true;
}

bool vhu_vq_want_call(struct vhu_vq *vq)
{
	if (vq->event_idx)
		__atomic_store_n(&vq->avail->ring[vq->num], vq->last_used,
				 __ATOMIC_RELEASE);
	else
		__atomic_store_n(&vq->avail->flags, 0, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vhu_vq_used_idx(vq) != vq->last_used;
}

void vhu_vq_drain_call(struct vhu_vq *vq)
{
	uint64_t v;

	if (vq->callfd >= 0 && read(vq->callfd, &v, sizeof(v)) == sizeof(v))
		vq->calls += v;
}
