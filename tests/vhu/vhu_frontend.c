/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* vhu-frontend: a vhost-user frontend (the guest side) for tests.
 * Exit status: 0 success, 1 failed verification, 2 usage or protocol error.
 * The last line on stdout is one JSON object summarising the run. */
#include "vhu.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_net.h>

#define EXIT_VERIFY 1
#define EXIT_USAGE 2
#define VHU_MAX_SENDERS 16
#define VHU_SEQ_BITMAP_MAX (1ull << 28)

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct cli {
	struct vhu_opts o;
	const char *cmd;
	const char *hostile_case;
	uint64_t count;
	uint32_t size;
	uint8_t dst[6];
	bool have_dst;
	uint8_t src_filter[6];
	bool have_src;
	double rate;
	bool csum;
	bool verify;
	uint32_t seed;
	double seconds;
	double timeout_s;
};

static const char usage_text[] =
"usage: vhu-frontend --socket PATH [--listen] [--mac MAC] [--ring N]\n"
"         [--mem MB] [--regions 1|2] [--features HEX] [--rx-buf BYTES]\n"
"         [--mtu N] [--timeout SEC] [--busy-poll] [--verbose] COMMAND ...\n"
"  send --count N --size BYTES --dst MAC [--rate PPS] [--segments K]\n"
"       [--hdr-desc] [--indirect] [--csum] [--seed N]\n"
"  recv --count N [--verify] [--src MAC]\n"
"  pingpong --count N --size BYTES --dst MAC\n"
"  echo [--count N]\n"
"  idle --seconds S\n"
"  hostile CASE | hostile list\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "vhu-frontend: %s\n", why);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

enum { O_SOCKET = 256, O_LISTEN, O_MAC, O_RING, O_MEM, O_REGIONS, O_FEATURES,
       O_RXBUF, O_MTU, O_TIMEOUT, O_BUSY, O_VERBOSE, O_COUNT, O_SIZE, O_DST,
       O_RATE, O_SEGMENTS, O_HDRDESC, O_INDIRECT, O_CSUM, O_SEED, O_VERIFY,
       O_SRC, O_SECONDS, O_HELP };

static const struct option long_opts[] = {
	{ "socket", required_argument, NULL, O_SOCKET },
	{ "listen", no_argument, NULL, O_LISTEN },
	{ "mac", required_argument, NULL, O_MAC },
	{ "ring", required_argument, NULL, O_RING },
	{ "mem", required_argument, NULL, O_MEM },
	{ "regions", required_argument, NULL, O_REGIONS },
	{ "features", required_argument, NULL, O_FEATURES },
	{ "rx-buf", required_argument, NULL, O_RXBUF },
	{ "mtu", required_argument, NULL, O_MTU },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "busy-poll", no_argument, NULL, O_BUSY },
	{ "verbose", no_argument, NULL, O_VERBOSE },
	{ "count", required_argument, NULL, O_COUNT },
	{ "size", required_argument, NULL, O_SIZE },
	{ "dst", required_argument, NULL, O_DST },
	{ "rate", required_argument, NULL, O_RATE },
	{ "segments", required_argument, NULL, O_SEGMENTS },
	{ "hdr-desc", no_argument, NULL, O_HDRDESC },
	{ "indirect", no_argument, NULL, O_INDIRECT },
	{ "csum", no_argument, NULL, O_CSUM },
	{ "seed", required_argument, NULL, O_SEED },
	{ "verify", no_argument, NULL, O_VERIFY },
	{ "src", required_argument, NULL, O_SRC },
	{ "seconds", required_argument, NULL, O_SECONDS },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double min, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min))
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	uint64_t v;
	int opt;

	memset(c, 0, sizeof(*c));
	c->o.ring = 256;
	c->o.mem_mb = 32;
	c->o.regions = 1;
	c->o.features_mask = VHU_DEFAULT_FEATURES;
	c->o.rx_buf = 1536 + 12;
	c->o.mtu = 1500;
	c->o.segments = 1;
	c->timeout_s = 10;
	c->seed = 1;
	c->size = 64;
	memcpy(c->o.mac, (const uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x01 }, 6);
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		bool ok = true;
		switch (opt) {
		case O_SOCKET: c->o.socket = optarg; break;
		case O_LISTEN: c->o.listen = true; break;
		case O_MAC: ok = !vhu_parse_mac(optarg, c->o.mac); break;
		case O_RING: ok = parse_u64(optarg, 2, 32768, &v); c->o.ring = (unsigned)v; break;
		case O_MEM: ok = parse_u64(optarg, 2, 4096, &v); c->o.mem_mb = (unsigned)v; break;
		case O_REGIONS: ok = parse_u64(optarg, 1, 2, &v); c->o.regions = (unsigned)v; break;
		case O_FEATURES: ok = parse_u64(optarg, 0, UINT64_MAX, &c->o.features_mask); break;
		case O_RXBUF: ok = parse_u64(optarg, 16, 65536, &v); c->o.rx_buf = (unsigned)v; break;
		case O_MTU: ok = parse_u64(optarg, 68, 65535, &v); c->o.mtu = (unsigned)v; break;
		case O_TIMEOUT: ok = parse_double(optarg, 0.001, &c->timeout_s); break;
		case O_BUSY: c->o.busy_poll = true; break;
		case O_VERBOSE: c->o.verbose = true; break;
		case O_COUNT: ok = parse_u64(optarg, 0, UINT64_MAX, &c->count); break;
		case O_SIZE: ok = parse_u64(optarg, VHU_FRAME_MIN, 65535, &v); c->size = (uint32_t)v; break;
		case O_DST: ok = !vhu_parse_mac(optarg, c->dst); c->have_dst = true; break;
		case O_RATE: ok = parse_double(optarg, 0, &c->rate); break;
		case O_SEGMENTS: ok = parse_u64(optarg, 1, 64, &v); c->o.segments = (unsigned)v; break;
		case O_HDRDESC: c->o.hdr_desc = true; break;
		case O_INDIRECT: c->o.indirect = true; break;
		case O_CSUM: c->csum = true; break;
		case O_SEED: ok = parse_u64(optarg, 0, UINT32_MAX, &v); c->seed = (uint32_t)v; break;
		case O_VERIFY: c->verify = true; break;
		case O_SRC: ok = !vhu_parse_mac(optarg, c->src_filter); c->have_src = true; break;
		case O_SECONDS: ok = parse_double(optarg, 0, &c->seconds); break;
		case O_HELP: fputs(usage_text, stdout); exit(0);
		default: return usage(NULL);
		}
		if (!ok) {
			fprintf(stderr, "vhu-frontend: bad value for --%s: %s\n",
				long_opts[opt - O_SOCKET].name, optarg);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage("no command");
	c->cmd = argv[optind++];
	if (!strcmp(c->cmd, "hostile")) {
		if (optind >= argc)
			return usage("hostile needs a CASE (or 'list')");
		c->hostile_case = argv[optind++];
	}
	if (optind < argc)
		return usage("unexpected argument after the command");
	if (c->o.indirect)
		c->o.features_mask |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	c->o.timeout_ms = (unsigned)(c->timeout_s * 1000.0);
	c->o.tx_max_frame = c->size > 2048 ? c->size : 2048;
	if (c->csum && c->size < VHU_FRAME_MIN_UDP)
		c->size = VHU_FRAME_MIN_UDP;
	return 0;
}

static void report_dev(struct vhu_dev *d, bool ok, double elapsed_s)
{
	vj_bool("ok", ok);
	vj_str("error", d->err[0] ? d->err : NULL);
	vj_hex("features_offered", d->features_offered);
	vj_hex("features", d->features);
	vj_hex("protocol_features_offered", d->proto_offered);
	vj_hex("protocol_features", d->proto);
	vj_u64("hdr_len", d->hdr_len);
	vj_u64("ring", d->o.ring);
	vj_u64("regions", d->o.regions);
	vj_bool("stopped", d->stopped);
	vj_key("vring_base");
	printf("[%u,%u]", d->base_at_stop[0], d->base_at_stop[1]);
	vj_u64("rx_frames", d->rx_frames);
	vj_u64("rx_bytes", d->rx_bytes);
	vj_u64("rx_bad_used", d->rx_bad_used);
	vj_u64("rx_max_num_buffers", d->rx_max_bufs);
	vj_u64("rx_needs_csum", d->rx_flags_needs_csum);
	vj_u64("rx_data_valid", d->rx_flags_data_valid);
	vj_u64("tx_frames", d->tx_frames);
	vj_u64("tx_bytes", d->tx_bytes);
	vj_u64("tx_completed", d->tx_reaped);
	vj_u64("tx_bad_used", d->tx_bad_used);
	vj_u64("kicks", d->vq[0].kicks + d->vq[1].kicks);
	vj_u64("calls", d->vq[0].calls + d->vq[1].calls);
	vj_u64("canary_changed", d->mem.base ? vhu_mem_canary_changed(&d->mem) : 0);
	vj_dbl("elapsed_s", elapsed_s);
}

/* ---- commands -------------------------------------------------------------- */

struct sender {
	uint8_t mac[6];
	uint64_t *seen;
	uint64_t bits;
	uint64_t unique, dups, out_of_range, reordered, max_seq;
	bool any;
};

struct recv_stats {
	uint64_t good, bad[5], filtered;
	struct sender s[VHU_MAX_SENDERS];
	unsigned ns;
	uint64_t too_many_senders;
};

static void recv_account(struct recv_stats *st, const struct vhu_rx_info *ri,
			 const struct cli *c)
{
	struct vhu_frame_meta fm;
	enum vhu_check ck = vhu_frame_check(ri, &fm);

	if (c->have_src && ri->len >= 12 && memcmp(ri->frame + 6, c->src_filter, 6)) {
		st->filtered++;
		return;
	}
	if (ck != VHU_CHECK_OK) {
		st->bad[ck]++;
		if (c->o.verbose)
			fprintf(stderr, "vhu: bad frame len %u: %s\n", ri->len,
				vhu_check_name(ck));
		return;
	}
	struct sender *s = NULL;
	for (unsigned i = 0; i < st->ns; i++)
		if (!memcmp(st->s[i].mac, fm.src, 6))
			s = &st->s[i];
	if (!s) {
		if (st->ns == VHU_MAX_SENDERS) {
			st->too_many_senders++;
			return;
		}
		s = &st->s[st->ns++];
		memcpy(s->mac, fm.src, 6);
		s->bits = c->count ? c->count * 2 + 64 : 1u << 20;
		if (s->bits > VHU_SEQ_BITMAP_MAX)
			s->bits = VHU_SEQ_BITMAP_MAX;
		s->seen = calloc((s->bits + 63) / 64, 8);
	}
	st->good++;
	if (s->any && fm.seq < s->max_seq)
		s->reordered++;
	if (!s->any || fm.seq > s->max_seq)
		s->max_seq = fm.seq;
	s->any = true;
	if (!s->seen || fm.seq >= s->bits) {
		s->out_of_range++;
		return;
	}
	uint64_t bit = 1ull << (fm.seq & 63);
	if (s->seen[fm.seq / 64] & bit) {
		s->dups++;
	} else {
		s->seen[fm.seq / 64] |= bit;
		s->unique++;
	}
}

static bool time_left(uint64_t deadline)
{
	return !stop_requested && vhu_now_ns() < deadline;
}

static int cmd_send(struct vhu_dev *d, const struct cli *c, uint64_t deadline)
{
	uint8_t *buf = malloc(c->size + 128);
	struct vhu_frame_meta fm = { .seed = c->seed, .udp = c->csum };
	struct vhu_tx_req req;
	uint64_t t0 = vhu_now_ns(), sent = 0;
	struct vhu_rx_info ri;

	if (!buf)
		return EXIT_USAGE;
	memcpy(fm.dst, c->dst, 6);
	memcpy(fm.src, d->o.mac, 6);
	while (sent < c->count && time_left(deadline) && !d->closed) {
		if (c->rate > 0) {
			uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / c->rate);
			if (vhu_now_ns() < due) {
				vhu_net_wait(d, 1);
				continue;
			}
		}
		fm.seq = sent;
		vhu_frame_build(buf, c->size, &fm, &req);
		int r = vhu_net_tx(d, &req);
		if (r == -EAGAIN) {
			vhu_net_wait(d, 5);
			vhu_net_tx_reap(d);
			continue;
		}
		if (r) {
			snprintf(d->err, sizeof(d->err), "tx: %s", strerror(-r));
			break;
		}
		sent++;
		while (vhu_net_rx(d, &ri) != 0)
			;
	}
	while (d->tx_reaped + d->tx_bad_used < d->tx_frames &&
	       time_left(deadline) && !d->closed) {
		vhu_net_tx_reap(d);
		vhu_net_wait(d, 5);
	}
	free(buf);
	return 0;
}

static int cmd_recv(struct vhu_dev *d, const struct cli *c, uint64_t deadline,
		    struct recv_stats *st)
{
	struct vhu_rx_info ri;

	while ((c->count == 0 || st->good < c->count) && time_left(deadline) &&
	       !d->closed) {
		int r = vhu_net_rx(d, &ri);
		if (r > 0)
			recv_account(st, &ri, c);
		else if (r == 0)
			vhu_net_wait(d, 10);
		vhu_net_tx_reap(d);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmd_pingpong(struct vhu_dev *d, const struct cli *c,
			uint64_t deadline, uint64_t *rtt, uint64_t *nrtt)
{
	uint8_t *buf = malloc(c->size + 128);
	struct vhu_frame_meta fm = { .seed = c->seed, .udp = c->csum }, got;
	struct vhu_tx_req req;
	struct vhu_rx_info ri;

	if (!buf)
		return EXIT_USAGE;
	memcpy(fm.dst, c->dst, 6);
	memcpy(fm.src, d->o.mac, 6);
	for (uint64_t i = 0; i < c->count && time_left(deadline) && !d->closed; i++) {
		fm.seq = i;
		vhu_frame_build(buf, c->size, &fm, &req);
		uint64_t t0 = vhu_now_ns();
		uint64_t until = t0 + 1000000000ull < deadline ? t0 + 1000000000ull : deadline;
		while (vhu_net_tx(d, &req) == -EAGAIN && time_left(until))
			vhu_net_wait(d, 1);
		while (time_left(until) && !d->closed) {
			int r = vhu_net_rx(d, &ri);
			if (r == 0) {
				vhu_net_wait(d, 1);
				continue;
			}
			if (r > 0 && vhu_frame_check(&ri, &got) == VHU_CHECK_OK &&
			    got.seq == i && !memcmp(got.dst, d->o.mac, 6)) {
				rtt[(*nrtt)++] = (vhu_now_ns() - t0) / 1000;
				break;
			}
		}
		vhu_net_tx_reap(d);
	}
	free(buf);
	return 0;
}

static int cmd_echo(struct vhu_dev *d, const struct cli *c, uint64_t deadline,
		    uint64_t *reflected)
{
	struct vhu_rx_info ri;
	struct vhu_tx_req req;
	static uint8_t buf[65536 + 64];

	while ((c->count == 0 || *reflected < c->count) && time_left(deadline) &&
	       !d->closed) {
		int r = vhu_net_rx(d, &ri);
		vhu_net_tx_reap(d);
		if (r == 0) {
			vhu_net_wait(d, 10);
			continue;
		}
		if (r < 0 || ri.len < 14)
			continue;
		memcpy(buf, ri.frame + 6, 6);
		memcpy(buf + 6, ri.frame, 6);
		memcpy(buf + 12, ri.frame + 12, ri.len - 12);
		req = (struct vhu_tx_req){ .frame = buf, .len = ri.len,
			.flags = ri.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM,
			.csum_start = ri.csum_start, .csum_offset = ri.csum_offset };
		while (vhu_net_tx(d, &req) == -EAGAIN && time_left(deadline))
			vhu_net_wait(d, 1);
		(*reflected)++;
	}
	return 0;
}

static int cmd_idle(struct vhu_dev *d, const struct cli *c, uint64_t deadline)
{
	uint64_t until = vhu_now_ns() + (uint64_t)(c->seconds * 1e9);
	struct vhu_rx_info ri;

	if (until > deadline)
		until = deadline;
	while (time_left(until) && !d->closed) {
		while (vhu_net_rx(d, &ri) != 0)
			;
		vhu_net_tx_reap(d);
		vhu_net_wait(d, 20);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct vhu_dev d;
	int rc = parse_args(argc, argv, &c);

	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!strcmp(c.cmd, "hostile")) {
		if (!strcmp(c.hostile_case, "list")) {
			vhu_hostile_list();
			return 0;
		}
		if (!c.o.socket)
			return usage("--socket is required");
		return vhu_hostile_run(&c.o, c.hostile_case);
	}
	static const char *const cmds[] = { "send", "recv", "pingpong", "echo", "idle" };
	bool known = false;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		known |= !strcmp(c.cmd, cmds[i]);
	if (!known)
		return usage("unknown command");
	if (!c.o.socket)
		return usage("--socket is required");
	if ((!strcmp(c.cmd, "send") || !strcmp(c.cmd, "pingpong")) && !c.have_dst)
		return usage("--dst is required");
	if (!strcmp(c.cmd, "idle") && c.seconds <= 0)
		return usage("idle needs --seconds");

	uint64_t t0 = vhu_now_ns();
	uint64_t deadline = t0 + (uint64_t)(c.timeout_s * 1e9);
	int r = vhu_dev_open(&d, &c.o);
	struct recv_stats st;
	uint64_t *rtt = NULL, nrtt = 0, reflected = 0, send_ns = 0;
	memset(&st, 0, sizeof(st));
	if (r == 0) {
		fprintf(stderr, "vhu: %s ready on %s\n", c.cmd, c.o.socket);
		if (!strcmp(c.cmd, "send")) {
			uint64_t s0 = vhu_now_ns();

			cmd_send(&d, &c, deadline);
			send_ns = vhu_now_ns() - s0;
		}
		else if (!strcmp(c.cmd, "recv"))
			cmd_recv(&d, &c, deadline, &st);
		else if (!strcmp(c.cmd, "echo"))
			cmd_echo(&d, &c, deadline, &reflected);
		else if (!strcmp(c.cmd, "idle"))
			cmd_idle(&d, &c, deadline);
		else if ((rtt = calloc(c.count + 1, sizeof(*rtt))))
			cmd_pingpong(&d, &c, deadline, rtt, &nrtt);
		if (d.closed && !d.err[0])
			snprintf(d.err, sizeof(d.err), "backend closed the connection");
		if (!d.closed && vhu_dev_stop(&d) && !d.err[0])
			snprintf(d.err, sizeof(d.err), "stop failed");
	}
	double el = (double)(vhu_now_ns() - t0) / 1e9;
	bool proto_ok = r == 0 && d.stopped;
	bool ok = proto_ok;
	int exit_code = 0;

	vj_key("cmd");
	printf("\"%s\"", c.cmd);
	if (!strcmp(c.cmd, "send")) {
		ok = ok && d.tx_frames == c.count && d.tx_reaped == c.count;
		vj_u64("sent", d.tx_frames);
		/* The sending alone: connection and stop excluded. */
		vj_dbl("send_s", (double)send_ns / 1e9);
		vj_dbl("pps", send_ns ? (double)d.tx_frames * 1e9 / (double)send_ns
				      : 0);
	} else if (!strcmp(c.cmd, "recv")) {
		uint64_t bad = st.bad[1] + st.bad[2] + st.bad[3] + st.bad[4];
		uint64_t dups = 0, oor = 0, reord = 0, uniq = 0;
		for (unsigned i = 0; i < st.ns; i++) {
			dups += st.s[i].dups;
			oor += st.s[i].out_of_range;
			reord += st.s[i].reordered;
			uniq += st.s[i].unique;
		}
		vj_u64("received", st.good + bad);
		vj_u64("good", st.good);
		vj_u64("bad", bad);
		vj_u64("bad_len", st.bad[VHU_CHECK_BAD_LEN]);
		vj_u64("bad_pattern", st.bad[VHU_CHECK_BAD_PATTERN]);
		vj_u64("bad_csum", st.bad[VHU_CHECK_BAD_CSUM]);
		vj_u64("not_test", st.bad[VHU_CHECK_NOT_TEST]);
		vj_u64("filtered", st.filtered);
		vj_u64("duplicates", dups);
		vj_u64("missing", c.count > uniq ? c.count - uniq : 0);
		vj_u64("reordered", reord);
		vj_u64("seq_out_of_range", oor);
		vj_u64("senders", st.ns);
		/* The first few gaps of the first sender, to tell loss at the
		 * start from loss under load. */
		vj_key("first_missing");
		printf("[");
		unsigned shown = 0;
		if (st.ns && st.s[0].seen)
			for (uint64_t q = 0; q < c.count && q < st.s[0].bits && shown < 8; q++)
				if (!(st.s[0].seen[q / 64] & (1ull << (q & 63))))
					printf("%s%llu", shown++ ? "," : "", (unsigned long long)q);
		printf("]");
		if (c.verify)
			ok = ok && uniq >= c.count && bad == 0 && dups == 0 && oor == 0;
		else
			ok = ok && st.good >= c.count;
	} else if (!strcmp(c.cmd, "pingpong")) {
		vj_u64("sent", d.tx_frames);
		vj_u64("replies", nrtt);
		vj_u64("lost", c.count - nrtt);
		if (nrtt) {
			qsort(rtt, nrtt, sizeof(*rtt), cmp_u64);
			vj_u64("rtt_min_us", rtt[0]);
			vj_u64("rtt_p50_us", rtt[nrtt / 2]);
			vj_u64("rtt_p99_us", rtt[(nrtt * 99) / 100 < nrtt ? (nrtt * 99) / 100 : nrtt - 1]);
			vj_u64("rtt_max_us", rtt[nrtt - 1]);
		}
		ok = ok && nrtt == c.count;
	} else if (!strcmp(c.cmd, "echo")) {
		vj_u64("reflected", reflected);
		ok = ok && (c.count == 0 || reflected >= c.count);
	}
	report_dev(&d, ok, el);
	vj_end();
	if (!proto_ok)
		exit_code = EXIT_USAGE;
	else if (!ok)
		exit_code = EXIT_VERIFY;
	for (unsigned i = 0; i < st.ns; i++)
		free(st.s[i].seen);
	free(rtt);
	vhu_dev_close(&d);
	return exit_code;
}
