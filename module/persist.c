/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*
 * The state file, version 1: text, one record per line, each ended by LF.
 *
 *     mxpolicy-state 1
 *     suspend <0|1> <uid> <since> <reason>
 *     exchanger <name.> <auto|up|down|drain> <weight|-> <uid> <since> <until> <reason>
 *     ...
 *     end <number of exchanger lines>
 *
 * Fields are separated by exactly one space. A reason is percent-encoded
 * with the control protocol's safe set (any byte other than ALPHA, DIGIT
 * and "-._~:/+@,*" is "%HH"), "-" stands for an empty reason (so a reason
 * that is just "-" is written "%2D"). Names are in Knot's presentation
 * format, lowercase, with the trailing dot. Numbers are decimal without
 * sign or leading zeros. The trailer detects a truncated file; anything
 * unexpected makes the whole file invalid.
 */

#define _GNU_SOURCE  /* renameat2() */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "persist.h"
#include "protocol.h"

#define STATE_MAGIC        "mxpolicy-state"
#define STATE_VERSION      "1"
#define STATE_MAX_ENTRIES  100000
#define STATE_MAX_SIZE     (16u * 1024 * 1024)
#define STATE_MAX_LINE     4096  /* A valid line is at most about 1,700 bytes. */
#define STATE_MAX_TOKENS   8
#define STATE_NONE         "-"   /* No reason / no weight override. */
#define STATE_FIRST_CAP    16

/* Longest encoded reason, NUL included. */
#define REASON_ENC_SIZE    (3 * MXP_PROTO_MAX_REASON + 1)

/* Longest presentation form of a name, NUL included. */
#define NAME_TXT_SIZE      (KNOT_DNAME_TXT_MAXLEN + 1)

#define MOVE_ASIDE_TRIES   1000

__attribute__((format(printf, 3, 4)))
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

/* Report a failed system call ("step 'file': strerror") and map errno. */
static int fail_errno(int errnum, char *err, size_t err_len, const char *step,
                      const char *file)
{
	set_err(err, err_len, "%s '%s': %s", step, file, strerror(errnum));
	return knot_map_errno_code(errnum);
}

/* ---------------------------------------------------------------------- */
/* Field encoding.                                                         */
/* ---------------------------------------------------------------------- */

static bool reason_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr("-._~:/+@,*", c) != NULL);
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* A reason as kept in memory: NUL-terminated in its array, no control bytes. */
static const char *check_reason(const char *reason, size_t size)
{
	size_t len = strnlen(reason, size);
	if (len == size) {
		return "reason not terminated";
	}
	for (size_t i = 0; i < len; i++) {
		if (is_control((unsigned char)reason[i])) {
			return "control character in reason";
		}
	}
	return NULL;
}

/* Reasons use the control protocol's percent-encoding; "-" stands for none. */
static void encode_reason(const char *reason, char out[REASON_ENC_SIZE])
{
	if (reason[0] == '\0') {
		strcpy(out, STATE_NONE);
		return;
	}
	if (strcmp(reason, STATE_NONE) == 0) {
		strcpy(out, "%2D");
		return;
	}
	if (proto_encode(reason, strlen(reason), out, REASON_ENC_SIZE) < 0) {
		strcpy(out, STATE_NONE);  /* Not reached: checked reasons always fit. */
	}
}

static const char *decode_reason(const char *tok, char out[MXP_PROTO_MAX_REASON + 1])
{
	if (strcmp(tok, STATE_NONE) == 0) {
		out[0] = '\0';
		return NULL;
	}
	/* The file is written encoded: a raw byte means someone else wrote it. */
	for (const char *p = tok; *p != '\0'; p++) {
		if (*p != '%' && !reason_safe((unsigned char)*p)) {
			return "unencoded character in reason";
		}
		/* %00..%1F and %7F encode control bytes. */
		if (*p == '%' && (p[1] == '0' || p[1] == '1' ||
		                  (p[1] == '7' && (p[2] == 'F' || p[2] == 'f')))) {
			return "control character in reason";
		}
	}
	int len = proto_decode(tok, strlen(tok), out, MXP_PROTO_MAX_REASON + 1);
	if (len == KNOT_ESPACE) {
		return "reason too long";
	} else if (len < 0) {
		return "bad escape in reason";
	}
	for (int i = 0; i < len; i++) {
		if (is_control((unsigned char)out[i])) {
			return "control character in reason";
		}
	}
	return NULL;
}

/* Lowercase presentation form with the trailing dot, or NULL if invalid. */
static const char *format_name(const uint8_t *name, char out[NAME_TXT_SIZE])
{
	if (knot_dname_wire_check(name, name + KNOT_DNAME_MAXLEN, NULL) <= 0) {
		return NULL;
	}
	knot_dname_storage_t lower;
	knot_dname_copy_lower(lower, name);
	return knot_dname_to_str(out, lower, NAME_TXT_SIZE);
}

static const char *parse_name(const char *tok, uint8_t *out)
{
	size_t len = strlen(tok);
	if (len > KNOT_DNAME_TXT_MAXLEN) {
		return "name too long";
	}
	/* The final dot must not be escaped: count the backslashes before it. */
	size_t slashes = 0;
	while (len >= 2 + slashes && tok[len - 2 - slashes] == '\\') {
		slashes++;
	}
	if (len == 0 || tok[len - 1] != '.' || slashes % 2 != 0) {
		return "name without the trailing dot";
	}
	if (knot_dname_from_str(out, tok, KNOT_DNAME_MAXLEN) == NULL) {
		return "invalid name";
	}
	knot_dname_to_lower(out);
	return NULL;
}

/* Decimal without sign or leading zeros, at most max. */
static bool parse_uint(const char *tok, uint64_t max, uint64_t *out)
{
	if (tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0')) {
		return false;
	}
	uint64_t val = 0;
	for (const char *p = tok; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			return false;
		}
		unsigned digit = *p - '0';
		if (digit > max || val > (max - digit) / 10) {
			return false;
		}
		val = val * 10 + digit;
	}
	*out = val;
	return true;
}

static bool parse_op(const char *tok, mxp_opstate_t *op)
{
	for (mxp_opstate_t i = MXP_OP_AUTO; i <= MXP_OP_DRAIN; i++) {
		if (strcmp(tok, exchanger_op_name(i)) == 0) {
			*op = i;
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------------- */
/* Duplicate names (case-insensitive).                                     */
/* ---------------------------------------------------------------------- */

typedef struct {
	const uint8_t *name;
	size_t size;
	size_t pos;  /* Line number or index: keeps the sort stable. */
} name_ref_t;

static unsigned char ascii_lower(unsigned char c)
{
	/* Label length bytes are at most 63, below 'A': lowering them is a no-op. */
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int name_ref_cmp_names(const name_ref_t *a, const name_ref_t *b)
{
	if (a->size != b->size) {
		return a->size < b->size ? -1 : 1;
	}
	for (size_t i = 0; i < a->size; i++) {
		unsigned char ca = ascii_lower(a->name[i]);
		unsigned char cb = ascii_lower(b->name[i]);
		if (ca != cb) {
			return ca < cb ? -1 : 1;
		}
	}
	return 0;
}

static int name_ref_cmp(const void *pa, const void *pb)
{
	const name_ref_t *a = pa, *b = pb;
	int ret = name_ref_cmp_names(a, b);
	if (ret != 0) {
		return ret;
	}
	return (a->pos > b->pos) - (a->pos < b->pos);
}

/*!
 * Find the duplicate name whose second occurrence comes first.
 *
 * \return KNOT_EOK (no duplicate), KNOT_EEXIST (dup/first set) or KNOT_ENOMEM.
 */
static int find_duplicate(name_ref_t *refs, size_t count, const name_ref_t **dup,
                          const name_ref_t **first)
{
	*dup = NULL;
	if (count < 2) {
		return KNOT_EOK;
	}
	qsort(refs, count, sizeof(*refs), name_ref_cmp);
	for (size_t i = 1; i < count; i++) {
		if (name_ref_cmp_names(&refs[i - 1], &refs[i]) == 0 &&
		    (*dup == NULL || refs[i].pos < (*dup)->pos)) {
			*dup = &refs[i];
			*first = &refs[i - 1];
		}
	}
	return (*dup == NULL) ? KNOT_EOK : KNOT_EEXIST;
}

/* ---------------------------------------------------------------------- */
/* Save.                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct {
	char *data;
	size_t len;
	size_t cap;
} outbuf_t;

__attribute__((format(printf, 2, 3)))
static int out_printf(outbuf_t *out, const char *fmt, ...)
{
	for (;;) {
		size_t room = out->cap - out->len;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(out->data == NULL ? NULL : out->data + out->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			return KNOT_EINVAL;
		}
		if ((size_t)n < room) {
			out->len += n;
			if (out->len > STATE_MAX_SIZE) {
				return KNOT_ESPACE;
			}
			return KNOT_EOK;
		}
		size_t cap = (out->cap == 0) ? 4096 : out->cap * 2;
		while (cap < out->len + n + 1) {
			cap *= 2;
		}
		if (cap > STATE_MAX_SIZE + STATE_MAX_LINE + 1) {
			cap = STATE_MAX_SIZE + STATE_MAX_LINE + 1;
			if (cap < out->len + n + 1) {
				return KNOT_ESPACE;
			}
		}
		char *data = realloc(out->data, cap);
		if (data == NULL) {
			return KNOT_ENOMEM;
		}
		out->data = data;
		out->cap = cap;
	}
}

/* Entries that say nothing (auto, no weight override) are not written. */
static bool entry_is_default(const mxp_exchanger_t *e)
{
	return e->op == MXP_OP_AUTO && e->weight == MXP_WEIGHT_NONE;
}

static const char *check_entry(const mxp_exchanger_t *e)
{
	if (exchanger_op_name(e->op) == NULL) {
		return "invalid state";
	}
	if (e->weight != MXP_WEIGHT_NONE && (e->weight < 0 || e->weight > UINT16_MAX)) {
		return "invalid weight";
	}
	if (e->since < 0 || e->until < 0) {
		return "negative time";
	}
	return check_reason(e->reason, sizeof(e->reason));
}

static int format_doc(const mxp_state_doc_t *doc, outbuf_t *out, char *err, size_t err_len)
{
	char reason[REASON_ENC_SIZE];
	char name[NAME_TXT_SIZE];

	const char *what = check_reason(doc->suspend.reason, sizeof(doc->suspend.reason));
	if (what == NULL && doc->suspend.since < 0) {
		what = "negative time";
	}
	if (what != NULL) {
		set_err(err, err_len, "check: suspend: %s", what);
		return KNOT_EINVAL;
	}

	name_ref_t *refs = NULL;
	if (doc->count > 0) {
		refs = malloc(doc->count * sizeof(*refs));
		if (refs == NULL) {
			set_err(err, err_len, "format: %s", strerror(ENOMEM));
			return KNOT_ENOMEM;
		}
	}

	encode_reason(doc->suspend.reason, reason);
	int ret = out_printf(out, "%s %s\n", STATE_MAGIC, STATE_VERSION);
	if (ret == KNOT_EOK) {
		ret = out_printf(out, "suspend %d %" PRIu32 " %" PRId64 " %s\n",
		                 doc->suspend.on ? 1 : 0, doc->suspend.uid,
		                 doc->suspend.since, reason);
	}

	size_t written = 0;
	bool reported = false;
	for (size_t i = 0; i < doc->count && ret == KNOT_EOK; i++) {
		const mxp_exchanger_t *e = &doc->entries[i];
		if (entry_is_default(e)) {
			continue;
		}
		if (format_name(e->name, name) == NULL) {
			set_err(err, err_len, "check: exchanger %zu: invalid name", i);
			ret = KNOT_EINVAL;
			reported = true;
			break;
		}
		what = check_entry(e);
		if (what != NULL) {
			set_err(err, err_len, "check: exchanger %s: %s", name, what);
			ret = KNOT_EINVAL;
			reported = true;
			break;
		}
		if (written == STATE_MAX_ENTRIES) {
			set_err(err, err_len, "check: more than %u exchangers", STATE_MAX_ENTRIES);
			ret = KNOT_ESPACE;
			reported = true;
			break;
		}
		refs[written] = (name_ref_t){
			.name = e->name, .size = knot_dname_size(e->name), .pos = i
		};
		written++;

		char weight[8] = STATE_NONE;
		if (e->weight != MXP_WEIGHT_NONE) {
			snprintf(weight, sizeof(weight), "%" PRId32, e->weight);
		}
		encode_reason(e->reason, reason);
		ret = out_printf(out, "exchanger %s %s %s %" PRIu32 " %" PRId64 " %" PRId64 " %s\n",
		                 name, exchanger_op_name(e->op), weight, e->uid,
		                 e->since, e->until, reason);
	}
	if (ret == KNOT_EOK) {
		ret = out_printf(out, "end %zu\n", written);
	}
	if (ret != KNOT_EOK && !reported) {
		set_err(err, err_len, "format: %s", (ret == KNOT_ESPACE) ?
		        "state larger than 16 MiB" : knot_strerror(ret));
	}

	if (ret == KNOT_EOK) {
		const name_ref_t *dup = NULL, *first = NULL;
		if (find_duplicate(refs, written, &dup, &first) != KNOT_EOK) {
			format_name(dup->name, name);
			set_err(err, err_len, "check: exchanger %s: listed twice (entries %zu and %zu)",
			        name, first->pos, dup->pos);
			ret = KNOT_EINVAL;
		}
	}

	free(refs);
	return ret;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		} else if (n == 0) {
			return EIO;
		}
		data += n;
		len -= n;
	}
	return 0;
}

/* The directory part of path ("." if none). */
static bool dir_of(const char *path, char *dir, size_t dir_len)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		return snprintf(dir, dir_len, ".") < (int)dir_len;
	}
	size_t len = (slash == path) ? 1 : (size_t)(slash - path);
	if (len >= dir_len) {
		return false;
	}
	memcpy(dir, path, len);
	dir[len] = '\0';
	return true;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return errno;
	}
	int ret = 0;
	if (fsync(fd) != 0) {
		ret = errno;
		/* Filesystems that cannot sync a directory give no more than this. */
		if (ret == EINVAL || ret == ENOTSUP || ret == ENOSYS) {
			ret = 0;
		}
	}
	close(fd);
	return ret;
}

static int open_tmp(const char *tmp)
{
	const int flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
	int fd = open(tmp, flags, 0640);
	if (fd < 0 && errno == EEXIST) {
		/* Left by an earlier process with our pid that died mid-save: the
		 * name is ours alone. A directory or the like stays and fails. */
		if (unlink(tmp) != 0 && errno != ENOENT) {
			return -1;
		}
		fd = open(tmp, flags, 0640);
	}
	return fd;
}

static int write_atomic(const char *path, const char *data, size_t len,
                        char *err, size_t err_len)
{
	char tmp[PATH_MAX];
	char dir[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp) || !dir_of(path, dir, sizeof(dir))) {
		return fail_errno(ENAMETOOLONG, err, err_len, "temporary file name", path);
	}

	int fd = open_tmp(tmp);
	if (fd < 0) {
		return fail_errno(errno, err, err_len, "create", tmp);
	}

	const char *step = "write";
	int errnum = write_all(fd, data, len);
	if (errnum == 0 && fsync(fd) != 0) {
		step = "fsync";
		errnum = errno;
	}
	if (close(fd) != 0 && errnum == 0) {
		step = "close";
		errnum = errno;
	}
	if (errnum == 0 && rename(tmp, path) != 0) {
		step = "rename";
		errnum = errno;
	}
	if (errnum != 0) {
		unlink(tmp);
		return fail_errno(errnum, err, err_len, step, tmp);
	}

	/*
	 * The new file is in place and is what a restart will read, so the
	 * save counts as done; a failed directory sync is only reported (in
	 * err, with KNOT_EOK) because the rename may not survive a power loss.
	 */
	errnum = sync_dir(dir);
	if (errnum != 0) {
		(void)fail_errno(errnum, err, err_len, "fsync directory", dir);
	}
	return KNOT_EOK;
}

int persist_save(const char *path, const mxp_state_doc_t *doc, char *err, size_t err_len)
{
	if (path == NULL || path[0] == '\0' || doc == NULL ||
	    (doc->count > 0 && doc->entries == NULL)) {
		set_err(err, err_len, "save: invalid arguments");
		return KNOT_EINVAL;
	}

	outbuf_t out = { 0 };
	int ret = format_doc(doc, &out, err, err_len);
	if (ret == KNOT_EOK) {
		ret = write_atomic(path, out.data, out.len, err, err_len);
	}
	free(out.data);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* Load.                                                                   */
/* ---------------------------------------------------------------------- */

static int read_file(const char *path, char **data, size_t *len, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		return fail_errno(errno, err, err_len, "open", path);
	}

	struct stat st;
	if (fstat(fd, &st) != 0) {
		int ret = fail_errno(errno, err, err_len, "stat", path);
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		/* A wrong path, not a corrupt file: nothing to move aside. */
		set_err(err, err_len, "'%s' is not a regular file", path);
		close(fd);
		return KNOT_EINVAL;
	}
	if (st.st_size > STATE_MAX_SIZE) {
		set_err(err, err_len, "file larger than %u bytes", STATE_MAX_SIZE);
		close(fd);
		return KNOT_EMALF;
	}

	size_t cap = st.st_size + 1;  /* The extra byte sees a growing file. */
	size_t used = 0;
	char *buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		set_err(err, err_len, "read '%s': %s", path, strerror(ENOMEM));
		return KNOT_ENOMEM;
	}
	for (;;) {
		if (used == cap) {
			if (cap > STATE_MAX_SIZE) {
				free(buf);
				close(fd);
				set_err(err, err_len, "file larger than %u bytes", STATE_MAX_SIZE);
				return KNOT_EMALF;
			}
			size_t new_cap = (cap * 2 > STATE_MAX_SIZE + 1) ? STATE_MAX_SIZE + 1 : cap * 2;
			char *grown = realloc(buf, new_cap);
			if (grown == NULL) {
				free(buf);
				close(fd);
				set_err(err, err_len, "read '%s': %s", path, strerror(ENOMEM));
				return KNOT_ENOMEM;
			}
			buf = grown;
			cap = new_cap;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			int ret = fail_errno(errno, err, err_len, "read", path);
			free(buf);
			close(fd);
			return ret;
		} else if (n == 0) {
			break;
		}
		used += n;
	}
	close(fd);

	*data = buf;
	*len = used;
	return KNOT_EOK;
}

/* Split at single spaces. Returns the number of tokens, -1 for an empty
 * token (stray space), -2 for too many. */
static int tokenize(char *line, char *tok[STATE_MAX_TOKENS])
{
	int count = 0;
	char *p = line;
	for (;;) {
		char *space = strchr(p, ' ');
		if (space == p || (space == NULL && *p == '\0')) {
			return -1;
		}
		if (count == STATE_MAX_TOKENS) {
			return -2;
		}
		tok[count++] = p;
		if (space == NULL) {
			return count;
		}
		*space = '\0';
		p = space + 1;
	}
}

typedef enum {
	EXPECT_MAGIC,
	EXPECT_SUSPEND,
	EXPECT_BODY,
	EXPECT_EOF,
} parse_state_t;

typedef struct {
	mxp_state_doc_t doc;
	size_t cap;
	unsigned *lines;  /* Line of each entry, for messages. */
} parser_t;

static const char *parse_suspend(char **tok, int count, mxp_suspend_t *s)
{
	uint64_t on, uid, since;
	if (count != 5 || strcmp(tok[0], "suspend") != 0) {
		return "expected 'suspend ON UID SINCE REASON'";
	}
	if (!parse_uint(tok[1], 1, &on)) {
		return "suspend flag is not 0 or 1";
	}
	if (!parse_uint(tok[2], UINT32_MAX, &uid)) {
		return "invalid uid";
	}
	if (!parse_uint(tok[3], INT64_MAX, &since)) {
		return "invalid time";
	}
	const char *what = decode_reason(tok[4], s->reason);
	if (what != NULL) {
		return what;
	}
	s->on = (on == 1);
	s->uid = uid;
	s->since = since;
	return NULL;
}

static const char *parse_exchanger(char **tok, int count, mxp_exchanger_t *e)
{
	uint64_t weight, uid, since, until;
	if (count != 8) {
		return "expected 'exchanger NAME STATE WEIGHT UID SINCE UNTIL REASON'";
	}
	const char *what = parse_name(tok[1], e->name);
	if (what != NULL) {
		return what;
	}
	if (!parse_op(tok[2], &e->op)) {
		return "invalid state";
	}
	if (strcmp(tok[3], STATE_NONE) == 0) {
		e->weight = MXP_WEIGHT_NONE;
	} else if (parse_uint(tok[3], UINT16_MAX, &weight)) {
		e->weight = weight;
	} else {
		return "invalid weight";
	}
	if (!parse_uint(tok[4], UINT32_MAX, &uid)) {
		return "invalid uid";
	}
	if (!parse_uint(tok[5], INT64_MAX, &since) || !parse_uint(tok[6], INT64_MAX, &until)) {
		return "invalid time";
	}
	e->uid = uid;
	e->since = since;
	e->until = until;
	return decode_reason(tok[7], e->reason);
}

static int add_entry(parser_t *p, unsigned lineno, const mxp_exchanger_t *e)
{
	if (p->doc.count == p->cap) {
		size_t cap = (p->cap == 0) ? STATE_FIRST_CAP : p->cap * 2;
		if (cap > STATE_MAX_ENTRIES) {
			cap = STATE_MAX_ENTRIES;
		}
		mxp_exchanger_t *entries = realloc(p->doc.entries, cap * sizeof(*entries));
		if (entries == NULL) {
			return KNOT_ENOMEM;
		}
		p->doc.entries = entries;
		unsigned *lines = realloc(p->lines, cap * sizeof(*lines));
		if (lines == NULL) {
			return KNOT_ENOMEM;
		}
		p->lines = lines;
		p->cap = cap;
	}
	p->doc.entries[p->doc.count] = *e;
	p->lines[p->doc.count] = lineno;
	p->doc.count++;
	return KNOT_EOK;
}

static int check_duplicates(parser_t *p, char *err, size_t err_len)
{
	if (p->doc.count < 2) {
		return KNOT_EOK;
	}
	name_ref_t *refs = malloc(p->doc.count * sizeof(*refs));
	if (refs == NULL) {
		set_err(err, err_len, "parse: %s", strerror(ENOMEM));
		return KNOT_ENOMEM;
	}
	for (size_t i = 0; i < p->doc.count; i++) {
		const uint8_t *name = p->doc.entries[i].name;
		refs[i] = (name_ref_t){
			.name = name, .size = knot_dname_size(name), .pos = p->lines[i]
		};
	}
	const name_ref_t *dup = NULL, *first = NULL;
	int ret = KNOT_EOK;
	if (find_duplicate(refs, p->doc.count, &dup, &first) != KNOT_EOK) {
		char name[NAME_TXT_SIZE];
		if (format_name(dup->name, name) == NULL) {
			strcpy(name, "?");
		}
		set_err(err, err_len, "line %zu: duplicate exchanger %s (first on line %zu)",
		        dup->pos, name, first->pos);
		ret = KNOT_EMALF;
	}
	free(refs);
	return ret;
}

/* Line 1 starts with "mxpolicy-state "; a first line without its LF is
 * judged on what is there (then reported as truncated). */
static bool magic_ok(const char *start, size_t avail, bool complete)
{
	static const char magic[] = STATE_MAGIC " ";
	const size_t magic_len = sizeof(magic) - 1;
	if (avail >= magic_len) {
		return memcmp(start, magic, magic_len) == 0;
	}
	return !complete && memcmp(start, magic, avail) == 0;
}

static int parse_doc(const char *data, size_t len, parser_t *p, char *err, size_t err_len)
{
	char buf[STATE_MAX_LINE + 1];
	char *tok[STATE_MAX_TOKENS];
	parse_state_t state = EXPECT_MAGIC;
	unsigned lineno = 0;
	size_t pos = 0;

	if (len == 0) {
		set_err(err, err_len, "line 1: empty file");
		return KNOT_EMALF;
	}

	while (pos < len) {
		lineno++;
		const char *start = data + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t avail = (nl == NULL) ? len - pos : (size_t)(nl - start);
		if (state == EXPECT_MAGIC && !magic_ok(start, avail, nl != NULL)) {
			set_err(err, err_len, "line 1: not a mxpolicy state file");
			return KNOT_EMALF;
		}
		if (nl == NULL) {
			set_err(err, err_len, "line %u: no end of line (truncated file?)", lineno);
			return KNOT_EMALF;
		}
		size_t llen = nl - start;
		pos += llen + 1;

		if (state == EXPECT_EOF) {
			set_err(err, err_len, "line %u: data after the 'end' trailer", lineno);
			return KNOT_EMALF;
		}
		if (llen > STATE_MAX_LINE) {
			set_err(err, err_len, "line %u: longer than %u bytes", lineno, STATE_MAX_LINE);
			return KNOT_EMALF;
		}
		for (size_t i = 0; i < llen; i++) {
			unsigned char c = start[i];
			if (c < 0x20 || c > 0x7e) {
				set_err(err, err_len, "line %u: invalid byte 0x%02x", lineno, c);
				return KNOT_EMALF;
			}
		}
		memcpy(buf, start, llen);
		buf[llen] = '\0';

		int count = tokenize(buf, tok);
		if (count == -1) {
			set_err(err, err_len, "line %u: %s", lineno,
			        llen == 0 ? "empty line" : "stray space");
			return KNOT_EMALF;
		} else if (count == -2) {
			set_err(err, err_len, "line %u: too many fields", lineno);
			return KNOT_EMALF;
		}

		const char *what = NULL;
		switch (state) {
		case EXPECT_MAGIC:
			if (count != 2) {
				set_err(err, err_len, "line 1: malformed header");
				return KNOT_EMALF;
			} else if (strcmp(tok[1], STATE_VERSION) != 0) {
				set_err(err, err_len, "line 1: unsupported state file version '%.16s'",
				        tok[1]);
				return KNOT_EMALF;
			}
			state = EXPECT_SUSPEND;
			break;
		case EXPECT_SUSPEND:
			what = parse_suspend(tok, count, &p->doc.suspend);
			state = EXPECT_BODY;
			break;
		case EXPECT_BODY:
			if (strcmp(tok[0], "exchanger") == 0) {
				if (p->doc.count == STATE_MAX_ENTRIES) {
					what = "more than 100000 exchangers";
					break;
				}
				mxp_exchanger_t e = { 0 };
				what = parse_exchanger(tok, count, &e);
				if (what == NULL && add_entry(p, lineno, &e) != KNOT_EOK) {
					set_err(err, err_len, "parse: %s", strerror(ENOMEM));
					return KNOT_ENOMEM;
				}
			} else if (strcmp(tok[0], "end") == 0) {
				uint64_t trailer;
				if (count != 2 || !parse_uint(tok[1], STATE_MAX_ENTRIES, &trailer)) {
					what = "expected 'end COUNT'";
				} else if (trailer != p->doc.count) {
					set_err(err, err_len, "line %u: trailer counts %" PRIu64
					        " exchangers, the file has %zu", lineno, trailer,
					        p->doc.count);
					return KNOT_EMALF;
				}
				state = EXPECT_EOF;
			} else {
				what = "unknown record";
			}
			break;
		case EXPECT_EOF:
			break;
		}
		if (what != NULL) {
			set_err(err, err_len, "line %u: %s", lineno, what);
			return KNOT_EMALF;
		}
	}

	if (state != EXPECT_EOF) {
		set_err(err, err_len, "line %u: unexpected end of file, no 'end' trailer "
		        "(truncated file?)", lineno + 1);
		return KNOT_EMALF;
	}
	return check_duplicates(p, err, err_len);
}

int persist_load(const char *path, mxp_state_doc_t *doc, char *err, size_t err_len)
{
	if (doc == NULL) {
		set_err(err, err_len, "load: invalid arguments");
		return KNOT_EINVAL;
	}
	memset(doc, 0, sizeof(*doc));
	if (path == NULL || path[0] == '\0') {
		set_err(err, err_len, "load: invalid arguments");
		return KNOT_EINVAL;
	}

	char *data = NULL;
	size_t len = 0;
	int ret = read_file(path, &data, &len, err, err_len);
	if (ret != KNOT_EOK) {
		return ret;
	}

	parser_t p = { 0 };
	ret = parse_doc(data, len, &p, err, err_len);
	free(data);
	free(p.lines);
	if (ret != KNOT_EOK) {
		persist_doc_free(&p.doc);
		return ret;
	}
	*doc = p.doc;
	return KNOT_EOK;
}

/* ---------------------------------------------------------------------- */
/* Move aside, free.                                                       */
/* ---------------------------------------------------------------------- */

/* rename() that never replaces an existing target. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) {
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
		return -1;
	}
	/* The filesystem cannot do it atomically: check first. */
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	} else if (errno != ENOENT) {
		return -1;
	}
	return rename(from, to);
}

int persist_move_aside(const char *path, char *moved_to, size_t moved_len)
{
	if (path == NULL || path[0] == '\0' || moved_to == NULL || moved_len == 0) {
		return KNOT_EINVAL;
	}

	long long now = (long long)time(NULL);
	char target[PATH_MAX];
	for (unsigned i = 0; i < MOVE_ASIDE_TRIES; i++) {
		int n = (i == 0) ?
		        snprintf(target, sizeof(target), "%s.corrupt-%lld", path, now) :
		        snprintf(target, sizeof(target), "%s.corrupt-%lld-%u", path, now, i);
		if (n < 0 || (size_t)n >= sizeof(target) || (size_t)n >= moved_len) {
			return KNOT_ESPACE;
		}
		if (rename_noreplace(path, target) == 0) {
			memcpy(moved_to, target, n + 1);
			char dir[PATH_MAX];
			if (dir_of(path, dir, sizeof(dir))) {
				(void)sync_dir(dir);  /* Best effort: the move is done. */
			}
			return KNOT_EOK;
		}
		if (errno != EEXIST) {
			return knot_map_errno();
		}
	}
	return KNOT_EEXIST;
}

void persist_doc_free(mxp_state_doc_t *doc)
{
	if (doc == NULL) {
		return;
	}
	free(doc->entries);
	memset(doc, 0, sizeof(*doc));
}
