/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * fabric.c — the shared-memory fabric: creating/attaching the segment,
 * the robust control-plane lock, node registration (LID, GUID, IP),
 * reclaiming nodes whose process died, and mapping remote QP inboxes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ibemu_int.h"

struct ibemu_global ibemu_g = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct ring_map ring_maps[IBEMU_MAX_QPS];
static pthread_mutex_t ring_map_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t tx_active;

/* A forked child is a new node: what it inherited belongs to its parent
 * (as with a real HCA without fork support). The parent's mappings stay
 * mapped; the child attaches anew when it opens the device. */
static void atfork_child(void)
{
	pthread_mutex_init(&ibemu_g.lock, NULL);
	if (ibemu_g.fab)
		close(ibemu_g.fab_fd); /* the parent's flock stays with the parent */
	ibemu_g.refs = 0;
	ibemu_g.fab = NULL;
	ibemu_g.me = NULL;
	for (uint32_t i = 0; i < IBEMU_MAX_MR; i++)
		atomic_store(&ibemu_g.mr[i], NULL);
	memset(ibemu_g.cq_by_slot, 0, sizeof(ibemu_g.cq_by_slot));
	memset(ibemu_g.qp_by_idx, 0, sizeof(ibemu_g.qp_by_idx));
	atomic_store(&tx_active, 0);
}

__attribute__((constructor)) static void ibemu_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

uint64_t ibemu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* field 22; skip "pid (comm)" whose comm may contain spaces */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static bool node_alive(const struct shm_node *n)
{
	if (kill(n->pid, 0) < 0 && errno == ESRCH)
		return false;
	uint64_t st = proc_start_time(n->pid);
	return st == 0 || st == n->start_time;
}

int ibemu_fab_lock(void)
{
	int rc = pthread_mutex_lock(&ibemu_g.fab->lock);

	if (rc == EOWNERDEAD) {
		/* Control-plane updates are single stores of whole entries;
		 * a half-done one is repaired by reclaiming the dead node. */
		pthread_mutex_consistent(&ibemu_g.fab->lock);
		rc = 0;
	}
	return rc;
}

void ibemu_fab_unlock(void)
{
	pthread_mutex_unlock(&ibemu_g.fab->lock);
}

int ibemu_ring_path(char *buf, size_t len, uint32_t idx)
{
	return snprintf(buf, len, "%s/ibemu-%s.q%u", ibemu_g.shm_dir,
			ibemu_g.fabric, idx);
}

static void reclaim_node_locked(uint32_t ni)
{
	struct shm_fabric *f = ibemu_g.fab;
	char path[256];

	for (uint32_t i = 0; i < IBEMU_MAX_QPS; i++) {
		if (atomic_load(&f->qp[i].node_plus1) != ni + 1)
			continue;
		uint32_t gen = atomic_load(&f->qp[i].gen);
		ibemu_mcast_remove_qpn_locked(gen << IBEMU_QP_IDX_BITS | i);
		atomic_store(&f->qp[i].gen, (gen + 1) & 0xFFF ? (gen + 1) & 0xFFF : 1);
		atomic_store(&f->qp[i].node_plus1, 0);
		ibemu_ring_path(path, sizeof(path), i);
		unlink(path);
	}
	atomic_store(&f->node[ni].in_use, 0);
}

void ibemu_reclaim_dead(void)
{
	struct shm_fabric *f = ibemu_g.fab;

	if (ibemu_fab_lock())
		return;
	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++) {
		if (!atomic_load(&f->node[i].in_use) || i == ibemu_g.node_idx)
			continue;
		if (!node_alive(&f->node[i]))
			reclaim_node_locked(i);
	}
	ibemu_fab_unlock();
}

static int env_u64(const char *name, uint64_t *out)
{
	const char *v = getenv(name);
	char *end;

	if (!v || !*v)
		return 0;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "ibemu: bad %s=%s\n", name, v);
		return -1;
	}
	*out = x;
	return 1;
}

/* Every node holds a shared flock on the fabric file for its lifetime, so
 * whoever gets it exclusively knows that no node is alive: a stale or
 * half-created file can then be replaced, and the last node leaving
 * removes it. Unlinking is done under the exclusive lock and only if the
 * path still names the locked file. */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static bool unlink_if_unused(int fd, const char *path)
{
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return false;
	if (same_file(fd, path))
		unlink(path);
	return true;
}

static void init_fabric(struct shm_fabric *f)
{
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&f->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	for (uint32_t i = 0; i < IBEMU_MAX_QPS; i++)
		atomic_store(&f->qp[i].gen, 1);
	f->magic = IBEMU_MAGIC;
	f->version = IBEMU_VERSION;
	atomic_store_explicit(&f->ready, 1, memory_order_release);
}

static int map_fabric(void)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/ibemu-%s", ibemu_g.shm_dir,
		 ibemu_g.fabric);
	for (int attempt = 0; attempt < 50; attempt++) {
		bool creator = true;
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST) {
			creator = false;
			fd = open(path, O_RDWR | O_CLOEXEC);
		}
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* removed meanwhile */
			return -1;
		}
		if (flock(fd, LOCK_SH) < 0 || !same_file(fd, path) ||
		    (creator && ftruncate(fd, sizeof(struct shm_fabric)) < 0)) {
			close(fd);
			continue;
		}
		/* a joiner waits (bounded) for the creator to size and init it */
		struct shm_fabric *f = NULL;
		for (int i = 0; i < 1000; i++) {
			if (fstat(fd, &st) == 0 &&
			    (size_t)st.st_size >= sizeof(struct shm_fabric)) {
				f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
					 MAP_SHARED, fd, 0);
				break;
			}
			usleep(1000);
		}
		if (f == MAP_FAILED)
			f = NULL;
		if (f && creator)
			init_fabric(f);
		for (int i = 0; f && i < 1000 &&
		     !atomic_load_explicit(&f->ready, memory_order_acquire); i++)
			usleep(1000);
		if (f && f->magic == IBEMU_MAGIC && f->version == IBEMU_VERSION &&
		    atomic_load(&f->ready)) {
			ibemu_g.fab = f;
			ibemu_g.fab_fd = fd;
			return 0;
		}
		/* stale layout or a creator that died half-way */
		if (f)
			munmap(f, sizeof(*f));
		flock(fd, LOCK_UN);
		if (!unlink_if_unused(fd, path)) {
			fprintf(stderr, "ibemu: %s has another layout and is in use; "
				"stop the processes of fabric '%s' or pick another "
				"IBEMU_FABRIC\n", path, ibemu_g.fabric);
			close(fd);
			errno = EPROTO;
			return -1;
		}
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

static int register_node(void)
{
	struct shm_fabric *f = ibemu_g.fab;
	uint64_t lid = 0, guid = 0;
	int rc = -1;

	if (env_u64("IBEMU_LID", &lid) < 0 || env_u64("IBEMU_GUID", &guid) < 0 ||
	    lid >= IBEMU_MLID_BASE) {
		errno = EINVAL;
		return -1;
	}
	ibemu_reclaim_dead();
	if (ibemu_fab_lock())
		return -1;
	int slot = -1;
	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++)
		if (!atomic_load(&f->node[i].in_use)) {
			slot = (int)i;
			break;
		}
	if (slot < 0) {
		errno = ENOSPC;
		goto out;
	}
	if (lid) {
		if (ibemu_node_by_lid((uint16_t)lid) >= 0) {
			fprintf(stderr, "ibemu: LID %llu already used on fabric '%s'\n",
				(unsigned long long)lid, ibemu_g.fabric);
			errno = EADDRINUSE;
			goto out;
		}
	} else {
		for (lid = 1; ibemu_node_by_lid((uint16_t)lid) >= 0; lid++)
			;
	}
	struct shm_node *n = &f->node[slot];
	memset(&n->counters, 0, sizeof(n->counters));
	for (uint32_t l = 0; l < IBEMU_MAX_LISTEN; l++)
		atomic_store(&n->cm_listen[l].in_use, 0);
	for (uint32_t c = 0; c < IBEMU_MAX_CQS; c++)
		atomic_store(&n->cq[c].armed, 0);
	n->pid = getpid();
	n->start_time = proc_start_time(n->pid);
	n->lid = (uint16_t)lid;
	if (!guid)
		guid = 0x0002c90300e40000ull | lid;
	n->guid_be = htobe64(guid);
	const char *ip = getenv("IBEMU_IP");
	struct in_addr a;
	if (ip && *ip) {
		if (inet_pton(AF_INET, ip, &a) != 1) {
			fprintf(stderr, "ibemu: bad IBEMU_IP=%s\n", ip);
			errno = EINVAL;
			goto out;
		}
		n->ip_be = a.s_addr;
	} else {
		n->ip_be = htonl(0x0a4d0000u | (uint32_t)lid); /* 10.77.x.y */
	}
	n->gen++;
	atomic_store(&n->in_use, 1);
	ibemu_g.node_idx = (uint32_t)slot;
	ibemu_g.me = n;
	rc = 0;
out:
	ibemu_fab_unlock();
	return rc;
}

int ibemu_fabric_attach(void)
{
	const char *fab = getenv("IBEMU_FABRIC");
	const char *dir = getenv("IBEMU_SHM_DIR");
	uint64_t mtu = 4096;

	snprintf(ibemu_g.fabric, sizeof(ibemu_g.fabric), "%s",
		 fab && *fab ? fab : "default");
	if (strchr(ibemu_g.fabric, '/')) {
		errno = EINVAL;
		return -1;
	}
	snprintf(ibemu_g.shm_dir, sizeof(ibemu_g.shm_dir), "%s",
		 dir && *dir ? dir : "/dev/shm");
	if (env_u64("IBEMU_MTU", &mtu) < 0)
		return -1;
	if (mtu != 2048 && mtu != 4096 && mtu != 1024) {
		fprintf(stderr, "ibemu: IBEMU_MTU must be 1024, 2048 or 4096\n");
		errno = EINVAL;
		return -1;
	}
	ibemu_g.mtu_bytes = (uint32_t)mtu;
	ibemu_g.mtu_enum = mtu == 4096 ? IBV_MTU_4096 :
			   mtu == 2048 ? IBV_MTU_2048 : IBV_MTU_1024;
	if (map_fabric())
		return -1;
	if (register_node()) {
		int e = errno;
		munmap(ibemu_g.fab, sizeof(struct shm_fabric));
		close(ibemu_g.fab_fd);
		ibemu_g.fab = NULL;
		errno = e;
		return -1;
	}
	ibemu_faults_init();
	return 0;
}

void ibemu_fabric_detach(void)
{
	if (!ibemu_g.fab)
		return;
	if (ibemu_fab_lock() == 0) {
		reclaim_node_locked(ibemu_g.node_idx);
		ibemu_fab_unlock();
	}
	pthread_mutex_lock(&ring_map_lock);
	for (uint32_t i = 0; i < IBEMU_MAX_QPS; i++) {
		struct ring_hdr *h = atomic_load(&ring_maps[i].hdr);
		if (h)
			munmap(h, ring_maps[i].bytes);
		atomic_store(&ring_maps[i].hdr, NULL);
		atomic_store(&ring_maps[i].gen, 0);
	}
	pthread_mutex_unlock(&ring_map_lock);
	munmap(ibemu_g.fab, sizeof(struct shm_fabric));
	/* the last node leaving removes the fabric */
	char path[256];
	snprintf(path, sizeof(path), "%s/ibemu-%s", ibemu_g.shm_dir, ibemu_g.fabric);
	flock(ibemu_g.fab_fd, LOCK_UN);
	unlink_if_unused(ibemu_g.fab_fd, path);
	close(ibemu_g.fab_fd);
	ibemu_g.fab = NULL;
	ibemu_g.me = NULL;
}

/* A process that exits with the device still open leaves the fabric at
 * once (its QPs and LID are freed, the fabric file goes if it was the last
 * node). Nothing is unmapped: other threads may still be running. */
__attribute__((destructor)) static void ibemu_fini(void)
{
	char path[256];

	if (!ibemu_g.fab || !ibemu_g.me || ibemu_g.me->pid != getpid())
		return;
	if (ibemu_fab_lock() == 0) {
		reclaim_node_locked(ibemu_g.node_idx);
		ibemu_fab_unlock();
	}
	snprintf(path, sizeof(path), "%s/ibemu-%s", ibemu_g.shm_dir, ibemu_g.fabric);
	flock(ibemu_g.fab_fd, LOCK_UN);
	unlink_if_unused(ibemu_g.fab_fd, path);
}

int ibemu_node_by_lid(uint16_t lid)
{
	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++) {
		struct shm_node *n = &ibemu_g.fab->node[i];
		if (atomic_load_explicit(&n->in_use, memory_order_acquire) &&
		    n->lid == lid)
			return (int)i;
	}
	return -1;
}

void ibemu_node_gid(const struct shm_node *n, union ibv_gid *gid)
{
	gid->global.subnet_prefix = htobe64(0xfe80000000000000ull);
	gid->global.interface_id = n->guid_be;
}

int ibemu_node_by_gid(const uint8_t gid[16])
{
	union ibv_gid g;

	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++) {
		struct shm_node *n = &ibemu_g.fab->node[i];
		if (!atomic_load_explicit(&n->in_use, memory_order_acquire))
			continue;
		ibemu_node_gid(n, &g);
		if (!memcmp(g.raw, gid, 16))
			return (int)i;
	}
	return -1;
}

int ibemu_node_by_ip(uint32_t ip_be)
{
	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++) {
		struct shm_node *n = &ibemu_g.fab->node[i];
		if (atomic_load_explicit(&n->in_use, memory_order_acquire) &&
		    n->ip_be == ip_be)
			return (int)i;
	}
	return -1;
}

/* Slow path of ibemu_ring_lookup: (re)map a QP's inbox file. The old
 * mapping is unmapped only once no other thread is inside a lookup user. */
static struct ring_hdr *ring_remap(uint32_t idx, uint32_t gen)
{
	struct ring_map *m = &ring_maps[idx];
	struct ring_hdr *h = NULL, *old;
	char path[256];
	struct stat st;
	size_t old_bytes;
	int fd;

	pthread_mutex_lock(&ring_map_lock);
	if (atomic_load(&m->gen) == gen && (h = atomic_load(&m->hdr)))
		goto out;
	ibemu_ring_path(path, sizeof(path), idx);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size > sizeof(struct ring_hdr))
		h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED || !h || h->magic != IBEMU_MAGIC ||
	    h->qpn != (gen << IBEMU_QP_IDX_BITS | idx)) {
		if (h && h != MAP_FAILED)
			munmap(h, (size_t)st.st_size);
		h = NULL;
		goto out;
	}
	old = atomic_exchange(&m->hdr, h);
	old_bytes = m->bytes;
	m->bytes = (size_t)st.st_size;
	atomic_store(&m->gen, gen);
	if (old) {
		/* we are one of the tx_active threads ourselves */
		for (int i = 0; i < 10000 && atomic_load(&tx_active) > 1; i++)
			usleep(1);
		if (atomic_load(&tx_active) <= 1)
			munmap(old, old_bytes);
	}
out:
	pthread_mutex_unlock(&ring_map_lock);
	return h;
}

/* Map QPN → its inbox, or NULL when the QPN is stale or unknown.
 * Callers bracket their use with ibemu_tx_enter/leave (qp_tx.c). */
struct ring_hdr *ibemu_ring_lookup(uint32_t qpn)
{
	uint32_t idx = qpn & IBEMU_QP_IDX_MASK, gen = qpn >> IBEMU_QP_IDX_BITS;
	struct shm_qp *q = &ibemu_g.fab->qp[idx];

	if (qpn > 0xFFFFFF || atomic_load_explicit(&q->gen, memory_order_acquire) != gen ||
	    !atomic_load_explicit(&q->node_plus1, memory_order_relaxed))
		return NULL;
	struct ring_map *m = &ring_maps[idx];
	if (atomic_load_explicit(&m->gen, memory_order_acquire) == gen) {
		struct ring_hdr *h = atomic_load_explicit(&m->hdr, memory_order_acquire);
		if (h)
			return h;
	}
	return ring_remap(idx, gen);
}

void ibemu_tx_enter(void)
{
	atomic_fetch_add(&tx_active, 1);
}

void ibemu_tx_leave(void)
{
	atomic_fetch_sub_explicit(&tx_active, 1, memory_order_release);
}

/* Called from the poll and post paths; does real work at most every
 * 100 ms (fault file) and every second (dead nodes). */
void ibemu_maintenance(void)
{
	static _Atomic uint64_t next_faults, next_reclaim;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	uint64_t nf = atomic_load_explicit(&next_faults, memory_order_relaxed);
	if (now >= nf && atomic_compare_exchange_strong(&next_faults, &nf,
							now + 100000000ull))
		ibemu_faults_tick();
	uint64_t nr = atomic_load_explicit(&next_reclaim, memory_order_relaxed);
	if (now >= nr && atomic_compare_exchange_strong(&next_reclaim, &nr,
							now + 1000000000ull)) {
		if (nr)
			ibemu_reclaim_dead();
	}
}

IBEMU_EXPORT int ibemu_get_node_counters(uint16_t lid, struct ibemu_counters *out)
{
	if (!ibemu_g.fab) {
		errno = ENODEV;
		return -1;
	}
	int n = ibemu_node_by_lid(lid);
	if (n < 0) {
		errno = ENOENT;
		return -1;
	}
	const uint64_t *src = (const uint64_t *)&ibemu_g.fab->node[n].counters;
	uint64_t *dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 0;
}

IBEMU_EXPORT int ibemu_get_counters(struct ibemu_counters *out)
{
	if (!ibemu_g.me) {
		errno = ENODEV;
		return -1;
	}
	return ibemu_get_node_counters(ibemu_g.me->lid, out);
}
