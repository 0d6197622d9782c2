/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file seen.h
 * \brief The MX sets the module has answered, remembered (bounded) per zone,
 *        with how often each exchanger was served first.
 *
 * Query threads only count into their own set cache (setcache_count());
 * the control thread harvests those counters (seen_harvest()) and keeps
 * the totals, so `status` can say where an exchanger is used and a `down`
 * can be refused when it would leave a set with every exchanger down.
 */

#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "setcache.h"

/*! At most this many sets are remembered; the least recently answered go first. */
#define SEEN_MAX_SETS  4096
/*! A set not answered for this long is forgotten (seconds); so are the sets of a removed zone. */
#define SEEN_MAX_AGE   (24 * 3600)

typedef struct {
	uint64_t hash;
	char zone[KNOT_DNAME_TXT_MAXLEN + 1];
	int64_t last_seen;
	uint64_t answers;
	knot_rdataset_t rrs;   /*!< The set's records (malloc'ed copy). */
	uint64_t *first;       /*!< Per record: answers in which it had the best preference. */
} seen_set_t;

/*! Where the per-worker caches are (set once by the glue). */
typedef setcache_t *(*seen_cache_fn)(unsigned worker);
void seen_set_source(seen_cache_fn cache_of, unsigned workers);

/*! Instances come and go with reloads; their zone names label the sets. */
void seen_instance_add(uint64_t tag, const char *zone);
void seen_instance_remove(uint64_t tag);

/*! Collect the workers' counters (control thread only). */
void seen_harvest(int64_t now);

/*! Remembered sets (control thread only; valid until the next harvest). */
size_t seen_count(void);
const seen_set_t *seen_get(size_t i);

/*! Index of an exchanger (any case) in a set, or -1. */
int seen_find_exchanger(const seen_set_t *set, const knot_dname_t *name);

/*! Forget everything (last unload). */
void seen_clear(void);
