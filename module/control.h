/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file control.h
 * \brief The operator control socket: one thread shared by every instance.
 *
 * The first instance to load starts it (after reading the state file into
 * the registry, so the first query already sees the operator's states);
 * the last to unload stops and joins it. Reloads load new instances before
 * unloading old ones, so the thread, the socket and the registry survive.
 */

#pragma once

#include <limits.h>
#include <stddef.h>

typedef struct {
	char socket_path[PATH_MAX];
	char state_path[PATH_MAX];
} control_conf_t;

/*!
 * \brief Take a reference; the first one loads the state and starts the thread.
 *
 * \return KNOT_EOK, or an error with a message in err (nothing started).
 */
int control_acquire(const control_conf_t *conf, char *err, size_t err_len);

/*! Drop a reference; the last one stops and joins the thread. */
void control_release(void);

/*! Is the running thread using these paths? (A reload cannot move it.) */
bool control_same_conf(const control_conf_t *conf);

/*!
 * \brief Log from a thread that outlives module instances (the control and
 *        signer threads): to knotd's stderr, or syslog when that is /dev/null.
 */
__attribute__((format(printf, 2, 3)))
void ctl_log(int prio, const char *fmt, ...);
