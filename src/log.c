/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* log: see include/ibvhost/log.h. */
#include "ibvhost/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level_cur = LOGL_INFO;
static bool log_journal;

static const char *const log_names[] = {
	[LOGL_ERR] = "err",
	[LOGL_WARN] = "warning",
	[LOGL_NOTICE] = "notice",
	[LOGL_INFO] = "info",
	[LOGL_DEBUG] = "debug",
};

void log_init(void)
{
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal;
	 * then the journal adds its own time stamps and parses "<N>". */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level_cur);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level_cur);
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int l = LOGL_ERR; l <= LOGL_DEBUG; l++) {
		if (strcmp(name, log_names[l]) == 0) {
			*out = (enum log_level)l;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if (level < LOGL_ERR || level > LOGL_DEBUG)
		return "?";
	return log_names[level];
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n = 0;

	if (!log_enabled(level))
		return;
	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: ",
				      ts.tv_nsec / 1000000L,
				      log_level_name(level));
	}
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	/* Messages that already end in a newline (DPDK's) get no second one. */
	if (n == 0 || line[n - 1] != '\n')
		line[n++] = '\n';
	/* One write per line: lines from the vhost thread never interleave
	 * with the main thread's inside a line. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
