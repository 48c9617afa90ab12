/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of ib_grh_sgid(): the source GID of a received UD message from the
 * 40-byte GRH area of its receive buffer, as rdma_rxe (Soft-RoCE) and
 * hardware fill it: an IB / RoCE v1 / RoCE v2-over-IPv6 GRH, or, for RoCE
 * v2 over IPv4, the 20-byte IPv4 header in the last 20 bytes with the
 * first 20 left as they were (rxe does not clear them). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ibvhost/ib.h"

static void parse(const char *text, uint8_t gid[16])
{
	assert_int_equal(inet_pton(AF_INET6, text, gid), 1);
}

/* An IPv4 header of a RoCE v2 packet (UDP to 4791) from src to dst, with
 * a correct header checksum, at grh + 20. */
static void put_ipv4(uint8_t grh[IB_GRH_LEN], const char *src,
		     const char *dst, uint16_t total_len)
{
	uint8_t *h = grh + 20;
	uint32_t sum = 0;

	memset(h, 0, 20);
	h[0] = 0x45;
	h[2] = (uint8_t)(total_len >> 8);
	h[3] = (uint8_t)total_len;
	h[6] = 0x40; /* DF */
	h[8] = 64;   /* TTL */
	h[9] = 17;   /* UDP */
	assert_int_equal(inet_pton(AF_INET, src, h + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, h + 16), 1);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	h[10] = (uint8_t)(~sum >> 8);
	h[11] = (uint8_t)~sum;
}

/* An IPv6-format GRH (IB, RoCE v1, RoCE v2 over IPv6). */
static void put_grh(uint8_t grh[IB_GRH_LEN], const char *sgid,
		    const char *dgid)
{
	memset(grh, 0, IB_GRH_LEN);
	grh[0] = 0x60;
	grh[6] = 0x1b; /* next header: IB BTH */
	grh[7] = 64;
	parse(sgid, grh + 8);
	parse(dgid, grh + 24);
}

static void expect(const uint8_t grh[IB_GRH_LEN], const char *want)
{
	uint8_t got[16], w[16];
	char s[INET6_ADDRSTRLEN];

	memset(got, 0xaa, sizeof(got));
	parse(want, w);
	ib_grh_sgid(grh, got);
	if (memcmp(got, w, 16) != 0) {
		inet_ntop(AF_INET6, got, s, sizeof(s));
		fail_msg("source GID %s, expected %s", s, want);
	}
}

static void test_roce_v2_ipv4_zeroed_front(void **state)
{
	uint8_t grh[IB_GRH_LEN] = { 0 };

	(void)state;
	put_ipv4(grh, "10.77.0.1", "10.77.0.2", 1060);
	expect(grh, "::ffff:10.77.0.1");
}

/* What the daemon saw before: the GID at offset 8 of this area is
 * ::69.0.4.36 (zeros, then the IPv4 header's first four bytes). */
static void test_roce_v2_ipv4_not_offset_8(void **state)
{
	uint8_t grh[IB_GRH_LEN] = { 0 }, at8[16], bad[16];

	(void)state;
	put_ipv4(grh, "10.77.0.1", "10.77.0.2", 1060);
	memcpy(at8, grh + 8, 16);
	parse("::69.0.4.36", bad);
	assert_memory_equal(at8, bad, 16);
	expect(grh, "::ffff:10.77.0.1");
}

/* rxe leaves the first 20 bytes as the buffer had them: stale data that
 * may even look like an IPv6 header; the valid checksum decides. */
static void test_roce_v2_ipv4_stale_front(void **state)
{
	uint8_t grh[IB_GRH_LEN];

	(void)state;
	put_grh(grh, "fe80::1", "fe80::2");
	put_ipv4(grh, "192.168.7.33", "192.168.7.34", 300);
	expect(grh, "::ffff:192.168.7.33");
	memset(grh, 0x5a, 20);
	expect(grh, "::ffff:192.168.7.33");
}

static void test_ib_grh(void **state)
{
	uint8_t grh[IB_GRH_LEN];

	(void)state;
	put_grh(grh, "fe80::2:c903:0:1001", "ff12:401b::1:1");
	expect(grh, "fe80::2:c903:0:1001");
}

static void test_roce_v2_ipv6(void **state)
{
	uint8_t grh[IB_GRH_LEN];

	(void)state;
	put_grh(grh, "fd00:77::1", "fd00:77::2");
	expect(grh, "fd00:77::1");
}

/* An IPv6 GRH whose source GID's byte 12 happens to read 0x45: an IPv4
 * header there would need a valid checksum, which this one lacks. */
static void test_ipv6_lookalike(void **state)
{
	uint8_t grh[IB_GRH_LEN];

	(void)state;
	put_grh(grh, "fe80::1:2:4500:1234", "fe80::9");
	expect(grh, "fe80::1:2:4500:1234");
}

/* RoCE v2 IPv4-mapped GIDs in a real GRH (ibemu's RoCE mode, RoCE v1
 * peers): kept as they are. */
static void test_v4_mapped_in_grh(void **state)
{
	uint8_t grh[IB_GRH_LEN];

	(void)state;
	put_grh(grh, "::ffff:10.0.0.7", "::ffff:10.0.0.8");
	expect(grh, "::ffff:10.0.0.7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roce_v2_ipv4_zeroed_front),
		cmocka_unit_test(test_roce_v2_ipv4_not_offset_8),
		cmocka_unit_test(test_roce_v2_ipv4_stale_front),
		cmocka_unit_test(test_ib_grh),
		cmocka_unit_test(test_roce_v2_ipv6),
		cmocka_unit_test(test_ipv6_lookalike),
		cmocka_unit_test(test_v4_mapped_in_grh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
