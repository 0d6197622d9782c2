/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file protocol.h
 * \brief Parsing and formatting of control socket requests (see
 *        include/mxpolicy/protocol.h), shared by the module and mxpolicyctl.
 *
 * Pure: no I/O, no knotd.
 */

#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "mxpolicy/protocol.h"

typedef enum {
	MXP_CMD_VERSION = 0,
	MXP_CMD_STATUS,
	MXP_CMD_STATS,
	MXP_CMD_DOWN,
	MXP_CMD_DRAIN,
	MXP_CMD_UP,
	MXP_CMD_AUTO,
	MXP_CMD_WEIGHT,
	MXP_CMD_SUSPEND,
	MXP_CMD_RESUME,
} mxp_cmd_t;

typedef struct {
	mxp_cmd_t cmd;
	bool has_name;
	knot_dname_storage_t name;              /*!< Lowercase wire format. */
	char reason[MXP_PROTO_MAX_REASON + 1];  /*!< "" when not given. */
	uint32_t for_seconds;                   /*!< 0 when not given. */
	int32_t weight;                         /*!< weight: 0..65535 or -1 for "default". */
	bool force;
	bool dry_run;
	bool json;
} mxp_request_t;

/*! Options as bits, in the order proto_format_request() writes them. */
enum {
	MXP_OPT_REASON  = 1 << 0,
	MXP_OPT_FOR     = 1 << 1,
	MXP_OPT_FORCE   = 1 << 2,
	MXP_OPT_DRY_RUN = 1 << 3,
	MXP_OPT_JSON    = 1 << 4,
};

/*! What a command takes: positional arguments (NAME, then N|default) and options. */
typedef struct {
	unsigned min_args;
	unsigned max_args;
	unsigned opts;  /*!< MXP_OPT_* bits. */
} mxp_cmd_syntax_t;

/*! The syntax of a command (the one table the server and mxpolicyctl share), or NULL. */
const mxp_cmd_syntax_t *proto_cmd_syntax(mxp_cmd_t cmd);

/*! Command name as written in requests ("down", ...), or NULL. */
const char *proto_cmd_name(mxp_cmd_t cmd);

/*! Command by name; KNOT_EOK or KNOT_EINVAL. */
int proto_cmd_by_name(const char *name, mxp_cmd_t *cmd);

/*!
 * \brief Parse one request line (with or without the final LF).
 *
 * Checks everything the header promises: magic, command, arity, options
 * allowed for the command, values, duplicate options, sizes. On error,
 * err gets one line of text naming the offending part.
 *
 * \return KNOT_EOK, KNOT_EINVAL (bad request), KNOT_ESPACE (too long).
 */
int proto_parse_request(const char *line, size_t len, mxp_request_t *req,
                        char *err, size_t err_len);

/*!
 * \brief Format a request line, LF included, NUL-terminated.
 *
 * \return Length written (without the NUL), or KNOT_ESPACE / KNOT_EINVAL.
 */
int proto_format_request(const mxp_request_t *req, char *buf, size_t buf_len);

/*!
 * \brief Parse a duration: seconds ("7200") or units ("2h", "1h30m", "90s", "1d").
 *
 * \return KNOT_EOK, or KNOT_EINVAL for anything else, zero, or above MXP_PROTO_MAX_FOR.
 */
int proto_parse_duration(const char *text, uint32_t *seconds);

/*!
 * \brief Percent-encode 'len' bytes of 'in' (see the header for the safe set).
 *
 * \return Length written (without the NUL), or KNOT_ESPACE.
 */
int proto_encode(const char *in, size_t len, char *out, size_t out_len);

/*!
 * \brief Decode a percent-encoded token; rejects bad escapes and NUL bytes.
 *
 * \return Length written (without the NUL), KNOT_EINVAL or KNOT_ESPACE.
 */
int proto_decode(const char *in, size_t len, char *out, size_t out_len);
