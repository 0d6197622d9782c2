/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of rrsign.h: keys come from a PKCS#8 keystore directory made
 * here with libdnssec, with the error codes the signer thread relies on;
 * signatures over MX sets given in any order and case verify with
 * libdnssec against signed data that the tests spell out themselves in
 * canonical form (RFC 4034 3.1.8.1, 6.2, 6.3).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libknot/libknot.h>
#include <libdnssec/binary.h>
#include <libdnssec/error.h>
#include <libdnssec/key.h>
#include <libdnssec/keyid.h>
#include <libdnssec/keystore.h>
#include <libdnssec/keytag.h>
#include <libdnssec/sign.h>

#include "rrsign.h"

#define TTL        3600
#define EXPIRATION 1900000000u
#define INCEPTION  1800000000u

typedef struct {
	uint8_t alg;
	char id[DNSSEC_KEYID_SIZE + 1];
	uint8_t rdata[1024];
	uint16_t len;
} tkey_t;

enum { K_RSA, K_ECDSA, K_ED25519, K_COUNT };

typedef struct {
	char dir[512];
	dnssec_keystore_t *store;
	tkey_t key[K_COUNT];
} fixture_t;

static fixture_t *fx;

/* -- keystore helpers ----------------------------------------------------- */

/* A new key in the test keystore and its DNSKEY rdata (ZONE flag, protocol 3). */
static void gen_key(uint8_t alg, tkey_t *out)
{
	unsigned bits = dnssec_algorithm_key_size_default(alg);
	char *id = NULL;
	assert_int_equal(dnssec_keystore_generate(fx->store, alg, bits, NULL, &id), DNSSEC_EOK);

	dnssec_key_t *key = NULL;
	assert_int_equal(dnssec_key_new(&key), DNSSEC_EOK);
	assert_int_equal(dnssec_key_set_algorithm(key, alg), DNSSEC_EOK);
	assert_int_equal(dnssec_key_set_flags(key, 256), DNSSEC_EOK);
	assert_int_equal(dnssec_key_set_protocol(key, 3), DNSSEC_EOK);
	assert_int_equal(dnssec_keystore_get_private(fx->store, id, key), DNSSEC_EOK);
	dnssec_binary_t rd = { 0 };
	assert_int_equal(dnssec_key_get_rdata(key, &rd), DNSSEC_EOK);
	assert_true(rd.size <= sizeof(out->rdata));

	/* The file name is what the unit derives from the DNSKEY. */
	char *keyid = NULL;
	assert_int_equal(dnssec_key_get_keyid(key, &keyid), DNSSEC_EOK);
	assert_string_equal(keyid, id);

	out->alg = alg;
	snprintf(out->id, sizeof(out->id), "%s", id);
	memcpy(out->rdata, rd.data, rd.size);
	out->len = rd.size;
	free(keyid);
	free(id);
	dnssec_key_free(key);
}

static void key_file(const char *id, char *path, size_t size)
{
	int len = snprintf(path, size, "%s/%s.pem", fx->dir, id);
	assert_true(len > 0 && (size_t)len < size);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, uint8_t *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t got = read(fd, buf, size);
	assert_true(got > 0 && (size_t)got < size);
	close(fd);
	return got;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
			continue;
		}
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		if (unlink(path) != 0) {
			remove_tree(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

static int group_setup(void **state)
{
	(void)state;
	/* Also initializes libdnssec's crypto (there is no knotd to do it). */
	rrsign_keys_free(rrsign_keys_new());

	fx = calloc(1, sizeof(*fx));
	if (fx == NULL) {
		return -1;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof(fx->dir), "%s/rrsign-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		return -1;
	}
	if (dnssec_keystore_init_pkcs8(&fx->store) != DNSSEC_EOK ||
	    dnssec_keystore_init(fx->store, fx->dir) != DNSSEC_EOK ||
	    dnssec_keystore_open(fx->store, fx->dir) != DNSSEC_EOK) {
		return -1;
	}
	gen_key(DNSSEC_KEY_ALGORITHM_RSA_SHA256, &fx->key[K_RSA]);
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &fx->key[K_ECDSA]);
	gen_key(DNSSEC_KEY_ALGORITHM_ED25519, &fx->key[K_ED25519]);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (fx != NULL) {
		dnssec_keystore_deinit(fx->store);
		remove_tree(fx->dir);
		free(fx);
		fx = NULL;
	}
	return 0;
}

/* -- record and head helpers ---------------------------------------------- */

typedef struct {
	_Alignas(8) uint8_t buf[4096];
	knot_rdataset_t rrs;
} mxset_t;

/* Records are kept in the order added: rrsign must not rely on knotd's order. */
static void mx_init(mxset_t *s)
{
	memset(s, 0, sizeof(*s));
	s->rrs.rdata = (knot_rdata_t *)s->buf;
}

static void mx_add(mxset_t *s, uint16_t pref, const char *name)
{
	uint8_t rd[2 + KNOT_DNAME_MAXLEN];
	knot_wire_write_u16(rd, pref);
	assert_non_null(knot_dname_from_str(rd + 2, name, KNOT_DNAME_MAXLEN));
	uint16_t len = 2 + knot_dname_size(rd + 2);
	assert_true(s->rrs.size + knot_rdata_size(len) <= sizeof(s->buf));
	knot_rdata_init((knot_rdata_t *)(s->buf + s->rrs.size), len, rd);
	s->rrs.size += knot_rdata_size(len);
	s->rrs.count++;
}

static size_t make_head(uint8_t *head, uint16_t type, uint8_t alg, uint8_t labels,
                        uint16_t tag, const char *signer)
{
	knot_wire_write_u16(head, type);
	head[2] = alg;
	head[3] = labels;
	knot_wire_write_u32(head + 4, TTL);
	knot_wire_write_u32(head + 8, EXPIRATION);
	knot_wire_write_u32(head + 12, INCEPTION);
	knot_wire_write_u16(head + 16, tag);
	assert_non_null(knot_dname_from_str(head + 18, signer, KNOT_DNAME_MAXLEN));
	return 18 + knot_dname_size(head + 18);
}

static uint16_t tag_of(const tkey_t *k)
{
	dnssec_binary_t rd = { .size = k->len, .data = (uint8_t *)k->rdata };
	uint16_t tag = 0;
	assert_int_equal(dnssec_keytag(&rd, &tag), DNSSEC_EOK);
	return tag;
}

static size_t key_head(uint8_t *head, const tkey_t *k, const char *signer)
{
	return make_head(head, KNOT_RRTYPE_MX, k->alg, 2, tag_of(k), signer);
}

typedef struct {
	uint16_t pref;
	const char *name;
} mx_t;

/*
 * The signed data written out by hand: the head with the signer as given
 * (the caller passes it lowercase), then owner | MX | IN | TTL | rdlength |
 * rdata for the records exactly as listed (the caller lists them in
 * canonical order, lowercase, without duplicates).
 */
static size_t expected_data(uint8_t *out, const uint8_t *head, size_t head_len,
                            const char *owner, const mx_t *mx, size_t n)
{
	size_t len = 0;
	memcpy(out, head, head_len);
	len += head_len;
	uint8_t owner_wire[KNOT_DNAME_MAXLEN];
	assert_non_null(knot_dname_from_str(owner_wire, owner, sizeof(owner_wire)));
	size_t owner_len = knot_dname_size(owner_wire);
	for (size_t i = 0; i < n; i++) {
		memcpy(out + len, owner_wire, owner_len);
		len += owner_len;
		knot_wire_write_u16(out + len, KNOT_RRTYPE_MX);
		knot_wire_write_u16(out + len + 2, KNOT_CLASS_IN);
		knot_wire_write_u32(out + len + 4, TTL);
		uint8_t name[KNOT_DNAME_MAXLEN];
		assert_non_null(knot_dname_from_str(name, mx[i].name, sizeof(name)));
		uint16_t rdlen = 2 + knot_dname_size(name);
		knot_wire_write_u16(out + len + 8, rdlen);
		knot_wire_write_u16(out + len + 10, mx[i].pref);
		memcpy(out + len + 12, name, rdlen - 2);
		len += 10 + rdlen;
	}
	return len;
}

/* libdnssec's verification with a key made from the DNSKEY rdata alone. */
static int verify(const tkey_t *k, const uint8_t *data, size_t len, const uint8_t *sig,
                  size_t sig_len)
{
	dnssec_key_t *pub = NULL;
	assert_int_equal(dnssec_key_new(&pub), DNSSEC_EOK);
	dnssec_binary_t rd = { .size = k->len, .data = (uint8_t *)k->rdata };
	assert_int_equal(dnssec_key_set_rdata(pub, &rd), DNSSEC_EOK);
	assert_false(dnssec_key_can_sign(pub));

	dnssec_sign_ctx_t *ctx = NULL;
	assert_int_equal(dnssec_sign_new(&ctx, pub), DNSSEC_EOK);
	dnssec_binary_t d = { .size = len, .data = (uint8_t *)data };
	assert_int_equal(dnssec_sign_add(ctx, &d), DNSSEC_EOK);
	dnssec_binary_t s = { .size = sig_len, .data = (uint8_t *)sig };
	int ret = dnssec_sign_verify(ctx, false, &s);
	dnssec_sign_free(ctx);
	dnssec_key_free(pub);
	return ret;
}

static const dnssec_key_t *get_key(rrsign_keys_t *keys, const tkey_t *k)
{
	knot_dname_storage_t zone;
	assert_non_null(knot_dname_from_str(zone, "example.com.", sizeof(zone)));
	const dnssec_key_t *key = NULL;
	assert_int_equal(rrsign_key_get(keys, fx->dir, zone, k->rdata, k->len, 0, 60, &key),
	                 KNOT_EOK);
	assert_non_null(key);
	assert_true(dnssec_key_can_sign(key));
	return key;
}

static int sign_set(const dnssec_key_t *key, const uint8_t *head, size_t head_len,
                    const char *owner, const mxset_t *s, uint8_t *sig, size_t sig_max,
                    size_t *sig_len)
{
	knot_dname_storage_t o;
	assert_non_null(knot_dname_from_str(o, owner, sizeof(o)));
	return rrsign_sign(key, head, head_len, o, KNOT_RRTYPE_MX, &s->rrs, sig, sig_max, sig_len);
}

/* -- signing -------------------------------------------------------------- */

/* b < mx1 because the first label's length octet (1 < 3) decides. */
static const mx_t CANONICAL[] = {
	{ 10, "b.example.com." },
	{ 10, "mx1.example.com." },
	{ 20, "mx2.example.com." },
};

static void check_sign_verify(unsigned which, size_t expect_sig_len, bool deterministic)
{
	const tkey_t *k = &fx->key[which];
	rrsign_keys_t *keys = rrsign_keys_new();
	assert_non_null(keys);
	const dnssec_key_t *key = get_key(keys, k);
	assert_int_equal(dnssec_key_get_algorithm(key), k->alg);
	assert_int_equal(dnssec_key_get_keytag(key), tag_of(k));

	uint8_t head[64], head_lc[64];
	size_t head_len = key_head(head, k, "example.com.");
	assert_int_equal(key_head(head_lc, k, "example.com."), head_len);

	/* Reverse canonical order, mixed case, two duplicates after lowercasing. */
	mxset_t a;
	mx_init(&a);
	mx_add(&a, 20, "MX2.Example.COM.");
	mx_add(&a, 10, "mx1.EXAMPLE.com.");
	mx_add(&a, 10, "B.example.com.");
	mx_add(&a, 10, "mx1.example.com.");
	mx_add(&a, 10, "b.Example.Com.");
	uint8_t *raw = (uint8_t *)a.rrs.rdata;
	assert_non_null(memchr(raw, 'M', a.rrs.size));  /* Case really kept on input. */

	uint8_t data[2048];
	size_t data_len = expected_data(data, head_lc, head_len, "example.com.", CANONICAL, 3);

	uint8_t sig[1024], sig2[1024];
	size_t sig_len = 0, sig2_len = 0;
	assert_int_equal(sign_set(key, head, head_len, "Example.COM.", &a, sig, sizeof(sig),
	                          &sig_len), KNOT_EOK);
	assert_int_equal(sig_len, expect_sig_len);
	assert_int_equal(verify(k, data, data_len, sig, sig_len), DNSSEC_EOK);

	/* Same set in another order and case, no duplicates: same signed data. */
	mxset_t b;
	mx_init(&b);
	mx_add(&b, 10, "MX1.example.COM.");
	mx_add(&b, 20, "mx2.example.com.");
	mx_add(&b, 10, "b.EXAMPLE.com.");
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &b, sig2, sizeof(sig2),
	                          &sig2_len), KNOT_EOK);
	assert_int_equal(verify(k, data, data_len, sig2, sig2_len), DNSSEC_EOK);
	if (deterministic) {
		assert_int_equal(sig2_len, sig_len);
		assert_memory_equal(sig2, sig, sig_len);
	}

	/* A signer's name in mixed case is signed in canonical form. */
	uint8_t head_mc[64];
	assert_int_equal(key_head(head_mc, k, "EXAMPLE.com."), head_len);
	assert_int_equal(sign_set(key, head_mc, head_len, "example.com.", &b, sig2, sizeof(sig2),
	                          &sig2_len), KNOT_EOK);
	assert_int_equal(verify(k, data, data_len, sig2, sig2_len), DNSSEC_EOK);

	/* Changed preference: its signature does not cover the original data ... */
	mxset_t c;
	mx_init(&c);
	mx_add(&c, 10, "b.example.com.");
	mx_add(&c, 10, "mx1.example.com.");
	mx_add(&c, 30, "mx2.example.com.");
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &c, sig2, sizeof(sig2),
	                          &sig2_len), KNOT_EOK);
	assert_int_equal(verify(k, data, data_len, sig2, sig2_len), DNSSEC_INVALID_SIGNATURE);
	const mx_t changed[] = { CANONICAL[0], CANONICAL[1], { 30, "mx2.example.com." } };
	uint8_t data_c[2048];
	size_t data_c_len = expected_data(data_c, head_lc, head_len, "example.com.", changed, 3);
	assert_int_equal(verify(k, data_c, data_c_len, sig2, sig2_len), DNSSEC_EOK);
	/* ... and the original signature does not cover the changed data. */
	assert_int_equal(verify(k, data_c, data_c_len, sig, sig_len), DNSSEC_INVALID_SIGNATURE);

	/* A record removed. */
	mxset_t d;
	mx_init(&d);
	mx_add(&d, 20, "mx2.example.com.");
	mx_add(&d, 10, "mx1.example.com.");
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &d, sig2, sizeof(sig2),
	                          &sig2_len), KNOT_EOK);
	assert_int_equal(verify(k, data, data_len, sig2, sig2_len), DNSSEC_INVALID_SIGNATURE);
	uint8_t data_d[2048];
	size_t data_d_len = expected_data(data_d, head_lc, head_len, "example.com.",
	                                  CANONICAL + 1, 2);
	assert_int_equal(verify(k, data_d, data_d_len, sig2, sig2_len), DNSSEC_EOK);

	/* The original TTL of the head is in every record. */
	data[head_len + 13 + 4 + 3] ^= 1;
	assert_int_equal(verify(k, data, data_len, sig, sig_len), DNSSEC_INVALID_SIGNATURE);

	rrsign_keys_free(keys);
}

static void test_sign_rsasha256(void **state)
{
	(void)state;
	check_sign_verify(K_RSA, 256, true);  /* 2048 bits, PKCS #1 v1.5 is deterministic */
}

/* ECDSA signatures are randomized; libdnssec converts them to r | s (RFC 6605). */
static void test_sign_ecdsap256(void **state)
{
	(void)state;
	check_sign_verify(K_ECDSA, 64, false);
}

static void test_sign_ed25519(void **state)
{
	(void)state;
	check_sign_verify(K_ED25519, 64, true);
}

static void test_sign_wildcard(void **state)
{
	(void)state;
	const tkey_t *k = &fx->key[K_ED25519];
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = get_key(keys, k);

	/* An answer for www.example.com. from *.example.com.: labels = 2. */
	uint8_t head[64];
	size_t head_len = key_head(head, k, "example.com.");
	mxset_t s;
	mx_init(&s);
	mx_add(&s, 10, "MX1.example.com.");
	uint8_t sig[256];
	size_t sig_len = 0;
	assert_int_equal(sign_set(key, head, head_len, "*.Example.COM.", &s, sig, sizeof(sig),
	                          &sig_len), KNOT_EOK);

	const mx_t one[] = { { 10, "mx1.example.com." } };
	uint8_t data[512];
	size_t len = expected_data(data, head, head_len, "*.example.com.", one, 1);
	assert_int_equal(verify(k, data, len, sig, sig_len), DNSSEC_EOK);
	len = expected_data(data, head, head_len, "www.example.com.", one, 1);
	assert_int_equal(verify(k, data, len, sig, sig_len), DNSSEC_INVALID_SIGNATURE);

	/* Labels must fit the owner: 3 for "*.example.com." is a bad head. */
	head[3] = 3;
	assert_int_equal(sign_set(key, head, head_len, "*.example.com.", &s, sig, sizeof(sig),
	                          &sig_len), KNOT_EINVAL);
	rrsign_keys_free(keys);
}

static void test_sign_espace(void **state)
{
	(void)state;
	rrsign_keys_t *keys = rrsign_keys_new();
	mxset_t s;
	mx_init(&s);
	mx_add(&s, 10, "mx1.example.com.");
	uint8_t sig[512];
	size_t sig_len = 0;

	const tkey_t *k = &fx->key[K_ECDSA];
	const dnssec_key_t *key = get_key(keys, k);
	uint8_t head[64];
	size_t head_len = key_head(head, k, "example.com.");
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &s, sig, 63, &sig_len),
	                 KNOT_ESPACE);
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &s, sig, 0, &sig_len),
	                 KNOT_ESPACE);
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &s, sig, 64, &sig_len),
	                 KNOT_EOK);
	assert_int_equal(sig_len, 64);

	k = &fx->key[K_RSA];
	key = get_key(keys, k);
	head_len = key_head(head, k, "example.com.");
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &s, sig, 255, &sig_len),
	                 KNOT_ESPACE);
	assert_int_equal(sign_set(key, head, head_len, "example.com.", &s, sig, 256, &sig_len),
	                 KNOT_EOK);
	rrsign_keys_free(keys);
}

static void test_sign_enotsup(void **state)
{
	(void)state;
	const tkey_t *k = &fx->key[K_ECDSA];
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = get_key(keys, k);

	/* An A set with a head for A. */
	uint8_t head[64];
	size_t head_len = make_head(head, KNOT_RRTYPE_A, k->alg, 2, tag_of(k), "example.com.");
	knot_rdataset_t rrs;
	_Alignas(8) uint8_t buf[16];
	const uint8_t addr[4] = { 192, 0, 2, 1 };
	knot_rdata_init((knot_rdata_t *)buf, sizeof(addr), addr);
	rrs.count = 1;
	rrs.size = knot_rdata_size(sizeof(addr));
	rrs.rdata = (knot_rdata_t *)buf;
	knot_dname_storage_t owner;
	assert_non_null(knot_dname_from_str(owner, "example.com.", sizeof(owner)));
	uint8_t sig[256];
	size_t sig_len = 0;
	assert_int_equal(rrsign_sign(key, head, head_len, owner, KNOT_RRTYPE_A, &rrs, sig,
	                             sizeof(sig), &sig_len), KNOT_ENOTSUP);
	assert_int_equal(rrsign_sign(key, head, head_len, owner, KNOT_RRTYPE_SRV, &rrs, sig,
	                             sizeof(sig), &sig_len), KNOT_ENOTSUP);
	rrsign_keys_free(keys);
}

static void test_sign_einval(void **state)
{
	(void)state;
	const tkey_t *k = &fx->key[K_ECDSA];
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = get_key(keys, k);
	uint8_t head[64];
	size_t head_len = key_head(head, k, "example.com.");
	knot_dname_storage_t owner;
	assert_non_null(knot_dname_from_str(owner, "example.com.", sizeof(owner)));
	mxset_t s;
	mx_init(&s);
	mx_add(&s, 10, "mx1.example.com.");
	uint8_t sig[256];
	size_t sig_len = 0;
	const uint16_t MX = KNOT_RRTYPE_MX;

	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EOK);
	assert_int_equal(rrsign_sign(NULL, head, head_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, NULL, head_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, head_len, NULL, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, NULL, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &s.rrs, NULL, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             NULL), KNOT_EINVAL);

	/* Head length: truncated signer, bytes after it, no signer at all. */
	assert_int_equal(rrsign_sign(key, head, head_len - 1, owner, MX, &s.rrs, sig,
	                             sizeof(sig), &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, head_len + 1, owner, MX, &s.rrs, sig,
	                             sizeof(sig), &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, 18, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	assert_int_equal(rrsign_sign(key, head, 0, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);

	/* Head fields that do not fit the call: type covered, algorithm, key tag, labels. */
	uint8_t bad[64];
	size_t bad_len = make_head(bad, KNOT_RRTYPE_A, k->alg, 2, tag_of(k), "example.com.");
	assert_int_equal(rrsign_sign(key, bad, bad_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	bad_len = make_head(bad, MX, DNSSEC_KEY_ALGORITHM_RSA_SHA256, 2, tag_of(k), "example.com.");
	assert_int_equal(rrsign_sign(key, bad, bad_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	bad_len = make_head(bad, MX, k->alg, 2, tag_of(k) + 1, "example.com.");
	assert_int_equal(rrsign_sign(key, bad, bad_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	bad_len = make_head(bad, MX, k->alg, 1, tag_of(k), "example.com.");
	assert_int_equal(rrsign_sign(key, bad, bad_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	/* A compression pointer as signer. */
	memcpy(bad, head, 18);
	bad[18] = 0xC0;
	bad[19] = 0x0C;
	assert_int_equal(rrsign_sign(key, bad, 20, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);

	/* Owner with a compression pointer. */
	const uint8_t ptr_owner[] = { 0xC0, 0x0C };
	assert_int_equal(rrsign_sign(key, head, head_len, ptr_owner, MX, &s.rrs, sig,
	                             sizeof(sig), &sig_len), KNOT_EINVAL);

	/* Broken record sets. */
	knot_rdataset_t rrs = s.rrs;
	rrs.count = 0;
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	rrs = s.rrs;
	rrs.count = 2;  /* One more record than the memory holds. */
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	rrs = s.rrs;
	rrs.size -= 3;  /* The record runs past the set. */
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);
	rrs = s.rrs;
	rrs.rdata = NULL;
	assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_EINVAL);

	/* MX rdata: too short, trailing bytes, compressed exchange, cut exchange. */
	const uint8_t short_mx[] = { 0, 10 };
	const uint8_t trailing[] = { 0, 10, 2, 'm', 'x', 0, 0xFF };
	const uint8_t compressed[] = { 0, 10, 2, 'm', 'x', 0xC0, 0x0C };
	const uint8_t cut[] = { 0, 10, 5, 'm', 'x' };
	const struct {
		const uint8_t *rd;
		uint16_t len;
	} broken[] = {
		{ short_mx, sizeof(short_mx) },
		{ trailing, sizeof(trailing) },
		{ compressed, sizeof(compressed) },
		{ cut, sizeof(cut) },
	};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		_Alignas(8) uint8_t buf[32];
		knot_rdata_init((knot_rdata_t *)buf, broken[i].len, broken[i].rd);
		rrs.count = 1;
		rrs.size = knot_rdata_size(broken[i].len);
		rrs.rdata = (knot_rdata_t *)buf;
		assert_int_equal(rrsign_sign(key, head, head_len, owner, MX, &rrs, sig, sizeof(sig),
		                             &sig_len), KNOT_EINVAL);
	}

	/* A key with a public part only cannot sign. */
	dnssec_key_t *pub = NULL;
	assert_int_equal(dnssec_key_new(&pub), DNSSEC_EOK);
	dnssec_binary_t rd = { .size = k->len, .data = (uint8_t *)k->rdata };
	assert_int_equal(dnssec_key_set_rdata(pub, &rd), DNSSEC_EOK);
	assert_int_equal(rrsign_sign(pub, head, head_len, owner, MX, &s.rrs, sig, sizeof(sig),
	                             &sig_len), KNOT_ERROR);
	dnssec_key_free(pub);
	rrsign_keys_free(keys);
}

/* -- keys ----------------------------------------------------------------- */

static int key_get(rrsign_keys_t *keys, const char *dir, const tkey_t *k, int64_t now,
                   int64_t retry_after, const dnssec_key_t **key)
{
	knot_dname_storage_t zone;
	assert_non_null(knot_dname_from_str(zone, "example.com.", sizeof(zone)));
	return rrsign_key_get(keys, dir, zone, k->rdata, k->len, now, retry_after, key);
}

static void test_key_missing(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &k);
	char path[1024];
	key_file(k.id, path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_ENOENT);
	assert_int_equal(key_get(keys, "/nonexistent-rrsign-keystore", &fx->key[K_ECDSA], 0, 60,
	                         &key), KNOT_ENOENT);
	/* A file where the keystore directory should be. */
	char notdir[1024];
	key_file(fx->key[K_ECDSA].id, notdir, sizeof(notdir));
	assert_int_equal(key_get(keys, notdir, &fx->key[K_ECDSA], 0, 60, &key), KNOT_ENOENT);

	assert_int_equal(rrsign_key_get(NULL, fx->dir, NULL, k.rdata, k.len, 0, 60, &key),
	                 KNOT_EINVAL);
	assert_int_equal(rrsign_key_get(keys, NULL, NULL, k.rdata, k.len, 0, 60, &key),
	                 KNOT_EINVAL);
	assert_int_equal(rrsign_key_get(keys, fx->dir, NULL, NULL, k.len, 0, 60, &key),
	                 KNOT_EINVAL);
	assert_int_equal(rrsign_key_get(keys, fx->dir, NULL, k.rdata, k.len, 0, 60, NULL),
	                 KNOT_EINVAL);
	rrsign_keys_free(keys);
}

static void test_key_cached(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ED25519, &k);
	char path[1024];
	key_file(k.id, path, sizeof(path));

	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *first = NULL, *again = NULL;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &first), KNOT_EOK);
	/* Served from memory: the file is not read again. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(key_get(keys, fx->dir, &k, 1000, 60, &again), KNOT_EOK);
	assert_ptr_equal(again, first);
	assert_non_null(dnssec_key_get_dname(first));

	/* The keystore directory is part of the key: another spelling reads the file. */
	char other_dir[1024];
	snprintf(other_dir, sizeof(other_dir), "%s/.", fx->dir);
	assert_int_equal(key_get(keys, other_dir, &k, 0, 60, &again), KNOT_ENOENT);

	/* Another cache, another copy. */
	rrsign_keys_t *keys2 = rrsign_keys_new();
	assert_int_equal(key_get(keys2, fx->dir, &fx->key[K_ED25519], 0, 60, &again), KNOT_EOK);
	assert_int_equal(key_get(keys, fx->dir, &fx->key[K_ED25519], 0, 60, &first), KNOT_EOK);
	assert_ptr_not_equal(again, first);
	rrsign_keys_free(keys2);
	rrsign_keys_free(keys);
}

static void test_key_retry(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &k);
	char path[1024], away[1100];
	key_file(k.id, path, sizeof(path));
	snprintf(away, sizeof(away), "%s.away", path);
	assert_int_equal(rename(path, away), 0);

	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;
	assert_int_equal(key_get(keys, fx->dir, &k, 100, 30, &key), KNOT_ENOENT);
	assert_int_equal(rename(away, path), 0);
	/* The failure is remembered until retry_after has passed ... */
	assert_int_equal(key_get(keys, fx->dir, &k, 100, 30, &key), KNOT_ENOENT);
	assert_int_equal(key_get(keys, fx->dir, &k, 129, 30, &key), KNOT_ENOENT);
	/* ... then the file is read again. */
	assert_int_equal(key_get(keys, fx->dir, &k, 130, 30, &key), KNOT_EOK);
	assert_non_null(key);

	/* A clock that went backwards retries at once (other spellings of the
	 * directory are other entries). */
	char dir2[1100], dir3[1100];
	snprintf(dir2, sizeof(dir2), "%s/.", fx->dir);
	snprintf(dir3, sizeof(dir3), "%s/./.", fx->dir);
	assert_int_equal(rename(path, away), 0);
	assert_int_equal(key_get(keys, dir2, &k, 1000, 30, &key), KNOT_ENOENT);
	assert_int_equal(rename(away, path), 0);
	assert_int_equal(key_get(keys, dir2, &k, 1000, 30, &key), KNOT_ENOENT);
	assert_int_equal(key_get(keys, dir2, &k, 999, 30, &key), KNOT_EOK);

	/* retry_after 0: every call tries again. */
	assert_int_equal(rename(path, away), 0);
	assert_int_equal(key_get(keys, dir3, &k, 1000, 0, &key), KNOT_ENOENT);
	assert_int_equal(rename(away, path), 0);
	assert_int_equal(key_get(keys, dir3, &k, 1000, 0, &key), KNOT_EOK);
	rrsign_keys_free(keys);
}

static void test_key_corrupted(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &k);
	char path[1024];
	key_file(k.id, path, sizeof(path));
	uint8_t pem[8192];
	size_t pem_len = read_file(path, pem, sizeof(pem));
	assert_true(pem_len > 100);
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;

	/* Base64 body damaged. */
	uint8_t bad[8192];
	memcpy(bad, pem, pem_len);
	memset(bad + 40, '!', 8);
	write_file(path, bad, pem_len);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EMALF);

	/* Truncated in the middle. */
	write_file(path, pem, pem_len / 2);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EMALF);

	/* Empty. */
	write_file(path, "", 0);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EMALF);

	/* Far too large for a key. */
	size_t big_len = 100 * 1024;
	uint8_t *big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'A', big_len);
	write_file(path, big, big_len);
	free(big);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EMALF);

	/* A directory in place of the file. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EMALF);
	assert_int_equal(rmdir(path), 0);

	/* Repaired: found on the next try. */
	write_file(path, pem, pem_len);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 0, &key), KNOT_EOK);
	rrsign_keys_free(keys);
}

static void test_key_mismatch(void **state)
{
	(void)state;
	tkey_t a, b, ed;
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &a);
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &b);
	gen_key(DNSSEC_KEY_ALGORITHM_ED25519, &ed);
	char path_a[1024], path_b[1024], path_ed[1024];
	key_file(a.id, path_a, sizeof(path_a));
	key_file(b.id, path_b, sizeof(path_b));
	key_file(ed.id, path_ed, sizeof(path_ed));
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;

	/* b's private key under a's key ID: same algorithm, another key pair. */
	assert_int_equal(rename(path_b, path_a), 0);
	assert_int_equal(key_get(keys, fx->dir, &a, 0, 0, &key), KNOT_EMALF);
	/* An Ed25519 private key under an ECDSA key's ID. */
	assert_int_equal(rename(path_ed, path_a), 0);
	assert_int_equal(key_get(keys, fx->dir, &a, 0, 0, &key), KNOT_EMALF);
	rrsign_keys_free(keys);
}

static void test_key_bad_dnskey(void **state)
{
	(void)state;
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;
	tkey_t k = fx->key[K_ECDSA];

	k.len = 4;  /* No public key. */
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);
	k.len = 3;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);
	k.len = 0;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);
	k = fx->key[K_ECDSA];
	k.len -= 1;  /* P-256 public keys are 64 bytes. */
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);
	k = fx->key[K_ECDSA];
	k.rdata[0] = 0;  /* No ZONE flag: not a zone key (libdnssec refuses it). */
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);
	k = fx->key[K_ECDSA];
	k.rdata[2] = 2;  /* Protocol must be 3. */
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EMALF);

	/* Algorithms libdnssec cannot sign with. */
	const uint8_t unsupported[] = { 0, 1, 3, 6, 12, 200, 253 };
	for (size_t i = 0; i < sizeof(unsupported); i++) {
		k = fx->key[K_ECDSA];
		k.rdata[3] = unsupported[i];
		assert_false(dnssec_algorithm_key_support(unsupported[i]));
		assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_ENOTSUP);
	}
	for (unsigned i = 0; i < K_COUNT; i++) {
		assert_true(dnssec_algorithm_key_support(fx->key[i].alg));
	}
	rrsign_keys_free(keys);
}

/*
 * Permission errors. As root with CAP_DAC_OVERRIDE, chmod 000 denies
 * nothing: then the check runs in a child that dropped to uid/gid 65534,
 * for which the root-owned 0700 keystore is unreadable.
 */
enum { EACCES_DIR = 1, EACCES_FILE = 2, CHILD_NO_DROP = 77 };

static int check_eacces(const tkey_t *k, const char *path)
{
	int failed = 0;
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;

	assert_int_equal(chmod(fx->dir, 0), 0);
	if (key_get(keys, fx->dir, k, 0, 0, &key) != KNOT_EACCES) {
		failed |= EACCES_DIR;
	}
	assert_int_equal(chmod(fx->dir, 0700), 0);
	assert_int_equal(chmod(path, 0), 0);
	if (key_get(keys, fx->dir, k, 0, 0, &key) != KNOT_EACCES) {
		failed |= EACCES_FILE;
	}
	assert_int_equal(chmod(path, 0600), 0);
	rrsign_keys_free(keys);
	return failed;
}

static int child_eacces(const tkey_t *k, const char *path)
{
	/* The file unreadable for others, the directory searchable: only the file denies. */
	int failed = 0;
	assert_int_equal(chmod(path, 0600), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ||
		    access(fx->dir, X_OK) == 0) {
			_exit(CHILD_NO_DROP);
		}
		rrsign_keys_t *keys = rrsign_keys_new();
		const dnssec_key_t *key = NULL;
		int ret = key_get(keys, fx->dir, k, 0, 0, &key);
		rrsign_keys_free(keys);
		_exit(ret == KNOT_EACCES ? 0 : EACCES_DIR);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_NO_DROP) {
		return CHILD_NO_DROP;
	}
	failed |= WEXITSTATUS(status);

	assert_int_equal(chmod(fx->dir, 0711), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
			_exit(CHILD_NO_DROP);
		}
		rrsign_keys_t *keys = rrsign_keys_new();
		const dnssec_key_t *key = NULL;
		int ret = key_get(keys, fx->dir, k, 0, 0, &key);
		rrsign_keys_free(keys);
		_exit(ret == KNOT_EACCES ? 0 : EACCES_FILE);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(chmod(fx->dir, 0700), 0);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_NO_DROP) {
		return CHILD_NO_DROP;
	}
	return failed | WEXITSTATUS(status);
}

static void test_key_eacces(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ECDSA_P256_SHA256, &k);
	char path[1024];
	key_file(k.id, path, sizeof(path));

	assert_int_equal(chmod(path, 0), 0);
	int fd = open(path, O_RDONLY);
	bool privileged = fd >= 0;
	if (fd >= 0) {
		close(fd);
	}
	assert_int_equal(chmod(path, 0600), 0);

	int failed = privileged ? child_eacces(&k, path) : check_eacces(&k, path);
	if (failed == CHILD_NO_DROP) {
		print_message("[  SKIP    ] EACCES not testable: running privileged (chmod 000 "
		              "does not deny reading) and cannot drop to uid/gid 65534\n");
		skip();
	}
	assert_false(failed & EACCES_DIR);
	assert_false(failed & EACCES_FILE);

	/* Readable again: found (the failures above were in other caches). */
	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 60, &key), KNOT_EOK);
	rrsign_keys_free(keys);
}

static void test_key_eviction(void **state)
{
	(void)state;
	tkey_t k;
	gen_key(DNSSEC_KEY_ALGORITHM_ED25519, &k);
	char path[1024];
	key_file(k.id, path, sizeof(path));

	rrsign_keys_t *keys = rrsign_keys_new();
	const dnssec_key_t *key = NULL;
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 1000, &key), KNOT_EOK);
	assert_int_equal(unlink(path), 0);

	/* RRSIGN_KEYS_MAX - 1 other entries (failures count too): k stays. */
	char dir[64];
	for (int i = 0; i < RRSIGN_KEYS_MAX - 1; i++) {
		snprintf(dir, sizeof(dir), "/nonexistent-rrsign/%d", i);
		assert_int_equal(key_get(keys, dir, &k, 0, 1000, &key), KNOT_ENOENT);
	}
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 1000, &key), KNOT_EOK);

	/* One more: the oldest entry, k, makes room; asked again it is gone with its file. */
	assert_int_equal(key_get(keys, "/nonexistent-rrsign/last", &k, 0, 1000, &key), KNOT_ENOENT);
	assert_int_equal(key_get(keys, fx->dir, &k, 0, 1000, &key), KNOT_ENOENT);
	rrsign_keys_free(keys);
}

/* -- helpers for callers -------------------------------------------------- */

static void test_dnskey_tag(void **state)
{
	(void)state;
	for (unsigned i = 0; i < K_COUNT; i++) {
		assert_int_equal(rrsign_dnskey_tag(fx->key[i].rdata, fx->key[i].len),
		                 tag_of(&fx->key[i]));
	}

	/* RFC 4034 5.4: the DNSKEY of dskey.example.com. has key tag 60485. */
	const char *b64 = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMz"
	                  "NXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJ"
	                  "BjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";
	dnssec_binary_t text = { .size = strlen(b64), .data = (uint8_t *)b64 };
	dnssec_binary_t pub = { 0 };
	assert_int_equal(dnssec_binary_from_base64(&text, &pub), DNSSEC_EOK);
	uint8_t rdata[512] = { 0x01, 0x00, 3, 5 };
	assert_true(pub.size + 4 <= sizeof(rdata));
	memcpy(rdata + 4, pub.data, pub.size);
	assert_int_equal(rrsign_dnskey_tag(rdata, 4 + pub.size), 60485);
	dnssec_binary_t rfc = { .size = 4 + pub.size, .data = rdata };
	uint16_t rfc_tag = 0;
	assert_int_equal(dnssec_keytag(&rfc, &rfc_tag), DNSSEC_EOK);
	assert_int_equal(rfc_tag, 60485);
	dnssec_binary_free(&pub);

	/* RSA/MD5 (RFC 4034 B.1): bits 8..23 from the end of the modulus. */
	const uint8_t md5[] = { 0x01, 0x00, 3, 1, 1, 3, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE };
	assert_int_equal(rrsign_dnskey_tag(md5, sizeof(md5)), 0xCCDD);
	dnssec_binary_t md5_bin = { .size = sizeof(md5), .data = (uint8_t *)md5 };
	uint16_t tag = 0;
	assert_int_equal(dnssec_keytag(&md5_bin, &tag), DNSSEC_EOK);
	assert_int_equal(tag, 0xCCDD);

	assert_int_equal(rrsign_dnskey_tag(NULL, 10), -1);
	assert_int_equal(rrsign_dnskey_tag(fx->key[K_RSA].rdata, 4), -1);
	assert_int_equal(rrsign_dnskey_tag(fx->key[K_RSA].rdata, 0), -1);
	assert_int_equal(rrsign_dnskey_tag(md5, 8), -1);
}

static void test_head_len(void **state)
{
	(void)state;
	uint8_t rdata[128];
	size_t head_len = make_head(rdata, KNOT_RRTYPE_MX, 13, 2, 12345, "example.com.");
	assert_int_equal(head_len, 18 + 13);
	assert_int_equal(rrsign_head_len(rdata, head_len), head_len);
	/* A whole RRSIG rdata: the signature follows the head. */
	memset(rdata + head_len, 0xAB, 64);
	assert_int_equal(rrsign_head_len(rdata, head_len + 64), head_len);

	/* Truncated. */
	for (uint16_t len = 0; len < head_len; len++) {
		assert_int_equal(rrsign_head_len(rdata, len), KNOT_EMALF);
	}
	assert_int_equal(rrsign_head_len(NULL, 100), KNOT_EMALF);

	/* Root as signer. */
	assert_int_equal(make_head(rdata, KNOT_RRTYPE_MX, 13, 0, 1, "."), 19);
	assert_int_equal(rrsign_head_len(rdata, 19), 19);

	/* Compression pointers are not allowed in RRSIG rdata. */
	rdata[18] = 0xC0;
	rdata[19] = 0x0C;
	assert_int_equal(rrsign_head_len(rdata, 40), KNOT_EMALF);
	/* Bad label length. */
	rdata[18] = 0x40;
	assert_int_equal(rrsign_head_len(rdata, 120), KNOT_EMALF);
}

/* -- threads -------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS  16

typedef struct {
	unsigned which;
	int failures;
} thread_arg_t;

/* Each thread has its own cache and signs on its own, as the signer threads do. */
static void *sign_thread(void *arg)
{
	thread_arg_t *t = arg;
	const tkey_t *k = &fx->key[t->which];
	rrsign_keys_t *keys = rrsign_keys_new();
	knot_dname_storage_t zone, owner;
	knot_dname_from_str(zone, "example.com.", sizeof(zone));
	knot_dname_from_str(owner, "Example.com.", sizeof(owner));
	const dnssec_key_t *key = NULL;
	if (keys == NULL ||
	    rrsign_key_get(keys, fx->dir, zone, k->rdata, k->len, 0, 60, &key) != KNOT_EOK) {
		t->failures = ROUNDS;
		rrsign_keys_free(keys);
		return NULL;
	}

	uint8_t head[64], data[2048], sig[512];
	size_t head_len = key_head(head, k, "example.com.");
	size_t data_len = expected_data(data, head, head_len, "example.com.", CANONICAL, 3);
	mxset_t s;
	mx_init(&s);
	mx_add(&s, 20, "mx2.example.com.");
	mx_add(&s, 10, "MX1.example.com.");
	mx_add(&s, 10, "b.example.com.");
	for (int i = 0; i < ROUNDS; i++) {
		size_t sig_len = 0;
		if (rrsign_sign(key, head, head_len, owner, KNOT_RRTYPE_MX, &s.rrs, sig,
		                sizeof(sig), &sig_len) != KNOT_EOK ||
		    verify(k, data, data_len, sig, sig_len) != DNSSEC_EOK) {
			t->failures++;
		}
	}
	rrsign_keys_free(keys);
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t thr[THREADS];
	thread_arg_t args[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		args[i].which = i % K_COUNT;
		args[i].failures = 0;
		assert_int_equal(pthread_create(&thr[i], NULL, sign_thread, &args[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(thr[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_rsasha256),
		cmocka_unit_test(test_sign_ecdsap256),
		cmocka_unit_test(test_sign_ed25519),
		cmocka_unit_test(test_sign_wildcard),
		cmocka_unit_test(test_sign_espace),
		cmocka_unit_test(test_sign_enotsup),
		cmocka_unit_test(test_sign_einval),
		cmocka_unit_test(test_key_missing),
		cmocka_unit_test(test_key_cached),
		cmocka_unit_test(test_key_retry),
		cmocka_unit_test(test_key_corrupted),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_key_bad_dnskey),
		cmocka_unit_test(test_key_eacces),
		cmocka_unit_test(test_key_eviction),
		cmocka_unit_test(test_dnskey_tag),
		cmocka_unit_test(test_head_len),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
