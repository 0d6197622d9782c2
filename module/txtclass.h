/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file txtclass.h
 * \brief Classification of TXT sets that belong to email (SPF, DMARC, DKIM,
 *        MTA-STS, TLS-RPT, BIMI).
 */

#pragma once

#include <stdbool.h>

#include <libknot/libknot.h>

typedef enum {
	MXP_TXT_OTHER = 0,
	MXP_TXT_SPF,      /*!< Some string of the set starts "v=spf1" (then blank or end). */
	MXP_TXT_DMARC,    /*!< Owner _dmarc.<domain>. */
	MXP_TXT_DKIM,     /*!< Owner <selector>._domainkey.<domain> (selector may have several labels). */
	MXP_TXT_MTASTS,   /*!< Owner _mta-sts.<domain>. */
	MXP_TXT_TLSRPT,   /*!< Owner _smtp._tls.<domain>. */
	MXP_TXT_BIMI,     /*!< Owner <selector>._bimi.<domain>. */
} mxp_txt_class_t;

/*!
 * \brief Classify a TXT set by its owner name (any case) and rdata.
 *
 * Owner-based classes are checked first; SPF by content (case-insensitive
 * "v=spf1" at the start of a record's first character-string, followed by
 * a blank or the end of that string).
 */
mxp_txt_class_t txtclass_classify(const knot_dname_t *owner, const knot_rdataset_t *rrs);
