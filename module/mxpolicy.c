/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file mxpolicy.c
 * \brief knotd glue of mod-mxpolicy: schema, load/unload, the query hook.
 *
 * The policy itself lives in policy.c, the packet surgery in rewrite.c;
 * this file only translates between knotd and those two.
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <knot/module.h>

#include "conf.h"
#include "control.h"
#include "policy.h"
#include "registry.h"
#include "rewrite.h"
#include "rng.h"
#include "seen.h"
#include "setcache.h"
#include "sigcache.h"
#include "signer.h"
#include "rrsign.h"
#include "txtclass.h"

#define MOD_ROTATION       "\x08""rotation"
#define MOD_WEIGHT         "\x06""weight"
#define MOD_DEFAULT_WEIGHT "\x0e""default-weight"
#define MOD_STICKY         "\x06""sticky"
#define MOD_STICKY_KEY     "\x0a""sticky-key"
#define MOD_TTL_MIN        "\x07""ttl-min"
#define MOD_TTL_MAX        "\x07""ttl-max"
#define MOD_TTL_DEGRADED   "\x0c""ttl-degraded"
#define MOD_TXT            "\x03""txt"
#define MOD_ALL_DOWN       "\x08""all-down"
#define MOD_TIER_FAILOVER  "\x0d""tier-failover"
#define MOD_BYPASS         "\x06""bypass"
#define MOD_CONTROL_SOCKET "\x0e""control-socket"
#define MOD_STATE_FILE     "\x0a""state-file"
#define MOD_SIGN           "\x04""sign"
#define MOD_SIGN_RATE      "\x09""sign-rate"
#define MOD_SIGN_CACHE     "\x0a""sign-cache"

#define MOD_SECTION        "\x0c""mod-mxpolicy"
/*! Reserved id of the entry that holds the server-wide items. */
#define SERVER_ID          "server"

typedef enum {
	TXT_EMAIL = 0,
	TXT_ALL,
	TXT_NONE,
} txt_mode_t;

static const knot_lookup_t rotation_opts[] = {
	{ MXP_ROT_PREFERENCE, "preference" },
	{ MXP_ROT_ORDER,      "order" },
	{ MXP_ROT_NONE,       "none" },
	{ 0, NULL }
};

static const knot_lookup_t txt_opts[] = {
	{ TXT_EMAIL, "email" },
	{ TXT_ALL,   "all" },
	{ TXT_NONE,  "none" },
	{ 0, NULL }
};

static const knot_lookup_t all_down_opts[] = {
	{ MXP_ALLDOWN_SERVE_ALL, "serve-all" },
	{ MXP_ALLDOWN_SERVFAIL,  "servfail" },
	{ 0, NULL }
};

/* Error text must outlive the check callback; checks run one at a time. */
static _Thread_local char check_err[512];

static int check_weight(knotd_conf_check_args_t *args)
{
	mxp_weight_entry_t entry;
	int ret = conf_parse_weight((const char *)args->data, &entry,
	                            check_err, sizeof(check_err));
	if (ret != KNOT_EOK) {
		args->err_str = check_err;
	}
	return ret;
}

const yp_item_t mxpolicy_conf[] = {
	{ MOD_ROTATION,       YP_TOPT,  YP_VOPT = { rotation_opts, MXP_ROT_PREFERENCE } },
	{ MOD_WEIGHT,         YP_TSTR,  YP_VNONE, YP_FMULTI, { check_weight } },
	{ MOD_DEFAULT_WEIGHT, YP_TINT,  YP_VINT = { 1, 65535, 1 } },
	{ MOD_STICKY,         YP_TBOOL, YP_VNONE },
	{ MOD_STICKY_KEY,     YP_TSTR,  YP_VNONE },
	{ MOD_TTL_MIN,        YP_TINT,  YP_VINT = { 0, INT32_MAX, 0, YP_STIME } },
	{ MOD_TTL_MAX,        YP_TINT,  YP_VINT = { 0, INT32_MAX, 0, YP_STIME } },
	{ MOD_TTL_DEGRADED,   YP_TINT,  YP_VINT = { 0, INT32_MAX, 60, YP_STIME } },
	{ MOD_TXT,            YP_TOPT,  YP_VOPT = { txt_opts, TXT_EMAIL } },
	{ MOD_ALL_DOWN,       YP_TOPT,  YP_VOPT = { all_down_opts, MXP_ALLDOWN_SERVE_ALL } },
	{ MOD_TIER_FAILOVER,  YP_TBOOL, YP_VNONE },
	{ MOD_BYPASS,         YP_TNET,  YP_VNONE, YP_FMULTI },
	{ MOD_CONTROL_SOCKET, YP_TSTR,  YP_VNONE },
	{ MOD_STATE_FILE,     YP_TSTR,  YP_VNONE },
	{ MOD_SIGN,           YP_TBOOL, YP_VBOOL = { true } },
	{ MOD_SIGN_RATE,      YP_TINT,  YP_VINT = { 1, 100000, 200 } },
	{ MOD_SIGN_CACHE,     YP_TINT,  YP_VINT = { 16, 10000000, 16384 } },
	{ NULL }
};

/* Whole-entry checks; also run by load() so both reject the same things. */
static int check_entry(knotd_conf_t weights, uint32_t ttl_min, uint32_t ttl_max,
                       char *err, size_t err_len)
{
	int ret = conf_check_ttl(ttl_min, ttl_max, err, err_len);
	if (ret != KNOT_EOK) {
		return ret;
	}

	mxp_weight_entry_t *seen = calloc(weights.count ? weights.count : 1, sizeof(*seen));
	if (seen == NULL) {
		snprintf(err, err_len, "out of memory");
		return KNOT_ENOMEM;
	}
	for (size_t i = 0; i < weights.count && ret == KNOT_EOK; i++) {
		ret = conf_parse_weight(weights.multi[i].string, &seen[i], err, err_len);
		if (ret == KNOT_EOK && conf_weight_find(seen, i, seen[i].name) >= 0) {
			snprintf(err, err_len, "duplicate weight for exchanger in '%s'",
			         weights.multi[i].string);
			ret = KNOT_EINVAL;
		}
	}
	free(seen);
	return ret;
}

static bool is_server_id(const uint8_t *id, size_t len)
{
	/* String ids come with their terminating NUL. */
	size_t n = strlen(SERVER_ID);
	return (len == n || (len == n + 1 && id[n] == '\0')) && memcmp(id, SERVER_ID, n) == 0;
}

static int mxpolicy_conf_check(knotd_conf_check_args_t *args)
{
	if (!is_server_id(args->id, args->id_len)) {
		static const char *server_items[] = { MOD_CONTROL_SOCKET, MOD_STATE_FILE,
		                                      MOD_SIGN_RATE, MOD_SIGN_CACHE };
		for (size_t i = 0; i < sizeof(server_items) / sizeof(*server_items); i++) {
			knotd_conf_t val = knotd_conf_check_item(args, (const yp_name_t *)server_items[i]);
			if (val.count > 0) {
				snprintf(check_err, sizeof(check_err), "'%s' is server-wide, set it on "
				         "the entry with id '%s'", server_items[i] + 1, SERVER_ID);
				args->err_str = check_err;
				return KNOT_EINVAL;
			}
		}
	}

	knotd_conf_t weights = knotd_conf_check_item(args, MOD_WEIGHT);
	knotd_conf_t ttl_min = knotd_conf_check_item(args, MOD_TTL_MIN);
	knotd_conf_t ttl_max = knotd_conf_check_item(args, MOD_TTL_MAX);
	int ret = check_entry(weights, ttl_min.single.integer, ttl_max.single.integer,
	                      check_err, sizeof(check_err));
	knotd_conf_free(&weights);
	if (ret != KNOT_EOK) {
		args->err_str = check_err;
	}
	return ret;
}

enum {
	CTR_REWRITTEN = 0,
	CTR_LEFT_OUT,
	CTR_RENUMBERED,
	CTR_ALL_DOWN,
	CTR_TXT_TTL,
	CTR_SIGNED_LIMITED,
	CTR_ERRORS,
	CTR_SIGNED,       /*!< Indexed: SIGNED_HIT, SIGNED_MISS, then 1 + sig_cause_t. */
	CTR_TRUNCATED,
};

enum {
	SIGNED_HIT = 0,
	SIGNED_MISS,
	SIGNED_IDX_COUNT = 1 + SIG_CAUSES,
};

static char *signed_idx_str(uint32_t idx, uint32_t count)
{
	(void)count;
	if (idx == SIGNED_HIT) {
		return strdup("cache-hit");
	} else if (idx == SIGNED_MISS) {
		return strdup("cache-miss");
	} else if (idx < SIGNED_IDX_COUNT) {
		char name[64];
		snprintf(name, sizeof(name), "fallback-%s", sig_cause_names[idx - 1]);
		return strdup(name);
	}
	return NULL;
}

static const char *counter_names[] = {
	[CTR_REWRITTEN]      = "rewritten",
	[CTR_LEFT_OUT]       = "left-out",
	[CTR_RENUMBERED]     = "renumbered",
	[CTR_ALL_DOWN]       = "all-down",
	[CTR_TXT_TTL]        = "txt-ttl",
	[CTR_SIGNED_LIMITED] = "signed-limited",
	[CTR_ERRORS]         = "errors",
	[CTR_SIGNED]         = "signed-variant",
	[CTR_TRUNCATED]      = "truncated",
};

typedef struct {
	mxp_rotation_t rotation;
	mxp_alldown_t all_down;
	bool sticky;
	bool tier_failover;
	txt_mode_t txt;
	mxp_ttl_opts_t ttl;
	uint16_t default_weight;
	mxp_hash_key_t sticky_key;
	mxp_weight_entry_t *weights;
	size_t weight_count;
	uint64_t tag;          /*!< Never reused: keys this instance's set cache entries. */
	bool control;          /*!< Holds a reference on the control thread. */
	bool sign;             /*!< Re-sign changed MX sets for DO answers of signed zones. */
	bool signer;           /*!< Holds a reference on the signer thread. */
	knotd_conf_t bypass;
} mxpolicy_ctx_t;

/* Process-wide secrets: the default sticky key and the seed of the per-thread generators. */
static pthread_once_t secrets_once = PTHREAD_ONCE_INIT;
static bool secrets_ok;
static mxp_hash_key_t process_sticky_key;

static void secrets_init(void)
{
	uint8_t key[16];
	if (RAND_bytes(key, sizeof(key)) != 1) {
		return;
	}
	memcpy(&process_sticky_key.k0, key, 8);
	memcpy(&process_sticky_key.k1, key + 8, 8);
	secrets_ok = true;
}

/*! Direct-mapped memory of the signing contexts a worker handed over. */
#define HANDED_SLOTS 256

/*
 * Per worker thread state, shared by all instances and indexed by knotd's
 * thread id (as knotd's own counters are): no locks, no allocation and no
 * syscall on the query path. Allocated by the first load, kept while the
 * library is mapped (instances come and go with reloads).
 */
typedef struct {
	mxp_rng_t rng;
	setcache_t cache;
	mxp_plan_t plan;            /*!< The current answer's plan (too big for the stack). */
	sigkey_t keys[SIGNER_MAX_SIGS]; /*!< Lookup keys of the answer's RRSIGs (too big for the stack). */
	uint64_t handed[HANDED_SLOTS]; /*!< Signing contexts handed to the signer lately. */
	setcache_entry_t uncached;  /*!< Weights and states of a set too large to cache. */
	const knot_pkt_t *seen_pkt; /*!< Response the ADDITIONAL hook handled. */
	uint64_t seen_tag;          /*!< Instance that handled it. */
} __attribute__((aligned(64))) thread_slot_t;

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static thread_slot_t *thread_slots;
static unsigned thread_slot_count;
static atomic_uint_fast64_t instance_tags;

static setcache_t *worker_cache(unsigned worker)
{
	return &thread_slots[worker].cache;
}

static int thread_slots_init(knotd_mod_t *mod)
{
	unsigned threads = knotd_mod_threads(mod);
	int ret = KNOT_EOK;
	pthread_mutex_lock(&slots_lock);
	if (thread_slots == NULL && threads > 0) {
		thread_slot_t *slots = aligned_alloc(64, threads * sizeof(*slots));
		if (slots == NULL) {
			ret = KNOT_ENOMEM;
		}
		for (unsigned i = 0; ret == KNOT_EOK && i < threads; i++) {
			uint8_t seed[32];
			memset(&slots[i], 0, sizeof(slots[i]));
			if (RAND_bytes(seed, sizeof(seed)) != 1) {
				ret = KNOT_ERROR;
			}
			rng_seed(&slots[i].rng, seed);
		}
		if (ret == KNOT_EOK) {
			thread_slots = slots;
			thread_slot_count = threads;
			seen_set_source(worker_cache, threads);
		} else {
			free(slots);
		}
	} else if (threads > thread_slot_count) {
		/* knotd needs a restart to change its worker count; never expected. */
		knotd_mod_log(mod, LOG_WARNING, "worker count grew from %u to %u without a restart, "
		              "queries of the new workers are answered unmodified",
		              thread_slot_count, threads);
	}
	pthread_mutex_unlock(&slots_lock);
	return ret;
}

__attribute__((destructor))
static void thread_slots_free(void)
{
	free(thread_slots);
	thread_slots = NULL;
}

static uint16_t exchanger_weight(const mxpolicy_ctx_t *ctx, const knot_dname_t *name)
{
	int i = conf_weight_find(ctx->weights, ctx->weight_count, name);
	return i >= 0 ? ctx->weights[i].weight : ctx->default_weight;
}

/* Client network for sticky choice: ECS if present, else the source; /24 or /56 at most. */
static uint8_t sticky_prefix(const knotd_qdata_t *qdata, uint8_t *addr, uint16_t *family)
{
	uint8_t len;
	memset(addr, 0, 16);
	if (qdata->ecs != NULL && (qdata->ecs->family == KNOT_ADDR_FAMILY_IPV4 ||
	                           qdata->ecs->family == KNOT_ADDR_FAMILY_IPV6)) {
		bool v4 = qdata->ecs->family == KNOT_ADDR_FAMILY_IPV4;
		*family = v4 ? AF_INET : AF_INET6;
		len = qdata->ecs->source_len;
		if (len > (v4 ? 24 : 56)) {
			len = v4 ? 24 : 56;
		}
		memcpy(addr, qdata->ecs->address, v4 ? 4 : 16);
	} else {
		const struct sockaddr_storage *ss = qdata->params->remote;
		if (ss != NULL && ss->ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
			memcpy(addr, &s6->sin6_addr, 16);
			*family = AF_INET6;
			len = 56;
		} else if (ss != NULL && ss->ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
			memcpy(addr, &s4->sin_addr, 4);
			*family = AF_INET;
			len = 24;
		} else {
			*family = 0;
			return 0;
		}
	}
	for (unsigned bit = len; bit < 128; bit++) {
		addr[bit / 8] &= ~(0x80 >> (bit % 8));
	}
	return len;
}

static void sticky_hashes(const mxpolicy_ctx_t *ctx, knotd_qdata_t *qdata,
                          const knot_dname_t *owner, const knot_rdataset_t *rrs,
                          mxp_record_t *recs)
{
	uint8_t addr[16];
	uint16_t family;
	uint8_t len = sticky_prefix(qdata, addr, &family);
	if (qdata->ecs != NULL) {
		qdata->ecs->scope_len = len;  /* Resolvers cache the answer per keyed subnet. */
	}

	knot_dname_storage_t lower;
	mxp_hash_t base;
	hash_init(&base, &ctx->sticky_key);
	hash_update(&base, &family, sizeof(family));
	hash_update(&base, &len, sizeof(len));
	hash_update(&base, addr, sizeof(addr));
	knot_dname_copy_lower(lower, owner);
	hash_update(&base, lower, knot_dname_size(lower));

	knot_rdata_t *rd = rrs->rdata;
	for (uint16_t i = 0; i < rrs->count; i++, rd = knot_rdataset_next(rd)) {
		mxp_hash_t h = base;
		knot_dname_copy_lower(lower, rd->data + 2);
		hash_update(&h, lower, knot_dname_size(lower));
		recs[i].hash = hash_final(&h);
	}
}

/* The zone's DNSKEY set: empty for an unsigned zone. */
static knot_rrset_t zone_dnskeys(knotd_qdata_t *qdata)
{
	return knotd_qdata_zone_apex_rrset(qdata, KNOT_RRTYPE_DNSKEY);
}

static bool zone_signed(knotd_qdata_t *qdata)
{
	knot_rrset_t dnskeys = zone_dnskeys(qdata);
	return !knot_rrset_empty(&dnskeys);
}

static void process_txt(mxpolicy_ctx_t *ctx, knot_pkt_t *pkt, knotd_qdata_t *qdata,
                        knotd_mod_t *mod)
{
	const registry_snap_t *snap = registry_current();
	if (snap != NULL && snap->suspend.on) {
		return;
	}
	int idx = rewrite_find_answer(pkt, KNOT_RRTYPE_TXT);
	if (idx < 0) {
		return;
	}
	knot_rrset_t *rr = &pkt->rr[idx];
	if (ctx->txt == TXT_EMAIL) {
		knot_dname_storage_t owner;
		if (rewrite_wire_owner(pkt, idx, owner) != KNOT_EOK ||
		    txtclass_classify(owner, &rr->rrs) == MXP_TXT_OTHER) {
			return;
		}
	}

	bool is_signed = ctx->ttl.min > 0 && zone_signed(qdata);
	uint32_t ttl = policy_ttl(rr->ttl, &ctx->ttl, false, is_signed);
	if (ttl == rr->ttl) {
		return;
	}
	if (rewrite_set_ttl(pkt, idx, ttl) != KNOT_EOK ||
	    rewrite_set_rrsig_ttl(pkt, idx, ttl) != KNOT_EOK) {
		knotd_mod_stats_incr(mod, qdata->params->thread_id, CTR_ERRORS, 0, 1);
		return;
	}
	knotd_mod_stats_incr(mod, qdata->params->thread_id, CTR_TXT_TTL, 0, 1);
}

static void count_mx_answer(knotd_mod_t *mod, unsigned thr, const mxp_plan_t *plan)
{
	knotd_mod_stats_incr(mod, thr, CTR_REWRITTEN, 0, 1);
	if (plan->left_out > 0) {
		knotd_mod_stats_incr(mod, thr, CTR_LEFT_OUT, 0, plan->left_out);
	}
	if (plan->renumbered) {
		knotd_mod_stats_incr(mod, thr, CTR_RENUMBERED, 0, 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Signed zones: answers whose MX set changed carry a signature the signer
 * thread made with the zone's key (sigcache.h, signer.h). */

static void ensure_hashes(setcache_entry_t *known, const knot_rdataset_t *mx)
{
	if (known->hashed) {
		return;
	}
	knot_rdata_t *rd = mx->rdata;
	known->zone_recs = 0;
	for (uint16_t i = 0; i < mx->count; i++, rd = knot_rdataset_next(rd)) {
		known->name_hash[i] = sigcache_name_hash(rd->data + 2);
		known->zone_recs += sigcache_rec(known->name_hash[i], knot_wire_read_u16(rd->data));
	}
	known->hashed = true;
}

/*
 * Lookup keys for the zone's RRSIGs of the answer's MX set, without records
 * yet. Returns how many, or a negative cause (1 + sig_cause_t) if none can
 * be used.
 */
static int sig_keys_init(thread_slot_t *slot, const knot_pkt_t *pkt, int idx, int sig_idx)
{
	const knot_rrset_t *rrsig = &pkt->rr[sig_idx];
	if (rrsig->rrs.count == 0 || rrsig->rrs.count > SIGNER_MAX_SIGS) {
		return -(1 + SIG_FAIL_ALGORITHM);  /* More than an algorithm rollover's two. */
	}
	knot_rdata_t *rd = rrsig->rrs.rdata;
	for (uint16_t j = 0; j < rrsig->rrs.count; j++, rd = knot_rdataset_next(rd)) {
		int head_len = rrsign_head_len(rd->data, rd->len);
		if (head_len < 0 || sigcache_key_init(&slot->keys[j], pkt->rr[idx].owner, rd->data,
		                                      head_len) != KNOT_EOK) {
			return -(1 + SIG_FAIL_ERROR);
		}
	}
	return rrsig->rrs.count;
}

/*
 * Find the signed variant of the plan's set for every RRSIG of the MX set.
 * Returns SIGNED_HIT with sigs[] filled, SIGNED_MISS, or 1 + the cause of a
 * remembered failure.
 */
static int find_variant(thread_slot_t *slot, int nsigs, const setcache_entry_t *known,
                        const mxp_plan_t *plan, rewrite_sig_t *sigs)
{
	for (int j = 0; j < nsigs; j++) {
		sigkey_t *key = &slot->keys[j];
		for (uint16_t s = 0; s < plan->count; s++) {
			sigcache_key_add(key, sigcache_rec(known->name_hash[plan->slots[s].idx],
			                                   plan->slots[s].pref));
		}
		const sigvar_t *var = sigcache_find(key);
		if (var == NULL) {
			return SIGNED_MISS;
		}
		if (sigvar_cause(var) != SIG_OK) {
			return 1 + sigvar_cause(var);
		}
		sigs[j].head = key->head;
		sigs[j].head_len = key->head_len;
		sigs[j].sig = sigvar_sig(var, &sigs[j].sig_len);
	}
	return SIGNED_HIT;
}

/* Identity of a set's signing context: owner, the zone's RRSIG heads, records. */
static uint64_t context_memo(const thread_slot_t *slot, int nsigs,
                             const setcache_entry_t *known)
{
	uint64_t memo = known->zone_recs;
	for (int j = 0; j < nsigs; j++) {
		memo = memo * 0x9e3779b97f4a7c15ULL + slot->keys[j].hash;
	}
	return memo;
}

/*
 * Hand a set's signing context to the signer, once per context as far as
 * this worker remembers: the signer then keeps the set's variants signed
 * for every state.
 */
static void request_signing(mxpolicy_ctx_t *ctx, knotd_qdata_t *qdata, thread_slot_t *slot,
                            const knot_pkt_t *pkt, int idx, int nsigs,
                            const knot_rdataset_t *zone_mx, setcache_entry_t *known,
                            const knot_rrset_t *dnskeys)
{
	if (known == &slot->uncached) {
		return;  /* Too large to remember, too large to hand over. */
	}
	/*
	 * Per instance (a reload makes new ones), signer epoch (it forgot
	 * sets) and DNSKEY set (an algorithm rollover signs with a key before
	 * its DNSKEY is published: hand over again once it is).
	 */
	uint64_t memo = (context_memo(slot, nsigs, known) +
	                 (ctx->tag ^ (signer_epoch() << 32)) * 0xff51afd7ed558ccdULL +
	                 ((uintptr_t)dnskeys->rrs.rdata ^ dnskeys->rrs.size) *
	                 0xc4ceb9fe1a85ec53ULL) | 1;
	uint64_t *handed = &slot->handed[memo % HANDED_SLOTS];
	if (*handed == memo) {
		return;
	}
	signer_req_t *req = signer_claim(qdata->params->thread_id);
	if (req == NULL) {
		return;  /* Ring full: asked again with a later answer. */
	}

	const knot_dname_t *owner = pkt->rr[idx].owner;
	memcpy(req->owner, owner, knot_dname_size(owner));
	req->tag = ctx->tag;
	req->nsigs = nsigs;
	for (int j = 0; j < nsigs; j++) {
		const sigkey_t *key = &slot->keys[j];
		req->head_len[j] = key->head_len;
		memcpy(req->head[j], key->head, key->head_len);
		/* The key that made the zone's signature: algorithm and key tag. */
		uint8_t alg = key->head[2];
		uint16_t tag = knot_wire_read_u16(key->head + 16);
		req->dnskey_len[j] = 0;
		knot_rdata_t *dk = dnskeys->rrs.rdata;
		for (uint16_t k = 0; k < dnskeys->rrs.count; k++, dk = knot_rdataset_next(dk)) {
			if (dk->len >= 4 && dk->len <= SIGNER_MAX_DNSKEY && dk->data[3] == alg &&
			    rrsign_dnskey_tag(dk->data, dk->len) == tag) {
				memcpy(req->dnskey[j], dk->data, dk->len);
				req->dnskey_len[j] = dk->len;
				break;
			}
		}
	}
	req->count = zone_mx->count;
	req->size = zone_mx->size;
	memcpy(req->rdata, zone_mx->rdata, zone_mx->size);
	knot_rdata_t *rd = zone_mx->rdata;
	for (uint16_t i = 0; i < zone_mx->count; i++, rd = knot_rdataset_next(rd)) {
		req->weight[i] = exchanger_weight(ctx, rd->data + 2);
	}
	signer_commit(qdata->params->thread_id);
	*handed = memo;
}

/* Put the zone's own signatures back (an in-place patch failed after the swap). */
static void restore_zone_sigs(knot_pkt_t *pkt, int sig_idx, int nsigs, const thread_slot_t *slot)
{
	rewrite_sig_t orig[SIGNER_MAX_SIGS];
	knot_rdata_t *rd = pkt->rr[sig_idx].rrs.rdata;
	for (int j = 0; j < nsigs; j++, rd = knot_rdataset_next(rd)) {
		orig[j].head = rd->data;
		orig[j].head_len = slot->keys[j].head_len;
		orig[j].sig = rd->data + orig[j].head_len;
		orig[j].sig_len = rd->len - orig[j].head_len;
	}
	(void)rewrite_rrsig_sigs(pkt, sig_idx, orig, nsigs, true);
}

/* Where a hook runs: the rewrite it may do depends on what knotd has written. */
typedef enum {
	AT_ADDITIONAL, /*!< Every section written, OPT and TSIG not yet: anything goes. */
	AT_END,        /*!< Response finished: only same-size patches, never under TSIG. */
} hook_stage_t;

/*
 * Plan the MX set of the answer and apply it. Plans that leave nothing out
 * and whose order is carried by preferences (senders sort by preference)
 * are patched in place; removals and wire reordering rewrite the sections.
 */
static knotd_in_state_t process_mx(knotd_in_state_t state, mxpolicy_ctx_t *ctx,
                                   knot_pkt_t *pkt, knotd_qdata_t *qdata,
                                   knotd_mod_t *mod, thread_slot_t *slot,
                                   hook_stage_t stage)
{
	int idx = rewrite_find_answer(pkt, KNOT_RRTYPE_MX);
	if (idx < 0) {
		return state;
	}
	knot_rrset_t *rr = &pkt->rr[idx];
	const knot_rdataset_t zone_mx = rr->rrs;
	const unsigned thr = qdata->params->thread_id;
	if (zone_mx.count == 0 || zone_mx.count > MXP_MAX_RECORDS) {
		return state;
	}

	/* knotd holds the RCU read lock for the whole query: the snapshot stays valid. */
	const registry_snap_t *snap = registry_current();
	if (snap != NULL && snap->suspend.on) {
		return state;  /* Suspended by the operator: every answer as the zone has it. */
	}
	uint64_t generation = snap != NULL ? snap->generation : 0;

	/*
	 * Weights and states depend only on the configuration, the registry
	 * snapshot and the rdata: resolved once, then cached per thread.
	 */
	setcache_entry_t *known = setcache_get(&slot->cache, ctx->tag, generation, &zone_mx);
	if (known == NULL) {
		setcache_entry_t *fill = setcache_put(&slot->cache, ctx->tag, generation, &zone_mx);
		if (fill == NULL) {
			fill = &slot->uncached;  /* Too large to cache: resolved, not remembered. */
			fill->hashed = false;
		}
		knot_rdata_t *rd = zone_mx.rdata;
		for (uint16_t i = 0; i < zone_mx.count; i++, rd = knot_rdataset_next(rd)) {
			const mxp_exchanger_t *ex = registry_find(snap, rd->data + 2);
			fill->weight[i] = (ex != NULL && ex->weight != MXP_WEIGHT_NONE) ?
			                  ex->weight : exchanger_weight(ctx, rd->data + 2);
			fill->state[i] = registry_effective(ex);
		}
		known = fill;
	}

	mxp_record_t recs[MXP_MAX_RECORDS];
	knot_rdata_t *rd = zone_mx.rdata;
	for (uint16_t i = 0; i < zone_mx.count; i++, rd = knot_rdataset_next(rd)) {
		recs[i].pref = knot_wire_read_u16(rd->data);
		recs[i].null_mx = (rd->data[2] == 0);
		recs[i].weight = known->weight[i];
		recs[i].state = known->state[i];
		recs[i].hash = 0;
	}

	/* Signing matters only with DO (signature validity) or ttl-min (never raise). */
	bool with_do = knot_pkt_has_dnssec(qdata->query);
	knot_rrset_t dnskeys = { 0 };
	if (with_do || ctx->ttl.min > 0) {
		dnskeys = zone_dnskeys(qdata);
	}
	bool is_signed = !knot_rrset_empty(&dnskeys);
	bool signed_do = is_signed && with_do;
	/* A changed set goes out in a signed DO answer only with a signature made for it. */
	int sig_idx = -1;
	if (signed_do && ctx->signer) {
		sig_idx = rewrite_find_rrsig(pkt, idx);
	}
	mxp_opts_t opts = {
		.rotation = ctx->rotation,
		.all_down = ctx->all_down,
		.sticky = ctx->sticky,
		.tier_failover = ctx->tier_failover,
		.may_change_set = !signed_do || sig_idx >= 0,
	};
	if (ctx->sticky && stage == AT_END && qdata->ecs != NULL) {
		return state;  /* OPT is written: a choice keyed per subnet could not say so. */
	}
	if (ctx->sticky) {
		knot_dname_storage_t owner;
		if (rewrite_wire_owner(pkt, idx, owner) != KNOT_EOK) {
			return state;
		}
		sticky_hashes(ctx, qdata, owner, &zone_mx, recs);
	}

	mxp_plan_t *plan = &slot->plan;
	policy_plan(recs, zone_mx.count, &opts, &slot->rng, plan);

	if (plan->null_mx) {
		return state;
	}

	rewrite_sig_t sigs[SIGNER_MAX_SIGS];
	bool resign = false;
	int nsigs = 0;
	if (sig_idx >= 0) {
		ensure_hashes(known, &zone_mx);
		nsigs = sig_keys_init(slot, pkt, idx, sig_idx);
		if (nsigs > 0) {
			request_signing(ctx, qdata, slot, pkt, idx, nsigs, &zone_mx, known, &dnskeys);
		}
		if (plan->kind == MXP_PLAN_REWRITE && (plan->left_out > 0 || plan->renumbered)) {
			int found = nsigs > 0 ? find_variant(slot, nsigs, known, plan, sigs) : -nsigs;
			knotd_mod_stats_incr(mod, thr, CTR_SIGNED, found, 1);
			resign = found == SIGNED_HIT;
			if (!resign) {
				/* Not signed (yet): the zone's set, reordered at most, this time. */
				opts.may_change_set = false;
				policy_plan(recs, zone_mx.count, &opts, &slot->rng, plan);
			}
		}
	}
	bool in_place = plan->kind == MXP_PLAN_UNCHANGED ||
	                (plan->left_out == 0 && (!plan->reordered ||
	                 (plan->renumbered && ctx->rotation != MXP_ROT_ORDER)));
	if (stage == AT_END) {
		/*
		 * Too late for anything but a patch of the same size. Preferences
		 * still carry drains and winners ('order' mode loses its wire
		 * order). A record that must leave the answer, or a SERVFAIL, cannot
		 * be had here: over UDP, TC sends the client to TCP, where the
		 * answer has room for the whole policy.
		 */
		if (plan->kind == MXP_PLAN_REWRITE && plan->left_out == 0) {
			in_place = true;
		}
		if (!in_place || plan->kind == MXP_PLAN_SERVFAIL) {
			if (qdata->params->proto == KNOTD_QUERY_PROTO_UDP) {
				knot_wire_set_tc(pkt->wire);
				knotd_mod_stats_incr(mod, thr, CTR_TRUNCATED, 0, 1);
			}
			return state;
		}
	}
	if (plan->all_down) {
		knotd_mod_stats_incr(mod, thr, CTR_ALL_DOWN, 0, 1);
	}
	if (known != &slot->uncached) {
		setcache_count(known, plan);  /* For `status`: answers, first places. */
	}
	if (plan->kind == MXP_PLAN_SERVFAIL) {
		qdata->rcode = KNOT_RCODE_SERVFAIL;
		return KNOTD_IN_STATE_ERROR;
	}
	if (plan->limited) {
		knotd_mod_stats_incr(mod, thr, CTR_SIGNED_LIMITED, 0, 1);
	}

	uint32_t ttl = policy_ttl(rr->ttl, &ctx->ttl, plan->degraded, is_signed);
	bool changed = plan->kind != MXP_PLAN_UNCHANGED || ttl != rr->ttl;
	int ret = KNOT_EAGAIN;
	/* New signatures first: all or nothing; another length needs a rewrite. */
	bool swapped = in_place && resign &&
	               rewrite_rrsig_sigs(pkt, sig_idx, sigs, nsigs, true) == KNOT_EOK;
	if (resign && !swapped) {
		in_place = false;
	}
	if (in_place) {
		/* Glue never outlives the MX set, even when the set itself is unchanged. */
		ret = changed ? rewrite_mx_in_place(pkt, idx, plan, ttl, true, sig_idx) :
		                rewrite_cap_glue_ttl(pkt, ttl);
		if (ret == KNOT_EMALF) {
			if (swapped) {
				restore_zone_sigs(pkt, sig_idx, nsigs, slot);
			}
			knotd_mod_stats_incr(mod, thr, CTR_ERRORS, 0, 1);
			return state;  /* Nothing was changed: the zone's answer is valid. */
		}
	}
	if (stage == AT_END && ret != KNOT_EOK) {
		/* No patch applies and a finished response cannot be rewritten. */
		if (swapped) {
			restore_zone_sigs(pkt, sig_idx, nsigs, slot);
		}
		return state;
	}
	if (ret == KNOT_EAGAIN && stage == AT_ADDITIONAL) {
		knot_rdataset_t new_mx;
		ret = rewrite_build_mx(&new_mx, &zone_mx, plan, qdata->mm);
		knot_rdataset_t new_sigs;
		if (ret == KNOT_EOK && resign) {
			ret = rewrite_build_rrsig(&new_sigs, &pkt->rr[sig_idx].rrs, sigs, qdata->mm);
		}
		if (ret == KNOT_EOK) {
			rewrite_mx_t rw = {
				.mx_idx = idx,
				.mx = &new_mx,
				.mx_rrsig = resign ? &new_sigs : NULL,
				.ttl = ttl,
				.zone_mx = &zone_mx,
			};
			ret = rewrite_mx_answer(pkt, &rw, qdata->mm);
		}
		if (ret == KNOT_ESPACE) {
			return KNOTD_IN_STATE_TRUNC;
		}
	}

	if (ret != KNOT_EOK) {
		/* The sections may be partly rewritten: no valid answer is left to send. */
		knotd_mod_stats_incr(mod, thr, CTR_ERRORS, 0, 1);
		qdata->rcode = KNOT_RCODE_SERVFAIL;
		return KNOTD_IN_STATE_ERROR;
	}
	if (changed) {
		count_mx_answer(mod, thr, plan);
	}
	return state;
}

/* Is this a query the module acts on? Cheap checks first: every query of the zone comes here. */
static thread_slot_t *query_slot(knotd_qdata_t *qdata, mxpolicy_ctx_t *ctx)
{
	unsigned thr = qdata->params->thread_id;
	if (qdata->rcode != KNOT_RCODE_NOERROR || thr >= thread_slot_count) {
		return NULL;
	}
	if (ctx->bypass.count > 0 &&
	    knotd_conf_addr_range_match(&ctx->bypass, qdata->params->remote)) {
		return NULL;
	}
	return &thread_slots[thr];
}

static knotd_in_state_t mxpolicy_additional(knotd_in_state_t state, knot_pkt_t *pkt,
                                            knotd_qdata_t *qdata, knotd_mod_t *mod)
{
	uint16_t qtype = knot_pkt_qtype(qdata->query);
	if (qtype != KNOT_RRTYPE_MX && qtype != KNOT_RRTYPE_TXT) {
		return state;
	}
	mxpolicy_ctx_t *ctx = knotd_mod_ctx(mod);
	thread_slot_t *slot = query_slot(qdata, ctx);
	if (slot == NULL) {
		return state;
	}

	if (qtype == KNOT_RRTYPE_TXT) {
		if (ctx->txt != TXT_NONE) {
			process_txt(ctx, pkt, qdata, mod);
		}
		return state;
	}
	/* Tell the END hook that this response has been seen. */
	slot->seen_pkt = pkt;
	slot->seen_tag = ctx->tag;
	return process_mx(state, ctx, pkt, qdata, mod, slot, AT_ADDITIONAL);
}

/*
 * END stage: knotd ends a response early, without TC and without running
 * the later stages, when the last exchanger's optional glue does not fit. Such an answer is
 * still valid; apply what a patch of the same size can (preferences, TTLs),
 * unless a TSIG has signed the response by now.
 */
static knotd_state_t mxpolicy_end(knotd_state_t state, knot_pkt_t *pkt,
                                  knotd_qdata_t *qdata, knotd_mod_t *mod)
{
	if (knot_pkt_qtype(qdata->query) != KNOT_RRTYPE_MX) {
		return state;
	}
	unsigned thr = qdata->params->thread_id;
	if (thr >= thread_slot_count) {
		return state;
	}
	thread_slot_t *slot = &thread_slots[thr];
	mxpolicy_ctx_t *ctx = knotd_mod_ctx(mod);
	bool seen = slot->seen_pkt == pkt && slot->seen_tag == ctx->tag;
	slot->seen_pkt = NULL;
	if (seen || query_slot(qdata, ctx) == NULL ||
	    state != KNOTD_STATE_DONE || knot_wire_get_tc(pkt->wire) ||
	    knot_pkt_has_tsig(qdata->query) ||
	    knot_wire_get_rcode(pkt->wire) != KNOT_RCODE_NOERROR) {
		return state;
	}
	(void)process_mx(KNOTD_IN_STATE_HIT, ctx, pkt, qdata, mod, slot, AT_END);
	return state;
}

static void ctx_free(mxpolicy_ctx_t *ctx)
{
	if (ctx == NULL) {
		return;
	}
	if (ctx->signer) {
		signer_profile_remove(ctx->tag);
		signer_release();
	}
	if (ctx->control) {
		seen_instance_remove(ctx->tag);
		control_release();
	}
	knotd_conf_free(&ctx->bypass);
	free(ctx->weights);
	free(ctx);
}

static int load_sticky_key(knotd_mod_t *mod, mxpolicy_ctx_t *ctx)
{
	knotd_conf_t conf = knotd_conf_mod(mod, MOD_STICKY_KEY);
	if (conf.count == 0) {
		ctx->sticky_key = process_sticky_key;
		return KNOT_EOK;
	}

	/* An operator key makes sticky choices the same across restarts and servers. */
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;
	const char *key = conf.single.string;
	if (EVP_Digest(key, strlen(key), digest, &digest_len, EVP_sha256(), NULL) != 1 ||
	    digest_len < 16) {
		knotd_mod_log(mod, LOG_ERR, "failed to derive the sticky key");
		return KNOT_ERROR;
	}
	memcpy(&ctx->sticky_key.k0, digest, 8);
	memcpy(&ctx->sticky_key.k1, digest + 8, 8);
	return KNOT_EOK;
}

static int load_weights(knotd_mod_t *mod, mxpolicy_ctx_t *ctx)
{
	knotd_conf_t conf = knotd_conf_mod(mod, MOD_WEIGHT);
	char err[512];
	int ret = check_entry(conf, ctx->ttl.min, ctx->ttl.max, err, sizeof(err));
	if (ret != KNOT_EOK) {
		knotd_mod_log(mod, LOG_ERR, "%s", err);
		knotd_conf_free(&conf);
		return ret;
	}

	ctx->weight_count = conf.count;
	ctx->weights = calloc(conf.count ? conf.count : 1, sizeof(*ctx->weights));
	if (ctx->weights == NULL) {
		knotd_conf_free(&conf);
		return KNOT_ENOMEM;
	}
	for (size_t i = 0; i < conf.count; i++) {
		(void)conf_parse_weight(conf.multi[i].string, &ctx->weights[i], err, sizeof(err));
	}
	knotd_conf_free(&conf);
	return KNOT_EOK;
}

/* A server-wide path: the 'server' entry's item, else a file in a knotd directory. */
static void server_path(knotd_mod_t *mod, const yp_name_t *item, const yp_name_t *dir_section,
                        const yp_name_t *dir_item, const char *file, char *out, size_t len)
{
	knotd_conf_t id = { .single.data = (const uint8_t *)SERVER_ID,
	                    .single.data_len = strlen(SERVER_ID) + 1 };
	knotd_conf_t val = knotd_conf(mod, MOD_SECTION, item, &id);
	if (val.count > 0 && val.single.string != NULL && *val.single.string != '\0') {
		snprintf(out, len, "%s", val.single.string);
		return;
	}
	knotd_conf_t dir = knotd_conf(mod, dir_section, dir_item, NULL);
	const char *base = (dir.count > 0 || dir.single.string != NULL) ? dir.single.string : NULL;
	snprintf(out, len, "%s/%s", base != NULL ? base : ".", file);
}

static int start_control(knotd_mod_t *mod)
{
	control_conf_t conf;
	server_path(mod, MOD_CONTROL_SOCKET, (const yp_name_t *)"\x06""server",
	            (const yp_name_t *)"\x06""rundir", "mxpolicy.sock",
	            conf.socket_path, sizeof(conf.socket_path));
	server_path(mod, MOD_STATE_FILE, (const yp_name_t *)"\x08""database",
	            (const yp_name_t *)"\x07""storage", "mxpolicy.state",
	            conf.state_path, sizeof(conf.state_path));

	if (!control_same_conf(&conf)) {
		knotd_mod_log(mod, LOG_WARNING, "control-socket or state-file changed: "
		              "takes effect after a knotd restart");
	}
	char err[512] = "";
	int ret = control_acquire(&conf, err, sizeof(err));
	if (ret != KNOT_EOK) {
		knotd_mod_log(mod, LOG_ERR, "failed to start the control socket (%s)", err);
	}
	return ret;
}

/* A path as Knot resolves it: relative ones under 'base'. */
static void resolve_path(const char *path, const char *base, char *out, size_t len)
{
	int n = (path[0] == '/') ? snprintf(out, len, "%s", path) :
	                           snprintf(out, len, "%s/%s", base, path);
	if (n < 0 || (size_t)n >= len) {
		out[0] = '\0';  /* Too long: no keystore, signing falls back. */
	}
}

static const char *conf_string(knotd_conf_t val, const char *dflt)
{
	return (val.single.string != NULL && *val.single.string != '\0') ? val.single.string : dflt;
}

/*
 * The zone's keystore as knotd finds it: the zone's dnssec-policy (or the
 * default one), its keystore (or the default: PEM files in "keys"), a
 * relative directory under the KASP DB directory, itself under storage.
 */
static void zone_keystore(knotd_mod_t *mod, char *out, size_t len, sig_cause_t *problem)
{
	const yp_name_t *database = (const yp_name_t *)"\x08""database";
	char storage[PATH_MAX], kasp[PATH_MAX];
	snprintf(storage, sizeof(storage), "%s",
	         conf_string(knotd_conf(mod, database, (const yp_name_t *)"\x07""storage", NULL),
	                     "/var/lib/knot"));
	resolve_path(conf_string(knotd_conf(mod, database, (const yp_name_t *)"\x07""kasp-db",
	                                    NULL), "keys"), storage, kasp, sizeof(kasp));

	const char *config = "keys";
	unsigned backend = 1;  /* pem */
	knotd_conf_t policy = knotd_conf_zone(mod, (const yp_name_t *)"\x0d""dnssec-policy",
	                                      knotd_mod_zone(mod));
	if (policy.count > 0 && policy.single.data != NULL) {
		knotd_conf_t ks = knotd_conf(mod, (const yp_name_t *)"\x06""policy",
		                             (const yp_name_t *)"\x08""keystore", &policy);
		if (ks.count > 0 && ks.single.data != NULL) {
			const yp_name_t *section = (const yp_name_t *)"\x08""keystore";
			knotd_conf_t be = knotd_conf(mod, section, (const yp_name_t *)"\x07""backend", &ks);
			if (be.count > 0) {
				backend = be.single.option;
			}
			config = conf_string(knotd_conf(mod, section, (const yp_name_t *)"\x06""config",
			                                &ks), "keys");
		}
	}
	*problem = (backend == 1) ? SIG_OK : SIG_FAIL_KEYSTORE;
	if (backend == 1) {
		resolve_path(config, kasp, out, len);
	} else {
		snprintf(out, len, "%s", config);
	}
}

static void start_signer(knotd_mod_t *mod, mxpolicy_ctx_t *ctx)
{
	knotd_conf_t id = { .single.data = (const uint8_t *)SERVER_ID,
	                    .single.data_len = strlen(SERVER_ID) + 1 };
	knotd_conf_t rate = knotd_conf(mod, MOD_SECTION, MOD_SIGN_RATE, &id);
	knotd_conf_t cache = knotd_conf(mod, MOD_SECTION, MOD_SIGN_CACHE, &id);
	int ret = signer_acquire(knotd_mod_threads(mod),
	                         rate.count > 0 ? rate.single.integer : 200,
	                         cache.count > 0 ? cache.single.integer : 16384);
	if (ret != KNOT_EOK) {
		knotd_mod_log(mod, LOG_ERR, "failed to start the signer (%s), DO answers of signed "
		              "zones keep the zone's MX sets", knot_strerror(ret));
		return;
	}
	signer_profile_t prof = {
		.tag = ctx->tag,
		.opts = {
			.rotation = ctx->rotation,
			.all_down = ctx->all_down,
			.sticky = ctx->sticky,
			.tier_failover = ctx->tier_failover,
			.may_change_set = true,
		},
	};
	const knot_dname_t *zone = knotd_mod_zone(mod);
	if (zone != NULL) {
		memcpy(prof.zone, zone, knot_dname_size(zone));
	}
	zone_keystore(mod, prof.keystore, sizeof(prof.keystore), &prof.keystore_problem);
	if (signer_profile_add(&prof) != KNOT_EOK) {
		signer_release();
		knotd_mod_log(mod, LOG_ERR, "failed to register with the signer, DO answers of "
		              "signed zones keep the zone's MX sets");
		return;
	}
	ctx->signer = true;
}

int mxpolicy_load(knotd_mod_t *mod)
{
	pthread_once(&secrets_once, secrets_init);
	if (!secrets_ok) {
		knotd_mod_log(mod, LOG_ERR, "failed to get random bytes from OpenSSL, "
		              "module NOT active for this zone");
		return KNOT_ERROR;
	}

	int ret = thread_slots_init(mod);
	if (ret != KNOT_EOK) {
		knotd_mod_log(mod, LOG_ERR, "failed to set up worker state (%s), "
		              "module NOT active for this zone", knot_strerror(ret));
		return ret;
	}

	mxpolicy_ctx_t *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		return KNOT_ENOMEM;
	}
	ctx->tag = atomic_fetch_add(&instance_tags, 1) + 1;

	ctx->rotation = knotd_conf_mod(mod, MOD_ROTATION).single.option;
	ctx->all_down = knotd_conf_mod(mod, MOD_ALL_DOWN).single.option;
	ctx->txt = knotd_conf_mod(mod, MOD_TXT).single.option;
	ctx->sticky = knotd_conf_mod(mod, MOD_STICKY).single.boolean;
	ctx->tier_failover = knotd_conf_mod(mod, MOD_TIER_FAILOVER).single.boolean;
	ctx->default_weight = knotd_conf_mod(mod, MOD_DEFAULT_WEIGHT).single.integer;
	ctx->ttl.min = knotd_conf_mod(mod, MOD_TTL_MIN).single.integer;
	ctx->ttl.max = knotd_conf_mod(mod, MOD_TTL_MAX).single.integer;
	ctx->ttl.degraded = knotd_conf_mod(mod, MOD_TTL_DEGRADED).single.integer;
	ctx->bypass = knotd_conf_mod(mod, MOD_BYPASS);
	ctx->sign = knotd_conf_mod(mod, MOD_SIGN).single.boolean;

	ret = load_weights(mod, ctx);
	if (ret == KNOT_EOK) {
		ret = start_control(mod);
		ctx->control = (ret == KNOT_EOK);
	}
	if (ret == KNOT_EOK) {
		char zone[KNOT_DNAME_TXT_MAXLEN + 1] = "";
		if (knotd_mod_zone(mod) != NULL) {
			(void)knot_dname_to_str(zone, knotd_mod_zone(mod), sizeof(zone));
		}
		seen_instance_add(ctx->tag, zone);
	}
	if (ret == KNOT_EOK) {
		ret = load_sticky_key(mod, ctx);
	}
	for (size_t i = 0; ret == KNOT_EOK && i < sizeof(counter_names) / sizeof(*counter_names); i++) {
		if (i == CTR_SIGNED) {
			ret = knotd_mod_stats_add(mod, counter_names[i], SIGNED_IDX_COUNT,
			                          signed_idx_str);
		} else {
			ret = knotd_mod_stats_add(mod, counter_names[i], 1, NULL);
		}
	}
	if (ret == KNOT_EOK && ctx->sign) {
		start_signer(mod, ctx);  /* Not fatal: signed answers then keep the zone's sets. */
	}
	if (ret == KNOT_EOK) {
		ret = knotd_mod_in_hook(mod, KNOTD_STAGE_ADDITIONAL, mxpolicy_additional);
	}
	if (ret == KNOT_EOK) {
		ret = knotd_mod_hook(mod, KNOTD_STAGE_END, mxpolicy_end);
	}
	if (ret != KNOT_EOK) {
		knotd_mod_log(mod, LOG_ERR, "failed to load (%s), module NOT active for this zone",
		              knot_strerror(ret));
		ctx_free(ctx);
		return ret;
	}

	knotd_mod_ctx_set(mod, ctx);
	return KNOT_EOK;
}

void mxpolicy_unload(knotd_mod_t *mod)
{
	/* No knotd_mod_zone()/knotd_mod_log() here: 3.2.6 frees the zone name first. */
	ctx_free(knotd_mod_ctx(mod));
}

KNOTD_MOD_API(mxpolicy, KNOTD_MOD_FLAG_SCOPE_ZONE | KNOTD_MOD_FLAG_OPT_CONF,
              mxpolicy_load, mxpolicy_unload, mxpolicy_conf, mxpolicy_conf_check);
