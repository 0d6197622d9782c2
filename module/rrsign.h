/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file rrsign.h
 * \brief A fresh RRSIG signature for an MX set the module changed in an
 *        answer of a signed zone, made with the zone's own key and the same
 *        RRSIG fields as the signature knotd put into the answer.
 *
 * For the signer thread, not for the query path: it allocates and reads key
 * files. Thread-compatible: the only process-wide state is libdnssec's
 * (reference counted) crypto initialization; every other object belongs to
 * the thread that made it (one rrsign_keys_t per signer thread).
 */

#pragma once

#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>
#include <libdnssec/key.h>

/*! Keys a rrsign_keys_t holds at most (loaded and failed); the oldest goes first. */
#define RRSIGN_KEYS_MAX 256

/*! Fixed part of an RRSIG rdata before the signer's name (RFC 4034 3.1). */
#define RRSIGN_HEAD_FIXED 18

/*! Loaded private keys of zones, keyed by keystore directory + DNSKEY rdata (one per signer thread). */
typedef struct rrsign_keys rrsign_keys_t;

/*!
 * \brief New empty key cache (also initializes libdnssec's crypto once per process).
 *
 * \return NULL if out of memory.
 */
rrsign_keys_t *rrsign_keys_new(void);

/*! \brief Free the cache and every key in it (NULL is fine). */
void rrsign_keys_free(rrsign_keys_t *keys);

/*!
 * Private key for a DNSKEY (its rdata as in the zone) from a PKCS#8 keystore directory
 * (Knot's default keystore: files <keyid>.pem, keyid = dnssec_key_get_keyid()).
 * Loaded once, then served from 'keys'. Keys that failed are remembered too
 * (so a missing key file is not re-read on every call) but retried after
 * `retry_after` seconds given by the caller's clock `now` (pass monotonic seconds).
 * Returns KNOT_EOK and a key owned by 'keys', or:
 *   KNOT_ENOENT   no such key file in the keystore
 *   KNOT_EACCES   keystore/key file not readable (permissions)
 *   KNOT_ENOTSUP  algorithm not supported by libdnssec/this build for signing
 *   KNOT_EMALF    DNSKEY rdata or PEM invalid, or the private key does not match the DNSKEY
 *
 * Also KNOT_EINVAL (NULL arguments), KNOT_ENOMEM, and other errno-based
 * codes of unusual I/O failures.
 *
 * The key stays valid until rrsign_keys_free(), or until a later call on
 * 'keys' evicts it to make room (only when more than RRSIGN_KEYS_MAX
 * different keys were asked for): use it before the next call.
 * Its owner name is 'zone' of the call that loaded it (NULL: none).
 */
int rrsign_key_get(rrsign_keys_t *keys, const char *keystore_dir, const knot_dname_t *zone,
                   const uint8_t *dnskey_rdata, uint16_t dnskey_len, int64_t now,
                   int64_t retry_after, const dnssec_key_t **key);

/*!
 * Sign an RRset with 'key'. 'rrsig_head' is the RRSIG rdata of the zone's signature
 * up to and including the signer's name (18 fixed bytes + signer name,
 * uncompressed), copied unchanged into the data that is signed (RFC 4034 3.1.8.1).
 * 'owner' is the owner to sign for (for a wildcard-expanded answer the caller
 * passes the wildcard owner, "*.<rightmost 'labels' labels>"); it is
 * lowercased for signing. 'rrs' holds the records (any order, as
 * uncompressed wire rdata); canonical form per RFC 4034 6.2/6.3: the MX
 * exchange name (and for other types here: only MX is supported, return
 * KNOT_ENOTSUP otherwise) lowercased, records sorted by canonical rdata,
 * duplicates dropped, each RR written with the original TTL from the head.
 * The signature (DNSSEC wire format, as it goes into the RRSIG rdata) is written
 * to 'sig' (capacity sig_max), its length to *sig_len.
 * Errors: KNOT_EINVAL bad arguments/head, KNOT_ESPACE sig_max too small,
 * KNOT_ENOTSUP type not supported, KNOT_ERROR signing failed.
 *
 * Details: the signer's name goes into the signed data in canonical
 * (lowercase) form as RFC 4034 3.1.8.1 asks; the 18 fixed bytes go in
 * unchanged. Class is IN. The head must be consistent with the call, else
 * KNOT_EINVAL: type covered == 'type', algorithm and key tag == the key's,
 * labels == the labels of 'owner' (not counting a leading '*'), and nothing
 * after the signer's name. Malformed records (or an inconsistent 'rrs')
 * are KNOT_EINVAL too; out of memory is KNOT_ENOMEM.
 */
int rrsign_sign(const dnssec_key_t *key, const uint8_t *rrsig_head, size_t head_len,
                const knot_dname_t *owner, uint16_t type, const knot_rdataset_t *rrs,
                uint8_t *sig, size_t sig_max, size_t *sig_len);

/*! Helper for callers: key tag of a DNSKEY rdata (RFC 4034 App. B), or -1 if malformed. */
int rrsign_dnskey_tag(const uint8_t *dnskey_rdata, uint16_t len);

/*! Length of the RRSIG rdata head (18 bytes + signer name) of an RRSIG rdata, or KNOT_EMALF. */
int rrsign_head_len(const uint8_t *rrsig_rdata, uint16_t len);
