/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/* Forwarding database. See include/ibvhost/fdb.h.
 *
 * Layout: entries live in a fixed node array (their addresses never change,
 * so lookups can hand out pointers); an open-addressing index (linear
 * probing, at most half full, backward-shift deletion so no tombstones)
 * maps a MAC's hash to its node and keeps the hash next to the node
 * number, so a probe rarely touches a node that does not match. Dynamic
 * entries are also on a list in last-seen order (oldest first), which
 * makes aging O(removed) and eviction O(1). A one-entry cache remembers
 * the last MAC looked up: a port mostly talks to a few peers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ibvhost/fdb.h"

#define FDB_NIL UINT32_MAX
#define FDB_SLOT_EMPTY 0u          /* fdb_slot.node_plus1 of a free slot */
#define FDB_HASH_MULT 0x9e3779b97f4a7c15ull /* 2^64 / golden ratio */

struct fdb_node {
	struct fdb_entry e;        /* first: fdb_entry * converts back */
	uint64_t key;              /* MAC as a 48-bit integer, 0 = unused */
	uint32_t prev, next;       /* age list (dynamic) or free list */
};

struct fdb_slot {
	uint32_t node_plus1;       /* FDB_SLOT_EMPTY or node index + 1 */
	uint32_t hash;
};

struct fdb {
	uint32_t capacity;
	uint32_t slot_mask;
	uint32_t free_head;
	uint32_t age_head, age_tail; /* oldest, newest dynamic entry */
	uint64_t hit_key;            /* last-hit cache */
	uint32_t hit_node;
	struct fdb_stats st;
	struct fdb_slot *slots;
	struct fdb_node *nodes;
};

static inline uint64_t fdb_mac_key(const uint8_t mac[FDB_MAC_LEN])
{
	return (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 |
	       (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 |
	       (uint64_t)mac[4] << 8 | (uint64_t)mac[5];
}

static inline uint32_t fdb_hash(uint64_t key)
{
	return (uint32_t)((key * FDB_HASH_MULT) >> 32);
}

bool fdb_mac_is_learnable(const uint8_t mac[FDB_MAC_LEN])
{
	/* The group bit (I/G) covers multicast and broadcast. */
	return (mac[0] & 0x01u) == 0 && fdb_mac_key(mac) != 0;
}

static inline bool fdb_addr_valid(const struct fdb_addr *addr)
{
	return (addr->qpn & ~FDB_QPN_MASK) == 0;
}

static inline bool fdb_addr_equal(const struct fdb_addr *a,
				  const struct fdb_addr *b)
{
	return a->lid == b->lid && a->qpn == b->qpn &&
	       memcmp(a->gid, b->gid, FDB_GID_LEN) == 0;
}

struct fdb *fdb_create(uint32_t capacity)
{
	struct fdb *fdb;
	uint32_t nslots = 2, i;

	if (capacity == 0 || capacity > FDB_CAPACITY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	/* At most half full keeps linear-probing chains short. */
	while (nslots < 2 * capacity)
		nslots <<= 1;

	fdb = calloc(1, sizeof(*fdb));
	if (!fdb)
		return NULL;
	fdb->slots = calloc(nslots, sizeof(*fdb->slots));
	fdb->nodes = calloc(capacity, sizeof(*fdb->nodes));
	if (!fdb->slots || !fdb->nodes) {
		free(fdb->slots);
		free(fdb->nodes);
		free(fdb);
		errno = ENOMEM;
		return NULL;
	}
	fdb->capacity = capacity;
	fdb->slot_mask = nslots - 1;
	fdb->st.capacity = capacity;
	for (i = 0; i < capacity; i++)
		fdb->nodes[i].next = i + 1 < capacity ? i + 1 : FDB_NIL;
	fdb->free_head = 0;
	fdb->age_head = fdb->age_tail = FDB_NIL;
	fdb->hit_node = FDB_NIL;
	return fdb;
}

void fdb_destroy(struct fdb *fdb, fdb_release_fn release, void *arg)
{
	uint32_t i;

	if (!fdb)
		return;
	if (release) {
		for (i = 0; i < fdb->capacity; i++)
			if (fdb->nodes[i].key != 0)
				release(&fdb->nodes[i].e, arg);
	}
	free(fdb->slots);
	free(fdb->nodes);
	free(fdb);
}

/* --- age list (dynamic entries, oldest first) --------------------------- */

static void fdb_age_unlink(struct fdb *fdb, uint32_t n)
{
	struct fdb_node *node = &fdb->nodes[n];

	if (node->prev != FDB_NIL)
		fdb->nodes[node->prev].next = node->next;
	else
		fdb->age_head = node->next;
	if (node->next != FDB_NIL)
		fdb->nodes[node->next].prev = node->prev;
	else
		fdb->age_tail = node->prev;
	node->prev = node->next = FDB_NIL;
}

static void fdb_age_append(struct fdb *fdb, uint32_t n)
{
	struct fdb_node *node = &fdb->nodes[n];

	node->next = FDB_NIL;
	node->prev = fdb->age_tail;
	if (fdb->age_tail != FDB_NIL)
		fdb->nodes[fdb->age_tail].next = n;
	else
		fdb->age_head = n;
	fdb->age_tail = n;
}

/* --- index ------------------------------------------------------------- */

/* Slot holding `key`, or FDB_NIL. */
static inline uint32_t fdb_find_slot(const struct fdb *fdb, uint64_t key,
				     uint32_t hash)
{
	uint32_t i = hash & fdb->slot_mask;

	for (;;) {
		const struct fdb_slot *s = &fdb->slots[i];

		if (s->node_plus1 == FDB_SLOT_EMPTY)
			return FDB_NIL;
		if (s->hash == hash && fdb->nodes[s->node_plus1 - 1].key == key)
			return i;
		i = (i + 1) & fdb->slot_mask;
	}
}

static inline uint32_t fdb_find_node(struct fdb *fdb, uint64_t key)
{
	uint32_t slot;

	if (fdb->hit_node != FDB_NIL && fdb->hit_key == key)
		return fdb->hit_node;
	slot = fdb_find_slot(fdb, key, fdb_hash(key));
	if (slot == FDB_NIL)
		return FDB_NIL;
	fdb->hit_key = key;
	fdb->hit_node = fdb->slots[slot].node_plus1 - 1;
	return fdb->hit_node;
}

/* Backward-shift deletion: pull later members of the probe run into the
 * hole so every key stays reachable from its home slot. */
static void fdb_slot_remove(struct fdb *fdb, uint32_t hole)
{
	uint32_t j = hole;

	for (;;) {
		uint32_t home;

		j = (j + 1) & fdb->slot_mask;
		if (fdb->slots[j].node_plus1 == FDB_SLOT_EMPTY)
			break;
		home = fdb->slots[j].hash & fdb->slot_mask;
		/* Movable if its home is not in the cyclic range (hole, j]. */
		if ((j > hole && (home <= hole || home > j)) ||
		    (j < hole && (home <= hole && home > j))) {
			fdb->slots[hole] = fdb->slots[j];
			hole = j;
		}
	}
	fdb->slots[hole].node_plus1 = FDB_SLOT_EMPTY;
	fdb->slots[hole].hash = 0;
}

static void fdb_remove_node(struct fdb *fdb, uint32_t n)
{
	struct fdb_node *node = &fdb->nodes[n];
	uint32_t slot = fdb_find_slot(fdb, node->key, fdb_hash(node->key));

	if (slot != FDB_NIL)
		fdb_slot_remove(fdb, slot);
	if (node->e.is_static)
		fdb->st.static_entries--;
	else
		fdb_age_unlink(fdb, n);
	if (fdb->hit_node == n)
		fdb->hit_node = FDB_NIL;
	memset(node, 0, sizeof(*node));
	node->prev = FDB_NIL;
	node->next = fdb->free_head;
	fdb->free_head = n;
	fdb->st.entries--;
}

/* Take a free node for `mac`, evicting the oldest dynamic entry if the
 * table is full (its ah goes to *evicted_ah). FDB_NIL if full of static
 * entries. */
static uint32_t fdb_insert(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN],
			   uint64_t key, void **evicted_ah)
{
	struct fdb_node *node;
	uint32_t n, i, hash = fdb_hash(key);

	*evicted_ah = NULL;
	if (fdb->free_head == FDB_NIL) {
		if (fdb->age_head == FDB_NIL)
			return FDB_NIL;
		*evicted_ah = fdb->nodes[fdb->age_head].e.ah;
		fdb_remove_node(fdb, fdb->age_head);
		fdb->st.evicted++;
	}
	n = fdb->free_head;
	node = &fdb->nodes[n];
	fdb->free_head = node->next;
	memset(node, 0, sizeof(*node));
	node->prev = node->next = FDB_NIL;
	memcpy(node->e.mac, mac, FDB_MAC_LEN);
	node->key = key;

	i = hash & fdb->slot_mask;
	while (fdb->slots[i].node_plus1 != FDB_SLOT_EMPTY)
		i = (i + 1) & fdb->slot_mask;
	fdb->slots[i].node_plus1 = n + 1;
	fdb->slots[i].hash = hash;
	fdb->st.entries++;
	return n;
}

/* --- public ------------------------------------------------------------ */

enum fdb_learn_result fdb_learn(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN],
				const struct fdb_addr *addr, uint64_t now,
				struct fdb_entry **entry, void **stale_ah)
{
	struct fdb_node *node;
	void *stale = NULL;
	uint64_t key;
	uint32_t n;
	enum fdb_learn_result res;

	if (entry)
		*entry = NULL;
	if (stale_ah)
		*stale_ah = NULL;
	if (!fdb_mac_is_learnable(mac)) {
		fdb->st.rejected++;
		return FDB_LEARN_BAD_MAC;
	}
	if (!fdb_addr_valid(addr)) {
		fdb->st.rejected++;
		return FDB_LEARN_BAD_ADDR;
	}
	key = fdb_mac_key(mac);
	n = fdb_find_node(fdb, key);
	if (n != FDB_NIL) {
		node = &fdb->nodes[n];
		if (entry)
			*entry = &node->e;
		if (node->e.is_static)
			return FDB_LEARN_STATIC;
		if (fdb_addr_equal(&node->e.addr, addr)) {
			res = FDB_LEARN_REFRESHED;
			fdb->st.refreshed++;
		} else {
			/* The MAC moved (VM migrated, port restarted with a
			 * new QP): the old AH points to the old place. */
			stale = node->e.ah;
			node->e.ah = NULL;
			node->e.addr = *addr;
			res = FDB_LEARN_MOVED;
			fdb->st.moved++;
		}
		node->e.last_seen = now;
		if (fdb->age_tail != n) {
			fdb_age_unlink(fdb, n);
			fdb_age_append(fdb, n);
		}
		goto out;
	}

	n = fdb_insert(fdb, mac, key, &stale);
	if (n == FDB_NIL) {
		fdb->st.full++;
		return FDB_LEARN_FULL;
	}
	node = &fdb->nodes[n];
	node->e.addr = *addr;
	node->e.last_seen = now;
	fdb_age_append(fdb, n);
	fdb->st.learned++;
	if (entry)
		*entry = &node->e;
	res = FDB_LEARN_NEW;
out:
	if (stale_ah)
		*stale_ah = stale;
	return res;
}

struct fdb_entry *fdb_lookup(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN])
{
	uint32_t n = fdb_find_node(fdb, fdb_mac_key(mac));

	fdb->st.lookups++;
	if (n == FDB_NIL)
		return NULL;
	fdb->st.hits++;
	return &fdb->nodes[n].e;
}

int fdb_add_static(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN],
		   const struct fdb_addr *addr, uint64_t now,
		   struct fdb_entry **entry, void **stale_ah)
{
	struct fdb_node *node;
	void *stale = NULL;
	uint64_t key;
	uint32_t n;

	if (entry)
		*entry = NULL;
	if (stale_ah)
		*stale_ah = NULL;
	if (!fdb_mac_is_learnable(mac) || !fdb_addr_valid(addr))
		return -EINVAL;
	key = fdb_mac_key(mac);
	n = fdb_find_node(fdb, key);
	if (n == FDB_NIL) {
		n = fdb_insert(fdb, mac, key, &stale);
		if (n == FDB_NIL)
			return -ENOSPC;
		node = &fdb->nodes[n];
		node->e.addr = *addr;
	} else {
		node = &fdb->nodes[n];
		if (!node->e.is_static)
			fdb_age_unlink(fdb, n);
		if (!fdb_addr_equal(&node->e.addr, addr)) {
			stale = node->e.ah;
			node->e.ah = NULL;
			node->e.addr = *addr;
		}
	}
	if (!node->e.is_static) {
		node->e.is_static = true;
		fdb->st.static_entries++;
	}
	node->e.last_seen = now;
	if (entry)
		*entry = &node->e;
	if (stale_ah)
		*stale_ah = stale;
	return 0;
}

int fdb_del(struct fdb *fdb, const uint8_t mac[FDB_MAC_LEN], void **ah)
{
	uint32_t n = fdb_find_node(fdb, fdb_mac_key(mac));

	if (ah)
		*ah = NULL;
	if (n == FDB_NIL || fdb_mac_key(mac) == 0)
		return -ENOENT;
	if (ah)
		*ah = fdb->nodes[n].e.ah;
	fdb_remove_node(fdb, n);
	return 0;
}

uint32_t fdb_age(struct fdb *fdb, uint64_t now, uint64_t max_age,
		 fdb_release_fn release, void *arg)
{
	uint32_t removed = 0;

	while (fdb->age_head != FDB_NIL) {
		uint32_t n = fdb->age_head;
		struct fdb_node *node = &fdb->nodes[n];

		/* A last_seen in the future is not expired. */
		if (node->e.last_seen > now || now - node->e.last_seen < max_age)
			break;
		if (release)
			release(&node->e, arg);
		fdb_remove_node(fdb, n);
		fdb->st.aged++;
		removed++;
	}
	return removed;
}

void fdb_foreach(const struct fdb *fdb, fdb_visit_fn visit, void *arg)
{
	uint32_t i;

	for (i = 0; i < fdb->capacity; i++)
		if (fdb->nodes[i].key != 0 && visit(&fdb->nodes[i].e, arg))
			return;
}

void fdb_get_stats(const struct fdb *fdb, struct fdb_stats *stats)
{
	*stats = fdb->st;
}
