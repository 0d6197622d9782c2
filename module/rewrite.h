/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file rewrite.h
 * \brief Rewriting of an already written response, on libknot only.
 *
 * knotd writes records to the wire as it resolves them and has no call to
 * take one back, so a changed MX set is applied by rewinding the packet to
 * the start of the answer section and writing every section again.
 */

#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "policy.h"

/*! Allocate from a knot memory context (the query's pool). */
void *rewrite_alloc(knot_mm_t *mm, size_t size);

/*!
 * \brief Find the first rrset of a type in the answer section.
 *
 * \return Index into pkt->rr, or -1.
 */
int rewrite_find_answer(const knot_pkt_t *pkt, uint16_t type);

/*!
 * \brief The owner of pkt->rr[idx] as written on the wire (wildcards expanded),
 *        decompressed into 'out' (KNOT_DNAME_MAXLEN bytes).
 */
int rewrite_wire_owner(const knot_pkt_t *pkt, uint16_t idx, knot_dname_t *out);

/*!
 * \brief Set the TTL of every record of pkt->rr[idx] in place on the wire.
 */
int rewrite_set_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl);

/*!
 * \brief Set the TTL of the RRSIGs in the answer that cover pkt->rr[idx]
 *        (same owner on the wire, type covered), in place.
 */
int rewrite_set_rrsig_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl);

/*!
 * \brief Apply a plan that leaves no record out in place: new preferences
 *        and TTL written over the MX records on the wire, the TTL of their
 *        RRSIGs set to the set's and, with cap_glue, the exchangers' glue
 *        capped at it (see rewrite_cap_glue_ttl()). Wire order stays.
 *
 * Costs a fraction of a full rewrite and changes no size, so it can even be
 * applied to a finished response; for plans whose effect is carried by
 * preference values (senders sort by preference, not by wire order).
 *
 * \retval KNOT_EOK
 * \retval KNOT_EAGAIN  Not applicable (records left out, unexpected layout):
 *                      nothing was changed, use rewrite_mx_answer().
 * \param sig_idx  Index of the set's RRSIG rrset if known, else -1 (searched).
 *
 * \retval KNOT_EMALF   The written rrset could not be parsed; nothing changed.
 */
int rewrite_mx_in_place(knot_pkt_t *pkt, uint16_t idx, const mxp_plan_t *plan, uint32_t ttl,
                        bool cap_glue, int sig_idx);

/*!
 * \brief Cap, in place, the TTL of the A/AAAA (+RRSIG) in the additional
 *        section of an MX answer: knotd puts only exchanger glue there.
 */
int rewrite_cap_glue_ttl(knot_pkt_t *pkt, uint32_t ttl);

/*!
 * \brief Build the MX rdataset of a plan: records in slot order, each with
 *        the slot's preference.
 *
 * \param out   Output rdataset (memory from mm).
 * \param orig  The zone's MX rdataset (the plan's indices point into it).
 * \param plan  Plan with kind MXP_PLAN_REWRITE.
 */
int rewrite_build_mx(knot_rdataset_t *out, const knot_rdataset_t *orig,
                     const mxp_plan_t *plan, knot_mm_t *mm);

/*! A new signature for one RRSIG of a set (its rdata head stays). */
typedef struct {
	const uint8_t *head;   /*!< The RRSIG rdata head: 18 bytes + signer. */
	uint16_t head_len;
	const uint8_t *sig;
	uint16_t sig_len;
} rewrite_sig_t;

/*!
 * \brief Index of the answer's RRSIG rrset covering pkt->rr[idx] (same owner), or -1.
 */
int rewrite_find_rrsig(const knot_pkt_t *pkt, uint16_t idx);

/*!
 * \brief Put new signatures into the RRSIG records of pkt->rr[sig_idx] on the
 *        wire, in place: each written record gets the signature of the
 *        entry with its rdata head. With apply false only check.
 *
 * \retval KNOT_EOK     (Checked and) written.
 * \retval KNOT_EAGAIN  A record has no entry or another signature length:
 *                      nothing was changed, rewrite the sections instead.
 */
int rewrite_rrsig_sigs(knot_pkt_t *pkt, uint16_t sig_idx, const rewrite_sig_t *sigs,
                       uint16_t n, bool apply);

/*!
 * \brief Build an RRSIG rdataset: the records of 'orig' with the signatures of
 *        'sigs' (sigs[j] for rdata j, heads unchanged).
 */
int rewrite_build_rrsig(knot_rdataset_t *out, const knot_rdataset_t *orig,
                        const rewrite_sig_t *sigs, knot_mm_t *mm);

/*! What to write instead of the answer knotd produced. */
typedef struct {
	uint16_t mx_idx;              /*!< Index of the MX rrset in pkt->rr. */
	const knot_rdataset_t *mx;    /*!< New MX records (NULL: keep the rdata). */
	const knot_rdataset_t *mx_rrsig; /*!< New RRSIGs of the MX set (NULL: keep). */
	uint32_t ttl;                 /*!< TTL of the MX set and its RRSIGs. */
	const knot_rdataset_t *zone_mx; /*!< The zone's MX records (all exchangers). */
} rewrite_mx_t;

/*!
 * \brief Rewrite answer, authority and additional with the MX set replaced.
 *
 * The additional section keeps records of names that are not exchangers of
 * the zone set, and A/AAAA (+RRSIG) of exchangers still in the new set, with
 * TTL capped at the MX set's TTL; those of exchangers left out are dropped.
 *
 * \retval KNOT_EOK
 * \retval KNOT_ESPACE  Answer did not fit (TC set unless over TCP).
 * \retval KNOT_E*      Other errors; the packet may be partially written.
 */
int rewrite_mx_answer(knot_pkt_t *pkt, const rewrite_mx_t *rw, knot_mm_t *mm);
