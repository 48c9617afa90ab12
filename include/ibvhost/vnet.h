/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vnet — the virtio-net header in guest buffers.
 *
 * Owns: the header size from the negotiated features, parsing the guest's
 * TX header (which may be spread over several segments or share one with
 * the frame) and stripping it from the frame's segment list, writing the
 * RX header across the guest's (possibly tiny) buffers, and spreading a
 * received message over mergeable RX buffers.
 *
 * Errors here concern one frame (drop it, count it, return the
 * descriptor with used length 0); they do not break the queue, unlike the
 * walk errors of vq.h. Pure code: no DPDK, no verbs, no allocation.
 */
#ifndef IBVHOST_VNET_H
#define IBVHOST_VNET_H

#include <stdbool.h>
#include <stdint.h>

#include "ibvhost/vq.h"
#include "ibvhost/wire.h"

#define VNET_HDR_LEN_LEGACY 10u /* struct virtio_net_hdr */
#define VNET_HDR_LEN_MRG    12u /* + num_buffers: VERSION_1 or MRG_RXBUF */
#define VNET_ETH_HLEN       14u /* smallest frame we forward (bytes) */
/* A frame's bytes beyond its MTU: the Ethernet header and one 802.1Q tag
 * (a guest's VLAN interface sends MTU-sized packets tagged). */
#define VNET_FRAME_OVERHEAD (VNET_ETH_HLEN + 4u)
/* Segments a header can span: one byte per segment at worst. */
#define VNET_HDR_MAX_SEGS   VNET_HDR_LEN_MRG

/* Header length for a negotiated feature set (virtio feature bits). */
uint32_t vnet_hdr_len(uint64_t features);

/* What a port negotiated, as the header code needs it. */
struct vnet_cfg {
	uint32_t hdr_len;  /* vnet_hdr_len(features) */
	bool csum;         /* VIRTIO_NET_F_CSUM: guest may ask NEEDS_CSUM */
	bool guest_csum;   /* VIRTIO_NET_F_GUEST_CSUM: guest takes
			    * NEEDS_CSUM / DATA_VALID on receive */
};

void vnet_cfg_init(struct vnet_cfg *cfg, uint64_t features);

/* A parsed TX chain. */
struct vnet_tx {
	uint32_t first;          /* index of the first frame segment */
	uint32_t frame_len;      /* bytes of Ethernet frame */
	struct wire_offload off; /* checksum request, validated */
};

/* Parse the virtio-net header at the start of segs[0..nseg) (as produced
 * by vq_walk_chain in the TX direction), validate it, and strip it: on
 * success segs[tx->first..nseg) is exactly the frame (segs[first] may
 * have been advanced in place). The header bytes are copied out of guest
 * memory once; a DATA_VALID flag from the guest is ignored. Errors:
 * VQ_ERR_HDR_SHORT, VQ_ERR_FRAME_SHORT, VQ_ERR_HDR_FLAGS, VQ_ERR_HDR_GSO,
 * VQ_ERR_HDR_CSUM. */
enum vq_err vnet_tx_parse(const struct vnet_cfg *cfg, struct vq_seg *segs,
			  uint32_t nseg, struct vnet_tx *tx);

/* RX, before posting a chain: remember where its header will go. Copies
 * into hdr[] the segments covering the first cfg->hdr_len bytes of
 * segs[0..nseg) (the last one trimmed) and returns how many, or 0 if the
 * chain is shorter than the header. segs is not changed; the frame's
 * receive SGEs are then segs + vq_segs_advance(segs, nseg, hdr_len). */
uint32_t vnet_rx_hdr_segs(const struct vnet_cfg *cfg, const struct vq_seg *segs,
			  uint32_t nseg, struct vq_seg hdr[VNET_HDR_MAX_SEGS]);

/* Write the virtio-net header for a received frame into the first
 * cfg->hdr_len bytes of segs[0..nseg) (the guest's first RX chain as
 * walked, or the list from vnet_rx_hdr_segs). The header is built
 * locally and copied piecewise, never past the end of a segment, so a
 * header spread over several small descriptors is fine. Offload flags the guest did not
 * negotiate are left out (the caller must then complete a NEEDS_CSUM
 * checksum itself, see vnet_csum_complete). num_buffers is written only
 * when the header has that field. Returns VQ_ERR_HDR_SHORT (writing
 * nothing) if the segments hold fewer than hdr_len bytes, VQ_ERR_HDR_CSUM
 * if a NEEDS_CSUM request does not fit frame_len. */
enum vq_err vnet_rx_write_hdr(const struct vnet_cfg *cfg,
			      const struct vq_seg *segs, uint32_t nseg,
			      const struct wire_offload *off,
			      uint32_t frame_len, uint16_t num_buffers);

/* Mergeable RX: `bytes` (header + frame) were received into the
 * concatenation of chains whose capacities are chain_len[0..n). Fills
 * used_len[i] for every chain that received data and returns how many
 * did (num_buffers), or 0 if `bytes` is 0 or does not fit. Chains beyond
 * the returned count received nothing and are kept for the next receive. */
uint16_t vnet_rx_spread(const uint32_t *chain_len, uint16_t n, uint32_t bytes,
			uint32_t *used_len);

/* Complete a partial checksum in place (for a guest without GUEST_CSUM):
 * the Internet checksum of the frame from csum_start to its end, folded
 * into the 16-bit field at csum_start + csum_offset. `segs` is the frame
 * (header stripped), frame_len its length. Returns VQ_ERR_HDR_CSUM if the
 * fields do not fit the frame. */
enum vq_err vnet_csum_complete(const struct vq_seg *segs, uint32_t nseg,
			       uint32_t frame_len, uint16_t csum_start,
			       uint16_t csum_offset);

#endif /* IBVHOST_VNET_H */
