/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * compat.c — the IBVERBS_1.0 symbols rdma-core still carries for binaries
 * built against libibverbs 1.0 (2006), whose structures had another
 * layout. ibemu does not emulate that ABI: such a binary finds no device
 * and is told why, instead of running on misread structures.
 */
#include <errno.h>
#include <stdio.h>

#include "ibemu_int.h"

#define COMPAT_10(name) __asm__(".symver ibemu_compat_" #name "," #name "@IBVERBS_1.0")

static void warn_once(void)
{
	static _Atomic int warned;

	if (!atomic_exchange(&warned, 1))
		fprintf(stderr, "ibemu: this program uses the IBVERBS_1.0 ABI of "
			"libibverbs < 1.1, which ibemu does not provide\n");
}

/* returns a pointer: NULL, errno EOPNOTSUPP */
#define STUB_P(name)                                                           \
	COMPAT_10(name);                                                       \
	IBEMU_EXPORT void *ibemu_compat_##name(void);                          \
	IBEMU_EXPORT void *ibemu_compat_##name(void)                           \
	{                                                                      \
		warn_once();                                                   \
		errno = EOPNOTSUPP;                                            \
		return NULL;                                                   \
	}
/* returns an errno-style int */
#define STUB_I(name)                                                           \
	COMPAT_10(name);                                                       \
	IBEMU_EXPORT int ibemu_compat_##name(void);                            \
	IBEMU_EXPORT int ibemu_compat_##name(void)                             \
	{                                                                      \
		warn_once();                                                   \
		errno = EOPNOTSUPP;                                            \
		return EOPNOTSUPP;                                             \
	}
#define STUB_V(name)                                                           \
	COMPAT_10(name);                                                       \
	IBEMU_EXPORT void ibemu_compat_##name(void);                           \
	IBEMU_EXPORT void ibemu_compat_##name(void)                            \
	{                                                                      \
		warn_once();                                                   \
	}

STUB_P(ibv_get_device_list)
STUB_V(ibv_free_device_list)
STUB_P(ibv_get_device_name)
STUB_I(ibv_get_device_guid)
STUB_P(ibv_open_device)
STUB_I(ibv_close_device)
STUB_I(ibv_get_async_event)
STUB_V(ibv_ack_async_event)
STUB_I(ibv_query_device)
STUB_I(ibv_query_port)
STUB_I(ibv_query_gid)
STUB_I(ibv_query_pkey)
STUB_P(ibv_alloc_pd)
STUB_I(ibv_dealloc_pd)
STUB_P(ibv_reg_mr)
STUB_I(ibv_dereg_mr)
STUB_P(ibv_create_cq)
STUB_I(ibv_resize_cq)
STUB_I(ibv_destroy_cq)
STUB_I(ibv_get_cq_event)
STUB_V(ibv_ack_cq_events)
STUB_P(ibv_create_srq)
STUB_I(ibv_modify_srq)
STUB_I(ibv_query_srq)
STUB_I(ibv_destroy_srq)
STUB_P(ibv_create_qp)
STUB_I(ibv_query_qp)
STUB_I(ibv_modify_qp)
STUB_I(ibv_destroy_qp)
STUB_P(ibv_create_ah)
STUB_I(ibv_destroy_ah)
STUB_I(ibv_attach_mcast)
STUB_I(ibv_detach_mcast)
