/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* fdb — a port's forwarding database: Ethernet MAC → IB address.
 *
 * Owns: the entries (LID, GID, QPN, the caller's address-handle cookie,
 * last-seen time, static flag), learning from received frames, lookup for
 * transmitted frames, aging, eviction when full, and counters.
 *
 * Independent of DPDK and verbs: the address handle is an opaque cookie
 * the caller creates and destroys; the FDB only tells it when (learn
 * result, stale_ah, the release callback).
 *
 * Time is whatever monotonic unit the caller uses (seconds or ns), the
 * same for `now` and `max_age`, never going backwards.
 *
 * Threading: single owner, not thread-safe, no locks. The owner is the
 * polling thread of the port (it learns and looks up per frame); the
 * control plane (aging timer, show-fdb, fdb add/del) sends its requests
 * to that thread instead of touching the table.
 *
 * Memory is allocated once in fdb_create(); learn, lookup, delete and
 * aging never allocate.
 */
#ifndef IBVHOST_FDB_H
#define IBVHOST_FDB_H

#include <stdbool.h>
#include <stdint.h>

#define FDB_MAC_LEN 6u
#define FDB_GID_LEN 16u
#define FDB_QPN_MASK 0x00ffffffu      /* QPNs are 24 bits */
#define FDB_AGE_DEFAULT_S 300u        /* seconds */
#define FDB_CAPACITY_MAX (1u << 20)   /* entries per port */

/* Where a MAC lives on the fabric. */
struct fdb_addr {
	uint16_t lid;                /* 0 on RoCE: address by GID */
	uint32_t qpn;                /* 24 bits */
	uint8_t gid[FDB_GID_LEN];    /* all zero if unknown (no GRH) */
};

struct fdb_entry {
	uint8_t mac[FDB_MAC_LEN];
	bool is_static;              /* never learned over, aged or evicted */
	struct fdb_addr addr;
	void *ah;                    /* caller's cookie; NULL until set */
	uint64_t last_seen;          /* caller's clock */
};

/* What fdb_learn() did. */
enum fdb_learn_result {
	FDB_LEARN_REFRESHED = 0, /* known at the same address: time updated */
	FDB_LEARN_NEW,           /* new entry: caller creates entry->ah */
	FDB_LEARN_MOVED,         /* new address: old ah in *stale_ah, caller
				  * creates entry->ah */
	FDB_LEARN_STATIC,        /* a static entry exists: nothing changed */
	FDB_LEARN_BAD_MAC,       /* multicast, broadcast or zero source MAC */
	FDB_LEARN_BAD_ADDR,      /* QPN wider than 24 bits */
	FDB_LEARN_FULL,          /* full of static entries: not learned */
};

struct fdb_stats {
	uint64_t lookups;
	uint64_t hits;
	uint64_t learned;    /* FDB_LEARN_NEW */
	uint64_t moved;      /* FDB_LEARN_MOVED */
	uint64_t refreshed;  /* FDB_LEARN_REFRESHED */
	uint64_t rejected;   /* FDB_LEARN_BAD_MAC / BAD_ADDR */
	uint64_t full;       /* FDB_LEARN_FULL */
	uint64_t evicted;    /* dynamic entries pushed out by new ones */
	uint64_t aged;       /* dynamic entries removed by fdb_age */
	uint32_t entries;    /* current, static included */
	uint32_t static_entries;
	uint32_t capacity;
};

struct fdb;

/* Receives an entry that leaves the table (aging, destroy) so the caller
 * can destroy entry->ah. The entry is gone once the callback returns. */
typedef void (*fdb_release_fn)(const struct fdb_entry *entry, void *arg);

/* Return non-zero to stop the iteration. */
typedef int (*fdb_visit_fn)(const struct fdb_entry *entry, void *arg);

/* A table for `capacity` entries (1..FDB_CAPACITY_MAX). NULL with errno
 * EINVAL or ENOMEM. */
struct fdb *fdb_create(uint32_t capacity);

/* Free the table; `release` (may be NULL) sees every remaining entry. */
void fdb_destroy(struct fdb *fdb, fdb_release_fn release, void *arg);

/* True for a MAC that may be learned: unicast and not all zero. */
bool fdb_mac_is_learnable(const uint8_t mac[FDB_MAC_LEN]);

/* Learn `mac` at `addr` from a frame received at `now`. *entry (may be
 * NULL) points to the entry for NEW/MOVED/REFRESHED/STATIC, else NULL.
 * *stale_ah (may be NULL, then the caller forfeits it) receives an
 * address handle the caller must release: the old one on MOVED, or the
 * one of the oldest dynamic entry evicted to make room on NEW; else NULL.
 * Cheap enough to call per received frame. */
enum fdb_learn_result fdb_learn(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN],
				const struct fdb_addr *addr, uint64_t now,
				struct fdb_entry **entry, void **stale_ah);

/* The entry for `mac`, or NULL. The pointer stays valid until that entry
 * is deleted, aged or evicted; the caller may set entry->ah. */
struct fdb_entry *fdb_lookup(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN]);

/* Add or overwrite a static entry (turning a dynamic one static). On an
 * address change or eviction the handle to release is in *stale_ah.
 * Returns 0, -EINVAL (MAC not learnable, QPN too wide) or -ENOSPC (full
 * of static entries). */
int fdb_add_static(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN],
		   const struct fdb_addr *addr, uint64_t now,
		   struct fdb_entry **entry, void **stale_ah);

/* Delete the entry for `mac` (static or not); its ah goes to *ah (may be
 * NULL). Returns 0 or -ENOENT. */
int fdb_del(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN], void **ah);

/* Remove dynamic entries not seen for `max_age` or more (now - last_seen
 * >= max_age), handing each to `release` (may be NULL). Returns how many
 * went. Costs O(removed): entries are kept in last-seen order. */
uint32_t fdb_age(struct fdb *fdb, uint64_t now, uint64_t max_age,
		 fdb_release_fn release, void *arg);

/* Visit every entry, in no particular order. The table must not be
 * changed from the callback. */
void fdb_foreach(const struct fdb *fdb, fdb_visit_fn visit, void *arg);

void fdb_get_stats(const struct fdb *fdb, struct fdb_stats *stats);

#endif /* IBVHOST_FDB_H */
