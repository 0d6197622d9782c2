/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file exchanger.h
 * \brief What the operator has said about one exchanger (server-wide).
 */

#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "mxpolicy/protocol.h"

/*! Operator state of an exchanger. */
typedef enum {
	MXP_OP_AUTO = 0, /*!< No operator state: up (later: what probes say). */
	MXP_OP_UP,
	MXP_OP_DOWN,
	MXP_OP_DRAIN,
} mxp_opstate_t;

/*! Weight override value meaning "none: use the zone's configured weight". */
#define MXP_WEIGHT_NONE (-1)

typedef struct {
	knot_dname_storage_t name;              /*!< Lowercase wire format. */
	mxp_opstate_t op;                       /*!< Operator state. */
	int32_t weight;                         /*!< 0..65535 or MXP_WEIGHT_NONE. */
	char reason[MXP_PROTO_MAX_REASON + 1];  /*!< Operator's reason ("" if none). */
	uint32_t uid;                           /*!< Peer uid that set the state. */
	int64_t since;                          /*!< When the state was set (unix time). */
	int64_t until;                          /*!< Back to auto at this time; 0 = never. */
} mxp_exchanger_t;

/*! The server-wide switch: every answer passes unmodified while suspended. */
typedef struct {
	bool on;
	char reason[MXP_PROTO_MAX_REASON + 1];
	uint32_t uid;
	int64_t since;
} mxp_suspend_t;

/*! Names of operator states as used in the protocol, logs and state file. */
const char *exchanger_op_name(mxp_opstate_t op);
