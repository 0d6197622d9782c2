/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <urcu.h>

#include "control.h"
#include "rrsign.h"
#include "signer.h"

/*!
 * Sets (contexts) remembered at most; the least recently handed over go
 * first. A context lives while its zone instance does, so that a state
 * change is pre-signed even for a set that has been quiet for long.
 */
#define MAX_CONTEXTS     4096
/*! Longest stretch of signing before the thread looks at its rings and commands (ms). */
#define SLICE_MS         50
/*
 * How often the signer looks at the rings (ms): workers cannot wake it.
 * Often while sets come in, seldom when idle; the control thread wakes it.
 */
#define POLL_MS          10
#define POLL_IDLE_MS     100
/*! Quiet looks before the signer counts as idle. */
#define IDLE_AFTER       50
/*! A failure is retried after this long (seconds). */
#define RETRY_AFTER      60
/*
 * A variant goes when its signature would expire within the Original TTL,
 * give or take this grace (seconds): knotd re-signs right at that point
 * (rrsig-refresh >= the zone's largest TTL), a moment later than the clock
 * says, and validators cap a cached answer at its signature's expiration.
 */
#define EXPIRY_GRACE     2

typedef struct {
	_Atomic uint32_t head;   /*!< Written by the worker. */
	_Atomic uint32_t tail;   /*!< Written by the signer. */
	_Atomic uint64_t full;   /*!< Requests dropped, ring full (worker). */
	signer_req_t req[SIGNER_RING];
} __attribute__((aligned(64))) ring_t;

typedef struct {
	signer_profile_t p;
	bool logged[SIG_CAUSES];
} profile_t;

typedef struct {
	signer_req_t req;
	knot_dname_storage_t sign_owner;  /*!< Lowercase, "*." for a wildcard. */
	uint64_t name_hash[MXP_MAX_RECORDS];
	uint64_t done_gen;                /*!< Registry generation fully signed for, plus 1 (0: none). */
	uint64_t done_drops;              /*!< sigcache_drops() then: a drop may need a new signature. */
	bool fresh;                       /*!< Handed over since the last signing pass. */
	bool changed;                     /*!< Heads or keys changed since the last signing pass. */
	int64_t last_used;
} context_t;

static struct {
	pthread_mutex_t life;      /*!< refs, start and stop (never taken by the thread). */
	pthread_mutex_t lock;      /*!< running, profiles, the presign command. */
	pthread_cond_t cond;
	unsigned refs;
	bool running;
	pthread_t thread;
	int stop_fd[2];
	int wake_fd[2];           /*!< Control thread -> signer: a presign is waiting. */
	ring_t *rings;
	unsigned workers;
	_Atomic unsigned rate;
	profile_t *profiles;
	size_t nprofiles;
	bool profiles_changed;
	/* Presign command (control thread -> signer). */
	registry_snap_t *cmd_snap;
	uint64_t cmd_seq, done_seq;
	int64_t cmd_deadline_ms;
	/* Signer thread only. */
	context_t **ctx;
	size_t nctx;
	double tokens;
	int64_t last_refill_ms;
	/* Counters. */
	_Atomic uint64_t signed_ok, budget_deferred, requests;
	_Atomic uint64_t failed[SIG_CAUSES];
	_Atomic uint64_t contexts, cached;
	_Atomic uint64_t epoch;    /*!< Bumped when contexts are dropped: workers hand over again. */
	bool warned_full;          /*!< "sign-cache too small" logged. */
} sg = {
	.life = PTHREAD_MUTEX_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.stop_fd = { -1, -1 },
	.wake_fd = { -1, -1 },
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* Query path. */

signer_req_t *signer_claim(unsigned worker)
{
	if (sg.rings == NULL || worker >= sg.workers) {
		return NULL;
	}
	ring_t *r = &sg.rings[worker];
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (head - tail >= SIGNER_RING) {
		atomic_store_explicit(&r->full, atomic_load_explicit(&r->full, memory_order_relaxed) + 1,
		                      memory_order_relaxed);
		return NULL;
	}
	return &r->req[head % SIGNER_RING];
}

void signer_commit(unsigned worker)
{
	ring_t *r = &sg.rings[worker];
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

/* ------------------------------------------------------------------------ */
/* Profiles. */

int signer_profile_add(const signer_profile_t *profile)
{
	pthread_mutex_lock(&sg.lock);
	profile_t *more = realloc(sg.profiles, (sg.nprofiles + 1) * sizeof(*more));
	if (more == NULL) {
		pthread_mutex_unlock(&sg.lock);
		return KNOT_ENOMEM;
	}
	sg.profiles = more;
	memset(&sg.profiles[sg.nprofiles], 0, sizeof(*more));
	sg.profiles[sg.nprofiles].p = *profile;
	sg.nprofiles++;
	pthread_mutex_unlock(&sg.lock);
	return KNOT_EOK;
}

void signer_profile_remove(uint64_t tag)
{
	pthread_mutex_lock(&sg.lock);
	for (size_t i = 0; i < sg.nprofiles; i++) {
		if (sg.profiles[i].p.tag == tag) {
			sg.profiles[i] = sg.profiles[--sg.nprofiles];
			sg.profiles_changed = true;
			break;
		}
	}
	pthread_mutex_unlock(&sg.lock);
}

/* A copy of a profile (the signer must not hold the lock while signing). */
static bool profile_get(uint64_t tag, profile_t *out)
{
	bool found = false;
	pthread_mutex_lock(&sg.lock);
	for (size_t i = 0; i < sg.nprofiles; i++) {
		if (sg.profiles[i].p.tag == tag) {
			*out = sg.profiles[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&sg.lock);
	return found;
}

/* Log a failure once per zone instance and cause. */
static void log_failure(uint64_t tag, sig_cause_t cause, const char *detail)
{
	char zone[KNOT_DNAME_TXT_MAXLEN + 1] = "?";
	bool first = false;
	pthread_mutex_lock(&sg.lock);
	for (size_t i = 0; i < sg.nprofiles; i++) {
		if (sg.profiles[i].p.tag == tag) {
			first = !sg.profiles[i].logged[cause];
			sg.profiles[i].logged[cause] = true;
			(void)knot_dname_to_str(zone, sg.profiles[i].p.zone, sizeof(zone));
			break;
		}
	}
	pthread_mutex_unlock(&sg.lock);
	if (first) {
		ctl_log(LOG_WARNING, "zone %s: cannot sign changed MX sets (%s: %s); DO answers "
		        "of the affected sets are served as the zone has them", zone,
		        sig_cause_names[cause], detail);
	}
}

/* ------------------------------------------------------------------------ */
/* Contexts (signer thread only). */

static bool same_signing(const signer_req_t *a, const signer_req_t *b)
{
	if (a->nsigs != b->nsigs) {
		return false;
	}
	for (uint8_t i = 0; i < a->nsigs; i++) {
		if (a->head_len[i] != b->head_len[i] || a->dnskey_len[i] != b->dnskey_len[i] ||
		    memcmp(a->head[i], b->head[i], a->head_len[i]) != 0 ||
		    memcmp(a->dnskey[i], b->dnskey[i], a->dnskey_len[i]) != 0) {
			return false;
		}
	}
	return memcmp(a->weight, b->weight, a->count * sizeof(a->weight[0])) == 0;
}

static void context_drop(size_t i)
{
	free(sg.ctx[i]);
	sg.ctx[i] = sg.ctx[--sg.nctx];
	atomic_store(&sg.contexts, sg.nctx);
	/* Workers remember what they handed over: make them forget. */
	atomic_fetch_add_explicit(&sg.epoch, 1, memory_order_relaxed);
}

uint64_t signer_epoch(void)
{
	return atomic_load_explicit(&sg.epoch, memory_order_relaxed);
}

/* The owner a request's first RRSIG was made for, lowercase. */
static int sign_owner(const signer_req_t *req, knot_dname_t *out)
{
	sigkey_t key;
	int ret = sigcache_key_init(&key, req->owner, req->head[0], req->head_len[0]);
	if (ret != KNOT_EOK) {
		return ret;
	}
	size_t at = 0;
	if (key.wildcard) {
		out[0] = 1;
		out[1] = '*';
		at = 2;
	}
	size_t len = knot_dname_size(key.suffix);
	if (at + len > KNOT_DNAME_MAXLEN) {
		return KNOT_EMALF;
	}
	memcpy(out + at, key.suffix, len);
	knot_dname_to_lower(out);
	return KNOT_EOK;
}

static bool req_valid(const signer_req_t *req)
{
	if (req->nsigs == 0 || req->nsigs > SIGNER_MAX_SIGS || req->count == 0 ||
	    req->count > MXP_MAX_RECORDS || req->size > SETCACHE_MAX_RDATA ||
	    knot_dname_size(req->owner) > KNOT_DNAME_MAXLEN) {
		return false;
	}
	for (uint8_t i = 0; i < req->nsigs; i++) {
		if (req->head_len[i] < 19 || req->head_len[i] > SIGCACHE_MAX_HEAD ||
		    req->dnskey_len[i] > SIGNER_MAX_DNSKEY) {
			return false;
		}
	}
	/* Walk the rdata: every record inside the copied bytes. */
	const uint8_t *p = req->rdata, *end = req->rdata + req->size;
	for (uint16_t i = 0; i < req->count; i++) {
		const knot_rdata_t *rd = (const knot_rdata_t *)p;
		if (end - p < 2 || knot_rdata_size(rd->len) > (size_t)(end - p) || rd->len < 3) {
			return false;
		}
		p += knot_rdata_size(rd->len);
	}
	return true;
}

static void context_update(const signer_req_t *req, int64_t now)
{
	knot_dname_storage_t owner;
	profile_t prof;
	if (!req_valid(req) || sign_owner(req, owner) != KNOT_EOK ||
	    !profile_get(req->tag, &prof)) {
		return;  /* Malformed, or from an instance that is gone. */
	}
	for (size_t i = 0; i < sg.nctx; i++) {
		context_t *c = sg.ctx[i];
		if (c->req.tag == req->tag && c->req.size == req->size &&
		    knot_dname_is_equal(c->sign_owner, owner) &&
		    memcmp(c->req.rdata, req->rdata, req->size) == 0) {
			c->last_used = now;
			if (!same_signing(&c->req, req)) {
				c->req = *req;  /* knotd re-signed, rolled or published a key. */
				c->done_gen = 0;
				c->changed = true;
			}
			c->fresh = true;
			return;
		}
	}

	if (sg.nctx == MAX_CONTEXTS) {
		size_t oldest = 0;
		for (size_t i = 1; i < sg.nctx; i++) {
			if (sg.ctx[i]->last_used < sg.ctx[oldest]->last_used) {
				oldest = i;
			}
		}
		context_drop(oldest);
	}
	context_t *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return;
	}
	c->req = *req;
	memcpy(c->sign_owner, owner, knot_dname_size(owner));
	const knot_rdata_t *rd = (const knot_rdata_t *)c->req.rdata;
	for (uint16_t i = 0; i < c->req.count; i++, rd = knot_rdataset_next((knot_rdata_t *)rd)) {
		c->name_hash[i] = sigcache_name_hash(rd->data + 2);
	}
	c->last_used = now;
	c->fresh = true;
	sg.ctx[sg.nctx++] = c;
	atomic_store(&sg.contexts, sg.nctx);
}

/* ------------------------------------------------------------------------ */
/* Signing. */

typedef struct {
	context_t *c;
	profile_t *prof;
	rrsign_keys_t *keys;
	bool budget;         /*!< Spend the rate budget (false: operator's presign). */
	int64_t deadline_ms; /*!< Presign: give up after. */
	bool deferred;       /*!< Something was left for later. */
	int64_t now;
} job_t;

static bool take_token(job_t *job)
{
	if (!job->budget) {
		if (job->deadline_ms > 0 && mono_ms() > job->deadline_ms) {
			job->deferred = true;
			return false;
		}
		return true;
	}
	if (sg.tokens < 1.0) {
		job->deferred = true;
		atomic_fetch_add(&sg.budget_deferred, 1);
		return false;
	}
	sg.tokens -= 1.0;
	return true;
}

static sig_cause_t key_cause(int ret)
{
	switch (ret) {
	case KNOT_ENOENT:
	case KNOT_EMALF:   return SIG_FAIL_NO_KEY;
	case KNOT_EACCES:  return SIG_FAIL_KEYSTORE;
	case KNOT_ENOTSUP: return SIG_FAIL_ALGORITHM;
	default:           return SIG_FAIL_ERROR;
	}
}

static void fail(job_t *job, const sigkey_t *key, sig_cause_t cause, const char *detail)
{
	atomic_fetch_add(&sg.failed[cause], 1);
	(void)sigcache_insert(key, job->c->sign_owner, cause, NULL, 0, job->now + RETRY_AFTER);
	log_failure(job->c->req.tag, cause, detail);
}

/* Sign one variant (plan) for the context's RRSIG number i. */
static void sign_variant(job_t *job, const mxp_plan_t *plan, uint8_t i)
{
	context_t *c = job->c;
	const signer_req_t *req = &c->req;
	sigkey_t key;
	if (sigcache_key_init(&key, req->owner, req->head[i], req->head_len[i]) != KNOT_EOK) {
		return;
	}
	for (uint16_t s = 0; s < plan->count; s++) {
		sigcache_key_add(&key, sigcache_rec(c->name_hash[plan->slots[s].idx],
		                                    plan->slots[s].pref));
	}
	/* Failures stand until retried, unless what the set is signed with changed. */
	int known = sigcache_state(&key);
	if (known == SIG_OK || (known > 0 && !c->changed)) {
		return;
	}

	/* RRSIG times are serial numbers (RFC 4034 3.1.5): relative to now. */
	const uint8_t *head = req->head[i];
	uint32_t orig_ttl = knot_wire_read_u32(head + 4);
	int32_t left = (int32_t)(knot_wire_read_u32(head + 8) - (uint32_t)job->now);
	int64_t drop_at = job->now + left - (int64_t)orig_ttl + EXPIRY_GRACE;
	if (drop_at <= job->now) {
		/*
		 * Nothing changes for this signature before it expires (then the
		 * set is forgotten). Warn only for a set just handed over, i.e.
		 * still answered with it: a quiet set's old signature (knotd has
		 * re-signed it since) is not worth a warning.
		 */
		int64_t until = job->now + (left > RETRY_AFTER ? left : RETRY_AFTER);
		atomic_fetch_add(&sg.failed[SIG_FAIL_EXPIRING], 1);
		(void)sigcache_insert(&key, c->sign_owner, SIG_FAIL_EXPIRING, NULL, 0, until);
		if (c->fresh) {
			log_failure(req->tag, SIG_FAIL_EXPIRING, "the zone's signature expires "
			            "within the TTL");
		}
		return;
	}
	if (job->prof->p.keystore_problem != SIG_OK) {
		fail(job, &key, job->prof->p.keystore_problem, "the zone's keystore is not a "
		     "PEM directory the module can read");
		return;
	}
	if (req->dnskey_len[i] == 0) {
		fail(job, &key, SIG_FAIL_NO_KEY, "no DNSKEY matches the zone's RRSIG");
		return;
	}
	if (!take_token(job)) {
		return;
	}

	const dnssec_key_t *dkey = NULL;
	int ret = rrsign_key_get(job->keys, job->prof->p.keystore, job->prof->p.zone,
	                         req->dnskey[i], req->dnskey_len[i], job->now, RETRY_AFTER,
	                         &dkey);
	if (ret != KNOT_EOK) {
		char detail[PATH_MAX + 64];
		snprintf(detail, sizeof(detail), "key %u in '%s': %s",
		         knot_wire_read_u16(head + 16), job->prof->p.keystore, knot_strerror(ret));
		fail(job, &key, key_cause(ret), detail);
		return;
	}

	/* The variant's records: the zone's, with the plan's preferences. */
	const knot_rdata_t *by_idx[MXP_MAX_RECORDS];
	const knot_rdata_t *rd = (const knot_rdata_t *)req->rdata;
	for (uint16_t k = 0; k < req->count; k++, rd = knot_rdataset_next((knot_rdata_t *)rd)) {
		by_idx[k] = rd;
	}
	uint8_t buf[SETCACHE_MAX_RDATA + 2 * MXP_MAX_RECORDS];
	knot_rdataset_t rrs = { .count = plan->count, .rdata = (knot_rdata_t *)buf };
	knot_rdata_t *dst = rrs.rdata;
	for (uint16_t s = 0; s < plan->count; s++) {
		const knot_rdata_t *src = by_idx[plan->slots[s].idx];
		knot_rdata_init(dst, src->len, src->data);
		knot_wire_write_u16(dst->data, plan->slots[s].pref);
		rrs.size += knot_rdata_size(src->len);
		dst = knot_rdataset_next(dst);
	}

	uint8_t sig[SIGCACHE_MAX_SIG];
	size_t sig_len = 0;
	ret = rrsign_sign(dkey, head, req->head_len[i], c->sign_owner, KNOT_RRTYPE_MX, &rrs,
	                  sig, sizeof(sig), &sig_len);
	if (ret != KNOT_EOK) {
		fail(job, &key, ret == KNOT_ENOTSUP ? SIG_FAIL_ALGORITHM : SIG_FAIL_ERROR,
		     knot_strerror(ret));
		return;
	}
	if (sigcache_insert(&key, c->sign_owner, SIG_OK, sig, sig_len, drop_at) == KNOT_EOK) {
		atomic_fetch_add(&sg.signed_ok, 1);
	}
}

static void on_variant(const mxp_plan_t *plan, void *arg)
{
	job_t *job = arg;
	/* Sets the zone's own signature covers need nothing. */
	if (plan->kind != MXP_PLAN_REWRITE || (plan->left_out == 0 && !plan->renumbered)) {
		return;
	}
	for (uint8_t i = 0; i < job->c->req.nsigs && !job->deferred; i++) {
		sign_variant(job, plan, i);
	}
}

/*
 * Sign every variant of a context for the states of 'snap'.
 * Returns true when nothing was left for later.
 */
static bool context_sign(context_t *c, const registry_snap_t *snap, job_t *job)
{
	mxp_record_t recs[MXP_MAX_RECORDS];
	const knot_rdata_t *rd = (const knot_rdata_t *)c->req.rdata;
	for (uint16_t i = 0; i < c->req.count; i++, rd = knot_rdataset_next((knot_rdata_t *)rd)) {
		const mxp_exchanger_t *ex = registry_find(snap, rd->data + 2);
		recs[i].pref = knot_wire_read_u16(rd->data);
		recs[i].null_mx = rd->data[2] == 0;
		recs[i].weight = (ex != NULL && ex->weight != MXP_WEIGHT_NONE) ? ex->weight :
		                 c->req.weight[i];
		recs[i].state = registry_effective(ex);
		recs[i].hash = 0;
	}

	job->c = c;
	job->deferred = false;
	mxp_opts_t opts = job->prof->p.opts;
	opts.may_change_set = true;
	int n = policy_variants(recs, c->req.count, &opts, SIGNER_MAX_VARIANTS, on_variant, job);
	if (n < 0) {
		log_failure(c->req.tag, SIG_FAIL_TOO_MANY, "more than 64 possible answers");
		atomic_fetch_add(&sg.failed[SIG_FAIL_TOO_MANY], 1);
		return true;  /* Nothing more will come of it until the states change. */
	}
	return !job->deferred;
}

/* ------------------------------------------------------------------------ */
/* The thread. */

static unsigned drain_rings(int64_t now)
{
	unsigned drained = 0;
	for (unsigned w = 0; w < sg.workers; w++) {
		ring_t *r = &sg.rings[w];
		uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		while (tail != head) {
			context_update(&r->req[tail % SIGNER_RING], now);
			atomic_fetch_add(&sg.requests, 1);
			tail++;
			drained++;
			atomic_store_explicit(&r->tail, tail, memory_order_release);
		}
	}
	return drained;
}

static void forget_removed_profiles(void)
{
	pthread_mutex_lock(&sg.lock);
	bool changed = sg.profiles_changed;
	sg.profiles_changed = false;
	pthread_mutex_unlock(&sg.lock);
	if (!changed) {
		return;
	}
	profile_t prof;
	for (size_t i = 0; i < sg.nctx; ) {
		if (!profile_get(sg.ctx[i]->req.tag, &prof)) {
			context_drop(i);
		} else {
			i++;
		}
	}
}

static void presign(rrsign_keys_t *keys, const registry_snap_t *snap, int64_t now,
                    int64_t deadline_ms)
{
	job_t job = { .keys = keys, .budget = false, .now = now, .deadline_ms = deadline_ms };
	profile_t prof;
	for (size_t i = 0; i < sg.nctx; i++) {
		if (!profile_get(sg.ctx[i]->req.tag, &prof)) {
			continue;
		}
		job.prof = &prof;
		(void)context_sign(sg.ctx[i], snap, &job);
		if (job.deferred) {
			break;  /* Out of time: the rest follows under the budget. */
		}
	}
}

static bool context_expired(const context_t *c, int64_t now)
{
	for (uint8_t i = 0; i < c->req.nsigs; i++) {
		if ((int32_t)(knot_wire_read_u32(c->req.head[i] + 8) - (uint32_t)now) > 0) {
			return false;
		}
	}
	return true;
}

static void sign_pending(rrsign_keys_t *keys, int64_t now)
{
	rcu_read_lock();
	const registry_snap_t *cur = registry_current();
	uint64_t gen = cur != NULL ? cur->generation : 0;
	uint64_t drops = sigcache_drops();
	bool pending = false;
	for (size_t i = 0; i < sg.nctx && !pending; i++) {
		pending = sg.ctx[i]->done_gen != gen + 1 || sg.ctx[i]->done_drops != drops;
	}
	registry_snap_t *snap = pending ? registry_copy(cur) : NULL;
	rcu_read_unlock();
	if (snap == NULL) {
		return;
	}

	job_t job = { .keys = keys, .budget = true, .now = now };
	profile_t prof;
	int64_t slice_end = mono_ms() + SLICE_MS;
	for (size_t i = 0; i < sg.nctx && sg.tokens >= 1.0 && mono_ms() < slice_end; i++) {
		/* Keep taking sets in while signing: the workers' rings are small. */
		(void)drain_rings(now);
		context_t *c = sg.ctx[i];
		/* 'gen + 1': generation 0 (no registry yet) is a real one. */
		if (c->done_gen == gen + 1 && c->done_drops == drops) {
			continue;
		}
		if (!profile_get(c->req.tag, &prof)) {
			continue;
		}
		job.prof = &prof;
		if (context_sign(c, snap, &job)) {
			c->done_gen = gen + 1;
			/* Failures swept for a retry are tried again. */
			c->done_drops = drops;
			c->fresh = false;
			c->changed = false;
		}
	}
	/* A set whose signatures expired is no longer answered with them. */
	for (size_t i = 0; i < sg.nctx; ) {
		if (context_expired(sg.ctx[i], now)) {
			context_drop(i);
		} else {
			i++;
		}
	}
	registry_free(snap);
}

static void *signer_main(void *arg)
{
	const int *fds = arg;
	int stop_fd = fds[0], wake_fd = fds[1];
	rcu_register_thread();
	rrsign_keys_t *keys = rrsign_keys_new();
	int64_t last_sweep = 0;
	sg.last_refill_ms = mono_ms();
	sg.tokens = atomic_load(&sg.rate);

	unsigned quiet = 0;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = stop_fd, .events = POLLIN },
			{ .fd = wake_fd, .events = POLLIN },
		};
		if (poll(pfd, 2, quiet < IDLE_AFTER ? POLL_MS : POLL_IDLE_MS) > 0) {
			if (pfd[0].revents != 0) {
				break;
			}
			char buf[64];
			(void)!read(wake_fd, buf, sizeof(buf));
			quiet = 0;
		}
		int64_t now = time(NULL);
		int64_t ms = mono_ms();
		double rate = atomic_load(&sg.rate);
		sg.tokens += (ms - sg.last_refill_ms) * rate / 1000.0;
		if (sg.tokens > rate) {
			sg.tokens = rate;  /* Burst: one second's worth. */
		}
		sg.last_refill_ms = ms;

		forget_removed_profiles();
		if (drain_rings(now) > 0) {
			quiet = 0;
		} else if (quiet < IDLE_AFTER) {
			quiet++;
		}

		pthread_mutex_lock(&sg.lock);
		registry_snap_t *cmd = NULL;
		uint64_t seq = sg.cmd_seq;
		int64_t deadline_ms = sg.cmd_deadline_ms;
		if (sg.cmd_seq != sg.done_seq) {
			cmd = sg.cmd_snap;
			sg.cmd_snap = NULL;
		}
		pthread_mutex_unlock(&sg.lock);
		if (seq != sg.done_seq) {
			if (cmd != NULL && keys != NULL) {
				presign(keys, cmd, now, deadline_ms);
			}
			registry_free(cmd);
			pthread_mutex_lock(&sg.lock);
			sg.done_seq = seq;
			pthread_cond_broadcast(&sg.cond);
			pthread_mutex_unlock(&sg.lock);
		}

		if (keys != NULL) {
			sign_pending(keys, now);
		}
		if (now != last_sweep) {
			last_sweep = now;
			(void)sigcache_sweep(now);
		}
		atomic_store(&sg.cached, sigcache_count());
		if (sigcache_evictions() > 0 && !sg.warned_full) {
			sg.warned_full = true;
			ctl_log(LOG_WARNING, "sign-cache is full: signed variants are pushed out "
			        "before they are due and not signed again until a state changes; "
			        "raise sign-cache");
		}
	}

	while (sg.nctx > 0) {
		context_drop(sg.nctx - 1);
	}
	rrsign_keys_free(keys);
	rcu_barrier();
	sigcache_destroy();
	atomic_store(&sg.cached, 0);
	rcu_unregister_thread();
	return NULL;
}

static void close_pipe(int *fd)
{
	close(fd[0]);
	close(fd[1]);
	fd[0] = fd[1] = -1;
}

int signer_acquire(unsigned workers, unsigned rate, size_t capacity)
{
	/*
	 * 'life' is held across the whole start or stop (join included), so a
	 * load racing with the last unload (zone-restore runs them in
	 * background workers) waits for the old thread to be gone.
	 */
	pthread_mutex_lock(&sg.life);
	atomic_store(&sg.rate, rate);  /* The latest configuration's budget. */
	if (sg.refs++ > 0) {
		pthread_mutex_unlock(&sg.life);
		return KNOT_EOK;
	}
	int ret = KNOT_EOK;
	if (sg.rings == NULL && workers > 0) {
		sg.rings = aligned_alloc(64, workers * sizeof(ring_t));
		if (sg.rings != NULL) {
			memset(sg.rings, 0, workers * sizeof(ring_t));
			sg.workers = workers;
		}
	}
	if (sg.ctx == NULL) {
		sg.ctx = calloc(MAX_CONTEXTS, sizeof(*sg.ctx));
	}
	if (sg.rings == NULL || sg.ctx == NULL) {
		ret = KNOT_ENOMEM;
	}
	if (ret == KNOT_EOK) {
		ret = sigcache_init(capacity);
	}
	if (ret == KNOT_EOK && pipe2(sg.stop_fd, O_CLOEXEC) != 0) {
		ret = knot_map_errno();
	}
	if (ret == KNOT_EOK && pipe2(sg.wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		ret = knot_map_errno();
		close_pipe(sg.stop_fd);
	}
	static int fds[2];  /* Read ends for the thread, fixed while it runs. */
	fds[0] = sg.stop_fd[0];
	fds[1] = sg.wake_fd[0];
	if (ret == KNOT_EOK && pthread_create(&sg.thread, NULL, signer_main, fds) != 0) {
		close_pipe(sg.stop_fd);
		close_pipe(sg.wake_fd);
		ret = KNOT_ERROR;
	}
	if (ret == KNOT_EOK) {
		pthread_mutex_lock(&sg.lock);
		sg.running = true;
		pthread_mutex_unlock(&sg.lock);
	} else {
		sg.refs--;
	}
	pthread_mutex_unlock(&sg.life);
	return ret;
}

void signer_release(void)
{
	pthread_mutex_lock(&sg.life);
	if (sg.refs == 0 || --sg.refs > 0) {
		pthread_mutex_unlock(&sg.life);
		return;
	}

	pthread_mutex_lock(&sg.lock);
	sg.running = false;
	pthread_mutex_unlock(&sg.lock);
	char b = 0;
	(void)!write(sg.stop_fd[1], &b, 1);
	pthread_join(sg.thread, NULL);
	close_pipe(sg.stop_fd);
	close_pipe(sg.wake_fd);

	pthread_mutex_lock(&sg.lock);
	registry_free(sg.cmd_snap);
	sg.cmd_snap = NULL;
	sg.done_seq = sg.cmd_seq;
	pthread_cond_broadcast(&sg.cond);
	/* Rings stay: workers of a later instance may still index them. */
	pthread_mutex_unlock(&sg.lock);
	pthread_mutex_unlock(&sg.life);
}

bool signer_presign(const registry_snap_t *snap, int timeout_ms)
{
	registry_snap_t *copy = registry_copy(snap);
	if (copy == NULL) {
		return false;
	}
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}

	pthread_mutex_lock(&sg.lock);
	if (!sg.running) {
		pthread_mutex_unlock(&sg.lock);
		registry_free(copy);
		return true;  /* No signer, no signed variants to prepare. */
	}
	registry_free(sg.cmd_snap);  /* An unprocessed older command is superseded. */
	sg.cmd_snap = copy;
	sg.cmd_deadline_ms = mono_ms() + timeout_ms;
	uint64_t seq = ++sg.cmd_seq;
	char b = 0;
	(void)!write(sg.wake_fd[1], &b, 1);  /* Nonblocking: a full pipe wakes it already. */
	int ret = 0;
	while ((int64_t)(sg.done_seq - seq) < 0 && ret != ETIMEDOUT) {
		ret = pthread_cond_timedwait(&sg.cond, &sg.lock, &deadline);
	}
	bool done = (int64_t)(sg.done_seq - seq) >= 0;
	pthread_mutex_unlock(&sg.lock);
	return done;
}

void signer_stats(signer_stats_t *out)
{
	memset(out, 0, sizeof(*out));
	out->signed_ok = atomic_load(&sg.signed_ok);
	for (int i = 0; i < SIG_CAUSES; i++) {
		out->failed[i] = atomic_load(&sg.failed[i]);
	}
	out->budget_deferred = atomic_load(&sg.budget_deferred);
	out->requests = atomic_load(&sg.requests);
	out->contexts = atomic_load(&sg.contexts);
	out->cached = atomic_load(&sg.cached);
	for (unsigned w = 0; sg.rings != NULL && w < sg.workers; w++) {
		out->ring_full += atomic_load_explicit(&sg.rings[w].full, memory_order_relaxed);
	}
}
