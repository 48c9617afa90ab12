/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* ud-peer — a remote host that sends what it likes to a port's UD QP.
 *
 * A test's hostile (or merely different) peer on the fabric: it opens the
 * first verbs device, creates a UD QP and sends datagrams of a chosen size
 * and shape to a LID/QPN with a Q_Key, as any program on another host of
 * the segment could. It waits for every send completion and prints one
 * JSON line: {"sent": N, "failed": M}.
 *
 *   ud-peer --lid L --qpn Q --qkey K --size BYTES [--count N]
 *           [--shape raw|frame] [--dst MAC] [--src MAC] [--timeout SEC]
 *
 * shape raw:   BYTES bytes of 0xa5 (no wire header at all: short or
 *              garbage datagrams)
 * shape frame: a valid wire header (no offload) and an
 *              Ethernet frame of BYTES bytes (dst, src, EtherType 0x88b5,
 *              a counting payload)
 * shape frag:  the same frame as fragments of at most 1000 bytes each:
 *              a first message and continuations (BYTES > 1000)
 * shape frag-first, frag-orphan, frag-gap, frag-overlap, frag-huge:
 *              broken fragment trains, one per count: only the first
 *              message; only the second; the first and the third; the
 *              first and one at an offset inside it; a first message
 *              claiming a 65535-byte frame, then two continuations
 *
 * Exit status: 0 every send completed successfully, 1 otherwise, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibvhost/wire.h"

#define PEER_MAX_BYTES 9216u
#define PEER_DEPTH     64u
#define PEER_PIECE     1000u /* frame bytes per fragment */

enum { SHAPE_RAW, SHAPE_FRAME, SHAPE_FRAG, SHAPE_FIRST, SHAPE_ORPHAN,
       SHAPE_GAP, SHAPE_OVERLAP, SHAPE_HUGE };
static const char *const shape_names[] = {
	"raw", "frame", "frag", "frag-first", "frag-orphan", "frag-gap",
	"frag-overlap", "frag-huge",
};

struct peer_opts {
	uint32_t lid, qpn, qkey, size, count;
	int frame; /* one of SHAPE_* */
	uint8_t dst[6], src[6];
	double timeout_s;
};

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(const char *why)
{
	fprintf(stderr, "ud-peer: %s\nusage: ud-peer --lid L --qpn Q --qkey K "
		"--size BYTES [--count N] [--shape raw|frame] [--dst MAC] "
		"[--src MAC] [--timeout SEC]\n", why);
	return 2;
}

static int parse_args(int argc, char **argv, struct peer_opts *o)
{
	static const struct option lo[] = {
		{ "lid", required_argument, NULL, 'l' },
		{ "qpn", required_argument, NULL, 'q' },
		{ "qkey", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "shape", required_argument, NULL, 'p' },
		{ "dst", required_argument, NULL, 'd' },
		{ "src", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	int c, have = 0;

	*o = (struct peer_opts){ .count = 1, .timeout_s = 10,
				 .dst = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
				 .src = { 0x02, 0, 0, 0, 0x99, 0x99 } };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'l': bad = parse_u32(optarg, 0xbfff, &o->lid); have |= 1; break;
		case 'q': bad = parse_u32(optarg, 0xffffff, &o->qpn); have |= 2; break;
		case 'k': bad = parse_u32(optarg, UINT32_MAX, &o->qkey); have |= 4; break;
		case 's': bad = parse_u32(optarg, PEER_MAX_BYTES, &o->size); have |= 8; break;
		case 'n': bad = parse_u32(optarg, 1000000, &o->count); break;
		case 'p':
			bad = 1;
			for (int i = 0; i <= SHAPE_HUGE; i++)
				if (strcmp(optarg, shape_names[i]) == 0) {
					o->frame = i;
					bad = 0;
				}
			break;
		case 'd': bad = parse_mac(optarg, o->dst); break;
		case 'r': bad = parse_mac(optarg, o->src); break;
		case 't': o->timeout_s = atof(optarg); bad = o->timeout_s <= 0; break;
		default: return usage("unknown option");
		}
		if (bad)
			return usage("bad value for an option");
	}
	if (have != 15)
		return usage("--lid, --qpn, --qkey and --size are required");
	if (o->frame != SHAPE_RAW && o->size < 14)
		return usage("a frame has at least 14 bytes");
	if (o->frame >= SHAPE_FRAG && o->size <= 3 * PEER_PIECE &&
	    o->frame != SHAPE_FRAG)
		return usage("broken fragment trains need BYTES > 3000");
	if (o->frame == SHAPE_FRAG && o->size <= PEER_PIECE)
		return usage("fragments need BYTES > 1000");
	return 0;
}

/* The Ethernet frame all shapes but raw carry. */
static void build_frame(const struct peer_opts *o, uint8_t *f)
{
	memcpy(f, o->dst, 6);
	memcpy(f + 6, o->src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (uint32_t i = 14; i < o->size; i++)
		f[i] = (uint8_t)i;
}

/* One message of a train: the frame piece at `off` (continuation if
 * off > 0) into out; returns its length. */
static uint32_t frag_msg(const uint8_t *frame, uint32_t frame_len,
			 uint32_t claim, uint16_t id, uint32_t off,
			 uint8_t *out)
{
	uint32_t len = frame_len - off < PEER_PIECE ? frame_len - off
						     : PEER_PIECE;

	if (off == 0) {
		wire_first_build(out, &(struct wire_offload){ 0 }, id, claim);
		memcpy(out + WIRE_HDR_LEN, frame, len);
		return WIRE_HDR_LEN + len;
	}
	wire_cont_build(out, id, off);
	memcpy(out + WIRE_CONT_LEN, frame + off, len);
	return WIRE_CONT_LEN + len;
}

/* The messages of unit `u` of the shape into slots[] (PEER_SLOT bytes
 * each); returns how many, their lengths in len[]. */
#define PEER_SLOT (WIRE_HDR_LEN + PEER_MAX_BYTES)
#define PEER_TRAIN (PEER_MAX_BYTES / PEER_PIECE + 1)
static unsigned build_unit(const struct peer_opts *o, const uint8_t *frame,
			   uint32_t u, uint8_t *slots, uint32_t *len)
{
	uint16_t id = (uint16_t)u;
	unsigned n = 0;

	switch (o->frame) {
	case SHAPE_RAW:
		memset(slots, 0xa5, o->size);
		len[n++] = o->size;
		break;
	case SHAPE_FRAME:
		wire_hdr_build(slots, &(struct wire_offload){ 0 });
		memcpy(slots + WIRE_HDR_LEN, frame, o->size);
		len[n++] = WIRE_HDR_LEN + o->size;
		break;
	case SHAPE_FRAG:
		for (uint32_t off = 0; off < o->size; off += PEER_PIECE, n++)
			len[n] = frag_msg(frame, o->size, o->size, id, off,
					  slots + n * PEER_SLOT);
		break;
	case SHAPE_FIRST:
		len[n++] = frag_msg(frame, o->size, o->size, id, 0, slots);
		break;
	case SHAPE_ORPHAN:
		len[n++] = frag_msg(frame, o->size, o->size, id, PEER_PIECE,
				    slots);
		break;
	case SHAPE_GAP:
	case SHAPE_OVERLAP:
		len[n] = frag_msg(frame, o->size, o->size, id, 0, slots);
		n++;
		len[n] = frag_msg(frame, o->size, o->size, id,
				  o->frame == SHAPE_GAP ? 2 * PEER_PIECE
							: PEER_PIECE / 2,
				  slots + PEER_SLOT);
		n++;
		break;
	case SHAPE_HUGE:
		for (uint32_t off = 0; off < 3 * PEER_PIECE; off += PEER_PIECE)
			len[n] = frag_msg(frame, o->size, WIRE_FRAME_MAX, id,
					  off, slots + n * PEER_SLOT), n++;
		break;
	}
	return n;
}

static int qp_to_rts(struct ibv_qp *qp, uint32_t qkey)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .pkey_index = 0,
				 .port_num = 1, .qkey = qkey };

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		return -1;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTR };
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return -1;
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .sq_psn = 0 };
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

int main(int argc, char **argv)
{
	struct peer_opts o;
	struct ibv_device **list;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	struct ibv_ah *ah;
	static uint8_t frame[PEER_MAX_BYTES];
	static uint8_t buf[PEER_DEPTH][PEER_SLOT];
	uint32_t len[PEER_TRAIN], posted = 0, done = 0, failed = 0, bytes = 0;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc;
	list = ibv_get_device_list(NULL);
	if (!list || !list[0]) {
		fprintf(stderr, "ud-peer: no verbs device\n");
		return 1;
	}
	ctx = ibv_open_device(list[0]);
	if (!ctx) {
		fprintf(stderr, "ud-peer: ibv_open_device(%s): %s\n",
			ibv_get_device_name(list[0]), strerror(errno));
		return 1;
	}
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, PEER_DEPTH, NULL, NULL, 0) : NULL;
	build_frame(&o, frame);
	mr = pd ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE)
		: NULL;
	struct ibv_qp_init_attr qa = {
		.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = PEER_DEPTH, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 }
	};
	qp = cq && mr ? ibv_create_qp(pd, &qa) : NULL;
	struct ibv_ah_attr aa = { .dlid = (uint16_t)o.lid, .port_num = 1 };
	ah = qp ? ibv_create_ah(pd, &aa) : NULL;
	if (!ah || qp_to_rts(qp, o.qkey)) {
		fprintf(stderr, "ud-peer: verbs setup failed: %s\n",
			strerror(errno));
		return 1;
	}

	double deadline = now_s() + o.timeout_s;
	/* A unit's messages go in one post, so that a train is never
	 * interleaved with another's. */
	uint32_t units = 0, total = 0;

	while ((units < o.count || done < total) && now_s() < deadline) {
		if (units < o.count && posted - done + PEER_TRAIN <= PEER_DEPTH) {
			static uint8_t tmp[PEER_TRAIN][PEER_SLOT];
			struct ibv_sge sge[PEER_TRAIN];
			struct ibv_send_wr wr[PEER_TRAIN], *bad;
			unsigned n = build_unit(&o, frame, units, tmp[0], len);

			for (unsigned i = 0; i < n; i++) {
				uint8_t *slot = buf[(posted + i) % PEER_DEPTH];

				memcpy(slot, tmp[i], len[i]);
				sge[i] = (struct ibv_sge){ .addr = (uintptr_t)slot,
							   .length = len[i],
							   .lkey = mr->lkey };
				wr[i] = (struct ibv_send_wr){
					.wr_id = posted + i, .sg_list = &sge[i],
					.num_sge = 1, .opcode = IBV_WR_SEND,
					.send_flags = IBV_SEND_SIGNALED,
					.next = i + 1 < n ? &wr[i + 1] : NULL,
					.wr.ud = { .ah = ah, .remote_qpn = o.qpn,
						   .remote_qkey = o.qkey } };
				bytes = len[i];
			}
			if (ibv_post_send(qp, wr, &bad)) {
				fprintf(stderr, "ud-peer: ibv_post_send: %s\n",
					strerror(errno));
				return 1;
			}
			posted += n;
			total += n;
			units++;
		}
		struct ibv_wc wc[16];
		int n = ibv_poll_cq(cq, 16, wc);

		if (n < 0) {
			fprintf(stderr, "ud-peer: ibv_poll_cq failed\n");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			done++;
			if (wc[i].status != IBV_WC_SUCCESS)
				failed++;
		}
	}
	printf("{\"sent\": %u, \"failed\": %u, \"bytes\": %u}\n", done - failed,
	       failed, bytes);
	ibv_destroy_ah(ah);
	ibv_destroy_qp(qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(list);
	return units == o.count && done == total && failed == 0 ? 0 : 1;
}
