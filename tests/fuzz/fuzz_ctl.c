/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* libFuzzer harness for the control protocol: the input is one request
 * line handed to ctl_handle_request(), as the control socket does after
 * framing. A small port table (from a fixed config) gives the show-port
 * paths something to find. Every call must return a reply that is one
 * JSON object with "ok"; ASan/UBSan catch the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ibvhost/config.h"
#include "ibvhost/ctl.h"
#include "ibvhost/log.h"
#include "ibvhost/port.h"

static const char fuzz_ctl_config[] =
	"control_socket = /tmp/fuzz-ctl.sock\n"
	"[segment blue]\nqkey = 0x11110001\n"
	"[port vm1]\nsocket = /tmp/fuzz-vm1.sock\nsegment = blue\n"
	"mac = 52:54:00:00:00:01\n"
	"[port vm2]\nsocket = /tmp/fuzz-vm2.sock\nsegment = blue\nmode = client\n";

static void fuzz_ctl_init(void)
{
	struct cfg *cfg = NULL;
	char err[256];

	log_set_level(LOGL_ERR);
	if (cfg_parse_string(fuzz_ctl_config, "fuzz", &cfg, err, sizeof(err)) != 0)
		abort();
	for (unsigned i = 0; i < cfg->n_ports; i++)
		if (!port_add(cfg, &cfg->ports[i]))
			abort();
	cfg_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	json_error_t jerr;

	if (!ready) {
		fuzz_ctl_init();
		ready = 1;
	}
	/* The server hands over at most CTL_REQUEST_MAX bytes, not NUL
	 * terminated: an exactly-sized copy lets ASan see overreads. */
	if (size > CTL_REQUEST_MAX + 1)
		size = CTL_REQUEST_MAX + 1;
	char *line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	char *reply = ctl_handle_request(line, size);
	free(line);
	if (!reply)
		abort();
	json_t *j = json_loads(reply, 0, &jerr);
	if (!j || !json_is_object(j) || !json_is_boolean(json_object_get(j, "ok")))
		abort();
	json_decref(j);
	free(reply);
	return 0;
}
