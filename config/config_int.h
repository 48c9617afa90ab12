/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * config_int: helpers shared by the files of the config module only.
 * Each returns NULL on success or a description of what is wrong.
 */
#ifndef IBVHOST_CONFIG_INT_H
#define IBVHOST_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

const char *cfg_value_uint(const char *v, unsigned long long max,
			   unsigned long long *out);
const char *cfg_value_path(const char *v, char *out, size_t outlen);
const char *cfg_value_id(const char *v, char *out);
/* Section names: letters, digits, '-', '_', '.'; shorter than CFG_NAME_MAX. */
bool cfg_value_name(const char *s);

#endif
