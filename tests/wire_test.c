/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of include/ibvhost/wire.h: build/parse round trips of whole
 * frames, first fragments and continuations, and rejection of every
 * malformed header. */
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
	struct wire_offload in = { WIRE_F_NEEDS_CSUM, 34, 16 };
	struct wire_msg m;
	(void)state;

	wire_hdr_build(msg, &in);
	assert_int_equal(msg[0], WIRE_VERSION);
	assert_int_equal(msg[1], WIRE_F_NEEDS_CSUM);
	assert_int_equal(msg[2], 0);  /* network byte order */
	assert_int_equal(msg[3], 34);
	assert_int_equal(msg[5], 16);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	assert_int_equal(m.kind, WIRE_WHOLE);
	assert_int_equal(m.len, FRAME_LEN);
	assert_int_equal(m.frame_len, FRAME_LEN);
	assert_int_equal(m.off.flags, WIRE_F_NEEDS_CSUM);
	assert_int_equal(m.off.csum_start, 34);
	assert_int_equal(m.off.csum_offset, 16);

	in = (struct wire_offload){ WIRE_F_DATA_VALID, 99, 99 };
	wire_hdr_build(msg, &in); /* csum fields dropped without NEEDS_CSUM */
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	assert_int_equal(m.off.flags, WIRE_F_DATA_VALID);
	assert_int_equal(m.off.csum_start, 0);

	in = (struct wire_offload){ 0xff, 14, 6 };
	wire_hdr_build(msg, &in); /* unknown bits and FRAG dropped */
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	assert_int_equal(m.kind, WIRE_WHOLE);
	assert_int_equal(m.off.flags, WIRE_F_NEEDS_CSUM | WIRE_F_ANNOUNCE);

	/* A port's announcement: no offload, the flag alone. */
	in = (struct wire_offload){ WIRE_F_ANNOUNCE, 0, 0 };
	wire_hdr_build(msg, &in);
	assert_int_equal(msg[1], WIRE_F_ANNOUNCE);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	assert_int_equal(m.off.flags, WIRE_F_ANNOUNCE);
	assert_int_equal(m.len, FRAME_LEN);
}

static void test_fragments(void **state)
{
	struct wire_offload in = { WIRE_F_NEEDS_CSUM, 34, 6000 };
	struct wire_msg m;
	(void)state;

	/* A 9014-byte frame's first message: the checksum field may lie in
	 * a later fragment. */
	wire_first_build(msg, &in, 0xbeef, 9014);
	assert_int_equal(msg[1], WIRE_F_NEEDS_CSUM | WIRE_F_FRAG);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	assert_int_equal(m.kind, WIRE_FIRST);
	assert_int_equal(m.frame_id, 0xbeef);
	assert_int_equal(m.frame_len, 9014);
	assert_int_equal(m.len, FRAME_LEN);
	assert_int_equal(m.off.flags, WIRE_F_NEEDS_CSUM);
	assert_int_equal(m.off.csum_offset, 6000);

	/* The same with the checksum past the frame: refused. */
	wire_first_build(msg, &in, 1, 6000);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_CSUM);
	/* A frame length that a single message would hold, or above the
	 * maximum. */
	in = (struct wire_offload){ 0, 0, 0 };
	wire_first_build(msg, &in, 1, FRAME_LEN);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FRAG);
	wire_first_build(msg, &in, 1, WIRE_FRAME_MAX + 1);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FRAG);
	wire_first_build(msg, &in, 1, WIRE_FRAME_MAX);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	/* Fragment fields without FRAG. */
	msg[1] = 0;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FRAG);

	/* Continuations: 8 bytes of header, the rest frame bytes. */
	wire_cont_build(msg, 0xbeef, 4076);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN + 100, &m), WIRE_OK);
	assert_int_equal(m.kind, WIRE_CONT);
	assert_int_equal(m.frame_id, 0xbeef);
	assert_int_equal(m.offset, 4076);
	assert_int_equal(m.len, 100);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN, &m), WIRE_ERR_FRAG);
	wire_cont_build(msg, 1, 0);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FRAG);
	wire_cont_build(msg, 1, WIRE_FRAME_MAX - 10);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN + 10, &m), WIRE_OK);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN + 11, &m),
			 WIRE_ERR_FRAG);
	wire_cont_build(msg, 1, UINT32_MAX);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN + 1, &m),
			 WIRE_ERR_FRAG);
	/* CONT with any other flag is not a continuation, and not valid. */
	wire_cont_build(msg, 1, 100);
	msg[1] |= WIRE_F_NEEDS_CSUM;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FLAGS);
}

static void test_rejects(void **state)
{
	struct wire_offload in = { WIRE_F_NEEDS_CSUM, 14, 6 };
	struct wire_msg m;
	(void)state;

	wire_hdr_build(msg, &in);
	assert_int_equal(wire_msg_parse(msg, WIRE_CONT_LEN - 1, &m),
			 WIRE_ERR_SHORT);
	assert_int_equal(wire_msg_parse(msg, WIRE_HDR_LEN - 1, &m),
			 WIRE_ERR_SHORT);
	assert_int_equal(m.len, 0);

	msg[0] = 1; /* the previous layout */
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_VERSION);
	msg[0] = 0;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_VERSION);
	msg[0] = WIRE_VERSION;

	msg[1] = 0x40;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM | WIRE_F_DATA_VALID | WIRE_F_ANNOUNCE;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_FLAGS);
	msg[1] = WIRE_F_NEEDS_CSUM;

	for (unsigned i = 12; i < WIRE_HDR_LEN; i++) {
		msg[i] = 1;
		assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m),
				 WIRE_ERR_RESERVED);
		msg[i] = 0;
	}

	/* Checksum field at the very end of the frame fits, one more not. */
	in = (struct wire_offload){ WIRE_F_NEEDS_CSUM, 50, 8 };
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_OK);
	in.csum_offset = 9;
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_CSUM);
	assert_int_equal(m.off.flags, 0);
	in = (struct wire_offload){ WIRE_F_NEEDS_CSUM, 0xffff, 0xffff };
	wire_hdr_build(msg, &in);
	assert_int_equal(wire_msg_parse(msg, UINT32_MAX, &m), WIRE_OK);
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_CSUM);
	/* Stray checksum fields without NEEDS_CSUM. */
	msg[1] = 0;
	assert_int_equal(wire_msg_parse(msg, sizeof(msg), &m), WIRE_ERR_CSUM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
