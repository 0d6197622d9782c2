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

setcache_entry_t *setcache_put(setcache_t *cache, uint64_t tag, uint64_t generation,
                               const knot_rdataset_t *rrs)
{
	if (tag == 0 || rrs->size > SETCACHE_MAX_RDATA || rrs->count > MXP_MAX_RECORDS) {
		return NULL;
	}
	setcache_entry_t *e = &cache->entry[cache->next];
	cache->next = (cache->next + 1) % SETCACHE_WAYS;

	uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
	atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	e->tag = tag;
	e->generation = generation;
	e->size = rrs->size;
	e->count = rrs->count;
	memcpy(e->rdata, rrs->rdata, rrs->size);
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
