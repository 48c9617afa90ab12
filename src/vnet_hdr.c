/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* virtio-net header: TX parse/strip, RX write, mergeable spreading and
 * software checksum completion. See include/ibvhost/vnet.h. */
#include <endian.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "ibvhost/vnet.h"

#define VQ_LIKELY_HDR(x) __builtin_expect(!!(x), 1)

uint32_t vnet_hdr_len(uint64_t features)
{
	if (features & ((1ull << VIRTIO_F_VERSION_1) |
			(1ull << VIRTIO_NET_F_MRG_RXBUF)))
		return VNET_HDR_LEN_MRG;
	return VNET_HDR_LEN_LEGACY;
}

void vnet_cfg_init(struct vnet_cfg *cfg, uint64_t features)
{
	cfg->hdr_len = vnet_hdr_len(features);
	cfg->csum = (features & (1ull << VIRTIO_NET_F_CSUM)) != 0;
	cfg->guest_csum = (features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) != 0;
}

static enum vq_err vnet_tx_parse_any(const struct vnet_cfg *cfg,
				     struct vq_seg *segs, uint32_t nseg,
				     struct vnet_tx *tx) __attribute__((noinline));

static uint64_t vnet_segs_total(const struct vq_seg *segs, uint32_t nseg)
{
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < nseg; i++)
		total += segs[i].len;
	return total;
}

enum vq_err vnet_tx_parse(const struct vnet_cfg *cfg, struct vq_seg *segs,
			  uint32_t nseg, struct vnet_tx *tx)
{
	/* The common frame: header and frame in one segment, no offload. */
	if (nseg == 1 && cfg->hdr_len == VNET_HDR_LEN_MRG &&
	    segs[0].len >= VNET_HDR_LEN_MRG + VNET_ETH_HLEN) {
		uint8_t h[VNET_HDR_LEN_MRG];
		static const uint8_t plain[VNET_HDR_LEN_MRG];

		memcpy(h, (const void *)(uintptr_t)segs[0].addr, sizeof(h));
		__atomic_signal_fence(__ATOMIC_SEQ_CST); /* h is read once */
		/* flags 0, GSO_NONE; num_buffers is ignored on TX. */
		if (memcmp(h, plain, 10) == 0) {
			segs[0].addr += VNET_HDR_LEN_MRG;
			segs[0].len -= VNET_HDR_LEN_MRG;
			tx->first = 0;
			tx->frame_len = segs[0].len;
			tx->off = (struct wire_offload){ 0 };
			return VQ_OK;
		}
	}
	return vnet_tx_parse_any(cfg, segs, nseg, tx);
}

static enum vq_err vnet_tx_parse_any(const struct vnet_cfg *cfg,
				     struct vq_seg *segs, uint32_t nseg,
				     struct vnet_tx *tx)
{
	struct virtio_net_hdr_mrg_rxbuf h;
	uint64_t total = vnet_segs_total(segs, nseg);
	uint16_t start, offset;

	tx->first = nseg;
	tx->frame_len = 0;
	tx->off = (struct wire_offload){ 0 };
	if (cfg->hdr_len > sizeof(h))
		return VQ_ERR_HDR_SHORT;
	/* CVE-2022-2132 class: the header may be split over descriptors of
	 * any size; gather it instead of assuming segs[0] holds it (but take
	 * it in one fixed-size copy when segs[0] does, as it nearly always
	 * does). */
	if (nseg > 0 && segs[0].len >= sizeof(h) && cfg->hdr_len == sizeof(h))
		memcpy(&h, (const void *)(uintptr_t)segs[0].addr, sizeof(h));
	else if (total < cfg->hdr_len ||
		 vq_segs_read(segs, nseg, 0, &h, cfg->hdr_len) != cfg->hdr_len)
		return VQ_ERR_HDR_SHORT;
	__atomic_signal_fence(__ATOMIC_SEQ_CST); /* h is read once */
	if (total - cfg->hdr_len < VNET_ETH_HLEN)
		return VQ_ERR_FRAME_SHORT;
	tx->frame_len = (uint32_t)(total - cfg->hdr_len);

	if (h.hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return VQ_ERR_HDR_GSO;
	/* DATA_VALID is meaningless from a driver (virtio 1.x 5.1.6.2.1);
	 * it is ignored rather than fatal, as it carries no risk. */
	if (h.hdr.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM |
			    VIRTIO_NET_HDR_F_DATA_VALID))
		return VQ_ERR_HDR_FLAGS;
	if (h.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!cfg->csum)
			return VQ_ERR_HDR_FLAGS;
		start = le16toh(h.hdr.csum_start);
		offset = le16toh(h.hdr.csum_offset);
		/* CVE-2024-11614 class: whoever completes the checksum writes
		 * two bytes at start + offset. */
		if (!wire_csum_fits(start, offset, tx->frame_len))
			return VQ_ERR_HDR_CSUM;
		tx->off.flags = WIRE_F_NEEDS_CSUM;
		tx->off.csum_start = start;
		tx->off.csum_offset = offset;
	}
	if (VQ_LIKELY_HDR(segs[0].len > cfg->hdr_len)) {
		segs[0].addr += cfg->hdr_len;
		segs[0].len -= cfg->hdr_len;
		tx->first = 0;
	} else {
		tx->first = vq_segs_advance(segs, nseg, cfg->hdr_len);
	}
	return VQ_OK;
}

uint32_t vnet_rx_hdr_segs(const struct vnet_cfg *cfg, const struct vq_seg *segs,
			  uint32_t nseg, struct vq_seg hdr[VNET_HDR_MAX_SEGS])
{
	uint32_t left = cfg->hdr_len, i;

	if (left > VNET_HDR_LEN_MRG)
		return 0;
	for (i = 0; i < nseg && i < VNET_HDR_MAX_SEGS && left > 0; i++) {
		hdr[i] = segs[i];
		if (hdr[i].len > left)
			hdr[i].len = left;
		left -= hdr[i].len;
	}
	return left == 0 ? i : 0;
}

enum vq_err vnet_rx_write_hdr(const struct vnet_cfg *cfg,
			      const struct vq_seg *segs, uint32_t nseg,
			      const struct wire_offload *off,
			      uint32_t frame_len, uint16_t num_buffers)
{
	struct virtio_net_hdr_mrg_rxbuf h;

	if (cfg->hdr_len > sizeof(h) || nseg == 0 ||
	    (segs[0].len < cfg->hdr_len &&
	     vnet_segs_total(segs, nseg) < cfg->hdr_len))
		return VQ_ERR_HDR_SHORT;
	memset(&h, 0, sizeof(h));
	h.hdr.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	if (cfg->guest_csum && (off->flags & WIRE_F_NEEDS_CSUM)) {
		if (!wire_csum_fits(off->csum_start, off->csum_offset, frame_len))
			return VQ_ERR_HDR_CSUM;
		h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.hdr.csum_start = htole16(off->csum_start);
		h.hdr.csum_offset = htole16(off->csum_offset);
	} else if (cfg->guest_csum && (off->flags & WIRE_F_DATA_VALID)) {
		h.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	if (cfg->hdr_len >= VNET_HDR_LEN_MRG)
		h.num_buffers = htole16(num_buffers);
	if (nseg > 0 && segs[0].len >= sizeof(h) && cfg->hdr_len == sizeof(h))
		memcpy((void *)(uintptr_t)segs[0].addr, &h, sizeof(h));
	else
		vq_segs_write(segs, nseg, 0, &h, cfg->hdr_len);
	return VQ_OK;
}

uint16_t vnet_rx_spread(const uint32_t *chain_len, uint16_t n, uint32_t bytes,
			uint32_t *used_len)
{
	uint16_t i;

	if (bytes == 0)
		return 0;
	for (i = 0; i < n; i++) {
		uint32_t take = chain_len[i] < bytes ? chain_len[i] : bytes;

		used_len[i] = take;
		bytes -= take;
		if (bytes == 0)
			return (uint16_t)(i + 1);
	}
	return 0;
}

enum vq_err vnet_csum_complete(const struct vq_seg *segs, uint32_t nseg,
			       uint32_t frame_len, uint16_t csum_start,
			       uint16_t csum_offset)
{
	uint64_t sum = 0;
	uint32_t pos = 0, i, j;
	uint8_t out[2];

	if (!wire_csum_fits(csum_start, csum_offset, frame_len) ||
	    vnet_segs_total(segs, nseg) < frame_len)
		return VQ_ERR_HDR_CSUM;

	/* One's-complement sum of the bytes [csum_start, frame_len), which
	 * include the pseudo-header sum the sender left in the field. Bytes
	 * are taken one by one: segments may have odd lengths, and this is
	 * the rare fallback for guests without GUEST_CSUM. */
	for (i = 0; i < nseg && pos < frame_len; i++) {
		const uint8_t *p = (const uint8_t *)(uintptr_t)segs[i].addr;

		for (j = 0; j < segs[i].len && pos < frame_len; j++, pos++) {
			uint32_t rel;

			if (pos < csum_start)
				continue;
			rel = pos - csum_start;
			sum += (rel & 1u) ? p[j] : (uint32_t)p[j] << 8;
		}
	}
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	sum = ~sum & 0xffffu;
	out[0] = (uint8_t)(sum >> 8);
	out[1] = (uint8_t)sum;
	vq_segs_write(segs, nseg, (uint32_t)csum_start + csum_offset, out,
			sizeof(out));
	return VQ_OK;
}
