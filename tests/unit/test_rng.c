/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of rng.h: SipHash-2-4 (one-shot and streaming), seeding and
 * output of the xoshiro256** generator, rng_unit bounds and uniformity.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"
#include "testutil.h"

/*
 * SipHash-2-4 reference vectors (Aumasson & Bernstein, "SipHash: a fast
 * short-input PRF", reference implementation vectors.h, 64-bit output):
 * key 00 01 .. 0f, message 00 01 .. (len-1), for len = 0..63. Values are the
 * 64-bit results (the table's bytes read little endian). Cross-checked
 * against OpenSSL 3's independent SIPHASH MAC (size 8).
 */
static const uint64_t SIP24_VECTORS[64] = {
	UINT64_C(0x726fdb47dd0e0e31), UINT64_C(0x74f839c593dc67fd),
	UINT64_C(0x0d6c8009d9a94f5a), UINT64_C(0x85676696d7fb7e2d),
	UINT64_C(0xcf2794e0277187b7), UINT64_C(0x18765564cd99a68d),
	UINT64_C(0xcbc9466e58fee3ce), UINT64_C(0xab0200f58b01d137),
	UINT64_C(0x93f5f5799a932462), UINT64_C(0x9e0082df0ba9e4b0),
	UINT64_C(0x7a5dbbc594ddb9f3), UINT64_C(0xf4b32f46226bada7),
	UINT64_C(0x751e8fbc860ee5fb), UINT64_C(0x14ea5627c0843d90),
	UINT64_C(0xf723ca908e7af2ee), UINT64_C(0xa129ca6149be45e5),
	UINT64_C(0x3f2acc7f57c29bdb), UINT64_C(0x699ae9f52cbe4794),
	UINT64_C(0x4bc1b3f0968dd39c), UINT64_C(0xbb6dc91da77961bd),
	UINT64_C(0xbed65cf21aa2ee98), UINT64_C(0xd0f2cbb02e3b67c7),
	UINT64_C(0x93536795e3a33e88), UINT64_C(0xa80c038ccd5ccec8),
	UINT64_C(0xb8ad50c6f649af94), UINT64_C(0xbce192de8a85b8ea),
	UINT64_C(0x17d835b85bbb15f3), UINT64_C(0x2f2e6163076bcfad),
	UINT64_C(0xde4daaaca71dc9a5), UINT64_C(0xa6a2506687956571),
	UINT64_C(0xad87a3535c49ef28), UINT64_C(0x32d892fad841c342),
	UINT64_C(0x7127512f72f27cce), UINT64_C(0xa7f32346f95978e3),
	UINT64_C(0x12e0b01abb051238), UINT64_C(0x15e034d40fa197ae),
	UINT64_C(0x314dffbe0815a3b4), UINT64_C(0x027990f029623981),
	UINT64_C(0xcadcd4e59ef40c4d), UINT64_C(0x9abfd8766a33735c),
	UINT64_C(0x0e3ea96b5304a7d0), UINT64_C(0xad0c42d6fc585992),
	UINT64_C(0x187306c89bc215a9), UINT64_C(0xd4a60abcf3792b95),
	UINT64_C(0xf935451de4f21df2), UINT64_C(0xa9538f0419755787),
	UINT64_C(0xdb9acddff56ca510), UINT64_C(0xd06c98cd5c0975eb),
	UINT64_C(0xe612a3cb9ecba951), UINT64_C(0xc766e62cfcadaf96),
	UINT64_C(0xee64435a9752fe72), UINT64_C(0xa192d576b245165a),
	UINT64_C(0x0a8787bf8ecb74b2), UINT64_C(0x81b3e73d20b49b6f),
	UINT64_C(0x7fa8220ba3b2ecea), UINT64_C(0x245731c13ca42499),
	UINT64_C(0xb78dbfaf3a8d83bd), UINT64_C(0xea1ad565322a1a0b),
	UINT64_C(0x60e61c23a3795013), UINT64_C(0x6606d7e446282b93),
	UINT64_C(0x6ca4ecb15c5f91e1), UINT64_C(0x9f626da15c9625f3),
	UINT64_C(0xe51b38608ef25f57), UINT64_C(0x958a324ceb064572),
};

/* Key 00 01 .. 0f as two little-endian 64-bit words. */
static const mxp_hash_key_t REF_KEY = {
	.k0 = UINT64_C(0x0706050403020100),
	.k1 = UINT64_C(0x0f0e0d0c0b0a0908),
};

static void ref_message(uint8_t msg[64])
{
	for (int i = 0; i < 64; i++) {
		msg[i] = (uint8_t)i;
	}
}

/* The lengths the brief names explicitly, one at a time for clear failures. */
static void test_siphash_named_vectors(void **state)
{
	(void)state;
	uint8_t msg[64];
	ref_message(msg);

	assert_int_equal(hash_siphash24(&REF_KEY, msg, 0), UINT64_C(0x726fdb47dd0e0e31));
	assert_int_equal(hash_siphash24(&REF_KEY, msg, 1), UINT64_C(0x74f839c593dc67fd));
	assert_int_equal(hash_siphash24(&REF_KEY, msg, 7), UINT64_C(0xab0200f58b01d137));
	assert_int_equal(hash_siphash24(&REF_KEY, msg, 8), UINT64_C(0x93f5f5799a932462));
	assert_int_equal(hash_siphash24(&REF_KEY, msg, 15), UINT64_C(0xa129ca6149be45e5));
	assert_int_equal(hash_siphash24(&REF_KEY, msg, 63), UINT64_C(0x958a324ceb064572));
}

/* Every length 0..63 of the reference table, one-shot. */
static void test_siphash_all_vectors(void **state)
{
	(void)state;
	uint8_t msg[64];
	ref_message(msg);

	for (size_t len = 0; len < 64; len++) {
		uint64_t h = hash_siphash24(&REF_KEY, msg, len);
		if (h != SIP24_VECTORS[len]) {
			print_error("siphash len %zu: got %016llx want %016llx\n", len,
			            (unsigned long long)h, (unsigned long long)SIP24_VECTORS[len]);
		}
		assert_int_equal(h, SIP24_VECTORS[len]);
	}
}

/*
 * Messages longer than the reference table (the length byte of the final
 * block is len mod 256): key 00..0f, message byte i = i mod 256. Values
 * computed with OpenSSL 3's SIPHASH MAC (c=2, d=4, size 8), which agrees
 * with the reference table above for every length 0..63.
 */
static void test_siphash_long_vectors(void **state)
{
	(void)state;
	static const struct {
		size_t len;
		uint64_t hash;
	} vec[] = {
		{ 64, UINT64_C(0xacd2c40b8502cad8) },
		{ 127, UINT64_C(0x9e7db1ba81dc7e3a) },
		{ 128, UINT64_C(0xdeb79e256c8736ae) },
		{ 255, UINT64_C(0xa9c169fec74db21a) },
		{ 256, UINT64_C(0x999d0526d2a7bfd7) },
		{ 257, UINT64_C(0x8a817b8d55b29748) },
		{ 1000, UINT64_C(0xdb9b3ed69e31c9a6) },
	};
	uint8_t msg[1000];
	for (size_t i = 0; i < sizeof(msg); i++) {
		msg[i] = (uint8_t)i;
	}
	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		assert_int_equal(hash_siphash24(&REF_KEY, msg, vec[v].len), vec[v].hash);
		mxp_hash_t h;
		hash_init(&h, &REF_KEY);
		hash_update(&h, msg, 5);
		hash_update(&h, msg + 5, vec[v].len - 5);
		assert_int_equal(hash_final(&h), vec[v].hash);
	}
}

/* Streaming with init/update/final and no update gives the empty-message hash. */
static void test_siphash_stream_empty(void **state)
{
	(void)state;
	mxp_hash_t h;
	hash_init(&h, &REF_KEY);
	assert_int_equal(hash_final(&h), SIP24_VECTORS[0]);

	hash_init(&h, &REF_KEY);
	hash_update(&h, "", 0);
	assert_int_equal(hash_final(&h), SIP24_VECTORS[0]);
}

/* Streaming in every split into two pieces, and byte by byte, equals one-shot. */
static void test_siphash_stream_splits(void **state)
{
	(void)state;
	uint8_t msg[64];
	ref_message(msg);

	for (size_t len = 0; len < 64; len++) {
		for (size_t cut = 0; cut <= len; cut++) {
			mxp_hash_t h;
			hash_init(&h, &REF_KEY);
			hash_update(&h, msg, cut);
			hash_update(&h, msg + cut, len - cut);
			assert_int_equal(hash_final(&h), SIP24_VECTORS[len]);
		}

		mxp_hash_t h;
		hash_init(&h, &REF_KEY);
		for (size_t i = 0; i < len; i++) {
			hash_update(&h, msg + i, 1);
		}
		assert_int_equal(hash_final(&h), SIP24_VECTORS[len]);
	}
}

/* Pieces of assorted sizes (3, 5, 11, 0, 13, ...) over a long message. */
static void test_siphash_stream_pieces_long(void **state)
{
	(void)state;
	uint8_t msg[1000];
	uint64_t st = 42;
	for (size_t i = 0; i < sizeof(msg); i++) {
		msg[i] = (uint8_t)tu_splitmix64(&st);
	}
	const mxp_hash_key_t key = { UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210) };
	static const size_t pieces[] = { 3, 5, 11, 0, 13, 1, 8, 16, 7, 64, 2 };

	for (size_t len = 0; len <= sizeof(msg); len += 37) {
		uint64_t want = hash_siphash24(&key, msg, len);
		mxp_hash_t h;
		hash_init(&h, &key);
		size_t pos = 0, p = 0;
		while (pos < len) {
			size_t n = pieces[p++ % (sizeof(pieces) / sizeof(pieces[0]))];
			if (n > len - pos) {
				n = len - pos;
			}
			hash_update(&h, msg + pos, n);
			pos += n;
		}
		assert_int_equal(hash_final(&h), want);
	}
}

/* hash_final does not consume the state: it can be called again, and
 * absorbing more afterwards continues the same stream. */
static void test_siphash_final_is_const(void **state)
{
	(void)state;
	uint8_t msg[64];
	ref_message(msg);
	mxp_hash_t h;
	hash_init(&h, &REF_KEY);
	hash_update(&h, msg, 20);
	assert_int_equal(hash_final(&h), SIP24_VECTORS[20]);
	assert_int_equal(hash_final(&h), SIP24_VECTORS[20]);
	hash_update(&h, msg + 20, 23);
	assert_int_equal(hash_final(&h), SIP24_VECTORS[43]);
}

/* The key matters. */
static void test_siphash_key_sensitivity(void **state)
{
	(void)state;
	uint8_t msg[64];
	ref_message(msg);
	mxp_hash_key_t k2 = REF_KEY;
	k2.k0 ^= 1;
	mxp_hash_key_t k3 = REF_KEY;
	k3.k1 ^= UINT64_C(1) << 63;
	for (size_t len = 0; len < 64; len += 9) {
		assert_int_not_equal(hash_siphash24(&k2, msg, len), SIP24_VECTORS[len]);
		assert_int_not_equal(hash_siphash24(&k3, msg, len), SIP24_VECTORS[len]);
	}
}

static void seed_bytes(uint8_t seed[32], uint64_t from)
{
	uint64_t st = from;
	for (int i = 0; i < 32; i += 8) {
		uint64_t v = tu_splitmix64(&st);
		memcpy(seed + i, &v, 8);
	}
}

static void test_rng_same_seed_reproducible(void **state)
{
	(void)state;
	uint8_t seed[32];
	seed_bytes(seed, 7);
	mxp_rng_t a, b;
	rng_seed(&a, seed);
	rng_seed(&b, seed);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(rng_next(&a), rng_next(&b));
	}
}

static bool streams_equal(const uint8_t s1[32], const uint8_t s2[32], int len, int *same)
{
	mxp_rng_t a, b;
	rng_seed(&a, s1);
	rng_seed(&b, s2);
	int eq = 0;
	for (int i = 0; i < len; i++) {
		eq += (rng_next(&a) == rng_next(&b));
	}
	if (same != NULL) {
		*same = eq;
	}
	return eq == len;
}

static void test_rng_different_seeds_differ(void **state)
{
	(void)state;
	uint8_t s1[32], s2[32];
	seed_bytes(s1, 7);

	/* Seeds one bit apart, at every byte position, give different streams. */
	for (int byte = 0; byte < 32; byte++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(s2, s1, 32);
			s2[byte] ^= (uint8_t)(1u << bit);
			assert_false(streams_equal(s1, s2, 64, NULL));
		}
	}

	/* Unrelated seeds: practically no output in common. */
	int same = 0;
	seed_bytes(s2, 8);
	streams_equal(s1, s2, 64, &same);
	assert_true(same < 2);
}

/* An all-zero seed would make xoshiro output zeros forever; it is fixed up. */
static void test_rng_zero_seed_fixed_up(void **state)
{
	(void)state;
	const uint8_t zero[32] = { 0 };
	mxp_rng_t r;
	rng_seed(&r, zero);
	assert_false(r.s[0] == 0 && r.s[1] == 0 && r.s[2] == 0 && r.s[3] == 0);

	int nonzero = 0;
	uint64_t prev = 0;
	int distinct = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t v = rng_next(&r);
		nonzero += (v != 0);
		distinct += (i == 0 || v != prev);
		prev = v;
	}
	assert_true(nonzero >= 99);
	assert_true(distinct >= 99);
}

static void test_rng_unit_bounds(void **state)
{
	(void)state;
	double lo = rng_unit(0);
	double hi = rng_unit(UINT64_MAX);
	assert_true(lo > 0.0);
	assert_true(lo < 1.0);
	assert_true(hi > 0.0);
	assert_true(hi < 1.0);

	/* Assorted bit patterns, including single high and low bits. */
	for (int b = 0; b < 64; b++) {
		double u = rng_unit(UINT64_C(1) << b);
		assert_true(u > 0.0 && u < 1.0);
		u = rng_unit(~(UINT64_C(1) << b));
		assert_true(u > 0.0 && u < 1.0);
	}
	/* Never 0 or 1 over a stream of generator output either. */
	mxp_rng_t r;
	tu_rng_seed(&r, 3);
	for (int i = 0; i < 100000; i++) {
		double u = rng_unit(rng_next(&r));
		assert_true(u > 0.0 && u < 1.0);
	}
}

/* Uniformity of rng_unit(rng_next()) over 16 equal buckets:
 * chi-square, df = 15, alpha = 0.001 (critical 37.697), fixed seed. */
static void test_rng_unit_uniform_chi2(void **state)
{
	(void)state;
	mxp_rng_t r;
	tu_rng_seed(&r, 20260101);
	unsigned obs[16] = { 0 };
	double prob[16];
	for (int i = 0; i < 16; i++) {
		prob[i] = 1.0 / 16;
	}
	for (int i = 0; i < 160000; i++) {
		double u = rng_unit(rng_next(&r));
		int b = (int)(u * 16);
		assert_true(b >= 0 && b < 16);
		obs[b]++;
	}
	tu_assert_chi2("rng_unit 16 buckets", obs, prob, 16);
}

/* Uniformity of the raw 64-bit output, low and high nibble separately. */
static void test_rng_next_nibbles_chi2(void **state)
{
	(void)state;
	mxp_rng_t r;
	tu_rng_seed(&r, 99);
	unsigned lo[16] = { 0 }, hi[16] = { 0 };
	double prob[16];
	for (int i = 0; i < 16; i++) {
		prob[i] = 1.0 / 16;
	}
	for (int i = 0; i < 160000; i++) {
		uint64_t v = rng_next(&r);
		lo[v & 15]++;
		hi[v >> 60]++;
	}
	tu_assert_chi2("rng_next low nibble", lo, prob, 16);
	tu_assert_chi2("rng_next high nibble", hi, prob, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_named_vectors),
		cmocka_unit_test(test_siphash_all_vectors),
		cmocka_unit_test(test_siphash_long_vectors),
		cmocka_unit_test(test_siphash_stream_empty),
		cmocka_unit_test(test_siphash_stream_splits),
		cmocka_unit_test(test_siphash_stream_pieces_long),
		cmocka_unit_test(test_siphash_final_is_const),
		cmocka_unit_test(test_siphash_key_sensitivity),
		cmocka_unit_test(test_rng_same_seed_reproducible),
		cmocka_unit_test(test_rng_different_seeds_differ),
		cmocka_unit_test(test_rng_zero_seed_fixed_up),
		cmocka_unit_test(test_rng_unit_bounds),
		cmocka_unit_test(test_rng_unit_uniform_chi2),
		cmocka_unit_test(test_rng_next_nibbles_chi2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
