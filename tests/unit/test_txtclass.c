/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of txtclass.h: email TXT classes by owner name and SPF by
 * content, on TXT sets built with libknot.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "txtclass.h"

#define MAX_STRINGS 4

/*
 * Build a TXT rdata from up to MAX_STRINGS character-strings (length byte +
 * text) and add it to rr.
 */
static void add_txt(knot_rrset_t *rr, const char *const *strings, size_t n)
{
	uint8_t buf[MAX_STRINGS * 256];
	size_t len = 0;
	assert_true(n >= 1 && n <= MAX_STRINGS);
	for (size_t i = 0; i < n; i++) {
		size_t sl = strlen(strings[i]);
		assert_true(sl <= 255);
		buf[len++] = (uint8_t)sl;
		memcpy(buf + len, strings[i], sl);
		len += sl;
	}
	assert_int_equal(knot_rrset_add_rdata(rr, buf, (uint16_t)len, NULL), KNOT_EOK);
}

static knot_rrset_t *new_txt(const char *owner)
{
	knot_dname_t *name = knot_dname_from_str_alloc(owner);
	assert_non_null(name);
	knot_rrset_t *rr = knot_rrset_new(name, KNOT_RRTYPE_TXT, KNOT_CLASS_IN, 3600, NULL);
	knot_dname_free(name, NULL);
	assert_non_null(rr);
	return rr;
}

/* Classify a set of single-string TXT records (NULL-terminated list). */
static mxp_txt_class_t classify(const char *owner, const char *const *texts)
{
	knot_rrset_t *rr = new_txt(owner);
	for (size_t i = 0; texts[i] != NULL; i++) {
		add_txt(rr, &texts[i], 1);
	}
	mxp_txt_class_t c = txtclass_classify(rr->owner, &rr->rrs);
	knot_rrset_free(rr, NULL);
	return c;
}

static mxp_txt_class_t classify1(const char *owner, const char *text)
{
	const char *texts[] = { text, NULL };
	return classify(owner, texts);
}

static void test_spf_basic(void **state)
{
	(void)state;
	assert_int_equal(classify1("example.com.", "v=spf1 mx -all"), MXP_TXT_SPF);
}

static void test_spf_case_insensitive(void **state)
{
	(void)state;
	assert_int_equal(classify1("example.com.", "V=SPF1 -all"), MXP_TXT_SPF);
	assert_int_equal(classify1("example.com.", "v=Spf1 include:_spf.example.net ~all"), MXP_TXT_SPF);
}

static void test_spf_alone(void **state)
{
	(void)state;
	assert_int_equal(classify1("example.com.", "v=spf1"), MXP_TXT_SPF);
}

static void test_spf_prefix_not_version(void **state)
{
	(void)state;
	assert_int_equal(classify1("example.com.", "v=spf10"), MXP_TXT_OTHER);
	assert_int_equal(classify1("example.com.", "v=spf1x -all"), MXP_TXT_OTHER);
	assert_int_equal(classify1("example.com.", "v=spf2.0/pra -all"), MXP_TXT_OTHER);
	assert_int_equal(classify1("example.com.", "v=spf"), MXP_TXT_OTHER);
	/* Not at the start of the string. */
	assert_int_equal(classify1("example.com.", " v=spf1 -all"), MXP_TXT_OTHER);
	assert_int_equal(classify1("example.com.", "xv=spf1 -all"), MXP_TXT_OTHER);
}

static void test_spf_second_record(void **state)
{
	(void)state;
	knot_rrset_t *rr = new_txt("example.com.");
	/* Shorter rdata sorts first in libknot's canonical order. */
	const char *a = "a=b";
	const char *spf = "v=spf1 mx -all";
	add_txt(rr, &a, 1);
	add_txt(rr, &spf, 1);
	assert_int_equal(rr->rrs.count, 2);
	/* Make sure the SPF record really is not the first one of the set. */
	knot_rdata_t *first = knot_rdataset_at(&rr->rrs, 0);
	assert_int_equal(first->data[0], 3);
	assert_memory_equal(first->data + 1, "a=b", 3);

	assert_int_equal(txtclass_classify(rr->owner, &rr->rrs), MXP_TXT_SPF);
	knot_rrset_free(rr, NULL);

	const char *texts[] = { "google-site-verification=abc", "x", "v=spf1 -all", NULL };
	assert_int_equal(classify("example.com.", texts), MXP_TXT_SPF);
}

static void test_spf_multi_string_record(void **state)
{
	(void)state;
	/* SPF split over several character-strings: the first one starts it. */
	knot_rrset_t *rr = new_txt("example.com.");
	const char *parts[] = { "v=spf1 ip4:192.0.2.0/24", " include:_spf.example.net -all" };
	add_txt(rr, parts, 2);
	assert_int_equal(txtclass_classify(rr->owner, &rr->rrs), MXP_TXT_SPF);
	knot_rrset_free(rr, NULL);

	/* "v=spf1" only in a later character-string of the record: not SPF. */
	rr = new_txt("example.com.");
	const char *late[] = { "hello", "v=spf1 -all" };
	add_txt(rr, late, 2);
	assert_int_equal(txtclass_classify(rr->owner, &rr->rrs), MXP_TXT_OTHER);
	knot_rrset_free(rr, NULL);

	/* First string exactly "v=spf1", the rest in the next string. */
	rr = new_txt("example.com.");
	const char *exact[] = { "v=spf1", " -all" };
	add_txt(rr, exact, 2);
	assert_int_equal(txtclass_classify(rr->owner, &rr->rrs), MXP_TXT_SPF);
	knot_rrset_free(rr, NULL);
}

static void test_spf_any_owner(void **state)
{
	(void)state;
	/* SPF is by content, whatever the owner. */
	assert_int_equal(classify1("mail.example.com.", "v=spf1 a -all"), MXP_TXT_SPF);
}

static void test_dmarc(void **state)
{
	(void)state;
	assert_int_equal(classify1("_dmarc.example.com.", "v=DMARC1; p=reject"), MXP_TXT_DMARC);
	assert_int_equal(classify1("_DMARC.Example.COM.", "v=DMARC1; p=none"), MXP_TXT_DMARC);
	assert_int_equal(classify1("_Dmarc.sub.example.com.", "v=DMARC1; p=none"), MXP_TXT_DMARC);
}

static void test_owner_class_before_content(void **state)
{
	(void)state;
	/* Owner-based classes are checked first. */
	assert_int_equal(classify1("_dmarc.example.com.", "v=spf1 -all"), MXP_TXT_DMARC);
	assert_int_equal(classify1("sel._domainkey.example.com.", "v=spf1 -all"), MXP_TXT_DKIM);
}

static void test_dkim(void **state)
{
	(void)state;
	assert_int_equal(classify1("sel._domainkey.example.com.", "v=DKIM1; k=rsa; p=MIGf"),
	                 MXP_TXT_DKIM);
	assert_int_equal(classify1("a.b._domainkey.example.com.", "v=DKIM1; p="), MXP_TXT_DKIM);
	assert_int_equal(classify1("SEL._DomainKey.EXAMPLE.com.", "v=DKIM1; p="), MXP_TXT_DKIM);
}

static void test_dkim_without_selector(void **state)
{
	(void)state;
	assert_int_equal(classify1("_domainkey.example.com.", "o=~"), MXP_TXT_OTHER);
}

static void test_mtasts(void **state)
{
	(void)state;
	assert_int_equal(classify1("_mta-sts.example.com.", "v=STSv1; id=20260101"), MXP_TXT_MTASTS);
	assert_int_equal(classify1("_MTA-STS.example.com.", "v=STSv1; id=1"), MXP_TXT_MTASTS);
}

static void test_tlsrpt(void **state)
{
	(void)state;
	assert_int_equal(classify1("_smtp._tls.example.com.", "v=TLSRPTv1; rua=mailto:t@example.com"),
	                 MXP_TXT_TLSRPT);
	assert_int_equal(classify1("_SMTP._TLS.example.com.", "v=TLSRPTv1; rua=mailto:t@example.com"),
	                 MXP_TXT_TLSRPT);
	/* Only one of the two labels: not TLS-RPT. */
	assert_int_equal(classify1("_tls.example.com.", "v=TLSRPTv1;"), MXP_TXT_OTHER);
	assert_int_equal(classify1("_smtp.example.com.", "v=TLSRPTv1;"), MXP_TXT_OTHER);
}

static void test_bimi(void **state)
{
	(void)state;
	assert_int_equal(classify1("default._bimi.example.com.", "v=BIMI1; l=https://example.com/l.svg"),
	                 MXP_TXT_BIMI);
	assert_int_equal(classify1("Default._BIMI.example.com.", "v=BIMI1;"), MXP_TXT_BIMI);
	/* No selector. */
	assert_int_equal(classify1("_bimi.example.com.", "v=BIMI1;"), MXP_TXT_OTHER);
}

static void test_other(void **state)
{
	(void)state;
	assert_int_equal(classify1("example.com.", "google-site-verification=abcdef0123456789"),
	                 MXP_TXT_OTHER);
	const char *texts[] = { "google-site-verification=abc", "MS=ms12345678", NULL };
	assert_int_equal(classify("example.com.", texts), MXP_TXT_OTHER);
	assert_int_equal(classify1("www.example.com.", "hello"), MXP_TXT_OTHER);
	/* Email label names not in the position that defines the class. */
	assert_int_equal(classify1("dmarc.example.com.", "v=DMARC1"), MXP_TXT_OTHER);
	assert_int_equal(classify1("x._dmarcx.example.com.", "v=DMARC1"), MXP_TXT_OTHER);
	assert_int_equal(classify1("sel._domainkeys.example.com.", "v=DKIM1"), MXP_TXT_OTHER);
}

static void test_empty_string_record(void **state)
{
	(void)state;
	/* A TXT record of one empty character-string is valid and not SPF. */
	assert_int_equal(classify1("example.com.", ""), MXP_TXT_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spf_basic),
		cmocka_unit_test(test_spf_case_insensitive),
		cmocka_unit_test(test_spf_alone),
		cmocka_unit_test(test_spf_prefix_not_version),
		cmocka_unit_test(test_spf_second_record),
		cmocka_unit_test(test_spf_multi_string_record),
		cmocka_unit_test(test_spf_any_owner),
		cmocka_unit_test(test_dmarc),
		cmocka_unit_test(test_owner_class_before_content),
		cmocka_unit_test(test_dkim),
		cmocka_unit_test(test_dkim_without_selector),
		cmocka_unit_test(test_mtasts),
		cmocka_unit_test(test_tlsrpt),
		cmocka_unit_test(test_bimi),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_empty_string_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
