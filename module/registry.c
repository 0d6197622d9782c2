/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <stdlib.h>
#include <string.h>

#include "registry.h"

static registry_snap_t *current;

const registry_snap_t *registry_current(void)
{
	return rcu_dereference(current);
}

const mxp_exchanger_t *registry_find(const registry_snap_t *snap, const knot_dname_t *name)
{
	if (snap == NULL || snap->count == 0) {
		return NULL;
	}
	knot_dname_storage_t lower;
	knot_dname_copy_lower(lower, name);

	size_t lo = 0, hi = snap->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = knot_dname_cmp(snap->entries[mid].name, lower);
		if (cmp == 0) {
			return &snap->entries[mid];
		} else if (cmp < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

mxp_state_t registry_effective(const mxp_exchanger_t *entry)
{
	if (entry == NULL) {
		return MXP_STATE_UP;
	}
	switch (entry->op) {
	case MXP_OP_DOWN:
		return MXP_STATE_DOWN;
	case MXP_OP_DRAIN:
		return MXP_STATE_DRAIN;
	default:
		return MXP_STATE_UP;
	}
}

registry_snap_t *registry_copy(const registry_snap_t *snap)
{
	registry_snap_t *copy = calloc(1, sizeof(*copy));
	if (copy == NULL) {
		return NULL;
	}
	if (snap == NULL) {
		return copy;
	}
	copy->generation = snap->generation;
	copy->suspend = snap->suspend;
	if (snap->count > 0) {
		copy->entries = malloc(snap->count * sizeof(*copy->entries));
		if (copy->entries == NULL) {
			free(copy);
			return NULL;
		}
		memcpy(copy->entries, snap->entries, snap->count * sizeof(*copy->entries));
		copy->count = snap->count;
	}
	return copy;
}

int registry_set(registry_snap_t *snap, const mxp_exchanger_t *entry)
{
	size_t lo = 0, hi = snap->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (knot_dname_cmp(snap->entries[mid].name, entry->name) < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	bool exists = lo < snap->count && knot_dname_cmp(snap->entries[lo].name, entry->name) == 0;
	bool empty = entry->op == MXP_OP_AUTO && entry->weight == MXP_WEIGHT_NONE;

	if (empty) {
		if (exists) {
			memmove(&snap->entries[lo], &snap->entries[lo + 1],
			        (snap->count - lo - 1) * sizeof(*snap->entries));
			snap->count--;
		}
		return KNOT_EOK;
	}
	if (exists) {
		snap->entries[lo] = *entry;
		return KNOT_EOK;
	}

	mxp_exchanger_t *grown = realloc(snap->entries, (snap->count + 1) * sizeof(*grown));
	if (grown == NULL) {
		return KNOT_ENOMEM;
	}
	snap->entries = grown;
	memmove(&grown[lo + 1], &grown[lo], (snap->count - lo) * sizeof(*grown));
	grown[lo] = *entry;
	snap->count++;
	return KNOT_EOK;
}

void registry_free(registry_snap_t *snap)
{
	if (snap != NULL) {
		free(snap->entries);
		free(snap);
	}
}

static void reclaim(struct rcu_head *head)
{
	registry_free(caa_container_of(head, registry_snap_t, rcu));
}

void registry_publish(registry_snap_t *snap)
{
	registry_snap_t *old = rcu_dereference(current);
	snap->generation = (old != NULL ? old->generation : 0) + 1;
	old = rcu_xchg_pointer(&current, snap);
	if (old != NULL) {
		call_rcu(&old->rcu, reclaim);
	}
}

void registry_destroy(void)
{
	registry_snap_t *old = rcu_xchg_pointer(&current, NULL);
	if (old != NULL) {
		synchronize_rcu();
		registry_free(old);
	}
}
