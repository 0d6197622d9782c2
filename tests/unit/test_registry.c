/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of registry.h: copy-on-write snapshots, sorted lookup in any
 * case, effective states, publication with growing generations.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "registry.h"

static mxp_exchanger_t entry(const char *name, mxp_opstate_t op, int32_t weight)
{
	mxp_exchanger_t e;
	memset(&e, 0, sizeof(e));
	assert_non_null(knot_dname_from_str(e.name, name, sizeof(e.name)));
	knot_dname_to_lower(e.name);
	e.op = op;
	e.weight = weight;
	return e;
}

static const mxp_exchanger_t *find(const registry_snap_t *snap, const char *name)
{
	knot_dname_storage_t n;
	assert_non_null(knot_dname_from_str(n, name, sizeof(n)));
	return registry_find(snap, n);
}

static void test_set_find_sorted(void **state)
{
	(void)state;
	registry_snap_t *s = registry_copy(NULL);
	const char *names[] = { "mx3.example.", "a.example.", "mx1.example.", "z.other.", "mx2.example." };
	for (size_t i = 0; i < 5; i++) {
		mxp_exchanger_t e = entry(names[i], MXP_OP_DOWN, MXP_WEIGHT_NONE);
		assert_int_equal(registry_set(s, &e), KNOT_EOK);
	}
	assert_int_equal(s->count, 5);
	for (size_t i = 1; i < s->count; i++) {
		assert_true(knot_dname_cmp(s->entries[i - 1].name, s->entries[i].name) < 0);
	}
	for (size_t i = 0; i < 5; i++) {
		assert_non_null(find(s, names[i]));
	}
	/* Any case finds the entry; unknown names do not. */
	assert_non_null(find(s, "MX2.Example."));
	assert_null(find(s, "mx4.example."));
	assert_null(registry_find(NULL, s->entries[0].name));
	registry_free(s);
}

static void test_replace_and_remove(void **state)
{
	(void)state;
	registry_snap_t *s = registry_copy(NULL);
	mxp_exchanger_t e = entry("mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE);
	assert_int_equal(registry_set(s, &e), KNOT_EOK);
	e.op = MXP_OP_DRAIN;
	assert_int_equal(registry_set(s, &e), KNOT_EOK);
	assert_int_equal(s->count, 1);
	assert_int_equal(find(s, "mx1.example.")->op, MXP_OP_DRAIN);

	/* auto with a weight override is kept; plain auto says nothing and goes. */
	e.op = MXP_OP_AUTO;
	e.weight = 5;
	assert_int_equal(registry_set(s, &e), KNOT_EOK);
	assert_int_equal(s->count, 1);
	e.weight = MXP_WEIGHT_NONE;
	assert_int_equal(registry_set(s, &e), KNOT_EOK);
	assert_int_equal(s->count, 0);
	registry_free(s);
}

static void test_effective(void **state)
{
	(void)state;
	mxp_exchanger_t e = entry("mx.example.", MXP_OP_AUTO, MXP_WEIGHT_NONE);
	assert_int_equal(registry_effective(NULL), MXP_STATE_UP);
	assert_int_equal(registry_effective(&e), MXP_STATE_UP);
	e.op = MXP_OP_UP;
	assert_int_equal(registry_effective(&e), MXP_STATE_UP);
	e.op = MXP_OP_DOWN;
	assert_int_equal(registry_effective(&e), MXP_STATE_DOWN);
	e.op = MXP_OP_DRAIN;
	assert_int_equal(registry_effective(&e), MXP_STATE_DRAIN);
}

static void test_copy_is_private(void **state)
{
	(void)state;
	registry_snap_t *a = registry_copy(NULL);
	mxp_exchanger_t e = entry("mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE);
	assert_int_equal(registry_set(a, &e), KNOT_EOK);
	registry_snap_t *b = registry_copy(a);
	e = entry("mx2.example.", MXP_OP_DRAIN, MXP_WEIGHT_NONE);
	assert_int_equal(registry_set(b, &e), KNOT_EOK);
	assert_int_equal(a->count, 1);
	assert_int_equal(b->count, 2);
	assert_null(find(a, "mx2.example."));
	registry_free(a);
	registry_free(b);
}

static void test_publish_generations(void **state)
{
	(void)state;
	rcu_register_thread();
	assert_null(registry_current());
	uint64_t last = 0;
	for (int i = 0; i < 5; i++) {
		rcu_read_lock();
		registry_snap_t *next = registry_copy(registry_current());
		rcu_read_unlock();
		mxp_exchanger_t e = entry("mx1.example.", i % 2 ? MXP_OP_DOWN : MXP_OP_DRAIN,
		                          MXP_WEIGHT_NONE);
		assert_int_equal(registry_set(next, &e), KNOT_EOK);
		registry_publish(next);

		rcu_read_lock();
		const registry_snap_t *cur = registry_current();
		assert_ptr_equal(cur, next);
		assert_true(cur->generation > last);
		last = cur->generation;
		assert_int_equal(find(cur, "mx1.example.")->op, i % 2 ? MXP_OP_DOWN : MXP_OP_DRAIN);
		rcu_read_unlock();
	}
	registry_destroy();
	assert_null(registry_current());
	rcu_barrier();
	rcu_unregister_thread();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_find_sorted),
		cmocka_unit_test(test_replace_and_remove),
		cmocka_unit_test(test_effective),
		cmocka_unit_test(test_copy_is_private),
		cmocka_unit_test(test_publish_generations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
