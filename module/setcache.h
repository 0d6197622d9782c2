/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file setcache.h
 * \brief Small per-thread cache of what is fixed about an MX set between
 *        answers: the effective weight and health state of each record.
 *
 * Resolving them means looking every exchanger name up in the weight table
 * and the health registry, which costs more than the rest of the answer.
 * The result depends only on the instance's configuration, the registry
 * snapshot and the set's rdata, so an entry is keyed by an instance tag, the
 * registry generation and a copy of the rdata bytes: a byte-equal set is
 * the same set, whatever memory it lives in after a zone reload.
 */

#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "policy.h"

#define SETCACHE_WAYS       4
#define SETCACHE_MAX_RDATA  512  /*!< Larger sets are resolved every time. */

/*
 * One thread writes an entry; the control thread reads them to learn which
 * sets were answered and how often each exchanger was served first. 'seq'
 * is odd while the owner rewrites the entry (a sequence lock): a reader
 * keeps what it copied only if 'seq' was even and unchanged around the copy.
 * The counters only grow while the entry lives.
 */
typedef struct {
	_Atomic uint32_t seq;
	uint64_t tag;      /*!< Instance tag; 0 = empty entry. */
	uint64_t generation; /*!< Registry generation the states come from. */
	uint16_t size;     /*!< Rdata bytes. */
	uint16_t count;    /*!< Records. */
	uint16_t weight[MXP_MAX_RECORDS];
	uint8_t state[MXP_MAX_RECORDS];  /*!< mxp_state_t */
	uint8_t rdata[SETCACHE_MAX_RDATA];
	/* Signed zones only, filled by the owner thread on first need: */
	bool hashed;                     /*!< name_hash[] is filled. */
	uint64_t name_hash[MXP_MAX_RECORDS]; /*!< sigcache_name_hash() of each exchange. */
	uint64_t zone_recs;              /*!< Sum of sigcache_rec() of the zone's records. */
	_Atomic uint32_t answers;        /*!< Answers given from this entry. */
	_Atomic uint32_t first[MXP_MAX_RECORDS]; /*!< ... in which record i had the best preference. */
} setcache_entry_t;

/*! What a reader copied out of an entry. */
typedef struct {
	uint32_t seq;
	uint64_t tag;
	uint16_t size;
	uint16_t count;
	uint8_t rdata[SETCACHE_MAX_RDATA];
	uint32_t answers;
	uint32_t first[MXP_MAX_RECORDS];
} setcache_view_t;

/*! Evicted entries whose counters the control thread has not seen yet. */
#define SETCACHE_RETIRED 32

typedef struct {
	_Atomic uint32_t seq;   /*!< Odd while being written. */
	uint64_t number;        /*!< Which retirement this is (1, 2, ...). */
	unsigned way;           /*!< The cache entry it came from. */
	setcache_view_t view;
} setcache_retired_t;

typedef struct {
	setcache_entry_t entry[SETCACHE_WAYS];
	unsigned next;     /*!< Round-robin victim. */
	_Atomic uint64_t retired_count;               /*!< Retirements so far. */
	setcache_retired_t retired[SETCACHE_RETIRED]; /*!< Ring of the latest ones. */
} setcache_t;

/*!
 * \brief Cached entry of a set, or NULL.
 */
setcache_entry_t *setcache_get(setcache_t *cache, uint64_t tag, uint64_t generation,
                               const knot_rdataset_t *rrs);

/*!
 * \brief Claim an entry for a set; the caller fills its weight[] and state[]
 *        (rrs->count of each). NULL if the set is too large to cache.
 */
setcache_entry_t *setcache_put(setcache_t *cache, uint64_t tag, uint64_t generation,
                               const knot_rdataset_t *rrs);

/*!
 * \brief Count one answer given from an entry (owner thread only), and
 *        the records that had the best preference in it (ties: each).
 */
void setcache_count(setcache_entry_t *entry, const mxp_plan_t *plan);

/*!
 * \brief Copy an entry written by another thread, consistently.
 *
 * \return false if the entry is empty or was being rewritten (try later).
 */
bool setcache_read(const setcache_entry_t *entry, setcache_view_t *view);

/*!
 * \brief Copy retirement number 'number' (1-based) of a cache written by
 *        another thread.
 *
 * \return false if it was overwritten already or is being written.
 */
bool setcache_read_retired(const setcache_t *cache, uint64_t number, setcache_retired_t *out);
