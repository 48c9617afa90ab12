/* Hostile frontend behaviours, one table row per case. */
#include "vhu.h"

#include <stdio.h>
#include <string.h>

void vhu_hostile_list(void)
{
}

int vhu_hostile_run(const struct vhu_opts *o, const char *name)
{
	(void)o;
	fprintf(stderr, "vhu-frontend: unknown hostile case %s\n", name);
	return 2;
}
