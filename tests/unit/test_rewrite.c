/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Randomized tests of rewrite.h on responses built the way knotd 3.2 builds
 * them with libknot (internet.c put_answer()/put_additional(),
 * process_query.c process_query_put_rr()):
 *
 *  - question, optional CNAME, the zone's MX set (canonical order, optionally
 *    rotated like answer-rotation) with the QNAME compression hint, an empty
 *    authority section, then the glue of the exchangers in zone order, A then
 *    AAAA, owner hint at the exchange name in the MX rdata, optional
 *    (NOTRUNC): a glue put that fails ends that exchanger's glue and knotd
 *    goes on with the next one; when the last put failed, knotd ends the
 *    response (TRUNC state) and only the END hook runs;
 *  - a policy plan on random states and weights, applied as the module does
 *    (in place, or rewrite_build_mx() + rewrite_mx_answer()), then the OPT
 *    knotd writes afterwards;
 *  - the result is walked by hand (every compression pointer must point
 *    backwards, before the pointer itself and after the header, and the
 *    name it continues must end before the pointer) and parsed again by
 *    libknot, and compared with what the plan asks for.
 *
 * Fixed seeds; a failure prints the case so that it can be replayed.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "policy.h"
#include "rewrite.h"
#include "rng.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* The query's memory: every allocation is its own malloc (so that the       */
/* sanitizers see exact bounds), all freed at once, like knotd's mempool.    */
/* ------------------------------------------------------------------------ */

typedef struct {
	void **ptr;
	size_t count, cap;
} pool_t;

static void *pool_alloc(void *ctx, size_t len)
{
	pool_t *p = ctx;
	if (p->count == p->cap) {
		size_t cap = p->cap > 0 ? 2 * p->cap : 256;
		void **grown = realloc(p->ptr, cap * sizeof(*grown));
		if (grown == NULL) {
			return NULL;
		}
		p->ptr = grown;
		p->cap = cap;
	}
	void *mem = malloc(len > 0 ? len : 1);
	if (mem != NULL) {
		p->ptr[p->count++] = mem;
	}
	return mem;
}

static void pool_release(pool_t *p)
{
	for (size_t i = 0; i < p->count; i++) {
		free(p->ptr[i]);
	}
	p->count = 0;
}

static void pool_destroy(pool_t *p)
{
	pool_release(p);
	free(p->ptr);
	p->ptr = NULL;
	p->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Test-local random input (independent of the module's generator).          */
/* ------------------------------------------------------------------------ */

static uint64_t g_rs;

static uint32_t rnd(uint32_t n)
{
	return n > 0 ? (uint32_t)(tu_splitmix64(&g_rs) % n) : 0;
}

static bool chance(unsigned pct)
{
	return rnd(100) < pct;
}

/* ------------------------------------------------------------------------ */
/* Scenarios.                                                                */
/* ------------------------------------------------------------------------ */

#define MAX_EX    20
#define MAX_ADDR  3

typedef struct {
	knot_dname_storage_t name;   /* As in the MX rdata (may hold capitals). */
	knot_dname_storage_t lower;  /* Owner of its glue. */
	uint16_t pref;
	bool in_zone;
	uint8_t n_a, n_aaaa;
	uint8_t a[MAX_ADDR][4];
	uint8_t aaaa[MAX_ADDR][16];
	uint32_t ttl_a, ttl_aaaa;
	uint16_t weight;
	mxp_state_t state;
	uint64_t hash;
} exch_t;

typedef struct {
	char label[200];               /* Printed on failure. */
	uint16_t max_size;
	uint16_t reserve;              /* Reserved at start: OPT (11) and maybe TSIG. */
	bool opt;                      /* Write an OPT (11 bytes of the reserve) at the end. */
	bool tsig;                     /* The rest of the reserve is a TSIG's. */
	bool udp;
	uint16_t rotate;               /* knot_pkt_put_rotate() for the MX set. */
	knot_dname_storage_t zone;
	knot_dname_storage_t qname;    /* As the client wrote it. */
	bool cname;
	knot_dname_storage_t mx_owner; /* Owner of the MX set (lower case). */
	uint32_t cname_ttl, mx_ttl;
	unsigned n;
	exch_t ex[MAX_EX];             /* In the zone's (canonical) rdata order. */
	mxp_opts_t opts;
	mxp_ttl_opts_t ttl_opts;
	bool zone_signed;
	uint64_t rng_seed;
	bool broad_in_place;           /* In place whenever nothing is left out. */
	bool strict_parity;            /* Fail, not count, where a rewrite differs from knotd. */
} scenario_t;

typedef struct {
	unsigned cases, answer_too_big, servfail, end_stage, end_tsig_skipped;
	unsigned unchanged, cap_only, in_place, full, full_after_eagain, espace;
	unsigned left_out, reordered, renumbered, rotated, cnames;
	unsigned glue_cut, knotd_cut, glue_rrsets;
	unsigned answer_larger;        /* Full rewrite answers larger than knotd's for the set. */
	unsigned fewer_than_knotd;     /* ... keeping fewer glue rrsets than knotd would. */
	unsigned hint_less;            /* Exchangers at rdata index >= 15 (no hint). */
	unsigned probes;               /* probe_compression() after a glue cut. */
} stats_t;

static const scenario_t *g_sc;     /* Case under test, for failure reports. */

static void dump_case(const knot_pkt_t *pkt)
{
	if (g_sc != NULL) {
		print_error("case: %s\n", g_sc->label);
		for (unsigned k = 0; k < g_sc->n; k++) {
			char name[KNOT_DNAME_TXT_MAXLEN + 1];
			const exch_t *e = &g_sc->ex[k];
			(void)knot_dname_to_str(name, e->name, sizeof(name));
			print_error("  [%u] MX %u %s%s A=%u AAAA=%u w=%u state=%d\n", k, e->pref,
			            name, e->in_zone ? "" : " (out of zone)", e->n_a, e->n_aaaa,
			            e->weight, (int)e->state);
		}
	}
	if (pkt != NULL) {
		print_error("  wire (%zu bytes, max %zu, reserved %u):", pkt->size, pkt->max_size,
		            pkt->reserved);
		for (size_t i = 0; i < pkt->size; i++) {
			print_error("%s%02x", (i % 32 == 0) ? "\n    " : " ", pkt->wire[i]);
		}
		print_error("\n");
	}
}

#define CHECK(pkt, cond, ...) do { \
	if (!(cond)) { \
		print_error("check failed: %s (%s:%d)\n  ", #cond, __FILE__, __LINE__); \
		print_error(__VA_ARGS__); \
		print_error("\n"); \
		dump_case(pkt); \
		fail(); \
	} \
} while (0)

static void name_from_str(knot_dname_t *dst, const char *str)
{
	assert_non_null(knot_dname_from_str(dst, str, KNOT_DNAME_MAXLEN));
	knot_dname_to_lower(dst);
}

static void rand_label(char *out, size_t min, size_t max)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t len = min + rnd(max - min + 1);
	for (size_t i = 0; i < len; i++) {
		out[i] = alpha[rnd(sizeof(alpha) - 1)];
	}
	out[len] = '\0';
	if (len > 2 && chance(20)) {
		out[1 + rnd(len - 2)] = '-';
	}
}

static void random_case_flip(knot_dname_t *name, unsigned pct)
{
	for (knot_dname_t *l = name; *l != 0; l += *l + 1) {
		for (uint8_t i = 1; i <= *l; i++) {
			if (l[i] >= 'a' && l[i] <= 'z' && chance(pct)) {
				l[i] -= 'a' - 'A';
			}
		}
	}
}

/* Put the exchangers in the zone's rdata order (knot_rdataset_add sorts). */
static void sort_canonical(scenario_t *sc)
{
	knot_rrset_t mx;
	knot_rrset_init(&mx, sc->mx_owner, KNOT_RRTYPE_MX, KNOT_CLASS_IN, sc->mx_ttl);
	for (unsigned k = 0; k < sc->n; k++) {
		uint8_t rd[2 + KNOT_DNAME_MAXLEN];
		knot_wire_write_u16(rd, sc->ex[k].pref);
		size_t len = knot_dname_to_wire(rd + 2, sc->ex[k].name, KNOT_DNAME_MAXLEN);
		assert_int_equal(knot_rrset_add_rdata(&mx, rd, 2 + len, NULL), KNOT_EOK);
	}
	assert_int_equal(mx.rrs.count, sc->n);
	exch_t sorted[MAX_EX];
	knot_rdata_t *rd = mx.rrs.rdata;
	for (unsigned k = 0; k < sc->n; k++, rd = knot_rdataset_next(rd)) {
		unsigned j = 0;
		while (j < sc->n && !(knot_wire_read_u16(rd->data) == sc->ex[j].pref &&
		                      knot_dname_is_equal(rd->data + 2, sc->ex[j].name))) {
			j++;
		}
		assert_true(j < sc->n);
		sorted[k] = sc->ex[j];
	}
	memcpy(sc->ex, sorted, sc->n * sizeof(sorted[0]));
	knot_rdataset_clear(&mx.rrs, NULL);
}

/* Fill in the parts every scenario shares once the names are chosen. */
static void finish_scenario(scenario_t *sc, const char *kind, uint64_t seed, int iter)
{
	for (unsigned k = 0; k < sc->n; k++) {
		exch_t *e = &sc->ex[k];
		knot_dname_copy_lower(e->lower, e->name);
		e->in_zone = knot_dname_in_bailiwick(e->lower, sc->zone) >= 0;
		if (!e->in_zone) {
			e->n_a = e->n_aaaa = 0;
		}
	}
	sort_canonical(sc);
	char iter_txt[24] = "";
	if (iter >= 0) {
		snprintf(iter_txt, sizeof(iter_txt), " iter=%d", iter);
	}
	snprintf(sc->label, sizeof(sc->label),
	         "%s seed=%llu%s n=%u max=%u reserve=%u%s%s %s rotate=%u cname=%d "
	         "rotation=%d tier_failover=%d may_change=%d sticky=%d broad=%d",
	         kind, (unsigned long long)seed, iter_txt, sc->n, sc->max_size, sc->reserve,
	         sc->opt ? " opt" : "", sc->tsig ? " tsig" : "", sc->udp ? "udp" : "tcp",
	         sc->rotate, sc->cname, (int)sc->opts.rotation, sc->opts.tier_failover,
	         sc->opts.may_change_set, sc->opts.sticky, sc->broad_in_place);
}

static void set_reserve(scenario_t *sc, unsigned kind)
{
	sc->opt = kind >= 1;
	sc->tsig = kind >= 2;
	sc->reserve = (sc->opt ? 11 : 0) + (sc->tsig ? 40 + rnd(81) : 0);
}

static void gen_random(scenario_t *sc, uint64_t seed, unsigned iter)
{
	static const char *zones[] = {
		"example.com.", "mx-test.example.net.",
		"a-rather-long-zone-name.for-compression.example.org.",
	};
	static const char *providers[] = {
		"l.google.com.", "aspmx.l.google.com.", "mail.protection.outlook.com.",
		"provider.net.", "mx.example.org.", "example.com.example.net.",
	};
	static const char *stems[] = { "mx", "mail", "smtp", "in", "relay", "mx-backup" };
	static const char *subs[] = { "eu", "us", "mx", "mail" };
	static const uint32_t ttls[] = { 30, 60, 300, 3600, 86400, 604800 };

	memset(sc, 0, sizeof(*sc));
	name_from_str(sc->zone, zones[rnd(3)]);
	char zone_txt[KNOT_DNAME_TXT_MAXLEN + 1];
	(void)knot_dname_to_str(zone_txt, sc->zone, sizeof(zone_txt));

	unsigned r = rnd(100);
	sc->max_size = r < 20 ? 512 : r < 80 ? 600 + rnd(633) : 4096;
	r = rnd(100);
	set_reserve(sc, r < 30 ? 0 : r < 70 ? 1 : 2);
	sc->udp = chance(80);
	sc->rotate = chance(50) ? 0 : (uint16_t)rnd(65536);

	/* Owner: the apex or a name below it; sometimes reached through a CNAME. */
	char buf[3 * KNOT_DNAME_TXT_MAXLEN];
	knot_dname_storage_t owner;
	if (chance(75)) {
		memcpy(owner, sc->zone, knot_dname_size(sc->zone));
	} else {
		snprintf(buf, sizeof(buf), "%s.%s", chance(50) ? "shop" : "mail-domain", zone_txt);
		name_from_str(owner, buf);
	}
	sc->cname = chance(20);
	if (sc->cname) {
		snprintf(buf, sizeof(buf), "alias%u.%s", rnd(10), zone_txt);
		name_from_str(sc->qname, buf);
	} else {
		memcpy(sc->qname, owner, knot_dname_size(owner));
	}
	memcpy(sc->mx_owner, owner, knot_dname_size(owner));
	if (chance(30)) {
		random_case_flip(sc->qname, 50);  /* 0x20 in the query */
	}
	sc->cname_ttl = ttls[rnd(6)];
	sc->mx_ttl = ttls[rnd(5)];

	sc->n = 1 + rnd(MAX_EX);
	unsigned pref_mode = rnd(10);
	unsigned addr_ctr = 0;
	bool all_down = chance(8);
	for (unsigned k = 0; k < sc->n; k++) {
		exch_t *e = &sc->ex[k];
		for (;;) {
			char lbl[32];
			unsigned kind = rnd(100);
			if (kind < 3) {
				snprintf(buf, sizeof(buf), "%s", zone_txt);  /* "@ MX 10 @" */
			} else if (kind < 50) {
				if (chance(50)) {
					snprintf(lbl, sizeof(lbl), "%s%u", stems[rnd(6)], rnd(30));
				} else {
					rand_label(lbl, 1, 20);
				}
				snprintf(buf, sizeof(buf), "%s.%s", lbl, zone_txt);
			} else if (kind < 70) {
				snprintf(lbl, sizeof(lbl), "%s%u", stems[rnd(6)], rnd(10));
				snprintf(buf, sizeof(buf), "%s.%s.%s", lbl, subs[rnd(4)], zone_txt);
			} else {
				rand_label(lbl, 1, 12);
				snprintf(buf, sizeof(buf), "%s.%s", lbl, providers[rnd(6)]);
			}
			name_from_str(e->name, buf);
			bool dup = false;
			for (unsigned j = 0; j < k; j++) {
				dup |= knot_dname_is_case_equal(e->name, sc->ex[j].name);
			}
			if (!dup) {
				break;
			}
		}
		if (chance(10)) {
			random_case_flip(e->name, 30);
		}
		switch (pref_mode) {
		case 0: e->pref = (uint16_t)rnd(65536); break;
		case 1: { static const uint16_t edge[] = { 0, 1, 65534, 65535 };
		          e->pref = edge[rnd(4)]; break; }
		default: e->pref = 10 * (1 + rnd(3)); break;
		}
		e->n_a = rnd(MAX_ADDR + 1);
		e->n_aaaa = rnd(MAX_ADDR + 1);
		for (unsigned i = 0; i < MAX_ADDR; i++, addr_ctr++) {
			uint8_t a[4] = {
				192, 0, (uint8_t)(2 + addr_ctr / 250), (uint8_t)(1 + addr_ctr % 250),
			};
			memcpy(e->a[i], a, 4);
			uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
			v6[14] = (uint8_t)(addr_ctr >> 8);
			v6[15] = (uint8_t)addr_ctr;
			memcpy(e->aaaa[i], v6, 16);
		}
		e->ttl_a = ttls[rnd(6)];
		e->ttl_aaaa = chance(70) ? e->ttl_a : ttls[rnd(6)];
		e->weight = chance(15) ? 0 : chance(70) ? 1 + rnd(100) : (uint16_t)(1 + rnd(65535));
		unsigned s = rnd(100);
		e->state = all_down ? MXP_STATE_DOWN :
		           s < 70 ? MXP_STATE_UP : s < 85 ? MXP_STATE_DOWN : MXP_STATE_DRAIN;
		e->hash = tu_splitmix64(&g_rs);
	}

	sc->opts.rotation = (mxp_rotation_t)rnd(3);
	sc->opts.all_down = chance(50) ? MXP_ALLDOWN_SERVE_ALL : MXP_ALLDOWN_SERVFAIL;
	sc->opts.sticky = chance(20);
	sc->opts.tier_failover = chance(50);
	sc->opts.may_change_set = chance(75);
	static const uint32_t mins[] = { 0, 0, 60, 600 }, maxs[] = { 0, 0, 300, 3600 };
	sc->ttl_opts.min = mins[rnd(4)];
	sc->ttl_opts.max = maxs[rnd(4)];
	sc->ttl_opts.degraded = chance(70) ? 60 : 0;
	sc->zone_signed = chance(20);
	sc->rng_seed = tu_splitmix64(&g_rs);
	sc->broad_in_place = chance(25);
	finish_scenario(sc, "random", seed, (int)iter);
}

/* ------------------------------------------------------------------------ */
/* knotd emulation.                                                          */
/* ------------------------------------------------------------------------ */

/* Room past max_size in the wire buffer, for probe_compression(). */
#define PROBE_ROOM 512

typedef struct {
	knot_pkt_t *pkt;
	uint16_t mx_idx;
	size_t answer_end;  /* Wire size after the answer section. */
	int glue_ret;       /* What put_additional() returned. */
} built_t;

static knot_dname_t *dup_name(const knot_dname_t *name, knot_mm_t *mm)
{
	knot_dname_t *copy = knot_dname_copy(name, mm);
	assert_non_null(copy);
	return copy;
}

/* The zone's MX set (rdata in canonical order, as knotd keeps it). */
static void zone_mx(const scenario_t *sc, knot_rrset_t *mx, knot_mm_t *mm)
{
	knot_rrset_init(mx, dup_name(sc->mx_owner, mm), KNOT_RRTYPE_MX, KNOT_CLASS_IN,
	                sc->mx_ttl);
	for (unsigned k = 0; k < sc->n; k++) {
		uint8_t rd[2 + KNOT_DNAME_MAXLEN];
		knot_wire_write_u16(rd, sc->ex[k].pref);
		size_t len = knot_dname_to_wire(rd + 2, sc->ex[k].name, KNOT_DNAME_MAXLEN);
		assert_int_equal(knot_rrset_add_rdata(mx, rd, 2 + len, mm), KNOT_EOK);
	}
	/* sort_canonical() put sc->ex in this order already. */
	knot_rdata_t *rd = mx->rrs.rdata;
	for (unsigned k = 0; k < sc->n; k++, rd = knot_rdataset_next(rd)) {
		assert_true(knot_dname_is_equal(rd->data + 2, sc->ex[k].name));
	}
}

static void glue_rrset(const exch_t *e, uint16_t type, uint32_t cap, knot_rrset_t *rr,
                       knot_mm_t *mm)
{
	uint32_t ttl = type == KNOT_RRTYPE_A ? e->ttl_a : e->ttl_aaaa;
	knot_rrset_init(rr, dup_name(e->lower, mm), type, KNOT_CLASS_IN, ttl < cap ? ttl : cap);
	unsigned count = type == KNOT_RRTYPE_A ? e->n_a : e->n_aaaa;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *data = type == KNOT_RRTYPE_A ? e->a[i] : e->aaaa[i];
		assert_int_equal(knot_rrset_add_rdata(rr, data, type == KNOT_RRTYPE_A ? 4 : 16, mm),
		                 KNOT_EOK);
	}
}

/*
 * Write the response knotd 3.2 writes for the MX query. 'mx' is the set to
 * answer with, 'slot_of[k]' the rdata index of zone exchanger k in it (-1: not
 * in it), 'avail[k][t]' whether its A (t=0) / AAAA (t=1) glue may be written
 * (NULL: all), 'glue_cap' a TTL cap for the glue (for the reference answers).
 *
 * \retval KNOT_EOK     Answer written (glue as far as it fits: built->glue_ret).
 * \retval KNOT_ESPACE  The answer did not fit.
 */
static int emit(const scenario_t *sc, const knot_rrset_t *mx, uint16_t rotate,
                const int *slot_of, const bool (*avail)[2], uint32_t glue_cap,
                knot_mm_t *mm, built_t *out)
{
	/* knotd's buffer is larger than the response may grow (max_size). */
	uint8_t *wire = mm->alloc(mm->ctx, sc->max_size + PROBE_ROOM);
	assert_non_null(wire);
	knot_pkt_t *pkt = knot_pkt_new(wire, sc->max_size + PROBE_ROOM, mm);
	assert_non_null(pkt);
	pkt->max_size = sc->max_size;
	pkt->size = KNOT_WIRE_HEADER_SIZE;
	memset(pkt->wire, 0, KNOT_WIRE_HEADER_SIZE);
	knot_wire_set_id(pkt->wire, 0x4d58);
	knot_wire_set_qr(pkt->wire);
	knot_wire_set_aa(pkt->wire);
	if (sc->reserve > 0) {
		assert_int_equal(knot_pkt_reserve(pkt, sc->reserve), KNOT_EOK);
	}
	assert_int_equal(knot_pkt_put_question(pkt, sc->qname, KNOT_CLASS_IN, KNOT_RRTYPE_MX),
	                 KNOT_EOK);
	out->pkt = pkt;

	/* put_answer(): QNAME hint for the first answer rrset. */
	knot_pkt_begin(pkt, KNOT_ANSWER);
	uint16_t flags = (sc->udp ? KNOT_PF_NULL : KNOT_PF_NOTRUNC) | KNOT_PF_ORIGTTL;
	uint16_t hint = KNOT_COMPR_HINT_QNAME;
	if (sc->cname) {
		knot_dname_storage_t lower;
		knot_dname_copy_lower(lower, sc->qname);
		knot_rrset_t cn;
		knot_rrset_init(&cn, dup_name(lower, mm), KNOT_RRTYPE_CNAME, KNOT_CLASS_IN,
		                sc->cname_ttl);
		uint8_t rd[KNOT_DNAME_MAXLEN];
		size_t len = knot_dname_to_wire(rd, sc->mx_owner, sizeof(rd));
		assert_int_equal(knot_rrset_add_rdata(&cn, rd, len, mm), KNOT_EOK);
		int ret = knot_pkt_put(pkt, hint, &cn, flags);
		if (ret != KNOT_EOK) {
			assert_int_equal(ret, KNOT_ESPACE);
			return ret;
		}
		hint = KNOT_COMPR_HINT_NONE;  /* follow_cname(): not the first answer */
	}
	out->mx_idx = pkt->rrset_count;
	int ret = knot_pkt_put_rotate(pkt, hint, mx, rotate, flags);
	if (ret != KNOT_EOK) {
		assert_int_equal(ret, KNOT_ESPACE);
		return ret;
	}
	out->answer_end = pkt->size;

	knot_pkt_begin(pkt, KNOT_AUTHORITY);
	knot_pkt_begin(pkt, KNOT_ADDITIONAL);

	/* put_additional(): the zone's glue list, in zone rdata order. */
	ret = KNOT_EOK;
	for (unsigned k = 0; k < sc->n; k++) {
		const exch_t *e = &sc->ex[k];
		if (slot_of[k] < 0 || !e->in_zone || e->n_a + e->n_aaaa == 0) {
			continue;
		}
		uint16_t ghint = knot_compr_hint(&pkt->rr_info[out->mx_idx],
		                                 KNOT_COMPR_HINT_RDATA + slot_of[k]);
		static const uint16_t types[] = { KNOT_RRTYPE_A, KNOT_RRTYPE_AAAA };
		for (int t = 0; t < 2; t++) {
			if ((types[t] == KNOT_RRTYPE_A ? e->n_a : e->n_aaaa) == 0 ||
			    (avail != NULL && !avail[k][t])) {
				continue;
			}
			knot_rrset_t rr;
			glue_rrset(e, types[t], glue_cap, &rr, mm);
			ret = knot_pkt_put(pkt, ghint, &rr, KNOT_PF_NOTRUNC);
			if (ret != KNOT_EOK) {
				break;  /* only this exchanger's loop: knotd goes on */
			}
		}
	}
	assert_true(ret == KNOT_EOK || ret == KNOT_ESPACE);
	out->glue_ret = ret;
	return KNOT_EOK;
}

/* What knotd does after the ADDITIONAL stage: move on and write the OPT. */
static void put_opt(const scenario_t *sc, knot_pkt_t *pkt, knot_mm_t *mm)
{
	if (pkt->current != KNOT_ADDITIONAL) {
		(void)knot_pkt_begin(pkt, KNOT_ADDITIONAL);
	}
	if (!sc->opt) {
		return;
	}
	knot_rrset_t opt;
	assert_int_equal(knot_edns_init(&opt, sc->max_size, 0, 0, mm), KNOT_EOK);
	assert_int_equal(knot_edns_wire_size(&opt), 11);
	assert_int_equal(knot_pkt_reclaim(pkt, 11), KNOT_EOK);
	int ret = knot_pkt_put(pkt, KNOT_COMPR_HINT_NONE, &opt, KNOT_PF_NULL);
	CHECK(pkt, ret == KNOT_EOK, "the OPT did not fit in its reserved space: %s",
	      knot_strerror(ret));
}

/* ------------------------------------------------------------------------ */
/* Independent wire walker.                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
	knot_section_t sec;
	knot_dname_storage_t owner;   /* Lower case. */
	knot_dname_storage_t owner_raw; /* As on the wire. */
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	uint16_t pref;                /* MX */
	knot_dname_storage_t target;  /* MX exchange, CNAME target (lower case). */
	uint8_t addr[16];             /* A, AAAA */
} wrr_t;

#define MAX_WRR 256

typedef struct {
	wrr_t rr[MAX_WRR];
	unsigned count[KNOT_PKT_SECTIONS];
	unsigned total;
} walked_t;

static char g_why[512];

#define WHY(...) (snprintf(g_why, sizeof(g_why), __VA_ARGS__), false)

/*
 * Decompress the name at 'pos' ('end' bounds its uncompressed part). Every
 * pointer must point after the header and before itself, and the name it
 * continues must end before the pointer: that rules out forward pointers and
 * loops. Returns the bytes the name takes at 'pos' in *consumed.
 */
static bool walk_name(const uint8_t *wire, size_t pos, size_t end, uint8_t *out,
                      uint8_t *raw, size_t *consumed)
{
	size_t p = pos, bound = end, olen = 0;
	bool jumped = false;
	for (;;) {
		if (p >= bound) {
			return WHY("name at %zu runs past %zu", pos, bound);
		}
		uint8_t b = wire[p];
		if ((b & 0xc0) == 0xc0) {
			if (p + 1 >= bound) {
				return WHY("name at %zu: pointer at %zu cut off", pos, p);
			}
			size_t target = ((size_t)(b & 0x3f) << 8) | wire[p + 1];
			if (target >= p) {
				return WHY("name at %zu: pointer at %zu points forward to %zu",
				           pos, p, target);
			}
			if (target < KNOT_WIRE_HEADER_SIZE) {
				return WHY("name at %zu: pointer at %zu points into the header (%zu)",
				           pos, p, target);
			}
			if (!jumped) {
				*consumed = p + 2 - pos;
				jumped = true;
			}
			bound = p;
			p = target;
			continue;
		}
		if (b & 0xc0) {
			return WHY("name at %zu: label type 0x%02x at %zu", pos, b, p);
		}
		if (olen + b + 1 > KNOT_DNAME_MAXLEN) {
			return WHY("name at %zu longer than 255 bytes", pos);
		}
		if (b == 0) {
			out[olen] = 0;
			if (raw != NULL) {
				raw[olen] = 0;
			}
			if (!jumped) {
				*consumed = p + 1 - pos;
			}
			return true;
		}
		if (p + 1 + b > bound) {
			return WHY("name at %zu: label at %zu runs past %zu", pos, p, bound);
		}
		out[olen] = b;
		for (uint8_t i = 1; i <= b; i++) {
			uint8_t c = wire[p + i];
			out[olen + i] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
		}
		if (raw != NULL) {
			memcpy(raw + olen, wire + p, b + 1);
		}
		olen += b + 1;
		p += b + 1;
	}
}

static bool walk_packet(const uint8_t *wire, size_t size, walked_t *w)
{
	memset(w->count, 0, sizeof(w->count));
	w->total = 0;
	if (size < KNOT_WIRE_HEADER_SIZE) {
		return WHY("short message");
	}
	if (knot_wire_get_qdcount(wire) != 1) {
		return WHY("qdcount %u", knot_wire_get_qdcount(wire));
	}
	size_t pos = KNOT_WIRE_HEADER_SIZE;
	/* The question name is never compressed. */
	while (pos < size && wire[pos] != 0) {
		if (wire[pos] & 0xc0) {
			return WHY("compressed or bad QNAME");
		}
		pos += wire[pos] + 1;
	}
	pos += 1 + 4;
	if (pos > size) {
		return WHY("question cut off");
	}
	const unsigned counts[] = {
		knot_wire_get_ancount(wire), knot_wire_get_nscount(wire), knot_wire_get_arcount(wire),
	};
	for (int sec = KNOT_ANSWER; sec <= KNOT_ADDITIONAL; sec++) {
		for (unsigned i = 0; i < counts[sec]; i++) {
			if (w->total == MAX_WRR) {
				return WHY("too many records");
			}
			wrr_t *rr = &w->rr[w->total];
			memset(rr, 0, sizeof(*rr));
			rr->sec = sec;
			size_t len;
			if (!walk_name(wire, pos, size, rr->owner, rr->owner_raw, &len)) {
				return false;
			}
			pos += len;
			if (pos + 10 > size) {
				return WHY("RR header at %zu cut off", pos);
			}
			rr->type = knot_wire_read_u16(wire + pos);
			rr->ttl = knot_wire_read_u32(wire + pos + 4);
			rr->rdlen = knot_wire_read_u16(wire + pos + 8);
			uint16_t rclass = knot_wire_read_u16(wire + pos + 2);
			pos += 10;
			size_t rd_end = pos + rr->rdlen;
			if (rd_end > size) {
				return WHY("rdata at %zu runs past the message", pos);
			}
			if (rr->type != KNOT_RRTYPE_OPT && rclass != KNOT_CLASS_IN) {
				return WHY("class %u at %zu", rclass, pos - 8);
			}
			switch (rr->type) {
			case KNOT_RRTYPE_MX:
				if (rr->rdlen < 3) {
					return WHY("MX rdata of %u bytes", rr->rdlen);
				}
				rr->pref = knot_wire_read_u16(wire + pos);
				if (!walk_name(wire, pos + 2, rd_end, rr->target, NULL, &len)) {
					return false;
				}
				if (pos + 2 + len != rd_end) {
					return WHY("MX rdata at %zu: rdlength %u, name takes %zu", pos,
					           rr->rdlen, len);
				}
				break;
			case KNOT_RRTYPE_CNAME:
				if (!walk_name(wire, pos, rd_end, rr->target, NULL, &len) ||
				    len != rr->rdlen) {
					return g_why[0] ? false : WHY("CNAME rdata length");
				}
				break;
			case KNOT_RRTYPE_A:
			case KNOT_RRTYPE_AAAA:
				if (rr->rdlen != (rr->type == KNOT_RRTYPE_A ? 4 : 16)) {
					return WHY("address rdata of %u bytes", rr->rdlen);
				}
				memcpy(rr->addr, wire + pos, rr->rdlen);
				break;
			case KNOT_RRTYPE_OPT:
				if (sec != KNOT_ADDITIONAL || rr->owner[0] != 0) {
					return WHY("misplaced OPT");
				}
				break;
			case KNOT_RRTYPE_TXT:  /* probe_compression() */
				if (sec != KNOT_ADDITIONAL) {
					return WHY("misplaced TXT");
				}
				break;
			default:
				return WHY("unexpected type %u", rr->type);
			}
			pos = rd_end;
			w->count[sec]++;
			w->total++;
		}
	}
	if (pos != size) {
		return WHY("%zu trailing bytes", size - pos);
	}
	return true;
}

/* Walk a packet and parse a copy with libknot; both must accept it. */
static void check_wire(knot_pkt_t *pkt, walked_t *w, knot_mm_t *mm)
{
	g_why[0] = '\0';
	bool ok = walk_packet(pkt->wire, pkt->size, w);
	CHECK(pkt, ok, "malformed response: %s", g_why);

	uint8_t *copy = mm->alloc(mm->ctx, pkt->size);
	assert_non_null(copy);
	memcpy(copy, pkt->wire, pkt->size);
	knot_pkt_t *parsed = knot_pkt_new(copy, pkt->size, mm);
	assert_non_null(parsed);
	int ret = knot_pkt_parse(parsed, KNOT_PF_NOCANON);
	CHECK(pkt, ret == KNOT_EOK, "knot_pkt_parse: %s", knot_strerror(ret));
	for (int sec = KNOT_ANSWER; sec <= KNOT_ADDITIONAL; sec++) {
		CHECK(pkt, parsed->sections[sec].count == w->count[sec],
		      "section %d: libknot parsed %u records, walker %u", sec,
		      parsed->sections[sec].count, w->count[sec]);
	}

	/* The packet's own bookkeeping agrees with its header. */
	const unsigned hdr[] = {
		knot_wire_get_ancount(pkt->wire), knot_wire_get_nscount(pkt->wire),
		knot_wire_get_arcount(pkt->wire),
	};
	for (int sec = KNOT_ANSWER; sec <= KNOT_ADDITIONAL; sec++) {
		const knot_pktsection_t *s = knot_pkt_section(pkt, sec);
		unsigned rrs = 0;
		for (uint16_t i = 0; i < s->count; i++) {
			rrs += pkt->rr[s->pos + i].rrs.count;
		}
		CHECK(pkt, rrs == hdr[sec], "section %d: %u records in pkt->rr, header says %u",
		      sec, rrs, hdr[sec]);
	}
	CHECK(pkt, pkt->size + pkt->reserved <= pkt->max_size,
	      "size %zu + reserved %u > max %zu", pkt->size, pkt->reserved, pkt->max_size);
}

/* ------------------------------------------------------------------------ */
/* Expected results.                                                         */
/* ------------------------------------------------------------------------ */

typedef struct {
	unsigned k;       /* Zone exchanger. */
	uint16_t type;
	unsigned count;
	uint32_t ttl;
	unsigned first;   /* Its first record in the walked_t. */
} grr_t;              /* One glue rrset as written. */

typedef struct {
	grr_t set[2 * MAX_EX];
	unsigned n;
} glue_t;

static int exch_of(const scenario_t *sc, const knot_dname_t *lower_owner)
{
	for (unsigned k = 0; k < sc->n; k++) {
		if (knot_dname_is_equal(sc->ex[k].lower, lower_owner)) {
			return k;
		}
	}
	return -1;
}

/* Group the address records of the additional section into rrsets and check
 * each record against the exchanger's addresses. */
static void collect_glue(const scenario_t *sc, const knot_pkt_t *pkt, const walked_t *w,
                         glue_t *g)
{
	g->n = 0;
	for (unsigned i = 0; i < w->total; i++) {
		const wrr_t *rr = &w->rr[i];
		if (rr->sec != KNOT_ADDITIONAL || rr->type == KNOT_RRTYPE_OPT) {
			continue;
		}
		CHECK(pkt, rr->type == KNOT_RRTYPE_A || rr->type == KNOT_RRTYPE_AAAA,
		      "additional record of type %u", rr->type);
		int k = exch_of(sc, rr->owner);
		CHECK(pkt, k >= 0, "additional record %u is owned by no exchanger", i);
		const exch_t *e = &sc->ex[k];
		bool v4 = rr->type == KNOT_RRTYPE_A;
		unsigned have = v4 ? e->n_a : e->n_aaaa;
		bool known = false;
		for (unsigned a = 0; a < have; a++) {
			known |= memcmp(rr->addr, v4 ? e->a[a] : e->aaaa[a], v4 ? 4 : 16) == 0;
		}
		CHECK(pkt, known, "additional record %u: address not one of exchanger %d's", i, k);
		grr_t *last = g->n > 0 ? &g->set[g->n - 1] : NULL;
		if (last != NULL && last->k == (unsigned)k && last->type == rr->type) {
			CHECK(pkt, last->ttl == rr->ttl, "TTLs differ within an rrset (record %u)", i);
			last->count++;
		} else {
			CHECK(pkt, g->n < 2 * MAX_EX, "too many glue rrsets");
			g->set[g->n++] = (grr_t){
				.k = k, .type = rr->type, .count = 1, .ttl = rr->ttl, .first = i,
			};
		}
	}
	/* Whole rrsets, each rrset once. */
	for (unsigned i = 0; i < g->n; i++) {
		const exch_t *e = &sc->ex[g->set[i].k];
		unsigned want = g->set[i].type == KNOT_RRTYPE_A ? e->n_a : e->n_aaaa;
		CHECK(pkt, g->set[i].count == want, "glue rrset %u: %u of %u records", i,
		      g->set[i].count, want);
		for (unsigned j = 0; j < i; j++) {
			CHECK(pkt, g->set[j].k != g->set[i].k || g->set[j].type != g->set[i].type,
			      "glue rrset %u written twice", i);
		}
	}
}

typedef struct {
	unsigned count;
	unsigned k[MXP_MAX_RECORDS];
	uint16_t pref[MXP_MAX_RECORDS];
	uint32_t ttl;
} exp_mx_t;

/* The answer section: optional CNAME, then exactly the expected MX records. */
static void check_answer(const scenario_t *sc, const knot_pkt_t *pkt, const walked_t *w,
                         const exp_mx_t *exp)
{
	unsigned i = 0;
	CHECK(pkt, w->count[KNOT_AUTHORITY] == 0, "authority section not empty");
	if (sc->cname) {
		knot_dname_storage_t lq;
		knot_dname_copy_lower(lq, sc->qname);
		CHECK(pkt, w->count[KNOT_ANSWER] >= 1 && w->rr[0].type == KNOT_RRTYPE_CNAME &&
		      knot_dname_is_equal(w->rr[0].owner, lq) &&
		      knot_dname_is_equal(w->rr[0].target, sc->mx_owner) &&
		      w->rr[0].ttl == sc->cname_ttl, "CNAME not kept");
		i = 1;
	}
	CHECK(pkt, w->count[KNOT_ANSWER] == i + exp->count, "answer holds %u MX records, want %u",
	      w->count[KNOT_ANSWER] - i, exp->count);
	for (unsigned s = 0; s < exp->count; s++, i++) {
		const wrr_t *rr = &w->rr[i];
		const exch_t *e = &sc->ex[exp->k[s]];
		CHECK(pkt, rr->type == KNOT_RRTYPE_MX && knot_dname_is_equal(rr->owner, sc->mx_owner),
		      "answer record %u is not of the MX set", i);
		CHECK(pkt, knot_dname_is_equal(rr->target, e->lower),
		      "MX record %u: exchanger is not zone record %u", s, exp->k[s]);
		CHECK(pkt, rr->pref == exp->pref[s], "MX record %u: preference %u, want %u", s,
		      rr->pref, exp->pref[s]);
		CHECK(pkt, rr->ttl == exp->ttl, "MX record %u: TTL %u, want %u", s, rr->ttl, exp->ttl);
	}
}

/*
 * Glue: 'got' is 'exp', or with 'partial' a subsequence of it (whole rrsets,
 * in order) where space ran out: if it stops early without gaps, the next
 * rrset did not fit (!next_fits). TTLs capped at the MX TTL.
 */
static void check_glue(const knot_pkt_t *pkt, const glue_t *got, const glue_t *exp,
                       uint32_t mx_ttl, bool partial, bool next_fits, const bool *kept)
{
	for (unsigned i = 0; i < got->n; i++) {
		CHECK(pkt, kept[got->set[i].k], "glue of exchanger %u, which is not in the answer",
		      got->set[i].k);
		CHECK(pkt, got->set[i].ttl <= mx_ttl, "glue rrset %u: TTL %u above the MX TTL %u", i,
		      got->set[i].ttl, mx_ttl);
	}
	CHECK(pkt, partial ? got->n <= exp->n : got->n == exp->n,
	      "%u glue rrsets, want %s%u", got->n, partial ? "at most " : "", exp->n);
	unsigned j = 0;
	bool gaps = false;
	for (unsigned i = 0; i < got->n; i++, j++) {
		const grr_t *a = &got->set[i];
		while (partial && j < exp->n && (exp->set[j].k != a->k || exp->set[j].type != a->type)) {
			j++;
			gaps = true;
		}
		CHECK(pkt, j < exp->n, "glue rrset %u (exchanger %u type %u) out of order or unknown",
		      i, a->k, a->type);
		const grr_t *b = &exp->set[j];
		uint32_t ttl = b->ttl < mx_ttl ? b->ttl : mx_ttl;
		CHECK(pkt, a->k == b->k && a->type == b->type && a->count == b->count,
		      "glue rrset %u: exchanger %u type %u x%u, want exchanger %u type %u x%u",
		      i, a->k, a->type, a->count, b->k, b->type, b->count);
		CHECK(pkt, a->ttl == ttl, "glue rrset %u: TTL %u, want %u", i, a->ttl, ttl);
	}
	if (partial && !gaps && got->n < exp->n) {
		CHECK(pkt, !next_fits, "glue stopped at rrset %u of %u, which fits", got->n, exp->n);
	}
}

/* ------------------------------------------------------------------------ */
/* One case.                                                                 */
/* ------------------------------------------------------------------------ */

/* What a test needs, allocated once (freed in the teardown even when a check
 * fails). */
typedef struct {
	pool_t pool;
	scenario_t sc;
	stats_t st;
	walked_t orig_w, w, ref_w;
	mxp_plan_t plan;
	uint8_t before[KNOT_WIRE_MAX_PKTSIZE];
} fx_t;

/* A compression pointer loop makes libknot spin: fail instead of hanging. */
#define WATCHDOG_SECONDS 60  /* keep in sync with the message below */

static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "\nwatchdog: a case ran for " "60" " s (pointer loop?): ";
	ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	if (g_sc != NULL) {
		ignored = write(STDERR_FILENO, g_sc->label, strlen(g_sc->label));
	}
	ignored = write(STDERR_FILENO, "\n", 1);
	(void)ignored;
	_exit(1);
}

static int fx_setup(void **state)
{
	fx_t *fx = calloc(1, sizeof(*fx));
	*state = fx;
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG_SECONDS);
	return fx != NULL ? 0 : -1;
}

static int fx_teardown(void **state)
{
	alarm(0);
	fx_t *fx = *state;
	pool_destroy(&fx->pool);
	free(fx);
	g_sc = NULL;
	return 0;
}

/*
 * Would glue rrset 'g' of the original response fit where the rewrite
 * stopped? Put it as rewrite_mx_answer() does (owner as on the original wire,
 * hint at its exchange name in the new MX set), then undo the put.
 */
static bool glue_fits(const scenario_t *sc, knot_pkt_t *pkt, const walked_t *ow,
                      const grr_t *g, int slot, knot_mm_t *mm)
{
	int mx = rewrite_find_answer(pkt, KNOT_RRTYPE_MX);
	assert_true(mx >= 0);
	knot_rrset_t rr;
	glue_rrset(&sc->ex[g->k], g->type, UINT32_MAX, &rr, mm);
	rr.owner = dup_name(ow->rr[g->first].owner_raw, mm);
	uint16_t hint = knot_compr_hint(&pkt->rr_info[mx], KNOT_COMPR_HINT_RDATA + slot);

	size_t size = pkt->size;
	uint16_t rrsets = pkt->rrset_count;
	uint16_t in_section = pkt->sections[pkt->current].count;
	uint16_t arcount = knot_wire_get_arcount(pkt->wire);
	knot_compr_t compr = pkt->compr;
	int ret = knot_pkt_put(pkt, hint, &rr, KNOT_PF_NOTRUNC);
	pkt->size = size;
	pkt->rrset_count = rrsets;
	pkt->sections[pkt->current].count = in_section;
	knot_wire_set_arcount(pkt->wire, arcount);
	pkt->compr = compr;
	return ret == KNOT_EOK;
}

/*
 * Another module may put records after this one in the ADDITIONAL stage:
 * the compression state rewrite_mx_answer() leaves must only refer to bytes
 * that are in the message. Put a record owned by 'owner' (which a failed put
 * may have left in discarded bytes) without a hint, check the message, undo.
 */
static void probe_compression(knot_pkt_t *pkt, const knot_dname_t *owner, knot_mm_t *mm)
{
	knot_rrset_t txt;
	knot_rrset_init(&txt, dup_name(owner, mm), KNOT_RRTYPE_TXT, KNOT_CLASS_IN, 60);
	static const uint8_t rd[] = { 3, 'm', 'x', 'p' };
	assert_int_equal(knot_rrset_add_rdata(&txt, rd, sizeof(rd), mm), KNOT_EOK);

	size_t size = pkt->size, max_size = pkt->max_size;
	uint16_t rrsets = pkt->rrset_count;
	uint16_t in_section = pkt->sections[pkt->current].count;
	uint16_t arcount = knot_wire_get_arcount(pkt->wire);
	knot_compr_t compr = pkt->compr;
	pkt->max_size += PROBE_ROOM;
	int ret = knot_pkt_put(pkt, KNOT_COMPR_HINT_NONE, &txt, KNOT_PF_NOTRUNC);
	CHECK(pkt, ret == KNOT_EOK, "probe put: %s", knot_strerror(ret));
	walked_t *w = mm->alloc(mm->ctx, sizeof(*w));
	assert_non_null(w);
	g_why[0] = '\0';
	bool ok = walk_packet(pkt->wire, pkt->size, w);
	CHECK(pkt, ok, "a record put after the rewrite is malformed (stale compression "
	      "state): %s", g_why);
	pkt->size = size;
	pkt->max_size = max_size;
	pkt->rrset_count = rrsets;
	pkt->sections[pkt->current].count = in_section;
	knot_wire_set_arcount(pkt->wire, arcount);
	pkt->compr = compr;
}

static void run_case(fx_t *fx)
{
	scenario_t *sc = &fx->sc;
	stats_t *st = &fx->st;
	knot_mm_t mm = { .ctx = &fx->pool, .alloc = pool_alloc, .free = NULL };
	pool_release(&fx->pool);
	g_sc = sc;
	st->cases++;

	int all[MAX_EX];
	for (unsigned k = 0; k < sc->n; k++) {
		all[k] = k;
		st->hint_less += (k >= KNOT_COMPR_HINT_COUNT - KNOT_COMPR_HINT_RDATA);
	}
	knot_rrset_t zmx;
	zone_mx(sc, &zmx, &mm);
	built_t b;
	if (emit(sc, &zmx, sc->rotate, all, NULL, UINT32_MAX, &mm, &b) != KNOT_EOK) {
		st->answer_too_big++;  /* knotd answers TC; the module never sees it */
		return;
	}
	knot_pkt_t *pkt = b.pkt;
	st->rotated += (sc->rotate % sc->n) != 0;
	st->cnames += sc->cname;

	/* The original response is well-formed: this checks the emulation too. */
	check_wire(pkt, &fx->orig_w, &mm);
	glue_t orig_glue, got_glue, exp_glue;
	collect_glue(sc, pkt, &fx->orig_w, &orig_glue);

	/* The plan, as the module makes it. */
	mxp_record_t recs[MAX_EX];
	for (unsigned k = 0; k < sc->n; k++) {
		recs[k] = (mxp_record_t){
			.pref = sc->ex[k].pref, .weight = sc->ex[k].weight,
			.state = sc->ex[k].state, .null_mx = false, .hash = sc->ex[k].hash,
		};
	}
	mxp_rng_t rng;
	tu_rng_seed(&rng, sc->rng_seed);
	mxp_plan_t *plan = &fx->plan;
	policy_plan(recs, sc->n, &sc->opts, &rng, plan);
	if (plan->kind == MXP_PLAN_SERVFAIL) {
		st->servfail++;  /* the module answers SERVFAIL: nothing to rewrite */
		return;
	}
	st->left_out += plan->left_out > 0;
	st->reordered += plan->reordered;
	st->renumbered += plan->renumbered;
	uint32_t ttl = policy_ttl(sc->mx_ttl, &sc->ttl_opts, plan->degraded, sc->zone_signed);
	bool changed = plan->kind != MXP_PLAN_UNCHANGED || ttl != sc->mx_ttl;
	bool in_place = plan->kind == MXP_PLAN_UNCHANGED ||
	                (plan->left_out == 0 && (!plan->reordered ||
	                 (plan->renumbered && sc->opts.rotation != MXP_ROT_ORDER)));
	if (sc->broad_in_place) {
		in_place |= plan->left_out == 0 &&
		            (sc->opts.rotation != MXP_ROT_ORDER || !plan->reordered);
	}

	/* What a full rewrite keeps. */
	bool kept[MAX_EX];
	int slot_of[MAX_EX];
	for (unsigned k = 0; k < sc->n; k++) {
		kept[k] = false;
		slot_of[k] = -1;
	}
	for (unsigned s = 0; s < plan->count; s++) {
		kept[plan->slots[s].idx] = true;
		slot_of[plan->slots[s].idx] = s;
	}
	exp_glue.n = 0;
	for (unsigned i = 0; i < orig_glue.n; i++) {
		if (kept[orig_glue.set[i].k]) {
			exp_glue.set[exp_glue.n++] = orig_glue.set[i];
		}
	}

	int idx = rewrite_find_answer(pkt, KNOT_RRTYPE_MX);
	CHECK(pkt, idx == b.mx_idx, "rewrite_find_answer: %d, MX written at %u", idx, b.mx_idx);
	const knot_rdataset_t zone_rrs = pkt->rr[idx].rrs;

	/*
	 * knotd skips the ADDITIONAL hooks when its last glue put failed; the
	 * module's END hook then patches in place, after the OPT, unless TSIG.
	 */
	bool at_end = b.glue_ret == KNOT_ESPACE;
	if (at_end) {
		st->knotd_cut++;
		st->end_stage++;
		if (sc->tsig) {
			st->end_tsig_skipped++;
			return;
		}
		put_opt(sc, pkt, &mm);
	}
	size_t before_size = pkt->size;
	memcpy(fx->before, pkt->wire, before_size);

	enum { R_NONE, R_CAP, R_IN_PLACE, R_FULL } how = R_NONE;
	int ret = KNOT_EAGAIN;
	if (in_place) {
		ret = changed ? rewrite_mx_in_place(pkt, idx, plan, ttl, true, -1) :
		                rewrite_cap_glue_ttl(pkt, ttl);
		CHECK(pkt, ret == KNOT_EOK || ret == KNOT_EAGAIN, "in-place rewrite: %s",
		      knot_strerror(ret));
		if (ret == KNOT_EOK) {
			how = changed ? R_IN_PLACE : R_CAP;
		} else {
			CHECK(pkt, changed, "rewrite_cap_glue_ttl returned EAGAIN");
			CHECK(pkt, pkt->size == before_size &&
			      memcmp(pkt->wire, fx->before, before_size) == 0,
			      "rewrite_mx_in_place changed the packet and returned EAGAIN");
		}
	}
	knot_rdataset_t new_mx = { 0 };
	bool next_fits = false;
	if (ret == KNOT_EAGAIN && !at_end) {
		st->full_after_eagain += in_place;
		CHECK(pkt, pkt->current == KNOT_ADDITIONAL, "not at the additional section");
		ret = rewrite_build_mx(&new_mx, &zone_rrs, plan, &mm);
		CHECK(pkt, ret == KNOT_EOK, "rewrite_build_mx: %s", knot_strerror(ret));
		rewrite_mx_t rw = {
			.mx_idx = idx, .mx = &new_mx, .ttl = ttl, .zone_mx = &zone_rrs,
		};
		ret = rewrite_mx_answer(pkt, &rw, &mm);
		CHECK(pkt, ret == KNOT_EOK || ret == KNOT_ESPACE, "rewrite_mx_answer: %s",
		      knot_strerror(ret));
		/* Later puts compress against this: it must lie in the message. */
		CHECK(pkt, pkt->compr.suffix.pos < pkt->size, "compression suffix at %u, past the "
		      "message (%zu bytes)", pkt->compr.suffix.pos, pkt->size);
		how = R_FULL;
		if (ret == KNOT_ESPACE) {
			st->espace++;
			CHECK(pkt, !sc->udp || knot_wire_get_tc(pkt->wire),
			      "rewrite_mx_answer: ESPACE over UDP without TC");
		} else {
			CHECK(pkt, pkt->current == KNOT_ADDITIONAL,
			      "rewrite_mx_answer left the packet in section %d", pkt->current);
			/* Where the glue stopped short, would the next one have fit? */
			unsigned got_n = pkt->sections[KNOT_ADDITIONAL].count;
			if (got_n < exp_glue.n) {
				const grr_t *next = &exp_glue.set[got_n];
				next_fits = glue_fits(sc, pkt, &fx->orig_w, next, slot_of[next->k],
				                      &mm);
				probe_compression(pkt, sc->ex[next->k].lower, &mm);
				st->probes++;
			}
		}
	}
	if (!at_end) {
		put_opt(sc, pkt, &mm);
	}
	if (how != R_FULL || ret == KNOT_EOK) {
		CHECK(pkt, !knot_wire_get_tc(pkt->wire), "TC set");
	}

	walked_t *w = &fx->w;
	check_wire(pkt, w, &mm);
	collect_glue(sc, pkt, w, &got_glue);

	exp_mx_t exp = { .ttl = sc->mx_ttl };
	switch (how) {
	case R_NONE:
		st->unchanged++;
		CHECK(pkt, at_end, "nothing applied before the END stage");
		CHECK(pkt, pkt->size == before_size &&
		      memcmp(pkt->wire, fx->before, before_size) == 0,
		      "packet changed although nothing applied");
		break;
	case R_CAP:
		st->cap_only++;
		break;
	case R_IN_PLACE:
		st->in_place++;
		break;
	case R_FULL:
		st->full++;
		break;
	}
	if (how != R_FULL) {
		/* Wire order as knotd wrote it (rotated), preferences per zone index. */
		uint16_t new_pref[MAX_EX];
		for (unsigned k = 0; k < sc->n; k++) {
			new_pref[k] = sc->ex[k].pref;
		}
		if (how == R_IN_PLACE) {
			for (unsigned s = 0; s < plan->count; s++) {
				new_pref[plan->slots[s].idx] = plan->slots[s].pref;
			}
		}
		if (how == R_IN_PLACE || how == R_CAP) {
			exp.ttl = ttl;
		}
		exp.count = sc->n;
		uint16_t rot = sc->rotate % sc->n;
		for (unsigned s = 0; s < sc->n; s++) {
			exp.k[s] = (rot + s) % sc->n;
			exp.pref[s] = new_pref[exp.k[s]];
		}
		check_answer(sc, pkt, w, &exp);
		size_t opt_size = (!at_end && sc->opt) ? 11 : 0;
		CHECK(pkt, pkt->size == before_size + opt_size, "in-place rewrite changed the size");
		bool all_kept[MAX_EX];
		for (unsigned k = 0; k < sc->n; k++) {
			all_kept[k] = true;
		}
		check_glue(pkt, &got_glue, &orig_glue, how == R_NONE ? UINT32_MAX : ttl,
		           false, false, all_kept);
		return;
	}

	/* Full rewrite: the plan's records in order, glue of the kept ones. */
	exp.ttl = ttl;
	exp.count = plan->count;
	for (unsigned s = 0; s < plan->count; s++) {
		exp.k[s] = plan->slots[s].idx;
		exp.pref[s] = plan->slots[s].pref;
	}
	if (ret == KNOT_ESPACE) {
		/* The MX set did not fit: no MX record, no glue. */
		exp.count = 0;
		check_answer(sc, pkt, w, &exp);
		CHECK(pkt, got_glue.n == 0, "glue after an MX set that did not fit");
		return;
	}
	check_answer(sc, pkt, w, &exp);
	check_glue(pkt, &got_glue, &exp_glue, ttl, true, next_fits, kept);
	st->glue_cut += got_glue.n < exp_glue.n;
	st->glue_rrsets += got_glue.n;

	/*
	 * Reference: what knotd would write for a zone holding the plan's set,
	 * with the glue the module had (the original's) in zone order, TTLs
	 * capped. The answer should be the same bytes (same compression) and
	 * the glue as much: knotd skips a glue that does not fit and goes on.
	 */
	bool avail[MAX_EX][2];
	memset(avail, 0, sizeof(avail));
	for (unsigned i = 0; i < orig_glue.n; i++) {
		avail[orig_glue.set[i].k][orig_glue.set[i].type == KNOT_RRTYPE_AAAA] = true;
	}
	knot_rrset_t ref_mx;
	knot_rrset_init(&ref_mx, dup_name(sc->mx_owner, &mm), KNOT_RRTYPE_MX, KNOT_CLASS_IN, ttl);
	ref_mx.rrs = new_mx;
	built_t r;
	int rret = emit(sc, &ref_mx, 0, slot_of, (const bool (*)[2])avail, ttl, &mm, &r);
	CHECK(pkt, rret == KNOT_EOK, "knotd's answer for the plan's set would not fit");
	check_wire(r.pkt, &fx->ref_w, &mm);
	glue_t ref_glue;
	collect_glue(sc, r.pkt, &fx->ref_w, &ref_glue);

	size_t end = pkt->sections[KNOT_ADDITIONAL].count > 0 ?
	             pkt->rr_info[pkt->sections[KNOT_ADDITIONAL].pos].pos : pkt->size;
	bool same = end == r.answer_end && memcmp(pkt->wire, r.pkt->wire, 10) == 0 &&
	            memcmp(pkt->wire + 12, r.pkt->wire + 12, end - 12) == 0;
	knot_dname_storage_t lower_qname;
	knot_dname_copy_lower(lower_qname, sc->qname);
	if (sc->strict_parity || knot_dname_is_equal(lower_qname, sc->qname)) {
		CHECK(pkt, same, "the answer (%zu bytes) differs from knotd's for the same set "
		      "(%zu bytes)", end, r.answer_end);
	}
	st->answer_larger += !same;
	if (sc->strict_parity) {
		CHECK(pkt, got_glue.n >= ref_glue.n, "%u glue rrsets, knotd writes %u for the "
		      "same answer and glue", got_glue.n, ref_glue.n);
	}
	st->fewer_than_knotd += got_glue.n < ref_glue.n;
}

static void print_stats(const char *what, const stats_t *st)
{
	print_message("%s: %u cases: %u answer too big for knotd, %u servfail, %u at END "
	              "(%u under TSIG), %u untouched, %u TTL cap only, %u in place, %u full "
	              "(%u after EAGAIN, %u ESPACE, %u glue cut, %u glue rrsets kept; "
	              "differing from knotd: %u larger answers, %u with less glue); "
	              "plans: %u left out, %u reordered, %u renumbered; %u rotated, %u CNAME, "
	              "%u exchangers past the compression hints, %u compression probes\n",
	              what, st->cases, st->answer_too_big, st->servfail, st->end_stage,
	              st->end_tsig_skipped, st->unchanged, st->cap_only, st->in_place, st->full,
	              st->full_after_eagain, st->espace, st->glue_cut, st->glue_rrsets,
	              st->answer_larger, st->fewer_than_knotd, st->left_out, st->reordered,
	              st->renumbered, st->rotated, st->cnames, st->hint_less, st->probes);
}

/* ------------------------------------------------------------------------ */
/* Tests.                                                                    */
/* ------------------------------------------------------------------------ */

static void test_random_responses(void **state)
{
	static const uint64_t seeds[] = { 1, 0x6d78706f6c696379, 20260101 };
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	/* MXP_REWRITE_ITERATIONS=N runs N cases per seed (default 2000). */
	const char *env = getenv("MXP_REWRITE_ITERATIONS");
	unsigned iterations = env != NULL ? (unsigned)strtoul(env, NULL, 10) : 2000;
	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		g_rs = seeds[s];
		for (unsigned iter = 0; iter < iterations; iter++) {
			gen_random(sc, seeds[s], iter);
			run_case(fx);
		}
	}
	print_stats("random", &fx->st);
	/* Every path was taken. */
	if (iterations >= 2000) {
		assert_true(fx->st.in_place > 100);
		assert_true(fx->st.cap_only > 10);
		assert_true(fx->st.full > 1000);
		assert_true(fx->st.glue_cut > 0);
		assert_true(fx->st.end_stage > 10);
		assert_true(fx->st.left_out > 100 && fx->st.rotated > 100 &&
		            fx->st.cnames > 100);
	}
}

/*
 * Exchangers "@ MX 10 <names[i]>" in 'zone', up, weight 1, with n_a[i] A and
 * n_aaaa[i] AAAA records; 'qname' as the client wrote it (NULL: the apex),
 * with 'cname' an alias of the apex. An EDNS query over UDP (OPT reserved).
 */
static void gen_named(scenario_t *sc, const char *zone, const char *const *names,
                      const uint8_t *n_a, const uint8_t *n_aaaa, unsigned n, uint16_t size,
                      mxp_rotation_t rotation, uint64_t seed, const char *kind,
                      const char *qname, bool cname)
{
	memset(sc, 0, sizeof(*sc));
	name_from_str(sc->zone, zone);
	memcpy(sc->mx_owner, sc->zone, knot_dname_size(sc->zone));
	assert_non_null(knot_dname_from_str(sc->qname, qname != NULL ? qname : zone,
	                                    KNOT_DNAME_MAXLEN));
	sc->cname = cname;
	sc->cname_ttl = 300;
	sc->max_size = size;
	set_reserve(sc, 1);
	sc->udp = true;
	sc->mx_ttl = 3600;
	sc->n = n;
	unsigned ctr = 0;
	for (unsigned k = 0; k < n; k++) {
		exch_t *e = &sc->ex[k];
		char buf[KNOT_DNAME_TXT_MAXLEN];
		snprintf(buf, sizeof(buf), "%s.%s", names[k], zone);
		name_from_str(e->name, buf);
		e->pref = 10;
		e->n_a = n_a[k];
		e->n_aaaa = n_aaaa[k];
		for (unsigned i = 0; i < MAX_ADDR; i++, ctr++) {
			uint8_t a[4] = { 192, 0, 2, (uint8_t)(1 + ctr) };
			memcpy(e->a[i], a, 4);
			uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
			v6[15] = (uint8_t)(1 + ctr);
			memcpy(e->aaaa[i], v6, 16);
		}
		e->ttl_a = e->ttl_aaaa = 3600;
		e->weight = 1;
		e->state = MXP_STATE_UP;
		e->hash = k;
	}
	sc->opts.rotation = rotation;
	sc->opts.may_change_set = true;
	sc->ttl_opts.degraded = 60;
	sc->rng_seed = seed;
	finish_scenario(sc, kind, seed, -1);
}

/* N exchangers "<prefix><i>", each with the same A/AAAA counts. */
static void gen_fixed(scenario_t *sc, const char *zone, const char *prefix, unsigned n,
                      unsigned n_a, unsigned n_aaaa, uint16_t size, mxp_rotation_t rotation,
                      uint64_t seed, const char *kind)
{
	char names[MAX_EX][64];
	const char *ptrs[MAX_EX];
	uint8_t na[MAX_EX], naaaa[MAX_EX];
	for (unsigned k = 0; k < n; k++) {
		snprintf(names[k], sizeof(names[k]), "%s%u", prefix, k);
		ptrs[k] = names[k];
		na[k] = n_a;
		naaaa[k] = n_aaaa;
	}
	gen_named(sc, zone, ptrs, na, naaaa, n, size, rotation, seed, kind, NULL, false);
}

/*
 * 10 exchangers with A and AAAA, rotation order, EDNS sizes 788..998: full
 * rewrites whose glue once ran out of space and was compressed against
 * discarded bytes (forward pointers, pointer loops).
 */
static void test_regression_order_glue_overflow(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	static const char *zones[][2] = {
		{ "ovf.test.", "mail" }, { "ovf2.test.", "exchanger-with-a-longer-name-" },
	};
	for (unsigned z = 0; z < 2; z++) {
		for (uint16_t size = 788; size <= 998; size += 2) {
			for (uint64_t seed = 1; seed <= 16; seed++) {
				gen_fixed(sc, zones[z][0], zones[z][1], 10, 1, 1, size, MXP_ROT_ORDER,
				          seed, "order-overflow");
				sc->strict_parity = true;
				run_case(fx);
			}
		}
	}
	print_stats("order-overflow", &fx->st);
	assert_true(fx->st.full > 0);
}

/*
 * 5 exchangers with 3 A each and long names, sizes 546..568: around the size
 * where knotd's glue just fits. A full rewrite must keep all of it (glue
 * owners once took a label plus a pointer instead of a 2-byte pointer, and
 * the rewrite cut glue knotd had fit). Every rotation, some down/drain.
 */
static void test_regression_three_a(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	for (uint16_t size = 546; size <= 568; size++) {
		for (int rot = MXP_ROT_PREFERENCE; rot <= MXP_ROT_NONE; rot++) {
			for (uint64_t seed = 1; seed <= 12; seed++) {
				gen_fixed(sc, "three.test.", "exchanger-with-a-long-label-for-glue-", 5,
				          3, 0, size, (mxp_rotation_t)rot, seed, "three-a");
				sc->strict_parity = true;
				/* Vary weights and states: removals and renumbering too. */
				for (unsigned k = 0; k < sc->n; k++) {
					sc->ex[k].weight = (uint16_t)(1 + (seed * 7 + k * 13) % 50);
					sc->ex[k].state = (seed % 3 == 0 && k == seed % 5) ? MXP_STATE_DOWN :
					                  (seed % 4 == 0 && k == 1) ? MXP_STATE_DRAIN :
					                  MXP_STATE_UP;
				}
				sc->opts.tier_failover = seed % 2;
				run_case(fx);
			}
		}
	}
	print_stats("three-a", &fx->st);
	assert_true(fx->st.full > 0);
}

/*
 * After a glue put that does not fit, libknot's compression state may point
 * into the discarded bytes (a hint-less owner, rdata index >= 15, written in
 * full before the record failed). rewrite_mx_answer() must restore it, or a
 * record another module puts afterwards points at itself. 18 exchangers in
 * two name groups, rotation order (interleaving grows the answer, so the
 * rewrite cuts glue the original had), swept over sizes.
 */
static void test_regression_stale_compression(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	char names[18][64];
	const char *ptrs[18];
	uint8_t one[18], none[18];
	for (unsigned k = 0; k < 18; k++) {
		snprintf(names[k], sizeof(names[k]), "g%02u.%s", k,
		         k < 9 ? "first-group-label" : "second-group-label");
		ptrs[k] = names[k];
		one[k] = 1;
		none[k] = 0;
	}
	for (uint16_t size = 700; size <= 1100; size++) {
		for (uint64_t seed = 1; seed <= 4; seed++) {
			gen_named(sc, "t.test.", ptrs, one, none, 18, size, MXP_ROT_ORDER, seed,
			          "stale-compression", NULL, false);
			run_case(fx);
		}
	}
	print_stats("stale-compression", &fx->st);
	assert_true(fx->st.glue_cut > 0);
}

/*
 * A reordered set can take more room than the zone's order (knotd compresses
 * against the last name written): an answer that just fit no longer does.
 * rewrite_mx_answer() then reports ESPACE, with TC over UDP, and what is
 * left must still be a well-formed message.
 */
static void test_rewrite_espace(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	static const char *names[] = {
		"a.first-group-label", "b.first-group-label",
		"c.second-group-label", "d.second-group-label",
	};
	static const uint8_t none[] = { 0, 0, 0, 0 };
	for (uint16_t size = 140; size <= 190; size++) {
		for (int udp = 0; udp <= 1; udp++) {
			for (uint64_t seed = 1; seed <= 16; seed++) {
				gen_named(sc, "t.test.", names, none, none, 4, size, MXP_ROT_ORDER, seed,
				          "espace", NULL, false);
				sc->udp = udp;
				run_case(fx);
			}
		}
	}
	print_stats("espace", &fx->st);
	assert_true(fx->st.espace > 0);
	assert_true(fx->st.full > fx->st.espace);
}

/*
 * Regression: with a QNAME in mixed case (DNS 0x20, e.g. unbound
 * use-caps-for-id) a full rewrite used to write the MX owner, and a CNAME's
 * owner, uncompressed: rewrite_mx_answer() took owners from the wire (the
 * query's case) and libknot's compressor only matches names in lower case
 * (label_is_equal() lowercases the wire side only). The answer grew by about
 * the QNAME's length (twice with a CNAME): TC or lost glue where knotd's
 * answer fits. Owners are now lowercased before they are written again.
 */
static void test_mixed_case_qname(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	static const char *names[] = { "mx1", "mx2", "mx3" };
	static const uint8_t one[] = { 1, 1, 1 };
	static const struct { const char *qname; bool cname; } q[] = {
		{ "example.com.", false }, { "ExAmPlE.CoM.", false },
		{ "www.example.com.", true }, { "WwW.ExAmPlE.cOm.", true },
	};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		gen_named(sc, "example.com.", names, one, one, 3, 1232, MXP_ROT_NONE, 1,
		          "mixed-case", q[i].qname, q[i].cname);
		sc->ex[0].state = MXP_STATE_DOWN;  /* left out: a full rewrite */
		sc->strict_parity = true;
		run_case(fx);
	}
	print_stats("mixed-case", &fx->st);
	assert_int_equal(fx->st.full, 4);
}

/*
 * Regression: rewrite_mx_answer() used to end the additional section at the
 * first glue rrset that did not fit, but knotd 3.2 put_additional() only
 * ends that exchanger's A/AAAA and goes on with the next exchanger's glue.
 * When a reordered answer had grown, a large glue rrset (3 A) no longer fit
 * and the smaller ones after it, which would, were dropped. The rewrite now
 * skips the rest of that exchanger and goes on, as knotd does.
 */
static void test_glue_after_a_cut(void **state)
{
	fx_t *fx = *state;
	scenario_t *sc = &fx->sc;
	static const char *names[] = {
		"a.first-group-label", "b.first-group-label",
		"c.second-group-label", "d.second-group-label",
	};
	static const uint8_t n_a[] = { 3, 3, 3, 1 }, none[] = { 0, 0, 0, 0 };
	for (uint16_t size = 290; size <= 340; size++) {
		for (uint64_t seed = 1; seed <= 16; seed++) {
			gen_named(sc, "t.test.", names, n_a, none, 4, size, MXP_ROT_ORDER, seed,
			          "glue-after-cut", NULL, false);
			sc->strict_parity = true;
			run_case(fx);
		}
	}
	print_stats("glue-after-cut", &fx->st);
	assert_true(fx->st.glue_cut > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_responses, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_regression_order_glue_overflow, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(test_regression_three_a, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_regression_stale_compression, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_espace, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mixed_case_qname, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_glue_after_a_cut, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
