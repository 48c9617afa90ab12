/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_metrics: counters as operators consume them; see src/ctl_int.h.
 * clear-counters baselines for the show-* commands, and the Prometheus
 * text exposition of show-metrics. Main thread only.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_int.h"

/* ---- clear-counters baselines ---------------------------------------------- */

struct baseline {
	const struct port *port; /* NULL: free slot */
	struct port_counters at_clear;
};

static struct baseline baselines[CFG_PORTS_MAX];

static struct baseline *baseline_of(const struct port *p, bool create)
{
	struct baseline *free_slot = NULL;

	for (unsigned i = 0; i < CFG_PORTS_MAX; i++) {
		if (baselines[i].port == p)
			return &baselines[i];
		if (!baselines[i].port && !free_slot)
			free_slot = &baselines[i];
	}
	if (create && free_slot)
		free_slot->port = p;
	return create ? free_slot : NULL;
}

void ctl_port_forget(const struct port *p)
{
	struct baseline *b = baseline_of(p, false);

	if (b)
		memset(b, 0, sizeof(*b));
	ctl_rates_forget(p);
}

void ctl_port_get_info(struct port *p, struct port_info *out)
{
	const struct baseline *b = baseline_of(p, false);

	port_get_info(p, out);
	if (!b)
		return;
	/* Each counter only grows while the port exists; the guard keeps a
	 * counter read before the baseline's from wrapping all the same. */
#define PORT_COUNTER_SINCE(name)                                               \
	out->counters.name = out->counters.name >= b->at_clear.name            \
				     ? out->counters.name - b->at_clear.name   \
				     : 0;
	PORT_COUNTERS(PORT_COUNTER_SINCE)
#undef PORT_COUNTER_SINCE
}

static void clear_one(struct port *p)
{
	struct baseline *b = baseline_of(p, true);
	struct port_info pi;

	if (!b) /* cannot happen: one slot per port */
		return;
	port_get_info(p, &pi);
	b->at_clear = pi.counters;
}

void ctl_clear_counters(struct port *p)
{
	struct port *ports[CFG_PORTS_MAX];
	unsigned n;

	if (p) {
		clear_one(p);
		return;
	}
	n = port_list(ports, CFG_PORTS_MAX);
	for (unsigned i = 0; i < n; i++)
		clear_one(ports[i]);
}

/* ---- text buffer --------------------------------------------------------------- */

struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3)))
text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *s = realloc(t->s, cap);
		if (!s) {
			t->oom = true;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
}

/* A label value: backslash, double quote and newline escaped, as the
 * exposition format wants. Names come from the config, but a metric line
 * must never break whatever they hold. */
static void text_label(struct text *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			text_printf(t, "\\%c", *v);
		else if (*v == '\n')
			text_printf(t, "\\n");
		else
			text_printf(t, "%c", *v);
	}
}

static void family(struct text *t, const char *name, const char *type,
		   const char *help)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{port="..",segment=".."[,extra]} value */
static void port_sample(struct text *t, const char *name,
			const struct port_info *pi, const char *extra_label,
			const char *extra_value, uint64_t v)
{
	text_printf(t, "%s{port=\"", name);
	text_label(t, pi->cfg.name);
	text_printf(t, "\",segment=\"");
	text_label(t, pi->seg.name);
	if (extra_label) {
		text_printf(t, "\",%s=\"", extra_label);
		text_label(t, extra_value);
	}
	text_printf(t, "\"} %" PRIu64 "\n", v);
}

/* The same with a value that is not an integer. */
static void port_sample_real(struct text *t, const char *name,
			     const struct port_info *pi, const char *extra_label,
			     const char *extra_value, double v)
{
	text_printf(t, "%s{port=\"", name);
	text_label(t, pi->cfg.name);
	text_printf(t, "\",segment=\"");
	text_label(t, pi->seg.name);
	text_printf(t, "\",%s=\"", extra_label);
	text_label(t, extra_value);
	text_printf(t, "\"} %.3f\n", v);
}

/* ---- port rates ----------------------------------------------------------------- */

/* One rate family: frames (bytes = false) or bytes per second, tx and
 * rx samples per port. */
static void rate_family(struct text *t, const char *name, const char *help,
			bool bytes, struct port **ports,
			const struct port_info *pis, unsigned n)
{
	family(t, name, "gauge", help);
	for (unsigned i = 0; i < n; i++) {
		struct ctl_port_rates r;

		ctl_port_rates(ports[i], &r);
		port_sample_real(t, name, &pis[i], "direction", "tx",
				 bytes ? r.tx_bytes_per_s : r.tx_frames_per_s);
		port_sample_real(t, name, &pis[i], "direction", "rx",
				 bytes ? r.rx_bytes_per_s : r.rx_frames_per_s);
	}
}

static void port_rates(struct text *t, struct port **ports,
		       const struct port_info *pis, unsigned n)
{
	rate_family(t, "ibvhostd_port_frames_per_second",
		    "Frames per second over the last sampling interval (1 s), by direction (tx: from the guest, rx: to the guest).",
		    false, ports, pis, n);
	rate_family(t, "ibvhostd_port_bytes_per_second",
		    "Frame bytes per second over the last sampling interval (1 s), by direction.",
		    true, ports, pis, n);
}

/* ---- port counters ------------------------------------------------------------- */

/* Help of each data-path counter; a counter missing here (added to
 * PORT_COUNTERS later) is still exported, with a generic help. drop_*
 * counters become one family with a reason label. */
static const struct {
	const char *counter, *help;
} counter_help[] = {
	{ "tx_frames", "Frames the guest sent to the fabric." },
	{ "tx_bytes", "Bytes of the frames the guest sent to the fabric." },
	{ "rx_frames", "Frames delivered to the guest." },
	{ "rx_bytes", "Bytes of the frames delivered to the guest." },
	{ "flooded", "Frames sent to the segment's multicast group (unknown, broadcast or multicast destination)." },
	{ "rx_starved", "Times the port ran out of posted receives because the guest gave no RX buffers (frames arriving then were lost)." },
	{ "bounce_copies", "Frames with more segments than the HCA gathers, copied once." },
	{ "csum_computed", "Checksums computed by the daemon." },
	{ "rx_returned_empty", "RX buffers given back unfilled when the device stopped." },
	{ "announces", "Announcements of the port's MAC at its QP, sent when it started." },
	{ "rx_announces", "Peers' announcements learned (a port there started on a new QP)." },
	{ "tx_deferred", "Polling rounds in which the port's TX waited for its share of descriptors." },
};

static const char *help_of(const char *counter)
{
	for (size_t i = 0; i < sizeof(counter_help) / sizeof(counter_help[0]); i++)
		if (strcmp(counter_help[i].counter, counter) == 0)
			return counter_help[i].help;
	return NULL;
}

static uint64_t counter_value(const struct port_counters *c, unsigned idx)
{
	switch (idx) {
#define PORT_COUNTER_CASE(name)                                                \
	case PORT_COUNTER_##name:                                              \
		return c->name;
		PORT_COUNTERS(PORT_COUNTER_CASE)
#undef PORT_COUNTER_CASE
	}
	return 0;
}

static void port_counters(struct text *t, const struct port_info *pis,
			  unsigned n)
{
	char name[96];
	bool drops_done = false;

	for (unsigned c = 0; c < PORT_COUNTER_COUNT; c++) {
		const char *cn = port_counter_names[c];

		if (strncmp(cn, "drop_", 5) == 0) {
			if (drops_done)
				continue;
			drops_done = true;
			family(t, "ibvhostd_port_drops_total", "counter",
			       "Frames the port dropped, by reason (drop_REASON in show-port).");
			for (unsigned i = 0; i < n; i++)
				for (unsigned d = 0; d < PORT_COUNTER_COUNT; d++)
					if (strncmp(port_counter_names[d], "drop_", 5) == 0)
						port_sample(t, "ibvhostd_port_drops_total",
							    &pis[i], "reason",
							    port_counter_names[d] + 5,
							    counter_value(&pis[i].counters, d));
			continue;
		}
		const char *help = help_of(cn);
		char generic[96];

		if (!help) {
			snprintf(generic, sizeof(generic), "Port counter %s.", cn);
			help = generic;
		}
		snprintf(name, sizeof(name), "ibvhostd_port_%s_total", cn);
		family(t, name, "counter", help);
		for (unsigned i = 0; i < n; i++)
			port_sample(t, name, &pis[i], NULL, NULL,
				    counter_value(&pis[i].counters, c));
	}
}

static void port_gauges(struct text *t, const struct port_info *pis,
			unsigned n)
{
	static const enum port_state states[] = { PORT_WAITING, PORT_CONNECTED,
						  PORT_RUNNING };

	family(t, "ibvhostd_port_state", "gauge",
	       "1 for the port's state (waiting, connected, running), 0 for the others.");
	for (unsigned i = 0; i < n; i++)
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
			port_sample(t, "ibvhostd_port_state", &pis[i], "state",
				    port_state_name(states[s]),
				    pis[i].state == states[s]);
	family(t, "ibvhostd_port_connects_total", "counter",
	       "Frontend connections of the port.");
	for (unsigned i = 0; i < n; i++)
		port_sample(t, "ibvhostd_port_connects_total", &pis[i], NULL,
			    NULL, pis[i].connects);
	family(t, "ibvhostd_port_device_starts_total", "counter",
	       "Times the port's device started (features, memory and rings set).");
	for (unsigned i = 0; i < n; i++)
		port_sample(t, "ibvhostd_port_device_starts_total", &pis[i],
			    NULL, NULL, pis[i].device_starts);
	family(t, "ibvhostd_port_guest_memory_bytes", "gauge",
	       "Guest memory mapped for the port (the frontend's memory table).");
	for (unsigned i = 0; i < n; i++) {
		uint64_t total = 0;

		for (unsigned r = 0; r < pis[i].n_regions; r++)
			total += pis[i].regions[r].size;
		port_sample(t, "ibvhostd_port_guest_memory_bytes", &pis[i],
			    NULL, NULL, total);
	}
}

/* The data path's facts of each port, from the same JSON show-port
 * prints ("ib"): one table row per exported field. */
static const struct {
	const char *path[2]; /* key in "ib", or in its sub-object */
	const char *metric, *type, *help;
} ib_fields[] = {
	{ { "tx_inflight", NULL }, "ibvhostd_port_tx_inflight", "gauge",
	  "TX descriptors lent to the HCA now." },
	{ { "rx_posted_wrs", NULL }, "ibvhostd_port_rx_posted_wrs", "gauge",
	  "Receive work requests posted now (receive credits)." },
	{ { "qp_recoveries", NULL }, "ibvhostd_port_qp_recoveries_total", "counter",
	  "Times the port's QP was reset after an error." },
	{ { "mrs_registered", NULL }, "ibvhostd_port_mr_registrations_total", "counter",
	  "Guest memory regions registered with the HCA." },
	{ { "mrs_deregistered", NULL }, "ibvhostd_port_mr_deregistrations_total", "counter",
	  "Guest memory regions deregistered." },
	{ { "fdb", "entries" }, "ibvhostd_port_fdb_entries", "gauge",
	  "Entries of the port's forwarding database." },
	{ { "fdb", "learned" }, "ibvhostd_port_fdb_learned_total", "counter",
	  "Forwarding entries learned." },
	{ { "fdb", "moved" }, "ibvhostd_port_fdb_moved_total", "counter",
	  "Learned entries whose MAC moved to another address." },
	{ { "fdb", "aged" }, "ibvhostd_port_fdb_aged_total", "counter",
	  "Learned entries forgotten after fdb_aging_s." },
	{ { "fdb", "evicted" }, "ibvhostd_port_fdb_evicted_total", "counter",
	  "Entries evicted because the table was full." },
};

static void port_ib(struct text *t, const struct ctl_dp_ops *dp,
		    struct port **ports, const struct port_info *pis, unsigned n)
{
	json_t **ib = calloc(n ? n : 1, sizeof(*ib));

	if (!ib) {
		t->oom = true;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		json_t *o = json_object();

		dp->port_json(ports[i], o);
		ib[i] = json_incref(json_object_get(o, "ib")); /* null: no QP */
		json_decref(o);
	}
	for (size_t f = 0; f < sizeof(ib_fields) / sizeof(ib_fields[0]); f++) {
		family(t, ib_fields[f].metric, ib_fields[f].type, ib_fields[f].help);
		for (unsigned i = 0; i < n; i++) {
			json_t *v = json_object_get(ib[i], ib_fields[f].path[0]);

			if (ib_fields[f].path[1])
				v = json_object_get(v, ib_fields[f].path[1]);
			if (json_is_integer(v) && json_integer_value(v) >= 0)
				port_sample(t, ib_fields[f].metric, &pis[i], NULL, NULL,
					    (uint64_t)json_integer_value(v));
		}
	}
	for (unsigned i = 0; i < n; i++)
		json_decref(ib[i]);
	free(ib);
}

/* ---- cores, device, daemon ----------------------------------------------------- */

/* One sample per polling core; v is skipped unless it is an integer. */
static void core_sample(struct text *t, const char *name, json_t *core,
			const char *reason, json_t *v)
{
	if (!json_is_integer(v))
		return;
	text_printf(t, "%s{core=\"%lld\"", name,
		    (long long)json_integer_value(json_object_get(core, "cpu")));
	if (reason)
		text_printf(t, ",reason=\"%s\"", reason);
	text_printf(t, "} %lld\n", (long long)json_integer_value(v));
}

/* One family with a sample per core, from a field of show-stats' cores. */
static void core_family(struct text *t, json_t *cores, const char *name,
			const char *type, const char *help, const char *key)
{
	json_t *c;
	size_t i;

	family(t, name, type, help);
	json_array_foreach(cores, i, c)
		core_sample(t, name, c, NULL, json_object_get(c, key));
}

static void cores_and_device(struct text *t, json_t *stats)
{
	static const char *const wake[] = { "cq", "kick", "mailbox" };
	json_t *cores = json_object_get(stats, "cores");
	json_t *c, *dev;
	size_t i;

	core_family(t, cores, "ibvhostd_core_ports", "gauge",
		    "Ports served by the polling core.", "ports");
	family(t, "ibvhostd_core_adaptive", "gauge",
	       "1 if the polling core sleeps when idle (poll_mode = adaptive).");
	json_array_foreach(cores, i, c) {
		const char *mode = json_string_value(json_object_get(c, "poll"));
		json_t *one = json_integer(mode && strcmp(mode, "adaptive") == 0);

		core_sample(t, "ibvhostd_core_adaptive", c, NULL, one);
		json_decref(one);
	}
	core_family(t, cores, "ibvhostd_core_cq_entries", "gauge",
		    "Entries of the polling core's completion queue.",
		    "cq_entries");
	core_family(t, cores, "ibvhostd_core_cq_wrs", "gauge",
		    "WRs the core's ports may have outstanding (at most cq_entries).",
		    "cq_need");
	core_family(t, cores, "ibvhostd_core_sleeps_total", "counter",
		    "Times the adaptive polling core went to sleep.", "sleeps");
	family(t, "ibvhostd_core_wakeups_total", "counter",
	       "Wake-ups of the adaptive polling core, by reason (cq, kick, mailbox).");
	json_array_foreach(cores, i, c) {
		char key[32];

		for (size_t w = 0; w < sizeof(wake) / sizeof(wake[0]); w++) {
			snprintf(key, sizeof(key), "wakeups_%s", wake[w]);
			core_sample(t, "ibvhostd_core_wakeups_total", c, wake[w],
				    json_object_get(c, key));
		}
	}

	dev = json_object_get(stats, "device");
	json_t *qv = json_object_get(dev, "qkey_violations");
	if (dev && json_is_integer(qv) && json_integer_value(qv) >= 0) {
		family(t, "ibvhostd_ib_qkey_violations_total", "counter",
		       "Messages the HCA dropped for a wrong Q_Key (other segments' frames), as the HCA counts them.");
		text_printf(t, "ibvhostd_ib_qkey_violations_total{device=\"");
		text_label(t, json_string_value(json_object_get(dev, "name"))
				      ? json_string_value(json_object_get(dev, "name"))
				      : "");
		text_printf(t, "\",ib_port=\"%lld\"} %lld\n",
			    (long long)json_integer_value(json_object_get(dev, "port")),
			    (long long)json_integer_value(qv));
	}
	json_t *refused = json_object_get(stats, "vhost_refused");
	if (json_is_integer(refused)) {
		family(t, "ibvhostd_vhost_refused_total", "counter",
		       "vhost-user connections the message guard dropped.");
		text_printf(t, "ibvhostd_vhost_refused_total %lld\n",
			    (long long)json_integer_value(refused));
	}
}

char *ctl_metrics_text(const struct ctl_dp_ops *dp,
		       const struct ctl_daemon_info *info)
{
	struct port *ports[CFG_PORTS_MAX];
	unsigned n = port_list(ports, CFG_PORTS_MAX);
	struct port_info *pis = calloc(n ? n : 1, sizeof(*pis));
	struct text t = { .cap = 16384 };

	t.s = malloc(t.cap);
	if (!t.s || !pis)
		goto oom;
	t.s[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		port_get_info(ports[i], &pis[i]); /* raw: no clear baseline */

	family(&t, "ibvhostd_build_info", "gauge",
	       "The daemon's and DPDK's versions; always 1.");
	text_printf(&t, "ibvhostd_build_info{version=\"");
	text_label(&t, info->version);
	text_printf(&t, "\",dpdk=\"");
	text_label(&t, info->dpdk_version);
	text_printf(&t, "\"} 1\n");
	family(&t, "ibvhostd_ports", "gauge", "Configured ports.");
	text_printf(&t, "ibvhostd_ports %u\n", n);

	port_gauges(&t, pis, n);
	port_counters(&t, pis, n);
	port_rates(&t, ports, pis, n);
	if (dp && dp->port_json)
		port_ib(&t, dp, ports, pis, n);
	if (dp && dp->stats) {
		json_t *stats = dp->stats();

		cores_and_device(&t, stats);
		json_decref(stats);
	}
	if (t.oom)
		goto oom;
	free(pis);
	return t.s;
oom:
	free(t.s);
	free(pis);
	return NULL;
}
