/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Tests of include/ibvhost/vnet.h: virtio-net header size, TX parse and
 * strip, RX header write over small buffers, mergeable spreading, and
 * software checksum completion. Segments point into one arena whose
 * unused bytes are canaries; every test checks them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "ibvhost/vnet.h"

#define ARENA_LEN 4096u
#define CANARY 0xa5u

static uint8_t arena[ARENA_LEN];
static uint8_t used_map[ARENA_LEN]; /* 1 where a segment may write */

static int reset(void **state)
{
	(void)state;
	memset(arena, CANARY, sizeof(arena));
	memset(used_map, 0, sizeof(used_map));
	return 0;
}

/* A segment of `len` bytes at arena offset `off`, initially filled with
 * `fill`. */
static struct vq_seg seg(uint32_t off, uint32_t len, uint8_t fill)
{
	assert_true(off + len <= ARENA_LEN);
	memset(arena + off, fill, len);
	memset(used_map + off, 1, len);
	return (struct vq_seg){ (uintptr_t)(arena + off), len, 0 };
}

static int check_canaries(void **state)
{
	uint32_t i;
	(void)state;

	for (i = 0; i < ARENA_LEN; i++)
		if (!used_map[i] && arena[i] != CANARY)
			fail_msg("arena byte %u outside every segment changed", i);
	return 0;
}

static const struct vnet_cfg cfg_v1 = { VNET_HDR_LEN_MRG, true, true };

static void put_tx_hdr(uint8_t *buf, uint8_t flags, uint8_t gso,
		       uint16_t start, uint16_t offset)
{
	struct virtio_net_hdr_mrg_rxbuf h;

	memset(&h, 0, sizeof(h));
	h.hdr.flags = flags;
	h.hdr.gso_type = gso;
	h.hdr.csum_start = start;
	h.hdr.csum_offset = offset;
	memcpy(buf, &h, sizeof(h));
}

static void test_hdr_len(void **state)
{
	struct vnet_cfg cfg;
	(void)state;

	assert_int_equal(vnet_hdr_len(0), VNET_HDR_LEN_LEGACY);
	assert_int_equal(vnet_hdr_len(1ull << VIRTIO_F_VERSION_1), 12);
	assert_int_equal(vnet_hdr_len(1ull << VIRTIO_NET_F_MRG_RXBUF), 12);
	vnet_cfg_init(&cfg, (1ull << VIRTIO_NET_F_CSUM));
	assert_int_equal(cfg.hdr_len, 10);
	assert_true(cfg.csum);
	assert_false(cfg.guest_csum);
}

static void test_tx_hdr_own_desc(void **state)
{
	struct vq_seg s[2];
	struct vnet_tx tx;
	(void)state;

	s[0] = seg(0, 12, 0);
	s[1] = seg(100, 60, 0x11);
	put_tx_hdr(arena, 0, 0, 0, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 2, &tx), VQ_OK);
	assert_int_equal(tx.first, 1);
	assert_int_equal(tx.frame_len, 60);
	assert_int_equal(tx.off.flags, 0);
	assert_int_equal(s[1].addr, (uintptr_t)(arena + 100));
	assert_int_equal(s[1].len, 60);
}

static void test_tx_hdr_shares_desc(void **state)
{
	struct vq_seg s[1];
	struct vnet_tx tx;
	(void)state;

	s[0] = seg(0, 12 + 64, 0x22);
	put_tx_hdr(arena, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 34, 16);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_OK);
	assert_int_equal(tx.first, 0);
	assert_int_equal(s[0].addr, (uintptr_t)(arena + 12));
	assert_int_equal(s[0].len, 64);
	assert_int_equal(tx.off.flags, WIRE_F_NEEDS_CSUM);
	assert_int_equal(tx.off.csum_start, 34);
	assert_int_equal(tx.off.csum_offset, 16);
}

/* CVE-2022-2132 class: the header split over descriptors of 4, 5 and 3+
 * bytes, the last one also holding the start of the frame. */
static void test_tx_hdr_split(void **state)
{
	uint8_t h[12];
	struct vq_seg s[4];
	struct vnet_tx tx;
	(void)state;

	put_tx_hdr(h, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 14, 6);
	s[0] = seg(0, 4, 0);
	s[1] = seg(64, 5, 0);
	s[2] = seg(128, 3 + 20, 0x33);
	s[3] = seg(256, 30, 0x44);
	memcpy(arena + 0, h, 4);
	memcpy(arena + 64, h + 4, 5);
	memcpy(arena + 128, h + 9, 3);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 4, &tx), VQ_OK);
	assert_int_equal(tx.first, 2);
	assert_int_equal(tx.frame_len, 50);
	assert_int_equal(s[2].addr, (uintptr_t)(arena + 131));
	assert_int_equal(s[2].len, 20);
	assert_int_equal(tx.off.csum_start, 14);
	assert_int_equal(tx.off.csum_offset, 6);
}

static void test_tx_short(void **state)
{
	struct vq_seg s[3];
	struct vnet_tx tx;
	(void)state;

	s[0] = seg(0, 4, 0);
	s[1] = seg(64, 4, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 2, &tx), VQ_ERR_HDR_SHORT);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 0, &tx), VQ_ERR_HDR_SHORT);
	s[2] = seg(128, 4 + 13, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 3, &tx), VQ_ERR_FRAME_SHORT);
	s[2] = seg(128, 4 + 14, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 3, &tx), VQ_OK);
	assert_int_equal(tx.frame_len, 14);
}

/* CVE-2024-11614 class: the checksum field must lie inside the frame. */
static void test_tx_csum_bounds(void **state)
{
	struct vq_seg s[1];
	struct vnet_tx tx;
	const struct vnet_cfg no_csum = { VNET_HDR_LEN_MRG, false, true };
	(void)state;

	s[0] = seg(0, 12 + 100, 0);
	put_tx_hdr(arena, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 90, 8); /* 90+8+2 */
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_OK);
	s[0] = seg(0, 12 + 100, 0);
	put_tx_hdr(arena, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 90, 9);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_ERR_HDR_CSUM);
	put_tx_hdr(arena, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0xffff, 0xffff);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_ERR_HDR_CSUM);
	assert_int_equal(tx.first, 1); /* nothing stripped on error */
	assert_int_equal(s[0].len, 112);

	put_tx_hdr(arena, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 14, 6);
	assert_int_equal(vnet_tx_parse(&no_csum, s, 1, &tx), VQ_ERR_HDR_FLAGS);
	put_tx_hdr(arena, VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_OK);
	assert_int_equal(tx.off.flags, 0); /* not passed on */
	s[0] = seg(0, 12 + 100, 0);
	put_tx_hdr(arena, 0x04 /* RSC_INFO: RX only */, 0, 0, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_ERR_HDR_FLAGS);
	put_tx_hdr(arena, 0, VIRTIO_NET_HDR_GSO_TCPV4, 0, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_ERR_HDR_GSO);
	put_tx_hdr(arena, 0, VIRTIO_NET_HDR_GSO_ECN, 0, 0);
	assert_int_equal(vnet_tx_parse(&cfg_v1, s, 1, &tx), VQ_ERR_HDR_GSO);
}

static void read_hdr(const struct vq_seg *s, uint32_t n, uint8_t *out,
		     uint32_t len)
{
	uint32_t i, done = 0;

	for (i = 0; i < n && done < len; i++) {
		uint32_t k = s[i].len < len - done ? s[i].len : len - done;

		memcpy(out + done, (const void *)(uintptr_t)s[i].addr, k);
		done += k;
	}
}

/* Issue 8: an RX header spread over three small descriptors must be
 * written piecewise, never past any of them. */
static void test_rx_hdr_three_small(void **state)
{
	struct vq_seg s[3];
	struct wire_offload off = { WIRE_F_NEEDS_CSUM, 34, 16 };
	struct virtio_net_hdr_mrg_rxbuf h;
	(void)state;

	s[0] = seg(0, 4, 0xff);
	s[1] = seg(64, 4, 0xff);
	s[2] = seg(128, 4, 0xff);
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, s, 3, &off, 100, 3), VQ_OK);
	read_hdr(s, 3, (uint8_t *)&h, sizeof(h));
	assert_int_equal(h.hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(h.hdr.csum_start, 34);
	assert_int_equal(h.hdr.csum_offset, 16);
	assert_int_equal(h.num_buffers, 3);
}

static void test_rx_hdr_uneven_and_legacy(void **state)
{
	struct vq_seg s[2];
	struct wire_offload off = { WIRE_F_DATA_VALID, 0, 0 };
	const struct vnet_cfg legacy = { VNET_HDR_LEN_LEGACY, true, true };
	struct virtio_net_hdr_mrg_rxbuf h;
	(void)state;

	s[0] = seg(0, 1, 0xff);
	s[1] = seg(64, 100, 0xff);
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, s, 2, &off, 60, 1), VQ_OK);
	read_hdr(s, 2, (uint8_t *)&h, sizeof(h));
	assert_int_equal(h.hdr.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(h.num_buffers, 1);
	assert_int_equal(arena[64 + 11], 0xff); /* 1 + 11 = 12 bytes only */

	s[0] = seg(512, 16, 0xff);
	assert_int_equal(vnet_rx_write_hdr(&legacy, s, 1, &off, 60, 7), VQ_OK);
	/* The 10-byte header has no num_buffers: bytes 10.. untouched. */
	assert_int_equal(arena[512 + 1], VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(arena[512 + 10], 0xff);
	assert_int_equal(arena[512 + 11], 0xff);
}

static void test_rx_hdr_short_writes_nothing(void **state)
{
	struct vq_seg s[2];
	struct wire_offload off = { 0, 0, 0 };
	uint8_t expect[11];
	(void)state;

	s[0] = seg(0, 5, 0x77);
	s[1] = seg(64, 6, 0x77);
	memset(expect, 0x77, sizeof(expect));
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, s, 2, &off, 60, 1),
			 VQ_ERR_HDR_SHORT);
	assert_memory_equal(arena, expect, 5);
	assert_memory_equal(arena + 64, expect, 6);
}

static void test_rx_hdr_offload_policy(void **state)
{
	struct vq_seg s[1];
	struct wire_offload off = { WIRE_F_NEEDS_CSUM, 14, 6 };
	const struct vnet_cfg no_gcsum = { VNET_HDR_LEN_MRG, true, false };
	struct virtio_net_hdr_mrg_rxbuf h;
	(void)state;

	s[0] = seg(0, 12, 0xff);
	assert_int_equal(vnet_rx_write_hdr(&no_gcsum, s, 1, &off, 60, 1), VQ_OK);
	memcpy(&h, arena, sizeof(h));
	assert_int_equal(h.hdr.flags, 0);
	assert_int_equal(h.hdr.csum_start, 0);

	off.csum_start = 60; /* beyond the frame */
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, s, 1, &off, 60, 1),
			 VQ_ERR_HDR_CSUM);
}

static void test_rx_hdr_segs(void **state)
{
	struct vq_seg s[4], hdr[VNET_HDR_MAX_SEGS];
	struct wire_offload off = { 0, 0, 0 };
	struct virtio_net_hdr_mrg_rxbuf h;
	uint32_t first;
	(void)state;

	s[0] = seg(0, 5, 0xff);
	s[1] = seg(64, 5, 0xff);
	s[2] = seg(128, 100, 0xff);
	s[3] = seg(256, 100, 0xff);
	assert_int_equal(vnet_rx_hdr_segs(&cfg_v1, s, 4, hdr), 3);
	assert_int_equal(hdr[2].addr, s[2].addr);
	assert_int_equal(hdr[2].len, 2);
	assert_int_equal(s[2].len, 100); /* input untouched */
	first = vq_segs_advance(s, 4, cfg_v1.hdr_len);
	assert_int_equal(first, 2);
	assert_int_equal(s[2].addr, (uintptr_t)(arena + 130));
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, hdr, 3, &off, 60, 2), VQ_OK);
	read_hdr(hdr, 3, (uint8_t *)&h, sizeof(h));
	assert_int_equal(h.num_buffers, 2);
	assert_int_equal(arena[130], 0xff); /* frame area untouched */

	/* Four 1-byte descriptors: shorter than the header. */
	for (first = 0; first < 4; first++)
		s[first] = seg(512 + 16 * first, 1, 0xff);
	assert_int_equal(vnet_rx_hdr_segs(&cfg_v1, s, 4, hdr), 0);
}

/* Twelve 1-byte descriptors and the frame: the worst case still fits. */
static void test_rx_hdr_segs_one_byte_each(void **state)
{
	struct vq_seg s[VNET_HDR_MAX_SEGS + 1], hdr[VNET_HDR_MAX_SEGS];
	struct wire_offload off = { WIRE_F_DATA_VALID, 0, 0 };
	uint8_t h[VNET_HDR_LEN_MRG];
	uint32_t i;
	(void)state;

	for (i = 0; i < VNET_HDR_MAX_SEGS; i++)
		s[i] = seg(16 * i, 1, 0xff);
	s[i] = seg(1024, 64, 0xff);
	assert_int_equal(vnet_rx_hdr_segs(&cfg_v1, s, VNET_HDR_MAX_SEGS + 1, hdr),
			 VNET_HDR_MAX_SEGS);
	assert_int_equal(vq_segs_advance(s, VNET_HDR_MAX_SEGS + 1, 12),
			 VNET_HDR_MAX_SEGS);
	assert_int_equal(vnet_rx_write_hdr(&cfg_v1, hdr, VNET_HDR_MAX_SEGS, &off,
					   60, 1), VQ_OK);
	for (i = 0; i < VNET_HDR_MAX_SEGS; i++)
		h[i] = arena[16 * i];
	assert_int_equal(h[0], VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(h[10], 1); /* num_buffers, little endian */
	assert_int_equal(h[11], 0);
	assert_int_equal(arena[1024], 0xff);
}

static void test_segs_read_write(void **state)
{
	struct vq_seg s[3];
	uint8_t buf[16];
	const uint8_t mac[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	(void)state;

	s[0] = seg(0, 3, 0);
	s[1] = seg(64, 4, 0);
	s[2] = seg(128, 8, 0);
	assert_int_equal(vq_segs_write(s, 3, 2, mac, sizeof(mac)), 12);
	assert_int_equal(arena[2], 1);
	assert_int_equal(arena[64], 2);
	assert_int_equal(arena[128], 6);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vq_segs_read(s, 3, 2, buf, 12), 12);
	assert_memory_equal(buf, mac, 12);
	/* Short at the end of the list, both ways. */
	assert_int_equal(vq_segs_read(s, 3, 10, buf, 16), 5);
	assert_int_equal(vq_segs_write(s, 3, 14, mac, 12), 1);
	assert_int_equal(vq_segs_read(s, 3, 15, buf, 1), 0);
	assert_int_equal(vq_segs_write(s, 0, 0, mac, 1), 0);
}

static void test_rx_spread(void **state)
{
	const uint32_t caps[4] = { 1536, 1536, 1536, 1536 };
	uint32_t used[4] = { 0, 0, 0, 0 };
	(void)state;

	assert_int_equal(vnet_rx_spread(caps, 4, 100, used), 1);
	assert_int_equal(used[0], 100);
	assert_int_equal(vnet_rx_spread(caps, 4, 1536, used), 1);
	assert_int_equal(vnet_rx_spread(caps, 4, 1537, used), 2);
	assert_int_equal(used[0], 1536);
	assert_int_equal(used[1], 1);
	assert_int_equal(vnet_rx_spread(caps, 4, 4 * 1536, used), 4);
	assert_int_equal(vnet_rx_spread(caps, 4, 4 * 1536 + 1, used), 0);
	assert_int_equal(vnet_rx_spread(caps, 4, 0, used), 0);
	assert_int_equal(vnet_rx_spread(caps, 0, 10, used), 0);
}

/* Reference: RFC 1071 over a flat buffer. */
static uint16_t ref_csum(const uint8_t *p, uint32_t len)
{
	uint32_t sum = 0, i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void test_csum_complete(void **state)
{
	uint8_t flat[77];
	struct vq_seg s[3];
	uint32_t i;
	uint16_t want, got;
	const uint16_t start = 34, offset = 6; /* UDP-like */
	(void)state;

	for (i = 0; i < sizeof(flat); i++)
		flat[i] = (uint8_t)(i * 37 + 11);
	flat[start + offset] = 0x12; /* pseudo-header partial sum */
	flat[start + offset + 1] = 0x34;
	want = ref_csum(flat + start, sizeof(flat) - start);

	/* Odd-sized pieces; the checksum field straddles two of them. */
	s[0] = seg(0, 41, 0);
	s[1] = seg(100, 1, 0);
	s[2] = seg(200, 35, 0);
	memcpy(arena, flat, 41);
	memcpy(arena + 100, flat + 41, 1);
	memcpy(arena + 200, flat + 42, 35);
	assert_int_equal(vnet_csum_complete(s, 3, 77, start, offset), VQ_OK);
	got = (uint16_t)(arena[40] << 8 | arena[100]);
	assert_int_equal(got, want);

	assert_int_equal(vnet_csum_complete(s, 3, 77, 70, 6), VQ_ERR_HDR_CSUM);
	assert_int_equal(vnet_csum_complete(s, 3, 78, 14, 6), VQ_ERR_HDR_CSUM);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset, check_canaries)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_hdr_len),
		T(test_tx_hdr_own_desc),
		T(test_tx_hdr_shares_desc),
		T(test_tx_hdr_split),
		T(test_tx_short),
		T(test_tx_csum_bounds),
		T(test_rx_hdr_three_small),
		T(test_rx_hdr_uneven_and_legacy),
		T(test_rx_hdr_short_writes_nothing),
		T(test_rx_hdr_offload_policy),
		T(test_rx_hdr_segs),
		T(test_rx_hdr_segs_one_byte_each),
		T(test_segs_read_write),
		T(test_rx_spread),
		T(test_csum_complete),
	};

	return cmocka_run_group_tests_name("vnet", tests, NULL, NULL);
}
