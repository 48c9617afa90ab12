/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_dp: the data path's answers to control commands (show-ports' IB
 * facts, show-fdb, fdb-add, fdb-del, show-stats). Installed into the
 * control protocol with ctl_set_dp_ops() by the daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibvhost/ctl.h"
#include "ibvhost/dp.h"
#include "ibvhost/ib.h"
#include "ibvhost/port.h"
#include "ibvhost/vhost_guard.h"

#include "ctl_int.h"

static json_t *hex32(uint32_t v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "0x%" PRIx32, v);
	return json_string(buf);
}

static json_t *gid_json(const uint8_t gid[16])
{
	char s[40];

	ib_gid_format(gid, s);
	return json_string(s);
}

static void port_json(struct port *p, json_t *obj)
{
	struct dp_port_info di;
	json_t *lkeys, *fdb;

	if (dp_port_get_info(p, &di) != 0) {
		json_object_set_new(obj, "ib", json_null());
		return;
	}
	lkeys = json_array();
	for (unsigned i = 0; i < di.n_mrs; i++)
		json_array_append_new(lkeys, hex32(di.lkeys[i]));
	fdb = json_pack("{s:i, s:i, s:I, s:I, s:I, s:I}",
			"entries", (int)di.fdb.entries,
			"static", (int)di.fdb.static_entries,
			"learned", (json_int_t)di.fdb.learned,
			"moved", (json_int_t)di.fdb.moved,
			"aged", (json_int_t)di.fdb.aged,
			"evicted", (json_int_t)di.fdb.evicted);
	json_object_set_new(obj, "ib",
		json_pack("{s:b, s:b, s:o, s:o, s:i, s:i, s:i, s:o, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:o}",
			  "started", di.started,
			  "broken", di.broken,
			  "qpn", hex32(di.qpn),
			  "qkey", hex32(di.qkey),
			  "lid", (int)di.lid,
			  "mtu", (int)di.mtu,
			  "mrs", (int)di.n_mrs,
			  "lkeys", lkeys,
			  "tx_inflight", (int)di.tx_inflight,
			  "rx_posted_wrs", (int)di.rx_posted_wrs,
			  "send_wr", (int)di.send_wr,
			  "recv_wr", (int)di.recv_wr,
			  "qp_recoveries", (json_int_t)di.qp_recoveries,
			  "mrs_registered", (json_int_t)di.mrs_registered,
			  "mrs_deregistered", (json_int_t)di.mrs_deregistered,
			  "fdb", fdb));
}

struct fdb_dump {
	json_t *a;
	uint64_t now;
};

/* Runs on the polling core while the main thread waits for it. */
static int fdb_entry_json(const struct fdb_entry *e, void *arg)
{
	struct fdb_dump *dump = arg;
	char mac[18];

	cfg_format_mac(e->mac, mac);
	json_array_append_new(dump->a,
		json_pack("{s:s, s:i, s:o, s:o, s:b, s:b, s:I}",
			  "mac", mac,
			  "lid", (int)e->addr.lid,
			  "qpn", hex32(e->addr.qpn),
			  "gid", gid_json(e->addr.gid),
			  "static", e->is_static,
			  "ah", e->ah != NULL,
			  "age_s", (json_int_t)(dump->now - e->last_seen)));
	return 0;
}

static int ctl_fdb_show(struct port *p, json_t **out, char *err, size_t errlen)
{
	struct fdb_dump dump = { .a = json_array() };
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	dump.now = (uint64_t)ts.tv_sec;
	rc = dp_fdb_foreach(p, fdb_entry_json, &dump);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: %s", p->cfg.name, strerror(-rc));
		json_decref(dump.a);
		return -1;
	}
	*out = dump.a;
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno == 0 && *s && !*end && *s != '-' && *out <= max ? 0 : -1;
}

static int ctl_fdb_add(struct port *p, unsigned argc, const char *const *argv,
		   char *err, size_t errlen)
{
	struct fdb_addr a;
	unsigned long lid, qpn;
	uint8_t mac[6];
	int rc;

	memset(&a, 0, sizeof(a));
	if (cfg_parse_mac(argv[0], mac) != 0) {
		snprintf(err, errlen, "bad MAC '%.32s' (want aa:bb:cc:dd:ee:ff)",
			 argv[0]);
		return -1;
	}
	if (parse_uint(argv[1], 0xffff, &lid) != 0) {
		snprintf(err, errlen, "bad LID '%.32s' (0..0xffff)", argv[1]);
		return -1;
	}
	if (parse_uint(argv[2], FDB_QPN_MASK, &qpn) != 0) {
		snprintf(err, errlen, "bad QPN '%.32s' (0..0xffffff)", argv[2]);
		return -1;
	}
	if (argc > 3 && cfg_parse_gid(argv[3], a.gid) != 0) {
		snprintf(err, errlen, "bad GID '%.64s' (want an IPv6-style GID)",
			 argv[3]);
		return -1;
	}
	a.lid = (uint16_t)lid;
	a.qpn = (uint32_t)qpn;
	rc = dp_fdb_add(p, mac, &a);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: cannot add %s: %s", p->cfg.name,
			 argv[0], strerror(-rc));
		return -1;
	}
	return 0;
}

static int ctl_fdb_del(struct port *p, const char *macs, char *err, size_t errlen)
{
	uint8_t mac[6];
	int rc;

	if (cfg_parse_mac(macs, mac) != 0) {
		snprintf(err, errlen, "bad MAC '%.32s'", macs);
		return -1;
	}
	rc = dp_fdb_del(p, mac);
	if (rc != 0) {
		snprintf(err, errlen, "port %s: %s: %s", p->cfg.name, macs,
			 rc == -ENOENT ? "no such entry" : strerror(-rc));
		return -1;
	}
	return 0;
}

static json_t *stats(void)
{
	const struct ib_dev *dev = dp_ib_dev();
	struct port *ports[CFG_PORTS_MAX];
	unsigned n = port_list(ports, CFG_PORTS_MAX);
	struct port_counters total;
	json_t *o, *t;

	memset(&total, 0, sizeof(total));
	for (unsigned i = 0; i < n; i++) {
		struct port_info pi;

		ctl_port_get_info(ports[i], &pi); /* since clear-counters */
#define PORT_COUNTER_SUM(name) total.name += pi.counters.name;
		PORT_COUNTERS(PORT_COUNTER_SUM)
#undef PORT_COUNTER_SUM
	}
	t = json_object();
#define PORT_COUNTER_JSON(name)                                                \
	json_object_set_new(t, #name, json_integer((json_int_t)total.name));
	PORT_COUNTERS(PORT_COUNTER_JSON)
#undef PORT_COUNTER_JSON
	o = json_pack("{s:i, s:o, s:I}", "ports", (int)n, "totals", t,
		      /* vhost-user connections the message guard dropped */
		      "vhost_refused", (json_int_t)vhost_guard_refused());
	json_t *cores = json_array();
	struct dp_core_info ci;

	for (unsigned i = 0; dp_core_get_info(i, &ci); i++)
		json_array_append_new(cores,
			json_pack("{s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				  "cpu", (int)ci.cpu, "ports", (int)ci.ports,
				  "poll", ci.adaptive ? "adaptive" : "busy",
				  "sleeps", (json_int_t)ci.sleeps,
				  "wakeups_cq", (json_int_t)ci.wakeups_cq,
				  "wakeups_kick", (json_int_t)ci.wakeups_kick,
				  "wakeups_mailbox",
				  (json_int_t)ci.wakeups_mailbox,
				  "cq_entries", (json_int_t)ci.cq_entries,
				  "cq_need", (json_int_t)ci.cq_need,
				  "cq_resizes", (json_int_t)ci.cq_resizes));
	json_object_set_new(o, "cores", cores);
	struct ibv_port_attr pa;
	int qkey_viol = -1;

	if (dev && ibv_query_port(dev->ctx, dev->port, &pa) == 0)
		qkey_viol = (int)pa.qkey_viol_cntr;
	if (dev)
		json_object_set_new(o, "device",
			json_pack("{s:s, s:i, s:i, s:o, s:s, s:i, s:i}",
				  "name", dev->name,
				  "port", (int)dev->port,
				  "lid", (int)dev->lid,
				  "gid", gid_json(dev->gid.raw),
				  "link_layer", dev->roce ? "Ethernet" : "InfiniBand",
				  "mtu", (int)dev->mtu_bytes,
				  "max_sge", (int)dev->max_sge));
	if (dev)
		json_object_set_new(json_object_get(o, "device"),
				    "qkey_violations", json_integer(qkey_viol));
	return o;
}

static const struct ctl_dp_ops ops = {
	.port_json = port_json,
	.fdb_show = ctl_fdb_show,
	.fdb_add = ctl_fdb_add,
	.fdb_del = ctl_fdb_del,
	.stats = stats,
};

void ctl_dp_install(void)
{
	ctl_set_dp_ops(&ops);
}
