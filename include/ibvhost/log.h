/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * log: the daemon's one logging sink.
 *
 * Owns the log level and the formatting of every line written to stderr.
 * Under systemd (JOURNAL_STREAM set) lines carry a "<N>" syslog priority
 * prefix so the journal keeps the levels; otherwise they carry a time stamp
 * and a level name. Safe to call from any thread: each line is emitted with
 * a single write(2). Not for the per-frame path.
 */
#ifndef IBVHOST_LOG_H
#define IBVHOST_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* Values are syslog priorities so the journal prefix is the level itself. */
enum log_level {
	LOGL_ERR = 3,
	LOGL_WARN = 4,
	LOGL_NOTICE = 5,
	LOGL_INFO = 6,
	LOGL_DEBUG = 7,
};

/* Decide the output format (journal prefix or time stamp) from the
 * environment. Call once at start; logging works before it too. */
void log_init(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* The level names, most to least severe, as the config file and the
 * set-log-level control command take them. */
#define LOG_LEVEL_CHOICES "err|warning|notice|info|debug"

/* "err", "warning", "notice", "info", "debug" <-> level. 0 on success. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_err(...) log_msg(LOGL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOGL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

#endif
