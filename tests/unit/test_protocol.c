/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * Unit tests of protocol.h: control socket request parsing and formatting,
 * durations, percent-encoding, malformed and oversized input, and a
 * fixed-seed fuzz loop.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libknot/libknot.h>

#include "protocol.h"

#define ERR_LEN 256

/* ---- helpers ------------------------------------------------------------ */

/* Parse a NUL-terminated line; fail the test with the message if refused. */
static mxp_request_t parse_ok(const char *line)
{
	mxp_request_t req;
	char err[ERR_LEN] = "";
	int ret = proto_parse_request(line, strlen(line), &req, err, sizeof(err));
	if (ret != KNOT_EOK) {
		print_error("refused '%s': %s\n", line, err);
	}
	assert_int_equal(ret, KNOT_EOK);
	return req;
}

/* The error message must be one line of printable text. */
static void assert_one_line(const char *err)
{
	assert_true(strlen(err) > 0);
	for (const char *c = err; *c != '\0'; c++) {
		assert_true((uint8_t)*c >= 0x20 && (uint8_t)*c < 0x7f);
	}
}

/* Parse 'len' bytes expecting 'expect', with 'culprit' in the message. */
static void parse_fail_len(const char *line, size_t len, int expect, const char *culprit)
{
	mxp_request_t req;
	char err[ERR_LEN] = "";
	int ret = proto_parse_request(line, len, &req, err, sizeof(err));
	if (ret != expect || (culprit != NULL && strstr(err, culprit) == NULL)) {
		print_error("line '%.*s': got %d '%s', expected %d naming '%s'\n",
		            (int)(len > 200 ? 200 : len), line, ret, err, expect,
		            culprit ? culprit : "");
	}
	assert_int_equal(ret, expect);
	assert_one_line(err);
	if (culprit != NULL) {
		assert_non_null(strstr(err, culprit));
	}
}

static void parse_fail(const char *line, const char *culprit)
{
	parse_fail_len(line, strlen(line), KNOT_EINVAL, culprit);
}

static mxp_request_t make_req(mxp_cmd_t cmd, const char *name)
{
	mxp_request_t req;
	memset(&req, 0, sizeof(req));
	req.cmd = cmd;
	if (name != NULL) {
		assert_non_null(knot_dname_from_str(req.name, name, sizeof(req.name)));
		knot_dname_to_lower(req.name);
		req.has_name = true;
	}
	return req;
}

static void assert_req_equal(const mxp_request_t *a, const mxp_request_t *b)
{
	assert_int_equal(a->cmd, b->cmd);
	assert_int_equal(a->has_name, b->has_name);
	if (a->has_name) {
		assert_true(knot_dname_is_equal(a->name, b->name));
	}
	assert_string_equal(a->reason, b->reason);
	assert_int_equal(a->for_seconds, b->for_seconds);
	if (a->cmd == MXP_CMD_WEIGHT) {
		assert_int_equal(a->weight, b->weight);
	}
	assert_int_equal(a->force, b->force);
	assert_int_equal(a->dry_run, b->dry_run);
	assert_int_equal(a->json, b->json);
}

/* Format, check the line's shape, parse it back and compare. */
static void round_trip(const mxp_request_t *req)
{
	char line[MXP_PROTO_MAX_REQUEST + 1];
	int len = proto_format_request(req, line, sizeof(line));
	if (len < 0) {
		print_error("format failed: %d (%s)\n", len, knot_strerror(len));
	}
	assert_true(len > 0);
	assert_int_equal(strlen(line), (size_t)len);
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', len - 1));
	assert_int_equal(strncmp(line, MXP_PROTO_MAGIC " ", 6), 0);
	/* Only safe bytes, '%', '=' and single spaces between tokens. */
	for (int i = 0; i < len - 1; i++) {
		uint8_t c = line[i];
		assert_true(c > 0x20 && c < 0x7f ? true : c == ' ');
		assert_false(c == ' ' && (i == 0 || line[i - 1] == ' '));
	}

	mxp_request_t back;
	memset(&back, 0xa5, sizeof(back));
	char err[ERR_LEN] = "";
	int ret = proto_parse_request(line, len, &back, err, sizeof(err));
	if (ret != KNOT_EOK) {
		print_error("'%s' does not parse back: %s\n", line, err);
	}
	assert_int_equal(ret, KNOT_EOK);
	assert_req_equal(req, &back);

	/* Formatting the parsed request gives the same line. */
	char again[MXP_PROTO_MAX_REQUEST + 1];
	assert_int_equal(proto_format_request(&back, again, sizeof(again)), len);
	assert_string_equal(line, again);
}

/* ---- command names ------------------------------------------------------ */

static void test_cmd_names(void **state)
{
	(void)state;
	static const char *names[] = {
		"version", "status", "stats", "down", "drain",
		"up", "auto", "weight", "suspend", "resume",
	};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(proto_cmd_name((mxp_cmd_t)i), names[i]);
		mxp_cmd_t cmd = MXP_CMD_VERSION;
		assert_int_equal(proto_cmd_by_name(names[i], &cmd), KNOT_EOK);
		assert_int_equal(cmd, (mxp_cmd_t)i);
	}
	assert_null(proto_cmd_name((mxp_cmd_t)10));
	assert_null(proto_cmd_name((mxp_cmd_t)-1));
	mxp_cmd_t cmd;
	assert_int_equal(proto_cmd_by_name("DOWN", &cmd), KNOT_EINVAL);
	assert_int_equal(proto_cmd_by_name("dow", &cmd), KNOT_EINVAL);
	assert_int_equal(proto_cmd_by_name("downs", &cmd), KNOT_EINVAL);
	assert_int_equal(proto_cmd_by_name("", &cmd), KNOT_EINVAL);
	assert_int_equal(proto_cmd_by_name(NULL, &cmd), KNOT_EINVAL);
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_every_command(void **state)
{
	(void)state;
	knot_dname_storage_t mx1;
	assert_non_null(knot_dname_from_str(mx1, "mx1.example.net.", sizeof(mx1)));

	mxp_request_t r = parse_ok("MXP/1 version\n");
	assert_int_equal(r.cmd, MXP_CMD_VERSION);
	assert_false(r.has_name);
	assert_string_equal(r.reason, "");
	assert_int_equal(r.for_seconds, 0);
	assert_false(r.force || r.dry_run || r.json);

	r = parse_ok("MXP/1 status\n");
	assert_int_equal(r.cmd, MXP_CMD_STATUS);
	assert_false(r.has_name);
	assert_false(r.json);

	r = parse_ok("MXP/1 status mx1.example.net json=1\n");
	assert_int_equal(r.cmd, MXP_CMD_STATUS);
	assert_true(r.has_name);
	assert_true(knot_dname_is_equal(r.name, mx1));
	assert_true(r.json);

	r = parse_ok("MXP/1 stats json=1\n");
	assert_int_equal(r.cmd, MXP_CMD_STATS);
	assert_true(r.json);
	r = parse_ok("MXP/1 stats\n");
	assert_int_equal(r.cmd, MXP_CMD_STATS);
	assert_false(r.json);

	r = parse_ok("MXP/1 down mx1.example.net. reason=disk%20full for=2h force=1 dry-run=1\n");
	assert_int_equal(r.cmd, MXP_CMD_DOWN);
	assert_true(knot_dname_is_equal(r.name, mx1));
	assert_string_equal(r.reason, "disk full");
	assert_int_equal(r.for_seconds, 7200);
	assert_true(r.force);
	assert_true(r.dry_run);
	assert_false(r.json);

	r = parse_ok("MXP/1 down mx1.example.net\n");
	assert_int_equal(r.cmd, MXP_CMD_DOWN);
	assert_string_equal(r.reason, "");
	assert_int_equal(r.for_seconds, 0);
	assert_false(r.force || r.dry_run);

	r = parse_ok("MXP/1 drain mx1.example.net for=90m reason=maintenance\n");
	assert_int_equal(r.cmd, MXP_CMD_DRAIN);
	assert_true(knot_dname_is_equal(r.name, mx1));
	assert_int_equal(r.for_seconds, 5400);
	assert_string_equal(r.reason, "maintenance");

	r = parse_ok("MXP/1 up mx1.example.net reason=fixed dry-run=1\n");
	assert_int_equal(r.cmd, MXP_CMD_UP);
	assert_string_equal(r.reason, "fixed");
	assert_true(r.dry_run);

	r = parse_ok("MXP/1 auto mx1.example.net\n");
	assert_int_equal(r.cmd, MXP_CMD_AUTO);
	assert_true(knot_dname_is_equal(r.name, mx1));

	r = parse_ok("MXP/1 weight mx1.example.net 250\n");
	assert_int_equal(r.cmd, MXP_CMD_WEIGHT);
	assert_true(knot_dname_is_equal(r.name, mx1));
	assert_int_equal(r.weight, 250);
	r = parse_ok("MXP/1 weight mx1.example.net 0\n");
	assert_int_equal(r.weight, 0);
	r = parse_ok("MXP/1 weight mx1.example.net 65535 dry-run=1\n");
	assert_int_equal(r.weight, 65535);
	assert_true(r.dry_run);
	r = parse_ok("MXP/1 weight mx1.example.net default\n");
	assert_int_equal(r.weight, -1);
	r = parse_ok("MXP/1 weight mx1.example.net 007\n");
	assert_int_equal(r.weight, 7);

	r = parse_ok("MXP/1 suspend reason=incident%2042\n");
	assert_int_equal(r.cmd, MXP_CMD_SUSPEND);
	assert_false(r.has_name);
	assert_string_equal(r.reason, "incident 42");

	r = parse_ok("MXP/1 resume dry-run=1\n");
	assert_int_equal(r.cmd, MXP_CMD_RESUME);
	assert_true(r.dry_run);
}

static void test_parse_names(void **state)
{
	(void)state;
	knot_dname_storage_t want;
	assert_non_null(knot_dname_from_str(want, "mx1.example.net.", sizeof(want)));

	const char *same[] = {
		"MXP/1 auto mx1.example.net",
		"MXP/1 auto mx1.example.net.",
		"MXP/1 auto MX1.Example.NET.",
		"MXP/1 auto %6Dx1.example.net",     /* Needless but valid escape. */
		"MXP/1 auto mx1%2Eexample%2enet",   /* Escaped dots are still dots. */
		"MXP/1 auto \\077x1.example.net",   /* Presentation escape of 'M'. */
	};
	for (unsigned i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		mxp_request_t r = parse_ok(same[i]);
		assert_true(r.has_name);
		assert_true(knot_dname_is_equal(r.name, want));
		/* The rest of the storage is clean (whole-struct comparisons work). */
		size_t size = knot_dname_size(r.name);
		for (size_t j = size; j < sizeof(r.name); j++) {
			assert_int_equal(r.name[j], 0);
		}
	}

	/* A single label and a label with an encoded space. */
	mxp_request_t r = parse_ok("MXP/1 auto localhost");
	assert_int_equal(knot_dname_size(r.name), 11);
	r = parse_ok("MXP/1 auto a%20b.example");
	assert_non_null(knot_dname_from_str(want, "a\\032b.example.", sizeof(want)));
	assert_true(knot_dname_is_equal(r.name, want));
}

static void test_parse_line_endings(void **state)
{
	(void)state;
	const char *lines[] = {
		"MXP/1 down mx.example.",
		"MXP/1 down mx.example.\n",
		"MXP/1 down mx.example.\r\n",
	};
	for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		mxp_request_t r = parse_ok(lines[i]);
		assert_int_equal(r.cmd, MXP_CMD_DOWN);
	}
	/* The length decides, not a NUL terminator. */
	mxp_request_t req;
	char err[ERR_LEN];
	const char *buf = "MXP/1 version\nGARBAGE";
	assert_int_equal(proto_parse_request(buf, 14, &req, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(req.cmd, MXP_CMD_VERSION);
	/* No error buffer is fine. */
	assert_int_equal(proto_parse_request(buf, 14, &req, NULL, 0), KNOT_EOK);
	assert_int_equal(proto_parse_request("MXP/2 x", 7, &req, NULL, 0), KNOT_EINVAL);
	assert_int_equal(proto_parse_request(NULL, 0, &req, err, sizeof(err)), KNOT_EINVAL);
	/* Options before the positional arguments are fine. */
	req = parse_ok("MXP/1 weight dry-run=1 mx.example. 5");
	assert_int_equal(req.weight, 5);
	assert_true(req.dry_run);
}

/* ---- round trips -------------------------------------------------------- */

static void test_round_trip(void **state)
{
	(void)state;
	const char *names[] = {
		"mx1.example.net.", "a.", "mail-1.sub.example.co.uk.",
		"a\\032b.example.", "weird\\.dot.example.", "x\\000y.example.",
		"\\195\\169t\\195\\169.example.", "under_score.example.",
		"percent%.example.", "equals=sign.example.", "\\@.example.",
	};
	const char *reasons[] = {
		"", "x", "disk full", "100% broken", "a=b c=d", "%25 is not %",
		"caf\xc3\xa9 \xe2\x98\x95 ticket #42", "tab-free; quotes \" ' and \\",
		"  leading and trailing  ", "-._~:/+@,*", "\xff\x80\xfe",
	};

	/* Every command with every combination of options it takes. */
	for (unsigned cmd = MXP_CMD_VERSION; cmd <= MXP_CMD_RESUME; cmd++) {
		bool has_name = (cmd >= MXP_CMD_DOWN && cmd <= MXP_CMD_WEIGHT) ||
		                cmd == MXP_CMD_STATUS;
		bool reason = cmd == MXP_CMD_DOWN || cmd == MXP_CMD_DRAIN ||
		              cmd == MXP_CMD_UP || cmd == MXP_CMD_SUSPEND;
		bool dur = cmd == MXP_CMD_DOWN || cmd == MXP_CMD_DRAIN;
		bool change = cmd >= MXP_CMD_DOWN;
		bool json = cmd == MXP_CMD_STATUS || cmd == MXP_CMD_STATS;

		for (unsigned n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
			for (unsigned bits = 0; bits < 16; bits++) {
				mxp_request_t req = make_req((mxp_cmd_t)cmd,
				                             has_name ? names[n] : NULL);
				if (cmd == MXP_CMD_WEIGHT) {
					req.weight = (bits & 1) ? -1 : (int32_t)(n * 6553);
				}
				if (reason && (bits & 1)) {
					snprintf(req.reason, sizeof(req.reason), "%s",
					         reasons[n % (sizeof(reasons) / sizeof(reasons[0]))]);
				}
				if (dur && (bits & 2)) {
					req.for_seconds = 1 + n * 3600;
				}
				req.force = cmd == MXP_CMD_DOWN && (bits & 4);
				req.dry_run = change && (bits & 8);
				req.json = json && (bits & 2);
				round_trip(&req);
			}
			if (!has_name) {
				break;
			}
		}
	}

	/* status without a name. */
	mxp_request_t req = make_req(MXP_CMD_STATUS, NULL);
	round_trip(&req);
	req.json = true;
	round_trip(&req);

	/* Every reason on down, and the extremes. */
	for (unsigned i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		req = make_req(MXP_CMD_DOWN, "mx.example.");
		snprintf(req.reason, sizeof(req.reason), "%s", reasons[i]);
		round_trip(&req);
	}
	req = make_req(MXP_CMD_DRAIN, "mx.example.");
	memset(req.reason, '%', MXP_PROTO_MAX_REASON);      /* Longest, all escaped. */
	req.reason[MXP_PROTO_MAX_REASON] = '\0';
	req.for_seconds = MXP_PROTO_MAX_FOR;
	round_trip(&req);
	for (unsigned c = 0x20; c <= 0xff; c++) {           /* Every allowed byte. */
		if (c == 0x7f) {
			continue;
		}
		req = make_req(MXP_CMD_UP, "mx.example.");
		memset(req.reason, c, 3);
		round_trip(&req);
	}

	/* Longest names: 255 bytes of wire, every byte escaped. */
	req = make_req(MXP_CMD_WEIGHT, NULL);
	uint8_t *w = req.name;
	for (unsigned l = 0; l < 4; l++) {
		unsigned len = (l < 3) ? 63 : 61;
		*w++ = len;
		for (unsigned i = 0; i < len; i++) {
			*w++ = (uint8_t)(0x80 + i);
		}
	}
	*w = 0;
	assert_int_equal(knot_dname_size(req.name), KNOT_DNAME_MAXLEN);
	req.has_name = true;
	req.weight = 65535;
	req.dry_run = true;
	round_trip(&req);
}

static void test_format_rejects(void **state)
{
	(void)state;
	char buf[MXP_PROTO_MAX_REQUEST + 1];
	mxp_request_t req;

	/* What the parser would refuse is not written. */
	req = make_req(MXP_CMD_DOWN, NULL);                 /* No name. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_VERSION, "mx.example.");     /* Name not taken. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, ".");                  /* Root. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	req.name[0] = 0xc0;                                 /* Compression pointer. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	memset(req.name, 63, sizeof(req.name));             /* No terminal label. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	req.json = true;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DRAIN, "mx.example.");
	req.force = true;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_UP, "mx.example.");
	req.for_seconds = 60;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_AUTO, "mx.example.");
	strcpy(req.reason, "no");
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_STATUS, NULL);
	req.dry_run = true;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	req.for_seconds = MXP_PROTO_MAX_FOR + 1;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	strcpy(req.reason, "line\nbreak");
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	memset(req.reason, 'x', sizeof(req.reason));        /* Not terminated. */
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req = make_req(MXP_CMD_WEIGHT, "mx.example.");
	req.weight = 65536;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req.weight = -2;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	req.cmd = (mxp_cmd_t)10;
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), KNOT_EINVAL);
	assert_int_equal(proto_format_request(NULL, buf, sizeof(buf)), KNOT_EINVAL);

	/* Buffer sizes: exact fit works, one byte less does not. */
	req = make_req(MXP_CMD_DOWN, "mx.example.");
	strcpy(req.reason, "a b");
	const char *want = "MXP/1 down mx.example. reason=a%20b\n";
	size_t want_len = strlen(want);
	assert_int_equal(proto_format_request(&req, buf, want_len + 1), (int)want_len);
	assert_string_equal(buf, want);
	for (size_t size = 0; size <= want_len; size++) {
		assert_int_equal(proto_format_request(&req, buf, size), KNOT_ESPACE);
	}

	/* The fixed option order. */
	req = make_req(MXP_CMD_DOWN, "MX.Example");
	req.dry_run = req.force = true;
	req.for_seconds = 7200;
	strcpy(req.reason, "x=y");
	want = "MXP/1 down mx.example. reason=x%3Dy for=7200 force=1 dry-run=1\n";
	assert_int_equal(proto_format_request(&req, buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
	req = make_req(MXP_CMD_WEIGHT, "mx.example");
	req.weight = -1;
	assert_true(proto_format_request(&req, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "MXP/1 weight mx.example. default\n");
	req = make_req(MXP_CMD_STATUS, "mx.example");
	req.json = true;
	assert_true(proto_format_request(&req, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "MXP/1 status mx.example. json=1\n");
}

/* ---- errors ------------------------------------------------------------- */

static void test_errors_framing(void **state)
{
	(void)state;
	/* Magic. */
	parse_fail("MXP/2 version", "MXP/2");
	parse_fail("mxp/1 version", "mxp/1");
	parse_fail("MXP/1version", "MXP/1version");
	parse_fail("GET / HTTP/1.1", "'GET'");
	parse_fail("version", "'version'");
	parse_fail(" MXP/1 version", "magic ''");
	parse_fail("MXP/1", "missing command");
	parse_fail("MXP/1\n", "missing command");

	/* Empty. */
	parse_fail("", "empty");
	parse_fail("\n", "empty");
	parse_fail("\r\n", "empty");

	/* Embedded NUL and control characters. */
	parse_fail_len("MXP/1 version\0", 14, KNOT_EINVAL, "NUL byte at offset 13");
	parse_fail_len("MXP/1 down mx\0.example.\n", 24, KNOT_EINVAL, "NUL byte at offset 13");
	parse_fail_len("\0MXP/1 version\n", 15, KNOT_EINVAL, "NUL byte at offset 0");
	parse_fail("MXP/1 version\r", "0x0d");
	parse_fail("MXP/1 version\n\n", "0x0a at offset 13");
	parse_fail("MXP/1 version\nMXP/1 version\n", "0x0a at offset 13");
	parse_fail("MXP/1\tversion", "0x09");
	parse_fail("MXP/1 down mx.example. reason=a\x7f", "0x7f");
	parse_fail("MXP/1 down mx.example. reason=a\x1b[31m", "0x1b");

	/* Separators: exactly one space. */
	parse_fail("MXP/1  version", "empty command");
	parse_fail("MXP/1 ", "empty command");
	parse_fail("MXP/1 down  mx.example.", "empty argument at offset 11");
	parse_fail("MXP/1 version \n", "empty argument at offset 14");

	/* Too long: at most MXP_PROTO_MAX_REQUEST bytes including the LF. */
	size_t max = MXP_PROTO_MAX_REQUEST;
	char *line = malloc(max + 2);
	assert_non_null(line);
	const char *head = "MXP/1 weight mx.example. ";
	memset(line, '0', max + 1);
	memcpy(line, head, strlen(head));
	line[max - 2] = '7';
	line[max - 1] = '\n';
	line[max + 1] = '\0';
	mxp_request_t req;
	char err[ERR_LEN];
	/* Exactly the limit with its LF: fine. */
	assert_int_equal(proto_parse_request(line, max, &req, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(req.weight, 7);
	/* Without the LF: the LF it lacks is counted. */
	assert_int_equal(proto_parse_request(line, max - 1, &req, err, sizeof(err)), KNOT_EOK);
	line[max - 2] = '0';
	line[max - 1] = '7';
	parse_fail_len(line, max, KNOT_ESPACE, "too long");
	parse_fail_len(line, max, KNOT_ESPACE, "4096");
	line[max] = '\n';
	parse_fail_len(line, max + 1, KNOT_ESPACE, "too long");
	/* CR LF counts too. */
	line[max - 2] = '7';
	line[max - 1] = '\r';
	line[max] = '\n';
	parse_fail_len(line, max + 1, KNOT_ESPACE, "too long");
	line[max - 3] = '7';
	line[max - 2] = '\r';
	line[max - 1] = '\n';
	assert_int_equal(proto_parse_request(line, max, &req, err, sizeof(err)), KNOT_EOK);
	assert_int_equal(req.weight, 7);
	/* Far too long, and garbage: still KNOT_ESPACE, checked first. */
	char *big = malloc(1 << 20);
	assert_non_null(big);
	memset(big, 'x', 1 << 20);
	parse_fail_len(big, 1 << 20, KNOT_ESPACE, "too long");
	free(big);
	free(line);
}

static void test_errors_args(void **state)
{
	(void)state;
	parse_fail("MXP/1 Down mx.example.", "unknown command 'Down'");
	parse_fail("MXP/1 offline mx.example.", "unknown command 'offline'");
	parse_fail("MXP/1 d%6Fwn mx.example.", "unknown command 'd%6Fwn'");
	parse_fail("MXP/1 reason=x", "unknown command 'reason=x'");

	/* Missing positional arguments. */
	parse_fail("MXP/1 down", "missing NAME for 'down'");
	parse_fail("MXP/1 drain reason=x", "missing NAME for 'drain'");
	parse_fail("MXP/1 up", "missing NAME for 'up'");
	parse_fail("MXP/1 auto dry-run=1", "missing NAME for 'auto'");
	parse_fail("MXP/1 weight", "missing NAME for 'weight'");
	parse_fail("MXP/1 weight mx.example.", "missing weight");

	/* Extra positional arguments. */
	parse_fail("MXP/1 version now", "unexpected argument 'now' for 'version'");
	parse_fail("MXP/1 stats all", "unexpected argument 'all'");
	parse_fail("MXP/1 suspend everything", "unexpected argument 'everything'");
	parse_fail("MXP/1 resume x", "unexpected argument 'x'");
	parse_fail("MXP/1 status a.example. b.example.", "unexpected argument 'b.example.'");
	parse_fail("MXP/1 down a.example. b.example.", "unexpected argument 'b.example.'");
	parse_fail("MXP/1 down mx.example. going%20down", "unexpected argument 'going%20down'");
	parse_fail("MXP/1 auto mx.example. force", "unexpected argument 'force'");
	parse_fail("MXP/1 weight mx.example. 5 6", "unexpected argument '6'");
}

static void test_errors_options(void **state)
{
	(void)state;
	parse_fail("MXP/1 down mx.example. reasons=x", "unknown option 'reasons'");
	parse_fail("MXP/1 down mx.example. Force=1", "unknown option 'Force'");
	parse_fail("MXP/1 down mx.example. dry_run=1", "unknown option 'dry_run'");
	parse_fail("MXP/1 down mx.example. =1", "option without a name '=1'");
	parse_fail("MXP/1 down mx.example. reason=a reason=b", "duplicate option 'reason'");
	parse_fail("MXP/1 down mx.example. for=1h for=1h", "duplicate option 'for'");
	parse_fail("MXP/1 down mx.example. force=1 force=1", "duplicate option 'force'");
	parse_fail("MXP/1 auto mx.example. dry-run=1 dry-run=1", "duplicate option 'dry-run'");
	parse_fail("MXP/1 stats json=1 json=1", "duplicate option 'json'");

	/* Boolean values: only "1"; no empty values. */
	parse_fail("MXP/1 down mx.example. force=0", "invalid value '0' for option 'force'");
	parse_fail("MXP/1 down mx.example. force=yes", "'yes'");
	parse_fail("MXP/1 down mx.example. dry-run=true", "'true'");
	parse_fail("MXP/1 stats json=11", "'11'");
	parse_fail("MXP/1 stats json=%31%31", "'%31%31'");
	parse_fail("MXP/1 stats json=", "empty value for option 'json'");
	parse_fail("MXP/1 down mx.example. reason=", "empty value for option 'reason'");
	parse_fail("MXP/1 down mx.example. for=", "empty value for option 'for'");

	/* Which command takes which option (the table in the header). */
	static const char *opts[] = {
		"reason=x", "for=1h", "force=1", "dry-run=1", "json=1",
	};
	static const struct {
		const char *head;
		unsigned allowed;  /* Bits in the order of opts[]. */
	} cmds[] = {
		{ "version",            0x00 },
		{ "status",             0x10 },
		{ "status mx.example.", 0x10 },
		{ "stats",              0x10 },
		{ "down mx.example.",   0x0f },
		{ "drain mx.example.",  0x0b },
		{ "up mx.example.",     0x09 },
		{ "auto mx.example.",   0x08 },
		{ "weight mx.example. 1", 0x08 },
		{ "suspend",            0x09 },
		{ "resume",             0x08 },
	};
	for (unsigned c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		for (unsigned o = 0; o < sizeof(opts) / sizeof(opts[0]); o++) {
			char line[128];
			snprintf(line, sizeof(line), "MXP/1 %s %s\n", cmds[c].head, opts[o]);
			if (cmds[c].allowed & (1u << o)) {
				parse_ok(line);
			} else {
				char want[64];
				char cmd[16];
				snprintf(cmd, sizeof(cmd), "%.*s", (int)strcspn(cmds[c].head, " "),
				         cmds[c].head);
				snprintf(want, sizeof(want), "option '%.*s' is not valid for '%s'",
				         (int)strcspn(opts[o], "="), opts[o], cmd);
				parse_fail(line, want);
			}
		}
	}
}

static void test_errors_values(void **state)
{
	(void)state;
	/* Names. */
	parse_fail("MXP/1 down .", "the root");
	parse_fail("MXP/1 down %2E", "'%2E'");
	parse_fail("MXP/1 status .", "root");
	parse_fail("MXP/1 down a..example", "invalid domain name 'a..example'");
	parse_fail("MXP/1 down .example", "'.example'");
	parse_fail("MXP/1 down example..", "'example..'");
	parse_fail("MXP/1 down trailing\\", "'trailing\\'");
	parse_fail("MXP/1 down bad\\999.example", "'bad\\999.example'");
	parse_fail("MXP/1 down %00mx.example", "bad percent-encoding in name '%00mx.example'");
	parse_fail("MXP/1 down mx%ZZ.example", "'mx%ZZ.example'");
	char line[MXP_PROTO_MAX_REQUEST];
	char label[70];
	memset(label, 'a', 64);                                 /* Label > 63. */
	label[64] = '\0';
	snprintf(line, sizeof(line), "MXP/1 down %s.example", label);
	parse_fail(line, "invalid domain name 'aaaa");
	label[60] = '\0';                                       /* Name > 255. */
	snprintf(line, sizeof(line), "MXP/1 down %s.%s.%s.%s.%s", label, label, label,
	         label, label);
	parse_fail(line, "invalid domain name");

	/* Weights. */
	parse_fail("MXP/1 weight mx.example. 65536", "invalid weight '65536'");
	parse_fail("MXP/1 weight mx.example. 99999999999999999999", "'99999999999999999999'");
	parse_fail("MXP/1 weight mx.example. -1", "'-1'");
	parse_fail("MXP/1 weight mx.example. +1", "'+1'");
	parse_fail("MXP/1 weight mx.example. 1.5", "'1.5'");
	parse_fail("MXP/1 weight mx.example. 0x10", "'0x10'");
	parse_fail("MXP/1 weight mx.example. Default", "'Default'");
	parse_fail("MXP/1 weight mx.example. %20", "'%20'");
	parse_fail("MXP/1 weight mx.example. 1%", "bad percent-encoding in weight '1%'");

	/* Reasons. */
	char reason[3 * MXP_PROTO_MAX_REASON + 16];
	memset(reason, 'r', MXP_PROTO_MAX_REASON + 1);
	reason[MXP_PROTO_MAX_REASON + 1] = '\0';
	snprintf(line, sizeof(line), "MXP/1 down mx.example. reason=%s", reason);
	parse_fail(line, "option 'reason' too long (201 bytes, at most 200)");
	reason[MXP_PROTO_MAX_REASON] = '\0';                    /* Exactly 200: fine. */
	snprintf(line, sizeof(line), "MXP/1 down mx.example. reason=%s", reason);
	mxp_request_t r = parse_ok(line);
	assert_int_equal(strlen(r.reason), MXP_PROTO_MAX_REASON);
	reason[0] = '\0';                                       /* 200 bytes as %HH. */
	for (int i = 0; i < MXP_PROTO_MAX_REASON; i++) {
		strcat(reason, "%C3");
	}
	snprintf(line, sizeof(line), "MXP/1 down mx.example. reason=%s", reason);
	r = parse_ok(line);
	assert_int_equal(strlen(r.reason), MXP_PROTO_MAX_REASON);
	strcat(reason, "%A9");                                  /* 201 bytes. */
	snprintf(line, sizeof(line), "MXP/1 down mx.example. reason=%s", reason);
	parse_fail(line, "too long (201 bytes");
	parse_fail("MXP/1 down mx.example. reason=a%0Ab", "control character in option 'reason' 'a%0Ab'");
	parse_fail("MXP/1 down mx.example. reason=%0D", "'%0D'");
	parse_fail("MXP/1 down mx.example. reason=%09tab", "'%09tab'");
	parse_fail("MXP/1 down mx.example. reason=%7F", "'%7F'");
	parse_fail("MXP/1 down mx.example. reason=%1f", "'%1f'");
	parse_fail("MXP/1 down mx.example. reason=%00", "bad percent-encoding in reason '%00'");
	parse_fail("MXP/1 down mx.example. reason=100%", "bad percent-encoding in reason '100%'");
	parse_fail("MXP/1 suspend reason=%G1", "'%G1'");
	r = parse_ok("MXP/1 down mx.example. reason=a=b");        /* A raw '=' in a value. */
	assert_string_equal(r.reason, "a=b");
	r = parse_ok("MXP/1 down mx.example. reason=%e2%82%ac");  /* Lowercase hex. */
	assert_string_equal(r.reason, "\xe2\x82\xac");

	/* Durations. */
	parse_fail("MXP/1 down mx.example. for=0", "invalid duration '0' for option 'for'");
	parse_fail("MXP/1 down mx.example. for=2x", "'2x'");
	parse_fail("MXP/1 drain mx.example. for=31d", "'31d'");
	parse_fail("MXP/1 drain mx.example. for=-5", "'-5'");
	parse_fail("MXP/1 drain mx.example. for=%", "bad percent-encoding in for '%'");
	r = parse_ok("MXP/1 drain mx.example. for=%31h");
	assert_int_equal(r.for_seconds, 3600);

	/* A culprit with odd bytes is shown on one line, shortened. */
	char huge[400];
	memset(huge, 'q', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	snprintf(line, sizeof(line), "MXP/1 %s", huge);
	parse_fail(line, "unknown command 'qqqq");
	parse_fail(line, "...'");
	parse_fail("MXP/1 \xc3\xa9", "unknown command '\\xc3\\xa9'");
}

/* ---- durations ---------------------------------------------------------- */

static void test_duration(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint32_t seconds;
	} good[] = {
		{ "90", 90 }, { "7200", 7200 }, { "90s", 90 }, { "15m", 900 },
		{ "2h", 7200 }, { "1h30m", 5400 }, { "1d", 86400 },
		{ "1d2h3m4s", 93784 }, { "0h30m", 1800 }, { "001m", 60 },
		{ "1", 1 }, { "30d", MXP_PROTO_MAX_FOR }, { "2592000", MXP_PROTO_MAX_FOR },
		{ "29d23h59m60s", MXP_PROTO_MAX_FOR }, { "720h", MXP_PROTO_MAX_FOR },
		{ "1h0s", 3600 },
	};
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint32_t s = 0;
		if (proto_parse_duration(good[i].text, &s) != KNOT_EOK) {
			print_error("refused '%s'\n", good[i].text);
		}
		assert_int_equal(proto_parse_duration(good[i].text, &s), KNOT_EOK);
		assert_int_equal(s, good[i].seconds);
	}

	static const char *bad[] = {
		"", "0", "0s", "0d0h", "h", "s", "1x", "-5", "+5", "1h-", "1h30",
		"1H", "1 h", " 1h", "1h ", "1.5h", "1m1h", "1h1h", "1s1m", "hh",
		"30d1s", "2592001", "31d", "721h", "43201m", "2592001s",
		"99999999999999999999", "4294967296", "4294967297s", "18446744073709551617",
		"99999999999999999999d", "1d99999999999999999999s", "0x10", "1w", "1hm",
		"1h\n", "%31h",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t s = 12345;
		if (proto_parse_duration(bad[i], &s) != KNOT_EINVAL) {
			print_error("accepted '%s'\n", bad[i]);
		}
		assert_int_equal(proto_parse_duration(bad[i], &s), KNOT_EINVAL);
		assert_int_equal(s, 12345);  /* Untouched on error. */
	}
	assert_int_equal(proto_parse_duration(NULL, NULL), KNOT_EINVAL);
}

/* ---- percent-encoding --------------------------------------------------- */

static void test_encode_decode(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(proto_encode("a b%c=d", 7, out, sizeof(out)), 13);
	assert_string_equal(out, "a%20b%25c%3Dd");
	assert_int_equal(proto_encode("AZaz09-._~:/+@,*", 16, out, sizeof(out)), 16);
	assert_string_equal(out, "AZaz09-._~:/+@,*");
	assert_int_equal(proto_encode("\x00\x1f\x7f\x80\xff", 5, out, sizeof(out)), 15);
	assert_string_equal(out, "%00%1F%7F%80%FF");
	assert_int_equal(proto_encode("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(proto_encode("", 0, out, 1), 0);
	assert_int_equal(proto_encode("ab", 2, out, 3), 2);
	assert_int_equal(proto_encode("ab", 2, out, 2), KNOT_ESPACE);
	assert_int_equal(proto_encode(" ", 1, out, 4), 3);
	assert_int_equal(proto_encode(" ", 1, out, 3), KNOT_ESPACE);
	assert_int_equal(proto_encode("a", 1, out, 0), KNOT_ESPACE);

	/* Every byte value encodes and decodes back; only the safe set is bare. */
	for (unsigned c = 1; c < 256; c++) {
		char in = (char)c;
		int len = proto_encode(&in, 1, out, sizeof(out));
		bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || strchr("-._~:/+@,*", (int)c) != NULL;
		assert_int_equal(len, safe ? 1 : 3);
		char back[4];
		assert_int_equal(proto_decode(out, len, back, sizeof(back)), 1);
		assert_int_equal((uint8_t)back[0], c);
	}

	assert_int_equal(proto_decode("a%20b%25c%3dd", 13, out, sizeof(out)), 7);
	assert_string_equal(out, "a b%c=d");
	assert_int_equal(proto_decode("+", 1, out, sizeof(out)), 1);
	assert_string_equal(out, "+");          /* Not a space. */
	assert_int_equal(proto_decode("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(proto_decode("%41%42", 6, out, 3), 2);
	assert_string_equal(out, "AB");
	assert_int_equal(proto_decode("%41%42", 6, out, 2), KNOT_ESPACE);
	assert_int_equal(proto_decode("abc", 3, out, 3), KNOT_ESPACE);
	assert_int_equal(proto_decode("abc", 2, out, 3), 2);  /* Length, not NUL. */
	assert_string_equal(out, "ab");

	/* Bad escapes and NUL bytes. */
	static const char *bad[] = {
		"%G1", "%1G", "%4", "%", "a%", "%%", "%%41", "%00", "a%00b", "% 1", "%-1",
		"%+1",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(proto_decode(bad[i], strlen(bad[i]), out, sizeof(out)),
		                 KNOT_EINVAL);
	}
	assert_int_equal(proto_decode("a\0b", 3, out, sizeof(out)), KNOT_EINVAL);
	/* A truncated escape at the end of the given length. */
	assert_int_equal(proto_decode("%41", 2, out, sizeof(out)), KNOT_EINVAL);
}

/* ---- fuzz --------------------------------------------------------------- */

static uint64_t fuzz_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A random valid request, formatted. */
static size_t fuzz_formatted(uint64_t *seed, char *buf, size_t size)
{
	static const char *names[] = {
		"mx1.example.net.", "MX2.Example.", "a.", "x\\032y.example.", "\\@.",
	};
	static const char *reasons[] = { "", "disk full", "100%", "a=b", "caf\xc3\xa9" };
	mxp_cmd_t cmd = (mxp_cmd_t)(fuzz_next(seed) % 10);
	bool named = (cmd >= MXP_CMD_DOWN && cmd <= MXP_CMD_WEIGHT) ||
	             (cmd == MXP_CMD_STATUS && (fuzz_next(seed) & 1));
	mxp_request_t req = make_req(cmd, named ? names[fuzz_next(seed) % 5] : NULL);
	uint64_t bits = fuzz_next(seed);
	req.weight = (bits & 1) ? -1 : (int32_t)(bits >> 48);
	if (cmd == MXP_CMD_DOWN || cmd == MXP_CMD_DRAIN || cmd == MXP_CMD_UP ||
	    cmd == MXP_CMD_SUSPEND) {
		strcpy(req.reason, reasons[(bits >> 1) % 5]);
	}
	if ((cmd == MXP_CMD_DOWN || cmd == MXP_CMD_DRAIN) && (bits & 0x10)) {
		req.for_seconds = 1 + (bits >> 20) % MXP_PROTO_MAX_FOR;
	}
	req.force = cmd == MXP_CMD_DOWN && (bits & 0x20);
	req.dry_run = cmd >= MXP_CMD_DOWN && (bits & 0x40);
	req.json = (cmd == MXP_CMD_STATUS || cmd == MXP_CMD_STATS) && (bits & 0x80);
	int len = proto_format_request(&req, buf, size);
	assert_true(len > 0);
	return len;
}

static void test_fuzz(void **state)
{
	(void)state;
	static const char *pieces[] = {
		"MXP/1", "MXP/1 ", " ", "  ", "\n", "\r\n", "=", "%", "%2", "%20", "%00",
		"%3D", "version", "status", "stats", "down", "drain", "up", "auto",
		"weight", "suspend", "resume", "mx.example.", "mx.example", ".", "..",
		"\\", "\\065", "reason=", "for=", "force=1", "dry-run=1", "json=1",
		"force=", "1", "0", "65535", "65536", "default", "1h30m", "2592001",
		"30d", "h", "\xc3\xa9", "\x7f", "\t",
	};
	const unsigned npieces = sizeof(pieces) / sizeof(pieces[0]);
	uint64_t seed = 20260101;
	unsigned accepted = 0;
	size_t cap = MXP_PROTO_MAX_REQUEST + 64;
	char *scratch = malloc(cap);
	assert_non_null(scratch);

	for (unsigned iter = 0; iter < 100000; iter++) {
		uint64_t r = fuzz_next(&seed);
		size_t len = 0;
		switch (r % 5) {
		case 0:  /* Random bytes. */
			len = fuzz_next(&seed) % 300;
			for (size_t i = 0; i < len; i++) {
				scratch[i] = (char)fuzz_next(&seed);
			}
			break;
		case 1:  /* Random bytes behind the magic. */
			len = 6 + fuzz_next(&seed) % 200;
			memcpy(scratch, "MXP/1 ", 6);
			for (size_t i = 6; i < len; i++) {
				scratch[i] = (char)fuzz_next(&seed);
			}
			break;
		case 2:  /* A valid request, sometimes mutated or cut. */
			len = fuzz_formatted(&seed, scratch, cap);
			if (r & 0x100) {
				scratch[fuzz_next(&seed) % len] = (char)fuzz_next(&seed);
			}
			if (r & 0x200) {
				len = fuzz_next(&seed) % (len + 1);
			}
			break;
		default: /* Pieces of valid requests, sometimes mutated or cut. */
			if (r & 0x100) {
				memcpy(scratch, "MXP/1 ", 6);
				len = 6;
			}
			for (unsigned n = fuzz_next(&seed) % 10; n > 0; n--) {
				const char *p = pieces[fuzz_next(&seed) % npieces];
				size_t plen = strlen(p);
				if (len + plen + 1 < cap) {
					memcpy(scratch + len, p, plen);
					len += plen;
					if (fuzz_next(&seed) % 3 != 0) {
						scratch[len++] = ' ';
					}
				}
			}
			if (len > 0 && (r & 0x200)) {
				scratch[fuzz_next(&seed) % len] = (char)fuzz_next(&seed);
			}
			if (len > 0 && (r & 0x400)) {
				len = fuzz_next(&seed) % len;
			}
			if (len > 0 && (r & 0x800) && scratch[len - 1] == ' ') {
				scratch[len - 1] = '\n';
			}
			break;
		}
		if ((r >> 32) % 1000 == 0) {  /* Now and then: oversized. */
			memset(scratch + len, 'x', cap - len);
			len = MXP_PROTO_MAX_REQUEST + 1 + (r >> 48) % 60;
		}

		/* Exact-size heap copy, so ASan sees any overread. */
		char *line = malloc(len > 0 ? len : 1);
		assert_non_null(line);
		memcpy(line, scratch, len);

		mxp_request_t req;
		char err[ERR_LEN];
		memset(err, 'Z', sizeof(err));
		int ret = proto_parse_request(line, len, &req, err, sizeof(err));
		assert_true(ret == KNOT_EOK || ret == KNOT_EINVAL || ret == KNOT_ESPACE);
		bool magic = len >= 5 && memcmp(line, "MXP/1", 5) == 0 &&
		             (len == 5 || line[5] == ' ');
		if (!magic) {
			assert_int_not_equal(ret, KNOT_EOK);
		}
		if (ret == KNOT_EOK) {
			accepted++;
			round_trip(&req);
		} else {
			assert_non_null(memchr(err, '\0', sizeof(err)));
			assert_one_line(err);
		}
		free(line);
	}
	free(scratch);
	/* The generator does reach the accepting paths. */
	print_message("fuzz: %u of 100000 accepted\n", accepted);
	assert_true(accepted > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_names),
		cmocka_unit_test(test_parse_every_command),
		cmocka_unit_test(test_parse_names),
		cmocka_unit_test(test_parse_line_endings),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_rejects),
		cmocka_unit_test(test_errors_framing),
		cmocka_unit_test(test_errors_args),
		cmocka_unit_test(test_errors_options),
		cmocka_unit_test(test_errors_values),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
