/* Wire header build and parse. See include/ibvhost/wire.h. */
#include <string.h>

#include "ibvhost/wire.h"

static const char *const wire_err_names[WIRE_ERR__COUNT] = {
	[WIRE_OK] = "ok",
	[WIRE_ERR_SHORT] = "short",
	[WIRE_ERR_VERSION] = "version",
	[WIRE_ERR_FLAGS] = "flags",
	[WIRE_ERR_CSUM] = "csum",
	[WIRE_ERR_RESERVED] = "reserved",
};

const char *wire_strerror(enum wire_err err)
{
	if ((unsigned)err >= WIRE_ERR__COUNT)
		return "unknown";
	return wire_err_names[err];
}

static inline void wire_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t wire_get_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

void wire_hdr_build(void *out, const struct wire_offload *off)
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

enum wire_err wire_hdr_parse(const void *msg, uint32_t msg_len,
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
	flen = msg_len - WIRE_HDR_LEN;

	if (h[0] != WIRE_VERSION)
		return WIRE_ERR_VERSION;
	if ((h[1] & ~WIRE_F_KNOWN) != 0 ||
	    (h[1] & WIRE_F_KNOWN) == WIRE_F_KNOWN)
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
