/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibvhostctl: talk to a running ibvhostd over its control socket.
 *
 * The grammar is a table: each row is a command, its argument count and
 * the printer for its human-readable reply. --json prints the daemon's
 * result as it is. Exit status: 0 ok, 1 the daemon reported an error,
 * 2 usage error, 3 cannot reach the daemon.
 *
 * --complete WHAT serves the bash completion (daemon/ibvhostctl.bash):
 * "commands" prints NAME<TAB>USAGE per command, from the daemon's
 * list-commands or, when it does not answer, from the table below;
 * "ports" prints the daemon's port names (nothing when it does not
 * answer). Both exit 0 and print no error: a completion stays quiet.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ibvhost/config.h"
#include "ibvhost/log.h"

#ifndef IBVHOSTD_VERSION
#define IBVHOSTD_VERSION "unknown"
#endif

#define CTL_TIMEOUT_MS 10000
/* A reload stops and starts ports, each waiting for its polling core:
 * allow it most of systemd's default ExecReload timeout (90 s). */
#define CTL_RELOAD_TIMEOUT_MS 85000
#define REPLY_MAX (8u << 20)

/* ---- human output ------------------------------------------------------------ */

static const char *sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long iget(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void human_size(uint64_t v, char *out, size_t len)
{
	static const char units[] = "BKMGT";
	unsigned u = 0;

	while (v >= 1024 && v % 1024 == 0 && u < sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%" PRIu64 "%c", v, units[u]);
}

/* A table of cells, printed with every column as wide as its widest cell. */
#define COLS_MAX 20
#define ROWS_MAX (CFG_PORTS_MAX + 1)
struct table {
	unsigned ncols, nrows;
	char cell[ROWS_MAX][COLS_MAX][80];
};

static void table_print(const struct table *t)
{
	size_t w[COLS_MAX] = { 0 };

	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++)
			if (strlen(t->cell[r][c]) > w[c])
				w[c] = strlen(t->cell[r][c]);
	for (unsigned r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			if (c + 1 == t->ncols)
				printf("%s\n", t->cell[r][c]);
			else
				printf("%-*s  ", (int)w[c], t->cell[r][c]);
		}
	}
}

/* A rate with a decimal unit prefix: 950, 12.3k, 1.9M, 40.1G. */
static void human_rate(double v, char *out, size_t len)
{
	static const char units[] = " kMGT";
	unsigned u = 0;

	while (v >= 1000 && u < sizeof(units) - 2) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.1f%c", v, units[u]);
}

static double rate(json_t *port, const char *name)
{
	return json_number_value(json_object_get(json_object_get(port, "rates"), name));
}

static uint64_t counter(json_t *port, const char *name)
{
	return (uint64_t)json_integer_value(
		json_object_get(json_object_get(port, "counters"), name));
}

static uint64_t drops(json_t *port)
{
	json_t *cs = json_object_get(port, "counters");
	const char *k;
	json_t *v;
	uint64_t sum = 0;

	json_object_foreach(cs, k, v)
		if (strncmp(k, "drop_", 5) == 0)
			sum += (uint64_t)json_integer_value(v);
	return sum;
}

static void port_row(struct table *t, json_t *p)
{
	char (*row)[80] = t->cell[t->nrows++];
	json_t *qs = json_object_get(p, "queues");
	size_t i, enabled = 0;
	json_t *q;
	char size[32];

	json_array_foreach(qs, i, q)
		if (json_is_true(json_object_get(q, "enabled")))
			enabled++;
	human_size((uint64_t)iget(p, "memory_size"), size, sizeof(size));
	snprintf(row[0], 80, "%s", sget(p, "name"));
	snprintf(row[1], 80, "%s", sget(p, "socket"));
	snprintf(row[2], 80, "%s", sget(p, "mode"));
	snprintf(row[3], 80, "%s", sget(p, "state"));
	snprintf(row[4], 80, "%s", sget(p, "segment"));
	snprintf(row[5], 80, "%s", sget(p, "features"));
	snprintf(row[6], 80, "%zu", json_array_size(json_object_get(p, "memory_regions")));
	snprintf(row[7], 80, "%s", size);
	snprintf(row[8], 80, "%zu/%zu", enabled, json_array_size(qs));
	snprintf(row[9], 80, "%s", sget(json_object_get(p, "ib"), "qpn"));
	snprintf(row[10], 80, "%lld", iget(json_object_get(p, "ib"), "mrs"));
	snprintf(row[11], 80, "%" PRIu64, counter(p, "tx_frames"));
	snprintf(row[12], 80, "%" PRIu64, counter(p, "rx_frames"));
	snprintf(row[13], 80, "%" PRIu64, drops(p));
	human_rate(rate(p, "tx_frames_per_s"), row[14], 80);
	human_rate(rate(p, "tx_bytes_per_s"), row[15], 80);
	human_rate(rate(p, "rx_frames_per_s"), row[16], 80);
	human_rate(rate(p, "rx_bytes_per_s"), row[17], 80);
}

static void table_header(struct table *t)
{
	static const char *const h[] = { "NAME", "SOCKET", "MODE", "STATE",
		"SEGMENT", "FEATURES", "REGIONS", "MEMORY", "QUEUES", "QPN",
		"MRS", "TX", "RX", "DROPS", "TX/S", "TXB/S", "RX/S", "RXB/S" };

	t->ncols = sizeof(h) / sizeof(h[0]);
	for (unsigned c = 0; c < t->ncols; c++)
		snprintf(t->cell[0][c], 80, "%s", h[c]);
	t->nrows = 1;
}

static void print_ports(json_t *result)
{
	static struct table t;
	size_t i;
	json_t *p;

	table_header(&t);
	json_array_foreach(result, i, p)
		if (t.nrows < ROWS_MAX)
			port_row(&t, p);
	table_print(&t);
}

static void print_port(json_t *p)
{
	static struct table t;
	size_t i;
	json_t *v;
	const char *k;

	table_header(&t);
	port_row(&t, p);
	table_print(&t);
	printf("\nqkey %s  mac %s  mtu %lld (config %lld)  connects %lld  device starts %lld\n",
	       sget(p, "qkey"), sget(p, "mac"), iget(p, "mtu"), iget(p, "mtu_config"),
	       iget(p, "connects"), iget(p, "device_starts"));
	printf("features:");
	json_array_foreach(json_object_get(p, "feature_names"), i, v)
		printf(" %s", json_string_value(v));
	printf("\n");
	json_t *rates = json_object_get(p, "rates");
	if (json_number_value(json_object_get(rates, "interval_s")) > 0)
		printf("rates over the last %.2f s: tx %.1f frames/s %.0f bytes/s, "
		       "rx %.1f frames/s %.0f bytes/s\n",
		       json_number_value(json_object_get(rates, "interval_s")),
		       rate(p, "tx_frames_per_s"), rate(p, "tx_bytes_per_s"),
		       rate(p, "rx_frames_per_s"), rate(p, "rx_bytes_per_s"));
	else
		printf("rates: not sampled yet\n");
	printf("\n");

	t.ncols = 4;
	t.nrows = 0;
	snprintf(t.cell[0][0], 80, "REGION");
	snprintf(t.cell[0][1], 80, "GUEST_PHYS");
	snprintf(t.cell[0][2], 80, "SIZE");
	snprintf(t.cell[0][3], 80, "HOST_VIRT");
	t.nrows = 1;
	json_array_foreach(json_object_get(p, "memory_regions"), i, v) {
		if (t.nrows == ROWS_MAX)
			break;
		snprintf(t.cell[t.nrows][0], 80, "%zu", i);
		snprintf(t.cell[t.nrows][1], 80, "%s", sget(v, "guest_phys_addr"));
		human_size((uint64_t)iget(v, "size"), t.cell[t.nrows][2], 80);
		snprintf(t.cell[t.nrows][3], 80, "%s", sget(v, "host_user_addr"));
		t.nrows++;
	}
	table_print(&t);
	printf("\n");

	t.ncols = 2;
	snprintf(t.cell[0][0], 80, "COUNTER");
	snprintf(t.cell[0][1], 80, "VALUE");
	t.nrows = 1;
	json_object_foreach(json_object_get(p, "counters"), k, v) {
		if (t.nrows == ROWS_MAX)
			break;
		snprintf(t.cell[t.nrows][0], 80, "%s", k);
		snprintf(t.cell[t.nrows][1], 80, "%lld", (long long)json_integer_value(v));
		t.nrows++;
	}
	table_print(&t);
}

static void print_fdb(json_t *r)
{
	static struct table t;
	static const char *const h[] = { "MAC", "LID", "QPN", "GID", "TYPE",
					 "AGE" };
	size_t i;
	json_t *e;

	t.ncols = sizeof(h) / sizeof(h[0]);
	for (unsigned c = 0; c < t.ncols; c++)
		snprintf(t.cell[0][c], 80, "%s", h[c]);
	t.nrows = 1;
	json_array_foreach(r, i, e) {
		if (t.nrows == ROWS_MAX)
			break;
		char (*row)[80] = t.cell[t.nrows++];

		snprintf(row[0], 80, "%s", sget(e, "mac"));
		snprintf(row[1], 80, "0x%llx", iget(e, "lid"));
		snprintf(row[2], 80, "%s", sget(e, "qpn"));
		snprintf(row[3], 80, "%s", sget(e, "gid"));
		snprintf(row[4], 80, "%s",
			 json_is_true(json_object_get(e, "static")) ? "static"
								   : "learned");
		snprintf(row[5], 80, "%llds", iget(e, "age_s"));
	}
	table_print(&t);
}

static void print_stats(json_t *r)
{
	json_t *dev = json_object_get(r, "device");
	json_t *v;
	const char *k;

	if (dev)
		printf("device %s port %lld (%s): LID 0x%llx, GID %s, MTU %lld\n",
		       sget(dev, "name"), iget(dev, "port"),
		       sget(dev, "link_layer"), iget(dev, "lid"),
		       sget(dev, "gid"), iget(dev, "mtu"));
	if (dev)
		printf("Q_Key violations (other segments' frames dropped by "
		       "the HCA) %lld\n", iget(dev, "qkey_violations"));
	printf("ports %lld\n", iget(r, "ports"));
	json_object_foreach(json_object_get(r, "totals"), k, v)
		printf("%-16s %lld\n", k, (long long)json_integer_value(v));
}

static void print_version(json_t *r)
{
	printf("ibvhostd %s (%s), pid %lld, config %s, log level %s\n",
	       sget(r, "version"), sget(r, "dpdk"), iget(r, "pid"),
	       sget(r, "config"), sget(r, "log_level"));
}

static void print_log_level(json_t *r)
{
	printf("log level %s (was %s)\n", sget(r, "log_level"),
	       sget(r, "previous"));
}

static void print_reload(json_t *r)
{
	static struct table t;
	size_t i;
	json_t *p;

	printf("%s: reloaded, %lld port(s) running\n", sget(r, "config"),
	       iget(r, "running"));
	t.ncols = 2;
	snprintf(t.cell[0][0], 80, "PORT");
	snprintf(t.cell[0][1], 80, "ACTION");
	t.nrows = 1;
	json_array_foreach(json_object_get(r, "ports"), i, p) {
		if (t.nrows == ROWS_MAX)
			break;
		snprintf(t.cell[t.nrows][0], 80, "%s", sget(p, "name"));
		snprintf(t.cell[t.nrows][1], 80, "%s", sget(p, "action"));
		t.nrows++;
	}
	table_print(&t);
}

/* Prometheus text, as is: a textfile collector or promtool reads it. */
static void print_metrics(json_t *r)
{
	const char *text = json_string_value(json_object_get(r, "text"));

	if (text)
		fputs(text, stdout);
}

static void print_cleared(json_t *r)
{
	printf("counters cleared: %s\n", sget(r, "cleared"));
}

static void print_commands(json_t *r)
{
	size_t i;
	json_t *c;

	json_array_foreach(r, i, c)
		printf("%-16s %-8s %s\n", sget(c, "name"), sget(c, "usage"), sget(c, "help"));
}

/* ---- grammar ------------------------------------------------------------------ */

/* One row per command. `words` is what the user types (several words
 * allowed, e.g. "fdb add"), `cmd` the protocol command it sends; the
 * remaining arguments are passed as strings. A NULL printer prints the
 * result as JSON, so a new daemon command needs only a row here. */
struct ctl_verb {
	const char *words;
	const char *cmd;
	unsigned min_args, max_args;
	const char *usage;
	void (*print)(json_t *result);
	int timeout_ms; /* 0: CTL_TIMEOUT_MS */
};

static const struct ctl_verb verbs[] = {
	{ "show-ports", "show-ports", 0, 0, "", print_ports, 0 },
	{ "show-port", "show-port", 1, 1, "NAME", print_port, 0 },
	{ "show-fdb", "show-fdb", 1, 1, "PORT", print_fdb, 0 },
	{ "fdb add", "fdb-add", 4, 5, "PORT MAC LID QPN [GID]", NULL, 0 },
	{ "fdb del", "fdb-del", 2, 2, "PORT MAC", NULL, 0 },
	{ "show-stats", "show-stats", 0, 0, "", print_stats, 0 },
	{ "show-version", "show-version", 0, 0, "", print_version, 0 },
	{ "set-log-level", "set-log-level", 1, 1, LOG_LEVEL_CHOICES,
	  print_log_level, 0 },
	{ "show-metrics", "show-metrics", 0, 0, "", print_metrics, 0 },
	{ "clear-counters", "clear-counters", 0, 1, "[PORT]", print_cleared, 0 },
	{ "reload", "reload", 0, 0, "", print_reload, CTL_RELOAD_TIMEOUT_MS },
	{ "list-commands", "list-commands", 0, 0, "", print_commands, 0 },
};

/* Number of argv words the verb's words match, or 0. The protocol name
 * ("fdb-add", as list-commands and the completion give it) is one word
 * that names the verb too. */
static unsigned verb_match(const struct ctl_verb *v, int argc, char **argv)
{
	char buf[64];
	char *save = NULL;
	int i = 0;

	if (argc > 0 && strcmp(argv[0], v->cmd) == 0)
		return 1;
	snprintf(buf, sizeof(buf), "%s", v->words);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (i >= argc || strcmp(argv[i], w) != 0)
			return 0;
		i++;
	}
	return (unsigned)i;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: ibvhostctl [-s SOCKET] [--json] COMMAND [ARG...]\n"
		     "  -s, --socket PATH  control socket (default " CFG_DEFAULT_CTL_SOCKET ")\n"
		     "  -j, --json         print the reply as JSON\n"
		     "  -V, --version      print ibvhostctl's version and exit\n"
		     "  --complete commands|ports   words for the shell completion\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %s %s\n", verbs[i].words, verbs[i].usage);
}

/* ---- transport ---------------------------------------------------------------- */

static bool quiet; /* --complete: no error messages */

static void __attribute__((format(printf, 1, 2))) ctl_err(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ctl_err("ibvhostctl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		ctl_err("ibvhostctl: cannot connect to %s: %s (is ibvhostd running? use -s)\n",
			path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Send one request line and read one reply line, within timeout_ms. */
static char *ctl_call(int fd, const char *req, int timeout_ms)
{
	size_t len = strlen(req), off = 0, cap = 65536, n = 0;
	char *buf = malloc(cap);
	struct pollfd pfd = { .fd = fd };

	if (!buf)
		return NULL;
	while (off < len) {
		ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EPIPE)
			break; /* refused: the daemon's reason may be waiting */
		if (w < 0) {
			ctl_err("ibvhostctl: send: %s\n", strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	pfd.events = POLLIN;
	for (;;) {
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr <= 0) {
			ctl_err("ibvhostctl: no reply within %d ms\n", timeout_ms);
			goto fail;
		}
		if (n + 1 >= cap) {
			if (cap >= REPLY_MAX) {
				ctl_err("ibvhostctl: reply too large\n");
				goto fail;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
		if (r <= 0) {
			ctl_err("ibvhostctl: connection closed before the reply\n");
			goto fail;
		}
		n += (size_t)r;
		char *nl = memchr(buf, '\n', n);
		if (nl) {
			*nl = '\0';
			return buf;
		}
	}
fail:
	free(buf);
	return NULL;
}

/* Send one command (args: a new reference, stolen) and read the reply
 * object into *reply. 0, or the exit status: 2 the request cannot be
 * built, 3 the daemon cannot be reached or answers nonsense. */
static int request(const char *sock, const char *cmd, json_t *args,
		   int timeout_ms, json_t **reply)
{
	json_t *req = json_pack("{s:s, s:o}", "cmd", cmd, "args", args);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;

	json_decref(req);
	if (!text) {
		ctl_err("ibvhostctl: cannot build the request (arguments must be UTF-8)\n");
		return 2;
	}
	size_t tl = strlen(text);
	char *line = malloc(tl + 2);
	if (!line) {
		free(text);
		return 3;
	}
	memcpy(line, text, tl);
	line[tl] = '\n';
	line[tl + 1] = '\0';
	free(text);

	int fd = ctl_connect(sock);
	if (fd < 0) {
		free(line);
		return 3;
	}
	char *raw = ctl_call(fd, line, timeout_ms ? timeout_ms : CTL_TIMEOUT_MS);
	close(fd);
	free(line);
	if (!raw)
		return 3;

	json_error_t jerr;
	json_t *r = json_loads(raw, 0, &jerr);
	free(raw);
	if (!json_is_object(r)) {
		ctl_err("ibvhostctl: malformed reply from the daemon: %s\n", jerr.text);
		json_decref(r);
		return 3;
	}
	*reply = r;
	return 0;
}

/* The daemon's result for a command without arguments, or NULL. */
static json_t *quiet_result(const char *sock, const char *cmd)
{
	json_t *r = NULL, *result = NULL;

	if (request(sock, cmd, json_array(), 0, &r) == 0 &&
	    json_is_true(json_object_get(r, "ok")))
		result = json_incref(json_object_get(r, "result"));
	json_decref(r);
	return result;
}

static int complete(const char *sock, const char *what)
{
	json_t *r, *e;
	size_t i;

	quiet = true;
	if (strcmp(what, "commands") == 0) {
		r = quiet_result(sock, "list-commands");
		if (json_is_array(r)) {
			json_array_foreach(r, i, e)
				printf("%s\t%s\n", sget(e, "name"), sget(e, "usage"));
		} else {
			for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
				printf("%s\t%s\n", verbs[v].cmd, verbs[v].usage);
		}
		json_decref(r);
		return 0;
	}
	if (strcmp(what, "ports") == 0) {
		r = quiet_result(sock, "show-ports");
		json_array_foreach(r, i, e)
			printf("%s\n", sget(e, "name"));
		json_decref(r);
		return 0;
	}
	fprintf(stderr, "ibvhostctl: --complete takes commands or ports\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "complete", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = CFG_DEFAULT_CTL_SOCKET;
	const char *complete_what = NULL;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "+s:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ibvhostctl %s\n", IBVHOSTD_VERSION);
			return 0;
		case 'C':
			complete_what = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (complete_what)
		return complete(sock, complete_what);
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const struct ctl_verb *v = NULL;
	unsigned nwords = 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		unsigned m = verb_match(&verbs[i], argc - optind, argv + optind);
		if (m > nwords) { /* the longest match wins: "fdb add" over "fdb" */
			v = &verbs[i];
			nwords = m;
		}
	}
	if (!v) {
		fprintf(stderr, "ibvhostctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	unsigned nargs = (unsigned)(argc - optind) - nwords;
	int first_arg = optind + (int)nwords;
	if (nargs < v->min_args || nargs > v->max_args) {
		fprintf(stderr, "ibvhostctl: usage: %s %s\n", v->words, v->usage);
		return 2;
	}

	json_t *args = json_array();
	for (unsigned i = 0; i < nargs; i++)
		json_array_append_new(args, json_string(argv[first_arg + (int)i]));
	json_t *r = NULL;
	int rc = request(sock, v->cmd, args, v->timeout_ms, &r);
	if (rc != 0)
		return rc;
	if (!json_is_true(json_object_get(r, "ok"))) {
		fprintf(stderr, "ibvhostctl: %s: %s\n", v->words, sget(r, "error"));
		rc = 1;
	} else if (json || !v->print) {
		char *out = json_dumps(json_object_get(r, "result"),
				       JSON_INDENT(2) | JSON_ENCODE_ANY);
		if (out)
			printf("%s\n", out);
		free(out);
	} else {
		v->print(json_object_get(r, "result"));
	}
	json_decref(r);
	return rc;
}
