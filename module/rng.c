/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <string.h>

#include "rng.h"

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

/* SplitMix64 spreads a weak seed over the whole xoshiro state. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_seed(mxp_rng_t *rng, const uint8_t seed[32])
{
	uint64_t mix = 0;
	for (int i = 0; i < 4; i++) {
		mix ^= load_le64(seed + 8 * i);
		rng->s[i] = splitmix64(&mix) ^ load_le64(seed + 8 * i);
	}
	if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) {
		/* xoshiro must never be all-zero: it would stay there. */
		uint64_t x = 1;
		for (int i = 0; i < 4; i++) {
			rng->s[i] = splitmix64(&x);
		}
	}
}

uint64_t rng_next(mxp_rng_t *rng)
{
	uint64_t *s = rng->s;
	const uint64_t result = rotl(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);

	return result;
}

double rng_unit(uint64_t bits)
{
	/* 52 bits, centred in the bucket: exactly representable, strictly inside (0, 1). */
	return ((double)(bits >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

#define SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
} while (0)

static void sip_compress(mxp_hash_t *h, uint64_t m)
{
	h->v3 ^= m;
	SIPROUND(h->v0, h->v1, h->v2, h->v3);
	SIPROUND(h->v0, h->v1, h->v2, h->v3);
	h->v0 ^= m;
}

void hash_init(mxp_hash_t *h, const mxp_hash_key_t *key)
{
	h->v0 = key->k0 ^ 0x736f6d6570736575ULL;
	h->v1 = key->k1 ^ 0x646f72616e646f6dULL;
	h->v2 = key->k0 ^ 0x6c7967656e657261ULL;
	h->v3 = key->k1 ^ 0x7465646279746573ULL;
	h->tail = 0;
	h->tail_len = 0;
	h->total = 0;
}

void hash_update(mxp_hash_t *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	h->total += len;

	while (len > 0 && h->tail_len > 0) {
		h->tail |= (uint64_t)*p++ << (8 * h->tail_len);
		len--;
		if (++h->tail_len == 8) {
			sip_compress(h, h->tail);
			h->tail = 0;
			h->tail_len = 0;
		}
	}
	while (len >= 8) {
		sip_compress(h, load_le64(p));
		p += 8;
		len -= 8;
	}
	while (len > 0) {
		h->tail |= (uint64_t)*p++ << (8 * h->tail_len++);
		len--;
	}
}

uint64_t hash_final(const mxp_hash_t *h)
{
	uint64_t v0 = h->v0, v1 = h->v1, v2 = h->v2, v3 = h->v3;
	uint64_t b = ((uint64_t)(h->total & 0xff) << 56) | h->tail;

	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);

	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hash_siphash24(const mxp_hash_key_t *key, const void *data, size_t len)
{
	mxp_hash_t h;
	hash_init(&h, key);
	hash_update(&h, data, len);
	return hash_final(&h);
}
