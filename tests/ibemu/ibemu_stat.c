/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ibemu_stat — show a fabric from outside (without joining it): nodes with
 * their addresses and counters, multicast groups with their members.
 * For scripts: `ibemu_stat -f FABRIC -j` prints JSON; `-l LID -c NAME`
 * prints one counter of one node.
 *
 *   ibemu_stat [-f fabric] [-j] [-l lid [-c counter]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ibemu_int.h"

static const char *const counter_names[] = {
	"tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes", "drop_qkey",
	"drop_no_recv", "drop_qp_state", "drop_no_dest", "drop_mcast_qpn",
	"drop_fault", "rx_len_err", "rx_prot_err", "tx_prot_err", "tx_len_err",
	"cq_overflow", "doorbells", "fault_reg_mr", "fault_qp_error",
};
#define NCOUNTERS (sizeof(struct ibemu_counters) / sizeof(uint64_t))
_Static_assert(NCOUNTERS == sizeof(counter_names) / sizeof(counter_names[0]),
	       "a counter without a name");

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-f fabric] [-j] [-l lid [-c counter]]\n", argv0);
	return 2;
}

static bool alive(const struct shm_node *n)
{
	return atomic_load(&n->in_use) && !(kill(n->pid, 0) < 0 && errno == ESRCH);
}

int main(int argc, char **argv)
{
	const char *fabric = getenv("IBEMU_FABRIC"), *counter = NULL;
	const char *dir = getenv("IBEMU_SHM_DIR");
	long want_lid = -1;
	bool json = false;
	int opt;

	while ((opt = getopt(argc, argv, "f:jl:c:")) != -1) {
		switch (opt) {
		case 'f': fabric = optarg; break;
		case 'j': json = true; break;
		case 'l': want_lid = strtol(optarg, NULL, 0); break;
		case 'c': counter = optarg; break;
		default: return usage(argv[0]);
		}
	}
	if (counter && want_lid < 0)
		return usage(argv[0]);
	char path[256];
	snprintf(path, sizeof(path), "%s/ibemu-%s", dir && *dir ? dir : "/dev/shm",
		 fabric && *fabric ? fabric : "default");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ibemu_stat: %s: %s (no node has joined this fabric)\n",
			path, strerror(errno));
		return 1;
	}
	const struct shm_fabric *f = mmap(NULL, sizeof(*f), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (f == MAP_FAILED || f->magic != IBEMU_MAGIC || f->version != IBEMU_VERSION) {
		fprintf(stderr, "ibemu_stat: %s: not an ibemu fabric of this version\n", path);
		return 1;
	}
	bool first = true;
	if (json)
		printf("{\"nodes\": [");
	else if (!counter)
		printf("%-6s %-8s %-15s %-19s %s\n", "LID", "PID", "IP", "GUID", "counters (non-zero)");
	for (uint32_t i = 0; i < IBEMU_MAX_NODES; i++) {
		const struct shm_node *n = &f->node[i];
		if (!alive(n) || (want_lid >= 0 && n->lid != want_lid))
			continue;
		const uint64_t *c = (const uint64_t *)&n->counters;
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &n->ip_be, ip, sizeof(ip));
		if (counter) {
			for (size_t k = 0; k < NCOUNTERS; k++)
				if (!strcmp(counter_names[k], counter)) {
					printf("%llu\n", (unsigned long long)c[k]);
					return 0;
				}
			fprintf(stderr, "ibemu_stat: no counter '%s'\n", counter);
			return 2;
		}
		if (json) {
			printf("%s\n  {\"lid\": %u, \"pid\": %d, \"ip\": \"%s\", \"guid\": "
			       "\"0x%016llx\"", first ? "" : ",", n->lid, (int)n->pid, ip,
			       (unsigned long long)be64toh(n->guid_be));
			for (size_t k = 0; k < NCOUNTERS; k++)
				printf(", \"%s\": %llu", counter_names[k], (unsigned long long)c[k]);
			printf("}");
		} else {
			printf("%-6u %-8d %-15s 0x%016llx", n->lid, (int)n->pid, ip,
			       (unsigned long long)be64toh(n->guid_be));
			for (size_t k = 0; k < NCOUNTERS; k++)
				if (c[k])
					printf(" %s=%llu", counter_names[k], (unsigned long long)c[k]);
			printf("\n");
		}
		first = false;
	}
	if (counter) {
		fprintf(stderr, "ibemu_stat: no live node with LID %ld\n", want_lid);
		return 1;
	}
	if (json)
		printf("\n], \"groups\": [");
	first = true;
	for (uint32_t g = 0; g < IBEMU_MAX_MCAST; g++) {
		const struct shm_mcast *m = &f->mcast[g];
		if (!atomic_load(&m->in_use))
			continue;
		char mgid[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, m->mgid, mgid, sizeof(mgid));
		printf(json ? "%s\n  {\"mlid\": %u, \"mgid\": \"%s\", \"members\": [" :
			      "%sgroup MLID 0x%04x MGID %s members:", json && !first ? "," : "",
		       m->mlid, mgid);
		bool mfirst = true;
		for (uint32_t k = 0; k < IBEMU_MCAST_MEMBERS; k++) {
			uint32_t q = atomic_load(&m->members[k]);
			if (q) {
				printf(json ? "%s%u" : "%s 0x%06x", json && !mfirst ? ", " : "", q);
				mfirst = false;
			}
		}
		printf(json ? "]}" : "\n");
		first = false;
	}
	if (json)
		printf("\n]}\n");
	return 0;
}
