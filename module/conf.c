/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"

static const char *skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p;
}

static const char *token_end(const char *p)
{
	while (*p != '\0' && *p != ' ' && *p != '\t') {
		p++;
	}
	return p;
}

int conf_parse_weight(const char *str, mxp_weight_entry_t *out, char *err, size_t err_len)
{
	if (str == NULL || out == NULL) {
		snprintf(err, err_len, "missing weight value");
		return KNOT_EINVAL;
	}

	const char *name = skip_blank(str);
	const char *name_end = token_end(name);
	const char *num = skip_blank(name_end);
	const char *num_end = token_end(num);
	const char *rest = skip_blank(num_end);

	if (name == name_end || num == num_end || *rest != '\0') {
		snprintf(err, err_len, "invalid weight '%s', expected 'EXCHANGER-FQDN WEIGHT'", str);
		return KNOT_EINVAL;
	}

	char name_buf[KNOT_DNAME_TXT_MAXLEN + 2];
	size_t name_len = name_end - name;
	if (name_len >= sizeof(name_buf)) {
		snprintf(err, err_len, "invalid weight '%s', exchanger name too long", str);
		return KNOT_EINVAL;
	}
	memcpy(name_buf, name, name_len);
	name_buf[name_len] = '\0';
	if (knot_dname_from_str(out->name, name_buf, sizeof(out->name)) == NULL) {
		snprintf(err, err_len, "invalid weight '%s', '%s' is not a domain name",
		         str, name_buf);
		return KNOT_EINVAL;
	}
	knot_dname_to_lower(out->name);

	uint32_t weight = 0;
	for (const char *p = num; p < num_end; p++) {
		if (!isdigit((unsigned char)*p) || weight > 65535) {
			weight = UINT32_MAX;
			break;
		}
		weight = weight * 10 + (*p - '0');
	}
	if (weight > 65535) {
		snprintf(err, err_len, "invalid weight '%s', '%.*s' is not a number 0..65535",
		         str, (int)(num_end - num), num);
		return KNOT_EINVAL;
	}
	out->weight = weight;

	return KNOT_EOK;
}

int conf_check_ttl(uint32_t ttl_min, uint32_t ttl_max, char *err, size_t err_len)
{
	if (ttl_min > 0 && ttl_max > 0 && ttl_min > ttl_max) {
		snprintf(err, err_len, "ttl-min %u is above ttl-max %u", ttl_min, ttl_max);
		return KNOT_EINVAL;
	}
	return KNOT_EOK;
}

/* Compare a lowercased name with a name of any case (hot path: flat loop, no call). */
static bool lower_name_equal(const uint8_t *lower, const uint8_t *name)
{
	size_t label = 0;
	for (size_t i = 0; ; i++) {
		uint8_t a = lower[i], b = name[i];
		if (i == label) {
			if (a != b) {
				return false;
			}
			if (a == 0) {
				return true;
			}
			label = i + a + 1;
		} else if (a != ((b >= 'A' && b <= 'Z') ? b + ('a' - 'A') : b)) {
			return false;
		}
	}
}

int conf_weight_find(const mxp_weight_entry_t *entries, size_t count, const knot_dname_t *name)
{
	for (size_t i = 0; i < count; i++) {
		if (lower_name_equal(entries[i].name, name)) {
			return i;
		}
	}
	return -1;
}
