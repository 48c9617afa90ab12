/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Unit tests for the control protocol: every command, every bad request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ibvhost/ctl.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"

static json_t *call(const char *req)
{
	char *r = ctl_handle_request(req, strlen(req));
	json_error_t e;

	assert_non_null(r);
	assert_null(strchr(r, '\n')); /* one reply = one line */
	json_t *j = json_loads(r, 0, &e);
	if (!j)
		fail_msg("reply is not JSON: %s", r);
	free(r);
	return j;
}

static json_t *call_ok(const char *req)
{
	json_t *j = call(req);

	if (!json_is_true(json_object_get(j, "ok")))
		fail_msg("%s -> error %s", req,
			 json_string_value(json_object_get(j, "error")));
	json_t *res = json_incref(json_object_get(j, "result"));
	json_decref(j);
	return res;
}

static void expect_error(const char *req, size_t len, const char *want)
{
	char *r = ctl_handle_request(req, len);
	json_error_t e;
	json_t *j = json_loads(r, 0, &e);

	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "ok")));
	const char *msg = json_string_value(json_object_get(j, "error"));
	assert_non_null(msg);
	if (!strstr(msg, want))
		fail_msg("request %.60s: error \"%s\" lacks \"%s\"", req, msg, want);
	json_decref(j);
	free(r);
}

#define ERR(req, want) expect_error(req, strlen(req), want)

static struct cfg *cfg;

static int setup(void **state)
{
	char err[256];
	(void)state;
	int rc = cfg_parse_string("[segment s]\nqkey = 0x42\n"
				  "[port a]\nsocket = /tmp/a.sock\nsegment = s\nmac = 52:54:00:00:00:0a\n"
				  "[port b]\nsocket = /tmp/b.sock\nsegment = s\nmode = client\n",
				  "t.conf", &cfg, err, sizeof(err));
	assert_int_equal(rc, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	struct port *ps[CFG_PORTS_MAX];
	unsigned n = port_list(ps, CFG_PORTS_MAX);
	for (unsigned i = 0; i < n; i++)
		port_remove(ps[i]);
	cfg_free(cfg);
	return 0;
}

static void test_show_ports_empty(void **state)
{
	(void)state;
	json_t *r = call_ok("{\"cmd\":\"show-ports\"}");
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 0);
	json_decref(r);
}

static void test_show_ports_states(void **state)
{
	(void)state;
	struct port *a = port_add(cfg, &cfg->ports[0]);
	struct port *b = port_add(cfg, &cfg->ports[1]);
	assert_non_null(a);
	assert_non_null(b);

	json_t *r = call_ok("{\"cmd\":\"show-ports\",\"args\":[]}");
	assert_int_equal(json_array_size(r), 2);
	json_t *pa = json_array_get(r, 0);
	assert_string_equal(json_string_value(json_object_get(pa, "name")), "a");
	assert_string_equal(json_string_value(json_object_get(pa, "state")), "waiting");
	assert_string_equal(json_string_value(json_object_get(pa, "mode")), "server");
	assert_string_equal(json_string_value(json_object_get(pa, "segment")), "s");
	assert_string_equal(json_string_value(json_object_get(pa, "qkey")), "0x42");
	assert_string_equal(json_string_value(json_object_get(pa, "mac")), "52:54:00:00:00:0a");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1), "mode")), "client");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(pa, "counters"), "tx_frames")), 0);
	json_decref(r);

	/* connected -> running -> stopped -> disconnected */
	port_note_connected(a, 5);
	r = call_ok("{\"cmd\":\"show-port\",\"args\":[\"a\"]}");
	assert_string_equal(json_string_value(json_object_get(r, "state")), "connected");
	assert_int_equal(json_integer_value(json_object_get(r, "vid")), 5);
	json_decref(r);

	struct port_mem_region reg[2] = {
		{ .guest_phys_addr = 0, .size = 1 << 20, .host_user_addr = 0x7f0000000000ULL },
		{ .guest_phys_addr = 1 << 30, .size = 2 << 20, .host_user_addr = 0x7f0001000000ULL },
	};
	struct port_vring vr[2] = { { .size = 256 }, { .size = 256 } };
	port_note_vring(a, 5, 0, true);
	port_note_running(a, 5, (1ULL << 32) | (1ULL << 15), 0x3, 1500, reg, 2, vr, 2);
	a->counters.tx_frames = 7;
	r = call_ok("{\"args\":[\"a\"],\"cmd\":\"show-port\"}");
	assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(r, "features")), "0x100008000");
	json_t *names = json_object_get(r, "feature_names");
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "MRG_RXBUF");
	assert_string_equal(json_string_value(json_array_get(names, 1)), "VERSION_1");
	assert_int_equal(json_integer_value(json_object_get(r, "mtu")), 1500);
	assert_int_equal(json_array_size(json_object_get(r, "memory_regions")), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "memory_size")), 3 << 20);
	json_t *r1 = json_array_get(json_object_get(r, "memory_regions"), 1);
	assert_string_equal(json_string_value(json_object_get(r1, "guest_phys_addr")), "0x40000000");
	assert_string_equal(json_string_value(json_object_get(r1, "host_user_addr")), "0x7f0001000000");
	json_t *qs = json_object_get(r, "queues");
	assert_int_equal(json_array_size(qs), 2);
	assert_true(json_is_true(json_object_get(json_array_get(qs, 0), "enabled")));
	assert_true(json_is_false(json_object_get(json_array_get(qs, 1), "enabled")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(qs, 0), "size")), 256);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "counters"), "tx_frames")), 7);
	assert_int_equal(json_integer_value(json_object_get(r, "device_starts")), 1);
	json_decref(r);

	port_note_stopped(a, 5);
	r = call_ok("{\"cmd\":\"show-port\",\"args\":[\"a\"]}");
	assert_string_equal(json_string_value(json_object_get(r, "state")), "connected");
	assert_int_equal(json_array_size(json_object_get(r, "memory_regions")), 0);
	json_decref(r);

	port_note_disconnected(a, 5);
	r = call_ok("{\"cmd\":\"show-port\",\"args\":[\"a\"]}");
	assert_string_equal(json_string_value(json_object_get(r, "state")), "waiting");
	assert_int_equal(json_integer_value(json_object_get(r, "vid")), -1);
	assert_int_equal(json_integer_value(json_object_get(r, "connects")), 1);
	json_decref(r);

	ERR("{\"cmd\":\"show-port\",\"args\":[\"zz\"]}", "no port named 'zz'");
}

static void test_show_version_and_list(void **state)
{
	(void)state;
	ctl_set_daemon_info(&(struct ctl_daemon_info){ "1.2.3", "DPDK x", "/etc/x.conf", NULL });
	json_t *r = call_ok("{\"cmd\":\"show-version\"}");
	assert_string_equal(json_string_value(json_object_get(r, "version")), "1.2.3");
	assert_string_equal(json_string_value(json_object_get(r, "dpdk")), "DPDK x");
	assert_string_equal(json_string_value(json_object_get(r, "config")), "/etc/x.conf");
	assert_true(json_integer_value(json_object_get(r, "pid")) > 0);
	json_decref(r);

	r = call_ok("{\"cmd\":\"list-commands\"}");
	assert_int_equal(json_array_size(r), ctl_n_commands);
	json_decref(r);
}

static int fake_reload_calls;

static int fake_reload_rejects(json_t **result, char *err, size_t errlen)
{
	(void)result;
	fake_reload_calls++;
	snprintf(err, errlen, "rejected, running configuration kept: x.conf:3: bad");
	return -1;
}

static int fake_reload_ok(json_t **result, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	fake_reload_calls++;
	*result = json_pack("{s:i}", "running", 2);
	return 0;
}

/* reload: the daemon's function is called once per request and its
 * verdict is the reply; a process without one says so. */
static void test_reload(void **state)
{
	(void)state;
	ctl_set_daemon_info(&(struct ctl_daemon_info){ "1", "d", "/x", NULL });
	ERR("{\"cmd\":\"reload\"}", "no reload in this process");
	ERR("{\"cmd\":\"reload\",\"args\":[\"x\"]}", "reload takes no arguments (got 1 argument)");

	fake_reload_calls = 0;
	ctl_set_daemon_info(&(struct ctl_daemon_info){ "1", "d", "/x",
							fake_reload_rejects });
	ERR("{\"cmd\":\"reload\"}",
	    "rejected, running configuration kept: x.conf:3: bad");
	assert_int_equal(fake_reload_calls, 1);

	ctl_set_daemon_info(&(struct ctl_daemon_info){ "1", "d", "/x",
							fake_reload_ok });
	json_t *r = call_ok("{\"cmd\":\"reload\"}");
	assert_int_equal(json_integer_value(json_object_get(r, "running")), 2);
	assert_int_equal(fake_reload_calls, 2);
	json_decref(r);
}

static json_t *port_counters_of(const char *name)
{
	char req[128];

	snprintf(req, sizeof(req), "{\"cmd\":\"show-port\",\"args\":[\"%s\"]}", name);
	json_t *r = call_ok(req);
	json_t *c = json_incref(json_object_get(r, "counters"));
	json_decref(r);
	return c;
}

static long long counter_of(const char *port, const char *counter)
{
	json_t *c = port_counters_of(port);
	long long v = json_integer_value(json_object_get(c, counter));

	json_decref(c);
	return v;
}

/* The metrics text: each sample line belongs to the family of the last
 * "# TYPE" line, each family is declared once, and want is a line of it. */
static char *metrics_text(void)
{
	json_t *r = call_ok("{\"cmd\":\"show-metrics\"}");
	char *text = strdup(json_string_value(json_object_get(r, "text")));

	assert_non_null(text);
	assert_non_null(strstr(json_string_value(json_object_get(r, "content_type")),
			       "version=0.0.4"));
	json_decref(r);

	char family[128] = "", seen[8192] = " ";
	char *save = NULL, *copy = strdup(text);
	for (char *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128], key[136];

		if (sscanf(line, "# TYPE %127s", name) == 1) {
			snprintf(key, sizeof(key), " %s ", name);
			if (strstr(seen, key))
				fail_msg("family %s declared twice", name);
			strncat(seen, name, sizeof(seen) - strlen(seen) - 2);
			strcat(seen, " ");
			snprintf(family, sizeof(family), "%s", name);
			continue;
		}
		if (line[0] == '#')
			continue;
		size_t fl = strlen(family);
		if (!fl || strncmp(line, family, fl) != 0 ||
		    (line[fl] != '{' && line[fl] != ' '))
			fail_msg("sample outside its family %s: %s", family, line);
		const char *sp = strrchr(line, ' ');
		char *end;
		assert_non_null(sp);
		strtod(sp + 1, &end);
		if (*end != '\0' || end == sp + 1)
			fail_msg("value is not a number: %s", line);
	}
	free(copy);
	return text;
}

static void assert_metric(const char *text, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("metrics lack the line %s", line);
}

/* show-metrics exports every port counter raw; clear-counters zeroes the
 * show-* view only, per port or for all, until the port is forgotten. */
static void test_metrics_and_clear(void **state)
{
	(void)state;
	struct port *ps[CFG_PORTS_MAX];
	unsigned n = port_list(ps, CFG_PORTS_MAX);
	char line[256];

	for (unsigned i = 0; i < n; i++) {
		ctl_port_forget(ps[i]);
		port_remove(ps[i]);
	}
	ctl_set_daemon_info(&(struct ctl_daemon_info){ "9.9", "DPDK t", "/x", NULL });
	struct port *a = port_add(cfg, &cfg->ports[0]);
	struct port *b = port_add(cfg, &cfg->ports[1]);
	assert_non_null(a);
	assert_non_null(b);
	a->counters.tx_frames = 5;
	a->counters.drop_spoofed = 2;
	b->counters.rx_bytes = 1000;

	char *text = metrics_text();
	assert_metric(text, "ibvhostd_build_info{version=\"9.9\",dpdk=\"DPDK t\"} 1");
	assert_metric(text, "ibvhostd_ports 2");
	assert_metric(text, "ibvhostd_port_tx_frames_total{port=\"a\",segment=\"s\"} 5");
	assert_metric(text, "ibvhostd_port_drops_total{port=\"a\",segment=\"s\",reason=\"spoofed\"} 2");
	assert_metric(text, "ibvhostd_port_rx_bytes_total{port=\"b\",segment=\"s\"} 1000");
	assert_metric(text, "ibvhostd_port_state{port=\"a\",segment=\"s\",state=\"waiting\"} 1");
	assert_metric(text, "ibvhostd_port_state{port=\"a\",segment=\"s\",state=\"running\"} 0");
	for (unsigned c = 0; c < PORT_COUNTER_COUNT; c++) {
		const char *cn = port_counter_names[c];

		if (strncmp(cn, "drop_", 5) == 0)
			snprintf(line, sizeof(line),
				 "\nibvhostd_port_drops_total{port=\"b\",segment=\"s\",reason=\"%s\"} ",
				 cn + 5);
		else
			snprintf(line, sizeof(line),
				 "\nibvhostd_port_%s_total{port=\"b\",segment=\"s\"} ", cn);
		if (!strstr(text, line))
			fail_msg("counter %s is not exported", cn);
	}
	free(text);

	json_t *r = call_ok("{\"cmd\":\"clear-counters\",\"args\":[\"a\"]}");
	assert_string_equal(json_string_value(json_object_get(r, "cleared")), "a");
	json_decref(r);
	assert_int_equal(counter_of("a", "tx_frames"), 0);
	assert_int_equal(counter_of("a", "drop_spoofed"), 0);
	assert_int_equal(counter_of("b", "rx_bytes"), 1000); /* only a */
	a->counters.tx_frames = 8;
	assert_int_equal(counter_of("a", "tx_frames"), 3);
	text = metrics_text();
	assert_metric(text, "ibvhostd_port_tx_frames_total{port=\"a\",segment=\"s\"} 8");
	free(text);

	r = call_ok("{\"cmd\":\"clear-counters\"}");
	json_decref(r);
	assert_int_equal(counter_of("b", "rx_bytes"), 0);
	assert_int_equal(counter_of("a", "tx_frames"), 0);
	ERR("{\"cmd\":\"clear-counters\",\"args\":[\"zz\"]}", "no port named 'zz'");

	/* A removed port's baseline goes with it. */
	ctl_port_forget(a);
	assert_int_equal(counter_of("a", "tx_frames"), 8);
}

static json_t *rates_of(const char *port)
{
	char req[128];

	snprintf(req, sizeof(req), "{\"cmd\":\"show-port\",\"args\":[\"%s\"]}", port);
	json_t *r = call_ok(req);
	json_t *rates = json_incref(json_object_get(r, "rates"));
	json_decref(r);
	assert_non_null(rates);
	return rates;
}

static double rate(json_t *rates, const char *key)
{
	json_t *v = json_object_get(rates, key);

	if (!json_is_number(v))
		fail_msg("rates lack %s", key);
	return json_number_value(v);
}

/* Rates are counter differences over the time between two samples, per
 * port, from the raw counters (clear-counters does not disturb them);
 * a port's first sample, and counters that went back, give 0. */
static void test_rates(void **state)
{
	(void)state;
	struct port *ps[CFG_PORTS_MAX];
	unsigned n = port_list(ps, CFG_PORTS_MAX);

	for (unsigned i = 0; i < n; i++) {
		ctl_port_forget(ps[i]);
		port_remove(ps[i]);
	}
	struct port *a = port_add(cfg, &cfg->ports[0]);
	struct port *b = port_add(cfg, &cfg->ports[1]);
	assert_non_null(a);
	assert_non_null(b);

	json_t *r = rates_of("a"); /* before any sample */
	assert_true(rate(r, "interval_s") == 0 && rate(r, "tx_frames_per_s") == 0);
	json_decref(r);

	a->counters.tx_frames = 100;
	ctl_rates_sample(100.0);
	r = rates_of("a");
	uint64_t first = (uint64_t)json_integer_value(json_object_get(r, "sample"));
	assert_true(rate(r, "interval_s") == 0 && rate(r, "tx_frames_per_s") == 0);
	json_decref(r);

	a->counters.tx_frames += 1000;
	a->counters.tx_bytes += 1500000;
	a->counters.rx_frames += 10;
	a->counters.rx_bytes += 640;
	b->counters.rx_frames += 3;
	ctl_rates_sample(102.0);
	r = rates_of("a");
	assert_int_equal(json_integer_value(json_object_get(r, "sample")), first + 1);
	assert_true(rate(r, "interval_s") == 2.0);
	assert_true(rate(r, "tx_frames_per_s") == 500.0);
	assert_true(rate(r, "tx_bytes_per_s") == 750000.0);
	assert_true(rate(r, "rx_frames_per_s") == 5.0);
	assert_true(rate(r, "rx_bytes_per_s") == 320.0);
	json_decref(r);
	r = rates_of("b");
	assert_true(rate(r, "rx_frames_per_s") == 1.5 && rate(r, "tx_frames_per_s") == 0);
	json_decref(r);
	json_t *all = call_ok("{\"cmd\":\"show-ports\"}");
	assert_true(rate(json_object_get(json_array_get(all, 0), "rates"),
			 "tx_frames_per_s") == 500.0);
	json_decref(all);

	char *text = metrics_text();
	assert_metric(text, "ibvhostd_port_frames_per_second{port=\"a\",segment=\"s\",direction=\"tx\"} 500.000");
	assert_metric(text, "ibvhostd_port_frames_per_second{port=\"a\",segment=\"s\",direction=\"rx\"} 5.000");
	assert_metric(text, "ibvhostd_port_bytes_per_second{port=\"a\",segment=\"s\",direction=\"tx\"} 750000.000");
	assert_metric(text, "ibvhostd_port_bytes_per_second{port=\"b\",segment=\"s\",direction=\"tx\"} 0.000");
	assert_metric(text, "ibvhostd_port_frames_per_second{port=\"b\",segment=\"s\",direction=\"rx\"} 1.500");
	free(text);

	/* Idle: the next interval's rate is 0, whatever came before. A
	 * clear-counters in between changes nothing. */
	json_decref(call_ok("{\"cmd\":\"clear-counters\"}"));
	ctl_rates_sample(103.0);
	r = rates_of("a");
	assert_true(rate(r, "interval_s") == 1.0);
	assert_true(rate(r, "tx_frames_per_s") == 0 && rate(r, "rx_bytes_per_s") == 0);
	json_decref(r);
	a->counters.tx_frames += 40;
	ctl_rates_sample(103.5);
	r = rates_of("a");
	assert_true(rate(r, "tx_frames_per_s") == 80.0);
	json_decref(r);

	/* Counters that went back (not a port's own: it only counts up). */
	a->counters.tx_frames = 5;
	ctl_rates_sample(104.5);
	r = rates_of("a");
	assert_true(rate(r, "interval_s") == 0 && rate(r, "tx_frames_per_s") == 0);
	json_decref(r);
	a->counters.tx_frames += 7;
	ctl_rates_sample(105.5);
	r = rates_of("a");
	assert_true(rate(r, "tx_frames_per_s") == 7.0);
	json_decref(r);

	/* A removed port's samples go with it; a port added later starts
	 * without any. */
	ctl_port_forget(b);
	port_remove(b);
	b = port_add(cfg, &cfg->ports[1]);
	assert_non_null(b);
	b->counters.rx_frames = 50;
	r = rates_of("b");
	assert_true(rate(r, "interval_s") == 0 && rate(r, "rx_frames_per_s") == 0);
	json_decref(r);
	ctl_rates_sample(106.5);
	r = rates_of("b");
	assert_true(rate(r, "interval_s") == 0 && rate(r, "rx_frames_per_s") == 0);
	json_decref(r);
	b->counters.rx_frames += 2;
	ctl_rates_sample(107.5);
	r = rates_of("b");
	assert_true(rate(r, "rx_frames_per_s") == 2.0);
	json_decref(r);
	ctl_rates_reset();
}

static const char *version_log_level(void)
{
	static char level[16];
	json_t *r = call_ok("{\"cmd\":\"show-version\"}");

	snprintf(level, sizeof(level), "%s",
		 json_string_value(json_object_get(r, "log_level")));
	json_decref(r);
	return level;
}

/* set-log-level changes the level the log module filters with, reports
 * it back in show-version, and refuses a level it does not know without
 * changing anything. Every name of the usage parses, and every level's
 * name is in the usage, so the completion offers exactly these. */
static void test_set_log_level(void **state)
{
	(void)state;
	log_set_level(LOGL_INFO);
	assert_string_equal(version_log_level(), "info");
	assert_false(log_enabled(LOGL_DEBUG));

	json_t *r = call_ok("{\"cmd\":\"set-log-level\",\"args\":[\"debug\"]}");
	assert_string_equal(json_string_value(json_object_get(r, "log_level")), "debug");
	assert_string_equal(json_string_value(json_object_get(r, "previous")), "info");
	json_decref(r);
	assert_true(log_enabled(LOGL_DEBUG));
	assert_string_equal(version_log_level(), "debug");

	ERR("{\"cmd\":\"set-log-level\",\"args\":[\"loud\"]}",
	    "unknown log level 'loud' (one of err|warning|notice|info|debug); level stays debug");
	ERR("{\"cmd\":\"set-log-level\",\"args\":[\"DEBUG \"]}", "unknown log level");
	ERR("{\"cmd\":\"set-log-level\",\"args\":[\"\"]}", "unknown log level");
	ERR("{\"cmd\":\"set-log-level\"}", "set-log-level takes arguments");
	ERR("{\"cmd\":\"set-log-level\",\"args\":[\"err\",\"info\"]}", "got 2 arguments");
	assert_string_equal(version_log_level(), "debug");
	assert_int_equal(log_get_level(), LOGL_DEBUG);

	r = call_ok("{\"cmd\":\"set-log-level\",\"args\":[\"err\"]}");
	json_decref(r);
	assert_false(log_enabled(LOGL_WARN));
	assert_true(log_enabled(LOGL_ERR));
	assert_string_equal(version_log_level(), "err");

	char choices[] = LOG_LEVEL_CHOICES;
	char *save = NULL;
	unsigned n = 0;
	for (char *w = strtok_r(choices, "|", &save); w; w = strtok_r(NULL, "|", &save)) {
		enum log_level l;

		assert_int_equal(log_level_parse(w, &l), 0);
		assert_string_equal(log_level_name(l), w);
		n++;
	}
	assert_int_equal(n, LOGL_DEBUG - LOGL_ERR + 1);
	log_set_level(LOGL_INFO);
}

static void test_feature_policy(void **state)
{
	(void)state;
	uint64_t off = port_offered_features(&cfg->ports[0]);
	uint64_t dec = port_declined_features();

	assert_int_equal(off & dec, 0);
	/* the offer the data path is built for */
	static const unsigned want[] = { 0, 1, 3, 15, 29, 32 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_true(off & (1ULL << want[i]));
	/* packed rings, TSO/UFO, control queue, migration logging, IOMMU */
	static const unsigned no[] = { 34, 7, 8, 10, 11, 12, 14, 17, 22, 26, 33 };
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(off & (1ULL << no[i]));
	assert_true(port_declined_protocol_features() & (1ULL << 12)); /* INFLIGHT_SHMFD */
	assert_string_equal(port_feature_name(34), "RING_PACKED");
	assert_null(port_feature_name(50));
}

static void test_bad_requests(void **state)
{
	(void)state;
	ERR("", "malformed JSON");
	ERR("{", "malformed JSON");
	ERR("show-ports", "malformed JSON");
	ERR("[\"show-ports\"]", "request must be a JSON object");
	ERR("\"show-ports\"", "malformed JSON"); /* jansson wants an array/object */
	ERR("{}", "missing \"cmd\" string");
	ERR("{\"cmd\":5}", "missing \"cmd\" string");
	ERR("{\"cmd\":null}", "missing \"cmd\" string");
	ERR("{\"cmd\":\"reboot\"}", "unknown command 'reboot'");
	ERR("{\"cmd\":\"show-ports\",\"x\":1}", "unknown member 'x'");
	ERR("{\"cmd\":\"show-ports\",\"cmd\":\"show-ports\"}", "malformed JSON");
	ERR("{\"cmd\":\"show-ports\",\"args\":\"a\"}", "\"args\" must be an array");
	ERR("{\"cmd\":\"show-port\",\"args\":[1]}", "argument 1 is not a string");
	ERR("{\"cmd\":\"show-ports\",\"args\":[\"x\"]}", "show-ports takes no arguments (got 1 argument)");
	ERR("{\"cmd\":\"show-port\"}", "show-port takes arguments NAME (got 0 arguments)");
	ERR("{\"cmd\":\"show-port\",\"args\":[\"a\",\"b\"]}", "(got 2 arguments)");
	ERR("{\"cmd\":\"show-port\",\"args\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
	    "too many arguments");
	ERR("{\"cmd\":\"show-port\",\"args\":[\"a\\u0000b\"]}", "not allowed"); /* jansson refuses NUL escapes */
	expect_error("{\"cmd\":\"x\"}\0", 12, "NUL byte");

	char big[CTL_REQUEST_MAX + 64];
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"cmd\":\"show-ports\"}", 20);
	expect_error(big, sizeof(big), "request too long");

	char longarg[600];
	int n = snprintf(longarg, sizeof(longarg), "{\"cmd\":\"show-port\",\"args\":[\"");
	memset(longarg + n, 'a', 300);
	strcpy(longarg + n + 300, "\"]}");
	ERR(longarg, "argument 1 too long");

	ERR("{\"cmd\":\"show-ports\"} trailing", "malformed JSON");
	ERR("\xff\xfe", "malformed JSON");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_show_ports_empty),
		cmocka_unit_test(test_show_ports_states),
		cmocka_unit_test(test_show_version_and_list),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_metrics_and_clear),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_set_log_level),
		cmocka_unit_test(test_feature_policy),
		cmocka_unit_test(test_bad_requests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
