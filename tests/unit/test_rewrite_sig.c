/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of the RRSIG part of rewrite.h: finding the answer's RRSIG of
 * the MX set, swapping signatures in place (all or nothing), building a
 * new RRSIG rdataset, and a full rewrite that carries it with the set's TTL
 * and the Original TTL unchanged. Responses are built with libknot as
 * knotd writes them (RRSIGs with KNOT_PF_ORIGTTL) and parsed back.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rewrite.h"

#define SIG_LEN 64

static void *std_alloc(void *ctx, size_t len)
{
	(void)ctx;
	return test_malloc(len);
}

/* Memory of the rdata built for a response, freed at the end of a test. */
typedef struct {
	knot_mm_t mm;
	void *blocks[64];
	size_t n;
} arena_t;

static void *arena_alloc(void *ctx, size_t len)
{
	arena_t *a = ctx;
	assert_true(a->n < 64);
	return a->blocks[a->n++] = test_malloc(len);
}

static void arena_init(arena_t *a)
{
	memset(a, 0, sizeof(*a));
	a->mm.ctx = a;
	a->mm.alloc = arena_alloc;
	a->mm.free = NULL;
}

static void arena_free(arena_t *a)
{
	for (size_t i = 0; i < a->n; i++) {
		test_free(a->blocks[i]);
	}
	a->n = 0;
}

static knot_dname_t *dname(arena_t *a, const char *text)
{
	knot_dname_t *d = arena_alloc(a, KNOT_DNAME_MAXLEN);
	assert_non_null(knot_dname_from_str(d, text, KNOT_DNAME_MAXLEN));
	return d;
}

/* RRSIG rdata: head for MX by key 4242, then a signature filled with 'fill'. */
static uint16_t rrsig_rdata(uint8_t *out, uint8_t alg, uint8_t fill)
{
	knot_wire_write_u16(out, KNOT_RRTYPE_MX);
	out[2] = alg;
	out[3] = 2;
	knot_wire_write_u32(out + 4, 300);
	knot_wire_write_u32(out + 8, 2000000000u);
	knot_wire_write_u32(out + 12, 1900000000u);
	knot_wire_write_u16(out + 16, 4242 + alg);
	knot_dname_storage_t signer;
	assert_non_null(knot_dname_from_str(signer, "example.com.", sizeof(signer)));
	size_t slen = knot_dname_size(signer);
	memcpy(out + 18, signer, slen);
	memset(out + 18 + slen, fill, SIG_LEN);
	return 18 + slen + SIG_LEN;
}

typedef struct {
	arena_t arena;
	knot_pkt_t *pkt;
	knot_rrset_t mx, sig, glue[2];
	uint16_t head_len;
} fx_t;

/* An MX response as knotd writes it with DO: MX, its RRSIG(s), glue. */
static void build(fx_t *fx, unsigned nsigs)
{
	arena_init(&fx->arena);
	knot_mm_t *mm = &fx->arena.mm;
	knot_pkt_t *query = knot_pkt_new(NULL, 512, NULL);
	assert_int_equal(knot_pkt_put_question(query, dname(&fx->arena, "example.com."),
	                                       KNOT_CLASS_IN, KNOT_RRTYPE_MX), KNOT_EOK);
	fx->pkt = knot_pkt_new(NULL, 4096, NULL);
	assert_non_null(fx->pkt);
	assert_int_equal(knot_pkt_init_response(fx->pkt, query), KNOT_EOK);
	knot_pkt_free(query);

	knot_dname_t *owner = dname(&fx->arena, "example.com.");
	knot_rrset_init(&fx->mx, owner, KNOT_RRTYPE_MX, KNOT_CLASS_IN, 300);
	const char *ex[] = { "mx1.example.com.", "mx2.example.com." };
	for (int i = 0; i < 2; i++) {
		uint8_t rd[2 + KNOT_DNAME_MAXLEN];
		knot_wire_write_u16(rd, 10);
		knot_dname_t *n = dname(&fx->arena, ex[i]);
		memcpy(rd + 2, n, knot_dname_size(n));
		assert_int_equal(knot_rrset_add_rdata(&fx->mx, rd, 2 + knot_dname_size(n), mm),
		                 KNOT_EOK);
	}
	knot_rrset_init(&fx->sig, owner, KNOT_RRTYPE_RRSIG, KNOT_CLASS_IN, 300);
	for (unsigned j = 0; j < nsigs; j++) {
		uint8_t rd[512];
		uint16_t len = rrsig_rdata(rd, 13 + j, 0xa0 + j);
		fx->head_len = len - SIG_LEN;
		assert_int_equal(knot_rrset_add_rdata(&fx->sig, rd, len, mm), KNOT_EOK);
	}
	assert_int_equal(knot_pkt_begin(fx->pkt, KNOT_ANSWER), KNOT_EOK);
	assert_int_equal(knot_pkt_put(fx->pkt, KNOT_COMPR_HINT_QNAME, &fx->mx, 0), KNOT_EOK);
	assert_int_equal(knot_pkt_put(fx->pkt, KNOT_COMPR_HINT_QNAME, &fx->sig, KNOT_PF_ORIGTTL),
	                 KNOT_EOK);
	assert_int_equal(knot_pkt_begin(fx->pkt, KNOT_ADDITIONAL), KNOT_EOK);
	for (int i = 0; i < 2; i++) {
		knot_rrset_init(&fx->glue[i], dname(&fx->arena, ex[i]), KNOT_RRTYPE_A,
		                KNOT_CLASS_IN, 300);
		uint8_t a[4] = { 192, 0, 2, 1 + i };
		assert_int_equal(knot_rrset_add_rdata(&fx->glue[i], a, 4, mm), KNOT_EOK);
		assert_int_equal(knot_pkt_put(fx->pkt, 0, &fx->glue[i], KNOT_PF_NOTRUNC), KNOT_EOK);
	}
}

static void destroy(fx_t *fx)
{
	knot_pkt_free(fx->pkt);
	arena_free(&fx->arena);
}

/* Parse the wire back; return the answer's RRSIG rrset copy. */
static knot_pkt_t *parse(const knot_pkt_t *pkt)
{
	knot_pkt_t *back = knot_pkt_new(NULL, pkt->size, NULL);
	memcpy(back->wire, pkt->wire, pkt->size);
	back->size = pkt->size;
	assert_int_equal(knot_pkt_parse(back, 0), KNOT_EOK);
	return back;
}

static const knot_rrset_t *answer_of(const knot_pkt_t *pkt, uint16_t type)
{
	const knot_pktsection_t *ans = knot_pkt_section(pkt, KNOT_ANSWER);
	for (uint16_t i = 0; i < ans->count; i++) {
		const knot_rrset_t *rr = knot_pkt_rr(ans, i);
		if (rr->type == type) {
			return rr;
		}
	}
	return NULL;
}

static void test_find_rrsig(void **state)
{
	(void)state;
	fx_t fx;
	build(&fx, 1);
	int mx = rewrite_find_answer(fx.pkt, KNOT_RRTYPE_MX);
	assert_true(mx >= 0);
	int sig = rewrite_find_rrsig(fx.pkt, mx);
	assert_int_equal(sig, mx + 1);
	assert_int_equal(fx.pkt->rr[sig].type, KNOT_RRTYPE_RRSIG);
	destroy(&fx);
}

static void test_swap_in_place(void **state)
{
	(void)state;
	fx_t fx;
	build(&fx, 2);
	int mx = rewrite_find_answer(fx.pkt, KNOT_RRTYPE_MX);
	int sig = rewrite_find_rrsig(fx.pkt, mx);
	const knot_rdata_t *r0 = fx.pkt->rr[sig].rrs.rdata;
	const knot_rdata_t *r1 = knot_rdataset_next((knot_rdata_t *)r0);
	uint8_t s0[SIG_LEN], s1[SIG_LEN];
	memset(s0, 0x11, sizeof(s0));
	memset(s1, 0x22, sizeof(s1));
	/* Given in the other order: matched by head, not by position. */
	rewrite_sig_t sigs[2] = {
		{ r1->data, fx.head_len, s1, SIG_LEN },
		{ r0->data, fx.head_len, s0, SIG_LEN },
	};
	uint8_t before[4096];
	size_t size = fx.pkt->size;
	memcpy(before, fx.pkt->wire, size);
	assert_int_equal(rewrite_rrsig_sigs(fx.pkt, sig, sigs, 2, false), KNOT_EOK);
	assert_memory_equal(before, fx.pkt->wire, size);  /* A check changes nothing. */
	assert_int_equal(rewrite_rrsig_sigs(fx.pkt, sig, sigs, 2, true), KNOT_EOK);
	assert_int_equal(fx.pkt->size, size);

	/* Parsed back, every RR is its own rrset. */
	knot_pkt_t *back = parse(fx.pkt);
	const knot_pktsection_t *ans = knot_pkt_section(back, KNOT_ANSWER);
	int seen = 0;
	for (uint16_t i = 0; i < ans->count; i++) {
		const knot_rrset_t *rs = knot_pkt_rr(ans, i);
		if (rs->type != KNOT_RRTYPE_RRSIG) {
			continue;
		}
		const knot_rdata_t *rd = rs->rrs.rdata;
		const uint8_t *want = (rd->data[2] == 13) ? s0 : s1;
		assert_memory_equal(rd->data + fx.head_len, want, SIG_LEN);
		seen++;
	}
	assert_int_equal(seen, 2);
	knot_pkt_free(back);
	destroy(&fx);
}

static void test_swap_all_or_nothing(void **state)
{
	(void)state;
	fx_t fx;
	build(&fx, 2);
	int mx = rewrite_find_answer(fx.pkt, KNOT_RRTYPE_MX);
	int sig = rewrite_find_rrsig(fx.pkt, mx);
	const knot_rdata_t *r0 = fx.pkt->rr[sig].rrs.rdata;
	const knot_rdata_t *r1 = knot_rdataset_next((knot_rdata_t *)r0);
	uint8_t s[SIG_LEN + 1];
	memset(s, 0x33, sizeof(s));
	uint8_t before[4096];
	size_t size = fx.pkt->size;
	memcpy(before, fx.pkt->wire, size);

	/* One signature missing: nothing written. */
	rewrite_sig_t one[1] = { { r0->data, fx.head_len, s, SIG_LEN } };
	assert_int_equal(rewrite_rrsig_sigs(fx.pkt, sig, one, 1, true), KNOT_EAGAIN);
	assert_memory_equal(before, fx.pkt->wire, size);

	/* Another length (would need more room): nothing written. */
	rewrite_sig_t longer[2] = {
		{ r0->data, fx.head_len, s, SIG_LEN },
		{ r1->data, fx.head_len, s, SIG_LEN + 1 },
	};
	assert_int_equal(rewrite_rrsig_sigs(fx.pkt, sig, longer, 2, true), KNOT_EAGAIN);
	assert_memory_equal(before, fx.pkt->wire, size);
	destroy(&fx);
}

static void test_full_rewrite_with_new_sig(void **state)
{
	(void)state;
	fx_t fx;
	build(&fx, 1);
	knot_mm_t mm = { .ctx = NULL, .alloc = std_alloc, .free = NULL };
	arena_t scratch;
	arena_init(&scratch);
	int mx = rewrite_find_answer(fx.pkt, KNOT_RRTYPE_MX);
	int sig = rewrite_find_rrsig(fx.pkt, mx);

	/* Leave mx1 out: the set is mx2 alone, with a new (longer) signature. */
	mxp_plan_t plan = { .kind = MXP_PLAN_REWRITE, .count = 1, .left_out = 1 };
	plan.slots[0].idx = 1;
	plan.slots[0].pref = 10;
	knot_rdataset_t new_mx, new_sig;
	assert_int_equal(rewrite_build_mx(&new_mx, &fx.mx.rrs, &plan, &scratch.mm), KNOT_EOK);
	uint8_t s[SIG_LEN + 3];
	memset(s, 0x44, sizeof(s));
	rewrite_sig_t sigs[1] = { { fx.pkt->rr[sig].rrs.rdata->data, fx.head_len, s, sizeof(s) } };
	assert_int_equal(rewrite_build_rrsig(&new_sig, &fx.pkt->rr[sig].rrs, sigs, &scratch.mm),
	                 KNOT_EOK);
	assert_int_equal(new_sig.count, 1);
	assert_int_equal(new_sig.rdata->len, fx.head_len + sizeof(s));

	rewrite_mx_t rw = {
		.mx_idx = mx,
		.mx = &new_mx,
		.mx_rrsig = &new_sig,
		.ttl = 60,
		.zone_mx = &fx.mx.rrs,
	};
	assert_int_equal(rewrite_mx_answer(fx.pkt, &rw, &scratch.mm), KNOT_EOK);
	(void)mm;

	knot_pkt_t *back = parse(fx.pkt);
	const knot_rrset_t *m = answer_of(back, KNOT_RRTYPE_MX);
	const knot_rrset_t *rs = answer_of(back, KNOT_RRTYPE_RRSIG);
	assert_non_null(m);
	assert_non_null(rs);
	assert_int_equal(m->rrs.count, 1);
	assert_int_equal(m->ttl, 60);
	assert_int_equal(rs->ttl, 60);  /* The RRSIG goes out with its set's TTL ... */
	assert_int_equal(knot_rrsig_original_ttl(rs->rrs.rdata), 300);  /* ... Original TTL kept. */
	assert_int_equal(rs->rrs.rdata->len, fx.head_len + sizeof(s));
	assert_memory_equal(rs->rrs.rdata->data + fx.head_len, s, sizeof(s));
	/* mx1's glue went with it. */
	assert_int_equal(knot_pkt_section(back, KNOT_ADDITIONAL)->count, 1);
	knot_pkt_free(back);
	arena_free(&scratch);
	destroy(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_rrsig),
		cmocka_unit_test(test_swap_in_place),
		cmocka_unit_test(test_swap_all_or_nothing),
		cmocka_unit_test(test_full_rewrite_with_new_sig),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
