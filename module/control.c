/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <urcu.h>

#include "control.h"
#include "persist.h"
#include "protocol.h"
#include "registry.h"
#include "seen.h"
#include "signer.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define MAX_RESPONSE   ((4u << 20) - 4096)  /* Body + status line stay within mxpolicyctl's 4 MiB. */
#define WRITE_TIMEOUT  5000
#define SIGN_WAIT_MS   5000  /* Longest wait for signed variants before a change is published. */

typedef struct {
	int fd;
	uid_t uid;
	size_t len;
	int64_t deadline;
	char buf[MXP_PROTO_MAX_REQUEST + 1];
} client_t;

static struct {
	pthread_mutex_t lock;      /*!< Guards refs and start/stop, not the thread's own work. */
	unsigned refs;
	bool running;
	pthread_t thread;
	int listen_fd;
	int stop_fd;
	bool log_stderr;
	bool state_unreadable;     /*!< Saving would overwrite states we could not read. */
	control_conf_t conf;
	uint64_t requests, changes, refused, errors, denied;
	time_t started;
} ctl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.listen_fd = -1,
	.stop_fd = -1,
};

/* ------------------------------------------------------------------------ */
/* Logging: this thread outlives module instances, so it cannot log through
 * one (knotd 3.2.6 frees an instance's zone name before its unload runs).
 * It writes to knotd's stderr (the journal under systemd, the log file in
 * tests) or, when that is /dev/null (daemonized), to syslog. */

static bool stderr_is_useful(void)
{
	struct stat err_st, null_st;
	if (fstat(STDERR_FILENO, &err_st) != 0) {
		return false;
	}
	if (stat("/dev/null", &null_st) == 0 && S_ISCHR(err_st.st_mode) &&
	    err_st.st_rdev == null_st.st_rdev) {
		return false;
	}
	return true;
}

void ctl_log(int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list args;
	va_start(args, fmt);
	vsnprintf(msg, sizeof(msg), fmt, args);
	va_end(args);

	if (!ctl.log_stderr) {
		syslog(LOG_DAEMON | prio, "mod-mxpolicy: %s", msg);
		return;
	}
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));
	const char *level = prio <= LOG_ERR ? "error" : prio == LOG_WARNING ? "warning" :
	                    prio == LOG_NOTICE ? "notice" : "info";
	fprintf(stderr, "%s %s: mod-mxpolicy, %s\n", stamp, level, msg);
}

/* ------------------------------------------------------------------------ */
/* Response text. */

typedef struct {
	char *data;
	size_t len, cap;
	bool failed;
} strbuf_t;

__attribute__((format(printf, 2, 3)))
static void sb_printf(strbuf_t *sb, const char *fmt, ...)
{
	if (sb->failed) {
		return;
	}
	for (;;) {
		va_list args;
		va_start(args, fmt);
		size_t avail = sb->cap - sb->len;
		int n = vsnprintf(sb->data ? sb->data + sb->len : NULL, avail, fmt, args);
		va_end(args);
		if (n < 0) {
			sb->failed = true;
			return;
		}
		if ((size_t)n < avail) {
			sb->len += n;
			return;
		}
		size_t cap = sb->cap ? sb->cap * 2 : 4096;
		while (cap < sb->len + n + 1) {
			cap *= 2;
		}
		char *grown = cap <= MAX_RESPONSE ? realloc(sb->data, cap) : NULL;
		if (grown == NULL) {
			sb->failed = true;
			return;
		}
		sb->data = grown;
		sb->cap = cap;
	}
}

/* JSON string body (without quotes). */
static void sb_json_str(strbuf_t *sb, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') {
			sb_printf(sb, "\\%c", c);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\u%04x", c);
		} else {
			sb_printf(sb, "%c", c);
		}
	}
}

static void fmt_time(int64_t t, char *out, size_t len)
{
	if (t == 0) {
		snprintf(out, len, "-");
		return;
	}
	time_t tt = t;
	struct tm tm;
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static void name_text(const knot_dname_t *name, char *out, size_t len)
{
	if (knot_dname_to_str(out, name, len) == NULL) {
		snprintf(out, len, "?");
	}
}

/* ------------------------------------------------------------------------ */
/* Socket I/O. */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write everything or give up after WRITE_TIMEOUT: a stuck client never blocks for long. */
static void write_all(int fd, const char *data, size_t len)
{
	int64_t deadline = now_ms() + WRITE_TIMEOUT;
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			return;
		}
		int64_t left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (left <= 0 || poll(&pfd, 1, left) <= 0) {
			return;
		}
	}
}

static void reply(int fd, const char *status, const char *message, const strbuf_t *body)
{
	strbuf_t head = { 0 };
	if (message != NULL && *message != '\0') {
		sb_printf(&head, "%s %s %s\n", MXP_PROTO_MAGIC, status, message);
	} else {
		sb_printf(&head, "%s %s\n", MXP_PROTO_MAGIC, status);
	}
	if (!head.failed) {
		write_all(fd, head.data, head.len);
	}
	if (body != NULL && body->len > 0 && !body->failed) {
		write_all(fd, body->data, body->len);
	}
	free(head.data);
}

static bool peer_allowed(int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		return false;
	}
	*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid() || cred.gid == getegid()) {
		return true;
	}
	gid_t groups[512];
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		for (size_t i = 0; i < len / sizeof(gid_t); i++) {
			if (groups[i] == getegid()) {
				return true;
			}
		}
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* State changes: save first, publish second, answer last. */

static int save_state(const registry_snap_t *snap, char *err, size_t err_len)
{
	if (ctl.state_unreadable) {
		snprintf(err, err_len, "it could not be read at start; fix it and restart knotd, "
		         "refusing to overwrite it");
		return KNOT_EACCES;
	}
	mxp_state_doc_t doc = {
		.suspend = snap->suspend,
		.count = snap->count,
		.entries = snap->entries,
	};
	return persist_save(ctl.conf.state_path, &doc, err, err_len);
}

/*
 * Publish a change, having the signer prepare the signed variants of the
 * new states first, so that DO answers in signed zones follow the change
 * from the first query (bounded wait: past it they follow when signed).
 */
static void publish(registry_snap_t *snap)
{
	if (!signer_presign(snap, SIGN_WAIT_MS)) {
		ctl_log(LOG_WARNING, "signed answers for the new states not all ready within %d s, "
		        "the rest follow when signed", SIGN_WAIT_MS / 1000);
	}
	registry_publish(snap);
}

/* Save, then publish: a change the file does not hold is never answered "ok". */
static bool commit(registry_snap_t *snap, const char **status, char *msg, size_t msg_len)
{
	char err[512] = "";
	int ret = save_state(snap, err, sizeof(err));
	if (ret == KNOT_EOK && err[0] != '\0') {
		ctl_log(LOG_WARNING, "state file saved, but %s", err);
	}
	if (ret != KNOT_EOK) {
		registry_free(snap);
		*status = MXP_PROTO_STATUS_ERROR;
		snprintf(msg, msg_len, "change not made, cannot save the state file: %.400s", err);
		ctl_log(LOG_ERR, "%s", msg);
		return false;
	}
	publish(snap);
	ctl.changes++;
	return true;
}

static const mxp_exchanger_t *current_entry(const knot_dname_t *name, mxp_exchanger_t *tmp)
{
	const mxp_exchanger_t *e = registry_find(registry_current(), name);
	if (e != NULL) {
		return e;
	}
	memset(tmp, 0, sizeof(*tmp));
	memcpy(tmp->name, name, knot_dname_size(name));
	tmp->op = MXP_OP_AUTO;
	tmp->weight = MXP_WEIGHT_NONE;
	return tmp;
}

static void describe(const mxp_exchanger_t *e, char *out, size_t len)
{
	char weight[16], until[32];
	if (e->weight == MXP_WEIGHT_NONE) {
		snprintf(weight, sizeof(weight), "default");
	} else {
		snprintf(weight, sizeof(weight), "%d", e->weight);
	}
	fmt_time(e->until, until, sizeof(until));
	snprintf(out, len, "%s, weight %s%s%s%s%s", exchanger_op_name(e->op), weight,
	         e->until ? ", until " : "", e->until ? until : "",
	         e->reason[0] ? ", reason: " : "", e->reason);
}

/* Where an exchanger is used, from the remembered sets. */
typedef struct {
	size_t sets;
	uint64_t answers;
	uint64_t first;
} usage_t;

static usage_t exchanger_usage(const knot_dname_t *name)
{
	usage_t u = { 0 };
	for (size_t i = 0; i < seen_count(); i++) {
		const seen_set_t *set = seen_get(i);
		int idx = seen_find_exchanger(set, name);
		if (idx >= 0) {
			u.sets++;
			u.answers += set->answers;
			u.first += set->first[idx];
		}
	}
	return u;
}

static void set_exchangers(strbuf_t *body, const seen_set_t *set, bool json)
{
	knot_rdata_t *rd = set->rrs.rdata;
	for (uint16_t i = 0; i < set->rrs.count; i++, rd = knot_rdataset_next(rd)) {
		char name[KNOT_DNAME_TXT_MAXLEN + 1];
		name_text(rd->data + 2, name, sizeof(name));
		if (json) {
			sb_printf(body, "%s\"", i > 0 ? ", " : "");
			sb_json_str(body, name);
			sb_printf(body, "\"");
		} else {
			sb_printf(body, "%s%s", i > 0 ? ", " : "", name);
		}
	}
}

static bool set_all_down(const seen_set_t *set, const registry_snap_t *snap)
{
	knot_rdata_t *rd = set->rrs.rdata;
	for (uint16_t j = 0; j < set->rrs.count; j++, rd = knot_rdataset_next(rd)) {
		if (registry_effective(registry_find(snap, rd->data + 2)) != MXP_STATE_DOWN) {
			return false;
		}
	}
	return true;
}

/*
 * Remembered sets using 'name' that 'next' pushes into all-down (sets that
 * are all down already are no news); listed in body.
 */
static size_t sets_all_down(const registry_snap_t *next, const knot_dname_t *name, strbuf_t *body)
{
	const registry_snap_t *cur = registry_current();
	size_t dead = 0;
	for (size_t i = 0; i < seen_count(); i++) {
		const seen_set_t *set = seen_get(i);
		if (seen_find_exchanger(set, name) < 0) {
			continue;
		}
		if (set_all_down(set, next) && !set_all_down(set, cur)) {
			sb_printf(body, "%s: ", set->zone);
			set_exchangers(body, set, false);
			sb_printf(body, "\n");
			dead++;
		}
	}
	return dead;
}

static void apply_change(const mxp_request_t *req, uid_t uid, strbuf_t *body,
                         const char **status, char *msg, size_t msg_len)
{
	int64_t now = time(NULL);
	mxp_exchanger_t tmp;
	const mxp_exchanger_t *old = current_entry(req->name, &tmp);
	mxp_exchanger_t next = *old;

	switch (req->cmd) {
	case MXP_CMD_DOWN:
	case MXP_CMD_DRAIN:
	case MXP_CMD_UP:
		next.op = req->cmd == MXP_CMD_DOWN ? MXP_OP_DOWN :
		          req->cmd == MXP_CMD_DRAIN ? MXP_OP_DRAIN : MXP_OP_UP;
		snprintf(next.reason, sizeof(next.reason), "%s", req->reason);
		next.until = req->for_seconds ? now + req->for_seconds : 0;
		break;
	case MXP_CMD_AUTO:
		next.op = MXP_OP_AUTO;
		next.reason[0] = '\0';
		next.until = 0;
		break;
	case MXP_CMD_WEIGHT:
		next.weight = req->weight;
		break;
	default:
		*status = MXP_PROTO_STATUS_ERROR;
		snprintf(msg, msg_len, "not a change command");
		return;
	}
	next.uid = uid;
	next.since = now;

	char name[KNOT_DNAME_TXT_MAXLEN + 1], before[512], after[512];
	name_text(req->name, name, sizeof(name));
	describe(old, before, sizeof(before));
	describe(&next, after, sizeof(after));

	registry_snap_t *snap = registry_copy(registry_current());
	if (snap == NULL || registry_set(snap, &next) != KNOT_EOK) {
		registry_free(snap);
		*status = MXP_PROTO_STATUS_ERROR;
		snprintf(msg, msg_len, "out of memory");
		return;
	}

	/* Refuse to push a set the module answers into all-down, unless forced. */
	if (req->cmd == MXP_CMD_DOWN && !req->force) {
		size_t dead = sets_all_down(snap, req->name, body);
		if (dead > 0) {
			registry_free(snap);
			*status = MXP_PROTO_STATUS_REFUSED;
			snprintf(msg, msg_len, "would leave %zu MX set(s) with every exchanger down, "
			         "use --force", dead);
			return;
		}
	}

	if (req->dry_run) {
		registry_free(snap);
		sb_printf(body, "would change %s: %s -> %s\n", name, before, after);
		*status = MXP_PROTO_STATUS_OK;
		return;
	}
	if (!commit(snap, status, msg, msg_len)) {
		return;
	}
	ctl_log(LOG_NOTICE, "exchanger %s: %s -> %s, by uid %u", name, before, after,
	        (unsigned)uid);
	sb_printf(body, "%s: %s -> %s\n", name, before, after);
	*status = MXP_PROTO_STATUS_OK;
}

static void apply_suspend(const mxp_request_t *req, uid_t uid, strbuf_t *body,
                          const char **status, char *msg, size_t msg_len)
{
	const registry_snap_t *cur = registry_current();
	bool on = req->cmd == MXP_CMD_SUSPEND;
	if (req->dry_run) {
		sb_printf(body, "would %s the module (now %s)\n", on ? "suspend" : "resume",
		          cur->suspend.on ? "suspended" : "active");
		*status = MXP_PROTO_STATUS_OK;
		return;
	}
	registry_snap_t *snap = registry_copy(cur);
	if (snap == NULL) {
		*status = MXP_PROTO_STATUS_ERROR;
		snprintf(msg, msg_len, "out of memory");
		return;
	}
	snap->suspend.on = on;
	snap->suspend.uid = uid;
	snap->suspend.since = time(NULL);
	snprintf(snap->suspend.reason, sizeof(snap->suspend.reason), "%s", on ? req->reason : "");
	if (!commit(snap, status, msg, msg_len)) {
		return;
	}
	ctl_log(LOG_NOTICE, "%s by uid %u%s%s", on ? "suspended: answers pass unmodified" :
	        "resumed", (unsigned)uid, on && req->reason[0] ? ", reason: " : "",
	        on ? req->reason : "");
	sb_printf(body, "%s\n", on ? "suspended: every answer passes through unmodified" :
	                             "resumed");
	*status = MXP_PROTO_STATUS_OK;
}

/* Return expired --for states to auto; called by the thread's loop. */
static int64_t expire_states(void)
{
	const registry_snap_t *cur = registry_current();
	int64_t now = time(NULL), next = 0;
	registry_snap_t *snap = NULL;

	for (size_t i = 0; cur != NULL && i < cur->count; i++) {
		const mxp_exchanger_t *e = &cur->entries[i];
		if (e->until == 0) {
			continue;
		}
		if (e->until > now) {
			next = (next == 0 || e->until < next) ? e->until : next;
			continue;
		}
		if (snap == NULL && (snap = registry_copy(cur)) == NULL) {
			return now + 1;
		}
		mxp_exchanger_t back = *e;
		back.op = MXP_OP_AUTO;
		back.until = 0;
		back.reason[0] = '\0';
		back.since = now;
		(void)registry_set(snap, &back);
		char name[KNOT_DNAME_TXT_MAXLEN + 1];
		name_text(e->name, name, sizeof(name));
		ctl_log(LOG_NOTICE, "exchanger %s: %s expired -> auto", name, exchanger_op_name(e->op));
	}
	if (snap != NULL) {
		char err[256];
		if (save_state(snap, err, sizeof(err)) != KNOT_EOK) {
			/* Still expire: the operator asked for it; retry saving with the next change. */
			ctl_log(LOG_ERR, "cannot save state file '%s': %s", ctl.conf.state_path, err);
		}
		publish(snap);
		ctl.changes++;
	}
	return next;
}

/* ------------------------------------------------------------------------ */
/* Read-only commands. */

static void status_row(strbuf_t *body, const mxp_exchanger_t *e, bool json, bool first,
                       bool with_sets)
{
	char name[KNOT_DNAME_TXT_MAXLEN + 1], since[32], until[32], weight[16], share[16];
	name_text(e->name, name, sizeof(name));
	fmt_time(e->since, since, sizeof(since));
	fmt_time(e->until, until, sizeof(until));
	mxp_state_t eff = registry_effective(e);
	const char *eff_name = eff == MXP_STATE_DOWN ? "down" : eff == MXP_STATE_DRAIN ? "drain" : "up";
	usage_t use = exchanger_usage(e->name);

	if (json) {
		sb_printf(body, "%s\n    {\"exchanger\": \"", first ? "" : ",");
		sb_json_str(body, name);
		sb_printf(body, "\", \"operator\": \"%s\", \"effective\": \"%s\", \"weight\": ",
		          exchanger_op_name(e->op), eff_name);
		if (e->weight == MXP_WEIGHT_NONE) {
			sb_printf(body, "null");
		} else {
			sb_printf(body, "%d", e->weight);
		}
		sb_printf(body, ", \"since\": %lld, \"until\": %lld, \"by\": ",
		          (long long)e->since, (long long)e->until);
		if (e->since != 0) {
			sb_printf(body, "%u, \"reason\": \"", (unsigned)e->uid);
		} else {
			sb_printf(body, "null, \"reason\": \"");  /* Never set by anyone. */
		}
		sb_json_str(body, e->reason);
		sb_printf(body, "\", \"answers\": %llu, \"served_first\": %llu, \"sets\": [",
		          (unsigned long long)use.answers, (unsigned long long)use.first);
		bool any = false;
		for (size_t i = 0; with_sets && i < seen_count(); i++) {
			const seen_set_t *set = seen_get(i);
			int idx = seen_find_exchanger(set, e->name);
			if (idx < 0) {
				continue;
			}
			sb_printf(body, "%s{\"zone\": \"", any ? ", " : "");
			sb_json_str(body, set->zone);
			sb_printf(body, "\", \"exchangers\": [");
			set_exchangers(body, set, true);
			sb_printf(body, "], \"answers\": %llu, \"served_first\": %llu}",
			          (unsigned long long)set->answers, (unsigned long long)set->first[idx]);
			any = true;
		}
		sb_printf(body, "]}");
		return;
	}
	if (e->weight == MXP_WEIGHT_NONE) {
		snprintf(weight, sizeof(weight), "-");
	} else {
		snprintf(weight, sizeof(weight), "%d", e->weight);
	}
	if (use.answers > 0) {
		snprintf(share, sizeof(share), "%.1f%%", 100.0 * use.first / use.answers);
	} else {
		snprintf(share, sizeof(share), "-");
	}
	char by[16];
	if (e->since != 0) {
		snprintf(by, sizeof(by), "%u", (unsigned)e->uid);
	} else {
		snprintf(by, sizeof(by), "-");
	}
	sb_printf(body, "%-32s %-8s %-9s %-6s %-20s %-20s %-6s %-5zu %-6s %s\n", name,
	          exchanger_op_name(e->op), eff_name, weight, since, until,
	          by, use.sets, share, e->reason[0] ? e->reason : "-");
	if (!with_sets) {
		return;
	}
	for (size_t i = 0; i < seen_count(); i++) {
		const seen_set_t *set = seen_get(i);
		int idx = seen_find_exchanger(set, e->name);
		if (idx < 0) {
			continue;
		}
		sb_printf(body, "  %s  exchangers: ", set->zone);
		set_exchangers(body, set, false);
		sb_printf(body, "  first: %llu of %llu answers\n",
		          (unsigned long long)set->first[idx], (unsigned long long)set->answers);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return knot_dname_cmp(*(const knot_dname_t **)a, *(const knot_dname_t **)b);
}

static void cmd_status(const mxp_request_t *req, strbuf_t *body)
{
	const registry_snap_t *cur = registry_current();
	const mxp_suspend_t *sus = &cur->suspend;

	if (req->json) {
		sb_printf(body, "{\n  \"suspended\": %s,\n  \"generation\": %llu,\n  \"exchangers\": [",
		          sus->on ? "true" : "false", (unsigned long long)cur->generation);
	} else {
		if (sus->on) {
			char since[32];
			fmt_time(sus->since, since, sizeof(since));
			sb_printf(body, "SUSPENDED since %s by uid %u%s%s: answers pass unmodified\n\n",
			          since, (unsigned)sus->uid, sus->reason[0] ? ", reason: " : "", sus->reason);
		}
		sb_printf(body, "%-32s %-8s %-9s %-6s %-20s %-20s %-6s %-5s %-6s %s\n", "EXCHANGER",
		          "OPERATOR", "EFFECTIVE", "WEIGHT", "SINCE", "UNTIL", "BY", "SETS", "FIRST",
		          "REASON");
	}

	mxp_exchanger_t tmp;
	if (req->has_name) {
		status_row(body, current_entry(req->name, &tmp), req->json, true, true);
	} else {
		/* Every exchanger the operator set, and every one in a remembered set. */
		size_t cap = cur->count;
		for (size_t i = 0; i < seen_count(); i++) {
			cap += seen_get(i)->rrs.count;
		}
		knot_dname_t **names = calloc(cap ? cap : 1, sizeof(*names));
		size_t n = 0;
		for (size_t i = 0; names != NULL && i < cur->count; i++) {
			names[n++] = cur->entries[i].name;
		}
		for (size_t i = 0; names != NULL && i < seen_count(); i++) {
			knot_rdata_t *rd = seen_get(i)->rrs.rdata;
			for (uint16_t j = 0; j < seen_get(i)->rrs.count; j++, rd = knot_rdataset_next(rd)) {
				knot_dname_t *lower = malloc(KNOT_DNAME_MAXLEN);
				if (lower == NULL) {
					continue;
				}
				knot_dname_copy_lower(lower, rd->data + 2);
				if (*lower == 0) {
					free(lower);  /* The root of a null MX is no exchanger. */
					continue;
				}
				names[n++] = lower;
			}
		}
		if (names != NULL) {
			qsort(names, n, sizeof(*names), name_cmp);
		}
		size_t rows = 0;
		for (size_t i = 0; i < n; i++) {
			if (i > 0 && knot_dname_cmp(names[i - 1], names[i]) == 0) {
				continue;
			}
			status_row(body, current_entry(names[i], &tmp), req->json, rows++ == 0, req->json);
		}
		/* Free the lowercased copies (the registry's names are not ours). */
		for (size_t i = 0; i < n; i++) {
			bool owned = true;
			for (size_t j = 0; j < cur->count; j++) {
				if (names[i] == cur->entries[j].name) {
					owned = false;
					break;
				}
			}
			if (owned) {
				free(names[i]);
			}
		}
		free(names);
	}
	if (req->json) {
		sb_printf(body, "\n  ]\n}\n");
	}
}

static void cmd_stats(const mxp_request_t *req, strbuf_t *body)
{
	const registry_snap_t *cur = registry_current();
	signer_stats_t sst;
	signer_stats(&sst);
	size_t down = 0, drain = 0, up = 0, weights = 0;
	for (size_t i = 0; i < cur->count; i++) {
		down += cur->entries[i].op == MXP_OP_DOWN;
		drain += cur->entries[i].op == MXP_OP_DRAIN;
		up += cur->entries[i].op == MXP_OP_UP;
		weights += cur->entries[i].weight != MXP_WEIGHT_NONE;
	}
	if (req->json) {
		sb_printf(body, "{\"suspended\": %s, \"generation\": %llu, \"exchangers\": %zu, "
		          "\"down\": %zu, \"drain\": %zu, \"up\": %zu, \"weight_overrides\": %zu, "
		          "\"requests\": %llu, \"changes\": %llu, \"refused\": %llu, "
		          "\"errors\": %llu, \"denied\": %llu, \"uptime\": %lld",
		          cur->suspend.on ? "true" : "false", (unsigned long long)cur->generation,
		          cur->count, down, drain, up, weights,
		          (unsigned long long)ctl.requests, (unsigned long long)ctl.changes,
		          (unsigned long long)ctl.refused, (unsigned long long)ctl.errors,
		          (unsigned long long)ctl.denied, (long long)(time(NULL) - ctl.started));
		sb_printf(body, ", \"signing\": {\"signed\": %llu, \"cached\": %llu, "
		          "\"sets\": %llu, \"requests\": %llu, \"ring_full\": %llu, "
		          "\"budget_deferred\": %llu",
		          (unsigned long long)sst.signed_ok, (unsigned long long)sst.cached,
		          (unsigned long long)sst.contexts, (unsigned long long)sst.requests,
		          (unsigned long long)sst.ring_full, (unsigned long long)sst.budget_deferred);
		for (int i = 1; i < SIG_CAUSES; i++) {
			sb_printf(body, ", \"failed_%s\": %llu", sig_cause_names[i],
			          (unsigned long long)sst.failed[i]);
		}
		sb_printf(body, "}}\n");
		return;
	}
	sb_printf(body, "suspended: %s\ngeneration: %llu\nexchangers: %zu (down %zu, drain %zu, "
	          "up %zu, weight overrides %zu)\nrequests: %llu\nchanges: %llu\nrefused: %llu\n"
	          "errors: %llu\ndenied: %llu\nuptime: %lld s\nstate file: %s\n",
	          cur->suspend.on ? "yes" : "no", (unsigned long long)cur->generation,
	          cur->count, down, drain, up, weights,
	          (unsigned long long)ctl.requests, (unsigned long long)ctl.changes,
	          (unsigned long long)ctl.refused, (unsigned long long)ctl.errors,
	          (unsigned long long)ctl.denied, (long long)(time(NULL) - ctl.started),
	          ctl.conf.state_path);
	sb_printf(body, "signed variants: %llu signed, %llu cached, %llu sets, %llu requests "
	          "(%llu not queued), %llu waited for the budget\nsigning failures:",
	          (unsigned long long)sst.signed_ok, (unsigned long long)sst.cached,
	          (unsigned long long)sst.contexts, (unsigned long long)sst.requests,
	          (unsigned long long)sst.ring_full, (unsigned long long)sst.budget_deferred);
	for (int i = 1; i < SIG_CAUSES; i++) {
		sb_printf(body, " %s %llu", sig_cause_names[i], (unsigned long long)sst.failed[i]);
	}
	sb_printf(body, "\n");
}

static void handle_request(client_t *c)
{
	mxp_request_t req;
	char msg[512] = "";
	const char *status = MXP_PROTO_STATUS_ERROR;
	strbuf_t body = { 0 };

	ctl.requests++;
	seen_harvest(time(NULL));  /* Answer from fresh counts. */
	int ret = proto_parse_request(c->buf, c->len, &req, msg, sizeof(msg));
	if (ret == KNOT_EOK) {
		switch (req.cmd) {
		case MXP_CMD_VERSION:
			sb_printf(&body, "mod-mxpolicy %s, protocol %d\n", PACKAGE_VERSION,
			          MXP_PROTO_VERSION);
			status = MXP_PROTO_STATUS_OK;
			break;
		case MXP_CMD_STATUS:
			cmd_status(&req, &body);
			status = MXP_PROTO_STATUS_OK;
			break;
		case MXP_CMD_STATS:
			cmd_stats(&req, &body);
			status = MXP_PROTO_STATUS_OK;
			break;
		case MXP_CMD_SUSPEND:
		case MXP_CMD_RESUME:
			apply_suspend(&req, c->uid, &body, &status, msg, sizeof(msg));
			break;
		default:
			apply_change(&req, c->uid, &body, &status, msg, sizeof(msg));
			break;
		}
	}
	if (body.failed) {
		status = MXP_PROTO_STATUS_ERROR;
		snprintf(msg, sizeof(msg), "response too large");
		body.len = 0;
	}
	if (strcmp(status, MXP_PROTO_STATUS_ERROR) == 0) {
		ctl.errors++;
	} else if (strcmp(status, MXP_PROTO_STATUS_REFUSED) == 0) {
		ctl.refused++;
	}
	reply(c->fd, status, msg, &body);
	free(body.data);
}

/* ------------------------------------------------------------------------ */
/* The thread. */

static void client_close(client_t *c)
{
	if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
	c->len = 0;
}

static void accept_client(client_t *clients)
{
	int fd = accept4(ctl.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		return;
	}
	uid_t uid = (uid_t)-1;
	if (!peer_allowed(fd, &uid)) {
		ctl.denied++;
		reply(fd, MXP_PROTO_STATUS_ERROR, "permission denied", NULL);
		close(fd);
		ctl_log(LOG_WARNING, "control connection from uid %d refused: not root, "
		        "knotd's user or a member of knotd's group", (int)uid);
		return;
	}
	for (int i = 0; i < MXP_PROTO_MAX_CLIENTS; i++) {
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].uid = uid;
			clients[i].len = 0;
			clients[i].deadline = now_ms() + MXP_PROTO_IDLE_TIMEOUT;
			return;
		}
	}
	reply(fd, MXP_PROTO_STATUS_ERROR, "too many clients, try again", NULL);
	close(fd);
}

static void read_client(client_t *c)
{
	for (;;) {
		size_t room = MXP_PROTO_MAX_REQUEST - c->len;
		ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			if (n == 0 && c->len > 0) {
				/* Half-closed after a partial line: say why nothing was done. */
				ctl.errors++;
				reply(c->fd, MXP_PROTO_STATUS_ERROR, "incomplete request (no newline)", NULL);
			}
			client_close(c);
			return;
		}
		char *lf = memchr(c->buf + c->len, '\n', n);
		c->len += n;
		if (lf != NULL) {
			c->len = lf - c->buf + 1;
			handle_request(c);
			client_close(c);
			return;
		}
		if (c->len >= MXP_PROTO_MAX_REQUEST) {
			ctl.errors++;
			reply(c->fd, MXP_PROTO_STATUS_ERROR, "request too long", NULL);
			client_close(c);
			return;
		}
	}
}

static void *control_main(void *arg)
{
	(void)arg;
	rcu_register_thread();

	client_t *clients = calloc(MXP_PROTO_MAX_CLIENTS, sizeof(*clients));
	for (int i = 0; clients != NULL && i < MXP_PROTO_MAX_CLIENTS; i++) {
		clients[i].fd = -1;
	}
	bool stop = (clients == NULL);
	if (stop) {
		ctl_log(LOG_ERR, "control thread out of memory, control socket not served");
	}

	while (!stop) {
		int64_t expiry = expire_states();
		seen_harvest(time(NULL));
		int64_t now = now_ms();
		/* Wake at least every second: counters are harvested before caches recycle them. */
		int64_t wait = expiry ? (expiry - (int64_t)time(NULL)) * 1000 + 50 : 1000;
		int timeout = wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;

		struct pollfd pfd[MXP_PROTO_MAX_CLIENTS + 2];
		int map[MXP_PROTO_MAX_CLIENTS + 2];
		nfds_t n = 0;
		int busy = 0;
		for (int i = 0; i < MXP_PROTO_MAX_CLIENTS; i++) {
			busy += clients[i].fd >= 0;
		}
		/* With every slot taken, new clients wait in the listen backlog. */
		pfd[n++] = (struct pollfd){ .fd = ctl.stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = ctl.listen_fd,
		                            .events = busy < MXP_PROTO_MAX_CLIENTS ? POLLIN : 0 };
		for (int i = 0; i < MXP_PROTO_MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0) {
				int left = (int)(clients[i].deadline - now);
				timeout = left < timeout ? (left > 0 ? left : 0) : timeout;
				map[n] = i;
				pfd[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
			}
		}

		int ret = poll(pfd, n, timeout);
		if (ret < 0 && errno != EINTR) {
			ctl_log(LOG_ERR, "control poll failed (%s), control socket not served",
			        strerror(errno));
			break;
		}
		if (ret > 0 && (pfd[0].revents & POLLIN)) {
			break;
		}
		for (nfds_t i = 2; ret > 0 && i < n; i++) {
			if (pfd[i].revents != 0) {
				read_client(&clients[map[i]]);
			}
		}
		if (ret > 0 && (pfd[1].revents & POLLIN)) {
			accept_client(clients);
		}
		now = now_ms();
		for (int i = 0; i < MXP_PROTO_MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0 && now >= clients[i].deadline) {
				ctl.errors++;
				reply(clients[i].fd, MXP_PROTO_STATUS_ERROR, "timeout waiting for the request", NULL);
				client_close(&clients[i]);
			}
		}
	}

	for (int i = 0; clients != NULL && i < MXP_PROTO_MAX_CLIENTS; i++) {
		client_close(&clients[i]);
	}
	free(clients);
	/* Snapshots retired with call_rcu() must be freed while this library is mapped. */
	rcu_barrier();
	rcu_unregister_thread();
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start and stop. */

static int open_socket(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, err_len, "control socket path '%s' is too long", path);
		return -1;
	}
	strcpy(addr.sun_path, path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "socket: %s", strerror(errno));
		return -1;
	}

	/* A socket file left by a dead server is replaced; a live one is not stolen. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "'%s' exists and is not a socket", path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(probe);
			snprintf(err, err_len, "control socket '%s' is in use by another process", path);
			close(fd);
			return -1;
		}
		if (probe >= 0) {
			close(probe);
		}
		unlink(path);
	}

	/* No umask() here: it is process-wide and other knotd threads create files. */
	int ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	if (ret != 0) {
		snprintf(err, err_len, "bind '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* Until this chmod the socket may be wider; peers are checked with SO_PEERCRED anyway. */
	if (chmod(path, 0660) != 0) {
		snprintf(err, err_len, "chmod '%s': %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	if (listen(fd, 64) != 0) {
		snprintf(err, err_len, "listen '%s': %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

static registry_snap_t *load_state(const char *path)
{
	registry_snap_t *snap = registry_copy(NULL);
	if (snap == NULL) {
		return NULL;
	}
	mxp_state_doc_t doc = { 0 };
	char err[512] = "";
	int ret = persist_load(path, &doc, err, sizeof(err));
	if (ret == KNOT_EOK) {
		snap->suspend = doc.suspend;
		for (size_t i = 0; i < doc.count; i++) {
			if (registry_set(snap, &doc.entries[i]) != KNOT_EOK) {
				/* Saving now would write the loss into the file. */
				ctl.state_unreadable = true;
				ctl_log(LOG_ERR, "out of memory loading state file '%s', changes are "
				        "refused until a restart", path);
				break;
			}
		}
		ctl_log(LOG_INFO, "state file '%s' loaded, %zu exchanger(s)%s", path, doc.count,
		        doc.suspend.on ? ", suspended" : "");
	} else if (ret == KNOT_EMALF) {
		char moved[PATH_MAX + 64];
		if (persist_move_aside(path, moved, sizeof(moved)) == KNOT_EOK) {
			ctl_log(LOG_ERR, "state file '%s' is corrupt (%s), moved to '%s', "
			        "starting without operator states", path, err, moved);
		} else {
			ctl_log(LOG_ERR, "state file '%s' is corrupt (%s) and cannot be moved aside, "
			        "starting without operator states", path, err);
		}
	} else if (ret != KNOT_ENOENT) {
		ctl.state_unreadable = true;
		ctl_log(LOG_ERR, "cannot read state file '%s' (%s), starting without operator "
		        "states; changes are refused until it is readable", path, err);
	}
	persist_doc_free(&doc);
	return snap;
}

int control_acquire(const control_conf_t *conf, char *err, size_t err_len)
{
	pthread_mutex_lock(&ctl.lock);
	if (ctl.refs > 0) {
		ctl.refs++;
		pthread_mutex_unlock(&ctl.lock);
		return KNOT_EOK;
	}

	ctl.log_stderr = stderr_is_useful();
	ctl.state_unreadable = false;
	ctl.conf = *conf;
	ctl.started = time(NULL);
	ctl.requests = ctl.changes = ctl.refused = ctl.errors = ctl.denied = 0;

	/* Operator states apply from the very first query. */
	registry_snap_t *snap = load_state(conf->state_path);
	if (snap == NULL) {
		snprintf(err, err_len, "out of memory");
		pthread_mutex_unlock(&ctl.lock);
		return KNOT_ENOMEM;
	}
	registry_publish(snap);

	char sock_err[512] = "";
	ctl.listen_fd = open_socket(conf->socket_path, sock_err, sizeof(sock_err));
	ctl.stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ctl.running = false;
	if (ctl.listen_fd >= 0 && ctl.stop_fd >= 0 &&
	    pthread_create(&ctl.thread, NULL, control_main, NULL) == 0) {
		ctl.running = true;
		ctl_log(LOG_INFO, "control socket '%s' ready", conf->socket_path);
	} else {
		/* Answers keep following the saved states; only changes are impossible. */
		ctl_log(LOG_ERR, "control socket not available (%s), operator states from '%s' "
		        "still apply", sock_err[0] ? sock_err : strerror(errno), conf->state_path);
		if (ctl.listen_fd >= 0) {
			close(ctl.listen_fd);
			unlink(conf->socket_path);
		}
		if (ctl.stop_fd >= 0) {
			close(ctl.stop_fd);
		}
		ctl.listen_fd = ctl.stop_fd = -1;
	}
	ctl.refs = 1;
	pthread_mutex_unlock(&ctl.lock);
	return KNOT_EOK;
}

void control_release(void)
{
	pthread_mutex_lock(&ctl.lock);
	if (ctl.refs == 0 || --ctl.refs > 0) {
		pthread_mutex_unlock(&ctl.lock);
		return;
	}
	if (ctl.running) {
		uint64_t one = 1;
		(void)!write(ctl.stop_fd, &one, sizeof(one));
		pthread_join(ctl.thread, NULL);
		ctl.running = false;
	}
	if (ctl.listen_fd >= 0) {
		close(ctl.listen_fd);
		unlink(ctl.conf.socket_path);
	}
	if (ctl.stop_fd >= 0) {
		close(ctl.stop_fd);
	}
	ctl.listen_fd = ctl.stop_fd = -1;
	seen_clear();
	registry_destroy();
	pthread_mutex_unlock(&ctl.lock);
}

bool control_same_conf(const control_conf_t *conf)
{
	pthread_mutex_lock(&ctl.lock);
	bool same = ctl.refs == 0 ||
	            (strcmp(ctl.conf.socket_path, conf->socket_path) == 0 &&
	             strcmp(ctl.conf.state_path, conf->state_path) == 0);
	pthread_mutex_unlock(&ctl.lock);
	return same;
}
