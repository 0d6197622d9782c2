/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file setcache.h
 * \brief Small per-thread cache of what is fixed about an MX set between
 *        answers: the effective weight of each record.
 *
 * Resolving weights means comparing every exchanger name with the weight
 * table, which costs more than the rest of the answer. The result depends
 * only on the instance's configuration and the set's rdata, so an entry is
 * keyed by an instance tag and a copy of the rdata bytes: a byte-equal set
 * is the same set, whatever memory it lives in after a zone reload.
 */

#pragma once

#include <stdint.h>

#include <libknot/libknot.h>

#include "policy.h"

#define SETCACHE_WAYS       4
#define SETCACHE_MAX_RDATA  512  /*!< Larger sets are resolved every time. */

typedef struct {
	uint64_t tag;      /*!< Instance tag; 0 = empty entry. */
	uint16_t size;     /*!< Rdata bytes. */
	uint16_t count;    /*!< Records. */
	uint16_t weight[MXP_MAX_RECORDS];
	uint8_t rdata[SETCACHE_MAX_RDATA];
} setcache_entry_t;

typedef struct {
	setcache_entry_t entry[SETCACHE_WAYS];
	unsigned next;     /*!< Round-robin victim. */
} setcache_t;

/*!
 * \brief Cached weights of a set, or NULL.
 */
const uint16_t *setcache_get(const setcache_t *cache, uint64_t tag, const knot_rdataset_t *rrs);

/*!
 * \brief Claim an entry for a set; the caller fills the returned weights
 *        (rrs->count of them). NULL if the set is too large to cache.
 */
uint16_t *setcache_put(setcache_t *cache, uint64_t tag, const knot_rdataset_t *rrs);
