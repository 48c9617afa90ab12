/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * providers.c — libibverbs' private interface to its providers
 * (IBVERBS_PRIVATE_34), so that programs linked directly against provider
 * libraries load. Debian's verbs tools (perftest's ib_send_bw and friends)
 * link libmlx5.so.1 and libefa.so.1 for their direct-verbs extensions;
 * those reference these symbols, and with the whole program bound at
 * load (-z now), one missing symbol kills it before main().
 *
 * ibemu drives its devices itself, with no provider: a provider library
 * that registers its driver at load is ignored (so it never sees an ibemu
 * device), and every other call is refused cleanly (errno-style
 * EOPNOTSUPP, NULL with errno, or nothing), with one line on stderr per
 * symbol and process. The set is every IBVERBS_PRIVATE_34 symbol of
 * rdma-core 44's libibverbs, not only what today's providers use.
 * ibv_query_gid_type (also private, used by ibv_devinfo) is real:
 * verbs_dev.c.
 *
 * The stubs are declared without parameters: with the SysV calling
 * convention the caller's arguments are simply not read.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "ibemu_int.h"

static void refused(const char *name, _Atomic int *warned)
{
	if (!atomic_exchange(warned, 1))
		fprintf(stderr, "ibemu: %s (libibverbs' private interface to "
			"provider libraries) refused: ibemu devices have no "
			"provider\n", name);
}

/* returns an errno-style int */
#define PRIV_I(name)                                                           \
	IBEMU_EXPORT int name(void);                                           \
	IBEMU_EXPORT int name(void)                                            \
	{                                                                      \
		static _Atomic int warned;                                     \
		refused(#name, &warned);                                       \
		errno = EOPNOTSUPP;                                            \
		return EOPNOTSUPP;                                             \
	}
/* returns -1 with errno */
#define PRIV_M(name)                                                           \
	IBEMU_EXPORT int name(void);                                           \
	IBEMU_EXPORT int name(void)                                            \
	{                                                                      \
		static _Atomic int warned;                                     \
		refused(#name, &warned);                                       \
		errno = EOPNOTSUPP;                                            \
		return -1;                                                     \
	}
/* returns a pointer: NULL, errno EOPNOTSUPP */
#define PRIV_P(name)                                                           \
	IBEMU_EXPORT void *name(void);                                         \
	IBEMU_EXPORT void *name(void)                                          \
	{                                                                      \
		static _Atomic int warned;                                     \
		refused(#name, &warned);                                       \
		errno = EOPNOTSUPP;                                            \
		return NULL;                                                   \
	}
#define PRIV_V(name)                                                           \
	IBEMU_EXPORT void name(void);                                          \
	IBEMU_EXPORT void name(void)                                           \
	{                                                                      \
		static _Atomic int warned;                                     \
		refused(#name, &warned);                                       \
	}

/*
 * Called by every provider library's constructor when it is loaded. The
 * real libibverbs adds the driver to its list for matching sysfs devices;
 * ibemu's devices are not sysfs devices and need no driver: nothing to do,
 * and nothing to say (loading a provider is not an error).
 */
IBEMU_EXPORT void verbs_register_driver_34(const void *ops);
IBEMU_EXPORT void verbs_register_driver_34(const void *ops)
{
	(void)ops;
}

/* A provider's debug log, to the verbs context's log file: dropped. */
IBEMU_EXPORT void __verbs_log(void *ctx, const char *fmt, ...);
IBEMU_EXPORT void __verbs_log(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

/* Read by providers (destroy calls after a device disassociation). */
IBEMU_EXPORT bool verbs_allow_disassociate_destroy;

/* The attribute count of an ioctl command buffer chain: only used to build
 * the command that execute_ioctl() then refuses. */
IBEMU_EXPORT unsigned int __ioctl_final_num_attrs(unsigned int num_attrs,
						   const void *link);
IBEMU_EXPORT unsigned int __ioctl_final_num_attrs(unsigned int num_attrs,
						   const void *link)
{
	(void)link;
	return num_attrs;
}

PRIV_P(_verbs_init_and_alloc_context)
PRIV_P(verbs_open_device)
PRIV_V(verbs_set_ops)
PRIV_V(verbs_uninit_context)
PRIV_I(verbs_init_cq)
PRIV_I(execute_ioctl)
PRIV_M(ibv_read_ibdev_sysfs_file)

PRIV_I(ibv_cmd_advise_mr)
PRIV_I(ibv_cmd_alloc_dm)
PRIV_I(ibv_cmd_alloc_mw)
PRIV_I(ibv_cmd_alloc_pd)
PRIV_I(ibv_cmd_attach_mcast)
PRIV_I(ibv_cmd_close_xrcd)
PRIV_I(ibv_cmd_create_ah)
PRIV_I(ibv_cmd_create_counters)
PRIV_I(ibv_cmd_create_cq)
PRIV_I(ibv_cmd_create_cq_ex)
PRIV_I(ibv_cmd_create_flow)
PRIV_I(ibv_cmd_create_flow_action_esp)
PRIV_I(ibv_cmd_create_qp)
PRIV_I(ibv_cmd_create_qp_ex)
PRIV_I(ibv_cmd_create_qp_ex2)
PRIV_I(ibv_cmd_create_rwq_ind_table)
PRIV_I(ibv_cmd_create_srq)
PRIV_I(ibv_cmd_create_srq_ex)
PRIV_I(ibv_cmd_create_wq)
PRIV_I(ibv_cmd_dealloc_mw)
PRIV_I(ibv_cmd_dealloc_pd)
PRIV_I(ibv_cmd_dereg_mr)
PRIV_I(ibv_cmd_destroy_ah)
PRIV_I(ibv_cmd_destroy_counters)
PRIV_I(ibv_cmd_destroy_cq)
PRIV_I(ibv_cmd_destroy_flow)
PRIV_I(ibv_cmd_destroy_flow_action)
PRIV_I(ibv_cmd_destroy_qp)
PRIV_I(ibv_cmd_destroy_rwq_ind_table)
PRIV_I(ibv_cmd_destroy_srq)
PRIV_I(ibv_cmd_destroy_wq)
PRIV_I(ibv_cmd_detach_mcast)
PRIV_I(ibv_cmd_free_dm)
PRIV_I(ibv_cmd_get_context)
PRIV_I(ibv_cmd_modify_cq)
PRIV_I(ibv_cmd_modify_flow_action_esp)
PRIV_I(ibv_cmd_modify_qp)
PRIV_I(ibv_cmd_modify_qp_ex)
PRIV_I(ibv_cmd_modify_srq)
PRIV_I(ibv_cmd_modify_wq)
PRIV_I(ibv_cmd_open_qp)
PRIV_I(ibv_cmd_open_xrcd)
PRIV_I(ibv_cmd_poll_cq)
PRIV_I(ibv_cmd_post_recv)
PRIV_I(ibv_cmd_post_send)
PRIV_I(ibv_cmd_post_srq_recv)
PRIV_I(ibv_cmd_query_context)
PRIV_I(ibv_cmd_query_device_any)
PRIV_I(ibv_cmd_query_mr)
PRIV_I(ibv_cmd_query_port)
PRIV_I(ibv_cmd_query_qp)
PRIV_I(ibv_cmd_query_srq)
PRIV_I(ibv_cmd_read_counters)
PRIV_I(ibv_cmd_reg_dm_mr)
PRIV_I(ibv_cmd_reg_dmabuf_mr)
PRIV_I(ibv_cmd_reg_mr)
PRIV_I(ibv_cmd_req_notify_cq)
PRIV_I(ibv_cmd_rereg_mr)
PRIV_I(ibv_cmd_resize_cq)
