/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * config_util: value parsing helpers and queries on a parsed config; see
 * include/ibvhost/config.h and config/config_int.h.
 */
#include "ibvhost/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* ---- value parsers: return NULL on success or a description ---------- */

const char *cfg_value_uint(const char *v, unsigned long long max,
			      unsigned long long *out)
{
	char *end;

	if (*v == '\0' || *v == '-' || isspace((unsigned char)*v))
		return "expected a non-negative integer";
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno == ERANGE || x > max)
		return "number out of range";
	if (*end != '\0')
		return "expected a non-negative integer";
	*out = x;
	return NULL;
}

bool cfg_value_name(const char *s)
{
	if (*s == '\0' || strlen(s) >= CFG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    *s != '.')
			return false;
	return true;
}

int cfg_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[i * 3]) ||
		    !isxdigit((unsigned char)s[i * 3 + 1]))
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

void cfg_format_mac(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
}

int cfg_parse_gid(const char *s, uint8_t gid[16])
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, s, &a) != 1)
		return -1;
	memcpy(gid, &a, 16);
	return 0;
}

const char *cfg_value_path(const char *v, char *out, size_t outlen)
{
	if (v[0] != '/')
		return "expected an absolute path";
	if (strlen(v) >= outlen)
		return "path too long for a UNIX socket (max 107 bytes)";
	strcpy(out, v);
	return NULL;
}

const char *cfg_value_id(const char *v, char *out)
{
	if (strlen(v) >= CFG_ID_MAX)
		return "too long (max 63 characters)";
	strcpy(out, v);
	return NULL;
}

const struct cfg_segment *cfg_find_segment(const struct cfg *cfg,
					   const char *name)
{
	for (unsigned i = 0; i < cfg->n_segments; i++)
		if (strcmp(cfg->segments[i].name, name) == 0)
			return &cfg->segments[i];
	return NULL;
}

const struct cfg_port *cfg_find_port(const struct cfg *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->n_ports; i++)
		if (strcmp(cfg->ports[i].name, name) == 0)
			return &cfg->ports[i];
	return NULL;
}

static bool segment_equal(const struct cfg_segment *a,
			  const struct cfg_segment *b)
{
	return strcmp(a->name, b->name) == 0 && a->qkey == b->qkey &&
	       a->mtu == b->mtu && a->has_mtu == b->has_mtu &&
	       a->has_mcast_gid == b->has_mcast_gid &&
	       (!a->has_mcast_gid || memcmp(a->mcast_gid, b->mcast_gid, 16) == 0);
}

/* Field by field: struct padding is not guaranteed to compare equal. */
static bool fdb_entry_equal(const struct cfg_fdb_entry *a,
			    const struct cfg_fdb_entry *b)
{
	return memcmp(a->mac, b->mac, 6) == 0 && a->lid == b->lid &&
	       a->qpn == b->qpn && a->has_gid == b->has_gid &&
	       (!a->has_gid || memcmp(a->gid, b->gid, 16) == 0);
}

bool cfg_port_unchanged(const struct cfg *a, const struct cfg_port *pa,
			const struct cfg *b, const struct cfg_port *pb)
{
	if (strcmp(pa->name, pb->name) || strcmp(pa->socket_path, pb->socket_path) ||
	    pa->mode != pb->mode || pa->has_mac != pb->has_mac ||
	    (pa->has_mac && memcmp(pa->mac, pb->mac, 6)) || pa->mtu != pb->mtu ||
	    pa->memory_max_mb != pb->memory_max_mb ||
	    pa->socket_mode != pb->socket_mode ||
	    strcmp(pa->socket_group, pb->socket_group) || pa->n_fdb != pb->n_fdb)
		return false;
	for (unsigned i = 0; i < pa->n_fdb; i++)
		if (!fdb_entry_equal(&pa->fdb[i], &pb->fdb[i]))
			return false;
	const struct cfg_segment *sa = cfg_find_segment(a, pa->segment);
	const struct cfg_segment *sb = cfg_find_segment(b, pb->segment);
	return sa && sb && segment_equal(sa, sb);
}

const char *cfg_port_mode_name(enum cfg_port_mode mode)
{
	return mode == CFG_PORT_CLIENT ? "client" : "server";
}

const char *cfg_poll_mode_name(enum cfg_poll_mode mode)
{
	return mode == CFG_POLL_ADAPTIVE ? "adaptive" : "busy";
}
