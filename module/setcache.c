/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <string.h>

#include "setcache.h"

const uint16_t *setcache_get(const setcache_t *cache, uint64_t tag, const knot_rdataset_t *rrs)
{
	if (tag == 0) {
		return NULL;
	}
	for (unsigned i = 0; i < SETCACHE_WAYS; i++) {
		const setcache_entry_t *e = &cache->entry[i];
		if (e->tag == tag && e->size == rrs->size && e->count == rrs->count &&
		    memcmp(e->rdata, rrs->rdata, rrs->size) == 0) {
			return e->weight;
		}
	}
	return NULL;
}

uint16_t *setcache_put(setcache_t *cache, uint64_t tag, const knot_rdataset_t *rrs)
{
	if (tag == 0 || rrs->size > SETCACHE_MAX_RDATA || rrs->count > MXP_MAX_RECORDS) {
		return NULL;
	}
	setcache_entry_t *e = &cache->entry[cache->next];
	cache->next = (cache->next + 1) % SETCACHE_WAYS;
	e->tag = tag;
	e->size = rrs->size;
	e->count = rrs->count;
	memcpy(e->rdata, rrs->rdata, rrs->size);
	return e->weight;
}
