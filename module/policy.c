/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/*
 * A tier is the set of records sharing one preference. Inside a tier the
 * kept records are split into ordered sublevels (e.g. [winner] [rest]
 * [drain]); every sublevel gets its own preference when more than one is
 * needed, so that senders, which sort by preference, see the intended order.
 */
#define MAX_LEVELS (MXP_MAX_RECORDS * 3)

typedef struct {
	uint16_t start;    /*!< First slot of the level. */
	uint16_t len;      /*!< Number of slots. */
	uint16_t tier;     /*!< Index of the tier the level belongs to. */
} level_t;

typedef struct {
	double key;        /*!< Exponential race key: lowest runs first. */
	bool zero;         /*!< Weight 0 in a tier with positive weights. */
	uint16_t idx;
} racer_t;

/* Stable sort of record indices by preference (zone order inside a tier). */
static void sort_by_pref(const mxp_record_t *recs, size_t count, uint16_t *order)
{
	/* knotd's canonical order is already sorted: check before sorting. */
	size_t sorted = 1;
	order[0] = 0;
	while (sorted < count && recs[sorted - 1].pref <= recs[sorted].pref) {
		order[sorted] = sorted;
		sorted++;
	}
	for (size_t i = sorted; i < count; i++) {
		size_t j = i;
		while (j > 0 && recs[order[j - 1]].pref > recs[i].pref) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
}

static bool racer_before(const racer_t *a, const racer_t *b)
{
	if (a->zero != b->zero) {
		return !a->zero;
	}
	return a->key < b->key;
}

/*
 * Weighted order by an exponential race: each member draws u in (0,1) and
 * runs in -ln(u)/w; the first to arrive wins with probability w / sum(w),
 * and the whole order is weighted sampling without replacement. With
 * keyed hashes as u this is weighted rendezvous hashing: removing one
 * member only moves the clients whose winner it was.
 */
static void race(const mxp_record_t *recs, uint16_t *members, size_t n,
                 const mxp_opts_t *opts, mxp_rng_t *rng)
{
	racer_t racers[MXP_MAX_RECORDS];
	bool any_positive = false;
	for (size_t i = 0; i < n; i++) {
		any_positive |= recs[members[i]].weight > 0;
	}

	for (size_t i = 0; i < n; i++) {
		const mxp_record_t *rec = &recs[members[i]];
		uint64_t bits = opts->sticky ? rec->hash : rng_next(rng);
		double u = rng_unit(bits);
		racers[i].idx = members[i];
		if (rec->weight > 0) {
			racers[i].zero = false;
			racers[i].key = -log(u) / rec->weight;
		} else {
			/* All-zero tiers are uniform; a zero in a mixed tier runs last. */
			racers[i].zero = any_positive;
			racers[i].key = -log(u);
		}
	}

	for (size_t i = 1; i < n; i++) {
		racer_t cur = racers[i];
		size_t j = i;
		while (j > 0 && racer_before(&cur, &racers[j - 1])) {
			racers[j] = racers[j - 1];
			j--;
		}
		racers[j] = cur;
	}

	for (size_t i = 0; i < n; i++) {
		members[i] = racers[i].idx;
	}
}

static bool weights_differ(const mxp_record_t *recs, const uint16_t *members, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (recs[members[i]].weight != recs[members[0]].weight) {
			return true;
		}
	}
	return false;
}

/*
 * The weighted winner of a tier (chance weight / sum of positive weights).
 * Sticky choices use the same race as race() so that they stay rendezvous-
 * stable; random ones need a single draw and no logarithm.
 */
static size_t pick_winner(const mxp_record_t *recs, const uint16_t *members, size_t n,
                          const mxp_opts_t *opts, mxp_rng_t *rng)
{
	if (opts->sticky) {
		size_t best = 0;
		double best_key = INFINITY;
		for (size_t i = 0; i < n; i++) {
			const mxp_record_t *rec = &recs[members[i]];
			if (rec->weight == 0) {
				continue;
			}
			double key = -log(rng_unit(rec->hash)) / rec->weight;
			if (key < best_key) {
				best_key = key;
				best = i;
			}
		}
		return best;
	}

	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		total += recs[members[i]].weight;
	}
	/* Multiply-shift maps 64 random bits onto [0, total) with negligible bias. */
	uint64_t r = (uint64_t)(((unsigned __int128)rng_next(rng) * total) >> 64);
	for (size_t i = 0; i < n; i++) {
		uint16_t w = recs[members[i]].weight;
		if (r < w) {
			return i;
		}
		r -= w;
	}
	return 0;  /* Not reached: r < total. */
}

static size_t count_positive(const mxp_record_t *recs, const uint16_t *members, size_t n)
{
	size_t positive = 0;
	for (size_t i = 0; i < n; i++) {
		positive += recs[members[i]].weight > 0;
	}
	return positive;
}

/* Position of the k-th member of positive weight (the draws can pick no other). */
static size_t nth_positive(const mxp_record_t *recs, const uint16_t *members, size_t n,
                           size_t k)
{
	for (size_t i = 0; i < n; i++) {
		if (recs[members[i]].weight > 0 && k-- == 0) {
			return i;
		}
	}
	return 0;
}

/*
 * Give each level a preference, strictly increasing across levels, within
 * 0..65535, changing as little as possible: a tier's first level keeps the
 * tier's value when the gap to the next tier allows it; otherwise the tier
 * ends just below the next tier; only when neither fits do later tiers move.
 */
static bool assign_prefs(const level_t *levels, size_t nlevels, const uint16_t *tier_pref,
                         size_t ntiers, int32_t *values)
{
	int32_t prev = -1;
	size_t l = 0;
	while (l < nlevels) {
		uint16_t tier = levels[l].tier;
		size_t s = 0;
		while (l + s < nlevels && levels[l + s].tier == tier) {
			s++;
		}
		int32_t pref = tier_pref[tier];
		int32_t lo = prev + 1;
		int32_t hi = (tier + 1u < ntiers) ? tier_pref[tier + 1] - 1 : 65535;
		int32_t start = pref > lo ? pref : lo;
		if (s > 1 && start + (int32_t)s - 1 > hi) {
			int32_t below = hi - (int32_t)s + 1;
			start = below >= lo ? below : lo;
		}
		for (size_t j = 0; j < s; j++) {
			values[l + j] = start + (int32_t)j;
		}
		prev = start + (int32_t)s - 1;
		l += s;
	}

	if (prev > 65535) {
		int32_t cap = 65535;
		for (size_t i = nlevels; i-- > 0; ) {
			if (values[i] > cap) {
				values[i] = cap;
			}
			cap = values[i] - 1;
		}
		if (values[0] < 0) {
			return false;
		}
	}
	return true;
}

static void plan_unchanged(mxp_plan_t *plan, const mxp_record_t *recs, size_t count)
{
	plan->kind = MXP_PLAN_UNCHANGED;
	plan->left_out = 0;
	plan->reordered = false;
	plan->renumbered = false;
	if (count > MXP_MAX_RECORDS) {
		plan->count = 0;
		return;
	}
	plan->count = count;
	for (size_t i = 0; i < count; i++) {
		plan->slots[i].idx = i;
		plan->slots[i].pref = recs[i].pref;
	}
}

/*
 * The plan itself. With 'forced', the winner of the k-th tier that draws one
 * is its forced[k]-th member of positive weight instead of a random or
 * sticky pick; 'radix', when given, receives how many such members each
 * drawing tier has, and *ndraws how many tiers drew.
 */
static void plan_core(const mxp_record_t *recs, size_t count, const mxp_opts_t *opts,
                      mxp_rng_t *rng, const uint16_t *forced, uint16_t *radix,
                      size_t *ndraws, mxp_plan_t *plan)
{
	size_t draws = 0;
	if (ndraws != NULL) {
		*ndraws = 0;
	}
	plan->degraded = false;
	plan->all_down = false;
	plan->null_mx = false;
	plan->limited = false;
	plan->left_out = 0;
	plan->reordered = false;
	plan->renumbered = false;
	plan->kind = MXP_PLAN_UNCHANGED;
	if (count == 0 || count > MXP_MAX_RECORDS) {
		plan_unchanged(plan, recs, count);
		return;
	}

	bool any_alive = false;
	int32_t best_alive = 65536;
	for (size_t i = 0; i < count; i++) {
		if (recs[i].null_mx) {
			plan->null_mx = true;
			plan->degraded = false;
			plan_unchanged(plan, recs, count);
			return;  /* RFC 7505: "no mail" is never rotated or filtered. */
		}
		if (recs[i].state != MXP_STATE_UP) {
			plan->degraded = true;
		}
		if (recs[i].state != MXP_STATE_DOWN) {
			any_alive = true;
			if (recs[i].pref < best_alive) {
				best_alive = recs[i].pref;
			}
		}
	}

	if (!any_alive) {
		plan->all_down = true;
		if (opts->all_down == MXP_ALLDOWN_SERVFAIL) {
			plan->kind = MXP_PLAN_SERVFAIL;
			plan->count = 0;
			return;
		}
	}

	/*
	 * Relay safety (RFC 5321 5.1): a down record stays while no live record
	 * of the same or a better preference is left to take its place, so no
	 * worse tier becomes the best unless the operator opted in.
	 */
	bool keep[MXP_MAX_RECORDS];
	for (size_t i = 0; i < count; i++) {
		if (!any_alive || recs[i].state != MXP_STATE_DOWN) {
			keep[i] = true;
		} else {
			keep[i] = !opts->tier_failover && recs[i].pref < best_alive;
			if (!keep[i] && !opts->may_change_set) {
				keep[i] = true;
				plan->limited = true;
			}
		}
	}

	uint16_t order[MXP_MAX_RECORDS];
	sort_by_pref(recs, count, order);

	uint16_t tier_pref[MXP_MAX_RECORDS];
	level_t levels[MAX_LEVELS];
	size_t ntiers = 0, nlevels = 0, nslots = 0;
	bool multi_level = false;

	for (size_t t0 = 0; t0 < count; ) {
		uint16_t pref = recs[order[t0]].pref;
		size_t t1 = t0;
		uint16_t cand[MXP_MAX_RECORDS], drain[MXP_MAX_RECORDS];
		size_t ncand = 0, ndrain = 0;
		for (; t1 < count && recs[order[t1]].pref == pref; t1++) {
			uint16_t idx = order[t1];
			if (!keep[idx]) {
				plan->left_out++;
			} else if (recs[idx].state == MXP_STATE_DRAIN) {
				drain[ndrain++] = idx;
			} else {
				cand[ncand++] = idx;
			}
		}
		t0 = t1;
		if (ncand + ndrain == 0) {
			continue;
		}

		uint16_t tier = ntiers++;
		tier_pref[tier] = pref;
		size_t first_level = nlevels;

		if (ncand > 0) {
			size_t winner_len = 0;
			switch (opts->rotation) {
			case MXP_ROT_PREFERENCE:
				if (ncand > 1 && weights_differ(recs, cand, ncand)) {
					/*
					 * Bring the winner to the front, keep the rest in zone
					 * order. Without new preferences (signed + DO) only the
					 * wire order changes, which keeps the signature valid.
					 */
					size_t w = 0;
					if (forced != NULL || radix != NULL) {
						w = nth_positive(recs, cand, ncand,
						                 forced != NULL ? forced[draws] : 0);
					} else {
						w = pick_winner(recs, cand, ncand, opts, rng);
					}
					if (radix != NULL) {
						radix[draws] = count_positive(recs, cand, ncand);
					}
					draws++;
					uint16_t winner = cand[w];
					for (; w > 0; w--) {
						cand[w] = cand[w - 1];
					}
					cand[0] = winner;
					if (opts->may_change_set) {
						winner_len = 1;
					} else {
						plan->limited = true;
					}
				}
				break;
			case MXP_ROT_ORDER:
				if (ncand > 1) {
					race(recs, cand, ncand, opts, rng);
				}
				break;
			case MXP_ROT_NONE:
				break;
			}

			size_t start = nslots;
			for (size_t i = 0; i < ncand; i++) {
				plan->slots[nslots++].idx = cand[i];
			}
			if (winner_len > 0) {
				levels[nlevels++] = (level_t){ start, 1, tier };
				start++;
			}
			if (nslots > start) {
				levels[nlevels++] = (level_t){ start, nslots - start, tier };
			}
		}

		if (ndrain > 0) {
			size_t start = nslots;
			for (size_t i = 0; i < ndrain; i++) {
				plan->slots[nslots++].idx = drain[i];
			}
			if (ncand > 0 && opts->may_change_set) {
				levels[nlevels++] = (level_t){ start, ndrain, tier };
			} else {
				plan->limited |= (ncand > 0);
				/* Only drain members, or no new preferences allowed: one level. */
				if (nlevels > first_level) {
					levels[nlevels - 1].len += ndrain;
				} else {
					levels[nlevels++] = (level_t){ start, ndrain, tier };
				}
			}
		}

		if (nlevels - first_level > 1) {
			multi_level = true;
		}
	}

	int32_t values[MAX_LEVELS];
	bool renumber = multi_level && assign_prefs(levels, nlevels, tier_pref, ntiers, values);
	for (size_t l = 0; l < nlevels; l++) {
		for (size_t s = levels[l].start; s < levels[l].start + levels[l].len; s++) {
			uint16_t idx = plan->slots[s].idx;
			plan->slots[s].pref = renumber ? (uint16_t)values[l] : recs[idx].pref;
			if (plan->slots[s].pref != recs[idx].pref) {
				plan->renumbered = true;
			}
			if (s > 0 && plan->slots[s - 1].idx > idx) {
				plan->reordered = true;
			}
		}
	}

	plan->count = nslots;
	if (plan->left_out > 0 || plan->reordered || plan->renumbered) {
		plan->kind = MXP_PLAN_REWRITE;
	}
	if (ndraws != NULL) {
		*ndraws = draws;
	}
	/* UNCHANGED plans list every record in zone order with its own preference. */
}

void policy_plan(const mxp_record_t *recs, size_t count, const mxp_opts_t *opts,
                 mxp_rng_t *rng, mxp_plan_t *plan)
{
	plan_core(recs, count, opts, rng, NULL, NULL, NULL, plan);
}

int policy_variants(const mxp_record_t *recs, size_t count, const mxp_opts_t *opts,
                    size_t max, policy_variant_fn fn, void *arg)
{
	/*
	 * Only the winner draws of 'preference' tiers change which records and
	 * preferences a plan has ('order' races only change the wire order):
	 * count the draws, then walk every combination of winners.
	 */
	uint16_t radix[MXP_MAX_RECORDS], digit[MXP_MAX_RECORDS] = { 0 };
	size_t ndraws = 0;
	mxp_rng_t rng;
	static const uint8_t seed[32] = { 1 };
	rng_seed(&rng, seed);

	mxp_plan_t *plan = malloc(sizeof(*plan));
	if (plan == NULL) {
		return -1;
	}
	plan_core(recs, count, opts, &rng, NULL, radix, &ndraws, plan);
	size_t total = 1;
	for (size_t k = 0; k < ndraws; k++) {
		if (radix[k] == 0 || total > max / radix[k]) {
			free(plan);
			return -1;
		}
		total *= radix[k];
	}
	if (total > max) {
		free(plan);
		return -1;
	}

	for (size_t n = 0; n < total; n++) {
		plan_core(recs, count, opts, &rng, digit, NULL, NULL, plan);
		fn(plan, arg);
		for (size_t k = 0; k < ndraws; k++) {
			if (++digit[k] < radix[k]) {
				break;
			}
			digit[k] = 0;
		}
	}
	free(plan);
	return (int)total;
}

uint32_t policy_ttl(uint32_t zone_ttl, const mxp_ttl_opts_t *opts, bool degraded,
                    bool zone_signed)
{
	uint32_t ttl = zone_ttl;
	if (opts->min > 0 && ttl < opts->min) {
		ttl = opts->min;
	}
	if (opts->max > 0 && ttl > opts->max) {
		ttl = opts->max;
	}
	if (degraded && opts->degraded > 0 && ttl > opts->degraded) {
		ttl = opts->degraded;
	}
	if (zone_signed && ttl > zone_ttl) {
		ttl = zone_ttl;  /* Validators cap at the RRSIG Original TTL anyway. */
	}
	return ttl;
}
