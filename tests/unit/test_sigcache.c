/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of sigcache.h: keys that do not depend on record order or the
 * owner's case, wildcard owners shared by every name under the wildcard,
 * heads and records that must match exactly, replacement, the size bound
 * (oldest out first) and the sweep.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <urcu.h>

#include "sigcache.h"

static const knot_dname_t *dn(const char *text, knot_dname_storage_t buf)
{
	assert_non_null(knot_dname_from_str(buf, text, KNOT_DNAME_MAXLEN));
	return buf;
}

/* An RRSIG head: type MX, algorithm 13, 'labels', times and tag varied by 'salt'. */
static uint16_t head(uint8_t *out, uint8_t labels, uint32_t salt, const char *signer)
{
	knot_wire_write_u16(out, KNOT_RRTYPE_MX);
	out[2] = 13;
	out[3] = labels;
	knot_wire_write_u32(out + 4, 300);
	knot_wire_write_u32(out + 8, 2000000000u + salt);
	knot_wire_write_u32(out + 12, 1900000000u + salt);
	knot_wire_write_u16(out + 16, 4242);
	knot_dname_storage_t s;
	dn(signer, s);
	size_t len = knot_dname_size(s);
	memcpy(out + 18, s, len);
	return 18 + len;
}

typedef struct {
	const char *name;
	uint16_t pref;
} rec_t;

static void key_of(sigkey_t *key, const char *owner, knot_dname_storage_t obuf,
                   const uint8_t *h, uint16_t hlen, const rec_t *recs, size_t n)
{
	assert_int_equal(sigcache_key_init(key, dn(owner, obuf), h, hlen), KNOT_EOK);
	for (size_t i = 0; i < n; i++) {
		knot_dname_storage_t name;
		sigcache_key_add(key, sigcache_rec(sigcache_name_hash(dn(recs[i].name, name)),
		                                   recs[i].pref));
	}
}

static const uint8_t SIG[64] = { 1, 2, 3, 4, 5 };

static int setup(void **state)
{
	(void)state;
	rcu_register_thread();
	return sigcache_init(64) == KNOT_EOK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rcu_barrier();
	sigcache_destroy();
	rcu_unregister_thread();
	return 0;
}

static const sigvar_t *lookup(const sigkey_t *key)
{
	rcu_read_lock();
	const sigvar_t *var = sigcache_find(key);
	rcu_read_unlock();
	return var;
}

static void test_order_and_case(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 2, 1, "example.com.");
	const rec_t a[] = { { "mx1.example.com.", 10 }, { "mx2.example.com.", 11 } };
	const rec_t b[] = { { "MX2.Example.COM.", 11 }, { "mx1.EXAMPLE.com.", 10 } };
	knot_dname_storage_t o1, o2, owner;
	sigkey_t k1, k2;
	key_of(&k1, "example.com.", o1, h, hl, a, 2);
	key_of(&k2, "EXAMPLE.Com.", o2, h, hl, b, 2);
	assert_int_equal(k1.hash, k2.hash);

	assert_int_equal(sigcache_insert(&k1, dn("example.com.", owner), SIG_OK, SIG, sizeof(SIG),
	                                 INT64_MAX), KNOT_EOK);
	const sigvar_t *var = lookup(&k2);
	assert_non_null(var);
	assert_int_equal(sigvar_cause(var), SIG_OK);
	uint16_t len = 0;
	assert_memory_equal(sigvar_sig(var, &len), SIG, sizeof(SIG));
	assert_int_equal(len, sizeof(SIG));
	assert_int_equal(sigcache_state(&k2), SIG_OK);
}

static void test_must_match_exactly(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD], h2[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 2, 2, "example.com.");
	uint16_t hl2 = head(h2, 2, 3, "example.com.");  /* knotd re-signed: new times. */
	const rec_t a[] = { { "mx1.example.com.", 10 }, { "mx2.example.com.", 11 } };
	const rec_t pref[] = { { "mx1.example.com.", 11 }, { "mx2.example.com.", 10 } };
	const rec_t fewer[] = { { "mx1.example.com.", 10 } };
	const rec_t more[] = { { "mx1.example.com.", 10 }, { "mx2.example.com.", 11 },
	                       { "mx3.example.com.", 20 } };
	knot_dname_storage_t o, owner;
	sigkey_t k;
	key_of(&k, "example.com.", o, h, hl, a, 2);
	assert_int_equal(sigcache_insert(&k, dn("example.com.", owner), SIG_OK, SIG, sizeof(SIG),
	                                 INT64_MAX), KNOT_EOK);
	assert_non_null(lookup(&k));

	key_of(&k, "example.com.", o, h2, hl2, a, 2);
	assert_null(lookup(&k));
	key_of(&k, "example.com.", o, h, hl, pref, 2);
	assert_null(lookup(&k));
	key_of(&k, "example.com.", o, h, hl, fewer, 1);
	assert_null(lookup(&k));
	key_of(&k, "example.com.", o, h, hl, more, 3);
	assert_null(lookup(&k));
	key_of(&k, "other.example.com.", o, h, hl, a, 2);
	assert_null(lookup(&k));  /* Labels 2 vs 3: a wildcard owner, not this one. */
}

static void test_wildcard_shared(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 3, 4, "example.com.");  /* *.mail.example.com: 3 labels. */
	const rec_t a[] = { { "mx1.example.com.", 10 } };
	knot_dname_storage_t o, owner;
	sigkey_t k;
	key_of(&k, "a.mail.example.com.", o, h, hl, a, 1);
	assert_true(k.wildcard);
	assert_int_equal(sigcache_insert(&k, dn("*.mail.example.com.", owner), SIG_OK, SIG,
	                                 sizeof(SIG), INT64_MAX), KNOT_EOK);
	key_of(&k, "Random-Name.MAIL.example.com.", o, h, hl, a, 1);
	assert_non_null(lookup(&k));
	key_of(&k, "x.y.mail.example.com.", o, h, hl, a, 1);
	assert_non_null(lookup(&k));  /* Deeper names under the wildcard too. */
	key_of(&k, "a.post.example.com.", o, h, hl, a, 1);
	assert_null(lookup(&k));

	/* More RRSIG labels than the owner has is malformed. */
	knot_dname_storage_t short_owner;
	assert_int_equal(sigcache_key_init(&k, dn("com.", short_owner), h, hl), KNOT_EMALF);
}

static void test_replace_and_failures(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 2, 5, "example.com.");
	const rec_t a[] = { { "mx9.example.com.", 10 } };
	knot_dname_storage_t o, owner;
	sigkey_t k;
	key_of(&k, "example.com.", o, h, hl, a, 1);
	size_t before = sigcache_count();
	assert_int_equal(sigcache_insert(&k, dn("example.com.", owner), SIG_FAIL_NO_KEY, NULL, 0,
	                                 1000), KNOT_EOK);
	const sigvar_t *var = lookup(&k);
	assert_non_null(var);
	assert_int_equal(sigvar_cause(var), SIG_FAIL_NO_KEY);
	assert_int_equal(sigcache_state(&k), SIG_FAIL_NO_KEY);

	assert_int_equal(sigcache_insert(&k, owner, SIG_OK, SIG, sizeof(SIG), INT64_MAX), KNOT_EOK);
	assert_int_equal(sigcache_count(), before + 1);  /* Replaced, not added. */
	assert_int_equal(sigvar_cause(lookup(&k)), SIG_OK);

	uint8_t big[SIGCACHE_MAX_SIG + 1] = { 0 };
	assert_int_equal(sigcache_insert(&k, owner, SIG_OK, big, sizeof(big), INT64_MAX),
	                 KNOT_ESPACE);
}

/* Holes left by the sweep are filled before anything live is pushed out. */
static void test_holes_filled_first(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 2, 7, "example.com.");
	knot_dname_storage_t o, owner;
	dn("example.com.", owner);
	sigkey_t k;
	sigcache_sweep(INT64_MAX);
	for (uint16_t i = 0; i < 64; i++) {
		rec_t r[] = { { "mx2.example.com.", i } };
		key_of(&k, "example.com.", o, h, hl, r, 1);
		/* Every other one is due early. */
		assert_int_equal(sigcache_insert(&k, owner, SIG_OK, SIG, sizeof(SIG),
		                                 (i % 2) ? 100 : 9000), KNOT_EOK);
	}
	assert_int_equal(sigcache_sweep(100), 32);
	uint64_t evicted = sigcache_evictions();
	for (uint16_t i = 100; i < 132; i++) {
		rec_t r[] = { { "mx2.example.com.", i } };
		key_of(&k, "example.com.", o, h, hl, r, 1);
		assert_int_equal(sigcache_insert(&k, owner, SIG_OK, SIG, sizeof(SIG), 9000), KNOT_EOK);
	}
	assert_int_equal(sigcache_evictions(), evicted);
	assert_int_equal(sigcache_count(), 64);
	for (uint16_t i = 0; i < 64; i += 2) {
		rec_t r[] = { { "mx2.example.com.", i } };
		key_of(&k, "example.com.", o, h, hl, r, 1);
		assert_non_null(lookup(&k));
	}
	assert_int_equal(sigcache_sweep(INT64_MAX), 64);
}

static void test_bound_and_sweep(void **state)
{
	(void)state;
	uint8_t h[SIGCACHE_MAX_HEAD];
	uint16_t hl = head(h, 2, 6, "example.com.");
	knot_dname_storage_t o, owner;
	dn("example.com.", owner);
	sigkey_t k;
	sigcache_sweep(INT64_MAX);  /* Start empty. */
	assert_int_equal(sigcache_count(), 0);
	uint64_t evicted = sigcache_evictions();
	/* 100 variants into a cache of 64: the first 36 are gone, the last 64 stay. */
	for (uint16_t i = 0; i < 100; i++) {
		rec_t r[] = { { "mx1.example.com.", i } };
		key_of(&k, "example.com.", o, h, hl, r, 1);
		assert_int_equal(sigcache_insert(&k, owner, SIG_OK, SIG, sizeof(SIG),
		                                 i < 90 ? 5000 : 9000), KNOT_EOK);
	}
	assert_int_equal(sigcache_count(), 64);
	assert_int_equal(sigcache_evictions() - evicted, 36);
	for (uint16_t i = 0; i < 100; i++) {
		rec_t r[] = { { "mx1.example.com.", i } };
		key_of(&k, "example.com.", o, h, hl, r, 1);
		if (i < 36) {
			assert_null(lookup(&k));
		} else {
			assert_non_null(lookup(&k));
		}
	}
	/* The sweep takes what is due, and only that. */
	assert_int_equal(sigcache_sweep(4999), 0);
	assert_int_equal(sigcache_sweep(5000), 54);
	assert_int_equal(sigcache_count(), 10);
	rec_t r[] = { { "mx1.example.com.", 95 } };
	key_of(&k, "example.com.", o, h, hl, r, 1);
	assert_non_null(lookup(&k));
	assert_int_equal(sigcache_sweep(9000), 10);
	assert_int_equal(sigcache_count(), 0);
	assert_null(lookup(&k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_case),
		cmocka_unit_test(test_must_match_exactly),
		cmocka_unit_test(test_wildcard_shared),
		cmocka_unit_test(test_replace_and_failures),
		cmocka_unit_test(test_holes_filled_first),
		cmocka_unit_test(test_bound_and_sweep),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
