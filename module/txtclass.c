/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <string.h>
#include <strings.h>

#include "txtclass.h"

/* Does the wire label at 'label' equal 'text' (case-insensitive)? */
static bool label_is(const uint8_t *label, const char *text)
{
	size_t len = strlen(text);
	return label[0] == len && strncasecmp((const char *)label + 1, text, len) == 0;
}

static bool later_label_is(const knot_dname_t *owner, const char *text)
{
	if (*owner == 0) {
		return false;
	}
	for (const uint8_t *l = owner + 1 + owner[0]; *l != 0; l += 1 + l[0]) {
		if (label_is(l, text)) {
			return true;
		}
	}
	return false;
}

static bool is_spf(const knot_rdataset_t *rrs)
{
	static const char tag[] = "v=spf1";
	const size_t tag_len = sizeof(tag) - 1;

	knot_rdata_t *rd = rrs->rdata;
	for (uint16_t i = 0; i < rrs->count; i++, rd = knot_rdataset_next(rd)) {
		if (rd->len < 1) {
			continue;
		}
		size_t slen = rd->data[0];
		if (slen + 1 > rd->len || slen < tag_len) {
			continue;
		}
		const char *s = (const char *)rd->data + 1;
		if (strncasecmp(s, tag, tag_len) == 0 &&
		    (slen == tag_len || s[tag_len] == ' ')) {
			return true;
		}
	}
	return false;
}

mxp_txt_class_t txtclass_classify(const knot_dname_t *owner, const knot_rdataset_t *rrs)
{
	if (owner != NULL && *owner != 0) {
		if (label_is(owner, "_dmarc")) {
			return MXP_TXT_DMARC;
		}
		if (label_is(owner, "_mta-sts")) {
			return MXP_TXT_MTASTS;
		}
		if (label_is(owner, "_smtp") && label_is(owner + 1 + owner[0], "_tls")) {
			return MXP_TXT_TLSRPT;
		}
		if (later_label_is(owner, "_domainkey")) {
			return MXP_TXT_DKIM;
		}
		if (later_label_is(owner, "_bimi")) {
			return MXP_TXT_BIMI;
		}
	}
	if (rrs != NULL && is_spf(rrs)) {
		return MXP_TXT_SPF;
	}
	return MXP_TXT_OTHER;
}
