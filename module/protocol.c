/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"

static const struct {
	const char *key;
	unsigned flag;
} options[] = {
	{ "reason",  MXP_OPT_REASON },
	{ "for",     MXP_OPT_FOR },
	{ "force",   MXP_OPT_FORCE },
	{ "dry-run", MXP_OPT_DRY_RUN },
	{ "json",    MXP_OPT_JSON },
};

#define OPTION_COUNT (sizeof(options) / sizeof(options[0]))

/* What each command takes; indexed by mxp_cmd_t. */
static const struct {
	const char *name;
	mxp_cmd_syntax_t syntax;
} commands[] = {
	[MXP_CMD_VERSION] = { "version", { 0, 0, 0 } },
	[MXP_CMD_STATUS]  = { "status",  { 0, 1, MXP_OPT_JSON } },
	[MXP_CMD_STATS]   = { "stats",   { 0, 0, MXP_OPT_JSON } },
	[MXP_CMD_DOWN]    = { "down",    { 1, 1, MXP_OPT_REASON | MXP_OPT_FOR | MXP_OPT_FORCE | MXP_OPT_DRY_RUN } },
	[MXP_CMD_DRAIN]   = { "drain",   { 1, 1, MXP_OPT_REASON | MXP_OPT_FOR | MXP_OPT_DRY_RUN } },
	[MXP_CMD_UP]      = { "up",      { 1, 1, MXP_OPT_REASON | MXP_OPT_DRY_RUN } },
	[MXP_CMD_AUTO]    = { "auto",    { 1, 1, MXP_OPT_DRY_RUN } },
	[MXP_CMD_WEIGHT]  = { "weight",  { 2, 2, MXP_OPT_DRY_RUN } },
	[MXP_CMD_SUSPEND] = { "suspend", { 0, 0, MXP_OPT_REASON | MXP_OPT_DRY_RUN } },
	[MXP_CMD_RESUME]  = { "resume",  { 0, 0, MXP_OPT_DRY_RUN } },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

/* Longest excerpt of a token quoted in an error message. */
#define SHOW_MAX 64

static bool is_safe(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr("-._~:/+@,*", c) != NULL);
}

static bool is_ctrl(uint8_t c)
{
	return c < 0x20 || c == 0x7f;
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	} else if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	} else if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

/* A token as one line of printable ASCII for an error message: other bytes
 * as "\xHH", cut after SHOW_MAX bytes. */
static const char *show(char *buf, size_t size, const char *tok, size_t len)
{
	size_t pos = 0;
	size_t i;
	for (i = 0; i < len && i < SHOW_MAX; i++) {
		uint8_t c = tok[i];
		if (size - pos < 8) {
			break;
		}
		if (c >= 0x20 && c < 0x7f) {
			buf[pos++] = c;
		} else {
			pos += snprintf(buf + pos, size - pos, "\\x%02x", c);
		}
	}
	if (i < len && size - pos >= 4) {
		memcpy(buf + pos, "...", 3);
		pos += 3;
	}
	buf[pos] = '\0';
	return buf;
}

#define SHOW_SIZE (SHOW_MAX * 4 + 8)

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	if (err == NULL || err_len == 0) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

const mxp_cmd_syntax_t *proto_cmd_syntax(mxp_cmd_t cmd)
{
	if ((unsigned)cmd >= COMMAND_COUNT) {
		return NULL;
	}
	return &commands[cmd].syntax;
}

const char *proto_cmd_name(mxp_cmd_t cmd)
{
	if ((unsigned)cmd >= COMMAND_COUNT) {
		return NULL;
	}
	return commands[cmd].name;
}

int proto_cmd_by_name(const char *name, mxp_cmd_t *cmd)
{
	if (name == NULL) {
		return KNOT_EINVAL;
	}
	for (unsigned i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(name, commands[i].name) == 0) {
			if (cmd != NULL) {
				*cmd = (mxp_cmd_t)i;
			}
			return KNOT_EOK;
		}
	}
	return KNOT_EINVAL;
}

static int cmd_by_token(const char *tok, size_t len, mxp_cmd_t *cmd)
{
	for (unsigned i = 0; i < COMMAND_COUNT; i++) {
		if (strlen(commands[i].name) == len && memcmp(tok, commands[i].name, len) == 0) {
			*cmd = (mxp_cmd_t)i;
			return KNOT_EOK;
		}
	}
	return KNOT_EINVAL;
}

int proto_parse_duration(const char *text, uint32_t *seconds)
{
	if (text == NULL || *text == '\0') {
		return KNOT_EINVAL;
	}

	static const struct {
		char unit;
		uint32_t mult;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };

	uint64_t total = 0;
	unsigned next_unit = 0;  /* Units go from the largest down, each once. */
	const char *p = text;
	while (*p != '\0') {
		uint64_t value = 0;
		const char *digits = p;
		while (*p >= '0' && *p <= '9') {
			value = value * 10 + (*p - '0');
			if (value > MXP_PROTO_MAX_FOR) {
				return KNOT_EINVAL;
			}
			p++;
		}
		if (p == digits) {
			return KNOT_EINVAL;  /* A unit without a number, or junk. */
		}
		if (*p == '\0') {
			if (digits != text) {
				return KNOT_EINVAL;  /* "1h30": a number without a unit. */
			}
			total = value;       /* Plain seconds. */
			break;
		}
		unsigned u = next_unit;
		while (u < sizeof(units) / sizeof(units[0]) && units[u].unit != *p) {
			u++;
		}
		if (u == sizeof(units) / sizeof(units[0])) {
			return KNOT_EINVAL;  /* Unknown, repeated or out of order. */
		}
		total += value * units[u].mult;
		if (total > MXP_PROTO_MAX_FOR) {
			return KNOT_EINVAL;
		}
		next_unit = u + 1;
		p++;
	}

	if (total == 0 || total > MXP_PROTO_MAX_FOR) {
		return KNOT_EINVAL;
	}
	if (seconds != NULL) {
		*seconds = (uint32_t)total;
	}
	return KNOT_EOK;
}

int proto_encode(const char *in, size_t len, char *out, size_t out_len)
{
	static const char hex[] = "0123456789ABCDEF";

	if ((in == NULL && len > 0) || out == NULL || out_len == 0) {
		return (out == NULL || out_len == 0) ? KNOT_ESPACE : KNOT_EINVAL;
	}
	size_t pos = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		if (is_safe(c)) {
			if (out_len - pos < 2) {
				return KNOT_ESPACE;
			}
			out[pos++] = c;
		} else {
			if (out_len - pos < 4) {
				return KNOT_ESPACE;
			}
			out[pos++] = '%';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 0x0f];
		}
	}
	if (pos > INT32_MAX) {
		return KNOT_ESPACE;
	}
	out[pos] = '\0';
	return (int)pos;
}

int proto_decode(const char *in, size_t len, char *out, size_t out_len)
{
	if ((in == NULL && len > 0) || out == NULL || out_len == 0) {
		return (out == NULL || out_len == 0) ? KNOT_ESPACE : KNOT_EINVAL;
	}
	size_t pos = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		if (c == '%') {
			if (len - i < 3) {
				return KNOT_EINVAL;
			}
			int hi = hex_value(in[i + 1]);
			int lo = hex_value(in[i + 2]);
			if (hi < 0 || lo < 0) {
				return KNOT_EINVAL;
			}
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0') {
			return KNOT_EINVAL;
		}
		if (out_len - pos < 2) {
			return KNOT_ESPACE;
		}
		out[pos++] = c;
	}
	if (pos > INT32_MAX) {
		return KNOT_ESPACE;
	}
	out[pos] = '\0';
	return (int)pos;
}

/* Parser state: the request being built and where the error goes. */
typedef struct {
	mxp_request_t req;
	unsigned seen;       /* Options given so far. */
	unsigned nargs;      /* Positional arguments so far. */
	char *err;
	size_t err_len;
	char value[MXP_PROTO_MAX_REQUEST];  /* Decoded value of the current token. */
} parser_t;

/* Decode a token into p->value; on error, say which token. */
static int decode_token(parser_t *p, const char *what, const char *tok, size_t len)
{
	char sbuf[SHOW_SIZE];
	int ret = proto_decode(tok, len, p->value, sizeof(p->value));
	if (ret < 0) {
		set_err(p->err, p->err_len, "bad percent-encoding in %s '%s'",
		        what, show(sbuf, sizeof(sbuf), tok, len));
		return KNOT_EINVAL;
	}
	return ret;
}

static int parse_name(parser_t *p, const char *tok, size_t len)
{
	char sbuf[SHOW_SIZE];
	int ret = decode_token(p, "name", tok, len);
	if (ret < 0) {
		return ret;
	}
	if (knot_dname_from_str(p->req.name, p->value, sizeof(p->req.name)) == NULL) {
		set_err(p->err, p->err_len, "invalid domain name '%s'",
		        show(sbuf, sizeof(sbuf), tok, len));
		return KNOT_EINVAL;
	}
	if (p->req.name[0] == '\0') {
		set_err(p->err, p->err_len, "invalid name '%s', the root is not an exchanger",
		        show(sbuf, sizeof(sbuf), tok, len));
		return KNOT_EINVAL;
	}
	knot_dname_to_lower(p->req.name);
	p->req.has_name = true;
	return KNOT_EOK;
}

static int parse_weight(parser_t *p, const char *tok, size_t len)
{
	char sbuf[SHOW_SIZE];
	int ret = decode_token(p, "weight", tok, len);
	if (ret < 0) {
		return ret;
	}
	if (strcmp(p->value, "default") == 0) {
		p->req.weight = -1;
		return KNOT_EOK;
	}
	uint32_t weight = 0;
	const char *c = p->value;
	for (; *c >= '0' && *c <= '9'; c++) {
		weight = weight * 10 + (*c - '0');
		if (weight > 65535) {
			break;
		}
	}
	if (c == p->value || *c != '\0' || weight > 65535) {
		set_err(p->err, p->err_len, "invalid weight '%s', expected 0..65535 or 'default'",
		        show(sbuf, sizeof(sbuf), tok, len));
		return KNOT_EINVAL;
	}
	p->req.weight = (int32_t)weight;
	return KNOT_EOK;
}

static int parse_positional(parser_t *p, const char *tok, size_t len)
{
	char sbuf[SHOW_SIZE];
	mxp_cmd_t cmd = p->req.cmd;
	if (p->nargs >= commands[cmd].syntax.max_args) {
		set_err(p->err, p->err_len, "unexpected argument '%s' for '%s'",
		        show(sbuf, sizeof(sbuf), tok, len), commands[cmd].name);
		return KNOT_EINVAL;
	}
	int ret = (p->nargs == 0) ? parse_name(p, tok, len) : parse_weight(p, tok, len);
	p->nargs++;
	return ret;
}

static int parse_option(parser_t *p, const char *tok, size_t len, const char *eq)
{
	char sbuf[SHOW_SIZE];
	char vbuf[SHOW_SIZE];
	mxp_cmd_t cmd = p->req.cmd;
	size_t key_len = eq - tok;
	const char *val = eq + 1;
	size_t val_len = len - key_len - 1;

	unsigned flag = 0;
	const char *key = NULL;
	for (unsigned i = 0; i < OPTION_COUNT; i++) {
		if (strlen(options[i].key) == key_len && memcmp(tok, options[i].key, key_len) == 0) {
			flag = options[i].flag;
			key = options[i].key;
			break;
		}
	}
	if (key_len == 0) {
		set_err(p->err, p->err_len, "option without a name '%s'",
		        show(sbuf, sizeof(sbuf), tok, len));
		return KNOT_EINVAL;
	}
	if (flag == 0) {
		set_err(p->err, p->err_len, "unknown option '%s'",
		        show(sbuf, sizeof(sbuf), tok, key_len));
		return KNOT_EINVAL;
	}
	if (!(commands[cmd].syntax.opts & flag)) {
		set_err(p->err, p->err_len, "option '%s' is not valid for '%s'",
		        key, commands[cmd].name);
		return KNOT_EINVAL;
	}
	if (p->seen & flag) {
		set_err(p->err, p->err_len, "duplicate option '%s'", key);
		return KNOT_EINVAL;
	}
	p->seen |= flag;

	if (val_len == 0) {
		set_err(p->err, p->err_len, "empty value for option '%s'", key);
		return KNOT_EINVAL;
	}
	int ret = decode_token(p, key, val, val_len);
	if (ret < 0) {
		return ret;
	}
	size_t dec_len = ret;
	show(vbuf, sizeof(vbuf), val, val_len);

	switch (flag) {
	case MXP_OPT_REASON:
		if (dec_len > MXP_PROTO_MAX_REASON) {
			set_err(p->err, p->err_len, "option 'reason' too long (%zu bytes, at most %u)",
			        dec_len, (unsigned)MXP_PROTO_MAX_REASON);
			return KNOT_EINVAL;
		}
		for (size_t i = 0; i < dec_len; i++) {
			if (is_ctrl(p->value[i])) {
				set_err(p->err, p->err_len, "control character in option 'reason' '%s'", vbuf);
				return KNOT_EINVAL;
			}
		}
		memcpy(p->req.reason, p->value, dec_len + 1);
		break;
	case MXP_OPT_FOR:
		if (proto_parse_duration(p->value, &p->req.for_seconds) != KNOT_EOK) {
			set_err(p->err, p->err_len, "invalid duration '%s' for option 'for', "
			        "expected e.g. 7200, 90s, 15m, 1h30m or 1d (at most %u seconds)",
			        vbuf, (unsigned)MXP_PROTO_MAX_FOR);
			return KNOT_EINVAL;
		}
		break;
	default:  /* Booleans. */
		if (strcmp(p->value, "1") != 0) {
			set_err(p->err, p->err_len, "invalid value '%s' for option '%s', expected 1",
			        vbuf, key);
			return KNOT_EINVAL;
		}
		if (flag == MXP_OPT_FORCE) {
			p->req.force = true;
		} else if (flag == MXP_OPT_DRY_RUN) {
			p->req.dry_run = true;
		} else {
			p->req.json = true;
		}
		break;
	}
	return KNOT_EOK;
}

int proto_parse_request(const char *line, size_t len, mxp_request_t *req,
                        char *err, size_t err_len)
{
	char sbuf[SHOW_SIZE];

	if (err != NULL && err_len > 0) {
		err[0] = '\0';
	}
	if (line == NULL || req == NULL) {
		set_err(err, err_len, "no request");
		return KNOT_EINVAL;
	}

	/* The size on the wire, LF included (added if absent). */
	bool has_lf = (len > 0 && line[len - 1] == '\n');
	if (len > MXP_PROTO_MAX_REQUEST || (!has_lf && len == MXP_PROTO_MAX_REQUEST)) {
		set_err(err, err_len, "request too long (%zu bytes%s, at most %u)",
		        len, has_lf ? "" : " without the LF", (unsigned)MXP_PROTO_MAX_REQUEST);
		return KNOT_ESPACE;
	}
	if (has_lf) {
		len--;
		if (len > 0 && line[len - 1] == '\r') {
			len--;
		}
	}
	if (len == 0) {
		set_err(err, err_len, "empty request");
		return KNOT_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\0') {
			set_err(err, err_len, "NUL byte at offset %zu", i);
			return KNOT_EINVAL;
		} else if (is_ctrl(line[i])) {
			set_err(err, err_len, "control character 0x%02x at offset %zu",
			        (uint8_t)line[i], i);
			return KNOT_EINVAL;
		}
	}

	parser_t parser = { .err = err, .err_len = err_len };
	parser_t *p = &parser;
	const char *end = line + len;
	const char *tok = line;
	unsigned index = 0;
	while (true) {
		const char *tok_end = memchr(tok, ' ', end - tok);
		if (tok_end == NULL) {
			tok_end = end;
		}
		size_t tok_len = tok_end - tok;
		int ret = KNOT_EOK;

		if (index == 0) {
			if (tok_len != strlen(MXP_PROTO_MAGIC) ||
			    memcmp(tok, MXP_PROTO_MAGIC, tok_len) != 0) {
				set_err(err, err_len, "bad magic '%s', expected '%s'",
				        show(sbuf, sizeof(sbuf), tok, tok_len), MXP_PROTO_MAGIC);
				return KNOT_EINVAL;
			}
		} else if (tok_len == 0) {
			set_err(err, err_len, "empty %s at offset %zu (one space between tokens)",
			        index == 1 ? "command" : "argument", (size_t)(tok - line));
			return KNOT_EINVAL;
		} else if (index == 1) {
			if (cmd_by_token(tok, tok_len, &p->req.cmd) != KNOT_EOK) {
				set_err(err, err_len, "unknown command '%s'",
				        show(sbuf, sizeof(sbuf), tok, tok_len));
				return KNOT_EINVAL;
			}
		} else {
			const char *eq = memchr(tok, '=', tok_len);
			if (eq != NULL) {
				ret = parse_option(p, tok, tok_len, eq);
			} else {
				ret = parse_positional(p, tok, tok_len);
			}
		}
		if (ret != KNOT_EOK) {
			return ret;
		}

		index++;
		if (tok_end == end) {
			break;
		}
		tok = tok_end + 1;
	}

	if (index < 2) {
		set_err(err, err_len, "missing command after '%s'", MXP_PROTO_MAGIC);
		return KNOT_EINVAL;
	}
	mxp_cmd_t cmd = p->req.cmd;
	if (p->nargs < commands[cmd].syntax.min_args) {
		set_err(err, err_len, "missing %s for '%s'",
		        p->nargs == 0 ? "NAME" : "weight (N or 'default')", commands[cmd].name);
		return KNOT_EINVAL;
	}

	*req = p->req;
	return KNOT_EOK;
}

/* Appends to a bounded buffer; remembers running out of space. */
typedef struct {
	char *buf;
	size_t size;
	size_t pos;
	bool full;
} out_t;

static void out_raw(out_t *o, const char *text)
{
	size_t len = strlen(text);
	if (o->full || o->size - o->pos <= len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->pos, text, len + 1);
	o->pos += len;
}

static void out_encoded(out_t *o, const char *text)
{
	if (o->full) {
		return;
	}
	int ret = proto_encode(text, strlen(text), o->buf + o->pos, o->size - o->pos);
	if (ret < 0) {
		o->full = true;
		return;
	}
	o->pos += ret;
}

/* Whether a stored name is a sane uncompressed, non-root wire name. */
static bool name_ok(const knot_dname_t *name)
{
	int ret = knot_dname_wire_check(name, name + KNOT_DNAME_MAXLEN, NULL);
	return ret > 1;
}

int proto_format_request(const mxp_request_t *req, char *buf, size_t buf_len)
{
	if (req == NULL || (unsigned)req->cmd >= COMMAND_COUNT) {
		return KNOT_EINVAL;
	}
	if (buf == NULL || buf_len == 0) {
		return KNOT_ESPACE;
	}

	/* Only what proto_parse_request() accepts back. */
	mxp_cmd_t cmd = req->cmd;
	unsigned allowed = commands[cmd].syntax.opts;
	size_t reason_len = strnlen(req->reason, sizeof(req->reason));
	if (req->has_name ? commands[cmd].syntax.max_args == 0 || !name_ok(req->name)
	                  : commands[cmd].syntax.min_args > 0) {
		return KNOT_EINVAL;
	}
	if (cmd == MXP_CMD_WEIGHT && (req->weight < -1 || req->weight > 65535)) {
		return KNOT_EINVAL;
	}
	if (reason_len == sizeof(req->reason) || (reason_len > 0 && !(allowed & MXP_OPT_REASON))) {
		return KNOT_EINVAL;
	}
	for (size_t i = 0; i < reason_len; i++) {
		if (is_ctrl(req->reason[i])) {
			return KNOT_EINVAL;
		}
	}
	if (req->for_seconds > 0 && (!(allowed & MXP_OPT_FOR) || req->for_seconds > MXP_PROTO_MAX_FOR)) {
		return KNOT_EINVAL;
	}
	if ((req->force && !(allowed & MXP_OPT_FORCE)) ||
	    (req->dry_run && !(allowed & MXP_OPT_DRY_RUN)) ||
	    (req->json && !(allowed & MXP_OPT_JSON))) {
		return KNOT_EINVAL;
	}

	out_t o = { .buf = buf, .size = buf_len };
	out_raw(&o, MXP_PROTO_MAGIC " ");
	out_raw(&o, commands[cmd].name);
	if (req->has_name) {
		knot_dname_txt_storage_t text;
		if (knot_dname_to_str(text, req->name, sizeof(text)) == NULL) {
			return KNOT_EINVAL;
		}
		out_raw(&o, " ");
		out_encoded(&o, text);
	}
	if (cmd == MXP_CMD_WEIGHT) {
		char num[16];
		if (req->weight < 0) {
			snprintf(num, sizeof(num), "default");
		} else {
			snprintf(num, sizeof(num), "%d", (int)req->weight);
		}
		out_raw(&o, " ");
		out_raw(&o, num);
	}
	if (reason_len > 0) {
		out_raw(&o, " reason=");
		out_encoded(&o, req->reason);
	}
	if (req->for_seconds > 0) {
		char num[16];
		snprintf(num, sizeof(num), "%u", (unsigned)req->for_seconds);
		out_raw(&o, " for=");
		out_raw(&o, num);
	}
	if (req->force) {
		out_raw(&o, " force=1");
	}
	if (req->dry_run) {
		out_raw(&o, " dry-run=1");
	}
	if (req->json) {
		out_raw(&o, " json=1");
	}
	out_raw(&o, "\n");

	if (o.full || o.pos > MXP_PROTO_MAX_REQUEST) {
		return KNOT_ESPACE;
	}
	return (int)o.pos;
}
