/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_commands: the table of control commands and their handlers; see
 * include/ibvhost/ctl.h. Handlers run on the main thread; argument counts
 * are already checked by the dispatcher.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibvhost/ctl.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"

#include "ctl_int.h"

static struct ctl_daemon_info daemon_info = {
	.version = "unknown",
	.dpdk_version = "unknown",
	.config_path = "",
};

static const struct ctl_dp_ops *dp_ops;

void ctl_set_daemon_info(const struct ctl_daemon_info *info)
{
	daemon_info = *info;
}

void ctl_set_dp_ops(const struct ctl_dp_ops *ops)
{
	dp_ops = ops;
}

static json_t *rates_json(const struct port *p)
{
	struct ctl_port_rates r;

	ctl_port_rates(p, &r);
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}",
			 "sample", (json_int_t)r.sample,
			 "interval_s", r.interval_s,
			 "tx_frames_per_s", r.tx_frames_per_s,
			 "tx_bytes_per_s", r.tx_bytes_per_s,
			 "rx_frames_per_s", r.rx_frames_per_s,
			 "rx_bytes_per_s", r.rx_bytes_per_s);
}

static json_t *port_json(struct port *p)
{
	struct port_info pi;
	json_t *o;

	ctl_port_get_info(p, &pi); /* counters since clear-counters */
	o = ctl_port_info_json(&pi);
	json_object_set_new(o, "rates", rates_json(p));
	if (dp_ops && dp_ops->port_json)
		dp_ops->port_json(p, o);
	return o;
}

/* The port named by argv[0] with a data path, or NULL with err set. */
static struct port *dp_port_arg(const char *name, char *err, size_t errlen)
{
	struct port *p = port_find(name);

	if (!p)
		snprintf(err, errlen, "no port named '%.64s'", name);
	else if (!dp_ops)
		snprintf(err, errlen, "no data path in this daemon");
	return dp_ops ? p : NULL;
}

static json_t *hex64(uint64_t v)
{
	char buf[24];

	/* Hex strings: JSON integers are not safe above 2^53. */
	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

static json_t *feature_names(uint64_t features)
{
	json_t *a = json_array();

	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(features & (1ULL << bit)))
			continue;
		const char *n = port_feature_name(bit);
		char unknown[16];
		if (!n) {
			snprintf(unknown, sizeof(unknown), "bit%u", bit);
			n = unknown;
		}
		json_array_append_new(a, json_string(n));
	}
	return a;
}

json_t *ctl_port_info_json(const struct port_info *pi)
{
	json_t *o = json_object();
	json_t *regions = json_array();
	json_t *queues = json_array();
	json_t *counters = json_object();
	uint64_t total = 0;
	char mac[18];

	json_object_set_new(o, "name", json_string(pi->cfg.name));
	json_object_set_new(o, "socket", json_string(pi->cfg.socket_path));
	json_object_set_new(o, "mode", json_string(cfg_port_mode_name(pi->cfg.mode)));
	json_object_set_new(o, "state", json_string(port_state_name(pi->state)));
	json_object_set_new(o, "segment", json_string(pi->seg.name));
	json_object_set_new(o, "qkey", hex64(pi->seg.qkey));
	if (pi->cfg.has_mac) {
		cfg_format_mac(pi->cfg.mac, mac);
		json_object_set_new(o, "mac", json_string(mac));
	} else {
		json_object_set_new(o, "mac", json_null());
	}
	json_object_set_new(o, "mtu_config", json_integer(pi->cfg.mtu));
	json_object_set_new(o, "mtu", json_integer(pi->mtu));
	json_object_set_new(o, "vid", json_integer(pi->vid));
	json_object_set_new(o, "offered_features", hex64(pi->offered_features));
	json_object_set_new(o, "features", hex64(pi->features));
	json_object_set_new(o, "feature_names", feature_names(pi->features));
	json_object_set_new(o, "protocol_features", hex64(pi->protocol_features));

	for (unsigned i = 0; i < pi->n_regions; i++) {
		const struct port_mem_region *r = &pi->regions[i];

		total += r->size;
		json_array_append_new(regions,
			json_pack("{s:o, s:I, s:o}",
				  "guest_phys_addr", hex64(r->guest_phys_addr),
				  "size", (json_int_t)r->size,
				  "host_user_addr", hex64(r->host_user_addr)));
	}
	json_object_set_new(o, "memory_regions", regions);
	json_object_set_new(o, "memory_size", json_integer((json_int_t)total));

	for (unsigned i = 0; i < pi->n_vrings; i++)
		json_array_append_new(queues,
			json_pack("{s:i, s:i, s:b}", "index", (int)i,
				  "size", (int)pi->vrings[i].size,
				  "enabled", pi->vrings[i].enabled));
	json_object_set_new(o, "queues", queues);
	json_object_set_new(o, "connects", json_integer((json_int_t)pi->connects));
	json_object_set_new(o, "device_starts",
			    json_integer((json_int_t)pi->device_starts));

#define PORT_COUNTER_JSON(name)                                                \
	json_object_set_new(counters, #name,                                   \
			    json_integer((json_int_t)pi->counters.name));
	PORT_COUNTERS(PORT_COUNTER_JSON)
#undef PORT_COUNTER_JSON
	json_object_set_new(o, "counters", counters);
	return o;
}

static int cmd_show_ports(unsigned argc, const char *const *argv,
			  json_t **result, char *err, size_t errlen)
{
	struct port *ports[CFG_PORTS_MAX];
	unsigned n = port_list(ports, CFG_PORTS_MAX);
	json_t *a = json_array();

	(void)argc;
	(void)argv;
	(void)err;
	(void)errlen;
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, port_json(ports[i]));
	*result = a;
	return 0;
}

static int cmd_show_port(unsigned argc, const char *const *argv,
			 json_t **result, char *err, size_t errlen)
{
	struct port *p = port_find(argv[0]);

	(void)argc;
	if (!p) {
		snprintf(err, errlen, "no port named '%.64s'", argv[0]);
		return -1;
	}
	*result = port_json(p);
	return 0;
}

static int cmd_show_fdb(unsigned argc, const char *const *argv,
			json_t **result, char *err, size_t errlen)
{
	struct port *p = dp_port_arg(argv[0], err, errlen);

	(void)argc;
	return p ? dp_ops->fdb_show(p, result, err, errlen) : -1;
}

static int cmd_fdb_add(unsigned argc, const char *const *argv,
		       json_t **result, char *err, size_t errlen)
{
	struct port *p = dp_port_arg(argv[0], err, errlen);

	if (!p || dp_ops->fdb_add(p, argc - 1, argv + 1, err, errlen) != 0)
		return -1;
	*result = json_pack("{s:s}", "added", argv[1]);
	return 0;
}

static int cmd_fdb_del(unsigned argc, const char *const *argv,
		       json_t **result, char *err, size_t errlen)
{
	struct port *p = dp_port_arg(argv[0], err, errlen);

	(void)argc;
	if (!p || dp_ops->fdb_del(p, argv[1], err, errlen) != 0)
		return -1;
	*result = json_pack("{s:s}", "deleted", argv[1]);
	return 0;
}

static int cmd_show_stats(unsigned argc, const char *const *argv,
			  json_t **result, char *err, size_t errlen)
{
	(void)argc;
	(void)argv;
	if (!dp_ops) {
		snprintf(err, errlen, "no data path in this daemon");
		return -1;
	}
	*result = dp_ops->stats();
	return 0;
}

static int cmd_show_version(unsigned argc, const char *const *argv,
			    json_t **result, char *err, size_t errlen)
{
	(void)argc;
	(void)argv;
	(void)err;
	(void)errlen;
	*result = json_pack("{s:s, s:s, s:s, s:I, s:s}", "version",
			    daemon_info.version, "dpdk", daemon_info.dpdk_version,
			    "config", daemon_info.config_path, "pid",
			    (json_int_t)getpid(), "log_level",
			    log_level_name(log_get_level()));
	return 0;
}

/* The level holds until the daemon restarts or a reload applies the
 * file's log_level again. */
static int cmd_set_log_level(unsigned argc, const char *const *argv,
			     json_t **result, char *err, size_t errlen)
{
	enum log_level old = log_get_level(), level;

	(void)argc;
	if (log_level_parse(argv[0], &level) != 0) {
		snprintf(err, errlen, "unknown log level '%.32s' (one of %s); "
			 "level stays %s", argv[0], LOG_LEVEL_CHOICES,
			 log_level_name(old));
		return -1;
	}
	/* Logged at notice under whichever of the two levels shows it, so a
	 * change towards or away from quiet leaves a trace either way. */
	if (level < old)
		log_notice("control: log level %s (was %s)", log_level_name(level),
			   log_level_name(old));
	log_set_level(level);
	if (level >= old)
		log_notice("control: log level %s (was %s)", log_level_name(level),
			   log_level_name(old));
	*result = json_pack("{s:s, s:s}", "log_level", log_level_name(level),
			    "previous", log_level_name(old));
	return 0;
}

static int cmd_reload(unsigned argc, const char *const *argv,
		      json_t **result, char *err, size_t errlen)
{
	(void)argc;
	(void)argv;
	if (!daemon_info.reload) {
		snprintf(err, errlen, "no reload in this process");
		return -1;
	}
	return daemon_info.reload(result, err, errlen);
}

static int cmd_show_metrics(unsigned argc, const char *const *argv,
			    json_t **result, char *err, size_t errlen)
{
	char *text;

	(void)argc;
	(void)argv;
	text = ctl_metrics_text(dp_ops, &daemon_info);
	if (!text) {
		snprintf(err, errlen, "out of memory building the metrics");
		return -1;
	}
	*result = json_pack("{s:s, s:s}", "content_type",
			    "text/plain; version=0.0.4; charset=utf-8", "text", text);
	free(text);
	if (!*result) {
		snprintf(err, errlen, "out of memory building the reply");
		return -1;
	}
	return 0;
}

static int cmd_clear_counters(unsigned argc, const char *const *argv,
			      json_t **result, char *err, size_t errlen)
{
	struct port *p = NULL;

	if (argc == 1 && !(p = port_find(argv[0]))) {
		snprintf(err, errlen, "no port named '%.64s'", argv[0]);
		return -1;
	}
	ctl_clear_counters(p);
	*result = json_pack("{s:s}", "cleared", p ? p->cfg.name : "all ports");
	return 0;
}

static int cmd_list_commands(unsigned argc, const char *const *argv,
			     json_t **result, char *err, size_t errlen)
{
	json_t *a = json_array();

	(void)argc;
	(void)argv;
	(void)err;
	(void)errlen;
	for (size_t i = 0; i < ctl_n_commands; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:i, s:i}",
			"name", ctl_commands[i].name,
			"usage", ctl_commands[i].usage,
			"help", ctl_commands[i].help,
			"min_args", (int)ctl_commands[i].min_args,
			"max_args", (int)ctl_commands[i].max_args));
	*result = a;
	return 0;
}

const struct ctl_command ctl_commands[] = {
	{ "show-ports", 0, 0, "", "all ports: state, features, memory, queues, counters",
	  cmd_show_ports },
	{ "show-port", 1, 1, "NAME", "one port", cmd_show_port },
	{ "show-fdb", 1, 1, "PORT", "the port's forwarding database",
	  cmd_show_fdb },
	{ "fdb-add", 4, 5, "PORT MAC LID QPN [GID]",
	  "add a static FDB entry", cmd_fdb_add },
	{ "fdb-del", 2, 2, "PORT MAC", "delete an FDB entry", cmd_fdb_del },
	{ "show-stats", 0, 0, "", "IB device, polling cores, totals",
	  cmd_show_stats },
	{ "show-version", 0, 0, "", "daemon and DPDK versions, log level",
	  cmd_show_version },
	{ "set-log-level", 1, 1, LOG_LEVEL_CHOICES,
	  "log at this level from now on (until restart or reload)",
	  cmd_set_log_level },
	{ "show-metrics", 0, 0, "",
	  "every counter and gauge in Prometheus text format (raw: not cleared)",
	  cmd_show_metrics },
	{ "clear-counters", 0, 1, "[PORT]",
	  "port counters in show-* read 0 from now on (show-metrics keeps counting)",
	  cmd_clear_counters },
	{ "reload", 0, 0, "",
	  "re-read the config file and apply it; fails if it is rejected or a port fails",
	  cmd_reload },
	{ "list-commands", 0, 0, "", "the commands this daemon knows",
	  cmd_list_commands },
};

const size_t ctl_n_commands = sizeof(ctl_commands) / sizeof(ctl_commands[0]);
