/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file signer.h
 * \brief The signer thread: signs the MX sets the policy serves in signed
 *        zones, off the query path, into the variant cache (sigcache.h).
 *
 * Query threads never sign. When a DO answer of a signed zone needs a set
 * the cache does not have, the thread serves the zone's own signed set for
 * that query and hands the set's signing context (owner, the zone's RRSIG
 * heads, the keys, the records and their configured weights) to the signer
 * through its own single-producer ring: no lock, no allocation, no syscall.
 * The signer remembers contexts, signs every variant the policy can serve
 * under the current states (policy_variants()) within a rate budget, and
 * on an operator's state change pre-signs them for the new states before
 * the change is published.
 */

#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "policy.h"
#include "registry.h"
#include "setcache.h"
#include "sigcache.h"

/*! RRSIGs of one set the signer follows (two during an algorithm rollover). */
#define SIGNER_MAX_SIGS    2
/*! Longest DNSKEY rdata handed over (RSA 4096 has 516 bytes). */
#define SIGNER_MAX_DNSKEY  1024
/*! Requests a worker may have waiting (about 3.6 KiB each). */
#define SIGNER_RING        32
/*! Variants prepared per set at most; more: answered as the zone has them. */
#define SIGNER_MAX_VARIANTS 64

/*! What a zone instance tells the signer at load. */
typedef struct {
	uint64_t tag;                     /*!< Instance tag. */
	knot_dname_storage_t zone;
	char keystore[PATH_MAX];          /*!< PKCS#8 key directory of the zone's policy. */
	sig_cause_t keystore_problem;     /*!< SIG_OK or why keys cannot be had (PKCS#11). */
	mxp_opts_t opts;
} signer_profile_t;

/*! One signing context, filled by a query thread. */
typedef struct {
	uint64_t tag;
	knot_dname_storage_t owner;       /*!< Owner as answered. */
	uint8_t nsigs;
	uint16_t head_len[SIGNER_MAX_SIGS];
	uint8_t head[SIGNER_MAX_SIGS][SIGCACHE_MAX_HEAD];
	uint16_t dnskey_len[SIGNER_MAX_SIGS];  /*!< 0: no DNSKEY with that tag/algorithm. */
	uint8_t dnskey[SIGNER_MAX_SIGS][SIGNER_MAX_DNSKEY];
	uint16_t count;                   /*!< MX records. */
	uint16_t size;                    /*!< Bytes of rdata. */
	uint8_t rdata[SETCACHE_MAX_RDATA];/*!< The zone's MX rdataset (knot_rdata_t packed). */
	uint16_t weight[MXP_MAX_RECORDS]; /*!< Configured weight of each record. */
} signer_req_t;

/*!
 * \brief Take a reference; the first starts the thread.
 *
 * \param workers  knotd's worker count (one request ring each).
 * \param rate     Signatures per second at most (burst: one second's worth).
 * \param capacity Variants cached at most.
 */
int signer_acquire(unsigned workers, unsigned rate, size_t capacity);

/*! Drop a reference; the last stops and joins the thread and empties the cache. */
void signer_release(void);

/*! Register or drop a zone instance (load/unload). */
int signer_profile_add(const signer_profile_t *profile);
void signer_profile_remove(uint64_t tag);

/*
 * Query path (worker 'worker' only): claim a free request slot, fill it,
 * commit it. NULL when the ring is full (the set is asked for again later).
 */
signer_req_t *signer_claim(unsigned worker);
void signer_commit(unsigned worker);

/*!
 * \brief Changes whenever the signer forgot sets (evicted, zone instance
 *        gone): workers then hand their sets over again.
 */
uint64_t signer_epoch(void);

/*!
 * \brief Sign, for the states of 'snap' (not yet published), every variant
 *        of the known sets that is not cached yet; wait at most timeout_ms.
 *
 * For the control thread, before it publishes a change.
 *
 * \return true if everything was ready in time.
 */
bool signer_presign(const registry_snap_t *snap, int timeout_ms);

/*! Process-wide counters (for `mxpolicyctl stats`). */
typedef struct {
	uint64_t signed_ok;              /*!< Variants signed. */
	uint64_t failed[SIG_CAUSES];     /*!< Variants not signed, by cause. */
	uint64_t budget_deferred;        /*!< Times signing waited for the rate budget. */
	uint64_t requests;               /*!< Contexts handed over by query threads. */
	uint64_t ring_full;              /*!< ... not handed over: ring full. */
	uint64_t contexts;               /*!< Contexts known now. */
	uint64_t cached;                 /*!< Variants cached now. */
} signer_stats_t;

void signer_stats(signer_stats_t *out);
