/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of setcache.h: weights are found again only for the same
 * instance tag and byte-equal rdata, wherever that rdata lives.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "setcache.h"

/* An MX set "10 mx<i>.example." for i in 1..n. */
static void make_set(knot_rrset_t *rr, unsigned n, unsigned first)
{
	knot_dname_t *owner = knot_dname_from_str_alloc("example.");
	knot_rrset_init(rr, owner, KNOT_RRTYPE_MX, KNOT_CLASS_IN, 300);
	for (unsigned i = 0; i < n; i++) {
		char name[64];
		uint8_t rdata[2 + KNOT_DNAME_MAXLEN];
		snprintf(name, sizeof(name), "mx%u.example.", first + i);
		knot_wire_write_u16(rdata, 10);
		assert_non_null(knot_dname_from_str(rdata + 2, name, KNOT_DNAME_MAXLEN));
		uint16_t len = 2 + knot_dname_size(rdata + 2);
		assert_int_equal(knot_rrset_add_rdata(rr, rdata, len, NULL), KNOT_EOK);
	}
}

static void fill(uint16_t *w, unsigned n, uint16_t base)
{
	for (unsigned i = 0; i < n; i++) {
		w[i] = base + i;
	}
}

static void test_miss_then_hit(void **state)
{
	(void)state;
	setcache_t *c = calloc(1, sizeof(*c));
	knot_rrset_t rr;
	make_set(&rr, 3, 1);

	assert_null(setcache_get(c, 7, 1, &rr.rrs));
	setcache_entry_t *w = setcache_put(c, 7, 1, &rr.rrs);
	assert_non_null(w);
	fill(w->weight, 3, 100);
	w->state[1] = 2;

	const setcache_entry_t *got = setcache_get(c, 7, 1, &rr.rrs);
	assert_non_null(got);
	assert_int_equal(got->weight[0], 100);
	assert_int_equal(got->weight[2], 102);
	assert_int_equal(got->state[1], 2);
	/* A new registry generation is a miss: states may have changed. */
	assert_null(setcache_get(c, 7, 2, &rr.rrs));

	knot_rrset_clear(&rr, NULL);
	free(c);
}

static void test_key_is_tag_and_bytes(void **state)
{
	(void)state;
	setcache_t *c = calloc(1, sizeof(*c));
	knot_rrset_t a, same, other;
	make_set(&a, 3, 1);
	make_set(&same, 3, 1);   /* Equal bytes, other memory: a reloaded zone. */
	make_set(&other, 3, 2);  /* Other exchangers, same size. */
	assert_ptr_not_equal(a.rrs.rdata, same.rrs.rdata);
	assert_int_equal(a.rrs.size, other.rrs.size);

	fill(setcache_put(c, 7, 1, &a.rrs)->weight, 3, 1);
	assert_non_null(setcache_get(c, 7, 1, &same.rrs));
	assert_null(setcache_get(c, 8, 1, &a.rrs));      /* Other instance. */
	assert_null(setcache_get(c, 7, 1, &other.rrs));  /* Other set. */
	assert_null(setcache_get(c, 0, 1, &a.rrs));      /* Tag 0 is never cached. */
	assert_null(setcache_put(c, 0, 1, &a.rrs));

	knot_rrset_clear(&a, NULL);
	knot_rrset_clear(&same, NULL);
	knot_rrset_clear(&other, NULL);
	free(c);
}

static void test_large_set_not_cached(void **state)
{
	(void)state;
	setcache_t *c = calloc(1, sizeof(*c));
	knot_rrset_t rr;
	make_set(&rr, 60, 1000);  /* ~60 * 17 bytes > SETCACHE_MAX_RDATA */
	assert_true(rr.rrs.size > SETCACHE_MAX_RDATA);
	assert_null(setcache_put(c, 7, 1, &rr.rrs));
	assert_null(setcache_get(c, 7, 1, &rr.rrs));
	knot_rrset_clear(&rr, NULL);
	free(c);
}

static void test_eviction_round_robin(void **state)
{
	(void)state;
	setcache_t *c = calloc(1, sizeof(*c));
	knot_rrset_t sets[SETCACHE_WAYS + 1];
	for (unsigned i = 0; i <= SETCACHE_WAYS; i++) {
		make_set(&sets[i], 1, 10 * (i + 1));
		fill(setcache_put(c, 7, 1, &sets[i].rrs)->weight, 1, i);
	}
	/* The oldest entry made room for the newest; the others stay. */
	assert_null(setcache_get(c, 7, 1, &sets[0].rrs));
	for (unsigned i = 1; i <= SETCACHE_WAYS; i++) {
		const setcache_entry_t *w = setcache_get(c, 7, 1, &sets[i].rrs);
		assert_non_null(w);
		assert_int_equal(w->weight[0], i);
	}
	for (unsigned i = 0; i <= SETCACHE_WAYS; i++) {
		knot_rrset_clear(&sets[i], NULL);
	}
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_miss_then_hit),
		cmocka_unit_test(test_key_is_tag_and_bytes),
		cmocka_unit_test(test_large_set_not_cached),
		cmocka_unit_test(test_eviction_round_robin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
