/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* wire — the small header carried in front of every frame on the IB wire.
 *
 * Owns: the layout of that header, building it (TX, in daemon memory,
 * SGE0 of a send) and parsing it (RX, from daemon scratch after the GRH).
 * Pure code: no DPDK, no verbs.
 *
 * Layout (WIRE_HDR_LEN bytes, multi-byte fields in network byte order):
 *
 *   0  version      WIRE_VERSION; anything else is rejected
 *   1  flags        WIRE_F_*; unknown bits are rejected
 *   2  csum_start   (be16) with NEEDS_CSUM: where checksumming starts,
 *                   from the first byte of the Ethernet frame
 *   4  csum_offset  (be16) with NEEDS_CSUM: where the checksum goes,
 *                   from csum_start
 *   6  reserved     (be16) 0
 *
 * The Ethernet frame follows immediately. A new incompatible layout takes
 * a new version number.
 */
#ifndef IBVHOST_WIRE_H
#define IBVHOST_WIRE_H

#include <stdint.h>
#include <string.h>

#define WIRE_VERSION 1u
#define WIRE_HDR_LEN 8u /* bytes */

/* The sender left the L4 checksum to be completed (partial checksum over
 * the pseudo-header stored at csum_start + csum_offset). */
#define WIRE_F_NEEDS_CSUM 0x01u
/* The sender vouches for the checksums of this frame. */
#define WIRE_F_DATA_VALID 0x02u
/* The frame only announces its source MAC at the sending QP (a port that
 * has just started, on a new QP): receivers learn it and deliver nothing
 * to their guests. */
#define WIRE_F_ANNOUNCE 0x04u
#define WIRE_F_CSUM_MASK (WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID)
#define WIRE_F_KNOWN (WIRE_F_CSUM_MASK | WIRE_F_ANNOUNCE)

/* Checksum offload metadata of one frame, host byte order. It is also
 * what the virtio-net header code consumes and produces (vnet.h). */
struct wire_offload {
	uint8_t flags;        /* WIRE_F_* */
	uint16_t csum_start;  /* valid with WIRE_F_NEEDS_CSUM, else 0 */
	uint16_t csum_offset; /* valid with WIRE_F_NEEDS_CSUM, else 0 */
};

enum wire_err {
	WIRE_OK = 0,
	WIRE_ERR_SHORT,    /* message shorter than the wire header */
	WIRE_ERR_VERSION,  /* unknown version */
	WIRE_ERR_FLAGS,    /* unknown flag bits, or NEEDS_CSUM + DATA_VALID */
	WIRE_ERR_CSUM,     /* checksum fields outside the frame, or set
			    * without NEEDS_CSUM */
	WIRE_ERR_RESERVED, /* reserved field not 0 */
	WIRE_ERR__COUNT
};

const char *wire_strerror(enum wire_err err);

/* True if csum_start + csum_offset + 2 ≤ frame_len (the 16-bit checksum
 * field lies inside the frame), computed without overflow. */
static inline int wire_csum_fits(uint16_t csum_start, uint16_t csum_offset,
				 uint32_t frame_len)
{
	return (uint32_t)csum_start + csum_offset + 2u <= frame_len;
}

/* Write the header for `off` into out[0..WIRE_HDR_LEN). Flags outside
 * WIRE_F_KNOWN are dropped; checksum fields are written only with
 * NEEDS_CSUM. The caller has validated `off` against the frame (the
 * virtio-net TX parser does). */

/* Parse a received message: `msg` holds msg_len bytes, the wire header
 * followed by the Ethernet frame. On success *off is filled and
 * *frame_len = msg_len - WIRE_HDR_LEN. */

/* Per frame, so inline. */
static inline void wire_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t wire_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void wire_hdr_build(void *out, const struct wire_offload *off)
{
	uint8_t *p = out;
	uint8_t flags = off->flags & WIRE_F_KNOWN;
	int csum = (flags & WIRE_F_NEEDS_CSUM) != 0;

	if (csum)
		flags &= (uint8_t)~WIRE_F_DATA_VALID;
	p[0] = WIRE_VERSION;
	p[1] = flags;
	wire_put_be16(p + 2, csum ? off->csum_start : 0);
	wire_put_be16(p + 4, csum ? off->csum_offset : 0);
	wire_put_be16(p + 6, 0);
}

static inline enum wire_err wire_hdr_parse(const void *msg, uint32_t msg_len,
			     struct wire_offload *off, uint32_t *frame_len)
{
	uint8_t h[WIRE_HDR_LEN];
	uint32_t flen;
	uint16_t start, offset;

	memset(off, 0, sizeof(*off));
	*frame_len = 0;
	if (msg_len < WIRE_HDR_LEN)
		return WIRE_ERR_SHORT;
	memcpy(h, msg, sizeof(h));
	/* Most frames carry no offload: version, then seven zero bytes. */
	static const uint8_t plain[WIRE_HDR_LEN] = { WIRE_VERSION };
	if (memcmp(h, plain, sizeof(h)) == 0) {
		*frame_len = msg_len - WIRE_HDR_LEN;
		return WIRE_OK;
	}
	flen = msg_len - WIRE_HDR_LEN;

	if (h[0] != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	if ((h[1] & ~WIRE_F_KNOWN) != 0 ||
	    (h[1] & WIRE_F_CSUM_MASK) == WIRE_F_CSUM_MASK)
		return WIRE_ERR_FLAGS;
	if (wire_get_be16(h + 6) != 0)
		return WIRE_ERR_RESERVED;
	start = wire_get_be16(h + 2);
	offset = wire_get_be16(h + 4);
	if (h[1] & WIRE_F_NEEDS_CSUM) {
		/* CVE-2024-11614 class: the receiver would write the
		 * checksum at start + offset. */
		if (!wire_csum_fits(start, offset, flen))
			return WIRE_ERR_CSUM;
	} else if (start != 0 || offset != 0) {
		return WIRE_ERR_CSUM;
	}
	off->flags = h[1];
	off->csum_start = start;
	off->csum_offset = offset;
	*frame_len = flen;
	return WIRE_OK;
}

#endif /* IBVHOST_WIRE_H */
