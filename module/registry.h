/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file registry.h
 * \brief The process-wide exchanger health registry.
 *
 * One immutable snapshot is current at a time. Readers (query hooks, which
 * knotd runs inside an RCU read-side section) take it without locks;
 * the single writer (the control thread) builds a new snapshot, publishes
 * it and reclaims the old one after a grace period.
 */

#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu.h>

#include "exchanger.h"
#include "policy.h"

typedef struct registry_snap {
	uint64_t generation;        /*!< Changes with every publication; never 0. */
	mxp_suspend_t suspend;
	size_t count;
	mxp_exchanger_t *entries;   /*!< Sorted by name (knot_dname_cmp). */
	struct rcu_head rcu;
} registry_snap_t;

/*! Current snapshot; call inside an RCU read-side section. NULL before init. */
const registry_snap_t *registry_current(void);

/*! Entry of an exchanger (name in any case), or NULL. */
const mxp_exchanger_t *registry_find(const registry_snap_t *snap, const knot_dname_t *name);

/*! The state the policy sees: auto and up are up. */
mxp_state_t registry_effective(const mxp_exchanger_t *entry);

/*! A new, private, modifiable copy of a snapshot (NULL: an empty one). */
registry_snap_t *registry_copy(const registry_snap_t *snap);

/*!
 * \brief Set (insert or replace) an entry in a private copy; an entry that
 *        says nothing (auto, no weight override) is removed instead.
 */
int registry_set(registry_snap_t *snap, const mxp_exchanger_t *entry);

/*!
 * \brief Publish a private copy as the current snapshot (writer only).
 *
 * The previous snapshot is reclaimed after a grace period; the calling
 * thread must be RCU-registered.
 */
void registry_publish(registry_snap_t *snap);

/*! Free a private copy that was never published. */
void registry_free(registry_snap_t *snap);

/*! Unpublish and free the current snapshot (last unload; waits for readers). */
void registry_destroy(void);
