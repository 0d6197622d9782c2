/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of the pure MX policy core (policy.h): policy_plan() per
 * rotation mode, weights, sticky choice, health states, signed-zone limits,
 * renumbering bounds, and policy_ttl().
 *
 * Statistical tests use fixed seeds and a chi-square test at alpha 0.001
 * (critical values tabled in testutil.h with their degrees of freedom).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"
#include "rng.h"
#include "testutil.h"

#define N_MAX MXP_MAX_RECORDS
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const mxp_rotation_t ALL_MODES[] = { MXP_ROT_PREFERENCE, MXP_ROT_ORDER, MXP_ROT_NONE };

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static mxp_record_t rec(uint16_t pref, uint16_t weight, mxp_state_t state)
{
	mxp_record_t r = {
		.pref = pref,
		.weight = weight,
		.state = state,
		.null_mx = false,
		.hash = 0,
	};
	return r;
}

static mxp_opts_t opts_mode(mxp_rotation_t rot)
{
	mxp_opts_t o = {
		.rotation = rot,
		.all_down = MXP_ALLDOWN_SERVE_ALL,
		.sticky = false,
		.tier_failover = false,
		.may_change_set = true,
	};
	return o;
}

/*! The answer a plan describes, indexed both by wire position and by input. */
typedef struct {
	size_t n;                 /* records in the answer */
	uint16_t idx[N_MAX];      /* wire position -> input index */
	uint16_t pref[N_MAX];     /* wire position -> preference written */
	int pos[N_MAX];           /* input index -> wire position, -1 if left out */
	uint16_t newpref[N_MAX];  /* input index -> preference written */
} answer_t;

static const char *kind_str(mxp_plan_kind_t k)
{
	switch (k) {
	case MXP_PLAN_UNCHANGED: return "UNCHANGED";
	case MXP_PLAN_REWRITE:   return "REWRITE";
	case MXP_PLAN_SERVFAIL:  return "SERVFAIL";
	default:                 return "?";
	}
}

static void dump(const mxp_record_t *recs, size_t n, const mxp_plan_t *plan)
{
	print_error("input:");
	for (size_t i = 0; i < n; i++) {
		print_error(" [%zu]%u/w%u/%c", i, recs[i].pref, recs[i].weight,
		            recs[i].state == MXP_STATE_UP ? 'u' :
		            recs[i].state == MXP_STATE_DOWN ? 'D' : 'd');
	}
	print_error("\nplan: %s count %u left_out %u renum %d reord %d degr %d alldown %d:",
	            kind_str(plan->kind), plan->count, plan->left_out, plan->renumbered,
	            plan->reordered, plan->degraded, plan->all_down);
	if (plan->kind == MXP_PLAN_REWRITE) {
		for (size_t i = 0; i < plan->count && i < N_MAX; i++) {
			print_error(" [%u]%u", plan->slots[i].idx, plan->slots[i].pref);
		}
	}
	print_error("\n");
}

/*
 * Decode a non-SERVFAIL plan into the answer it stands for: the zone's set
 * for UNCHANGED, the slots for REWRITE. Asserts the structural rules: at
 * least one record, indices in range, each input at most once.
 */
static void get_answer(const mxp_record_t *recs, size_t n, const mxp_plan_t *plan,
                       answer_t *a)
{
	memset(a, 0, sizeof(*a));
	for (size_t i = 0; i < N_MAX; i++) {
		a->pos[i] = -1;
	}
	if (plan->kind == MXP_PLAN_UNCHANGED) {
		if (plan->count != n) {
			dump(recs, n, plan);
		}
		assert_int_equal(plan->count, n);
		a->n = n;
		for (size_t i = 0; i < n; i++) {
			a->idx[i] = i;
			a->pref[i] = recs[i].pref;
			a->pos[i] = i;
			a->newpref[i] = recs[i].pref;
		}
		return;
	}
	if (plan->kind != MXP_PLAN_REWRITE) {
		dump(recs, n, plan);
	}
	assert_int_equal(plan->kind, MXP_PLAN_REWRITE);
	if (plan->count < 1 || plan->count > n) {
		dump(recs, n, plan);
	}
	assert_true(plan->count >= 1);
	assert_true(plan->count <= n);
	a->n = plan->count;
	for (size_t k = 0; k < a->n; k++) {
		uint16_t i = plan->slots[k].idx;
		assert_true(i < n);
		if (a->pos[i] != -1) {
			dump(recs, n, plan);
		}
		assert_int_equal(a->pos[i], -1); /* each input at most once */
		a->idx[k] = i;
		a->pref[k] = plan->slots[k].pref;
		a->pos[i] = k;
		a->newpref[i] = plan->slots[k].pref;
	}
}

static void plan_answer(const mxp_record_t *recs, size_t n, const mxp_opts_t *o,
                        mxp_rng_t *rng, mxp_plan_t *plan, answer_t *a)
{
	memset(plan, 0x5a, sizeof(*plan)); /* no reliance on a zeroed output */
	policy_plan(recs, n, o, rng, plan);
	get_answer(recs, n, plan, a);
}

/* Kept member of tier 'pref' with the lowest written preference, or -1 if
 * that lowest value is shared. */
static int tier_winner(const mxp_record_t *recs, size_t n, const answer_t *a, uint16_t pref)
{
	int best = -1;
	bool tie = false;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].pref != pref || a->pos[i] < 0) {
			continue;
		}
		if (best < 0 || a->newpref[i] < a->newpref[best]) {
			best = i;
			tie = false;
		} else if (a->newpref[i] == a->newpref[best]) {
			tie = true;
		}
	}
	return tie ? -1 : best;
}

/* Kept member of tier 'pref' that comes first in wire order, or -1. */
static int tier_first(const mxp_record_t *recs, size_t n, const answer_t *a, uint16_t pref)
{
	for (size_t k = 0; k < a->n; k++) {
		if (recs[a->idx[k]].pref == pref) {
			return a->idx[k];
		}
	}
	(void)n;
	return -1;
}

static bool same_plan(const mxp_plan_t *p1, const mxp_plan_t *p2)
{
	if (p1->kind != p2->kind || p1->count != p2->count || p1->left_out != p2->left_out ||
	    p1->renumbered != p2->renumbered || p1->reordered != p2->reordered ||
	    p1->degraded != p2->degraded || p1->all_down != p2->all_down) {
		return false;
	}
	if (p1->kind != MXP_PLAN_REWRITE) {
		return true;
	}
	for (size_t k = 0; k < p1->count; k++) {
		if (p1->slots[k].idx != p2->slots[k].idx || p1->slots[k].pref != p2->slots[k].pref) {
			return false;
		}
	}
	return true;
}

/*
 * Rules that hold for every plan of a set without a null MX:
 *  - flags: degraded = any down/drain, all_down = every record down;
 *  - SERVFAIL exactly when all down and all-down is servfail;
 *  - never empty; left_out = records not in the answer;
 *  - a record is left out iff it is down, the set may change, and some
 *    not-down record of the same or better preference (with tier-failover:
 *    any not-down record) exists (such records always stay);
 *  - preference order of tiers preserved (strictly);
 *  - drain: after every non-drain tier mate, by preference and wire order;
 *  - may_change_set false: nothing left out, no preference changed;
 *  - order/none without drains: no preference changed;
 *  - none without drains: zone order;
 *  - renumbered / reordered consistent with the slots;
 *  - preference mode, tiers of up members only: equal weights -> members
 *    keep one shared preference; unequal -> exactly one strictly lowest,
 *    of positive weight if any member has one, the rest sharing a value.
 *  - order mode, tiers of up members: weight-0 after every positive one.
 */
static void check_invariants(const mxp_record_t *recs, size_t n, const mxp_opts_t *o,
                             const mxp_plan_t *plan)
{
	bool any_bad = false, all_down = true;
	for (size_t i = 0; i < n; i++) {
		any_bad |= (recs[i].state != MXP_STATE_UP);
		all_down &= (recs[i].state == MXP_STATE_DOWN);
	}
	bool ok = true;
#define CHECK(cond, ...) do { \
		if (ok && !(cond)) { \
			print_error(__VA_ARGS__); \
			print_error("\n"); \
			ok = false; \
		} \
	} while (0)

	CHECK(!plan->null_mx, "null_mx set for a set without a null MX");
	if (o->may_change_set) {
		CHECK(!plan->limited, "limited set although the set may change");
	}
	CHECK(plan->degraded == any_bad, "degraded %d, expected %d", plan->degraded, any_bad);
	CHECK(plan->all_down == all_down, "all_down %d, expected %d", plan->all_down, all_down);
	if (all_down && o->all_down == MXP_ALLDOWN_SERVFAIL) {
		CHECK(plan->kind == MXP_PLAN_SERVFAIL, "expected SERVFAIL");
		if (!ok) {
			dump(recs, n, plan);
		}
		assert_true(ok);
		return;
	}
	CHECK(plan->kind != MXP_PLAN_SERVFAIL, "unexpected SERVFAIL");
	if (!ok) {
		dump(recs, n, plan);
	}
	assert_true(ok);

	answer_t a;
	get_answer(recs, n, plan, &a);

	CHECK(plan->left_out == n - a.n, "left_out %u, answer has %zu of %zu",
	      plan->left_out, a.n, n);

	for (size_t i = 0; i < n; i++) {
		bool out = false;
		if (o->may_change_set && recs[i].state == MXP_STATE_DOWN) {
			for (size_t j = 0; j < n; j++) {
				if (recs[j].state != MXP_STATE_DOWN &&
				    (o->tier_failover || recs[j].pref <= recs[i].pref)) {
					out = true;
				}
			}
		}
		CHECK((a.pos[i] < 0) == out, "record %zu %s, expected %s", i,
		      a.pos[i] < 0 ? "left out" : "kept", out ? "left out" : "kept");
	}

	bool renum = false;
	bool any_drain_kept = false;
	for (size_t i = 0; i < n; i++) {
		if (a.pos[i] < 0) {
			continue;
		}
		renum |= (a.newpref[i] != recs[i].pref);
		any_drain_kept |= (recs[i].state == MXP_STATE_DRAIN);
		for (size_t j = 0; j < n; j++) {
			if (a.pos[j] < 0) {
				continue;
			}
			if (recs[i].pref < recs[j].pref) {
				CHECK(a.newpref[i] < a.newpref[j],
				      "tier order: %zu (%u->%u) vs %zu (%u->%u)",
				      i, recs[i].pref, a.newpref[i], j, recs[j].pref, a.newpref[j]);
			}
			if (o->may_change_set && recs[i].pref == recs[j].pref &&
			    recs[i].state == MXP_STATE_DRAIN && recs[j].state != MXP_STATE_DRAIN) {
				CHECK(a.newpref[i] > a.newpref[j],
				      "drain %zu pref %u not after mate %zu pref %u",
				      i, a.newpref[i], j, a.newpref[j]);
				CHECK(a.pos[i] > a.pos[j],
				      "drain %zu at wire %d not after mate %zu at %d",
				      i, a.pos[i], j, a.pos[j]);
			}
		}
	}
	CHECK(plan->renumbered == renum, "renumbered %d, expected %d", plan->renumbered, renum);

	if (!o->may_change_set) {
		CHECK(a.n == n, "signed: answer has %zu of %zu", a.n, n);
		CHECK(!renum, "signed: preference changed");
	}
	if (o->rotation != MXP_ROT_PREFERENCE && !any_drain_kept) {
		CHECK(!renum, "order/none without drain: preference changed");
	}

	bool increasing = true;
	for (size_t k = 1; k < a.n; k++) {
		increasing &= (a.idx[k] > a.idx[k - 1]);
	}
	if (!increasing) {
		CHECK(plan->reordered, "wire order differs from zone order, reordered not set");
	}
	if (increasing && a.n == n) {
		CHECK(!plan->reordered, "zone order kept, reordered set");
	}
	if (o->rotation == MXP_ROT_NONE && !any_drain_kept) {
		CHECK(increasing, "none: not in zone order");
	}

	/* Per tier rules for tiers whose kept members are all up. */
	for (size_t t = 0; t < n; t++) {
		if (a.pos[t] < 0) {
			continue;
		}
		bool first_of_tier = true, all_up = true, eq_w = true, any_pos = false;
		size_t members = 0;
		for (size_t i = 0; i < n; i++) {
			if (recs[i].pref != recs[t].pref || a.pos[i] < 0) {
				continue;
			}
			if (i < t) {
				first_of_tier = false;
			}
			members++;
			all_up &= (recs[i].state == MXP_STATE_UP);
			eq_w &= (recs[i].weight == recs[t].weight);
			any_pos |= (recs[i].weight > 0);
		}
		if (!first_of_tier || !all_up || members < 2) {
			continue;
		}
		uint16_t p = recs[t].pref;
		if (o->rotation == MXP_ROT_PREFERENCE && o->may_change_set) {
			int w = tier_winner(recs, n, &a, p);
			if (eq_w) {
				for (size_t i = 0; i < n; i++) {
					if (recs[i].pref == p && a.pos[i] >= 0) {
						CHECK(a.newpref[i] == a.newpref[t],
						      "equal-weight tier %u split (%zu: %u, %zu: %u)",
						      p, i, a.newpref[i], t, a.newpref[t]);
					}
				}
			} else {
				CHECK(w >= 0, "tier %u with unequal weights has no single winner", p);
				if (w >= 0) {
					CHECK(!any_pos || recs[w].weight > 0,
					      "tier %u: weight-0 winner %d", p, w);
					int other = -1;
					for (size_t i = 0; i < n; i++) {
						if (recs[i].pref != p || a.pos[i] < 0 || (int)i == w) {
							continue;
						}
						if (other < 0) {
							other = i;
						}
						CHECK(a.newpref[i] == a.newpref[other],
						      "tier %u: non-winners differ (%zu: %u, %d: %u)",
						      p, i, a.newpref[i], other, a.newpref[other]);
					}
				}
			}
		}
		if (o->rotation == MXP_ROT_ORDER && any_pos) {
			for (size_t i = 0; i < n; i++) {
				for (size_t j = 0; j < n; j++) {
					if (recs[i].pref == p && recs[j].pref == p && a.pos[i] >= 0 &&
					    a.pos[j] >= 0 && recs[i].weight == 0 && recs[j].weight > 0) {
						CHECK(a.pos[i] > a.pos[j],
						      "order: weight-0 %zu before %zu", i, j);
					}
				}
			}
		}
	}
#undef CHECK
	if (!ok) {
		dump(recs, n, plan);
	}
	assert_true(ok);
}

/*
 * With may_change_set false, 'limited' says whether a removal or a new
 * preference was held back: exactly when the same set planned with
 * may_change_set true leaves something out or renumbers. (Whether that
 * happens does not depend on the random choices, only on the set.)
 */
static void check_limited(const mxp_record_t *recs, size_t n, const mxp_opts_t *o,
                          const mxp_plan_t *plan)
{
	if (o->may_change_set || plan->kind == MXP_PLAN_SERVFAIL) {
		return;
	}
	mxp_opts_t free_opts = *o;
	free_opts.may_change_set = true;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 12345);
	mxp_plan_t unlimited;
	policy_plan(recs, n, &free_opts, &rng, &unlimited);
	bool held_back = unlimited.kind == MXP_PLAN_REWRITE &&
	                 (unlimited.left_out > 0 || unlimited.renumbered);
	if (plan->limited != held_back) {
		print_error("limited %d, but unrestricted plan: left_out %u renumbered %d\n",
		            plan->limited, unlimited.left_out, unlimited.renumbered);
		dump(recs, n, plan);
	}
	assert_int_equal(plan->limited, held_back);
}

/* Plan and check all general rules; returns the decoded answer. */
static void plan_checked(const mxp_record_t *recs, size_t n, const mxp_opts_t *o,
                         mxp_rng_t *rng, mxp_plan_t *plan, answer_t *a)
{
	memset(plan, 0x5a, sizeof(*plan));
	policy_plan(recs, n, o, rng, plan);
	check_invariants(recs, n, o, plan);
	check_limited(recs, n, o, plan);
	if (plan->kind != MXP_PLAN_SERVFAIL) {
		get_answer(recs, n, plan, a);
	}
}

/* ---------------------------------------------------------------------- */
/* UNCHANGED                                                               */

static void test_unchanged_single_record(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 1);
	mxp_record_t r[1] = { rec(10, 5, MXP_STATE_UP) };
	mxp_plan_t plan;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		for (int sticky = 0; sticky < 2; sticky++) {
			o.sticky = sticky;
			policy_plan(r, 1, &o, &rng, &plan);
			assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
			assert_int_equal(plan.count, 1);
			assert_int_equal(plan.left_out, 0);
			assert_false(plan.renumbered);
			assert_false(plan.degraded);
			assert_false(plan.all_down);
		}
	}
}

static void test_unchanged_equal_weight_tier(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 2);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_plan_t plan;

	mxp_record_t one_tier[] = {
		rec(10, 3, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP),
	};
	/* Equal weights inside each tier, different between tiers. */
	mxp_record_t tiers[] = {
		rec(10, 1, MXP_STATE_UP), rec(10, 1, MXP_STATE_UP),
		rec(20, 7, MXP_STATE_UP), rec(20, 7, MXP_STATE_UP), rec(20, 7, MXP_STATE_UP),
	};
	/* Single-record tiers with any weights. */
	mxp_record_t singles[] = {
		rec(10, 5, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP), rec(30, 0, MXP_STATE_UP),
	};
	for (int i = 0; i < 200; i++) {
		policy_plan(one_tier, ARRAY_LEN(one_tier), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
		assert_int_equal(plan.count, ARRAY_LEN(one_tier));
		policy_plan(tiers, ARRAY_LEN(tiers), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
		assert_int_equal(plan.count, ARRAY_LEN(tiers));
		policy_plan(singles, ARRAY_LEN(singles), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
		assert_int_equal(plan.count, ARRAY_LEN(singles));
	}
	/* Sticky does not change that. */
	o.sticky = true;
	uint64_t hs = 5;
	for (int i = 0; i < 200; i++) {
		for (size_t k = 0; k < ARRAY_LEN(one_tier); k++) {
			one_tier[k].hash = tu_splitmix64(&hs);
		}
		policy_plan(one_tier, ARRAY_LEN(one_tier), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
	}
}

/* A tier where every member has weight 0 has all the same weight, so in
 * preference mode it is left as it is. */
static void test_unchanged_all_zero_tier_preference(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 3);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 0, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	for (int i = 0; i < 100; i++) {
		policy_plan(r, ARRAY_LEN(r), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
	}
}

static void test_unchanged_none_mode(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 4);
	mxp_opts_t o = opts_mode(MXP_ROT_NONE);
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 0, MXP_STATE_UP), rec(20, 9, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	for (int i = 0; i < 100; i++) {
		o.sticky = (i & 1);
		for (size_t k = 0; k < ARRAY_LEN(r); k++) {
			r[k].hash = rng_next(&rng);
		}
		policy_plan(r, ARRAY_LEN(r), &o, &rng, &plan);
		assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
		assert_int_equal(plan.count, ARRAY_LEN(r));
		assert_int_equal(plan.left_out, 0);
	}
}

/* A set with a null MX anywhere is returned untouched, whatever the states
 * and options. */
static void test_unchanged_null_mx(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 5);
	mxp_plan_t plan;
	const mxp_state_t states[] = { MXP_STATE_UP, MXP_STATE_DOWN, MXP_STATE_DRAIN };

	for (size_t where = 0; where < 4; where++) {
		mxp_record_t r[4] = {
			rec(10, 60, MXP_STATE_DOWN), rec(10, 30, MXP_STATE_UP),
			rec(10, 10, MXP_STATE_DRAIN), rec(20, 1, MXP_STATE_UP),
		};
		r[where].null_mx = true;
		r[where].pref = 0;
		for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
			for (int flags = 0; flags < 8; flags++) {
				mxp_opts_t o = opts_mode(ALL_MODES[m]);
				o.sticky = flags & 1;
				o.tier_failover = flags & 2;
				o.all_down = (flags & 4) ? MXP_ALLDOWN_SERVFAIL : MXP_ALLDOWN_SERVE_ALL;
				for (size_t s = 0; s < 3; s++) {
					/* Vary the state of the first non-null record. */
					size_t v = (where == 0) ? 1 : 0;
					r[v].state = states[s];
					r[v].hash = rng_next(&rng);
					policy_plan(r, 4, &o, &rng, &plan);
					if (plan.kind != MXP_PLAN_UNCHANGED) {
						dump(r, 4, &plan);
					}
					assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
					assert_int_equal(plan.count, 4);
					assert_int_equal(plan.left_out, 0);
					assert_true(plan.null_mx);
				}
			}
		}
	}

	/* Null MX whose companions are all down, with all-down servfail. */
	mxp_record_t r2[3] = {
		rec(0, 1, MXP_STATE_UP), rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN),
	};
	r2[0].null_mx = true;
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	o.all_down = MXP_ALLDOWN_SERVFAIL;
	policy_plan(r2, 3, &o, &rng, &plan);
	assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
	assert_int_equal(plan.count, 3);
	assert_true(plan.null_mx);

	/* A lone null MX. */
	mxp_record_t r1[1] = { rec(0, 0, MXP_STATE_UP) };
	r1[0].null_mx = true;
	policy_plan(r1, 1, &o, &rng, &plan);
	assert_int_equal(plan.kind, MXP_PLAN_UNCHANGED);
	assert_int_equal(plan.count, 1);
	assert_true(plan.null_mx);
}

/* count == MXP_MAX_RECORDS is handled (sets larger than that cannot be
 * passed: the plan's slot array has MXP_MAX_RECORDS entries). */
static void test_max_records(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 6);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[N_MAX];
	mxp_plan_t plan;
	answer_t a;

	/* One tier of 128 with unequal weights: only the winner moves. */
	for (size_t i = 0; i < N_MAX; i++) {
		r[i] = rec(65535, i % 7 + 1, MXP_STATE_UP);
	}
	for (int it = 0; it < 20; it++) {
		plan_checked(r, N_MAX, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_int_equal(a.n, N_MAX);
		int w = tier_winner(r, N_MAX, &a, 65535);
		assert_true(w >= 0);
		assert_true(a.newpref[w] < 65535);
		for (size_t i = 0; i < N_MAX; i++) {
			if ((int)i != w) {
				assert_int_equal(a.newpref[i], 65535);
			}
		}
	}

	/* 64 consecutive tiers of two at the top of the range: 128 distinct
	 * values are needed, all within 0..65535. */
	for (size_t i = 0; i < N_MAX; i++) {
		r[i] = rec(65535 - 63 + i / 2, (i & 1) ? 2 : 1, MXP_STATE_UP);
	}
	for (int it = 0; it < 20; it++) {
		plan_checked(r, N_MAX, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_int_equal(a.n, N_MAX);
		assert_true(plan.renumbered);
	}

	/* The same at the bottom of the range. */
	for (size_t i = 0; i < N_MAX; i++) {
		r[i] = rec(i / 2, (i & 1) ? 1 : 3, MXP_STATE_UP);
	}
	for (int it = 0; it < 20; it++) {
		plan_checked(r, N_MAX, &o, &rng, &plan, &a);
		assert_int_equal(a.n, N_MAX);
	}

	/* Order mode and drains at full size. */
	for (size_t i = 0; i < N_MAX; i++) {
		r[i] = rec(10 * (i / 16), i % 5, (i % 16 == 15) ? MXP_STATE_DRAIN : MXP_STATE_UP);
	}
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t om = opts_mode(ALL_MODES[m]);
		plan_checked(r, N_MAX, &om, &rng, &plan, &a);
		assert_int_equal(a.n, N_MAX);
	}
}

/* ---------------------------------------------------------------------- */
/* preference mode                                                         */

/* 10,10,10,20: the winner keeps 10, the others become 11, 20 stays. */
static void test_pref_winner_keeps_value(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 10);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	bool seen[3] = { false };
	for (int it = 0; it < 300; it++) {
		plan_checked(r, 4, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_true(plan.renumbered);
		assert_int_equal(plan.left_out, 0);
		assert_int_equal(a.n, 4);
		int w = tier_winner(r, 4, &a, 10);
		assert_true(w >= 0 && w < 3);
		seen[w] = true;
		for (int i = 0; i < 3; i++) {
			assert_int_equal(a.newpref[i], i == w ? 10 : 11);
		}
		assert_int_equal(a.newpref[3], 20);
	}
	/* Every member with a positive weight wins sometimes. */
	assert_true(seen[0] && seen[1] && seen[2]);
}

/* Tiers with equal weights keep their values while another tier rotates. */
static void test_pref_other_tiers_untouched(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 11);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_UP), rec(10, 1, MXP_STATE_UP),
		rec(20, 5, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP),
		rec(30, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 200; it++) {
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_int_equal(a.newpref[0], 10);
		assert_int_equal(a.newpref[1], 10);
		int w = tier_winner(r, ARRAY_LEN(r), &a, 20);
		assert_true(w == 2 || w == 3);
		assert_int_equal(a.newpref[w], 20);
		assert_int_equal(a.newpref[w == 2 ? 3 : 2], 21);
		assert_int_equal(a.newpref[4], 30);
	}
}

/* No gap to the next tier (10,10 then 11): still strictly ordered. */
static void test_pref_no_gap(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 12);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP),
		rec(11, 1, MXP_STATE_UP), rec(11, 4, MXP_STATE_UP),
		rec(12, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 200; it++) {
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_true(plan.renumbered);
		int w10 = tier_winner(r, ARRAY_LEN(r), &a, 10);
		int w11 = tier_winner(r, ARRAY_LEN(r), &a, 11);
		assert_true(w10 == 0 || w10 == 1);
		assert_true(w11 == 2 || w11 == 3);
		int o10 = 1 - w10, o11 = 5 - w11;
		assert_true(a.newpref[w10] < a.newpref[o10]);
		assert_true(a.newpref[o10] < a.newpref[w11]);
		assert_true(a.newpref[w11] < a.newpref[o11]);
		assert_true(a.newpref[o11] < a.newpref[4]);
	}
}

/* Tiers at 65535 stay within range. */
static void test_pref_top_of_range(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 13);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_plan_t plan;
	answer_t a;

	/* 65535,65535: the only way with one change is winner below 65535. */
	mxp_record_t r1[] = { rec(65535, 1, MXP_STATE_UP), rec(65535, 2, MXP_STATE_UP) };
	for (int it = 0; it < 100; it++) {
		plan_checked(r1, 2, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		int w = tier_winner(r1, 2, &a, 65535);
		assert_true(w == 0 || w == 1);
		assert_true(a.newpref[w] < 65535);
		assert_int_equal(a.newpref[1 - w], 65535);
	}

	/* Crowded top: 65533, 65534 x2, 65535 x3, all rotated. */
	mxp_record_t r2[] = {
		rec(65533, 1, MXP_STATE_UP),
		rec(65534, 1, MXP_STATE_UP), rec(65534, 3, MXP_STATE_UP),
		rec(65535, 1, MXP_STATE_UP), rec(65535, 2, MXP_STATE_UP), rec(65535, 3, MXP_STATE_UP),
	};
	for (int it = 0; it < 100; it++) {
		plan_checked(r2, ARRAY_LEN(r2), &o, &rng, &plan, &a);
		assert_int_equal(a.n, ARRAY_LEN(r2));
		assert_true(tier_winner(r2, ARRAY_LEN(r2), &a, 65534) >= 0);
		assert_true(tier_winner(r2, ARRAY_LEN(r2), &a, 65535) >= 0);
	}
}

/* Tiers at preference 0. */
static void test_pref_zero_tier(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 14);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_plan_t plan;
	answer_t a;

	mxp_record_t r1[] = {
		rec(0, 1, MXP_STATE_UP), rec(0, 2, MXP_STATE_UP), rec(0, 3, MXP_STATE_UP),
	};
	for (int it = 0; it < 100; it++) {
		plan_checked(r1, 3, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		int w = tier_winner(r1, 3, &a, 0);
		assert_true(w >= 0);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(a.newpref[i], i == w ? 0 : 1);
		}
	}

	mxp_record_t r2[] = {
		rec(0, 1, MXP_STATE_UP), rec(0, 2, MXP_STATE_UP),
		rec(1, 5, MXP_STATE_UP), rec(1, 1, MXP_STATE_UP),
	};
	for (int it = 0; it < 100; it++) {
		plan_checked(r2, 4, &o, &rng, &plan, &a);
		assert_true(tier_winner(r2, 4, &a, 0) >= 0);
		assert_true(tier_winner(r2, 4, &a, 1) >= 0);
	}
}

/* Zone order not sorted by preference: tiers are still identified by value. */
static void test_pref_unsorted_zone_order(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 15);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(20, 1, MXP_STATE_UP), rec(10, 4, MXP_STATE_UP), rec(30, 1, MXP_STATE_UP),
		rec(10, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 100; it++) {
		plan_checked(r, 4, &o, &rng, &plan, &a);
		int w = tier_winner(r, 4, &a, 10);
		assert_true(w == 1 || w == 3);
		assert_int_equal(a.newpref[w], 10);
		assert_int_equal(a.newpref[w == 1 ? 3 : 1], 11);
		assert_int_equal(a.newpref[0], 20);
		assert_int_equal(a.newpref[2], 30);
	}
}

/* Winner share = weight / sum: 60/30/10 over 100000 plans, chi-square
 * df = 2 (critical 13.816). */
static void test_pref_winner_distribution(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 16);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 0.6, 0.3, 0.1 };
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 100000; it++) {
		plan_answer(r, 4, &o, &rng, &plan, &a);
		int w = tier_winner(r, 4, &a, 10);
		assert_true(w >= 0 && w < 3);
		obs[w]++;
	}
	tu_assert_chi2("preference winner 60/30/10", obs, prob, 3);
}

/* Weight 0 never wins while a positive weight exists; the positive ones
 * share by weight (7:2, chi-square df = 1, critical 10.828). */
static void test_pref_weight_zero_never_wins(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 17);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_record_t r[] = {
		rec(10, 0, MXP_STATE_UP), rec(10, 7, MXP_STATE_UP),
		rec(10, 0, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP),
	};
	unsigned obs[2] = { 0 };
	const double prob[2] = { 7.0 / 9, 2.0 / 9 };
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 20000; it++) {
		plan_answer(r, 4, &o, &rng, &plan, &a);
		int w = tier_winner(r, 4, &a, 10);
		if (w != 1 && w != 3) {
			dump(r, 4, &plan);
		}
		assert_true(w == 1 || w == 3);
		obs[w == 1 ? 0 : 1]++;
	}
	tu_assert_chi2("preference winner 7/2 with zeros", obs, prob, 2);

	/* A single positive weight among zeros always wins. */
	mxp_record_t r2[] = {
		rec(10, 0, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP), rec(10, 1, MXP_STATE_UP),
	};
	for (int it = 0; it < 1000; it++) {
		plan_checked(r2, 3, &o, &rng, &plan, &a);
		assert_int_equal(tier_winner(r2, 3, &a, 10), 2);
	}
}

/* ---------------------------------------------------------------------- */
/* order mode                                                              */

static void test_order_prefs_untouched(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 20);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP), rec(65535, 3, MXP_STATE_UP),
		rec(65535, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	bool moved = false;
	for (int it = 0; it < 500; it++) {
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		assert_false(plan.renumbered);
		assert_int_equal(a.n, ARRAY_LEN(r));
		for (size_t k = 0; k < a.n; k++) {
			assert_int_equal(a.pref[k], r[a.idx[k]].pref);
		}
		moved |= plan.reordered;
	}
	assert_true(moved);
}

/* First in tier with probability weight / sum: 60/30/10 (df = 2, critical
 * 13.816); a second tier and zone order do not disturb it. */
static void test_order_first_share(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 21);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	mxp_record_t r[] = {
		rec(20, 1, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP), rec(20, 2, MXP_STATE_UP),
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 0.6, 0.3, 0.1 };
	unsigned obs20[2] = { 0 };
	const double prob20[2] = { 1.0 / 3, 2.0 / 3 };
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 60000; it++) {
		plan_answer(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		int f = tier_first(r, ARRAY_LEN(r), &a, 10);
		assert_true(f == 1 || f == 3 || f == 4);
		obs[f == 3 ? 0 : f == 4 ? 1 : 2]++;
		int f20 = tier_first(r, ARRAY_LEN(r), &a, 20);
		assert_true(f20 == 0 || f20 == 2);
		obs20[f20 == 0 ? 0 : 1]++;
	}
	tu_assert_chi2("order first 60/30/10", obs, prob, 3);
	tu_assert_chi2("order first 1/2", obs20, prob20, 2);
}

/* Weight-0 members come after every positive one, in every answer. */
static void test_order_weight_zero_last(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 22);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	mxp_record_t r[] = {
		rec(10, 0, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP),
		rec(10, 1, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP), rec(20, 0, MXP_STATE_UP),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 3.0 / 6, 1.0 / 6, 2.0 / 6 };
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 20000; it++) {
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		for (int z = 0; z <= 2; z += 2) {
			assert_true(a.pos[z] > a.pos[1]);
			assert_true(a.pos[z] > a.pos[3]);
			assert_true(a.pos[z] > a.pos[4]);
		}
		int f = tier_first(r, ARRAY_LEN(r), &a, 10);
		obs[f == 1 ? 0 : f == 3 ? 1 : 2]++;
	}
	/* df = 2, critical 13.816 */
	tu_assert_chi2("order first 3/1/2 with zeros", obs, prob, 3);
}

/* Equal weights: first uniformly (df = 3, critical 16.266); all weights 0:
 * uniformly too (df = 2, critical 13.816). */
static void test_order_equal_weights_uniform(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 23);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	mxp_plan_t plan;
	answer_t a;

	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_UP), rec(10, 5, MXP_STATE_UP),
		rec(10, 5, MXP_STATE_UP), rec(10, 5, MXP_STATE_UP),
	};
	unsigned obs[4] = { 0 };
	const double prob[4] = { 0.25, 0.25, 0.25, 0.25 };
	for (int it = 0; it < 40000; it++) {
		plan_answer(r, 4, &o, &rng, &plan, &a);
		obs[tier_first(r, 4, &a, 10)]++;
	}
	tu_assert_chi2("order first equal weights", obs, prob, 4);

	mxp_record_t z[] = {
		rec(10, 0, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP),
	};
	unsigned obsz[3] = { 0 };
	const double probz[3] = { 1.0 / 3, 1.0 / 3, 1.0 / 3 };
	for (int it = 0; it < 30000; it++) {
		plan_answer(z, 3, &o, &rng, &plan, &a);
		assert_false(plan.renumbered);
		obsz[tier_first(z, 3, &a, 10)]++;
	}
	tu_assert_chi2("order first all weights 0", obsz, probz, 3);
}

/* ---------------------------------------------------------------------- */
/* sticky                                                                  */

static void fill_hashes(mxp_record_t *r, size_t n, uint64_t *hs)
{
	for (size_t i = 0; i < n; i++) {
		r[i].hash = tu_splitmix64(hs);
	}
}

/* Same hashes -> same plan, whatever the random source. */
static void test_sticky_deterministic(void **state)
{
	(void)state;
	mxp_rng_t rng1, rng2;
	tu_rng_seed(&rng1, 30);
	tu_rng_seed(&rng2, 31);
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 2, MXP_STATE_UP), rec(20, 1, MXP_STATE_DRAIN), rec(20, 1, MXP_STATE_UP),
		rec(30, 1, MXP_STATE_DOWN),
	};
	uint64_t hs = 77;
	mxp_plan_t p1, p2;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		o.sticky = true;
		for (int client = 0; client < 500; client++) {
			fill_hashes(r, ARRAY_LEN(r), &hs);
			memset(&p1, 0, sizeof(p1));
			memset(&p2, 0, sizeof(p2));
			policy_plan(r, ARRAY_LEN(r), &o, &rng1, &p1);
			check_invariants(r, ARRAY_LEN(r), &o, &p1);
			/* Disturb the generators between calls. */
			for (int k = 0; k < client % 5; k++) {
				rng_next(&rng2);
			}
			policy_plan(r, ARRAY_LEN(r), &o, &rng2, &p2);
			if (!same_plan(&p1, &p2)) {
				dump(r, ARRAY_LEN(r), &p1);
				dump(r, ARRAY_LEN(r), &p2);
			}
			assert_true(same_plan(&p1, &p2));
			policy_plan(r, ARRAY_LEN(r), &o, &rng1, &p2);
			assert_true(same_plan(&p1, &p2));
		}
	}
}

/* Across clients (uniform hashes) the winner share follows the weights:
 * preference mode, 60/30/10, df = 2, critical 13.816. */
static void test_sticky_share_preference(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 32);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	o.sticky = true;
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 0.6, 0.3, 0.1 };
	uint64_t hs = 1234;
	mxp_plan_t plan;
	answer_t a;
	for (int client = 0; client < 50000; client++) {
		fill_hashes(r, 4, &hs);
		plan_answer(r, 4, &o, &rng, &plan, &a);
		int w = tier_winner(r, 4, &a, 10);
		assert_true(w >= 0 && w < 3);
		obs[w]++;
	}
	tu_assert_chi2("sticky preference winner 60/30/10", obs, prob, 3);
}

/* The same in order mode, first in tier: 5/3/2 with a weight-0 member,
 * df = 2, critical 13.816. */
static void test_sticky_share_order(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 33);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	o.sticky = true;
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_UP), rec(10, 0, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP),
		rec(10, 2, MXP_STATE_UP),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 0.5, 0.3, 0.2 };
	uint64_t hs = 4321;
	mxp_plan_t plan;
	answer_t a;
	for (int client = 0; client < 50000; client++) {
		fill_hashes(r, 4, &hs);
		plan_answer(r, 4, &o, &rng, &plan, &a);
		assert_true(a.pos[1] == 3); /* weight 0 last */
		int f = tier_first(r, 4, &a, 10);
		obs[f == 0 ? 0 : f == 2 ? 1 : 2]++;
	}
	tu_assert_chi2("sticky order first 5/3/2", obs, prob, 3);
}

/*
 * Stability: when an exchanger leaves the candidate set (goes down while
 * others of its tier stay up), only the clients that had it first change
 * their first choice; the shares stay proportional to the remaining weights
 * (5:2:1, df = 2, critical 13.816).
 */
static void sticky_stability(mxp_rotation_t rot)
{
	mxp_rng_t rng;
	tu_rng_seed(&rng, 34);
	mxp_opts_t o = opts_mode(rot);
	o.sticky = true;
	enum { CLIENTS = 30000, LEAVER = 1 };
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_UP), rec(10, 3, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP),
		rec(10, 1, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP),
	};
	const size_t n = ARRAY_LEN(r);
	uint64_t hs = 999;
	unsigned changed = 0, had_leaver = 0;
	unsigned obs[3] = { 0 };
	const double prob[3] = { 5.0 / 8, 2.0 / 8, 1.0 / 8 };
	mxp_plan_t plan;
	answer_t a;
	for (int client = 0; client < CLIENTS; client++) {
		fill_hashes(r, n, &hs);
		r[LEAVER].state = MXP_STATE_UP;
		plan_checked(r, n, &o, &rng, &plan, &a);
		int before = (rot == MXP_ROT_PREFERENCE) ? tier_winner(r, n, &a, 10)
		                                         : tier_first(r, n, &a, 10);
		assert_true(before >= 0 && before <= 3);

		r[LEAVER].state = MXP_STATE_DOWN;
		plan_checked(r, n, &o, &rng, &plan, &a);
		assert_true(a.pos[LEAVER] < 0);
		int after = (rot == MXP_ROT_PREFERENCE) ? tier_winner(r, n, &a, 10)
		                                        : tier_first(r, n, &a, 10);
		assert_true(after >= 0 && after <= 3 && after != LEAVER);

		if (before == LEAVER) {
			had_leaver++;
		} else if (after != before) {
			changed++;
		}
		obs[after == 0 ? 0 : after == 2 ? 1 : 2]++;
	}
	if (changed) {
		print_error("%u clients changed first choice without having the leaver first\n",
		            changed);
	}
	assert_int_equal(changed, 0);
	assert_true(had_leaver > 0);
	tu_assert_chi2("sticky after removal 5/2/1", obs, prob, 3);
}

static void test_sticky_stability_preference(void **state)
{
	(void)state;
	sticky_stability(MXP_ROT_PREFERENCE);
}

static void test_sticky_stability_order(void **state)
{
	(void)state;
	sticky_stability(MXP_ROT_ORDER);
}

/* ---------------------------------------------------------------------- */
/* down                                                                    */

static void test_down_same_tier_left_out(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 40);
	mxp_record_t r[] = { rec(10, 1, MXP_STATE_DOWN), rec(10, 1, MXP_STATE_UP) };
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		for (int fo = 0; fo < 2; fo++) {
			mxp_opts_t o = opts_mode(ALL_MODES[m]);
			o.tier_failover = fo;
			plan_checked(r, 2, &o, &rng, &plan, &a);
			assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
			assert_int_equal(a.n, 1);
			assert_int_equal(a.idx[0], 1);
			assert_int_equal(a.pref[0], 10);
			assert_int_equal(plan.left_out, 1);
			assert_true(plan.degraded);
			assert_false(plan.all_down);
		}
	}
}

/* The whole best tier down: without tier-failover everything stays, so no
 * other tier becomes the best; with it, the next tier takes over. */
static void test_down_best_tier(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 41);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_DOWN), rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 3);
		assert_int_equal(plan.left_out, 0);
		assert_true(plan.degraded);
		assert_false(plan.all_down);
		assert_true(a.newpref[0] < a.newpref[2]);
		assert_true(a.newpref[1] < a.newpref[2]);

		o.tier_failover = true;
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_int_equal(a.n, 1);
		assert_int_equal(a.idx[0], 2);
		assert_int_equal(a.pref[0], 20);
		assert_int_equal(plan.left_out, 2);
		assert_true(plan.degraded);
		assert_false(plan.all_down);
	}
}

static void test_down_worse_tier(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 42);
	mxp_record_t r[] = { rec(10, 1, MXP_STATE_UP), rec(20, 1, MXP_STATE_DOWN) };
	mxp_record_t r3[] = {
		rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		plan_checked(r, 2, &o, &rng, &plan, &a);
		assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
		assert_int_equal(a.n, 1);
		assert_int_equal(a.idx[0], 0);
		assert_int_equal(plan.left_out, 1);
		assert_true(plan.degraded);

		/* The best tier is down and kept; the down member of the worse
		 * tier goes since its tier mate is up. */
		plan_checked(r3, 3, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 2);
		assert_true(a.pos[0] >= 0);
		assert_true(a.pos[1] < 0);
		assert_true(a.pos[2] >= 0);
		assert_int_equal(plan.left_out, 1);

		o.tier_failover = true;
		plan_checked(r3, 3, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 1);
		assert_int_equal(a.idx[0], 2);
		assert_int_equal(plan.left_out, 2);
	}
}

/* Several downs in a larger set; counts and tier rotation of what is left. */
static void test_down_left_out_count(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 43);
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_DOWN), rec(10, 3, MXP_STATE_UP), rec(10, 1, MXP_STATE_UP),
		rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN), rec(30, 1, MXP_STATE_UP),
	};
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 100; it++) {
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		assert_int_equal(plan.left_out, 3);
		assert_int_equal(a.n, 3);
		assert_true(plan.degraded);
		/* 3 vs 1: the remaining tier is still rotated by weight. */
		int w = tier_winner(r, ARRAY_LEN(r), &a, 10);
		assert_true(w == 1 || w == 2);
		assert_int_equal(a.newpref[w], 10);
		assert_int_equal(a.newpref[w == 1 ? 2 : 1], 11);
		assert_int_equal(a.newpref[5], 30);
	}
}

/* A down member left out leaves a tier whose remaining weights are equal:
 * that tier is then left as is. */
static void test_down_rest_equal_weights(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 44);
	mxp_record_t r[] = {
		rec(10, 9, MXP_STATE_DOWN), rec(10, 2, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP),
	};
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 100; it++) {
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 2);
		assert_int_equal(a.newpref[1], 10);
		assert_int_equal(a.newpref[2], 10);
		assert_false(plan.renumbered);
	}
}

/* ---------------------------------------------------------------------- */
/* all down, drain counts as alive                                         */

static void test_all_down_serve_all(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 50);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_DOWN), rec(20, 4, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN),
	};
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		for (int fo = 0; fo < 2; fo++) {
			mxp_opts_t o = opts_mode(ALL_MODES[m]);
			o.tier_failover = fo;
			plan_checked(r, 3, &o, &rng, &plan, &a);
			assert_true(plan.kind == MXP_PLAN_REWRITE || plan.kind == MXP_PLAN_UNCHANGED);
			assert_int_equal(a.n, 3);
			assert_int_equal(plan.left_out, 0);
			assert_true(plan.all_down);
			assert_true(plan.degraded);
		}
	}
	/* A single record, down. */
	mxp_record_t r1[] = { rec(10, 1, MXP_STATE_DOWN) };
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	plan_checked(r1, 1, &o, &rng, &plan, &a);
	assert_int_equal(a.n, 1);
	assert_true(plan.all_down);
}

static void test_all_down_servfail(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 51);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_DOWN), rec(20, 4, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN),
	};
	mxp_plan_t plan;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		for (int fo = 0; fo < 2; fo++) {
			mxp_opts_t o = opts_mode(ALL_MODES[m]);
			o.tier_failover = fo;
			o.all_down = MXP_ALLDOWN_SERVFAIL;
			policy_plan(r, 3, &o, &rng, &plan);
			assert_int_equal(plan.kind, MXP_PLAN_SERVFAIL);
			assert_true(plan.all_down);
			assert_true(plan.degraded);
		}
	}
	mxp_record_t r1[] = { rec(10, 1, MXP_STATE_DOWN) };
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	o.all_down = MXP_ALLDOWN_SERVFAIL;
	policy_plan(r1, 1, &o, &rng, &plan);
	assert_int_equal(plan.kind, MXP_PLAN_SERVFAIL);
}

static void test_drain_counts_alive(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 52);
	mxp_plan_t plan;
	answer_t a;
	/* Worse-tier drain, better tier all down. */
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_DOWN), rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DRAIN),
	};
	/* Same-tier drain with a down mate. */
	mxp_record_t r2[] = { rec(10, 1, MXP_STATE_DOWN), rec(10, 1, MXP_STATE_DRAIN) };
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		o.all_down = MXP_ALLDOWN_SERVFAIL;
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_int_not_equal(plan.kind, MXP_PLAN_SERVFAIL);
		assert_false(plan.all_down);
		assert_true(plan.degraded);
		assert_true(a.pos[2] >= 0);
		assert_int_equal(a.n, 3); /* no tier-failover: the best tier stays */

		o.tier_failover = true;
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 1);
		assert_int_equal(a.idx[0], 2);
		assert_int_equal(a.pref[0], 20);

		o.tier_failover = false;
		plan_checked(r2, 2, &o, &rng, &plan, &a);
		assert_int_not_equal(plan.kind, MXP_PLAN_SERVFAIL);
		assert_false(plan.all_down);
		assert_int_equal(a.n, 1);
		assert_int_equal(a.idx[0], 1);
		assert_int_equal(a.pref[0], 10);
	}
}

/* ---------------------------------------------------------------------- */
/* drain                                                                   */

/* In every rotation mode the drain goes after its tier mates (preference and
 * wire order) and before the next tier; with room to spare nobody else moves. */
static void test_drain_after_tier_mates(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 60);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_UP), rec(10, 1, MXP_STATE_DRAIN), rec(10, 1, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		for (int it = 0; it < 50; it++) {
			plan_checked(r, 4, &o, &rng, &plan, &a);
			assert_int_equal(plan.kind, MXP_PLAN_REWRITE);
			assert_int_equal(a.n, 4);
			assert_true(plan.renumbered);
			assert_true(plan.degraded);
			assert_true(a.newpref[1] > 10 && a.newpref[1] < 20);
			assert_int_equal(a.newpref[0], 10);
			assert_int_equal(a.newpref[2], 10);
			assert_int_equal(a.newpref[3], 20);
			assert_true(a.pos[1] > a.pos[0]);
			assert_true(a.pos[1] > a.pos[2]);
		}
	}
}

/* The same with unequal weights (drain having the largest weight) and
 * sticky hashes. */
static void test_drain_unequal_weights(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 61);
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_UP), rec(10, 9, MXP_STATE_DRAIN), rec(10, 1, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_UP),
	};
	uint64_t hs = 61;
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		for (int it = 0; it < 100; it++) {
			mxp_opts_t o = opts_mode(ALL_MODES[m]);
			o.sticky = it & 1;
			fill_hashes(r, 4, &hs);
			plan_checked(r, 4, &o, &rng, &plan, &a);
			assert_int_equal(a.n, 4);
			assert_true(a.newpref[1] > a.newpref[0]);
			assert_true(a.newpref[1] > a.newpref[2]);
			assert_true(a.newpref[1] < a.newpref[3]);
			assert_true(a.pos[1] > a.pos[0]);
			assert_true(a.pos[1] > a.pos[2]);
			if (ALL_MODES[m] == MXP_ROT_PREFERENCE) {
				/* The drain is never the tier's winner. */
				int w = tier_winner(r, 4, &a, 10);
				assert_true(w == 0 || w == 2);
			}
		}
	}
}

/* No room between the drain's tier and the next one. */
static void test_drain_no_gap(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 62);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_UP), rec(10, 1, MXP_STATE_DRAIN), rec(11, 1, MXP_STATE_UP),
		rec(11, 1, MXP_STATE_DRAIN), rec(12, 1, MXP_STATE_UP),
	};
	mxp_record_t top[] = { rec(65535, 1, MXP_STATE_UP), rec(65535, 1, MXP_STATE_DRAIN) };
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		plan_checked(r, ARRAY_LEN(r), &o, &rng, &plan, &a);
		assert_int_equal(a.n, ARRAY_LEN(r));
		assert_true(a.newpref[0] < a.newpref[1]);
		assert_true(a.newpref[1] < a.newpref[2]);
		assert_true(a.newpref[2] < a.newpref[3]);
		assert_true(a.newpref[3] < a.newpref[4]);

		plan_checked(top, 2, &o, &rng, &plan, &a);
		assert_int_equal(a.n, 2);
		assert_true(a.newpref[0] < a.newpref[1]);
		assert_true(a.pos[0] < a.pos[1]);
	}
}

/* A tier of drain members only keeps its preference. */
static void test_drain_only_tier_keeps_pref(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 63);
	mxp_record_t r[] = {
		rec(10, 1, MXP_STATE_UP), rec(20, 3, MXP_STATE_DRAIN), rec(20, 1, MXP_STATE_DRAIN),
		rec(30, 1, MXP_STATE_UP),
	};
	mxp_record_t r1[] = { rec(10, 1, MXP_STATE_UP), rec(20, 1, MXP_STATE_DRAIN) };
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		for (int it = 0; it < 20; it++) {
			plan_checked(r, 4, &o, &rng, &plan, &a);
			assert_int_equal(a.n, 4);
			assert_int_equal(a.newpref[0], 10);
			assert_int_equal(a.newpref[1], 20);
			assert_int_equal(a.newpref[2], 20);
			assert_int_equal(a.newpref[3], 30);
			assert_true(plan.degraded);

			plan_checked(r1, 2, &o, &rng, &plan, &a);
			assert_int_equal(a.n, 2);
			assert_int_equal(a.newpref[0], 10);
			assert_int_equal(a.newpref[1], 20);
			assert_true(plan.degraded);
			assert_false(plan.renumbered);
		}
	}
}

/* ---------------------------------------------------------------------- */
/* signed zone + DO: may_change_set false                                  */

static void test_signed_no_set_change(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 70);
	mxp_record_t r[] = {
		rec(10, 5, MXP_STATE_DOWN), rec(10, 1, MXP_STATE_UP), rec(10, 2, MXP_STATE_DRAIN),
		rec(10, 7, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP), rec(30, 1, MXP_STATE_DOWN),
	};
	const size_t n = ARRAY_LEN(r);
	uint64_t hs = 70;
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		for (int it = 0; it < 100; it++) {
			mxp_opts_t o = opts_mode(ALL_MODES[m]);
			o.may_change_set = false;
			o.sticky = it & 1;
			o.tier_failover = it & 2;
			fill_hashes(r, n, &hs);
			plan_checked(r, n, &o, &rng, &plan, &a);
			assert_int_equal(a.n, n);
			assert_int_equal(plan.left_out, 0);
			assert_false(plan.renumbered);
			assert_true(plan.degraded);
			assert_false(plan.all_down);
			assert_true(plan.limited);
			for (size_t k = 0; k < a.n; k++) {
				assert_int_equal(a.pref[k], r[a.idx[k]].pref);
			}
		}
	}
}

/* Nothing to hold back: limited stays false. */
static void test_signed_nothing_held_back(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 73);
	mxp_record_t r[] = {
		rec(10, 2, MXP_STATE_UP), rec(10, 2, MXP_STATE_UP), rec(20, 1, MXP_STATE_UP),
	};
	mxp_plan_t plan;
	answer_t a;
	for (size_t m = 0; m < ARRAY_LEN(ALL_MODES); m++) {
		mxp_opts_t o = opts_mode(ALL_MODES[m]);
		o.may_change_set = false;
		plan_checked(r, 3, &o, &rng, &plan, &a);
		assert_false(plan.limited);
		assert_false(plan.degraded);
		assert_int_equal(a.n, 3);
	}
}

/* In order mode reordering still applies, by weight (60/30/10, df = 2,
 * critical 13.816). */
static void test_signed_order_reorders(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 71);
	mxp_opts_t o = opts_mode(MXP_ROT_ORDER);
	o.may_change_set = false;
	mxp_record_t r[] = {
		rec(10, 60, MXP_STATE_UP), rec(10, 30, MXP_STATE_UP), rec(10, 10, MXP_STATE_UP),
		rec(20, 1, MXP_STATE_DOWN),
	};
	unsigned obs[3] = { 0 };
	const double prob[3] = { 0.6, 0.3, 0.1 };
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 30000; it++) {
		plan_checked(r, 4, &o, &rng, &plan, &a);
		assert_true(plan.degraded);
		obs[tier_first(r, 4, &a, 10)]++;
	}
	tu_assert_chi2("signed order first 60/30/10", obs, prob, 3);
}

/* All down in a signed zone with serve-all: everything served as is. */
static void test_signed_all_down(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 72);
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	o.may_change_set = false;
	mxp_record_t r[] = { rec(10, 1, MXP_STATE_DOWN), rec(20, 1, MXP_STATE_DOWN) };
	mxp_plan_t plan;
	answer_t a;
	plan_checked(r, 2, &o, &rng, &plan, &a);
	assert_int_equal(a.n, 2);
	assert_true(plan.all_down);
}

/* ---------------------------------------------------------------------- */
/* randomised property test                                                */

static void test_random_sets_invariants(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 80);
	uint64_t g = 80;
	static const uint16_t prefs[] = { 0, 1, 2, 10, 11, 20, 65533, 65534, 65535 };
	static const uint16_t weights[] = { 0, 1, 1, 2, 3, 10, 65535 };
	mxp_record_t r[N_MAX];
	mxp_plan_t plan;
	answer_t a;
	for (int it = 0; it < 30000; it++) {
		size_t n = 1 + tu_splitmix64(&g) % ((it % 50 == 0) ? N_MAX : 10);
		for (size_t i = 0; i < n; i++) {
			uint64_t v = tu_splitmix64(&g);
			mxp_state_t st = (v >> 20) % 4 == 0 ? MXP_STATE_DOWN :
			                 (v >> 20) % 7 == 1 ? MXP_STATE_DRAIN : MXP_STATE_UP;
			if (it % 11 == 0) {
				st = MXP_STATE_DOWN;
			}
			r[i] = rec(prefs[v % ARRAY_LEN(prefs)],
			           weights[(v >> 8) % ARRAY_LEN(weights)], st);
			r[i].hash = tu_splitmix64(&g);
		}
		/* knotd hands the set over in canonical order, i.e. sorted by preference. */
		for (size_t i = 1; i < n; i++) {
			for (size_t j = i; j > 0 && r[j - 1].pref > r[j].pref; j--) {
				mxp_record_t t = r[j];
				r[j] = r[j - 1];
				r[j - 1] = t;
			}
		}
		uint64_t f = tu_splitmix64(&g);
		mxp_opts_t o = opts_mode(ALL_MODES[f % 3]);
		o.sticky = (f >> 4) & 1;
		o.tier_failover = (f >> 5) & 1;
		o.may_change_set = ((f >> 6) % 4) != 0;
		o.all_down = ((f >> 8) & 1) ? MXP_ALLDOWN_SERVFAIL : MXP_ALLDOWN_SERVE_ALL;
		memset(&plan, 0x5a, sizeof(plan));
		policy_plan(r, n, &o, &rng, &plan);
		check_invariants(r, n, &o, &plan);
		check_limited(r, n, &o, &plan);
		if (plan.kind != MXP_PLAN_SERVFAIL) {
			get_answer(r, n, &plan, &a);
			assert_true(a.n >= 1);
		}
	}
}

/* ---------------------------------------------------------------------- */
/* policy_variants                                                         */

/* A plan as a set: (index, preference) per kept record, sorted by index. */
typedef struct {
	size_t n;
	uint32_t rec[N_MAX];
} varset_t;

static void varset_of(const mxp_plan_t *plan, varset_t *v)
{
	v->n = plan->count;
	for (size_t s = 0; s < plan->count; s++) {
		uint32_t x = ((uint32_t)plan->slots[s].idx << 16) | plan->slots[s].pref;
		size_t j = s;
		for (; j > 0 && v->rec[j - 1] > x; j--) {
			v->rec[j] = v->rec[j - 1];
		}
		v->rec[j] = x;
	}
}

#define MAX_VARIANTS 64

typedef struct {
	size_t n;
	varset_t set[MAX_VARIANTS];
	int hit[MAX_VARIANTS];
} varlist_t;

static int varlist_find(const varlist_t *l, const varset_t *v)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->set[i].n == v->n &&
		    memcmp(l->set[i].rec, v->rec, v->n * sizeof(v->rec[0])) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static void collect_variant(const mxp_plan_t *plan, void *arg)
{
	varlist_t *l = arg;
	assert_true(l->n < MAX_VARIANTS);
	varset_of(plan, &l->set[l->n]);
	/* Distinct combinations of winners give distinct sets. */
	assert_int_equal(varlist_find(l, &l->set[l->n]), -1);
	l->hit[l->n] = 0;
	l->n++;
}

/*
 * Every plan policy_plan() draws (random or sticky) is one of the variants,
 * and every variant is drawn: so the signer, which signs the variants, has
 * signed whatever an answer can carry.
 */
static void test_variants_cover_plans(void **state)
{
	(void)state;
	mxp_rng_t rng;
	tu_rng_seed(&rng, 91);
	uint64_t g = 91;
	static const uint16_t prefs[] = { 0, 10, 10, 10, 11, 20, 20, 65534, 65535 };
	static const uint16_t weights[] = { 0, 1, 2, 3, 10 };
	mxp_record_t r[N_MAX];
	mxp_plan_t plan;
	varlist_t *l = test_malloc(sizeof(*l));
	varset_t v;
	size_t multi = 0;
	for (int it = 0; it < 3000; it++) {
		size_t n = 1 + tu_splitmix64(&g) % 7;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = tu_splitmix64(&g);
			mxp_state_t st = (x >> 20) % 5 == 0 ? MXP_STATE_DOWN :
			                 (x >> 20) % 7 == 1 ? MXP_STATE_DRAIN : MXP_STATE_UP;
			r[i] = rec(prefs[x % ARRAY_LEN(prefs)], weights[(x >> 8) % ARRAY_LEN(weights)], st);
		}
		for (size_t i = 1; i < n; i++) {
			for (size_t j = i; j > 0 && r[j - 1].pref > r[j].pref; j--) {
				mxp_record_t t = r[j];
				r[j] = r[j - 1];
				r[j - 1] = t;
			}
		}
		uint64_t f = tu_splitmix64(&g);
		mxp_opts_t o = opts_mode(ALL_MODES[f % 3]);
		o.sticky = (f >> 4) & 1;
		o.tier_failover = (f >> 5) & 1;

		l->n = 0;
		int total = policy_variants(r, n, &o, MAX_VARIANTS, collect_variant, l);
		assert_int_equal(total, (int)l->n);
		assert_true(total >= 1);
		multi += total > 1;
		for (int d = 0; d < 400; d++) {
			for (size_t i = 0; i < n; i++) {
				r[i].hash = tu_splitmix64(&g);  /* Sticky: a new client each time. */
			}
			policy_plan(r, n, &o, &rng, &plan);
			varset_of(&plan, &v);
			int at = varlist_find(l, &v);
			if (at < 0) {
				dump(r, n, &plan);
			}
			assert_true(at >= 0);
			l->hit[at]++;
		}
		for (size_t i = 0; i < l->n; i++) {
			/* At most 64 variants, smallest chance 1/(16*16) per tier pair here. */
			if (total <= 4 && l->hit[i] == 0) {
				dump(r, n, &plan);
			}
			assert_true(total > 4 || l->hit[i] > 0);
		}
	}
	print_message("%zu of 3000 sets had several variants\n", multi);
	assert_true(multi > 200);  /* The draw covered sets with several variants. */
	test_free(l);
}

static void count_variant(const mxp_plan_t *plan, void *arg)
{
	(void)plan;
	(*(int *)arg)++;
}

static void test_variants_bound(void **state)
{
	(void)state;
	mxp_record_t r[12];
	/* Four tiers of three unequal members: 81 combinations. */
	for (size_t i = 0; i < 12; i++) {
		r[i] = rec(10 * (i / 3 + 1), 1 + i % 3, MXP_STATE_UP);
	}
	mxp_opts_t o = opts_mode(MXP_ROT_PREFERENCE);
	int calls = 0;
	assert_int_equal(policy_variants(r, 12, &o, 80, count_variant, &calls), -1);
	assert_int_equal(calls, 0);
	assert_int_equal(policy_variants(r, 12, &o, 81, count_variant, &calls), 81);
	assert_int_equal(calls, 81);

	/* 'order' mode changes no set: one variant, even with a member down. */
	o = opts_mode(MXP_ROT_ORDER);
	r[1].state = MXP_STATE_DOWN;
	calls = 0;
	assert_int_equal(policy_variants(r, 12, &o, 1, count_variant, &calls), 1);
	assert_int_equal(calls, 1);
}

/* ---------------------------------------------------------------------- */
/* policy_ttl                                                              */

static uint32_t ttl(uint32_t zone, uint32_t min, uint32_t max, uint32_t deg, bool degraded,
                    bool zone_signed)
{
	mxp_ttl_opts_t o = { .min = min, .max = max, .degraded = deg };
	return policy_ttl(zone, &o, degraded, zone_signed);
}

static void test_ttl_clamp(void **state)
{
	(void)state;
	/* No bounds. */
	assert_int_equal(ttl(3600, 0, 0, 60, false, false), 3600);
	assert_int_equal(ttl(0, 0, 0, 60, false, false), 0);
	assert_int_equal(ttl(UINT32_MAX, 0, 0, 0, false, false), UINT32_MAX);
	/* Lower bound only. */
	assert_int_equal(ttl(30, 300, 0, 60, false, false), 300);
	assert_int_equal(ttl(3600, 300, 0, 60, false, false), 3600);
	/* Upper bound only. */
	assert_int_equal(ttl(86400, 0, 3600, 60, false, false), 3600);
	assert_int_equal(ttl(600, 0, 3600, 60, false, false), 600);
	/* Both. */
	assert_int_equal(ttl(30, 300, 3600, 60, false, false), 300);
	assert_int_equal(ttl(1000, 300, 3600, 60, false, false), 1000);
	assert_int_equal(ttl(86400, 300, 3600, 60, false, false), 3600);
	assert_int_equal(ttl(300, 300, 300, 60, false, false), 300);
	assert_int_equal(ttl(1, 300, 300, 60, false, false), 300);
	assert_int_equal(ttl(9999, 300, 300, 60, false, false), 300);
}

static void test_ttl_degraded(void **state)
{
	(void)state;
	/* min(clamped, degraded). */
	assert_int_equal(ttl(3600, 0, 0, 60, true, false), 60);
	assert_int_equal(ttl(30, 0, 0, 60, true, false), 30);
	assert_int_equal(ttl(86400, 0, 3600, 60, true, false), 60);
	assert_int_equal(ttl(86400, 0, 30, 60, true, false), 30);
	/* Degraded wins over ttl-min. */
	assert_int_equal(ttl(3600, 300, 0, 60, true, false), 60);
	assert_int_equal(ttl(10, 300, 3600, 60, true, false), 60);
	/* Degraded 0: no cap. */
	assert_int_equal(ttl(3600, 0, 0, 0, true, false), 3600);
	assert_int_equal(ttl(3600, 0, 1800, 0, true, false), 1800);
	assert_int_equal(ttl(10, 300, 0, 0, true, false), 300);
	/* Not degraded: the cap does not apply. */
	assert_int_equal(ttl(3600, 300, 0, 60, false, false), 3600);
}

static void test_ttl_signed(void **state)
{
	(void)state;
	/* Never raised above the zone's TTL, even by ttl-min. */
	assert_int_equal(ttl(60, 300, 0, 60, false, true), 60);
	assert_int_equal(ttl(60, 300, 0, 60, false, false), 300);
	assert_int_equal(ttl(60, 300, 3600, 0, false, true), 60);
	assert_int_equal(ttl(0, 300, 0, 0, false, true), 0);
	/* Lowering still applies. */
	assert_int_equal(ttl(86400, 0, 3600, 60, false, true), 3600);
	assert_int_equal(ttl(3600, 0, 0, 60, true, true), 60);
	assert_int_equal(ttl(30, 300, 0, 60, true, true), 30);
	assert_int_equal(ttl(3600, 300, 0, 60, false, true), 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unchanged_single_record),
		cmocka_unit_test(test_unchanged_equal_weight_tier),
		cmocka_unit_test(test_unchanged_all_zero_tier_preference),
		cmocka_unit_test(test_unchanged_none_mode),
		cmocka_unit_test(test_unchanged_null_mx),
		cmocka_unit_test(test_max_records),
		cmocka_unit_test(test_pref_winner_keeps_value),
		cmocka_unit_test(test_pref_other_tiers_untouched),
		cmocka_unit_test(test_pref_no_gap),
		cmocka_unit_test(test_pref_top_of_range),
		cmocka_unit_test(test_pref_zero_tier),
		cmocka_unit_test(test_pref_unsorted_zone_order),
		cmocka_unit_test(test_pref_winner_distribution),
		cmocka_unit_test(test_pref_weight_zero_never_wins),
		cmocka_unit_test(test_order_prefs_untouched),
		cmocka_unit_test(test_order_first_share),
		cmocka_unit_test(test_order_weight_zero_last),
		cmocka_unit_test(test_order_equal_weights_uniform),
		cmocka_unit_test(test_sticky_deterministic),
		cmocka_unit_test(test_sticky_share_preference),
		cmocka_unit_test(test_sticky_share_order),
		cmocka_unit_test(test_sticky_stability_preference),
		cmocka_unit_test(test_sticky_stability_order),
		cmocka_unit_test(test_down_same_tier_left_out),
		cmocka_unit_test(test_down_best_tier),
		cmocka_unit_test(test_down_worse_tier),
		cmocka_unit_test(test_down_left_out_count),
		cmocka_unit_test(test_down_rest_equal_weights),
		cmocka_unit_test(test_all_down_serve_all),
		cmocka_unit_test(test_all_down_servfail),
		cmocka_unit_test(test_drain_counts_alive),
		cmocka_unit_test(test_drain_after_tier_mates),
		cmocka_unit_test(test_drain_unequal_weights),
		cmocka_unit_test(test_drain_no_gap),
		cmocka_unit_test(test_drain_only_tier_keeps_pref),
		cmocka_unit_test(test_signed_no_set_change),
		cmocka_unit_test(test_signed_nothing_held_back),
		cmocka_unit_test(test_signed_order_reorders),
		cmocka_unit_test(test_signed_all_down),
		cmocka_unit_test(test_random_sets_invariants),
		cmocka_unit_test(test_variants_cover_plans),
		cmocka_unit_test(test_variants_bound),
		cmocka_unit_test(test_ttl_clamp),
		cmocka_unit_test(test_ttl_degraded),
		cmocka_unit_test(test_ttl_signed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
