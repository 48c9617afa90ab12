/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Unit tests for config/: every accepted form and every error, with the
 * line number it must report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ibvhost/config.h"

static struct cfg *parse_ok(const char *text)
{
	struct cfg *c = NULL;
	char err[512] = "";

	if (cfg_parse_string(text, "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s\n--- input ---\n%s", err, text);
	assert_non_null(c);
	return c;
}

#define SEG "[segment s]\nqkey = 0x10\n"
#define PORT "[port p]\nsocket = /tmp/p.sock\nsegment = s\n"

static void test_defaults(void **state)
{
	(void)state;
	struct cfg *c = parse_ok("");

	assert_int_equal(c->log_level, LOGL_INFO);
	assert_string_equal(c->ctl_socket, CFG_DEFAULT_CTL_SOCKET);
	assert_int_equal(c->ctl_mode, 0660);
	assert_int_equal(c->ib_port, 1);
	assert_int_equal(c->gid_index, 0);
	assert_int_equal(c->main_core, 0);
	assert_int_equal(c->n_poll_cores, 0);
	assert_int_equal(c->poll_mode, CFG_POLL_BUSY);
	assert_int_equal(c->eal_memory_mb, CFG_DEFAULT_EAL_MEMORY_MB);
	assert_int_equal(c->fdb_aging_s, 300);
	assert_int_equal(c->n_ports, 0);
	assert_int_equal(c->n_segments, 0);
	cfg_free(c);
}

static void test_global_all_keys(void **state)
{
	(void)state;
	struct cfg *c = parse_ok(
		"# comment\n"
		"; comment\n"
		"\n"
		"log_level = debug\n"
		"control_socket = /run/x/ctl.sock\n"
		"control_owner = root\n"
		"control_group = 0\n"
		"control_mode = 0600\n"
		"ib_device = mlx5_0\n"
		"ib_port = 2\n"
		"gid_index = 3\n"
		"main_core = 4\n"
		"poll_cores = 5, 6,7\n"
		"poll_mode = adaptive\n"
		"eal_memory_mb = 256\n"
		"eal_args = --log-level=lib.vhost.*:debug --vdev=x\n"
		"fdb_aging_s = 0\n");

	assert_int_equal(c->log_level, LOGL_DEBUG);
	assert_string_equal(c->ctl_socket, "/run/x/ctl.sock");
	assert_string_equal(c->ctl_owner, "root");
	assert_string_equal(c->ctl_group, "0");
	assert_int_equal(c->ctl_mode, 0600);
	assert_string_equal(c->ib_device, "mlx5_0");
	assert_int_equal(c->ib_port, 2);
	assert_int_equal(c->gid_index, 3);
	assert_int_equal(c->main_core, 4);
	assert_int_equal(c->n_poll_cores, 3);
	assert_int_equal(c->poll_cores[0], 5);
	assert_int_equal(c->poll_cores[2], 7);
	assert_int_equal(c->poll_mode, CFG_POLL_ADAPTIVE);
	assert_int_equal(c->eal_memory_mb, 256);
	assert_string_equal(c->eal_args, "--log-level=lib.vhost.*:debug --vdev=x");
	assert_int_equal(c->fdb_aging_s, 0);
	cfg_free(c);
}

static void test_global_section_and_levels(void **state)
{
	(void)state;
	static const char *const levels[] = { "err", "warning", "notice", "info", "debug" };
	char text[128];

	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "[global]\nlog_level = %s\n", levels[i]);
		struct cfg *c = parse_ok(text);
		assert_int_equal(c->log_level, LOGL_ERR + i);
		cfg_free(c);
	}
}

static void test_segments_and_ports(void **state)
{
	(void)state;
	struct cfg *c = parse_ok(
		"[segment blue]\n"
		"qkey = 0x11110001\n"
		"mcast_gid = ff12:401b::1\n"
		"[segment red]\n"
		"qkey = 7 ; inline comment\n"
		"[port vm1]\n"
		"socket = /tmp/vm1.sock\n"
		"mode = client\n"
		"segment = blue\n"
		"mac = 52:54:00:AB:cd:01\n"
		"mtu = 1500\n"
		"fdb = 52:54:00:00:00:02 3 0x12\n"
		"fdb = 52:54:00:00:00:03 0 77 fe80::1\n"
		"[port vm-2.x_y]\n"
		"socket = /tmp/vm2.sock\n"
		"segment = red\n");

	assert_int_equal(c->n_segments, 2);
	assert_int_equal(c->segments[0].qkey, 0x11110001);
	assert_true(c->segments[0].has_mcast_gid);
	assert_int_equal(c->segments[0].mcast_gid[0], 0xff);
	assert_int_equal(c->segments[0].mcast_gid[1], 0x12);
	assert_int_equal(c->segments[0].mcast_gid[15], 1);
	assert_false(c->segments[1].has_mcast_gid);
	assert_int_equal(c->segments[1].qkey, 7);
	assert_int_equal(c->segments[0].mtu, CFG_SEGMENT_MTU_DEFAULT);
	assert_int_equal(c->n_ports, 2);

	const struct cfg_port *p = cfg_find_port(c, "vm1");
	assert_non_null(p);
	assert_string_equal(p->socket_path, "/tmp/vm1.sock");
	assert_int_equal(p->mode, CFG_PORT_CLIENT);
	assert_string_equal(p->segment, "blue");
	assert_true(p->has_mac);
	assert_int_equal(p->mac[3], 0xab);
	assert_int_equal(p->mac[4], 0xcd);
	assert_int_equal(p->mtu, 1500);
	assert_int_equal(p->n_fdb, 2);
	assert_int_equal(p->fdb[0].lid, 3);
	assert_int_equal(p->fdb[0].qpn, 0x12);
	assert_false(p->fdb[0].has_gid);
	assert_int_equal(p->fdb[1].lid, 0);
	assert_true(p->fdb[1].has_gid);
	assert_int_equal(p->fdb[1].gid[0], 0xfe);
	assert_int_equal(p->line, 6);

	p = cfg_find_port(c, "vm-2.x_y");
	assert_non_null(p);
	assert_int_equal(p->mode, CFG_PORT_SERVER); /* default */
	assert_false(p->has_mac);
	assert_int_equal(p->mtu, 0);
	assert_null(cfg_find_port(c, "nope"));
	assert_null(cfg_find_segment(c, "nope"));
	cfg_free(c);
}

static void test_port_unchanged(void **state)
{
	(void)state;
	struct cfg *a = parse_ok(SEG PORT);
	struct cfg *b = parse_ok("log_level = debug\n" SEG PORT);
	struct cfg *m = parse_ok(SEG PORT "mtu = 1400\n");
	struct cfg *q = parse_ok("[segment s]\nqkey = 0x11\n" PORT);
	struct cfg *f = parse_ok(SEG PORT "fdb = 52:54:00:00:00:02 3 0x12\n");
	struct cfg *j = parse_ok("[segment s]\nqkey = 16\nmtu = 4000\n" PORT);
	struct cfg *x = parse_ok(SEG PORT "memory_max_mb = 2048\n");

	assert_true(cfg_port_unchanged(a, &a->ports[0], b, &b->ports[0]));
	assert_false(cfg_port_unchanged(a, &a->ports[0], m, &m->ports[0]));
	assert_false(cfg_port_unchanged(a, &a->ports[0], q, &q->ports[0]));
	assert_false(cfg_port_unchanged(a, &a->ports[0], f, &f->ports[0]));
	assert_int_equal(a->ports[0].memory_max_mb, 0); /* host memory */
	assert_int_equal(x->ports[0].memory_max_mb, 2048);
	assert_false(cfg_port_unchanged(a, &a->ports[0], x, &x->ports[0]));
	assert_true(cfg_port_unchanged(f, &f->ports[0], f, &f->ports[0]));
	/* The segment's MTU is part of every port's service. */
	assert_int_equal(j->segments[0].mtu, 4000);
	assert_false(cfg_port_unchanged(a, &a->ports[0], j, &j->ports[0]));
	cfg_free(j);
	cfg_free(x);
	cfg_free(a);
	cfg_free(b);
	cfg_free(m);
	cfg_free(q);
	cfg_free(f);
}

static void test_load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/config_test_XXXXXX";
	int fd = mkstemp(path);
	struct cfg *c = NULL;
	char err[512];

	assert_true(fd >= 0);
	assert_int_equal(write(fd, SEG PORT "bogus = 1\n", strlen(SEG PORT "bogus = 1\n")),
			 (ssize_t)strlen(SEG PORT "bogus = 1\n"));
	close(fd);
	assert_int_equal(cfg_load(path, &c, err, sizeof(err)), -1);
	char want[128];
	snprintf(want, sizeof(want), "%s:6: unknown key 'bogus'", path);
	assert_non_null(strstr(err, want));
	unlink(path);

	assert_int_equal(cfg_load("/nonexistent/x.conf", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/x.conf: cannot open: No such file"));
}

/* Every error: input, and the start of the message it must produce. */
struct bad_case {
	const char *text;
	const char *want;
};

static const struct bad_case bad_cases[] = {
	/* syntax */
	{ "log_level info\n", "t.conf:1: syntax error" },
	{ "\n\n[segment s\n", "t.conf:3: section header without ']'" },
	{ "[bogus]\n", "t.conf:1: unknown section [bogus]" },
	{ "[port]\n", "t.conf:1: [port] needs one name" },
	{ "[port a b]\n", "t.conf:1: [port] needs one name" },
	{ "[segment a/b]\n", "t.conf:1: [segment] needs one name" },
	{ "[port aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", "t.conf:1: [port] needs one name" },
	{ "log_level = info\n  main_core = 1\n", "t.conf:2: indented line" },
	{ "# x\neal_args = "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "t.conf:2: line longer than" },
	/* global */
	{ "bogus = 1\n", "t.conf:1: unknown key 'bogus' in the global section" },
	{ "log_level = loud\n", "t.conf:1: log_level = loud: expected one of err" },
	{ "log_level = info\nlog_level = info\n", "t.conf:2: log_level set twice" },
	{ "control_socket = relative.sock\n", "t.conf:1: control_socket = relative.sock: expected an absolute path" },
	{ "control_socket = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "t.conf:1: control_socket = " },
	{ "control_mode = 660\n", "t.conf:1: control_mode = 660: expected an octal mode" },
	{ "control_mode = 0666\n", "t.conf:1: control_mode = 0666: must not grant access to others" },
	{ "control_mode = 0460\n", "t.conf:1: control_mode = 0460: the owner needs read and write" },
	{ "control_mode = 01660\n", "t.conf:1: control_mode = 01660: expected an octal mode" },
	{ "control_owner = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "t.conf:1: control_owner = " },
	{ "ib_port = 0\n", "t.conf:1: ib_port = 0: IB port numbers start at 1" },
	{ "ib_port = 256\n", "t.conf:1: ib_port = 256: number out of range" },
	{ "gid_index = -1\n", "t.conf:1: gid_index = -1: expected a non-negative integer" },
	{ "main_core = x\n", "t.conf:1: main_core = x: expected a non-negative integer" },
	{ "main_core = 1024\n", "t.conf:1: main_core = 1024: number out of range" },
	{ "poll_cores = 1,x\n", "t.conf:1: poll_cores = 1,x: expected a comma-separated list" },
	{ "poll_cores = 1,1\n", "t.conf:1: poll_cores = 1,1: core listed twice" },
	{ "poll_cores = ,\n", "t.conf:1: poll_cores = ,: expected at least one core" },
	{ "poll_cores = 0\n", "t.conf:1: poll core 0 is also the main core" },
	{ "poll_mode = lazy\n", "t.conf:1: poll_mode = lazy: expected busy or adaptive" },
	{ "eal_memory_mb = 8\n", "t.conf:1: eal_memory_mb = 8: at least 16 MB" },
	{ "fdb_aging_s = 1e3\n", "t.conf:1: fdb_aging_s = 1e3: expected a non-negative integer" },
	{ "fdb_aging_s = 99999999999999999999999\n", "t.conf:1: fdb_aging_s = 99999999999999999999999: number out of range" },
	/* segments */
	{ "[segment s]\n", "t.conf:1: segment s has no qkey" },
	{ "[segment s]\nqkey = 0x80000000\n", "t.conf:2: qkey = 0x80000000: Q_Key has bit 31 set" },
	{ "[segment s]\nqkey = 0x100000000\n", "t.conf:2: qkey = 0x100000000: number out of range" },
	{ "[segment s]\nqkey = 1\nqkey = 2\n", "t.conf:3: qkey set twice" },
	{ "[segment s]\nqkey = 1\nmcast_gid = 1.2.3.4\n", "t.conf:3: mcast_gid = 1.2.3.4: expected a GID" },
	{ "[segment s]\nqkey = 1\nmcast_gid = fe80::1\n", "t.conf:3: mcast_gid = fe80::1: a multicast GID starts with ff" },
	{ "[segment s]\nqkey = 1\nsocket = /x\n", "t.conf:3: unknown key 'socket' in a [segment]" },
	{ SEG "[segment s]\n", "t.conf:3: segment s defined twice (first at line 1)" },
	{ SEG "[segment t]\nqkey = 16\n", "t.conf:3: segment t uses the same qkey as segment s (line 1)" },
	/* ports */
	{ SEG "[port p]\nsegment = s\n", "t.conf:3: port p has no socket" },
	{ SEG "[port p]\nsocket = /tmp/p.sock\n", "t.conf:3: port p has no segment" },
	{ SEG "[port p]\nsocket = /tmp/p.sock\n\nsegment = t\n", "t.conf:6: port p: segment t is not defined" },
	{ SEG PORT "socket = /tmp/q.sock\n", "t.conf:6: socket set twice" },
	{ SEG PORT "mode = both\n", "t.conf:6: mode = both: expected server or client" },
	{ SEG PORT "segment = s\n", "t.conf:6: segment set twice" },
	{ SEG PORT "mac = 52:54:00:00:00\n", "t.conf:6: mac = 52:54:00:00:00: expected a MAC" },
	{ SEG PORT "mac = 52:54:00:00:00:0g\n", "t.conf:6: mac = 52:54:00:00:00:0g: expected a MAC" },
	{ SEG PORT "mac = 01:00:5e:00:00:01\n", "t.conf:6: mac = 01:00:5e:00:00:01: a port MAC must be unicast" },
	{ SEG PORT "mac = 00:00:00:00:00:00\n", "t.conf:6: mac = 00:00:00:00:00:00: the all-zero MAC" },
	{ SEG PORT "memory_max_mb = lots\n", "t.conf:6: memory_max_mb = lots: expected a non-negative integer" },
	{ SEG PORT "mtu = 67\n", "t.conf:6: mtu = 67: expected an MTU between 68 and 9000" },
	{ SEG PORT "mtu = 9001\n", "t.conf:6: mtu = 9001: expected an MTU" },
	{ SEG PORT "mtu = 1501\n", "t.conf:6: port p: mtu 1501 is above segment s's mtu 1500 (a port may only lower it)" },
	{ "[segment s]\nqkey = 16\nmtu = 9001\n", "t.conf:3: mtu = 9001: expected an MTU between 68 and 9000" },
	{ "[segment s]\nqkey = 16\nmtu = 1400\n" PORT "mtu = 1450\n", "t.conf:7: port p: mtu 1450 is above segment s's mtu 1400" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 3\n", "t.conf:6: fdb = 52:54:00:00:00:02 3: expected MAC LID QPN [GID]" },
	{ SEG PORT "fdb = ff:ff:ff:ff:ff:ff 3 4\n", "t.conf:6: fdb = ff:ff:ff:ff:ff:ff 3 4: expected a unicast MAC" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 65536 4\n", "t.conf:6: fdb = 52:54:00:00:00:02 65536 4: expected a 16-bit LID" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 3 0x1000000\n", "t.conf:6: fdb = 52:54:00:00:00:02 3 0x1000000: expected a 24-bit QPN" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 3 4 zz\n", "t.conf:6: fdb = 52:54:00:00:00:02 3 4 zz: expected a GID" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 0 4\n", "t.conf:6: fdb = 52:54:00:00:00:02 0 4: an entry needs a LID or a GID" },
	{ SEG PORT "fdb = 52:54:00:00:00:02 1 4\nfdb = 52:54:00:00:00:02 2 5\n",
	  "t.conf:7: fdb = 52:54:00:00:00:02 2 5: MAC already has a static entry" },
	{ SEG PORT "qkey = 1\n", "t.conf:6: unknown key 'qkey' in a [port]" },
	{ SEG PORT PORT, "t.conf:6: port p defined twice (first at line 3)" },
	{ SEG PORT "[port q]\nsocket = /tmp/p.sock\nsegment = s\n", "t.conf:6: port q: socket /tmp/p.sock already used by port p (line 3)" },
	{ "control_socket = /tmp/p.sock\n" SEG PORT, "t.conf:4: port p: socket is the control socket" },
	{ SEG "[port p]\nsocket = rel.sock\n", "t.conf:4: socket = rel.sock: expected an absolute path" },
	/* the first error wins */
	{ "bogus = 1\nlog_level = x\n", "t.conf:1: unknown key 'bogus'" },
};

static void test_bad_cases(void **state)
{
	(void)state;
	unsigned failures = 0;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct cfg *c = NULL;
		char err[512] = "";
		int rc = cfg_parse_string(bad_cases[i].text, "t.conf", &c, err, sizeof(err));

		if (rc == 0) {
			print_error("case %zu accepted, want \"%s\"\n", i, bad_cases[i].want);
			cfg_free(c);
			failures++;
		} else if (strncmp(err, bad_cases[i].want, strlen(bad_cases[i].want)) != 0) {
			print_error("case %zu: got \"%s\"\n          want \"%s...\"\n", i, err,
				    bad_cases[i].want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_mac_gid_helpers(void **state)
{
	(void)state;
	uint8_t mac[6], gid[16];
	char out[18];

	assert_int_equal(cfg_parse_mac("52:54:00:12:34:56", mac), 0);
	cfg_format_mac(mac, out);
	assert_string_equal(out, "52:54:00:12:34:56");
	assert_int_equal(cfg_parse_mac("52:54:00:12:34:56:", mac), -1);
	assert_int_equal(cfg_parse_mac("5:54:00:12:34:567", mac), -1);
	assert_int_equal(cfg_parse_gid("fe80::1", gid), 0);
	assert_int_equal(cfg_parse_gid("nope", gid), -1);
}

/* The example installed for operators parses as shipped and does not
 * busy-poll the main thread's core (the daemon polls on main_core when
 * poll_cores is absent, which starves the control socket and timers). */
static void test_shipped_example(void **state)
{
	(void)state;
	struct cfg *c = NULL;
	char err[512] = "";

	if (cfg_load(EXAMPLE_CONF, &c, err, sizeof(err)) != 0)
		fail_msg("the shipped example is rejected: %s", err);
	assert_true(c->n_ports > 0);
	assert_true(c->n_segments > 0);
	if (c->poll_mode == CFG_POLL_BUSY) {
		if (c->n_poll_cores == 0)
			fail_msg("%s: poll_mode = busy without poll_cores busy-polls main core %u",
				 EXAMPLE_CONF, c->main_core);
		for (unsigned i = 0; i < c->n_poll_cores; i++)
			assert_int_not_equal(c->poll_cores[i], c->main_core);
	}
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_global_all_keys),
		cmocka_unit_test(test_global_section_and_levels),
		cmocka_unit_test(test_segments_and_ports),
		cmocka_unit_test(test_port_unchanged),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_mac_gid_helpers),
		cmocka_unit_test(test_shipped_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
