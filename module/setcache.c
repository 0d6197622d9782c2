/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <stdbool.h>
#include <string.h>

#include "setcache.h"

setcache_entry_t *setcache_get(setcache_t *cache, uint64_t tag, uint64_t generation,
                               const knot_rdataset_t *rrs)
{
	if (tag == 0) {
		return NULL;
	}
	for (unsigned i = 0; i < SETCACHE_WAYS; i++) {
		setcache_entry_t *e = &cache->entry[i];
		if (e->tag == tag && e->generation == generation && e->size == rrs->size &&
		    e->count == rrs->count && memcmp(e->rdata, rrs->rdata, rrs->size) == 0) {
			return e;
		}
	}
	return NULL;
}

/* Only the owner thread writes its entries, so they can be read without the seqlock. */
static void own_view(const setcache_entry_t *e, setcache_view_t *view)
{
	view->seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
	view->tag = e->tag;
	view->size = e->size;
	view->count = e->count;
	memcpy(view->rdata, e->rdata, e->size);
	view->answers = atomic_load_explicit(&e->answers, memory_order_relaxed);
	for (uint16_t i = 0; i < e->count; i++) {
		view->first[i] = atomic_load_explicit(&e->first[i], memory_order_relaxed);
	}
}

/* Keep an evicted entry's counters for the control thread (cache misses only). */
static void retire(setcache_t *cache, const setcache_entry_t *e, unsigned way)
{
	uint64_t number = atomic_load_explicit(&cache->retired_count, memory_order_relaxed) + 1;
	setcache_retired_t *r = &cache->retired[number % SETCACHE_RETIRED];
	uint32_t seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->number = number;
	r->way = way;
	own_view(e, &r->view);
	atomic_store_explicit(&r->seq, seq + 2, memory_order_release);
	atomic_store_explicit(&cache->retired_count, number, memory_order_release);
}

bool setcache_read_retired(const setcache_t *cache, uint64_t number, setcache_retired_t *out)
{
	const setcache_retired_t *r = &cache->retired[number % SETCACHE_RETIRED];
	uint32_t seq = atomic_load_explicit(&r->seq, memory_order_acquire);
	if (seq & 1) {
		return false;
	}
	out->number = r->number;
	out->way = r->way;
	out->view.seq = r->view.seq;
	out->view.tag = r->view.tag;
	out->view.size = r->view.size;
	out->view.count = r->view.count;
	if (out->number != number || out->way >= SETCACHE_WAYS ||
	    out->view.size > SETCACHE_MAX_RDATA || out->view.count > MXP_MAX_RECORDS) {
		return false;
	}
	memcpy(out->view.rdata, r->view.rdata, out->view.size);
	out->view.answers = r->view.answers;
	memcpy(out->view.first, r->view.first, out->view.count * sizeof(uint32_t));
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->seq, memory_order_relaxed) == seq;
}

setcache_entry_t *setcache_put(setcache_t *cache, uint64_t tag, uint64_t generation,
                               const knot_rdataset_t *rrs)
{
	if (tag == 0 || rrs->size > SETCACHE_MAX_RDATA || rrs->count > MXP_MAX_RECORDS) {
		return NULL;
	}
	unsigned way = cache->next;
	setcache_entry_t *e = &cache->entry[way];
	cache->next = (cache->next + 1) % SETCACHE_WAYS;
	if (e->tag != 0 && atomic_load_explicit(&e->answers, memory_order_relaxed) > 0) {
		retire(cache, e, way);
	}

	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
	atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	e->tag = tag;
	e->generation = generation;
	e->size = rrs->size;
	e->count = rrs->count;
	memcpy(e->rdata, rrs->rdata, rrs->size);
	e->hashed = false;
	atomic_store_explicit(&e->answers, 0, memory_order_relaxed);
	for (uint16_t i = 0; i < rrs->count; i++) {
		atomic_store_explicit(&e->first[i], 0, memory_order_relaxed);
	}
	/* The caller fills weight[] and state[], which only its own thread reads. */
	atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
	return e;
}

/* Single writer: a plain load and store, no locked instruction on the query path. */
static inline void bump(_Atomic uint32_t *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

void setcache_count(setcache_entry_t *entry, const mxp_plan_t *plan)
{
	bump(&entry->answers);
	uint32_t best = UINT32_MAX;
	for (uint16_t s = 0; s < plan->count; s++) {
		best = plan->slots[s].pref < best ? plan->slots[s].pref : best;
	}
	for (uint16_t s = 0; s < plan->count; s++) {
		if (plan->slots[s].pref == best && plan->slots[s].idx < entry->count) {
			bump(&entry->first[plan->slots[s].idx]);
		}
	}
}

bool setcache_read(const setcache_entry_t *entry, setcache_view_t *view)
{
	uint32_t seq = atomic_load_explicit(&entry->seq, memory_order_acquire);
	if (seq & 1) {
		return false;
	}
	view->seq = seq;
	view->tag = entry->tag;
	view->size = entry->size;
	view->count = entry->count;
	if (view->tag == 0 || view->size > SETCACHE_MAX_RDATA || view->count > MXP_MAX_RECORDS) {
		return false;
	}
	memcpy(view->rdata, entry->rdata, view->size);
	view->answers = atomic_load_explicit(&entry->answers, memory_order_relaxed);
	for (uint16_t i = 0; i < view->count; i++) {
		view->first[i] = atomic_load_explicit(&entry->first[i], memory_order_relaxed);
	}
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&entry->seq, memory_order_relaxed) == seq;
}
