/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdnssec/binary.h>
#include <libdnssec/crypto.h>
#include <libdnssec/error.h>
#include <libdnssec/key.h>
#include <libdnssec/sign.h>

#include "rrsign.h"

/* A PKCS#8 PEM of a 4096-bit RSA key is ~3.3 kB; anything far larger is not a key. */
#define PEM_MAX (64 * 1024)

#define DNSKEY_PUBKEY_OFFSET 4

typedef struct {
	char *dir;           /*!< Keystore directory; NULL = free slot. */
	uint8_t *rdata;      /*!< DNSKEY rdata. */
	uint16_t rdata_len;
	dnssec_key_t *key;   /*!< NULL: the last load failed with 'error'. */
	int error;
	int64_t failed_at;   /*!< Caller's clock at that failure. */
	uint64_t born;       /*!< Insertion order, for eviction. */
} key_entry_t;

struct rrsign_keys {
	key_entry_t entry[RRSIGN_KEYS_MAX];
	uint64_t births;
};

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

/*
 * knotd already initialized libdnssec; a second dnssec_crypto_init() only
 * raises GnuTLS' reference counts (gnutls_global_init, gnutls_pkcs11_init).
 * The unit tests have no knotd that did it.
 */
static void crypto_init(void)
{
	dnssec_crypto_init();
}

rrsign_keys_t *rrsign_keys_new(void)
{
	(void)pthread_once(&crypto_once, crypto_init);
	return calloc(1, sizeof(rrsign_keys_t));
}

static void entry_clear(key_entry_t *e)
{
	free(e->dir);
	free(e->rdata);
	dnssec_key_free(e->key);
	memset(e, 0, sizeof(*e));
}

void rrsign_keys_free(rrsign_keys_t *keys)
{
	if (keys == NULL) {
		return;
	}
	for (size_t i = 0; i < RRSIGN_KEYS_MAX; i++) {
		entry_clear(&keys->entry[i]);
	}
	free(keys);
}

static int map_dnssec(int ret, int dflt)
{
	switch (ret) {
	case DNSSEC_EOK:
		return KNOT_EOK;
	case DNSSEC_ENOMEM:
		return KNOT_ENOMEM;
	default:
		return dflt;
	}
}

static int map_io_errno(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return KNOT_ENOENT;
	case EACCES:
	case EPERM:
		return KNOT_EACCES;
	default:
		return knot_map_errno_code(err);
	}
}

/*
 * <dir>/<keyid>.pem read here rather than through dnssec_keystore_*: its
 * open() maps every realpath() failure to DNSSEC_NOT_FOUND (a denied parent
 * directory reads as "not found"), and it trusts a single read() to return
 * the whole file. Here errno is kept, the size is bounded and short reads
 * are handled.
 */
static int read_pem(const char *dir, const char *keyid, dnssec_binary_t *pem)
{
	char path[4096];
	int len = snprintf(path, sizeof(path), "%s/%s.pem", dir, keyid);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		return KNOT_EINVAL;
	}

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		return map_io_errno(errno);
	}

	int ret = KNOT_EOK;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		ret = map_io_errno(errno);
		goto out;
	}
	/* A directory, FIFO or device in place of a key file is not a key. */
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PEM_MAX) {
		ret = KNOT_EMALF;
		goto out;
	}

	/* One byte more than expected detects a file that grew meanwhile. */
	size_t cap = (size_t)st.st_size + 1;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		ret = KNOT_ENOMEM;
		goto out;
	}
	size_t have = 0;
	while (have < cap) {
		ssize_t got = read(fd, buf + have, cap - have);
		if (got < 0) {
			if (errno == EINTR) {
				continue;
			}
			ret = map_io_errno(errno);
			break;
		} else if (got == 0) {
			break;
		}
		have += got;
	}
	if (ret == KNOT_EOK && (have == 0 || have == cap)) {
		ret = KNOT_EMALF;  /* Emptied or growing: being rewritten, retried later. */
	}
	if (ret != KNOT_EOK) {
		explicit_bzero(buf, cap);
		free(buf);
		goto out;
	}
	pem->data = buf;
	pem->size = have;
out:
	close(fd);
	return ret;
}

static void pem_free(dnssec_binary_t *pem)
{
	if (pem->data != NULL) {
		explicit_bzero(pem->data, pem->size);
		free(pem->data);
	}
	pem->data = NULL;
	pem->size = 0;
}

/*
 * libdnssec attaches a private key to a key with a public part without
 * checking that they are a pair: derive the public key from the private one
 * in a second key and compare the key IDs (hash of the public key, so
 * independent of how the DNSKEY encodes it).
 */
static int check_pair(uint8_t algorithm, const dnssec_binary_t *pem, const char *keyid)
{
	dnssec_key_t *derived = NULL;
	int ret = dnssec_key_new(&derived);
	if (ret != DNSSEC_EOK) {
		return map_dnssec(ret, KNOT_ENOMEM);
	}
	char *derived_id = NULL;
	ret = dnssec_key_set_algorithm(derived, algorithm);
	if (ret == DNSSEC_EOK) {
		ret = dnssec_key_load_pkcs8(derived, pem);
	}
	if (ret == DNSSEC_EOK) {
		ret = dnssec_key_get_keyid(derived, &derived_id);
	}
	if (ret == DNSSEC_EOK && strcmp(derived_id, keyid) != 0) {
		ret = DNSSEC_INVALID_PRIVATE_KEY;
	}
	free(derived_id);
	dnssec_key_free(derived);
	return map_dnssec(ret, KNOT_EMALF);
}

static int load_key(const char *dir, const knot_dname_t *zone, const uint8_t *rdata,
                    uint16_t len, dnssec_key_t **out)
{
	if (len <= DNSKEY_PUBKEY_OFFSET) {
		return KNOT_EMALF;
	}
	uint8_t algorithm = rdata[3];
	if (!dnssec_algorithm_key_support(algorithm)) {
		return KNOT_ENOTSUP;
	}

	dnssec_key_t *key = NULL;
	int ret = dnssec_key_new(&key);
	if (ret != DNSSEC_EOK) {
		return map_dnssec(ret, KNOT_ENOMEM);
	}

	char *keyid = NULL;
	dnssec_binary_t pem = { 0 };
	const dnssec_binary_t bin = { .size = len, .data = (uint8_t *)rdata };
	ret = dnssec_key_set_rdata(key, &bin);
	if (ret == DNSSEC_INVALID_KEY_ALGORITHM) {
		ret = KNOT_ENOTSUP;
		goto fail;
	} else if (ret != DNSSEC_EOK) {
		ret = map_dnssec(ret, KNOT_EMALF);
		goto fail;
	}
	if (zone != NULL) {
		ret = map_dnssec(dnssec_key_set_dname(key, zone), KNOT_ENOMEM);
		if (ret != KNOT_EOK) {
			goto fail;
		}
	}
	ret = map_dnssec(dnssec_key_get_keyid(key, &keyid), KNOT_EMALF);
	if (ret != KNOT_EOK) {
		goto fail;
	}

	ret = read_pem(dir, keyid, &pem);
	if (ret != KNOT_EOK) {
		goto fail;
	}
	ret = check_pair(algorithm, &pem, keyid);
	if (ret != KNOT_EOK) {
		goto fail;
	}
	ret = map_dnssec(dnssec_key_load_pkcs8(key, &pem), KNOT_EMALF);
	if (ret != KNOT_EOK) {
		goto fail;
	}
	if (!dnssec_key_can_sign(key)) {
		ret = KNOT_EMALF;
		goto fail;
	}

	pem_free(&pem);
	free(keyid);
	*out = key;
	return KNOT_EOK;
fail:
	pem_free(&pem);
	free(keyid);
	dnssec_key_free(key);
	return ret;
}

static key_entry_t *find_entry(rrsign_keys_t *keys, const char *dir, const uint8_t *rdata,
                               uint16_t len)
{
	for (size_t i = 0; i < RRSIGN_KEYS_MAX; i++) {
		key_entry_t *e = &keys->entry[i];
		if (e->dir != NULL && e->rdata_len == len && memcmp(e->rdata, rdata, len) == 0 &&
		    strcmp(e->dir, dir) == 0) {
			return e;
		}
	}
	return NULL;
}

/* A free slot, else the oldest entry (cleared). */
static key_entry_t *claim_entry(rrsign_keys_t *keys)
{
	key_entry_t *victim = &keys->entry[0];
	for (size_t i = 0; i < RRSIGN_KEYS_MAX; i++) {
		key_entry_t *e = &keys->entry[i];
		if (e->dir == NULL) {
			return e;
		}
		if (e->born < victim->born) {
			victim = e;
		}
	}
	entry_clear(victim);
	return victim;
}

int rrsign_key_get(rrsign_keys_t *keys, const char *keystore_dir, const knot_dname_t *zone,
                   const uint8_t *dnskey_rdata, uint16_t dnskey_len, int64_t now,
                   int64_t retry_after, const dnssec_key_t **key)
{
	if (keys == NULL || keystore_dir == NULL || dnskey_rdata == NULL || key == NULL) {
		return KNOT_EINVAL;
	}

	key_entry_t *e = find_entry(keys, keystore_dir, dnskey_rdata, dnskey_len);
	if (e != NULL && e->key != NULL) {
		*key = e->key;
		return KNOT_EOK;
	}
	/* A clock that went backwards also allows a retry rather than a stuck entry. */
	if (e != NULL && retry_after > 0 && now >= e->failed_at &&
	    (uint64_t)now - (uint64_t)e->failed_at < (uint64_t)retry_after) {
		return e->error;
	}

	if (e == NULL) {
		e = claim_entry(keys);
		e->dir = strdup(keystore_dir);
		e->rdata = malloc(dnskey_len > 0 ? dnskey_len : 1);
		if (e->dir == NULL || e->rdata == NULL) {
			entry_clear(e);
			return KNOT_ENOMEM;
		}
		memcpy(e->rdata, dnskey_rdata, dnskey_len);
		e->rdata_len = dnskey_len;
		e->born = ++keys->births;
	}

	dnssec_key_t *loaded = NULL;
	int ret = load_key(keystore_dir, zone, dnskey_rdata, dnskey_len, &loaded);
	if (ret != KNOT_EOK) {
		e->error = ret;
		e->failed_at = now;
		return ret;
	}
	e->key = loaded;
	e->error = KNOT_EOK;
	*key = loaded;
	return KNOT_EOK;
}

/* -- signing -------------------------------------------------------------- */

typedef struct {
	const uint8_t *data;   /*!< Canonical rdata. */
	uint16_t len;
} canon_rr_t;

/* RFC 4034 6.3: rdata as left-justified octet strings, a missing octet sorts first. */
static int canon_cmp(const void *a, const void *b)
{
	const canon_rr_t *x = a, *y = b;
	uint16_t common = x->len < y->len ? x->len : y->len;
	int ret = memcmp(x->data, y->data, common);
	if (ret != 0) {
		return ret;
	}
	return (int)x->len - (int)y->len;
}

/* An uncompressed name filling exactly [name, end); its size, or 0. */
static size_t exact_dname(const uint8_t *name, const uint8_t *end)
{
	if (name >= end) {
		return 0;
	}
	int ret = knot_dname_wire_check(name, end, NULL);
	return (ret > 0 && ret == end - name) ? (size_t)ret : 0;
}

int rrsign_head_len(const uint8_t *rrsig_rdata, uint16_t len)
{
	if (rrsig_rdata == NULL || len <= RRSIGN_HEAD_FIXED) {
		return KNOT_EMALF;
	}
	int ret = knot_dname_wire_check(rrsig_rdata + RRSIGN_HEAD_FIXED, rrsig_rdata + len, NULL);
	if (ret <= 0) {
		return KNOT_EMALF;  /* Truncated, or a compression pointer (never in RRSIG). */
	}
	return RRSIGN_HEAD_FIXED + ret;
}

int rrsign_dnskey_tag(const uint8_t *dnskey_rdata, uint16_t len)
{
	if (dnskey_rdata == NULL || len <= DNSKEY_PUBKEY_OFFSET) {
		return -1;
	}
	if (dnskey_rdata[3] == DNSSEC_KEY_ALGORITHM_RSA_MD5) {
		/* RFC 4034 B.1: bits 8..23 from the end of the modulus; needs at
		 * least exponent length, a 1-byte exponent and 3 modulus bytes. */
		if (len < DNSKEY_PUBKEY_OFFSET + 5) {
			return -1;
		}
		return (dnskey_rdata[len - 3] << 8) | dnskey_rdata[len - 2];
	}
	uint32_t sum = 0;
	for (uint16_t i = 0; i < len; i++) {
		sum += (i & 1) ? dnskey_rdata[i] : (uint32_t)dnskey_rdata[i] << 8;
	}
	sum += (sum >> 16) & 0xFFFF;
	return sum & 0xFFFF;
}

/* The owner's labels as RFC 4034 3.1.3 counts them (no root, no leading '*'). */
static size_t rrsig_labels(const knot_dname_t *owner)
{
	size_t labels = knot_dname_labels(owner, NULL);
	if (knot_dname_is_wildcard(owner)) {
		labels -= 1;
	}
	return labels;
}

/*
 * Check the records and copy them in canonical form (MX: exchange
 * lowercased) into 'canon', described by 'rr' in sorted order without
 * duplicates. Returns the number of distinct records, or an error.
 */
static int canonical_mx(const knot_rdataset_t *rrs, uint8_t *canon, canon_rr_t *rr)
{
	const uint8_t *pos = (const uint8_t *)rrs->rdata;
	size_t left = rrs->size;
	uint8_t *out = canon;
	for (uint16_t i = 0; i < rrs->count; i++) {
		if (left < sizeof(uint16_t)) {
			return KNOT_EINVAL;
		}
		/* knot_rdata_t layout, read without trusting the alignment. */
		uint16_t len;
		memcpy(&len, pos, sizeof(len));
		const uint8_t *rdata = pos + sizeof(len);
		if (knot_rdata_size(len) > left) {
			return KNOT_EINVAL;
		}
		/* Preference and an exchange that ends exactly with the rdata. */
		if (len < 3 || exact_dname(rdata + 2, rdata + len) == 0) {
			return KNOT_EINVAL;
		}
		memcpy(out, rdata, len);
		knot_dname_to_lower(out + 2);
		rr[i].data = out;
		rr[i].len = len;
		out += len;
		pos += knot_rdata_size(len);
		left -= knot_rdata_size(len);
	}

	qsort(rr, rrs->count, sizeof(*rr), canon_cmp);
	uint16_t kept = 0;
	for (uint16_t i = 0; i < rrs->count; i++) {
		if (kept == 0 || canon_cmp(&rr[kept - 1], &rr[i]) != 0) {
			rr[kept++] = rr[i];
		}
	}
	return kept;
}

static int sign_data(const dnssec_key_t *key, uint8_t *data, size_t len,
                     uint8_t *sig, size_t sig_max, size_t *sig_len)
{
	dnssec_sign_ctx_t *ctx = NULL;
	int ret = dnssec_sign_new(&ctx, key);
	if (ret != DNSSEC_EOK) {
		return map_dnssec(ret, KNOT_ERROR);
	}
	dnssec_binary_t signature = { 0 };
	const dnssec_binary_t bin = { .size = len, .data = data };
	ret = dnssec_sign_add(ctx, &bin);
	if (ret == DNSSEC_EOK) {
		/* Converts ECDSA's DER (r, s) into the RFC 6605 form itself. */
		ret = dnssec_sign_write(ctx, DNSSEC_SIGN_NORMAL, &signature);
	}
	dnssec_sign_free(ctx);
	if (ret != DNSSEC_EOK) {
		return map_dnssec(ret, KNOT_ERROR);
	}

	if (signature.size == 0) {
		ret = KNOT_ERROR;
	} else if (signature.size > sig_max) {
		ret = KNOT_ESPACE;
	} else {
		memcpy(sig, signature.data, signature.size);
		*sig_len = signature.size;
		ret = KNOT_EOK;
	}
	dnssec_binary_free(&signature);
	return ret;
}

int rrsign_sign(const dnssec_key_t *key, const uint8_t *rrsig_head, size_t head_len,
                const knot_dname_t *owner, uint16_t type, const knot_rdataset_t *rrs,
                uint8_t *sig, size_t sig_max, size_t *sig_len)
{
	if (key == NULL || rrsig_head == NULL || owner == NULL || rrs == NULL ||
	    sig == NULL || sig_len == NULL) {
		return KNOT_EINVAL;
	}
	if (type != KNOT_RRTYPE_MX) {
		return KNOT_ENOTSUP;
	}

	/* The head: exactly the fixed part and the signer, for this RRset and key. */
	if (head_len > UINT16_MAX ||
	    rrsign_head_len(rrsig_head, (uint16_t)head_len) != (int)head_len) {
		return KNOT_EINVAL;
	}
	if (knot_wire_read_u16(rrsig_head) != type ||
	    rrsig_head[2] != dnssec_key_get_algorithm(key) ||
	    knot_wire_read_u16(rrsig_head + 16) != dnssec_key_get_keytag(key)) {
		return KNOT_EINVAL;
	}
	int owner_size = knot_dname_wire_check(owner, owner + KNOT_DNAME_MAXLEN, NULL);
	if (owner_size <= 0 || rrsig_labels(owner) != rrsig_head[3]) {
		return KNOT_EINVAL;
	}
	if (rrs->count == 0 || rrs->rdata == NULL) {
		return KNOT_EINVAL;
	}

	uint8_t *canon = malloc(rrs->size > 0 ? rrs->size : 1);
	canon_rr_t *rr = calloc(rrs->count, sizeof(*rr));
	uint8_t *data = NULL;
	int ret = KNOT_ENOMEM;
	if (canon == NULL || rr == NULL) {
		goto out;
	}
	ret = canonical_mx(rrs, canon, rr);
	if (ret < 0) {
		goto out;
	}
	uint16_t count = (uint16_t)ret;

	/* RFC 4034 3.1.8.1: RRSIG_RDATA | RR(1) | RR(2) ...,
	 * RR(i) = owner | type | class | original TTL | RDLENGTH | RDATA */
	size_t rr_fixed = owner_size + 10;
	size_t len = head_len;
	for (uint16_t i = 0; i < count; i++) {
		len += rr_fixed + rr[i].len;
	}
	data = malloc(len);
	if (data == NULL) {
		ret = KNOT_ENOMEM;
		goto out;
	}

	uint8_t *w = data;
	memcpy(w, rrsig_head, head_len);
	knot_dname_to_lower(w + RRSIGN_HEAD_FIXED);
	w += head_len;
	for (uint16_t i = 0; i < count; i++) {
		knot_dname_copy_lower(w, owner);
		w += owner_size;
		knot_wire_write_u16(w, type);
		knot_wire_write_u16(w + 2, KNOT_CLASS_IN);
		memcpy(w + 4, rrsig_head + 4, sizeof(uint32_t));  /* Original TTL. */
		knot_wire_write_u16(w + 8, rr[i].len);
		memcpy(w + 10, rr[i].data, rr[i].len);
		w += 10 + rr[i].len;
	}

	ret = sign_data(key, data, len, sig, sig_max, sig_len);
out:
	free(data);
	free(rr);
	free(canon);
	return ret;
}
