/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of include/ibvhost/wire.h: build/parse round trip and rejection
 * of every malformed header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ibvhost/wire.h"

#define FRAME_LEN 60u

static uint8_t msg[WIRE_HDR_LEN + FRAME_LEN];

static void test_roundtrip(void **state)
{
	struct wire_offload in = { WIRE_F_NEEDS_CSUM, 34, 16 }, out;
	uint32_t flen;
	(void)state;

	wire_hdr_build(msg, &in);
	assert_int_equal(msg[0], WIRE_VERSION);
	assert_int_equal(msg[1], WIRE_F_NEEDS_CSUM);
	assert_int_equal(msg[2], 0);  /* network byte order */
	assert_int_equal(msg[3], 34);
	assert_int_equal(msg[5], 16);
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen), WIRE_OK);
	assert_int_equal(flen, FRAME_LEN);
	assert_int_equal(out.flags, WIRE_F_NEEDS_CSUM);
	assert_int_equal(out.csum_start, 34);
	assert_int_equal(out.csum_offset, 16);

	in = (struct wire_offload){ WIRE_F_DATA_VALID, 99, 99 };
	wire_hdr_build(msg, &in); /* csum fields dropped without NEEDS_CSUM */
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen), WIRE_OK);
	assert_int_equal(out.flags, WIRE_F_DATA_VALID);
	assert_int_equal(out.csum_start, 0);

	in = (struct wire_offload){ 0xff, 14, 6 };
	wire_hdr_build(msg, &in); /* unknown bits dropped, NEEDS_CSUM wins */
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen), WIRE_OK);
	assert_int_equal(out.flags, WIRE_F_NEEDS_CSUM | WIRE_F_ANNOUNCE);

	/* A port's announcement: no offload, the flag alone. */
	in = (struct wire_offload){ WIRE_F_ANNOUNCE, 0, 0 };
	wire_hdr_build(msg, &in);
	assert_int_equal(msg[1], WIRE_F_ANNOUNCE);
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen), WIRE_OK);
	assert_int_equal(out.flags, WIRE_F_ANNOUNCE);
	assert_int_equal(flen, FRAME_LEN);
}

static void test_rejects(void **state)
{
	struct wire_offload in = { WIRE_F_NEEDS_CSUM, 14, 6 }, out;
	uint32_t flen = 1234;
	(void)state;

	wire_hdr_build(msg, &in);
	assert_int_equal(wire_hdr_parse(msg, WIRE_HDR_LEN - 1, &out, &flen),
			 WIRE_ERR_SHORT);
	assert_int_equal(flen, 0);

	msg[0] = 2;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_VERSION);
	msg[0] = 0;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_VERSION);
	msg[0] = WIRE_VERSION;

	msg[1] = 0x80;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID | WIRE_F_ANNOUNCE;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM;

	msg[7] = 1;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_RESERVED);
	msg[7] = 0;

	/* Checksum field at the very end of the frame fits, one more not. */
	in = (struct wire_offload){ WIRE_F_NEEDS_CSUM, 50, 8 };
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen), WIRE_OK);
	in.csum_offset = 9;
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_CSUM);
	assert_int_equal(out.flags, 0);
	in = (struct wire_offload){ WIRE_F_NEEDS_CSUM, 0xffff, 0xffff };
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_hdr_parse(msg, UINT32_MAX, &out, &flen), WIRE_OK);
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_CSUM);
	/* Stray checksum fields without NEEDS_CSUM. */
	msg[1] = 0;
	assert_int_equal(wire_hdr_parse(msg, sizeof(msg), &out, &flen),
			 WIRE_ERR_CSUM);
	assert_string_equal(wire_strerror(WIRE_ERR_CSUM), "csum");
	assert_string_equal(wire_strerror(WIRE_ERR__COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
