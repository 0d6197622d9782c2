/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of persist.h: the state file round-trips exactly, every
 * damaged or foreign file is refused as a whole with KNOT_EMALF, and a save
 * either replaces the file completely or leaves the old one untouched.
 */

#define _GNU_SOURCE

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "exchanger.h"
#include "persist.h"

#define HUGE_SIZE       (16u * 1024 * 1024 + 1)
#define MAX_ENTRIES     100000
#define NOBODY          65534

static char base_dir[] = "/tmp/mxp-persist-XXXXXX";

/* ---------------------------------------------------------------------- */
/* Helpers.                                                                */
/* ---------------------------------------------------------------------- */

static const char *path_in(const char *name)
{
	static char path[2][512];
	static int which;
	which ^= 1;
	snprintf(path[which], sizeof(path[which]), "%s/%s", base_dir, name);
	return path[which];
}

static void write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

static char *read_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	size_t n;
	while ((n = fread(buf + used, 1, cap - used, f)) > 0) {
		used += n;
		if (used == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[used] = '\0';
	*len = used;
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Number of directory entries whose name contains 'needle'. */
static unsigned count_matching(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, needle) != NULL) {
			count++;
		}
	}
	closedir(d);
	return count;
}

static void set_entry(mxp_exchanger_t *e, const char *name, mxp_opstate_t op,
                      int32_t weight, const char *reason, uint32_t uid,
                      int64_t since, int64_t until)
{
	memset(e, 0, sizeof(*e));
	assert_non_null(knot_dname_from_str(e->name, name, sizeof(e->name)));
	e->op = op;
	e->weight = weight;
	assert_true(strlen(reason) <= MXP_PROTO_MAX_REASON);
	strcpy(e->reason, reason);
	e->uid = uid;
	e->since = since;
	e->until = until;
}

/* A document exercising every field; entries[5] is auto without a weight
 * override and is not written. */
static mxp_state_doc_t *sample_doc(void)
{
	static mxp_exchanger_t entries[6];
	static mxp_state_doc_t doc;
	memset(&doc, 0, sizeof(doc));
	doc.suspend.on = true;
	strcpy(doc.suspend.reason, "incident 42: 100% of mail = bad; \"stop\"");
	doc.suspend.uid = 1000;
	doc.suspend.since = 1700000000;

	set_entry(&entries[0], "mx1.mail.example.net.", MXP_OP_DOWN, MXP_WEIGHT_NONE,
	          "disk replaced, 50% done", 0, 1700000100, 1700007300);
	set_entry(&entries[1], "mx2.mail.example.net.", MXP_OP_DRAIN, 0,
	          "caf\xc3\xa9 \xe2\x98\x83 ma\xc3\xaf" "ntenance ~/.:@,*+-_", 4294967295u,
	          INT64_MAX, 0);
	set_entry(&entries[2], "mx3.example.", MXP_OP_UP, 65535, "", 12, 0, 0);
	set_entry(&entries[3], "odd\\032label\\255.example.", MXP_OP_AUTO, 7, "-", 1, 2, 3);
	set_entry(&entries[4], "a.b.c.d.example.org.", MXP_OP_DOWN, 1,
	          "%%2D%zz %20 = & ? # [] {}", 33, 44, 55);
	set_entry(&entries[5], "skipped.example.", MXP_OP_AUTO, MXP_WEIGHT_NONE,
	          "not written", 5, 6, 0);
	doc.entries = entries;
	doc.count = 6;
	return &doc;
}

static void assert_entry_equal(const mxp_exchanger_t *a, const mxp_exchanger_t *b)
{
	assert_true(knot_dname_is_case_equal(a->name, b->name));
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->weight, b->weight);
	assert_string_equal(a->reason, b->reason);
	assert_int_equal(a->uid, b->uid);
	assert_true(a->since == b->since);
	assert_true(a->until == b->until);
}

/* Loaded document equals 'doc' without its auto/no-weight entries. */
static void assert_doc_equal(const mxp_state_doc_t *doc, const mxp_state_doc_t *got)
{
	assert_int_equal(got->suspend.on, doc->suspend.on);
	assert_string_equal(got->suspend.reason, doc->suspend.reason);
	assert_int_equal(got->suspend.uid, doc->suspend.uid);
	assert_true(got->suspend.since == doc->suspend.since);

	size_t j = 0;
	for (size_t i = 0; i < doc->count; i++) {
		const mxp_exchanger_t *e = &doc->entries[i];
		if (e->op == MXP_OP_AUTO && e->weight == MXP_WEIGHT_NONE) {
			continue;
		}
		assert_true(j < got->count);
		assert_entry_equal(e, &got->entries[j]);
		j++;
	}
	assert_int_equal(got->count, j);
}

static void assert_doc_empty(const mxp_state_doc_t *doc)
{
	assert_int_equal(doc->count, 0);
	assert_null(doc->entries);
	assert_false(doc->suspend.on);
	assert_string_equal(doc->suspend.reason, "");
}

/* Input of the table-driven case being checked, printed on failure. */
static const char *current_case;

/* Load must fail with KNOT_EMALF, nothing returned, err starting with 'prefix'. */
static void assert_malformed(const char *path, const char *prefix)
{
	mxp_state_doc_t doc;
	memset(&doc, 0xA5, sizeof(doc));
	char err[256] = "";
	int ret = persist_load(path, &doc, err, sizeof(err));
	if (ret != KNOT_EMALF) {
		print_error("expected KNOT_EMALF, got %d (%s)\n", ret, err);
		if (current_case != NULL) {
			print_error("input:\n%s\n", current_case);
		}
	}
	assert_int_equal(ret, KNOT_EMALF);
	assert_doc_empty(&doc);
	assert_true(err[0] != '\0');
	if (prefix != NULL && strncmp(err, prefix, strlen(prefix)) != 0) {
		print_error("error '%s' does not start with '%s'\n", err, prefix);
		if (current_case != NULL) {
			print_error("input:\n%s\n", current_case);
		}
		fail();
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(base_dir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	chmod(base_dir, 0700);
	return nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------------- */
/* Tests.                                                                  */
/* ---------------------------------------------------------------------- */

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(exchanger_op_name(MXP_OP_AUTO), "auto");
	assert_string_equal(exchanger_op_name(MXP_OP_UP), "up");
	assert_string_equal(exchanger_op_name(MXP_OP_DOWN), "down");
	assert_string_equal(exchanger_op_name(MXP_OP_DRAIN), "drain");
	assert_null(exchanger_op_name((mxp_opstate_t)4));
	assert_null(exchanger_op_name((mxp_opstate_t)-1));
}

static void test_round_trip(void **state)
{
	(void)state;
	const char *path = path_in("round.state");
	mxp_state_doc_t *doc = sample_doc();
	char err[256] = "";
	assert_int_equal(persist_save(path, doc, err, sizeof(err)), KNOT_EOK);

	mxp_state_doc_t got;
	assert_int_equal(persist_load(path, &got, err, sizeof(err)), KNOT_EOK);
	assert_doc_equal(doc, &got);
	assert_int_equal(got.count, 5);
	/* Stored names are lowercase wire format. */
	for (size_t i = 0; i < got.count; i++) {
		knot_dname_storage_t lower;
		knot_dname_copy_lower(lower, got.entries[i].name);
		assert_true(knot_dname_is_equal(lower, got.entries[i].name));
	}
	persist_doc_free(&got);
	assert_null(got.entries);
	assert_int_equal(got.count, 0);

	/* Saving what was loaded gives the same bytes. */
	size_t len1, len2;
	char *first = read_bytes(path, &len1);
	assert_int_equal(persist_load(path, &got, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(persist_save(path, &got, err, sizeof(err)), KNOT_EOK);
	persist_doc_free(&got);
	char *second = read_bytes(path, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(first, second, len1);
	free(first);
	free(second);
}

static void test_exact_format(void **state)
{
	(void)state;
	const char *path = path_in("format.state");
	mxp_exchanger_t e[2];
	set_entry(&e[0], "MX1.Example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, "disk 100% full", 1000,
	          1700000000, 1700003600);
	set_entry(&e[1], "mx2.example.", MXP_OP_UP, 0, "-", 0, 5, 0);
	mxp_state_doc_t doc = { .entries = e, .count = 2 };
	char err[256] = "";
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EOK);

	size_t len;
	char *text = read_bytes(path, &len);
	assert_string_equal(text,
		"mxpolicy-state 1\n"
		"suspend 0 0 0 -\n"
		"exchanger mx1.example. down - 1000 1700000000 1700003600 disk%20100%25%20full\n"
		"exchanger mx2.example. up 0 0 5 0 %2D\n"
		"end 2\n");
	free(text);

	/* A hand-written file (lowercase escapes accepted) loads too. */
	write_text(path,
		"mxpolicy-state 1\n"
		"suspend 1 7 8 planned%20work%2c%20see%20ticket\n"
		"exchanger MX9.Example. drain 10 1 2 3 -\n"
		"end 1\n");
	mxp_state_doc_t got;
	assert_int_equal(persist_load(path, &got, err, sizeof(err)), KNOT_EOK);
	assert_true(got.suspend.on);
	assert_string_equal(got.suspend.reason, "planned work, see ticket");
	assert_int_equal(got.count, 1);
	knot_dname_storage_t want;
	knot_dname_from_str(want, "mx9.example.", sizeof(want));
	assert_true(knot_dname_is_equal(got.entries[0].name, want));
	assert_int_equal(got.entries[0].op, MXP_OP_DRAIN);
	assert_int_equal(got.entries[0].weight, 10);
	persist_doc_free(&got);
}

static void test_empty_doc(void **state)
{
	(void)state;
	const char *path = path_in("empty.state");
	mxp_state_doc_t doc = { 0 };
	char err[256] = "";
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EOK);
	mxp_state_doc_t got;
	assert_int_equal(persist_load(path, &got, err, sizeof(err)), KNOT_EOK);
	assert_doc_empty(&got);
	persist_doc_free(&got);
}

static void test_missing_file(void **state)
{
	(void)state;
	mxp_state_doc_t doc;
	memset(&doc, 0xA5, sizeof(doc));
	char err[256] = "";
	assert_int_equal(persist_load(path_in("no-such.state"), &doc, err, sizeof(err)),
	                 KNOT_ENOENT);
	assert_doc_empty(&doc);
	assert_non_null(strstr(err, "No such file"));
}

static void test_truncated_everywhere(void **state)
{
	(void)state;
	const char *path = path_in("trunc.state");
	char err[256] = "";
	assert_int_equal(persist_save(path, sample_doc(), err, sizeof(err)), KNOT_EOK);
	size_t len;
	char *full = read_bytes(path, &len);
	assert_true(len > 100);

	const char *cut = path_in("trunc-cut.state");
	for (size_t n = 0; n <= len; n++) {
		write_bytes(cut, full, n);
		mxp_state_doc_t doc;
		memset(&doc, 0xA5, sizeof(doc));
		int ret = persist_load(cut, &doc, err, sizeof(err));
		if (n == len) {
			assert_int_equal(ret, KNOT_EOK);
			assert_doc_equal(sample_doc(), &doc);
			persist_doc_free(&doc);
		} else {
			if (ret != KNOT_EMALF) {
				print_error("prefix of %zu bytes: got %d\n", n, ret);
			}
			assert_int_equal(ret, KNOT_EMALF);
			assert_doc_empty(&doc);
			assert_true(strncmp(err, "line ", 5) == 0);
		}
	}
	free(full);
}

#define HDR "mxpolicy-state 1\nsuspend 0 0 0 -\n"
#define GOOD "exchanger mx1.example. down - 0 1 0 -\n"

static void test_corrupt_files(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "", "line 1:" },
		{ "mxpolicy-stat 1\nsuspend 0 0 0 -\nend 0\n", "line 1: not a" },
		{ "mxpolicy-state 2\nsuspend 0 0 0 -\nend 0\n", "line 1: unsupported" },
		{ "mxpolicy-state 1 x\nsuspend 0 0 0 -\nend 0\n", "line 1:" },
		{ "mxpolicy-state\nsuspend 0 0 0 -\nend 0\n", "line 1: not a" },
		{ "# mxpolicy-state 1\nsuspend 0 0 0 -\nend 0\n", "line 1: not a" },
		{ "mxpolicy-state 1\nend 0\n", "line 2:" },
		{ "mxpolicy-state 1\nsuspend 2 0 0 -\nend 0\n", "line 2:" },
		{ "mxpolicy-state 1\nsuspend 0 0 0\nend 0\n", "line 2:" },
		{ "mxpolicy-state 1\nsuspend 0 -1 0 -\nend 0\n", "line 2:" },
		{ "mxpolicy-state 1\nsuspend 0 0 0 -\n", "line 3:" },
		{ HDR "exchanger mx1.example. sideways - 0 1 0 -\nend 1\n", "line 3: invalid state" },
		{ HDR "exchanger mx1.example. DOWN - 0 1 0 -\nend 1\n", "line 3: invalid state" },
		{ HDR "exchanger mx1.example. down 70000 0 1 0 -\nend 1\n", "line 3: invalid weight" },
		{ HDR "exchanger mx1.example. down 65536 0 1 0 -\nend 1\n", "line 3: invalid weight" },
		{ HDR "exchanger mx1.example. down -1 0 1 0 -\nend 1\n", "line 3: invalid weight" },
		{ HDR "exchanger mx1.example. down 01 0 1 0 -\nend 1\n", "line 3: invalid weight" },
		{ HDR "exchanger mx1.example. down +1 0 1 0 -\nend 1\n", "line 3: invalid weight" },
		{ HDR "exchanger mx1.example. down - 4294967296 1 0 -\nend 1\n", "line 3: invalid uid" },
		{ HDR "exchanger mx1.example. down - 0 -5 0 -\nend 1\n", "line 3: invalid time" },
		{ HDR "exchanger mx1.example. down - 0 1 9223372036854775808 -\nend 1\n", "line 3: invalid time" },
		{ HDR "exchanger mx1.example down - 0 1 0 -\nend 1\n", "line 3: name" },
		{ HDR "exchanger mx1.example\\. down - 0 1 0 -\nend 1\n", "line 3: name" },
		{ HDR "exchanger mx1..example. down - 0 1 0 -\nend 1\n", "line 3: invalid name" },
		{ HDR "exchanger 0123456789012345678901234567890123456789012345678901234567890123.x. "
		  "down - 0 1 0 -\nend 1\n", "line 3: invalid name" },
		{ HDR "exchanger mx1.example. down - 0 1 0\nend 1\n", "line 3: expected" },
		{ HDR "exchanger mx1.example. down - 0 1 0 - x\nend 1\n", "line 3: too many" },
		{ HDR "exchanger mx1.example. down - 0 1 0 a b c d\nend 1\n", "line 3: too many" },
		{ HDR "exchanger mx1.example. down - 0 1 0 %G1\nend 1\n", "line 3: bad escape" },
		{ HDR "exchanger mx1.example. down - 0 1 0 ab%2\nend 1\n", "line 3: bad escape" },
		{ HDR "exchanger mx1.example. down - 0 1 0 %00\nend 1\n", "line 3: control" },
		{ HDR "exchanger mx1.example. down - 0 1 0 a%0Ab\nend 1\n", "line 3: control" },
		{ HDR "exchanger mx1.example. down - 0 1 0 a=b\nend 1\n", "line 3: unencoded" },
		{ HDR "exchanger mx1.example.  down - 0 1 0 -\nend 1\n", "line 3: stray space" },
		{ HDR "exchanger mx1.example. down - 0 1 0 - \nend 1\n", "line 3: stray space" },
		{ HDR GOOD "exchanger MX1.EXAMPLE. up - 0 1 0 -\nend 2\n", "line 4: duplicate" },
		{ HDR GOOD "exchanger mx2.example. up - 0 1 0 -\n"
		  "exchanger mx2.example. up 1 0 1 0 -\nend 3\n", "line 5: duplicate" },
		{ HDR GOOD "end 2\n", "line 4: trailer" },
		{ HDR GOOD "end 0\n", "line 4: trailer" },
		{ HDR GOOD "end\n", "line 4: expected" },
		{ HDR GOOD "end 1 1\n", "line 4: expected" },
		{ HDR GOOD "end 01\n", "line 4: expected" },
		{ HDR GOOD "end 1\nend 1\n", "line 5: data after" },
		{ HDR GOOD "end 1\n\n", "line 5: data after" },
		{ HDR GOOD "end 1", "line 4: no end of line" },
		{ HDR "hello world\nend 0\n", "line 3: unknown record" },
		{ HDR "\nend 0\n", "line 3: empty line" },
		{ HDR GOOD "end 1\r\n", "line 4: invalid byte 0x0d" },
		{ HDR "exchanger mx1.example. down - 0 1 0 \tx\nend 1\n", "line 3: invalid byte" },
		{ HDR "exchanger caf\xc3\xa9.example. down - 0 1 0 -\nend 1\n", "line 3: invalid byte" },
		{ "mxpolicy-state 1\r\nsuspend 0 0 0 -\r\nend 0\r\n", "line 1:" },
	};

	const char *path = path_in("corrupt.state");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_text(path, cases[i].text);
		current_case = cases[i].text;
		assert_malformed(path, cases[i].err);
	}
	current_case = NULL;

	/* A reason of 201 bytes. */
	char line[1024];
	char reason[MXP_PROTO_MAX_REASON + 2];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	snprintf(line, sizeof(line), HDR "exchanger mx1.example. down - 0 1 0 %s\nend 1\n", reason);
	write_text(path, line);
	assert_malformed(path, "line 3: reason too long");
	/* 200 bytes are fine. */
	reason[MXP_PROTO_MAX_REASON] = '\0';
	snprintf(line, sizeof(line), HDR "exchanger mx1.example. down - 0 1 0 %s\nend 1\n", reason);
	write_text(path, line);
	mxp_state_doc_t doc;
	char err[256];
	assert_int_equal(persist_load(path, &doc, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(strlen(doc.entries[0].reason), MXP_PROTO_MAX_REASON);
	persist_doc_free(&doc);

	/* A NUL byte inside a line. */
	static const char with_nul[] = HDR "exchanger mx1.example. down - 0 1 0 a\0b\nend 1\n";
	write_bytes(path, with_nul, sizeof(with_nul) - 1);
	assert_malformed(path, "line 3: invalid byte 0x00");

	/* A line far too long. */
	size_t big = 100000;
	char *long_line = malloc(big + 64);
	assert_non_null(long_line);
	strcpy(long_line, HDR "exchanger ");
	size_t used = strlen(long_line);
	memset(long_line + used, 'a', big);
	strcpy(long_line + used + big, "\nend 1\n");
	write_text(path, long_line);
	free(long_line);
	assert_malformed(path, "line 3: longer than");
}

static void test_binary_junk(void **state)
{
	(void)state;
	const char *path = path_in("junk.state");
	uint64_t seed = 0x6d78706f6c696379;
	unsigned char buf[4096];
	for (unsigned round = 0; round < 200; round++) {
		size_t len = 1 + round * 20;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			buf[i] = (unsigned char)(seed >> 56);
		}
		write_bytes(path, buf, len);
		assert_malformed(path, NULL);
	}

	/* Junk after a valid header, and a valid file with one flipped byte. */
	size_t len;
	char err[256] = "";
	assert_int_equal(persist_save(path, sample_doc(), err, sizeof(err)), KNOT_EOK);
	char *good = read_bytes(path, &len);
	char *bad = malloc(len + 64);
	assert_non_null(bad);
	memcpy(bad, good, 40);
	memcpy(bad + 40, "\x01\xff\x00\x80garbage\n", 12);
	write_bytes(path, bad, 52);
	assert_malformed(path, "line ");
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, good, len);
		bad[i] = (char)0x80;
		write_bytes(path, bad, len);
		assert_malformed(path, "line ");
	}
	free(bad);
	free(good);
}

static void test_huge_file(void **state)
{
	(void)state;
	const char *path = path_in("huge.state");

	/* Sparse, beyond the cap: refused without reading it. */
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64u * 1024 * 1024), 0);
	assert_int_equal(close(fd), 0);
	assert_malformed(path, "file larger than");

	/* Just over the cap with real content that starts like a state file. */
	char *buf = malloc(HUGE_SIZE);
	assert_non_null(buf);
	memset(buf, 'x', HUGE_SIZE);
	memcpy(buf, HDR, strlen(HDR));
	write_bytes(path, buf, HUGE_SIZE);
	free(buf);
	assert_malformed(path, "file larger than");

	/* Not a regular file: a configuration error, not corruption (nothing to move aside). */
	const char *dir = path_in("dir.state");
	assert_int_equal(mkdir(dir, 0700), 0);
	mxp_state_doc_t doc = { 0 };
	char err[256] = "";
	assert_int_equal(persist_load(dir, &doc, err, sizeof(err)), KNOT_EINVAL);
	assert_doc_empty(&doc);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(dir), 0);
}

static void test_entry_limit(void **state)
{
	(void)state;
	const char *path = path_in("many.state");
	mxp_state_doc_t doc = { .count = MAX_ENTRIES + 1 };
	doc.entries = calloc(doc.count, sizeof(*doc.entries));
	assert_non_null(doc.entries);
	for (size_t i = 0; i < doc.count; i++) {
		char name[64];
		snprintf(name, sizeof(name), "mx%zu.example.", i);
		set_entry(&doc.entries[i], name, MXP_OP_DOWN, MXP_WEIGHT_NONE, "", 0, 1, 0);
	}

	/* One too many: refused, nothing written. */
	char err[256] = "";
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_ESPACE);
	assert_false(exists(path));

	/* The limit itself round-trips. */
	doc.count = MAX_ENTRIES;
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EOK);
	mxp_state_doc_t got;
	assert_int_equal(persist_load(path, &got, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(got.count, MAX_ENTRIES);
	assert_entry_equal(&doc.entries[MAX_ENTRIES - 1], &got.entries[MAX_ENTRIES - 1]);
	persist_doc_free(&got);

	/* A file with one more line than allowed. */
	size_t len;
	char *text = read_bytes(path, &len);
	char *more = malloc(len + 128);
	assert_non_null(more);
	memcpy(more, text, len + 1);
	char *end = strstr(more, "end 100000\n");
	assert_non_null(end);
	strcpy(end, "exchanger extra.example. down - 0 1 0 -\nend 100001\n");
	write_text(path, more);
	free(more);
	free(text);
	assert_malformed(path, "line 100003: more than");

	free(doc.entries);
}

static void test_save_rejects_invalid(void **state)
{
	(void)state;
	const char *path = path_in("invalid.state");
	char err[256] = "";
	mxp_exchanger_t e[2];
	mxp_state_doc_t doc = { .entries = e, .count = 1 };

	set_entry(&e[0], "mx1.example.", MXP_OP_DOWN, 70000, "", 0, 1, 0);
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);
	assert_non_null(strstr(err, "weight"));

	set_entry(&e[0], "mx1.example.", (mxp_opstate_t)9, MXP_WEIGHT_NONE, "", 0, 1, 0);
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);

	set_entry(&e[0], "mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, "a\nb", 0, 1, 0);
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);
	assert_non_null(strstr(err, "control"));

	set_entry(&e[0], "mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, "", 0, -1, 0);
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);

	set_entry(&e[0], "mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, "", 0, 1, 0);
	memset(e[0].reason, 'x', sizeof(e[0].reason));  /* Not terminated. */
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);

	set_entry(&e[0], "mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, "", 0, 1, 0);
	set_entry(&e[1], "MX1.EXAMPLE.", MXP_OP_UP, MXP_WEIGHT_NONE, "", 0, 1, 0);
	doc.count = 2;
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);
	assert_non_null(strstr(err, "twice"));

	doc.count = 0;
	strcpy(doc.suspend.reason, "bad\x7f");
	assert_int_equal(persist_save(path, &doc, err, sizeof(err)), KNOT_EINVAL);

	assert_false(exists(path));
	assert_int_equal(count_matching(base_dir, "invalid.state.tmp."), 0);
}

static void test_no_temp_left(void **state)
{
	(void)state;
	const char *path = path_in("clean.state");
	char err[256] = "";
	for (int i = 0; i < 3; i++) {
		assert_int_equal(persist_save(path, sample_doc(), err, sizeof(err)), KNOT_EOK);
	}
	assert_int_equal(count_matching(base_dir, "clean.state.tmp."), 0);
	assert_int_equal(count_matching(base_dir, "clean.state"), 1);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	mode_t mask = umask(0);
	umask(mask);
	assert_int_equal(st.st_mode & 07777, 0640 & ~mask);

	/* A relative path (temporary file and directory sync in "."). */
	char cwd[1024];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(base_dir), 0);
	assert_int_equal(persist_save("relative.state", sample_doc(), err, sizeof(err)), KNOT_EOK);
	assert_int_equal(chdir(cwd), 0);
	assert_true(exists(path_in("relative.state")));
	assert_int_equal(count_matching(base_dir, "relative.state.tmp."), 0);
}

/* Save a one-entry document whose reason marks the version. */
static int save_version(const char *path, const char *version, char *err, size_t err_len)
{
	mxp_exchanger_t e;
	set_entry(&e, "mx1.example.", MXP_OP_DOWN, MXP_WEIGHT_NONE, version, 0, 1, 0);
	mxp_state_doc_t doc = { .entries = &e, .count = 1 };
	return persist_save(path, &doc, err, err_len);
}

static void assert_version(const char *path, const char *version)
{
	mxp_state_doc_t doc;
	char err[256] = "";
	assert_int_equal(persist_load(path, &doc, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(doc.count, 1);
	assert_string_equal(doc.entries[0].reason, version);
	persist_doc_free(&doc);
}

static void test_failed_save_keeps_old(void **state)
{
	(void)state;
	const char *path = path_in("keep.state");
	char err[256] = "";
	assert_int_equal(save_version(path, "old", err, sizeof(err)), KNOT_EOK);

	/* The temporary name is taken by a directory: the save fails early. */
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(mkdir(tmp, 0700), 0);
	err[0] = '\0';
	assert_int_not_equal(save_version(path, "new", err, sizeof(err)), KNOT_EOK);
	assert_true(err[0] != '\0');
	assert_version(path, "old");
	assert_int_equal(rmdir(tmp), 0);

	/* A stale regular temporary file (a crashed process with our pid). */
	write_text(tmp, "half-written junk");
	assert_int_equal(save_version(path, "new", err, sizeof(err)), KNOT_EOK);
	assert_version(path, "new");
	assert_false(exists(tmp));

	/* Writing fails half-way (file size limit) in a child: the old file
	 * stays whole and the temporary file is removed. */
	char big[MXP_PROTO_MAX_REASON + 1];
	memset(big, 'b', MXP_PROTO_MAX_REASON);
	big[MXP_PROTO_MAX_REASON] = '\0';
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit lim = { .rlim_cur = 64, .rlim_max = 64 };
		if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
			_exit(2);
		}
		char cerr[256] = "";
		int ret = save_version(path, big, cerr, sizeof(cerr));
		char ctmp[600];
		snprintf(ctmp, sizeof(ctmp), "%s.tmp.%ld", path, (long)getpid());
		_exit(ret != KNOT_EOK && strncmp(cerr, "write", 5) == 0 && !exists(ctmp) ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_version(path, "new");
	assert_int_equal(count_matching(base_dir, "keep.state.tmp."), 0);
}

static void test_dir_not_writable(void **state)
{
	(void)state;
	const char *dir = path_in("ro");
	assert_int_equal(mkdir(dir, 0755), 0);
	char path[600];
	snprintf(path, sizeof(path), "%s/state", dir);
	char err[256] = "";
	assert_int_equal(save_version(path, "old", err, sizeof(err)), KNOT_EOK);
	size_t len1;
	char *before = read_bytes(path, &len1);

	if (geteuid() == 0) {
		/* Root writes anywhere: try as nobody in a child. */
		assert_int_equal(chmod(base_dir, 0711), 0);
		assert_int_equal(chmod(path, 0644), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
				_exit(2);
			}
			char cerr[256] = "";
			int ret = save_version(path, "new", cerr, sizeof(cerr));
			_exit(ret == KNOT_EACCES && strstr(cerr, "Permission denied") != NULL ? 0 : 1);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_int_equal(chmod(base_dir, 0700), 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	} else {
		assert_int_equal(chmod(dir, 0555), 0);
		assert_int_equal(save_version(path, "new", err, sizeof(err)), KNOT_EACCES);
		assert_non_null(strstr(err, "Permission denied"));
		assert_int_equal(chmod(dir, 0755), 0);
	}

	size_t len2;
	char *after = read_bytes(path, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(before, after, len1);
	free(before);
	free(after);
	assert_version(path, "old");
	assert_int_equal(count_matching(dir, ".tmp."), 0);

	/* A directory that does not exist. */
	assert_int_equal(save_version(path_in("nodir/state"), "x", err, sizeof(err)), KNOT_ENOENT);
	assert_non_null(strstr(err, "No such file"));
}

static void test_move_aside(void **state)
{
	(void)state;
	const char *path = path_in("bad.state");
	char moved1[600], moved2[600], prefix[600];
	snprintf(prefix, sizeof(prefix), "%s.corrupt-", path);

	write_text(path, "first bad file\n");
	assert_int_equal(persist_move_aside(path, moved1, sizeof(moved1)), KNOT_EOK);
	assert_false(exists(path));
	assert_true(strncmp(moved1, prefix, strlen(prefix)) == 0);
	size_t len;
	char *text = read_bytes(moved1, &len);
	assert_string_equal(text, "first bad file\n");
	free(text);

	/* The same second (almost surely): a distinct name, nothing replaced. */
	write_text(path, "second bad file\n");
	assert_int_equal(persist_move_aside(path, moved2, sizeof(moved2)), KNOT_EOK);
	assert_string_not_equal(moved1, moved2);
	assert_true(strncmp(moved2, prefix, strlen(prefix)) == 0);
	text = read_bytes(moved1, &len);
	assert_string_equal(text, "first bad file\n");
	free(text);
	text = read_bytes(moved2, &len);
	assert_string_equal(text, "second bad file\n");
	free(text);

	/* Force the collision: take the next names by hand. */
	write_text(path, "third\n");
	char moved3[600];
	time_t now = time(NULL);
	char taken[700];
	unsigned created = 0;
	for (int i = 0; i <= 3; i++) {
		if (i == 0) {
			snprintf(taken, sizeof(taken), "%s%lld", prefix, (long long)now);
		} else {
			snprintf(taken, sizeof(taken), "%s%lld-%d", prefix, (long long)now, i);
		}
		if (!exists(taken)) {
			write_text(taken, "taken\n");
			created++;
		}
	}
	assert_int_equal(persist_move_aside(path, moved3, sizeof(moved3)), KNOT_EOK);
	text = read_bytes(moved3, &len);
	assert_string_equal(text, "third\n");
	free(text);
	assert_int_equal(count_matching(base_dir, "bad.state.corrupt-"), 3 + created);

	/* Nothing to move; no room for the name (the file stays). */
	assert_int_equal(persist_move_aside(path, moved1, sizeof(moved1)), KNOT_ENOENT);
	write_text(path, "fourth\n");
	assert_int_equal(persist_move_aside(path, moved1, 10), KNOT_ESPACE);
	assert_true(exists(path));

	/* A loaded-then-refused file is moved aside and a fresh save works. */
	assert_malformed(path, NULL);
	assert_int_equal(persist_move_aside(path, moved1, sizeof(moved1)), KNOT_EOK);
	char err[256] = "";
	mxp_state_doc_t doc;
	assert_int_equal(persist_load(path, &doc, err, sizeof(err)), KNOT_ENOENT);
	assert_int_equal(save_version(path, "fresh", err, sizeof(err)), KNOT_EOK);
	assert_version(path, "fresh");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_exact_format),
		cmocka_unit_test(test_empty_doc),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_binary_junk),
		cmocka_unit_test(test_huge_file),
		cmocka_unit_test(test_entry_limit),
		cmocka_unit_test(test_save_rejects_invalid),
		cmocka_unit_test(test_no_temp_left),
		cmocka_unit_test(test_failed_save_keeps_old),
		cmocka_unit_test(test_dir_not_writable),
		cmocka_unit_test(test_move_aside),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
