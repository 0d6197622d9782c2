/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <stdlib.h>
#include <string.h>

#include <urcu.h>

#include "sigcache.h"

const char *sig_cause_names[SIG_CAUSES] = {
	[SIG_OK]             = "signed",
	[SIG_FAIL_NO_KEY]    = "no-key",
	[SIG_FAIL_KEYSTORE]  = "keystore",
	[SIG_FAIL_ALGORITHM] = "algorithm",
	[SIG_FAIL_EXPIRING]  = "expiring",
	[SIG_FAIL_TOO_MANY]  = "too-many-variants",
	[SIG_FAIL_ERROR]     = "sign-error",
};

struct sigvar {
	struct sigvar *next;     /*!< Bucket chain (RCU). */
	uint64_t hash;
	size_t slot;             /*!< Position in the age ring. */
	int64_t drop_at;
	uint8_t cause;
	bool wildcard;
	uint16_t count;
	uint16_t head_len;
	uint16_t sig_len;
	uint64_t *rec;           /*!< Sorted record keys (count). */
	knot_dname_t *owner;     /*!< Lowercase, "*." included. */
	uint8_t *head;
	uint8_t *sig;
	struct rcu_head rcu;
	uint8_t data[];
};

typedef struct {
	size_t mask;             /*!< Buckets - 1. */
	size_t capacity;
	size_t count;
	size_t next;             /*!< Age ring: next slot to fill (oldest entry). */
	uint64_t drops;          /*!< Entries swept so far. */
	uint64_t evictions;      /*!< Entries pushed out while full. */
	int64_t next_drop;       /*!< No entry is due before (the sweep is skipped until). */
	sigvar_t **ring;
	sigvar_t *bucket[];
} table_t;

static table_t *table;

static inline uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static inline uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static uint64_t fnv_lower(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h = (h ^ lower(p[i])) * FNV_PRIME;
	}
	return h;
}

uint64_t sigcache_name_hash(const knot_dname_t *name)
{
	return fmix64(fnv_lower(FNV_OFFSET, name, knot_dname_size(name)));
}

uint64_t sigcache_rec(uint64_t name_hash, uint16_t pref)
{
	return fmix64(name_hash ^ ((uint64_t)pref * 0x9e3779b97f4a7c15ULL));
}

int sigcache_key_init(sigkey_t *key, const knot_dname_t *owner, const uint8_t *head,
                      uint16_t head_len)
{
	if (head_len < 19 || head_len > SIGCACHE_MAX_HEAD) {
		return KNOT_EMALF;
	}
	/* RFC 4035 5.3.2: fewer RRSIG labels than the owner has means a wildcard. */
	size_t labels = knot_dname_labels(owner, NULL);
	uint8_t sig_labels = head[3];
	if (sig_labels > labels) {
		return KNOT_EMALF;
	}
	key->wildcard = sig_labels < labels;
	key->suffix = owner;
	for (size_t i = sig_labels; i < labels; i++) {
		key->suffix = knot_wire_next_label(key->suffix, NULL);
	}
	key->head = head;
	key->head_len = head_len;
	key->count = 0;

	/*
	 * The hash covers the owner and the head's fixed fields, taken a word
	 * at a time; the signer's name (the zone, like the owner's suffix) is
	 * left to the exact comparison of a candidate.
	 */
	uint64_t h = FNV_OFFSET ^ (key->wildcard ? 0x2a : 0);
	h = fnv_lower(h, key->suffix, knot_dname_size(key->suffix));
	uint64_t w0, w1;
	memcpy(&w0, head, 8);
	memcpy(&w1, head + 8, 8);
	h = fmix64(h ^ w0) + fmix64(w1 ^ ((uint64_t)knot_wire_read_u16(head + 16) << 48));
	key->hash = h;
	return KNOT_EOK;
}

void sigcache_key_add(sigkey_t *key, uint64_t rec)
{
	if (key->count < MXP_MAX_RECORDS) {
		key->rec[key->count++] = rec;
		/* A sum does not depend on the order the records come in. */
		key->hash += fmix64(rec);
	}
}

static inline uint64_t key_hash(const sigkey_t *key)
{
	return fmix64(key->hash ^ key->count);
}

static bool rec_member(const sigvar_t *var, uint64_t rec)
{
	size_t lo = 0, hi = var->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (var->rec[mid] < rec) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < var->count && var->rec[lo] == rec;
}

static bool var_matches(const sigvar_t *var, const sigkey_t *key, uint64_t hash)
{
	if (var->hash != hash || var->count != key->count || var->wildcard != key->wildcard ||
	    var->head_len != key->head_len || memcmp(var->head, key->head, key->head_len) != 0) {
		return false;
	}
	const knot_dname_t *suffix = var->wildcard ? var->owner + 2 : var->owner;
	if (!knot_dname_is_case_equal(suffix, key->suffix)) {
		return false;
	}
	/* Records of a set are distinct: same count and all present is the same set. */
	for (uint16_t i = 0; i < key->count; i++) {
		if (!rec_member(var, key->rec[i])) {
			return false;
		}
	}
	return true;
}

const sigvar_t *sigcache_find(const sigkey_t *key)
{
	table_t *t = rcu_dereference(table);
	if (t == NULL) {
		return NULL;
	}
	uint64_t hash = key_hash(key);
	for (sigvar_t *var = rcu_dereference(t->bucket[hash & t->mask]); var != NULL;
	     var = rcu_dereference(var->next)) {
		if (var_matches(var, key, hash)) {
			return var;
		}
	}
	return NULL;
}

sig_cause_t sigvar_cause(const sigvar_t *var)
{
	return var->cause;
}

const uint8_t *sigvar_sig(const sigvar_t *var, uint16_t *len)
{
	*len = var->sig_len;
	return var->sig;
}

int sigcache_init(size_t capacity)
{
	if (table != NULL) {
		return KNOT_EOK;
	}
	if (capacity < 16) {
		capacity = 16;
	}
	size_t buckets = 16;
	while (buckets < capacity) {
		buckets <<= 1;
	}
	table_t *t = calloc(1, sizeof(*t) + buckets * sizeof(t->bucket[0]));
	if (t == NULL) {
		return KNOT_ENOMEM;
	}
	t->ring = calloc(capacity, sizeof(*t->ring));
	if (t->ring == NULL) {
		free(t);
		return KNOT_ENOMEM;
	}
	t->mask = buckets - 1;
	t->capacity = capacity;
	t->next_drop = INT64_MAX;
	rcu_assign_pointer(table, t);
	return KNOT_EOK;
}

static void var_free_rcu(struct rcu_head *head)
{
	free(caa_container_of(head, sigvar_t, rcu));
}

static void var_unlink(table_t *t, sigvar_t *var)
{
	sigvar_t **link = &t->bucket[var->hash & t->mask];
	while (*link != NULL && *link != var) {
		link = &(*link)->next;
	}
	if (*link == var) {
		rcu_assign_pointer(*link, var->next);
	}
	t->ring[var->slot] = NULL;
	t->count--;
	call_rcu(&var->rcu, var_free_rcu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static sigvar_t *find_writer(table_t *t, const sigkey_t *key, uint64_t hash)
{
	for (sigvar_t *var = t->bucket[hash & t->mask]; var != NULL; var = var->next) {
		if (var_matches(var, key, hash)) {
			return var;
		}
	}
	return NULL;
}

int sigcache_insert(const sigkey_t *key, const knot_dname_t *owner, sig_cause_t cause,
                    const uint8_t *sig, uint16_t sig_len, int64_t drop_at)
{
	table_t *t = table;
	if (t == NULL) {
		return KNOT_EINVAL;
	}
	if (cause != SIG_OK) {
		sig_len = 0;
	}
	if (sig_len > SIGCACHE_MAX_SIG || key->head_len > SIGCACHE_MAX_HEAD) {
		return KNOT_ESPACE;
	}
	size_t owner_len = knot_dname_size(owner);
	size_t size = sizeof(sigvar_t) + key->count * sizeof(uint64_t) + owner_len +
	              key->head_len + sig_len;
	sigvar_t *var = calloc(1, size);
	if (var == NULL) {
		return KNOT_ENOMEM;
	}
	uint64_t hash = key_hash(key);
	var->hash = hash;
	var->drop_at = drop_at;
	var->cause = cause;
	var->wildcard = key->wildcard;
	var->count = key->count;
	var->head_len = key->head_len;
	var->sig_len = sig_len;
	var->rec = (uint64_t *)var->data;
	var->owner = (knot_dname_t *)(var->rec + key->count);
	var->head = var->owner + owner_len;
	var->sig = var->head + key->head_len;
	memcpy(var->rec, key->rec, key->count * sizeof(uint64_t));
	qsort(var->rec, var->count, sizeof(uint64_t), cmp_u64);
	memcpy(var->owner, owner, owner_len);
	knot_dname_to_lower(var->owner);
	memcpy(var->head, key->head, key->head_len);
	if (sig_len > 0) {
		memcpy(var->sig, sig, sig_len);
	}

	sigvar_t *old = find_writer(t, key, hash);
	if (old != NULL) {
		var_unlink(t, old);
	}
	/*
	 * While not full, take a free slot (sweeps and replacements leave
	 * holes); when full, the ring's next slot holds the oldest entry.
	 */
	size_t slot = t->next;
	if (t->count < t->capacity) {
		while (t->ring[slot] != NULL) {
			slot = (slot + 1) % t->capacity;
		}
	} else {
		var_unlink(t, t->ring[slot]);
		t->evictions++;
	}
	t->next = (slot + 1) % t->capacity;
	var->slot = slot;
	t->ring[slot] = var;
	if (drop_at < t->next_drop) {
		t->next_drop = drop_at;
	}
	var->next = t->bucket[hash & t->mask];
	rcu_assign_pointer(t->bucket[hash & t->mask], var);
	t->count++;
	return KNOT_EOK;
}

int sigcache_state(const sigkey_t *key)
{
	table_t *t = table;
	const sigvar_t *var = t != NULL ? find_writer(t, key, key_hash(key)) : NULL;
	return var != NULL ? var->cause : -1;
}

size_t sigcache_sweep(int64_t now)
{
	table_t *t = table;
	if (t == NULL || now < t->next_drop) {
		return 0;  /* Nothing due: no walk over the whole ring. */
	}
	size_t dropped = 0;
	t->next_drop = INT64_MAX;
	for (size_t i = 0; i < t->capacity; i++) {
		sigvar_t *var = t->ring[i];
		if (var == NULL) {
			continue;
		}
		if (var->drop_at <= now) {
			var_unlink(t, var);
			dropped++;
		} else if (var->drop_at < t->next_drop) {
			t->next_drop = var->drop_at;
		}
	}
	t->drops += dropped;
	return dropped;
}

size_t sigcache_count(void)
{
	return table != NULL ? table->count : 0;
}

uint64_t sigcache_drops(void)
{
	return table != NULL ? table->drops : 0;
}

uint64_t sigcache_evictions(void)
{
	return table != NULL ? table->evictions : 0;
}

void sigcache_destroy(void)
{
	table_t *t = table;
	if (t == NULL) {
		return;
	}
	rcu_assign_pointer(table, NULL);
	synchronize_rcu();
	for (size_t i = 0; i < t->capacity; i++) {
		free(t->ring[i]);
	}
	free(t->ring);
	free(t);
}
