/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file mxpolicyctl.c
 * \brief Operator client of the mod-mxpolicy control socket.
 *
 * Builds one request (see include/mxpolicy/protocol.h), sends it over the
 * UNIX socket, reads the whole response and prints it. Everything the
 * client can check (command, arguments, options, values) is checked here,
 * so that a typo is a usage error and never reaches the server.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#ifndef MXPOLICY_DEFAULT_SOCKET
#define MXPOLICY_DEFAULT_SOCKET "/run/knot/mxpolicy.sock"
#endif

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROGRAM_NAME "mxpolicyctl"

/*! Environment variable overriding the default socket path. */
#define ENV_SOCKET     "MXPOLICYCTL_SOCKET"
/*! Environment variable overriding the response timeout (ms). */
#define ENV_TIMEOUT_MS "MXPOLICYCTL_TIMEOUT_MS"

/*! Time allowed from connect() to the end of the response. */
#define DEFAULT_TIMEOUT_MS 10000
/*! Largest accepted value of ENV_TIMEOUT_MS (one hour). */
#define MAX_TIMEOUT_MS     3600000
/*! Longest response accepted (status line and body). */
#define MAX_RESPONSE       (4u * 1024 * 1024)
/*! Read chunk size. */
#define READ_CHUNK         65536

enum {
	EXIT_OK = 0,
	EXIT_SERVER = 1,  /*!< Refused or error by the server, or a bad response. */
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

/*! How each command is shown in messages; what it takes comes from proto_cmd_syntax(). */
typedef struct {
	mxp_cmd_t cmd;
	const char *args;      /*!< Arguments, as shown in messages. */
} cmd_usage_t;

static const cmd_usage_t USAGES[] = {
	{ MXP_CMD_VERSION, "" },
	{ MXP_CMD_STATUS,  "[NAME]" },
	{ MXP_CMD_STATS,   "" },
	{ MXP_CMD_DOWN,    "NAME" },
	{ MXP_CMD_DRAIN,   "NAME" },
	{ MXP_CMD_UP,      "NAME" },
	{ MXP_CMD_AUTO,    "NAME" },
	{ MXP_CMD_WEIGHT,  "NAME N|default" },
	{ MXP_CMD_SUSPEND, "" },
	{ MXP_CMD_RESUME,  "" },
};

/*! Options in the order usage errors report them. */
static const unsigned OPT_REPORT_ORDER[] = {
	MXP_OPT_JSON, MXP_OPT_REASON, MXP_OPT_FOR, MXP_OPT_FORCE, MXP_OPT_DRY_RUN,
};

/*! Longest positional list kept (command + 2 arguments + one extra to report). */
#define MAX_POSITIONAL 4

typedef struct {
	const char *socket;
	const char *reason;
	const char *for_text;
	unsigned opts;                        /*!< OPT_* given. */
	const char *pos[MAX_POSITIONAL];
	unsigned npos;
	bool help;
	bool version;
} cli_t;

static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROGRAM_NAME ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	fprintf(stderr, "Try '" PROGRAM_NAME " --help' for more information.\n");
	exit(EXIT_USAGE);
}

static void print_help(void)
{
	printf("Usage: " PROGRAM_NAME " [-s|--socket PATH] COMMAND [ARGS] [OPTIONS]\n"
	       "\n"
	       "Control the mod-mxpolicy module of a running knotd through its control socket.\n"
	       "\n"
	       "Commands:\n"
	       "  status [NAME]          show the exchangers (or one) with states, weights, use\n"
	       "  stats                  show the module's statistics\n"
	       "  version                show the module's version\n"
	       "  down NAME              leave exchanger NAME out of every answer\n"
	       "  drain NAME             serve exchanger NAME last in its tier\n"
	       "  up NAME                set exchanger NAME up\n"
	       "  auto NAME              clear the operator state of exchanger NAME\n"
	       "  weight NAME N|default  set a runtime weight (0..65535), or remove it\n"
	       "  suspend                pass every answer through unmodified\n"
	       "  resume                 end a suspend\n"
	       "\n"
	       "Options (before or after the command):\n"
	       "  -s, --socket PATH      control socket (default: $" ENV_SOCKET ", else\n"
	       "                         " MXPOLICY_DEFAULT_SOCKET ")\n"
	       "      --json             print JSON (status, stats)\n"
	       "      --reason TEXT      why, at most %d bytes (down, drain, up, suspend)\n"
	       "      --for DURATION     return to auto after DURATION: 7200, 90s, 30m, 2h,\n"
	       "                         1h30m, 1d; at most 30d (down, drain)\n"
	       "      --force            down even if an answer would have every exchanger down\n"
	       "      --dry-run          show what would change, change nothing\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version of " PROGRAM_NAME "\n"
	       "\n"
	       "Exit status: 0 ok, 1 refused or error, 2 usage error, 3 cannot connect.\n",
	       MXP_PROTO_MAX_REASON);
}

static void print_version(void)
{
	printf(PROGRAM_NAME " (knot-mxpolicy) %s, protocol %s\n",
	       PACKAGE_VERSION, MXP_PROTO_MAGIC);
}

static const char *opt_name(unsigned opt)
{
	switch (opt) {
	case MXP_OPT_JSON:    return "--json";
	case MXP_OPT_REASON:  return "--reason";
	case MXP_OPT_FOR:     return "--for";
	case MXP_OPT_FORCE:   return "--force";
	case MXP_OPT_DRY_RUN: return "--dry-run";
	default:          return "?";
	}
}

static void set_flag(cli_t *cli, unsigned opt)
{
	if (cli->opts & opt) {
		usage_error("option %s given twice", opt_name(opt));
	}
	cli->opts |= opt;
}

/*!
 * \brief Value of an option: inline ("--for=2h", "-sPATH") or the next argument.
 */
static const char *opt_value(const char *opt, const char *inline_val,
                             int argc, char **argv, int *i)
{
	if (inline_val != NULL) {
		return inline_val;
	}
	if (*i + 1 >= argc) {
		usage_error("option %s needs a value", opt);
	}
	*i += 1;
	return argv[*i];
}

static void set_socket(cli_t *cli, const char *path)
{
	if (cli->socket != NULL) {
		usage_error("option --socket given twice");
	}
	if (path[0] == '\0') {
		usage_error("option --socket: empty path");
	}
	cli->socket = path;
}

static void add_positional(cli_t *cli, const char *arg)
{
	/* Only the first ones are kept: more is an error anyway. */
	if (cli->npos < MAX_POSITIONAL) {
		cli->pos[cli->npos++] = arg;
	}
}

static void parse_long(cli_t *cli, const char *arg, int argc, char **argv, int *i)
{
	/* "--name" or "--name=value". */
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t len = (eq != NULL) ? (size_t)(eq - name) : strlen(name);
	const char *val = (eq != NULL) ? eq + 1 : NULL;

#define IS(str) (len == strlen(str) && strncmp(name, str, len) == 0)
	if (IS("socket")) {
		set_socket(cli, opt_value("--socket", val, argc, argv, i));
		return;
	} else if (IS("reason")) {
		set_flag(cli, MXP_OPT_REASON);
		cli->reason = opt_value("--reason", val, argc, argv, i);
		return;
	} else if (IS("for")) {
		set_flag(cli, MXP_OPT_FOR);
		cli->for_text = opt_value("--for", val, argc, argv, i);
		return;
	}

	unsigned flag = 0;
	if (IS("json")) {
		flag = MXP_OPT_JSON;
	} else if (IS("force")) {
		flag = MXP_OPT_FORCE;
	} else if (IS("dry-run")) {
		flag = MXP_OPT_DRY_RUN;
	} else if (IS("help")) {
		cli->help = true;
	} else if (IS("version")) {
		cli->version = true;
	} else {
		usage_error("unknown option '--%.*s'", (int)len, name);
	}
#undef IS
	if (val != NULL) {
		usage_error("option '--%.*s' takes no value", (int)len, name);
	}
	if (flag != 0) {
		set_flag(cli, flag);
	}
}

static void parse_short(cli_t *cli, const char *arg, int argc, char **argv, int *i)
{
	/* "-s PATH", "-sPATH", "-h", "-V", combined flags ("-hV"). */
	for (const char *p = arg + 1; *p != '\0'; p++) {
		switch (*p) {
		case 's':
			set_socket(cli, opt_value("-s", (p[1] != '\0') ? p + 1 : NULL,
			                          argc, argv, i));
			return;
		case 'h':
			cli->help = true;
			break;
		case 'V':
			cli->version = true;
			break;
		default:
			usage_error("unknown option '-%c'", *p);
		}
	}
}

static void parse_args(cli_t *cli, int argc, char **argv)
{
	bool only_positional = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (only_positional || arg[0] != '-' || arg[1] == '\0') {
			add_positional(cli, arg);
		} else if (strcmp(arg, "--") == 0) {
			only_positional = true;
		} else if (arg[1] == '-') {
			parse_long(cli, arg, argc, argv, &i);
		} else {
			parse_short(cli, arg, argc, argv, &i);
		}
	}
}

static const char *command_args(mxp_cmd_t cmd)
{
	for (size_t i = 0; i < sizeof(USAGES) / sizeof(USAGES[0]); i++) {
		if (USAGES[i].cmd == cmd) {
			return USAGES[i].args;
		}
	}
	return "";
}

static void parse_name(mxp_request_t *req, const char *text)
{
	if (text[0] == '\0' ||
	    knot_dname_from_str(req->name, text, sizeof(req->name)) == NULL) {
		usage_error("invalid exchanger name '%s'", text);
	}
	if (req->name[0] == '\0') {
		usage_error("invalid exchanger name '%s' (the root)", text);
	}
	knot_dname_to_lower(req->name);
	req->has_name = true;
}

static void parse_weight(mxp_request_t *req, const char *text)
{
	if (strcmp(text, "default") == 0) {
		req->weight = -1;
		return;
	}
	long val = 0;
	const char *p = text;
	do {
		if (*p < '0' || *p > '9' || val > 65535) {
			usage_error("invalid weight '%s' (0..65535 or 'default')", text);
		}
		val = val * 10 + (*p - '0');
	} while (*++p != '\0');
	if (val > 65535) {
		usage_error("invalid weight '%s' (0..65535 or 'default')", text);
	}
	req->weight = (int32_t)val;
}

static void parse_reason(mxp_request_t *req, const char *text)
{
	size_t len = strlen(text);
	if (len == 0) {
		usage_error("option --reason: empty text");
	}
	if (len > MXP_PROTO_MAX_REASON) {
		usage_error("option --reason: text too long (%zu bytes, at most %d)",
		            len, MXP_PROTO_MAX_REASON);
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c == 0x7f) {
			usage_error("option --reason: control characters are not allowed");
		}
	}
	memcpy(req->reason, text, len + 1);
}

/*! Turn the command line into a request; exits with EXIT_USAGE on error. */
static void build_request(const cli_t *cli, mxp_request_t *req)
{
	memset(req, 0, sizeof(*req));
	req->weight = -1;

	if (cli->npos == 0) {
		usage_error("no command given");
	}
	const char *name = cli->pos[0];
	mxp_cmd_t cmd;
	if (proto_cmd_by_name(name, &cmd) != KNOT_EOK) {
		usage_error("unknown command '%s'", name);
	}
	const mxp_cmd_syntax_t *info = proto_cmd_syntax(cmd);
	const char *args = command_args(cmd);
	req->cmd = cmd;

	unsigned nargs = cli->npos - 1;
	if (nargs < info->min_args) {
		usage_error("command '%s' needs %s (usage: %s %s)", name,
		            (info->min_args == 1) ? "an exchanger name" : "NAME and N|default",
		            name, args);
	}
	if (nargs > info->max_args) {
		const char *extra = cli->pos[1 + info->max_args];
		if (info->opts & MXP_OPT_REASON) {
			usage_error("too many arguments for '%s': '%s' (give a reason "
			            "with --reason TEXT)", name, extra);
		}
		usage_error("too many arguments for '%s': '%s' (usage: %s%s%s)",
		            name, extra, name, (args[0] != '\0') ? " " : "", args);
	}

	unsigned bad = cli->opts & ~info->opts;
	for (size_t i = 0; bad != 0 && i < sizeof(OPT_REPORT_ORDER) / sizeof(*OPT_REPORT_ORDER); i++) {
		if (bad & OPT_REPORT_ORDER[i]) {
			usage_error("option %s is not valid for '%s'", opt_name(OPT_REPORT_ORDER[i]), name);
		}
	}

	if (nargs >= 1) {
		parse_name(req, cli->pos[1]);
	}
	if (cmd == MXP_CMD_WEIGHT) {
		parse_weight(req, cli->pos[2]);
	}
	if (cli->opts & MXP_OPT_REASON) {
		parse_reason(req, cli->reason);
	}
	if (cli->opts & MXP_OPT_FOR) {
		if (proto_parse_duration(cli->for_text, &req->for_seconds) != KNOT_EOK) {
			usage_error("option --for: invalid duration '%s' (seconds, or "
			            "units s, m, h, d like 2h or 1h30m; at most 30d)",
			            cli->for_text);
		}
	}
	req->json = (cli->opts & MXP_OPT_JSON) != 0;
	req->force = (cli->opts & MXP_OPT_FORCE) != 0;
	req->dry_run = (cli->opts & MXP_OPT_DRY_RUN) != 0;
}

static int parse_timeout(void)
{
	const char *env = getenv(ENV_TIMEOUT_MS);
	if (env == NULL || env[0] == '\0') {
		return DEFAULT_TIMEOUT_MS;
	}
	char *end = NULL;
	errno = 0;
	long val = strtol(env, &end, 10);
	if (errno != 0 || *end != '\0' || env[0] < '0' || env[0] > '9' ||
	    val < 1 || val > MAX_TIMEOUT_MS) {
		usage_error("invalid %s '%s' (milliseconds, 1..%d)", ENV_TIMEOUT_MS,
		            env, MAX_TIMEOUT_MS);
	}
	return (int)val;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void connect_error(const char *path, int err)
{
	const char *why = (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT) ?
	                  "timed out (the server is busy)" : strerror(err);
	fprintf(stderr, PROGRAM_NAME ": cannot connect to %s: %s\n", path, why);
	if (err == ENOENT || err == ECONNREFUSED) {
		fprintf(stderr, "Is knotd running with mod-mxpolicy? "
		        "Another socket can be given with -s PATH.\n");
	} else if (err == EACCES || err == EPERM) {
		fprintf(stderr, "Only root, knotd's user and members of knotd's "
		        "group may use the socket.\n");
	}
	exit(EXIT_CONNECT);
}

/*! Connect within timeout_ms; exits with EXIT_CONNECT on failure. */
static int connect_socket(const char *path, int timeout_ms)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		connect_error(path, ENAMETOOLONG);
	}
	strcpy(addr.sun_path, path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_error(path, errno);
	}

	/* A blocking connect() to a UNIX socket whose backlog is full waits up
	 * to the send timeout. */
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	int ret;
	do {
		ret = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	} while (ret != 0 && errno == EINTR);
	if (ret != 0) {
		int err = errno;
		close(fd);
		connect_error(path, err);
	}

	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		int err = errno;
		close(fd);
		connect_error(path, err);
	}
	return fd;
}

/*! Wait for 'events' until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	while (true) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			return 0;
		}
		struct pollfd pfd = { .fd = fd, .events = events };
		int ret = poll(&pfd, 1, (int)left);
		if (ret > 0) {
			return 1;
		} else if (ret < 0 && errno != EINTR) {
			return -1;
		}
	}
}

typedef struct {
	char *data;
	size_t len;
	size_t cap;
} buf_t;

static void server_failure(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "error: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(EXIT_SERVER);
}

/*!
 * \brief Send the request; a failure is not fatal (the server may have
 *        answered and closed already), it is returned as an errno value.
 */
static int send_request(int fd, const char *req, size_t len, int64_t deadline)
{
	size_t sent = 0;
	while (sent < len) {
		ssize_t ret = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (ret > 0) {
			sent += (size_t)ret;
			continue;
		}
		if (ret < 0 && errno == EINTR) {
			continue;
		}
		if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w > 0) {
				continue;
			}
			return (w == 0) ? ETIMEDOUT : errno;
		}
		return (ret < 0) ? errno : EPIPE;
	}
	return 0;
}

/*! Read until EOF, at most MAX_RESPONSE bytes; exits on timeout or overflow. */
static void read_response(int fd, buf_t *buf, int64_t deadline, int timeout_ms,
                          const char *path)
{
	while (true) {
		if (buf->cap - buf->len < READ_CHUNK) {
			size_t cap = buf->len + READ_CHUNK;
			char *data = realloc(buf->data, cap);
			if (data == NULL) {
				server_failure("out of memory");
			}
			buf->data = data;
			buf->cap = cap;
		}
		ssize_t ret = recv(fd, buf->data + buf->len, buf->cap - buf->len, 0);
		if (ret > 0) {
			buf->len += (size_t)ret;
			if (buf->len > MAX_RESPONSE) {
				server_failure("response from %s too long (more than %u bytes)",
				               path, MAX_RESPONSE);
			}
			continue;
		}
		if (ret == 0) {
			return;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(fd, POLLIN, deadline);
			if (w == 0) {
				server_failure("no complete response from %s within %d ms",
				               path, timeout_ms);
			} else if (w < 0) {
				server_failure("cannot read from %s: %s", path, strerror(errno));
			}
			continue;
		}
		if (errno == ECONNRESET) {
			/* Closed by the server with (part of) the request unread,
			 * e.g. after an early error reply: what came is the answer. */
			return;
		}
		server_failure("cannot read from %s: %s", path, strerror(errno));
	}
}

/*! Replace control characters in a one-line message. */
static void sanitize(char *str)
{
	for (unsigned char *p = (unsigned char *)str; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			*p = '?';
		}
	}
}

static void write_stdout(const char *data, size_t len)
{
	if (len > 0 && fwrite(data, 1, len, stdout) != len && errno != EPIPE) {
		server_failure("cannot write the output: %s", strerror(errno));
	}
}

/*! Print the response; returns the exit status. */
static int print_response(buf_t *buf, const mxp_request_t *req, int write_err)
{
	char *lf = (buf->len > 0) ? memchr(buf->data, '\n', buf->len) : NULL;
	if (lf == NULL) {
		if (buf->len == 0 && write_err != 0) {
			server_failure("cannot send the request: %s", strerror(write_err));
		} else if (buf->len == 0) {
			server_failure("the server closed the connection without a response");
		}
		server_failure("malformed response from the server (no status line)");
	}

	*lf = '\0';
	char *line = buf->data;
	char *body = lf + 1;
	size_t body_len = buf->len - (size_t)(body - buf->data);
	if (strlen(line) != (size_t)(lf - line)) {
		server_failure("malformed response from the server (NUL in the status line)");
	}

	const size_t magic_len = strlen(MXP_PROTO_MAGIC);
	if (strncmp(line, MXP_PROTO_MAGIC, magic_len) != 0 || line[magic_len] != ' ') {
		sanitize(line);
		server_failure("malformed response from the server: '%.60s'", line);
	}
	char *status = line + magic_len + 1;
	char *msg = strchr(status, ' ');
	if (msg != NULL) {
		*msg++ = '\0';
	} else {
		msg = status + strlen(status);
	}
	sanitize(msg);

	int ret;
	if (strcmp(status, MXP_PROTO_STATUS_OK) == 0) {
		if (msg[0] != '\0') {
			/* Keep stdout a single JSON document with --json. */
			fprintf(req->json ? stderr : stdout, "%s\n", msg);
		}
		ret = EXIT_OK;
	} else if (strcmp(status, MXP_PROTO_STATUS_REFUSED) == 0 ||
	           strcmp(status, MXP_PROTO_STATUS_ERROR) == 0) {
		fprintf(stderr, "%s%s%s\n", status, (msg[0] != '\0') ? ": " : "", msg);
		ret = EXIT_SERVER;
	} else {
		sanitize(status);
		server_failure("malformed response from the server (status '%.30s')",
		               status);
	}

	write_stdout(body, body_len);
	if (fflush(stdout) != 0 && errno != EPIPE) {
		server_failure("cannot write the output: %s", strerror(errno));
	}
	return ret;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);

	cli_t cli = { 0 };
	parse_args(&cli, argc, argv);
	if (cli.help) {
		print_help();
		return EXIT_OK;
	}
	if (cli.version) {
		print_version();
		return EXIT_OK;
	}

	mxp_request_t req;
	build_request(&cli, &req);

	char line[MXP_PROTO_MAX_REQUEST + 1];
	int len = proto_format_request(&req, line, sizeof(line));
	if (len == KNOT_ESPACE) {
		usage_error("request too long (more than %d bytes)", MXP_PROTO_MAX_REQUEST);
	} else if (len < 0) {
		usage_error("cannot format the request: %s", knot_strerror(len));
	}

	const char *path = cli.socket;
	if (path == NULL) {
		path = getenv(ENV_SOCKET);
		if (path == NULL || path[0] == '\0') {
			path = MXPOLICY_DEFAULT_SOCKET;
		}
	}
	int timeout_ms = parse_timeout();

	int64_t deadline = now_ms() + timeout_ms;
	int fd = connect_socket(path, timeout_ms);
	int write_err = send_request(fd, line, (size_t)len, deadline);
	if (write_err == ETIMEDOUT) {
		server_failure("cannot send the request to %s within %d ms", path,
		               timeout_ms);
	}

	buf_t buf = { 0 };
	read_response(fd, &buf, deadline, timeout_ms, path);
	close(fd);

	int ret = print_response(&buf, &req, write_err);
	free(buf.data);
	return ret;
}
