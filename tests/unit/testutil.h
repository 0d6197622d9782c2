/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file testutil.h
 * \brief Shared helpers of the unit tests: a test-local generator for input
 *        data, fixed-seed module generators and a chi-square check.
 */

#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "rng.h"

/*!
 * Upper critical value of the chi-square distribution at alpha = 0.001 for
 * df degrees of freedom (1..15), from the standard table (e.g. NIST/SEMATECH
 * e-Handbook of Statistical Methods, 1.3.6.7.4). Returns 0 for other df.
 */
static inline double tu_chi2_crit_0001(size_t df)
{
	static const double crit[] = {
		[1] = 10.828, [2] = 13.816, [3] = 16.266, [4] = 18.467, [5] = 20.515,
		[6] = 22.458, [7] = 24.322, [8] = 26.124, [9] = 27.877, [10] = 29.588,
		[11] = 31.264, [12] = 32.909, [13] = 34.528, [14] = 36.123, [15] = 37.697,
	};
	return (df >= 1 && df < sizeof(crit) / sizeof(crit[0])) ? crit[df] : 0.0;
}

/*! SplitMix64: test-local generator for input data (client hashes, seeds),
 *  independent of the module's generator under test. */
static inline uint64_t tu_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*! Seed a module generator with 32 bytes derived from a fixed number. */
static inline void tu_rng_seed(mxp_rng_t *rng, uint64_t seed)
{
	uint8_t bytes[32];
	uint64_t st = seed;
	for (int i = 0; i < 4; i++) {
		uint64_t v = tu_splitmix64(&st);
		for (int j = 0; j < 8; j++) {
			bytes[i * 8 + j] = (uint8_t)(v >> (8 * j));
		}
	}
	rng_seed(rng, bytes);
}

/*!
 * Pearson chi-square statistic of observed counts against expected
 * probabilities (which must sum to 1, each > 0); total = sum of observed.
 */
static inline double tu_chi2(const unsigned *observed, const double *prob, size_t k)
{
	double total = 0;
	for (size_t i = 0; i < k; i++) {
		total += observed[i];
	}
	double stat = 0;
	for (size_t i = 0; i < k; i++) {
		double e = total * prob[i];
		double d = observed[i] - e;
		stat += d * d / e;
	}
	return stat;
}

/*!
 * Assert that observed counts fit the expected probabilities at
 * alpha = 0.001 (df = k - 1). Prints the figures on failure.
 */
static inline void tu_assert_chi2(const char *what, const unsigned *observed,
                                  const double *prob, size_t k)
{
	double crit = tu_chi2_crit_0001(k - 1);
	assert_true(k >= 2 && crit > 0.0);
	double stat = tu_chi2(observed, prob, k);
	if (stat >= crit) {
		double total = 0;
		for (size_t i = 0; i < k; i++) {
			total += observed[i];
		}
		print_error("%s: chi-square %.3f >= %.3f (df %zu, alpha 0.001)\n",
		            what, stat, crit, k - 1);
		for (size_t i = 0; i < k; i++) {
			print_error("  bucket %zu: observed %u, expected %.1f\n",
			            i, observed[i], total * prob[i]);
		}
	}
	assert_true(stat < crit);
}
