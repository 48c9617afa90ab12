/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * faults.c — fault injection. Settings come from IBEMU_FAULTS (this
 * process, at open) and from the fabric's control file
 * /dev/shm/ibemu-<fabric>.faults (every process, re-read within 100 ms of
 * a change; its mtime is checked from the maintenance tick, never per
 * message). Syntax: "key=value" separated by commas, spaces or newlines:
 *   drop_pct=N        drop N % of messages (counted as drop_fault)
 *   qp_error_after=N  a QP's send after its N-th moves it to error
 *   reg_mr_max=N      ibv_reg_mr of more than N bytes fails with ENOMEM
 *   latency_us=N      messages become visible N µs after they were sent
 *   lid=N             apply only on the node with this LID
 * An empty or missing file restores the environment's settings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ibemu_int.h"

struct ibemu_faults ibemu_faults_now;
_Atomic int ibemu_faults_active;
static struct ibemu_faults env_faults;
static struct timespec file_mtime;
static bool file_seen;

static int parse(const char *text, struct ibemu_faults *f)
{
	char buf[1024], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	for (char *tok = strtok_r(buf, ", \t\n", &save); tok;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		char *eq = strchr(tok, '=');
		if (tok[0] == '#')
			break;
		if (!eq)
			return -1;
		*eq = '\0';
		unsigned long long v = strtoull(eq + 1, NULL, 0);
		if (!strcmp(tok, "drop_pct") && v <= 100)
			f->drop_pct = (uint32_t)v;
		else if (!strcmp(tok, "qp_error_after"))
			f->qp_error_after = v;
		else if (!strcmp(tok, "reg_mr_max"))
			f->reg_mr_max = v;
		else if (!strcmp(tok, "latency_us") && v <= 10000000)
			f->latency_us = (uint32_t)v;
		else if (!strcmp(tok, "lid") && v < 0xC000)
			f->only_lid = (uint16_t)v;
		else
			return -1;
	}
	return 0;
}

static void apply(const struct ibemu_faults *f)
{
	bool mine = !f->only_lid || (ibemu_g.me && ibemu_g.me->lid == f->only_lid);

	ibemu_faults_now = *f;
	atomic_store(&ibemu_faults_active,
		     mine && (f->drop_pct || f->qp_error_after || f->reg_mr_max ||
			      f->latency_us));
}

void ibemu_faults_init(void)
{
	const char *e = getenv("IBEMU_FAULTS");

	memset(&env_faults, 0, sizeof(env_faults));
	if (e && parse(e, &env_faults))
		fprintf(stderr, "ibemu: ignoring bad IBEMU_FAULTS='%s'\n", e);
	apply(&env_faults);
	file_seen = false;
	ibemu_faults_tick();
}

void ibemu_faults_tick(void)
{
	char path[256], text[1024];
	struct stat st;

	if (!ibemu_g.fab)
		return;
	snprintf(path, sizeof(path), "%s/ibemu-%s.faults", ibemu_g.shm_dir,
		 ibemu_g.fabric);
	if (stat(path, &st) < 0) {
		if (file_seen) {
			file_seen = false;
			apply(&env_faults);
		}
		return;
	}
	if (file_seen && st.st_mtim.tv_sec == file_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == file_mtime.tv_nsec)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	file_seen = true;
	file_mtime = st.st_mtim;
	text[n > 0 ? n : 0] = '\0';
	struct ibemu_faults f = env_faults;
	if (parse(text, &f)) {
		fprintf(stderr, "ibemu: ignoring bad fault file %s\n", path);
		return;
	}
	apply(&f);
}

bool ibemu_fault_drop(void)
{
	static _Thread_local uint64_t x = 88172645463325252ull;

	if (!ibemu_faults_now.drop_pct)
		return false;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x % 100 < ibemu_faults_now.drop_pct;
}
