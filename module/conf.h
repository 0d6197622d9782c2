/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file conf.h
 * \brief Pure parsing and validation of mod-mxpolicy configuration values.
 *
 * Used both by the conf-check callback and by load(), so knotc conf-check
 * and knotd reject the same values with the same messages.
 */

#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>

/*! One "EXCHANGER-FQDN WEIGHT" entry, name lowercased in wire format. */
typedef struct {
	knot_dname_storage_t name;
	uint16_t weight;
} mxp_weight_entry_t;

/*!
 * \brief Parse a weight item value "EXCHANGER-FQDN WEIGHT".
 *
 * The name may be given with or without the trailing dot; WEIGHT is a
 * decimal number 0..65535. Leading/trailing blanks are tolerated, anything
 * else is an error.
 *
 * \param str     NUL-terminated item value.
 * \param out     Parsed entry.
 * \param err     Error text buffer (filled on error, names the value).
 * \param err_len Size of err.
 *
 * \return KNOT_EOK or KNOT_EINVAL.
 */
int conf_parse_weight(const char *str, mxp_weight_entry_t *out, char *err, size_t err_len);

/*!
 * \brief Check TTL bounds: ttl-min must not exceed ttl-max when both are set (non-zero).
 *
 * \return KNOT_EOK or KNOT_EINVAL with a message in err.
 */
int conf_check_ttl(uint32_t ttl_min, uint32_t ttl_max, char *err, size_t err_len);

/*!
 * \brief Look up the weight of an exchanger in a table of entries.
 *
 * \param name Exchanger name, wire format, any case.
 *
 * \return Index of the entry or -1 if not listed.
 */
int conf_weight_find(const mxp_weight_entry_t *entries, size_t count, const knot_dname_t *name);
