/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file policy.h
 * \brief Pure MX policy core: records + weights + states + random source -> plan.
 *
 * Knows nothing of knotd or packets; the glue feeds it one MX RRset at a
 * time and applies the resulting plan to the wire.
 */

#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/*! Largest MX set the policy rewrites; larger sets pass through untouched. */
#define MXP_MAX_RECORDS 128

/*! Health state of one exchanger, as seen by the policy. */
typedef enum {
	MXP_STATE_UP = 0,
	MXP_STATE_DOWN,
	MXP_STATE_DRAIN,
} mxp_state_t;

/*! How a tier of equal-preference exchangers is rotated. */
typedef enum {
	MXP_ROT_PREFERENCE = 0, /*!< Weighted winner gets a strictly better preference. */
	MXP_ROT_ORDER,          /*!< Preferences untouched, weighted random wire order. */
	MXP_ROT_NONE,           /*!< Zone order. */
} mxp_rotation_t;

/*! What to answer when every exchanger of a set is down. */
typedef enum {
	MXP_ALLDOWN_SERVE_ALL = 0,
	MXP_ALLDOWN_SERVFAIL,
} mxp_alldown_t;

/*! One MX record of the set, in zone (canonical) order. */
typedef struct {
	uint16_t pref;      /*!< Preference from the zone. */
	uint16_t weight;    /*!< Effective weight: override, configured, or default. */
	mxp_state_t state;  /*!< Effective health state. */
	bool null_mx;       /*!< Exchange is the root name (RFC 7505). */
	uint64_t hash;      /*!< Sticky mode: keyed hash of (client net, owner, exchange). */
} mxp_record_t;

/*! Per-answer policy options. */
typedef struct {
	mxp_rotation_t rotation;
	mxp_alldown_t all_down;
	bool sticky;         /*!< Use record hashes instead of the random source. */
	bool tier_failover;  /*!< A fully down tier may hand over to the next one. */
	bool may_change_set; /*!< False in signed zones with DO: no removal, no new preferences. */
} mxp_opts_t;

/*! One record of the planned answer. */
typedef struct {
	uint16_t idx;  /*!< Index into the input records. */
	uint16_t pref; /*!< Preference to write. */
} mxp_slot_t;

/*! Outcome of policy_plan(). */
typedef enum {
	MXP_PLAN_UNCHANGED = 0, /*!< Serve the set exactly as the zone has it. */
	MXP_PLAN_REWRITE,       /*!< Serve plan->slots[0 .. count-1]. */
	MXP_PLAN_SERVFAIL,      /*!< Every exchanger down and all-down servfail. */
} mxp_plan_kind_t;

typedef struct {
	mxp_plan_kind_t kind;
	mxp_slot_t slots[MXP_MAX_RECORDS]; /*!< Answer records in wire order. */
	uint16_t count;      /*!< Number of slots used (== input count when UNCHANGED). */
	uint16_t left_out;   /*!< Records left out because they are down. */
	bool reordered;      /*!< Wire order differs from zone order. */
	bool renumbered;     /*!< At least one preference differs from the zone. */
	bool degraded;       /*!< Any exchanger of the set is down or drain. */
	bool all_down;       /*!< Every exchanger of the set is down. */
	bool limited;        /*!< may_change_set was false and held back a removal or new preference. */
	bool null_mx;        /*!< Set holds a null MX: serve it as the zone has it, TTL included. */
} mxp_plan_t;

/*!
 * \brief Compute the answer plan for one MX set.
 *
 * \param recs   Records in zone order (count 1..MXP_MAX_RECORDS). knotd keeps
 *               MX rdata in canonical order, so this is sorted by preference;
 *               unsorted input is served with its tiers sorted by preference.
 * \param count  Number of records.
 * \param opts   Policy options.
 * \param rng    Random source (used unless opts->sticky).
 * \param plan   Output plan.
 *
 * A set containing a null MX, or larger than MXP_MAX_RECORDS, yields
 * MXP_PLAN_UNCHANGED. The plan never contains zero records.
 */
void policy_plan(const mxp_record_t *recs, size_t count, const mxp_opts_t *opts,
                 mxp_rng_t *rng, mxp_plan_t *plan);

/*! Called by policy_variants() with each possible plan (valid during the call). */
typedef void (*policy_variant_fn)(const mxp_plan_t *plan, void *arg);

/*!
 * \brief Every plan policy_plan() can give for these inputs, up to the order
 *        of records: one per combination of weighted tier winners.
 *
 * For the signer, which needs each possible set of records and preferences
 * signed before it is served. Not for the query path (allocates).
 *
 * \return The number of plans passed to fn, or -1 if there would be more
 *         than 'max' (then fn was not called) or memory ran out.
 */
int policy_variants(const mxp_record_t *recs, size_t count, const mxp_opts_t *opts,
                    size_t max, policy_variant_fn fn, void *arg);

/*! TTL bounds of a zone's policy; 0 means no bound / no degraded cap. */
typedef struct {
	uint32_t min;
	uint32_t max;
	uint32_t degraded;
} mxp_ttl_opts_t;

/*!
 * \brief TTL for a set: clamp(zone_ttl, min, max); while degraded at most
 *        'degraded' (which wins over min); in a signed zone never above
 *        zone_ttl.
 */
uint32_t policy_ttl(uint32_t zone_ttl, const mxp_ttl_opts_t *opts, bool degraded,
                    bool zone_signed);
