/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* One JSON object per run, printed field by field on stdout. */
#include "vhu.h"

#include <stdio.h>

static bool json_first = true;

void vj_key(const char *k)
{
	printf("%s\"%s\":", json_first ? "{" : ",", k);
	json_first = false;
}
void vj_u64(const char *k, uint64_t v) { vj_key(k); printf("%llu", (unsigned long long)v); }
void vj_hex(const char *k, uint64_t v) { vj_key(k); printf("\"0x%llx\"", (unsigned long long)v); }
void vj_dbl(const char *k, double v) { vj_key(k); printf("%.3f", v); }
void vj_bool(const char *k, bool v) { vj_key(k); printf(v ? "true" : "false"); }
void vj_str(const char *k, const char *v)
{
	vj_key(k);
	if (!v) {
		printf("null");
		return;
	}
	putchar('"');
	for (; *v; v++)
		if (*v == '"' || *v == '\\')
			printf("\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			printf("\\u%04x", *v);
		else
			putchar(*v);
	putchar('"');
}
void vj_end(void)
{
	printf("}\n");
	fflush(stdout);
	json_first = true;
}

