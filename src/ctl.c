/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl: request parsing and dispatch; see include/ibvhost/ctl.h.
 *
 * All checks on a request happen here, once: JSON syntax, shape, command
 * name, argument count and size. Handlers receive plain C strings.
 */
#include "ibvhost/ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *reply_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The message may quote the request (jansson's parse error text):
	 * keep it printable ASCII, or json_pack refuses invalid UTF-8 and
	 * the client would get no proper error. */
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	if (!r)
		return NULL;
	char *s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}

static char *reply_ok(json_t *result)
{
	/* "o" steals the reference to result. */
	json_t *r = json_pack("{s:b, s:o}", "ok", 1, "result", result);
	if (!r)
		return reply_error("cannot build the reply");
	char *s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < ctl_n_commands; i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

char *ctl_handle_request(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = NULL;
	const char *argv[CTL_ARGS_MAX];
	unsigned argc = 0;
	char *reply = NULL;

	if (len > CTL_REQUEST_MAX)
		return reply_error("request too long (max %d bytes)", CTL_REQUEST_MAX);
	if (memchr(line, '\0', len))
		return reply_error("request contains a NUL byte");
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return reply_error("malformed JSON at column %d: %s", jerr.column, jerr.text);
	if (!json_is_object(req)) {
		reply = reply_error("request must be a JSON object");
		goto out;
	}

	const char *key;
	json_t *val;
	json_object_foreach(req, key, val) {
		if (strcmp(key, "cmd") != 0 && strcmp(key, "args") != 0) {
			reply = reply_error("unknown member '%.64s' (expected cmd, args)", key);
			goto out;
		}
	}
	json_t *jcmd = json_object_get(req, "cmd");
	if (!json_is_string(jcmd)) {
		reply = reply_error("missing \"cmd\" string");
		goto out;
	}
	const char *name = json_string_value(jcmd);
	const struct ctl_command *cmd = find_command(name);
	if (!cmd) {
		reply = reply_error("unknown command '%.64s' (try list-commands)", name);
		goto out;
	}

	json_t *jargs = json_object_get(req, "args");
	if (jargs && !json_is_array(jargs)) {
		reply = reply_error("\"args\" must be an array of strings");
		goto out;
	}
	if (jargs && json_array_size(jargs) > CTL_ARGS_MAX) {
		reply = reply_error("too many arguments (max %d)", CTL_ARGS_MAX);
		goto out;
	}
	size_t i;
	json_array_foreach(jargs, i, val) {
		if (!json_is_string(val)) {
			reply = reply_error("argument %zu is not a string", i + 1);
			goto out;
		}
		if (json_string_length(val) > CTL_ARG_LEN_MAX ||
		    strlen(json_string_value(val)) != json_string_length(val)) {
			reply = reply_error("argument %zu too long or contains NUL", i + 1);
			goto out;
		}
		argv[argc++] = json_string_value(val);
	}
	if (argc < cmd->min_args || argc > cmd->max_args) {
		reply = reply_error("%s takes %s%s (got %u argument%s)", cmd->name,
				    cmd->usage[0] ? "arguments " : "no arguments",
				    cmd->usage, argc, argc == 1 ? "" : "s");
		goto out;
	}

	json_t *result = NULL;
	char err[256] = "";
	if (cmd->handler(argc, argv, &result, err, sizeof(err)) != 0) {
		reply = reply_error("%s", err[0] ? err : "command failed");
		goto out;
	}
	reply = reply_ok(result ? result : json_null());
out:
	json_decref(req);
	return reply;
}
