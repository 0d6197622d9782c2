/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seen.h"

typedef struct {
	uint64_t tag;
	char zone[KNOT_DNAME_TXT_MAXLEN + 1];
} instance_t;

static struct {
	pthread_mutex_t lock;   /*!< Guards the instances and the source. */
	instance_t *instances;
	size_t ninstances;
	instance_t *gone;       /*!< Zones whose last instance went: forget their sets. */
	size_t ngone;
	seen_cache_fn cache_of;
	unsigned workers;

	/* Control thread only. */
	seen_set_t **sets;
	size_t nsets;
	setcache_view_t *last;  /*!< Last view of each worker's cache entry. */
	bool *last_ok;
	uint64_t *retired_seen; /*!< Per worker: retirements already counted. */
	unsigned last_workers;
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

void seen_set_source(seen_cache_fn cache_of, unsigned workers)
{
	pthread_mutex_lock(&seen.lock);
	seen.cache_of = cache_of;
	seen.workers = workers;
	pthread_mutex_unlock(&seen.lock);
}

void seen_instance_add(uint64_t tag, const char *zone)
{
	pthread_mutex_lock(&seen.lock);
	instance_t *grown = realloc(seen.instances, (seen.ninstances + 1) * sizeof(*grown));
	if (grown != NULL) {
		seen.instances = grown;
		grown[seen.ninstances].tag = tag;
		snprintf(grown[seen.ninstances].zone, sizeof(grown->zone), "%s", zone);
		seen.ninstances++;
	}
	pthread_mutex_unlock(&seen.lock);
}

void seen_instance_remove(uint64_t tag)
{
	pthread_mutex_lock(&seen.lock);
	for (size_t i = 0; i < seen.ninstances; i++) {
		if (seen.instances[i].tag != tag) {
			continue;
		}
		instance_t gone = seen.instances[i];
		seen.instances[i] = seen.instances[--seen.ninstances];
		/* A reload loads the zone's new instance first: only a removed zone is gone. */
		bool replaced = false;
		for (size_t j = 0; j < seen.ninstances && !replaced; j++) {
			replaced = strcmp(seen.instances[j].zone, gone.zone) == 0;
		}
		instance_t *grown = replaced ? NULL :
		                    realloc(seen.gone, (seen.ngone + 1) * sizeof(*grown));
		if (grown != NULL) {
			seen.gone = grown;
			grown[seen.ngone++] = gone;
		}
		break;
	}
	pthread_mutex_unlock(&seen.lock);
}

/* FNV-1a over the zone name and the rdata: a quick first comparison. */
static uint64_t set_hash(const char *zone, const uint8_t *rdata, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const char *p = zone; *p != '\0'; p++) {
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	}
	for (size_t i = 0; i < size; i++) {
		h = (h ^ rdata[i]) * 0x100000001b3ULL;
	}
	return h;
}

static void set_free(seen_set_t *set)
{
	if (set != NULL) {
		free(set->rrs.rdata);
		free(set->first);
		free(set);
	}
}

static void set_remove(size_t i)
{
	set_free(seen.sets[i]);
	seen.sets[i] = seen.sets[--seen.nsets];
}

static seen_set_t *set_get(const char *zone, const setcache_view_t *v, int64_t now)
{
	uint64_t h = set_hash(zone, v->rdata, v->size);
	for (size_t i = 0; i < seen.nsets; i++) {
		seen_set_t *s = seen.sets[i];
		if (s->hash == h && s->rrs.size == v->size && s->rrs.count == v->count &&
		    strcmp(s->zone, zone) == 0 && memcmp(s->rrs.rdata, v->rdata, v->size) == 0) {
			return s;
		}
	}

	if (seen.sets == NULL) {
		seen.sets = calloc(SEEN_MAX_SETS, sizeof(*seen.sets));
		if (seen.sets == NULL) {
			return NULL;
		}
	}
	if (seen.nsets == SEEN_MAX_SETS) {
		size_t oldest = 0;
		for (size_t i = 1; i < seen.nsets; i++) {
			if (seen.sets[i]->last_seen < seen.sets[oldest]->last_seen) {
				oldest = i;
			}
		}
		set_remove(oldest);
	}

	seen_set_t *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	s->rrs.rdata = malloc(v->size);
	s->first = calloc(v->count, sizeof(*s->first));
	if (s->rrs.rdata == NULL || s->first == NULL) {
		set_free(s);
		return NULL;
	}
	memcpy(s->rrs.rdata, v->rdata, v->size);
	s->rrs.size = v->size;
	s->rrs.count = v->count;
	s->hash = h;
	s->last_seen = now;
	snprintf(s->zone, sizeof(s->zone), "%s", zone);
	seen.sets[seen.nsets++] = s;
	return s;
}

static const char *instance_zone(uint64_t tag)
{
	for (size_t i = 0; i < seen.ninstances; i++) {
		if (seen.instances[i].tag == tag) {
			return seen.instances[i].zone;
		}
	}
	return NULL;
}

static void free_views(void)
{
	free(seen.last);
	free(seen.last_ok);
	free(seen.retired_seen);
	seen.last = NULL;
	seen.last_ok = NULL;
	seen.retired_seen = NULL;
}

/* Add what a worker's entry counted since it was last seen (all of it if it is new). */
static void account(unsigned w, unsigned way, const setcache_view_t *view, int64_t now)
{
	size_t at = (size_t)w * SETCACHE_WAYS + way;
	setcache_view_t *prev = &seen.last[at];
	bool same = seen.last_ok[at] && prev->seq == view->seq && prev->tag == view->tag;
	uint32_t answers = view->answers - (same ? prev->answers : 0);
	const char *zone = answers > 0 ? instance_zone(view->tag) : NULL;
	seen_set_t *set = zone != NULL ? set_get(zone, view, now) : NULL;
	if (set != NULL) {
		set->answers += answers;
		set->last_seen = now;
		for (uint16_t i = 0; i < view->count; i++) {
			set->first[i] += view->first[i] - (same ? prev->first[i] : 0);
		}
	}
	*prev = *view;
	seen.last_ok[at] = true;
}

void seen_harvest(int64_t now)
{
	pthread_mutex_lock(&seen.lock);
	if (seen.cache_of == NULL) {
		pthread_mutex_unlock(&seen.lock);
		return;
	}
	if (seen.last == NULL || seen.last_workers != seen.workers) {
		free_views();
		size_t n = (size_t)seen.workers * SETCACHE_WAYS;
		seen.last = calloc(n, sizeof(*seen.last));
		seen.last_ok = calloc(n, sizeof(*seen.last_ok));
		seen.retired_seen = calloc(seen.workers, sizeof(*seen.retired_seen));
		seen.last_workers = seen.workers;
		if (seen.last == NULL || seen.last_ok == NULL || seen.retired_seen == NULL) {
			free_views();
			pthread_mutex_unlock(&seen.lock);
			return;
		}
		/* Retirements from before the first harvest are part of the entries' history. */
		for (unsigned w = 0; w < seen.workers; w++) {
			const setcache_t *cache = seen.cache_of(w);
			uint64_t count = atomic_load_explicit(&cache->retired_count, memory_order_acquire);
			seen.retired_seen[w] = count > SETCACHE_RETIRED ? count - SETCACHE_RETIRED : 0;
		}
	}

	for (unsigned w = 0; w < seen.workers; w++) {
		const setcache_t *cache = seen.cache_of(w);
		/* Entries evicted since the last harvest first, in order, then the live ones. */
		static setcache_retired_t retired;
		uint64_t count = atomic_load_explicit(&cache->retired_count, memory_order_acquire);
		uint64_t from = seen.retired_seen[w] + 1;
		if (count >= SETCACHE_RETIRED && from <= count - SETCACHE_RETIRED) {
			from = count - SETCACHE_RETIRED + 1;  /* Overwritten meanwhile: lost. */
		}
		for (uint64_t n = from; n <= count; n++) {
			if (setcache_read_retired(cache, n, &retired)) {
				account(w, retired.way, &retired.view, now);
			}
		}
		seen.retired_seen[w] = count;

		static setcache_view_t view;
		for (unsigned way = 0; way < SETCACHE_WAYS; way++) {
			if (setcache_read(&cache->entry[way], &view)) {
				account(w, way, &view, now);
			}
		}
	}

	for (size_t i = 0; i < seen.nsets; ) {
		bool gone = false;
		for (size_t g = 0; g < seen.ngone && !gone; g++) {
			gone = strcmp(seen.sets[i]->zone, seen.gone[g].zone) == 0;
		}
		if (gone || seen.sets[i]->last_seen + SEEN_MAX_AGE < now) {
			set_remove(i);
		} else {
			i++;
		}
	}
	free(seen.gone);
	seen.gone = NULL;
	seen.ngone = 0;
	pthread_mutex_unlock(&seen.lock);
}

size_t seen_count(void)
{
	return seen.nsets;
}

const seen_set_t *seen_get(size_t i)
{
	return i < seen.nsets ? seen.sets[i] : NULL;
}

int seen_find_exchanger(const seen_set_t *set, const knot_dname_t *name)
{
	knot_rdata_t *rd = set->rrs.rdata;
	for (uint16_t i = 0; i < set->rrs.count; i++, rd = knot_rdataset_next(rd)) {
		if (knot_dname_is_case_equal(rd->data + 2, name)) {
			return i;
		}
	}
	return -1;
}

void seen_clear(void)
{
	for (size_t i = 0; i < seen.nsets; i++) {
		set_free(seen.sets[i]);
	}
	free(seen.sets);
	seen.sets = NULL;
	seen.nsets = 0;
	pthread_mutex_lock(&seen.lock);
	free_views();
	free(seen.gone);
	seen.gone = NULL;
	seen.ngone = 0;
	if (seen.ninstances == 0) {
		free(seen.instances);
		seen.instances = NULL;
	}
	pthread_mutex_unlock(&seen.lock);
}
