/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* libFuzzer harness for the configuration parser: the input is a whole
 * config file handed to cfg_parse_string(). A parse either fails with a
 * "NAME:LINE: ..." message or yields a cfg whose invariants hold (ports
 * name existing segments, strings terminated, counts within bounds). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ibvhost/config.h"
#include "ibvhost/log.h"

#define FUZZ_CFG_MAX (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct cfg *cfg = NULL;
	char err[512];

	if (!ready) {
		log_set_level(LOGL_ERR);
		ready = 1;
	}
	if (size > FUZZ_CFG_MAX)
		size = FUZZ_CFG_MAX;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	int rc = cfg_parse_string(text, "fuzz.conf", &cfg, err, sizeof(err));
	free(text);
	if (rc != 0) {
		if (cfg || strncmp(err, "fuzz.conf", 9) != 0)
			abort();
		return 0;
	}
	if (!cfg || cfg->n_ports > CFG_PORTS_MAX ||
	    cfg->n_segments > CFG_SEGMENTS_MAX ||
	    cfg->n_poll_cores > CFG_POLL_CORES_MAX)
		abort();
	for (unsigned i = 0; i < cfg->n_ports; i++) {
		const struct cfg_port *p = &cfg->ports[i];
		if (strnlen(p->name, CFG_NAME_MAX) == CFG_NAME_MAX ||
		    strnlen(p->socket_path, CFG_SOCKET_PATH_MAX) == CFG_SOCKET_PATH_MAX ||
		    !cfg_find_segment(cfg, p->segment) ||
		    cfg_find_port(cfg, p->name) != p)
			abort();
	}
	cfg_free(cfg);
	return 0;
}
