/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of conf.h: parsing of "EXCHANGER-FQDN WEIGHT" values, the
 * ttl-min/ttl-max check and the weight table lookup.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "conf.h"

#define ERR_LEN 512

/* Expected wire name: knot_dname_from_str of the text, lowercased. */
static void expect_name(const knot_dname_t *got, const char *text)
{
	knot_dname_t *want = knot_dname_from_str_alloc(text);
	assert_non_null(want);
	knot_dname_to_lower(want);
	if (!knot_dname_is_equal(got, want)) {
		char *g = knot_dname_to_str_alloc(got);
		print_error("name: got '%s', want lowercased '%s'\n", g ? g : "(null)", text);
		free(g);
	}
	/* Case-sensitive comparison: the stored name must be lowercase. */
	assert_true(knot_dname_is_equal(got, want));
	knot_dname_free(want, NULL);
}

static void parse_ok(const char *str, const char *name, uint16_t weight)
{
	mxp_weight_entry_t e;
	char err[ERR_LEN] = "";
	memset(&e, 0xaa, sizeof(e));
	int ret = conf_parse_weight(str, &e, err, sizeof(err));
	if (ret != KNOT_EOK) {
		print_error("'%s' rejected: %s\n", str, err);
	}
	assert_int_equal(ret, KNOT_EOK);
	expect_name(e.name, name);
	assert_int_equal(e.weight, weight);
}

/* The value must be rejected with KNOT_EINVAL and a non-empty message that
 * contains 'offending' (the bad part of the value). */
static void parse_err(const char *str, const char *offending)
{
	mxp_weight_entry_t e;
	char err[ERR_LEN];
	memset(err, 0, sizeof(err));
	int ret = conf_parse_weight(str, &e, err, sizeof(err));
	if (ret != KNOT_EINVAL) {
		print_error("'%s' not rejected (ret %d)\n", str, ret);
	}
	assert_int_equal(ret, KNOT_EINVAL);
	assert_true(strlen(err) > 0);
	assert_true(strlen(err) < ERR_LEN);
	if (offending != NULL && strstr(err, offending) == NULL) {
		print_error("error for '%s' does not name '%s': %s\n", str, offending, err);
		fail();
	}
}

static void test_weight_plain(void **state)
{
	(void)state;
	parse_ok("mx1.example.com 10", "mx1.example.com.", 10);
}

static void test_weight_trailing_dot(void **state)
{
	(void)state;
	parse_ok("mx1.example.com. 10", "mx1.example.com.", 10);
}

static void test_weight_blanks_and_case(void **state)
{
	(void)state;
	parse_ok("  MX1.Example.COM.   65535  ", "mx1.example.com.", 65535);
}

static void test_weight_zero(void **state)
{
	(void)state;
	parse_ok("mx1.example.com 0", "mx1.example.com.", 0);
}

static void test_weight_bounds(void **state)
{
	(void)state;
	parse_ok("mx2.example.net. 1", "mx2.example.net.", 1);
	parse_ok("mx2.example.net. 65534", "mx2.example.net.", 65534);
}

static void test_weight_with_and_without_dot_equal(void **state)
{
	(void)state;
	mxp_weight_entry_t a, b;
	char err[ERR_LEN];
	assert_int_equal(conf_parse_weight("mx1.example.com 5", &a, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_parse_weight("MX1.EXAMPLE.COM. 5", &b, err, sizeof(err)), KNOT_EOK);
	assert_true(knot_dname_is_equal(a.name, b.name));
}

static void test_weight_err_missing_weight(void **state)
{
	(void)state;
	parse_err("mx1.example.com", "mx1.example.com");
}

static void test_weight_err_not_number(void **state)
{
	(void)state;
	parse_err("mx1.example.com abc", "abc");
}

static void test_weight_err_too_big(void **state)
{
	(void)state;
	parse_err("mx1.example.com 65536", "65536");
}

static void test_weight_err_negative(void **state)
{
	(void)state;
	parse_err("mx1.example.com -1", "-1");
}

static void test_weight_err_extra_token(void **state)
{
	(void)state;
	parse_err("mx1.example.com 10 extra", "extra");
}

static void test_weight_err_empty(void **state)
{
	(void)state;
	parse_err("", NULL);
	parse_err("   ", NULL);
}

static void test_weight_err_bad_name(void **state)
{
	(void)state;
	parse_err("bad..name 5", "bad..name");
}

static void test_weight_err_number_suffix(void **state)
{
	(void)state;
	parse_err("mx 1x", "1x");
}

static void test_weight_err_huge_number(void **state)
{
	(void)state;
	/* Would wrap to 10 modulo 2^32 or 2^64 in a careless parser. */
	parse_err("mx1.example.com 4294967306", "4294967306");
	parse_err("mx1.example.com 18446744073709551626", "18446744073709551626");
}

static void test_ttl_ok(void **state)
{
	(void)state;
	char err[ERR_LEN];
	assert_int_equal(conf_check_ttl(0, 0, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_check_ttl(60, 0, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_check_ttl(0, 60, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_check_ttl(60, 60, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_check_ttl(60, 300, err, sizeof(err)), KNOT_EOK);
	/* ttl-max 0 means no bound, so any ttl-min is fine. */
	assert_int_equal(conf_check_ttl(86400, 0, err, sizeof(err)), KNOT_EOK);
}

static void test_ttl_min_above_max(void **state)
{
	(void)state;
	char err[ERR_LEN];
	memset(err, 0, sizeof(err));
	assert_int_equal(conf_check_ttl(300, 60, err, sizeof(err)), KNOT_EINVAL);
	if (strstr(err, "300") == NULL || strstr(err, "60") == NULL) {
		print_error("ttl error does not name both values: %s\n", err);
		fail();
	}

	memset(err, 0, sizeof(err));
	assert_int_equal(conf_check_ttl(61, 60, err, sizeof(err)), KNOT_EINVAL);
	if (strstr(err, "61") == NULL || strstr(err, "60") == NULL) {
		print_error("ttl error does not name both values: %s\n", err);
		fail();
	}
}

static void test_weight_find(void **state)
{
	(void)state;
	mxp_weight_entry_t tab[3];
	char err[ERR_LEN];
	assert_int_equal(conf_parse_weight("mx1.example.com 10", &tab[0], err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_parse_weight("MX2.example.com. 20", &tab[1], err, sizeof(err)), KNOT_EOK);
	assert_int_equal(conf_parse_weight("backup.example.net 0", &tab[2], err, sizeof(err)), KNOT_EOK);

	knot_dname_storage_t q;
	assert_non_null(knot_dname_from_str(q, "mx1.example.com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), 0);

	/* Any case of the looked-up name. */
	assert_non_null(knot_dname_from_str(q, "Mx2.EXAMPLE.Com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), 1);
	assert_non_null(knot_dname_from_str(q, "BACKUP.EXAMPLE.NET.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), 2);
	assert_int_equal(tab[2].weight, 0);

	/* Missing names, including a suffix and a longer name. */
	assert_non_null(knot_dname_from_str(q, "mx3.example.com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), -1);
	assert_non_null(knot_dname_from_str(q, "example.com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), -1);
	assert_non_null(knot_dname_from_str(q, "a.mx1.example.com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 3, q), -1);

	/* Empty table. */
	assert_non_null(knot_dname_from_str(q, "mx1.example.com.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 0, q), -1);
	/* Only the first 'count' entries are searched. */
	assert_non_null(knot_dname_from_str(q, "backup.example.net.", sizeof(q)));
	assert_int_equal(conf_weight_find(tab, 2, q), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weight_plain),
		cmocka_unit_test(test_weight_trailing_dot),
		cmocka_unit_test(test_weight_blanks_and_case),
		cmocka_unit_test(test_weight_zero),
		cmocka_unit_test(test_weight_bounds),
		cmocka_unit_test(test_weight_with_and_without_dot_equal),
		cmocka_unit_test(test_weight_err_missing_weight),
		cmocka_unit_test(test_weight_err_not_number),
		cmocka_unit_test(test_weight_err_too_big),
		cmocka_unit_test(test_weight_err_negative),
		cmocka_unit_test(test_weight_err_extra_token),
		cmocka_unit_test(test_weight_err_empty),
		cmocka_unit_test(test_weight_err_bad_name),
		cmocka_unit_test(test_weight_err_number_suffix),
		cmocka_unit_test(test_weight_err_huge_number),
		cmocka_unit_test(test_ttl_ok),
		cmocka_unit_test(test_ttl_min_above_max),
		cmocka_unit_test(test_weight_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
