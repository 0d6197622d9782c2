/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <stddef.h>

#include "exchanger.h"

const char *exchanger_op_name(mxp_opstate_t op)
{
	switch (op) {
	case MXP_OP_AUTO:  return "auto";
	case MXP_OP_UP:    return "up";
	case MXP_OP_DOWN:  return "down";
	case MXP_OP_DRAIN: return "drain";
	default:           return NULL;
	}
}
