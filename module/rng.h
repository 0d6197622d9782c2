/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file rng.h
 * \brief Fast non-cryptographic random source and a keyed hash for sticky choice.
 */

#pragma once

#include <stddef.h>
#include <stdint.h>

/*! xoshiro256** state; seed it from a CSPRNG (rng_seed). */
typedef struct {
	uint64_t s[4];
} mxp_rng_t;

/*! Seed from 32 bytes of (CSPRNG) material; all-zero seeds are fixed up. */
void rng_seed(mxp_rng_t *rng, const uint8_t seed[32]);

/*! Next 64 random bits. */
uint64_t rng_next(mxp_rng_t *rng);

/*! Uniform double in (0, 1): never 0, never 1. */
double rng_unit(uint64_t bits);

/*! SipHash-2-4 key. */
typedef struct {
	uint64_t k0, k1;
} mxp_hash_key_t;

/*! Streaming SipHash-2-4 state. */
typedef struct {
	uint64_t v0, v1, v2, v3;
	uint64_t tail;   /*!< Pending bytes, little endian. */
	size_t tail_len; /*!< Number of pending bytes (0..7). */
	size_t total;    /*!< Bytes absorbed so far. */
} mxp_hash_t;

void hash_init(mxp_hash_t *h, const mxp_hash_key_t *key);
void hash_update(mxp_hash_t *h, const void *data, size_t len);
uint64_t hash_final(const mxp_hash_t *h);

/*! One-shot SipHash-2-4. */
uint64_t hash_siphash24(const mxp_hash_key_t *key, const void *data, size_t len);
