/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* wire — the small header carried in front of every frame on the IB wire.
 *
 * Owns: the layout of that header, building it (TX, in daemon memory,
 * SGE0 of a send) and parsing it (RX, from daemon scratch after the GRH).
 * Pure code: no DPDK, no verbs.
 *
 * A frame goes as one message when it fits, else as several: a first
 * message with the full header, then continuation messages with a short
 * one, in order, on one QP (a sender never interleaves the fragments of
 * two frames). Multi-byte fields are in network byte order.
 *
 * Full header (WIRE_HDR_LEN bytes), in front of a frame's first bytes:
 *
 *   0  version      WIRE_VERSION; anything else is rejected
 *   1  flags        WIRE_F_*; unknown bits are rejected
 *   2  csum_start   (be16) with NEEDS_CSUM: where checksumming starts,
 *                   from the first byte of the Ethernet frame
 *   4  csum_offset  (be16) with NEEDS_CSUM: where the checksum goes,
 *                   from csum_start
 *   6  frame_id     (be16) with FRAG: the sender's number for the frame
 *   8  frame_len    (be32) with FRAG: the whole frame's bytes
 *  12  reserved     8 bytes of 0
 *
 * Continuation header (WIRE_CONT_LEN bytes), in front of later bytes:
 *
 *   0  version      WIRE_VERSION
 *   1  flags        exactly WIRE_F_CONT
 *   2  frame_id     (be16) the frame it continues
 *   4  offset       (be32) where its bytes go in the frame
 *
 * Why the two lengths differ by WIRE_HOLE_LEN (12, a mergeable virtio-net
 * header): a receiver scatters the first WIRE_HDR_LEN bytes of every
 * message into its own memory and the rest into guest buffers after the
 * room of a virtio-net header. A frame's first message thus puts the
 * frame right after that room; a continuation's first 12 bytes land in
 * daemon memory and the receiver copies them into that room, so the
 * continuation starts at the guest buffer's first byte, as a mergeable
 * buffer after the first must. The fragments stay zero-copy both ways.
 *
 * A new incompatible layout takes a new version number.
 */
#ifndef IBVHOST_WIRE_H
#define IBVHOST_WIRE_H

#include <stdint.h>
#include <string.h>

#define WIRE_VERSION 2u
#define WIRE_HDR_LEN 20u  /* bytes: full header */
#define WIRE_CONT_LEN 8u  /* bytes: continuation header */
#define WIRE_HOLE_LEN (WIRE_HDR_LEN - WIRE_CONT_LEN)
/* The largest frame a sender may fragment. */
#define WIRE_FRAME_MAX 65535u

/* The sender left the L4 checksum to be completed (partial checksum over
 * the pseudo-header stored at csum_start + csum_offset). */
#define WIRE_F_NEEDS_CSUM 0x01u
/* The sender vouches for the checksums of this frame. */
#define WIRE_F_DATA_VALID 0x02u
/* The frame only announces its source MAC at the sending QP (a port that
 * has just started, on a new QP): receivers learn it and deliver nothing
 * to their guests. */
#define WIRE_F_ANNOUNCE 0x04u
/* The frame is longer than this message: continuations follow. */
#define WIRE_F_FRAG 0x08u
/* A continuation header (never together with another flag). */
#define WIRE_F_CONT 0x80u
#define WIRE_F_CSUM_MASK (WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID)
#define WIRE_F_KNOWN (WIRE_F_CSUM_MASK | WIRE_F_ANNOUNCE | WIRE_F_FRAG)

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
	WIRE_ERR_FRAG,     /* fragment fields inconsistent: a frame length
			    * not above this message's or above
			    * WIRE_FRAME_MAX, an empty continuation or one
			    * past WIRE_FRAME_MAX, fields without FRAG */
	WIRE_ERR__COUNT
};

/* True if csum_start + csum_offset + 2 ≤ frame_len (the 16-bit checksum
 * field lies inside the frame), computed without overflow. */
static inline int wire_csum_fits(uint16_t csum_start, uint16_t csum_offset,
				 uint32_t frame_len)
{
	return (uint32_t)csum_start + csum_offset + 2u <= frame_len;
}

/* What a received message is. */
enum wire_kind {
	WIRE_WHOLE, /* a whole frame */
	WIRE_FIRST, /* a frame's first fragment (FRAG) */
	WIRE_CONT,  /* a later fragment */
};

/* A parsed message, host byte order. */
struct wire_msg {
	enum wire_kind kind;
	struct wire_offload off; /* WHOLE and FIRST */
	uint16_t frame_id;	 /* FIRST and CONT */
	uint32_t frame_len;	 /* the whole frame's bytes (WHOLE, FIRST) */
	uint32_t offset;	 /* CONT: where its bytes go in the frame */
	uint32_t len;		 /* frame bytes in this message */
};

/* Per frame, so inline. */
static inline void wire_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wire_put_be32(uint8_t *p, uint32_t v)
{
	wire_put_be16(p, (uint16_t)(v >> 16));
	wire_put_be16(p + 2, (uint16_t)v);
}

static inline uint16_t wire_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t wire_get_be32(const uint8_t *p)
{
	return (uint32_t)wire_get_be16(p) << 16 | wire_get_be16(p + 2);
}

/* Write a full header for `off` into out[0..WIRE_HDR_LEN). Flags outside
 * WIRE_F_KNOWN are dropped (FRAG too: wire_first_build sets it);
 * checksum fields are written only with NEEDS_CSUM. The caller has
 * validated `off` against the frame (the virtio-net TX parser does). */
static inline void wire_hdr_build(void *out, const struct wire_offload *off)
{
	uint8_t *p = out;
	uint8_t flags = off->flags & WIRE_F_KNOWN & (uint8_t)~WIRE_F_FRAG;
	int csum = (flags & WIRE_F_NEEDS_CSUM) != 0;

	if (csum)
		flags &= (uint8_t)~WIRE_F_DATA_VALID;
	memset(p, 0, WIRE_HDR_LEN);
	p[0] = WIRE_VERSION;
	p[1] = flags;
	if (csum) {
		wire_put_be16(p + 2, off->csum_start);
		wire_put_be16(p + 4, off->csum_offset);
	}
}

/* The full header of a fragmented frame's first message. */
static inline void wire_first_build(void *out, const struct wire_offload *off,
				    uint16_t frame_id, uint32_t frame_len)
{
	uint8_t *p = out;

	wire_hdr_build(out, off);
	p[1] |= WIRE_F_FRAG;
	wire_put_be16(p + 6, frame_id);
	wire_put_be32(p + 8, frame_len);
}

/* A continuation header into out[0..WIRE_CONT_LEN). */
static inline void wire_cont_build(void *out, uint16_t frame_id,
				   uint32_t offset)
{
	uint8_t *p = out;

	p[0] = WIRE_VERSION;
	p[1] = WIRE_F_CONT;
	wire_put_be16(p + 2, frame_id);
	wire_put_be32(p + 4, offset);
}

/* Parse a received message of msg_len bytes: a header, then frame bytes.
 * On success *m is filled; the checksum fields of a WHOLE or FIRST
 * message are checked against the whole frame. */
static inline enum wire_err wire_msg_parse(const void *msg, uint32_t msg_len,
					   struct wire_msg *m)
{
	uint8_t h[WIRE_HDR_LEN];
	uint16_t start, offset;

	memset(m, 0, sizeof(*m));
	if (msg_len < WIRE_CONT_LEN)
		return WIRE_ERR_SHORT;
	memcpy(h, msg, WIRE_CONT_LEN);
	if (h[0] != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	if (h[1] == WIRE_F_CONT) {
		m->kind = WIRE_CONT;
		m->frame_id = wire_get_be16(h + 2);
		m->offset = wire_get_be32(h + 4);
		m->len = msg_len - WIRE_CONT_LEN;
		if (m->offset == 0 || m->len == 0 ||
		    m->offset > WIRE_FRAME_MAX ||
		    m->len > WIRE_FRAME_MAX - m->offset)
			return WIRE_ERR_FRAG;
		return WIRE_OK;
	}
	if (msg_len < WIRE_HDR_LEN)
		return WIRE_ERR_SHORT;
	memcpy(h, msg, sizeof(h));
	m->len = msg_len - WIRE_HDR_LEN;
	m->frame_len = m->len;
	/* Most frames carry no offload: version, then zero bytes. */
	static const uint8_t plain[WIRE_HDR_LEN] = { WIRE_VERSION };
	if (memcmp(h, plain, sizeof(h)) == 0)
		return WIRE_OK;

	if ((h[1] & ~WIRE_F_KNOWN) != 0 ||
	    (h[1] & WIRE_F_CSUM_MASK) == WIRE_F_CSUM_MASK)
		return WIRE_ERR_FLAGS;
	for (unsigned i = 12; i < WIRE_HDR_LEN; i++)
		if (h[i] != 0)
			return WIRE_ERR_RESERVED;
	if (h[1] & WIRE_F_FRAG) {
		m->kind = WIRE_FIRST;
		m->frame_id = wire_get_be16(h + 6);
		m->frame_len = wire_get_be32(h + 8);
		if (m->frame_len <= m->len || m->frame_len > WIRE_FRAME_MAX)
			return WIRE_ERR_FRAG;
	} else if (wire_get_be16(h + 6) != 0 || wire_get_be32(h + 8) != 0) {
		return WIRE_ERR_FRAG;
	}
	start = wire_get_be16(h + 2);
	offset = wire_get_be16(h + 4);
	if (h[1] & WIRE_F_NEEDS_CSUM) {
		/* CVE-2024-11614 class: the receiver would write the
		 * checksum at start + offset. */
		if (!wire_csum_fits(start, offset, m->frame_len))
			return WIRE_ERR_CSUM;
	} else if (start != 0 || offset != 0) {
		return WIRE_ERR_CSUM;
	}
	m->off.flags = h[1] & (uint8_t)~WIRE_F_FRAG;
	m->off.csum_start = start;
	m->off.csum_offset = offset;
	return WIRE_OK;
}

#endif /* IBVHOST_WIRE_H */
