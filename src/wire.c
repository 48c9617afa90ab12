/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Wire header build and parse. See include/ibvhost/wire.h. */
#include <string.h>

#include "ibvhost/wire.h"

static const char *const wire_err_names[WIRE_ERR__COUNT] = {
	[WIRE_OK] = "ok",
	[WIRE_ERR_SHORT] = "short",
	[WIRE_ERR_VERSION] = "version",
	[WIRE_ERR_FLAGS] = "flags",
	[WIRE_ERR_CSUM] = "csum",
	[WIRE_ERR_RESERVED] = "reserved",
};

const char *wire_strerror(enum wire_err err)
{
	if ((unsigned)err >= WIRE_ERR__COUNT)
		return "unknown";
	return wire_err_names[err];
}
