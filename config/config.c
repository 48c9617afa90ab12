/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * config: INI parsing and validation for ibvhostd; see
 * include/ibvhost/config.h.
 *
 * libinih does the INI syntax. Debian's libinih is built without
 * INI_HANDLER_LINENO, so we feed it through our own line reader, which
 * counts lines, rejects over-long lines instead of letting inih split them,
 * and sees section headers first, so even an empty section is validated.
 * Keys are rows of per-section tables; each row parses one value.
 */
#include "ibvhost/config.h"

#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum section_kind { SEC_GLOBAL, SEC_SEGMENT, SEC_PORT };

struct parse_state {
	struct cfg *cfg;
	const char *file;
	FILE *in;
	unsigned line;
	char *err;
	size_t errlen;
	bool failed;
	unsigned err_line;

	enum section_kind kind;
	void *obj; /* struct cfg_segment / cfg_port of the current section */
	uint64_t seen; /* keys already set in the current section */
	uint64_t global_seen;

	/* Per object bookkeeping for checks made after the whole file. */
	bool seg_has_qkey[CFG_SEGMENTS_MAX];
	unsigned port_segment_line[CFG_PORTS_MAX];
	unsigned port_mtu_line[CFG_PORTS_MAX];
	bool port_has_socket[CFG_PORTS_MAX];
};

static void fail(struct parse_state *st, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parse_state *st, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->failed)
		return; /* the first error is the one to fix */
	st->failed = true;
	st->err_line = line;
	n = snprintf(st->err, st->errlen, "%s:%u: ", st->file, line);
	if (n < 0 || (size_t)n >= st->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* ---- global keys --------------------------------------------------------- */

static const char *g_log_level(struct cfg *c, const char *v)
{
	if (log_level_parse(v, &c->log_level) != 0)
		return "expected one of err, warning, notice, info, debug";
	return NULL;
}

static const char *g_ctl_socket(struct cfg *c, const char *v)
{
	return cfg_value_path(v, c->ctl_socket, sizeof(c->ctl_socket));
}

static const char *g_ctl_owner(struct cfg *c, const char *v)
{
	return cfg_value_id(v, c->ctl_owner);
}

static const char *g_ctl_group(struct cfg *c, const char *v)
{
	return cfg_value_id(v, c->ctl_group);
}

/* A socket mode: octal, owner rw, nothing for others. */
static const char *value_socket_mode(const char *v, mode_t *out)
{
	char *end;
	unsigned long m;

	if (v[0] != '0')
		return "expected an octal mode such as 0660";
	m = strtoul(v, &end, 8);
	if (*end != '\0' || m > 0777)
		return "expected an octal mode such as 0660";
	if (m & 0007)
		return "must not grant access to others (use owner/group)";
	if ((m & 0600) != 0600)
		return "the owner needs read and write access (0600)";
	*out = (mode_t)m;
	return NULL;
}

static const char *g_ctl_mode(struct cfg *c, const char *v)
{
	return value_socket_mode(v, &c->ctl_mode);
}

static const char *g_ib_device(struct cfg *c, const char *v)
{
	return cfg_value_id(v, c->ib_device);
}

static const char *g_ib_port(struct cfg *c, const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, 255, &x);

	if (e)
		return e;
	if (x == 0)
		return "IB port numbers start at 1";
	c->ib_port = (uint8_t)x;
	return NULL;
}

static const char *g_gid_index(struct cfg *c, const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, 255, &x);

	if (e)
		return e;
	c->gid_index = (int)x;
	return NULL;
}

static const char *g_main_core(struct cfg *c, const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, CFG_CORE_MAX, &x);

	if (e)
		return e;
	c->main_core = (unsigned)x;
	return NULL;
}

static const char *g_poll_cores(struct cfg *c, const char *v)
{
	char buf[256];
	char *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return "list too long";
	strcpy(buf, v);
	c->n_poll_cores = 0;
	for (char *t = strtok_r(buf, ", \t", &save); t;
	     t = strtok_r(NULL, ", \t", &save)) {
		unsigned long long x;

		if (cfg_value_uint(t, CFG_CORE_MAX, &x))
			return "expected a comma-separated list of core numbers";
		if (c->n_poll_cores == CFG_POLL_CORES_MAX)
			return "too many poll cores (max 16)";
		for (unsigned i = 0; i < c->n_poll_cores; i++)
			if (c->poll_cores[i] == x)
				return "core listed twice";
		c->poll_cores[c->n_poll_cores++] = (unsigned)x;
	}
	if (c->n_poll_cores == 0)
		return "expected at least one core";
	return NULL;
}

static const char *g_poll_mode(struct cfg *c, const char *v)
{
	if (strcmp(v, "busy") == 0)
		c->poll_mode = CFG_POLL_BUSY;
	else if (strcmp(v, "adaptive") == 0)
		c->poll_mode = CFG_POLL_ADAPTIVE;
	else
		return "expected busy or adaptive";
	return NULL;
}

static const char *g_eal_memory_mb(struct cfg *c, const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, 65536, &x);

	if (e)
		return e;
	if (x < 16)
		return "at least 16 MB";
	c->eal_memory_mb = (unsigned)x;
	return NULL;
}

static const char *g_eal_args(struct cfg *c, const char *v)
{
	if (strlen(v) >= sizeof(c->eal_args))
		return "too long";
	strcpy(c->eal_args, v);
	return NULL;
}

static const char *g_fdb_aging_s(struct cfg *c, const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, 86400 * 365, &x);

	if (e)
		return e;
	c->fdb_aging_s = (unsigned)x;
	return NULL;
}

struct global_key {
	const char *name;
	const char *(*parse)(struct cfg *c, const char *v);
};

static const struct global_key global_keys[] = {
	{ "log_level", g_log_level },
	{ "control_socket", g_ctl_socket },
	{ "control_owner", g_ctl_owner },
	{ "control_group", g_ctl_group },
	{ "control_mode", g_ctl_mode },
	{ "ib_device", g_ib_device },
	{ "ib_port", g_ib_port },
	{ "gid_index", g_gid_index },
	{ "main_core", g_main_core },
	{ "poll_cores", g_poll_cores },
	{ "poll_mode", g_poll_mode },
	{ "eal_memory_mb", g_eal_memory_mb },
	{ "eal_args", g_eal_args },
	{ "fdb_aging_s", g_fdb_aging_s },
};

static const char *parse_mtu(const char *v, uint16_t *out)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, CFG_MTU_MAX, &x);

	if (e || x < CFG_MTU_MIN)
		return "expected an MTU between 68 and 9000";
	*out = (uint16_t)x;
	return NULL;
}

/* ---- segment keys -------------------------------------------------------- */

static const char *s_qkey(struct parse_state *st, struct cfg_segment *s,
			  const char *v)
{
	unsigned long long x;
	const char *e = cfg_value_uint(v, UINT32_MAX, &x);

	if (e)
		return e;
	/* Q_Keys with bit 31 set are "controlled": only privileged QPs
	 * may send with them (IBA 10.2.5). */
	if (x & 0x80000000ULL)
		return "Q_Key has bit 31 set (controlled Q_Key, not usable)";
	s->qkey = (uint32_t)x;
	st->seg_has_qkey[s - st->cfg->segments] = true;
	return NULL;
}

static const char *s_mtu(struct parse_state *st, struct cfg_segment *s,
			 const char *v)
{
	(void)st;
	s->has_mtu = true;
	return parse_mtu(v, &s->mtu);
}

static const char *s_mcast_gid(struct parse_state *st, struct cfg_segment *s,
			       const char *v)
{
	(void)st;
	if (cfg_parse_gid(v, s->mcast_gid) != 0)
		return "expected a GID in IPv6 notation, e.g. ff12:401b::1";
	if (s->mcast_gid[0] != 0xff)
		return "a multicast GID starts with ff";
	s->has_mcast_gid = true;
	return NULL;
}

struct segment_key {
	const char *name;
	const char *(*parse)(struct parse_state *st, struct cfg_segment *s,
			     const char *v);
};

static const struct segment_key segment_keys[] = {
	{ "qkey", s_qkey },
	{ "mcast_gid", s_mcast_gid },
	{ "mtu", s_mtu },
};

/* ---- port keys ----------------------------------------------------------- */

static const char *p_socket(struct parse_state *st, struct cfg_port *p,
			    const char *v)
{
	st->port_has_socket[p - st->cfg->ports] = true;
	return cfg_value_path(v, p->socket_path, sizeof(p->socket_path));
}

static const char *p_mode(struct parse_state *st, struct cfg_port *p,
			  const char *v)
{
	(void)st;
	if (strcmp(v, "server") == 0)
		p->mode = CFG_PORT_SERVER;
	else if (strcmp(v, "client") == 0)
		p->mode = CFG_PORT_CLIENT;
	else
		return "expected server or client";
	return NULL;
}

static const char *p_segment(struct parse_state *st, struct cfg_port *p,
			     const char *v)
{
	if (!cfg_value_name(v))
		return "expected a segment name";
	strcpy(p->segment, v);
	st->port_segment_line[p - st->cfg->ports] = st->line;
	return NULL;
}

static const char *p_mac(struct parse_state *st, struct cfg_port *p,
			 const char *v)
{
	(void)st;
	if (cfg_parse_mac(v, p->mac) != 0)
		return "expected a MAC address like 52:54:00:12:34:56";
	if (p->mac[0] & 1)
		return "a port MAC must be unicast (first octet even)";
	if (!(p->mac[0] | p->mac[1] | p->mac[2] | p->mac[3] | p->mac[4] |
	      p->mac[5]))
		return "the all-zero MAC is not a port address";
	p->has_mac = true;
	return NULL;
}

static const char *p_socket_mode(struct parse_state *st, struct cfg_port *p,
				 const char *v)
{
	(void)st;
	return value_socket_mode(v, &p->socket_mode);
}

static const char *p_socket_group(struct parse_state *st, struct cfg_port *p,
				  const char *v)
{
	(void)st;
	return cfg_value_id(v, p->socket_group);
}

static const char *p_mtu(struct parse_state *st, struct cfg_port *p,
			 const char *v)
{
	st->port_mtu_line[p - st->cfg->ports] = st->line;
	return parse_mtu(v, &p->mtu);
}

/* memory_max_mb = MB: the most guest memory one memory table may give
 * (registered, so pinned); 0 = this host's physical memory. */
static const char *p_memory_max_mb(struct parse_state *st,
				   struct cfg_port *p, const char *v)
{
	(void)st;
	return cfg_value_uint(v, 1ull << 30, &p->memory_max_mb);
}

/* fdb = MAC LID QPN [GID]: a static forwarding entry; may repeat. */
static const char *p_fdb(struct parse_state *st, struct cfg_port *p,
			 const char *v)
{
	char buf[256], *save = NULL, *tok[5];
	unsigned n = 0;
	unsigned long long x;
	struct cfg_fdb_entry e = { 0 };

	(void)st;
	if (strlen(v) >= sizeof(buf))
		return "too long";
	strcpy(buf, v);
	for (char *t = strtok_r(buf, " \t", &save); t && n < 5;
	     t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (n < 3 || n > 4)
		return "expected MAC LID QPN [GID]";
	if (cfg_parse_mac(tok[0], e.mac) != 0 || (e.mac[0] & 1))
		return "expected a unicast MAC as the first field";
	if (cfg_value_uint(tok[1], 0xffff, &x))
		return "expected a 16-bit LID as the second field";
	e.lid = (uint16_t)x;
	if (cfg_value_uint(tok[2], 0xffffff, &x))
		return "expected a 24-bit QPN as the third field";
	e.qpn = (uint32_t)x;
	if (n == 4) {
		if (cfg_parse_gid(tok[3], e.gid) != 0)
			return "expected a GID in IPv6 notation as the fourth field";
		e.has_gid = true;
	}
	if (e.lid == 0 && !e.has_gid)
		return "an entry needs a LID or a GID";
	for (unsigned i = 0; i < p->n_fdb; i++)
		if (memcmp(p->fdb[i].mac, e.mac, 6) == 0)
			return "MAC already has a static entry on this port";
	if (p->n_fdb == CFG_PORT_FDB_MAX)
		return "too many static entries (max 64 per port)";
	p->fdb[p->n_fdb++] = e;
	return NULL;
}

struct port_key {
	const char *name;
	bool repeatable;
	const char *(*parse)(struct parse_state *st, struct cfg_port *p,
			     const char *v);
};

static const struct port_key port_keys[] = {
	{ "socket", false, p_socket },
	{ "mode", false, p_mode },
	{ "segment", false, p_segment },
	{ "mac", false, p_mac },
	{ "mtu", false, p_mtu },
	{ "memory_max_mb", false, p_memory_max_mb },
	{ "fdb", true, p_fdb },
	{ "socket_mode", false, p_socket_mode },
	{ "socket_group", false, p_socket_group },
};

/* ---- sections ------------------------------------------------------------ */

static void begin_section(struct parse_state *st, const char *hdr)
{
	char kind[16], name[64], extra[2];
	int n;

	st->seen = 0;
	n = sscanf(hdr, "%15s %63s %1s", kind, name, extra);
	if (n == 1 && strcmp(kind, "global") == 0) {
		st->kind = SEC_GLOBAL;
		st->obj = NULL;
		return;
	}
	if (n < 1 || (strcmp(kind, "segment") != 0 && strcmp(kind, "port") != 0)) {
		fail(st, st->line,
		     "unknown section [%s] (expected [global], [segment NAME] or [port NAME])",
		     hdr);
		return;
	}
	if (n != 2 || !cfg_value_name(name)) {
		fail(st, st->line,
		     "[%s] needs one name of letters, digits, '-', '_', '.' (max %d)",
		     kind, CFG_NAME_MAX - 1);
		return;
	}
	if (strcmp(kind, "segment") == 0) {
		if (cfg_find_segment(st->cfg, name)) {
			fail(st, st->line, "segment %s defined twice (first at line %u)",
			     name, cfg_find_segment(st->cfg, name)->line);
			return;
		}
		if (st->cfg->n_segments == CFG_SEGMENTS_MAX) {
			fail(st, st->line, "too many segments (max %d)", CFG_SEGMENTS_MAX);
			return;
		}
		struct cfg_segment *s = &st->cfg->segments[st->cfg->n_segments++];
		strcpy(s->name, name);
		s->mtu = CFG_SEGMENT_MTU_DEFAULT;
		s->line = st->line;
		st->kind = SEC_SEGMENT;
		st->obj = s;
	} else {
		if (cfg_find_port(st->cfg, name)) {
			fail(st, st->line, "port %s defined twice (first at line %u)",
			     name, cfg_find_port(st->cfg, name)->line);
			return;
		}
		if (st->cfg->n_ports == CFG_PORTS_MAX) {
			fail(st, st->line, "too many ports (max %d)", CFG_PORTS_MAX);
			return;
		}
		struct cfg_port *p = &st->cfg->ports[st->cfg->n_ports++];
		strcpy(p->name, name);
		p->mode = CFG_PORT_SERVER;
		p->socket_mode = CFG_DEFAULT_SOCKET_MODE;
		p->line = st->line;
		st->kind = SEC_PORT;
		st->obj = p;
	}
}

/* Line reader handed to inih: counts lines, catches what inih would
 * silently split or accept, and announces section headers. */
static char *reader(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	char raw[1024];

	if (st->failed)
		return NULL;
	if (!fgets(raw, sizeof(raw), st->in))
		return NULL;
	st->line++;
	size_t len = strlen(raw);
	bool complete = len > 0 && raw[len - 1] == '\n';
	if (!complete && !feof(st->in)) {
		fail(st, st->line, "line longer than %d characters", num - 2);
		return NULL;
	}
	if (complete)
		raw[--len] = '\0';
	if (len > (size_t)num - 2) {
		fail(st, st->line, "line longer than %d characters", num - 2);
		return NULL;
	}

	const char *t = raw;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t == '[') {
		const char *close = strchr(t, ']');
		if (!close) {
			fail(st, st->line, "section header without ']'");
			return NULL;
		}
		char hdr[128];
		size_t hl = (size_t)(close - t - 1);
		if (hl >= sizeof(hdr))
			hl = sizeof(hdr) - 1;
		memcpy(hdr, t + 1, hl);
		hdr[hl] = '\0';
		begin_section(st, hdr);
	} else if (t != raw && *t && *t != ';' && *t != '#') {
		/* inih would take an indented line as the continuation of the
		 * previous value; we want one value per line. */
		fail(st, st->line, "indented line: write each 'key = value' on its own line without leading blanks");
		return NULL;
	}
	memcpy(str, raw, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse_state *st = user;
	const char *e = NULL;
	int idx = -1;

	(void)section; /* the reader already tracks sections */
	if (st->failed)
		return 0;
	switch (st->kind) {
	case SEC_GLOBAL:
		for (size_t i = 0; i < sizeof(global_keys) / sizeof(global_keys[0]); i++)
			if (strcmp(name, global_keys[i].name) == 0)
				idx = (int)i;
		if (idx < 0)
			break;
		if (st->global_seen & (1ULL << idx)) {
			fail(st, st->line, "%s set twice", name);
			return 0;
		}
		st->global_seen |= 1ULL << idx;
		e = global_keys[idx].parse(st->cfg, value);
		break;
	case SEC_SEGMENT:
		for (size_t i = 0; i < sizeof(segment_keys) / sizeof(segment_keys[0]); i++)
			if (strcmp(name, segment_keys[i].name) == 0)
				idx = (int)i;
		if (idx < 0)
			break;
		if (st->seen & (1ULL << idx)) {
			fail(st, st->line, "%s set twice", name);
			return 0;
		}
		st->seen |= 1ULL << idx;
		e = segment_keys[idx].parse(st, st->obj, value);
		break;
	case SEC_PORT:
		for (size_t i = 0; i < sizeof(port_keys) / sizeof(port_keys[0]); i++)
			if (strcmp(name, port_keys[i].name) == 0)
				idx = (int)i;
		if (idx < 0)
			break;
		if (!port_keys[idx].repeatable && (st->seen & (1ULL << idx))) {
			fail(st, st->line, "%s set twice", name);
			return 0;
		}
		st->seen |= 1ULL << idx;
		e = port_keys[idx].parse(st, st->obj, value);
		break;
	}
	if (idx < 0) {
		static const char *const where[] = { "the global section",
						     "a [segment]", "a [port]" };
		fail(st, st->line, "unknown key '%s' in %s", name, where[st->kind]);
		return 0;
	}
	if (e) {
		fail(st, st->line, "%s = %s: %s", name, value, e);
		return 0;
	}
	return 1;
}

/* Checks that need the whole file. */
static void validate(struct parse_state *st)
{
	struct cfg *c = st->cfg;

	for (unsigned i = 0; i < c->n_segments && !st->failed; i++) {
		const struct cfg_segment *s = &c->segments[i];

		if (!st->seg_has_qkey[i])
			fail(st, s->line, "segment %s has no qkey", s->name);
		for (unsigned j = 0; j < i && !st->failed; j++)
			if (c->segments[j].qkey == s->qkey)
				fail(st, s->line,
				     "segment %s uses the same qkey as segment %s (line %u): their frames would mix",
				     s->name, c->segments[j].name, c->segments[j].line);
	}
	for (unsigned i = 0; i < c->n_ports && !st->failed; i++) {
		const struct cfg_port *p = &c->ports[i];

		if (!st->port_has_socket[i]) {
			fail(st, p->line, "port %s has no socket", p->name);
			break;
		}
		if (p->segment[0] == '\0') {
			fail(st, p->line, "port %s has no segment", p->name);
			break;
		}
		if (!cfg_find_segment(c, p->segment)) {
			fail(st, st->port_segment_line[i],
			     "port %s: segment %s is not defined", p->name,
			     p->segment);
			break;
		}
		const struct cfg_segment *seg = cfg_find_segment(c, p->segment);

		if (p->mtu > seg->mtu) {
			fail(st, st->port_mtu_line[i],
			     "port %s: mtu %u is above segment %s's mtu %u (a port may only lower it)",
			     p->name, p->mtu, seg->name, seg->mtu);
			break;
		}
		if (strcmp(p->socket_path, c->ctl_socket) == 0) {
			fail(st, p->line, "port %s: socket is the control socket",
			     p->name);
			break;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(c->ports[j].socket_path, p->socket_path) == 0) {
				fail(st, p->line,
				     "port %s: socket %s already used by port %s (line %u)",
				     p->name, p->socket_path, c->ports[j].name,
				     c->ports[j].line);
				break;
			}
	}
	for (unsigned i = 0; i < c->n_poll_cores && !st->failed; i++)
		if (c->poll_cores[i] == c->main_core)
			fail(st, 1,
			     "poll core %u is also the main core: a polling core must be dedicated",
			     c->main_core);
}

static void set_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOGL_INFO;
	strcpy(c->ctl_socket, CFG_DEFAULT_CTL_SOCKET);
	c->ctl_mode = CFG_DEFAULT_CTL_MODE;
	c->ib_port = CFG_DEFAULT_IB_PORT;
	c->main_core = 0;
	c->poll_mode = CFG_POLL_BUSY;
	c->eal_memory_mb = CFG_DEFAULT_EAL_MEMORY_MB;
	c->fdb_aging_s = CFG_DEFAULT_FDB_AGING_S;
}

static int parse_stream(FILE *in, const char *name, struct cfg **out,
			char *err, size_t errlen)
{
	struct parse_state *st = calloc(1, sizeof(*st));
	struct cfg *c = calloc(1, sizeof(*c));
	int rc = -1;

	if (!st || !c) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	set_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", name);
	st->cfg = c;
	st->file = name;
	st->in = in;
	st->err = err;
	st->errlen = errlen;
	st->kind = SEC_GLOBAL;

	int r = ini_parse_stream(reader, st, handler, st);
	if (r > 0 && (!st->failed || (unsigned)r < st->err_line)) {
		st->failed = false;
		fail(st, (unsigned)r, "syntax error: expected '[section]' or 'key = value'");
	} else if (r < 0 && !st->failed) {
		fail(st, 0, "cannot parse (inih error %d)", r);
	}
	if (!st->failed && ferror(in))
		fail(st, st->line, "read error: %s", strerror(errno));
	if (!st->failed)
		validate(st);
	if (st->failed)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	free(c);
	free(st);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	int rc = parse_stream(f, path, out, err, errlen);
	fclose(f);
	return rc;
}

int cfg_parse_string(const char *text, const char *name, struct cfg **out,
		     char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)(uintptr_t)text, strlen(text), "r");

	if (!f) {
		snprintf(err, errlen, "%s: fmemopen: %s", name, strerror(errno));
		return -1;
	}
	int rc = parse_stream(f, name, out, err, errlen);
	fclose(f);
	return rc;
}

void cfg_free(struct cfg *cfg)
{
	free(cfg);
}

