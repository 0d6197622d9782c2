/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file sigcache.h
 * \brief Signed variants of MX sets, found lock-free by query threads.
 *
 * A variant is one set of records the policy may serve (records left out,
 * preferences renumbered) together with a signature made for it with the
 * zone's key, for one of the zone's own RRSIGs of that set. It is keyed by
 * everything the signature depends on: the owner it was signed for (the
 * wildcard owner for a wildcard answer, as the RRSIG's labels field tells),
 * the RRSIG rdata head (type covered, algorithm, labels, Original TTL,
 * expiration, inception, key tag, signer) and the records. When knotd
 * re-signs or rolls a key the head changes, so stale variants are simply
 * never found again and fall out of the bounded cache.
 *
 * Readers (query hooks, inside knotd's RCU read-side section) call
 * sigcache_find(); the only writer is the signer thread, which reclaims
 * entries after a grace period.
 */

#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "policy.h"

/*! Longest signature kept (RSA 8192 bits). */
#define SIGCACHE_MAX_SIG 1024
/*! Longest RRSIG rdata head: 18 fixed bytes and the signer's name. */
#define SIGCACHE_MAX_HEAD (18 + KNOT_DNAME_MAXLEN)

/*! Why a variant could not be signed: served as the zone has it, counted. */
typedef enum {
	SIG_OK = 0,
	SIG_FAIL_NO_KEY,     /*!< Key not among the zone's DNSKEYs or not in the keystore. */
	SIG_FAIL_KEYSTORE,   /*!< Keystore not readable, or a PKCS#11 keystore. */
	SIG_FAIL_ALGORITHM,  /*!< Algorithm not supported for signing. */
	SIG_FAIL_EXPIRING,   /*!< The zone's signature expires within the set's TTL. */
	SIG_FAIL_TOO_MANY,   /*!< More possible variants than the signer prepares. */
	SIG_FAIL_ERROR,      /*!< Signing failed otherwise. */
	SIG_CAUSES
} sig_cause_t;

/*! Short names of the causes (counter indexes, logs). */
extern const char *sig_cause_names[SIG_CAUSES];

/*! Lookup key of a variant, built on the query path without allocation. */
typedef struct {
	const knot_dname_t *suffix; /*!< Owner, or the labels a wildcard covers (any case). */
	bool wildcard;              /*!< Signed for "*." + suffix. */
	const uint8_t *head;        /*!< RRSIG rdata head (18 bytes + signer). */
	uint16_t head_len;
	uint16_t count;             /*!< Records added. */
	uint64_t rec[MXP_MAX_RECORDS];
	uint64_t hash;
} sigkey_t;

/*! A cached variant. */
typedef struct sigvar sigvar_t;

/*! Hash of an exchange name, in any case (cache it per set: it is per record). */
uint64_t sigcache_name_hash(const knot_dname_t *name);

/*! The key of one record: its exchange's name hash and the preference served. */
uint64_t sigcache_rec(uint64_t name_hash, uint16_t pref);

/*!
 * \brief Start a key for the set owned by 'owner' (as answered, any case),
 *        signed by an RRSIG with this rdata head.
 *
 * \return KNOT_EOK, or KNOT_EMALF if the head is not an RRSIG head whose
 *         labels fit the owner.
 */
int sigcache_key_init(sigkey_t *key, const knot_dname_t *owner, const uint8_t *head,
                      uint16_t head_len);

/*! Add one record (sigcache_rec()); order does not matter. */
void sigcache_key_add(sigkey_t *key, uint64_t rec);

/*! The variant of a key or NULL; inside an RCU read-side section. */
const sigvar_t *sigcache_find(const sigkey_t *key);

/*! What a variant holds. */
sig_cause_t sigvar_cause(const sigvar_t *var);
const uint8_t *sigvar_sig(const sigvar_t *var, uint16_t *len);

/*
 * Writer side: the signer thread only (RCU-registered).
 */

/*! Create the table (idempotent); at most 'capacity' variants. */
int sigcache_init(size_t capacity);

/*!
 * \brief Insert or replace a variant.
 *
 * \param key      The key (as sigcache_key_init()/_add() built it).
 * \param owner    The owner signed for, lowercase, in full ("*." included).
 * \param cause    SIG_OK with a signature, or why there is none.
 * \param drop_at  When the entry must go (unix time): for a signature, when
 *                 it expires minus its Original TTL; for a failure, when to
 *                 try again.
 * A free slot is used while there is one; when the cache is full, the
 * oldest entry is pushed out.
 */
int sigcache_insert(const sigkey_t *key, const knot_dname_t *owner, sig_cause_t cause,
                    const uint8_t *sig, uint16_t sig_len, int64_t drop_at);

/*! The entry of a key: -1 if none, else its sig_cause_t. (Writer side, no RCU needed.) */
int sigcache_state(const sigkey_t *key);

/*! Drop the entries whose time has come; returns how many. */
size_t sigcache_sweep(int64_t now);

/*! Entries now. */
size_t sigcache_count(void);

/*! Entries swept so far: a change means failures are due for a retry. */
uint64_t sigcache_drops(void);

/*! Entries pushed out by newer ones while the cache was full, so far. */
uint64_t sigcache_evictions(void);

/*! Drop everything and the table (last unload, after the readers are gone). */
void sigcache_destroy(void);
