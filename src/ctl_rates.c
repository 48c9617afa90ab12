/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) 2026 The ibvhostd authors
 */
/*
 * ctl_rates: per-port frame and byte rates over the last sampling
 * interval; see src/ctl_int.h. The control socket's timer takes a sample
 * of every port's raw counters each CTL_RATE_INTERVAL_S; a rate is the
 * difference to the port's previous sample over the time between the
 * two. The data path is not involved: it only counts. Main thread only.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_int.h"

/* The counters a rate is kept for, in struct ctl_port_rates order. */
enum { RATE_TX_FRAMES, RATE_TX_BYTES, RATE_RX_FRAMES, RATE_RX_BYTES, RATE_N };

struct rate_slot {
	const struct port *port;
	uint64_t prev[RATE_N]; /* raw counters at the previous sample */
	double prev_s;	       /* when it was taken */
	struct ctl_port_rates rates;
	bool seen; /* in the table at the current sample */
};

static struct {
	struct rate_slot *slots;
	unsigned n, cap;
	uint64_t samples; /* taken so far */
} rt;

static struct rate_slot *slot_of(const struct port *p)
{
	for (unsigned i = 0; i < rt.n; i++)
		if (rt.slots[i].port == p)
			return &rt.slots[i];
	return NULL;
}

static struct rate_slot *slot_add(const struct port *p)
{
	if (rt.n == rt.cap) {
		unsigned cap = rt.cap ? rt.cap * 2 : 16;
		struct rate_slot *s = realloc(rt.slots, cap * sizeof(*s));

		if (!s)
			return NULL;
		rt.slots = s;
		rt.cap = cap;
	}
	memset(&rt.slots[rt.n], 0, sizeof(rt.slots[0]));
	rt.slots[rt.n].port = p;
	return &rt.slots[rt.n++];
}

static void slot_update(struct rate_slot *s, const uint64_t cur[RATE_N],
			double now_s, bool is_new)
{
	double dt = now_s - s->prev_s;
	bool went_back = false;
	double *out[RATE_N] = { &s->rates.tx_frames_per_s,
				&s->rates.tx_bytes_per_s,
				&s->rates.rx_frames_per_s,
				&s->rates.rx_bytes_per_s };

	for (unsigned c = 0; c < RATE_N; c++)
		went_back |= cur[c] < s->prev[c];
	s->rates.sample = rt.samples;
	/* A port's first sample, or counters that went back (a port that
	 * was replaced between two samples): nothing to compare with yet. */
	if (is_new || went_back || dt <= 0) {
		s->rates.interval_s = 0;
		for (unsigned c = 0; c < RATE_N; c++)
			*out[c] = 0;
	} else {
		s->rates.interval_s = dt;
		for (unsigned c = 0; c < RATE_N; c++)
			*out[c] = (double)(cur[c] - s->prev[c]) / dt;
	}
	memcpy(s->prev, cur, sizeof(s->prev));
	s->prev_s = now_s;
}

void ctl_rates_sample(double now_s)
{
	unsigned n = port_count();
	struct port **ports = malloc((n ? n : 1) * sizeof(*ports));
	struct port_info *pi = malloc(sizeof(*pi));

	if (!ports || !pi)
		goto out; /* no sample this time; the next one covers it */
	n = port_list(ports, n);
	rt.samples++;
	for (unsigned i = 0; i < rt.n; i++)
		rt.slots[i].seen = false;
	for (unsigned i = 0; i < n; i++) {
		struct rate_slot *s = slot_of(ports[i]);
		bool is_new = s == NULL;

		if (is_new && !(s = slot_add(ports[i])))
			continue;
		port_get_info(ports[i], pi); /* raw: clear-counters aside */
		const uint64_t cur[RATE_N] = {
			pi->counters.tx_frames, pi->counters.tx_bytes,
			pi->counters.rx_frames, pi->counters.rx_bytes,
		};
		slot_update(s, cur, now_s, is_new);
		s->seen = true;
	}
	/* Ports removed without ctl_port_forget() go here. */
	for (unsigned i = 0; i < rt.n;)
		if (!rt.slots[i].seen)
			rt.slots[i] = rt.slots[--rt.n];
		else
			i++;
out:
	free(pi);
	free(ports);
}

void ctl_port_rates(const struct port *p, struct ctl_port_rates *out)
{
	const struct rate_slot *s = slot_of(p);

	memset(out, 0, sizeof(*out));
	if (s)
		*out = s->rates;
	else
		out->sample = rt.samples; /* added since: nothing measured */
}

void ctl_rates_forget(const struct port *p)
{
	struct rate_slot *s = slot_of(p);

	if (s)
		*s = rt.slots[--rt.n];
}

void ctl_rates_reset(void)
{
	free(rt.slots);
	memset(&rt, 0, sizeof(rt));
}
