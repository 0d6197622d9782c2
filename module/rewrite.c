/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <string.h>

#include "rewrite.h"

void *rewrite_alloc(knot_mm_t *mm, size_t size)
{
	if (mm == NULL || mm->alloc == NULL) {
		return NULL;  /* The query always has a pool; refuse rather than malloc. */
	}
	return mm->alloc(mm->ctx, size);
}

int rewrite_find_answer(const knot_pkt_t *pkt, uint16_t type)
{
	const knot_pktsection_t *ans = knot_pkt_section(pkt, KNOT_ANSWER);
	for (uint16_t i = 0; i < ans->count; i++) {
		if (pkt->rr[ans->pos + i].type == type) {
			return ans->pos + i;
		}
	}
	return -1;
}

/*
 * Length of a name as it sits on the wire (up to and including a final
 * compression pointer). knotd wrote these bytes itself, so pointers are not
 * followed; the bounds are still checked.
 */
static inline int wire_name_len(const uint8_t *pos, const uint8_t *end)
{
	/* Most owners knotd writes are a bare pointer. */
	if (end - pos >= 2 && (pos[0] & 0xc0) == 0xc0) {
		return 2;
	}
	const uint8_t *p = pos;
	while (p < end) {
		uint8_t len = *p;
		if (len == 0) {
			return p + 1 - pos;
		}
		if ((len & 0xc0) == 0xc0) {
			return (end - p >= 2) ? p + 2 - pos : KNOT_EMALF;
		}
		if (len & 0xc0) {
			return KNOT_EMALF;
		}
		p += len + 1;
	}
	return KNOT_EMALF;
}

static inline uint8_t ascii_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Does the (compressed) name at wire offset 'pos' equal 'name', ignoring case? */
static bool wire_name_equal(const knot_pkt_t *pkt, size_t pos, const knot_dname_t *name)
{
	for (unsigned hops = 0; pos < pkt->size; ) {
		uint8_t len = pkt->wire[pos];
		if ((len & 0xc0) == 0xc0) {
			if (pos + 1 >= pkt->size || ++hops > KNOT_DNAME_MAXLABELS) {
				return false;
			}
			pos = ((len & 0x3f) << 8) | pkt->wire[pos + 1];
			continue;
		}
		if (len != *name || pos + 1 + len > pkt->size) {
			return false;
		}
		if (len == 0) {
			return true;
		}
		for (uint8_t i = 1; i <= len; i++) {
			uint8_t a = pkt->wire[pos + i], b = name[i];
			if (a != b && ascii_lower(a) != ascii_lower(b)) {
				return false;
			}
		}
		pos += len + 1;
		name += len + 1;
	}
	return false;
}

/* The owner of pkt->rr[idx] as written on the wire (wildcards expanded). */
int rewrite_wire_owner(const knot_pkt_t *pkt, uint16_t idx, knot_dname_t *out)
{
	const uint8_t *pos = pkt->wire + pkt->rr_info[idx].pos;
	int len = knot_dname_wire_check(pos, pkt->wire + pkt->size, pkt->wire);
	if (len <= 0) {
		return KNOT_EMALF;
	}
	int ret = knot_dname_unpack(out, pos, KNOT_DNAME_MAXLEN, pkt->wire);
	return ret > 0 ? KNOT_EOK : KNOT_EMALF;
}

/* Set the TTL of every record of pkt->rr[idx] on the wire; with !apply only check. */
static inline int patch_ttl_as(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl, bool apply)
{
	uint8_t *pos = pkt->wire + pkt->rr_info[idx].pos;
	const uint8_t *end = pkt->wire + pkt->size;

	for (uint16_t i = 0; i < pkt->rr[idx].rrs.count; i++) {
		int len = wire_name_len(pos, end);
		if (len <= 0 || end - pos < len + 10) {
			return KNOT_EMALF;
		}
		pos += len;
		if (apply) {
			knot_wire_write_u32(pos + 4, ttl);
		}
		uint16_t rdlen = knot_wire_read_u16(pos + 8);
		pos += 10 + rdlen;
		if (pos > end) {
			return KNOT_EMALF;
		}
	}
	if (apply) {
		pkt->rr[idx].ttl = ttl;
	}
	return KNOT_EOK;
}

static inline int patch_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl)
{
	int ret = patch_ttl_as(pkt, idx, ttl, false);
	return ret == KNOT_EOK ? patch_ttl_as(pkt, idx, ttl, true) : ret;
}

int rewrite_set_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl)
{
	return patch_ttl(pkt, idx, ttl);
}

static inline bool rrsig_covers(const knot_rrset_t *rr, uint16_t type)
{
	return rr->type == KNOT_RRTYPE_RRSIG && rr->rrs.count > 0 &&
	       knot_rrsig_type_covered(rr->rrs.rdata) == type;
}

/*
 * Is pkt->rr[i] the answer's RRSIG rrset of the set pkt->rr[idx]? The same
 * owner in memory (knotd's set and its RRSIGs share the node's owner), else
 * the same owner on the wire: a wildcard set reached through a CNAME has an
 * expanded owner copy while its RRSIG keeps the wildcard. Only then is the
 * set's owner decompressed, once, into 'owner' (*have_owner tells).
 *
 * \return 1 yes, 0 no, KNOT_EMALF if an owner could not be read.
 */
static int is_set_rrsig(const knot_pkt_t *pkt, uint16_t idx, uint16_t i, knot_dname_t *owner,
                        bool *have_owner)
{
	if (!rrsig_covers(&pkt->rr[i], pkt->rr[idx].type)) {
		return 0;
	}
	if (pkt->rr[i].owner == pkt->rr[idx].owner ||
	    knot_dname_is_case_equal(pkt->rr[i].owner, pkt->rr[idx].owner)) {
		return 1;
	}
	knot_dname_storage_t sig_owner;
	if (!*have_owner) {
		if (rewrite_wire_owner(pkt, idx, owner) != KNOT_EOK) {
			return KNOT_EMALF;
		}
		*have_owner = true;
	}
	if (rewrite_wire_owner(pkt, i, sig_owner) != KNOT_EOK) {
		return KNOT_EMALF;
	}
	return knot_dname_is_case_equal(owner, sig_owner) ? 1 : 0;
}

static int set_rrsig_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl, bool apply)
{
	const knot_pktsection_t *ans = knot_pkt_section(pkt, KNOT_ANSWER);
	knot_dname_storage_t owner;
	bool have_owner = false;

	for (uint16_t i = ans->pos; i < ans->pos + ans->count; i++) {
		int ret = is_set_rrsig(pkt, idx, i, owner, &have_owner);
		if (ret == 1) {
			ret = patch_ttl_as(pkt, i, ttl, apply);
		}
		if (ret != KNOT_EOK) {
			return ret;
		}
	}
	return KNOT_EOK;
}

int rewrite_find_rrsig(const knot_pkt_t *pkt, uint16_t idx)
{
	const knot_pktsection_t *ans = knot_pkt_section(pkt, KNOT_ANSWER);
	knot_dname_storage_t owner;
	bool have_owner = false;
	for (uint16_t i = ans->pos; i < ans->pos + ans->count; i++) {
		int ret = is_set_rrsig(pkt, idx, i, owner, &have_owner);
		if (ret == 1) {
			return i;
		} else if (ret < 0) {
			return -1;
		}
	}
	return -1;
}

int rewrite_rrsig_sigs(knot_pkt_t *pkt, uint16_t sig_idx, const rewrite_sig_t *sigs,
                       uint16_t n, bool apply)
{
	/* All or nothing: check every record before writing any. */
	if (apply) {
		int ret = rewrite_rrsig_sigs(pkt, sig_idx, sigs, n, false);
		if (ret != KNOT_EOK) {
			return ret;
		}
	}
	uint8_t *pos = pkt->wire + pkt->rr_info[sig_idx].pos;
	const uint8_t *end = pkt->wire + pkt->size;
	for (uint16_t k = 0; k < pkt->rr[sig_idx].rrs.count; k++) {
		int len = wire_name_len(pos, end);
		if (len <= 0 || end - pos < len + 10) {
			return KNOT_EAGAIN;
		}
		pos += len;
		uint16_t rdlen = knot_wire_read_u16(pos + 8);
		pos += 10;
		if (end - pos < rdlen) {
			return KNOT_EAGAIN;
		}
		/* The signer's name in an RRSIG is never compressed: heads compare as bytes. */
		const rewrite_sig_t *match = NULL;
		for (uint16_t j = 0; j < n && match == NULL; j++) {
			if (sigs[j].head_len <= rdlen &&
			    memcmp(pos, sigs[j].head, sigs[j].head_len) == 0) {
				match = &sigs[j];
			}
		}
		if (match == NULL || rdlen - match->head_len != match->sig_len) {
			return KNOT_EAGAIN;
		}
		if (apply) {
			memcpy(pos + match->head_len, match->sig, match->sig_len);
		}
		pos += rdlen;
	}
	return KNOT_EOK;
}

int rewrite_build_rrsig(knot_rdataset_t *out, const knot_rdataset_t *orig,
                        const rewrite_sig_t *sigs, knot_mm_t *mm)
{
	size_t size = 0;
	for (uint16_t j = 0; j < orig->count; j++) {
		size += knot_rdata_size(sigs[j].head_len + sigs[j].sig_len);
	}
	knot_rdata_t *mem = rewrite_alloc(mm, size);
	if (mem == NULL) {
		return KNOT_ENOMEM;
	}
	knot_rdata_t *dst = mem;
	for (uint16_t j = 0; j < orig->count; j++) {
		dst->len = sigs[j].head_len + sigs[j].sig_len;
		memcpy(dst->data, sigs[j].head, sigs[j].head_len);
		memcpy(dst->data + sigs[j].head_len, sigs[j].sig, sigs[j].sig_len);
		if (dst->len & 1) {
			dst->data[dst->len] = 0;  /* knot_rdata_t pads to even sizes. */
		}
		dst = knot_rdataset_next(dst);
	}
	out->count = orig->count;
	out->size = size;
	out->rdata = mem;
	return KNOT_EOK;
}

int rewrite_set_rrsig_ttl(knot_pkt_t *pkt, uint16_t idx, uint32_t ttl)
{
	int ret = set_rrsig_ttl(pkt, idx, ttl, false);
	return ret == KNOT_EOK ? set_rrsig_ttl(pkt, idx, ttl, true) : ret;
}

static const knot_dname_t *mx_exchange(const knot_rdata_t *rd)
{
	return rd->data + 2;
}

int rewrite_build_mx(knot_rdataset_t *out, const knot_rdataset_t *orig,
                     const mxp_plan_t *plan, knot_mm_t *mm)
{
	const knot_rdata_t *by_idx[MXP_MAX_RECORDS];
	if (orig->count > MXP_MAX_RECORDS) {
		return KNOT_EINVAL;
	}
	knot_rdata_t *rd = orig->rdata;
	for (uint16_t i = 0; i < orig->count; i++, rd = knot_rdataset_next(rd)) {
		by_idx[i] = rd;
	}

	size_t size = 0;
	for (uint16_t s = 0; s < plan->count; s++) {
		size += knot_rdata_size(by_idx[plan->slots[s].idx]->len);
	}
	knot_rdata_t *mem = rewrite_alloc(mm, size);
	if (mem == NULL) {
		return KNOT_ENOMEM;
	}

	/* Hand-built so that the rdata keep the plan's order (rdataset_add sorts). */
	knot_rdata_t *dst = mem;
	for (uint16_t s = 0; s < plan->count; s++) {
		const knot_rdata_t *src = by_idx[plan->slots[s].idx];
		knot_rdata_init(dst, src->len, src->data);
		knot_wire_write_u16(dst->data, plan->slots[s].pref);
		dst = knot_rdataset_next(dst);
	}
	out->count = plan->count;
	out->size = size;
	out->rdata = mem;
	return KNOT_EOK;
}

/* Index of an exchanger in an MX rdataset, or -1. */
static int mx_index(const knot_rdataset_t *rrs, const knot_dname_t *name)
{
	if (rrs == NULL) {
		return -1;
	}
	knot_rdata_t *rd = rrs->rdata;
	for (uint16_t i = 0; i < rrs->count; i++, rd = knot_rdataset_next(rd)) {
		if (knot_dname_is_case_equal(mx_exchange(rd), name)) {
			return i;
		}
	}
	return -1;
}

static inline bool is_address_record(const knot_rrset_t *rr)
{
	return rr->type == KNOT_RRTYPE_A || rr->type == KNOT_RRTYPE_AAAA ||
	       rrsig_covers(rr, KNOT_RRTYPE_A) || rrsig_covers(rr, KNOT_RRTYPE_AAAA);
}

/* TTL a record goes out with: RRSIGs written with ORIGTTL carry their Original TTL. */
static uint32_t written_ttl(const knot_rrset_t *rr, uint16_t flags)
{
	if (rr->type == KNOT_RRTYPE_RRSIG && (flags & KNOT_PF_ORIGTTL)) {
		return knot_rrsig_original_ttl(rr->rrs.rdata);
	}
	return rr->ttl;
}

/* Where one written MX record sits on the wire. */
typedef struct {
	uint8_t *ttl;
	uint8_t *pref;
	uint16_t name_pos;
} mx_wire_t;

/*
 * knotd fills the additional section of an MX answer only with the glue of
 * its exchangers (and their RRSIGs), so every address record there is
 * capped without looking at its owner; lowering the TTL of additional data
 * is always safe anyway.
 */
static int cap_glue_as(knot_pkt_t *pkt, uint32_t ttl, bool apply)
{
	const knot_pktsection_t *add = knot_pkt_section(pkt, KNOT_ADDITIONAL);
	for (uint16_t i = add->pos; i < add->pos + add->count; i++) {
		const knot_rrset_t *rr = &pkt->rr[i];
		if (!is_address_record(rr) || written_ttl(rr, pkt->rr_info[i].flags) <= ttl) {
			continue;
		}
		int ret = patch_ttl_as(pkt, i, ttl, apply);
		if (ret != KNOT_EOK) {
			return ret;
		}
	}
	return KNOT_EOK;
}

/* Only lowers TTLs of additional records: safe to stop halfway, no check first. */
static int cap_glue_ttl(knot_pkt_t *pkt, uint32_t ttl)
{
	return cap_glue_as(pkt, ttl, true);
}

/* Find every record of the MX set pkt->rr[idx] on the wire. */
static int mx_locate(knot_pkt_t *pkt, uint16_t idx, mx_wire_t *mx)
{
	const uint16_t n = pkt->rr[idx].rrs.count;
	uint8_t *pos = pkt->wire + pkt->rr_info[idx].pos;
	const uint8_t *end = pkt->wire + pkt->size;
	for (uint16_t k = 0; k < n; k++) {
		int len = wire_name_len(pos, end);
		if (len <= 0 || end - pos < len + 10) {
			return KNOT_EMALF;
		}
		pos += len;
		mx[k].ttl = pos + 4;
		uint16_t rdlen = knot_wire_read_u16(pos + 8);
		pos += 10;
		if (rdlen < 3 || end - pos < rdlen) {
			return KNOT_EMALF;
		}
		mx[k].pref = pos;
		mx[k].name_pos = pos + 2 - pkt->wire;
		pos += rdlen;
	}
	return KNOT_EOK;
}

int rewrite_mx_in_place(knot_pkt_t *pkt, uint16_t idx, const mxp_plan_t *plan, uint32_t ttl,
                        bool cap_glue, int sig_idx)
{
	knot_rrset_t *rr = &pkt->rr[idx];
	const uint16_t n = rr->rrs.count;
	if (n == 0 || n > MXP_MAX_RECORDS || plan->left_out > 0 || plan->count != n) {
		return KNOT_EAGAIN;
	}

	/* Locate every record first: nothing is changed unless all of it checks out. */
	mx_wire_t mx[MXP_MAX_RECORDS];
	int ret = mx_locate(pkt, idx, mx);
	if (ret != KNOT_EOK) {
		return ret;
	}

	const knot_rdata_t *rd[MXP_MAX_RECORDS];
	knot_rdata_t *it = rr->rrs.rdata;
	for (uint16_t j = 0; j < n; j++, it = knot_rdataset_next(it)) {
		rd[j] = it;
	}

	/*
	 * knotd writes the rdataset in order, rotated when answer-rotation is
	 * on: find the record written first, the rest follow cyclically.
	 */
	uint16_t first = 0;
	while (first < n && (memcmp(mx[0].pref, rd[first]->data, 2) != 0 ||
	                     !wire_name_equal(pkt, mx[0].name_pos, mx_exchange(rd[first])))) {
		first++;
	}
	if (first == n) {
		return KNOT_EAGAIN;
	}
	uint16_t new_pref[MXP_MAX_RECORDS];
	for (uint16_t s = 0; s < n; s++) {
		new_pref[plan->slots[s].idx] = plan->slots[s].pref;
	}
	for (uint16_t k = 0; k < n; k++) {
		if (memcmp(mx[k].pref, rd[(first + k) % n]->data, 2) != 0) {
			return KNOT_EAGAIN;
		}
	}

	/* The RRSIGs must take the set's TTL too: check them before writing anything. */
	ret = sig_idx >= 0 ? patch_ttl_as(pkt, sig_idx, ttl, false) :
	                     set_rrsig_ttl(pkt, idx, ttl, false);
	if (ret != KNOT_EOK) {
		return ret;
	}

	for (uint16_t k = 0; k < n; k++) {
		knot_wire_write_u32(mx[k].ttl, ttl);
		knot_wire_write_u16(mx[k].pref, new_pref[(first + k) % n]);
	}
	rr->ttl = ttl;
	if (sig_idx >= 0) {
		(void)patch_ttl_as(pkt, sig_idx, ttl, true);
	} else {
		(void)set_rrsig_ttl(pkt, idx, ttl, true);
	}

	/*
	 * Capping glue only lowers TTLs of additional records: a record it
	 * could not reach leaves a valid answer, so it is not checked first.
	 */
	if (cap_glue) {
		(void)cap_glue_as(pkt, ttl, true);
	}
	return KNOT_EOK;
}

int rewrite_cap_glue_ttl(knot_pkt_t *pkt, uint32_t ttl)
{
	return cap_glue_ttl(pkt, ttl);
}

typedef struct {
	knot_rrset_t rr;
	uint16_t flags;
	knot_section_t section;
} saved_rr_t;

int rewrite_mx_answer(knot_pkt_t *pkt, const rewrite_mx_t *rw, knot_mm_t *mm)
{
	const uint16_t first = pkt->sections[KNOT_ANSWER].pos;
	const uint16_t total = pkt->rrset_count;
	if (rw->mx_idx < first || rw->mx_idx >= total || pkt->current != KNOT_ADDITIONAL) {
		return KNOT_EINVAL;
	}

	/* Save every written rrset with its owner as it stands on the wire. */
	saved_rr_t *saved = rewrite_alloc(mm, (total - first) * sizeof(*saved));
	knot_dname_t *owners = rewrite_alloc(mm, (total - first) * KNOT_DNAME_MAXLEN);
	if (saved == NULL || owners == NULL) {
		return KNOT_ENOMEM;
	}
	knot_dname_t mx_owner[KNOT_DNAME_MAXLEN];
	for (uint16_t i = first; i < total; i++) {
		saved_rr_t *s = &saved[i - first];
		knot_dname_t *owner = owners + (size_t)(i - first) * KNOT_DNAME_MAXLEN;
		int ret = rewrite_wire_owner(pkt, i, owner);
		if (ret != KNOT_EOK) {
			return ret;
		}
		/* libknot compresses only onto lowercase: a 0x20-cased QNAME would not match. */
		knot_dname_to_lower(owner);
		s->rr = pkt->rr[i];
		s->rr.owner = owner;
		/* Rebuilt glue must not reuse knotd's private glue list (wrong names). */
		s->rr.additional = NULL;
		/* Owners now live in the pool; nothing here is the packet's to free. */
		s->flags = pkt->rr_info[i].flags & ~KNOT_PF_FREE;
		s->section = (i < first + pkt->sections[KNOT_ANSWER].count) ? KNOT_ANSWER :
		             (i < pkt->sections[KNOT_ADDITIONAL].pos) ? KNOT_AUTHORITY :
		             KNOT_ADDITIONAL;
	}
	memcpy(mx_owner, saved[rw->mx_idx - first].rr.owner, KNOT_DNAME_MAXLEN);

	/* Rewind to the start of the answer section. */
	pkt->size = pkt->rr_info[first].pos;
	pkt->rrset_count = first;
	for (knot_section_t sec = KNOT_ANSWER; sec <= KNOT_ADDITIONAL; sec++) {
		pkt->sections[sec].count = 0;
	}
	pkt->current = KNOT_ANSWER;
	knot_wire_set_ancount(pkt->wire, 0);
	knot_wire_set_nscount(pkt->wire, 0);
	knot_wire_set_arcount(pkt->wire, 0);
	/* Restart compression: its last suffix may point into discarded bytes. */
	pkt->compr.suffix.pos = 0;

	int new_mx_info = -1;
	const knot_dname_t *cut_owner = NULL;
	for (uint16_t i = 0; i < total - first; i++) {
		saved_rr_t *s = &saved[i];
		while (pkt->current < s->section) {
			knot_pkt_begin(pkt, pkt->current + 1);
		}
		uint16_t hint = KNOT_COMPR_HINT_NONE;
		if (first + i == rw->mx_idx) {
			new_mx_info = pkt->rrset_count;
			if (rw->mx != NULL) {
				s->rr.rrs = *rw->mx;
			}
			s->rr.ttl = rw->ttl;
		} else if (s->section == KNOT_ANSWER && rrsig_covers(&s->rr, KNOT_RRTYPE_MX) &&
		           knot_dname_is_case_equal(s->rr.owner, mx_owner)) {
			/* An RRSIG goes out with its set's TTL (Original TTL unchanged). */
			s->rr.ttl = rw->ttl;
			if (rw->mx_rrsig != NULL) {
				s->rr.rrs = *rw->mx_rrsig;
			}
			s->flags &= ~KNOT_PF_ORIGTTL;
		} else if (s->section == KNOT_ADDITIONAL && is_address_record(&s->rr) &&
		           mx_index(rw->zone_mx, s->rr.owner) >= 0) {
			const knot_rdataset_t *kept = rw->mx != NULL ? rw->mx : rw->zone_mx;
			int j = mx_index(kept, s->rr.owner);
			if (j < 0) {
				continue;  /* Exchanger left out of the answer. */
			}
			/* Point the owner at the exchange name in the MX rdata, as knotd does. */
			if (new_mx_info >= 0) {
				hint = knot_compr_hint(&pkt->rr_info[new_mx_info],
				                       KNOT_COMPR_HINT_RDATA + j);
			}
			s->rr.ttl = written_ttl(&s->rr, s->flags);
			s->flags &= ~KNOT_PF_ORIGTTL;
			if (s->rr.ttl > rw->ttl) {
				s->rr.ttl = rw->ttl;  /* Glue never outlives the MX set. */
			}
		}

		if (cut_owner != NULL && s->section == KNOT_ADDITIONAL &&
		    is_address_record(&s->rr) && knot_dname_is_equal(s->rr.owner, cut_owner)) {
			continue;  /* The rest of an exchanger whose glue did not fit. */
		}

		/* A failed put may leave the compression state in discarded bytes. */
		knot_compr_t compr = pkt->compr;
		int ret = knot_pkt_put(pkt, hint, &s->rr, s->flags);
		if (ret == KNOT_ESPACE && (s->flags & KNOT_PF_NOTRUNC) &&
		    s->section == KNOT_ADDITIONAL) {
			/*
			 * As knotd does: optional glue that does not fit ends that
			 * exchanger's glue, and the next exchanger's may still fit.
			 */
			pkt->compr = compr;
			cut_owner = s->rr.owner;
			continue;
		} else if (ret != KNOT_EOK) {
			pkt->compr = compr;
			return ret;
		}
	}

	while (pkt->current < KNOT_ADDITIONAL) {
		knot_pkt_begin(pkt, pkt->current + 1);
	}
	return KNOT_EOK;
}
