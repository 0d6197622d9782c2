#!/usr/bin/env bash
# Start a demo knotd on loopback with the freshly built mod-mxpolicy and the
# bundled example zones (config/example.zone, config/example.net.zone
# signed by knotd, config/knot.conf.in).
#
#   ./config/run-example.sh               install deps, build, start knotd (daemon)
#   ./config/run-example.sh --foreground  same, knotd stays in the foreground (Ctrl-C stops)
#   ./config/run-example.sh --stop        stop a demo started before
#
# Environment: MXPOLICY_DEMO_PORT (default 5353, another free port if busy),
# MXPOLICY_SKIP_DEPS=1 (do not run packaging/install-deps.sh).
# SPDX-License-Identifier: GPL-3.0-or-later

set -euo pipefail

# Where a started demo is remembered (for --stop): one directory per user.
if [ "$(id -u)" -eq 0 ]; then
	STATE_DIR=/tmp/mxpolicy-demo
else
	STATE_DIR="/tmp/mxpolicy-demo-$(id -u)"
fi
STATE_FILE="$STATE_DIR/state"
PYTHON3=/usr/bin/python3

say() { printf '==> %s\n' "$*"; }
die() { printf 'run-example: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
}

pid_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null
}

# The recorded pid still belongs to a knotd (and not to a reused pid).
knotd_alive() {
	pid_alive "${1:-}" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = knotd ]
}

# The state directory must be ours: never trust one another user made.
state_dir_ok() {
	[ -d "$STATE_DIR" ] && [ ! -L "$STATE_DIR" ] && [ -O "$STATE_DIR" ] &&
		[ -z "$(find "$STATE_DIR" -maxdepth 0 -perm /022)" ]
}

# Read CONF, RUNDIR, PID, PORT from the state file (plain KEY=value lines).
read_state() {
	CONF="" RUNDIR="" PID="" PORT=""
	[ -f "$STATE_FILE" ] || return 1
	if ! state_dir_ok; then
		die "$STATE_DIR is not a directory owned by $(id -un) and writable only by it; remove it"
	fi
	local key value
	while IFS='=' read -r key value; do
		case "$key" in
		CONF) CONF=$value ;;
		RUNDIR) RUNDIR=$value ;;
		PID) PID=$value ;;
		PORT) PORT=$value ;;
		esac
	done <"$STATE_FILE"
	case "$PID" in ''|*[!0-9]*) PID="" ;; esac
	return 0
}

write_state() {
	if [ ! -e "$STATE_DIR" ]; then
		mkdir -m 700 "$STATE_DIR" || return 1
	fi
	state_dir_ok || return 1
	printf 'CONF=%s\nRUNDIR=%s\nPID=%s\nPORT=%s\n' "$CONF" "$RUNDIR" "$PID" "$PORT" \
		>"$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

# Stop the demo recorded in $STATE_FILE.
stop_demo() {
	if ! read_state; then
		echo "run-example: no demo is recorded in $STATE_FILE: nothing to stop"
		return 0
	fi
	if knotd_alive "$PID"; then
		say "stopping knotd (pid $PID)"
		knotc -c "$CONF" stop >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			knotd_alive "$PID" || break
			sleep 0.1
		done
		if knotd_alive "$PID"; then
			kill -9 "$PID" 2>/dev/null || true
		fi
	else
		say "knotd (pid ${PID:-?}) is not running any more"
	fi
	case "$RUNDIR" in
	/tmp/mxpolicy-demo.*) rm -rf -- "$RUNDIR" ;;
	esac
	rm -f "$STATE_FILE"
	say "demo stopped"
}

FOREGROUND=0
case "${1:-}" in
"") ;;
--foreground|-f) FOREGROUND=1 ;;
--stop) stop_demo; exit 0 ;;
--help|-h) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }

SRCDIR=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$SRCDIR"

# A demo that is still running would hold the port and the state file.
if read_state; then
	if knotd_alive "$PID"; then
		die "a demo knotd is already running (pid $PID, config $CONF); stop it first: $0 --stop"
	fi
	rm -f "$STATE_FILE"
fi

if [ -e "$STATE_DIR" ] && ! state_dir_ok; then
	die "$STATE_DIR is not a directory owned by $(id -un) and writable only by it; remove it"
fi

# 1. Dependencies.
if [ "${MXPOLICY_SKIP_DEPS:-0}" != 1 ]; then
	say "installing dependencies (packaging/install-deps.sh)"
	./packaging/install-deps.sh
fi

# 2. An installed copy in knotd's module dir would be auto-loaded by knotd
#    and clash with the build-tree module ("duplicate module").
SYSMODDIR=$(pkg-config --variable=module_instdir knotd 2>/dev/null || true)
if [ -n "$SYSMODDIR" ] && [ -e "$SYSMODDIR/mxpolicy.so" ]; then
	die "an installed mxpolicy.so exists in knotd's module directory:
    $SYSMODDIR/mxpolicy.so
knotd loads every module there by itself, so the demo cannot load the build
tree's copy (\"duplicate module\"). Remove the installed copy first, e.g.
    make uninstall   (or: rm $SYSMODDIR/mxpolicy.so)"
fi

# 3. Build in the source tree if needed.
if [ ! -x ./configure ]; then
	say "autoreconf -fi"
	autoreconf -fi
fi
if [ ! -f ./Makefile ]; then
	say "./configure"
	./configure
fi
say "make"
make -j"$(nproc 2>/dev/null || echo 2)"

MODULE_SO="$SRCDIR/module/.libs/mxpolicy.so"
[ -f "$MODULE_SO" ] || die "the build did not produce $MODULE_SO"

# 4. A free port on 127.0.0.1 (UDP and TCP).
port_free() {
	"$PYTHON3" - "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
try:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.close()
except OSError:
    sys.exit(1)
EOF
}
find_port() {
	"$PYTHON3" - <<'EOF'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    print(port)
    break
EOF
}
PORT=${MXPOLICY_DEMO_PORT:-5353}
if ! port_free "$PORT"; then
	say "port $PORT on 127.0.0.1 is busy, picking another one"
	PORT=$(find_port)
fi

# 5. Run directory: config, zone, storage, socket, pid file, log.
RUNDIR=$(mktemp -d /tmp/mxpolicy-demo.XXXXXX)
mkdir -p "$RUNDIR/storage" "$RUNDIR/zones"
cp config/example.zone "$RUNDIR/zones/example.com.zone"
cp config/example.net.zone "$RUNDIR/zones/example.net.zone"

if [ "$(id -u)" -eq 0 ] && getent passwd knot >/dev/null; then
	KUSER=knot
	KGROUP=$(id -gn knot)
else
	KUSER=$(id -un)
	KGROUP=$(id -gn)
fi

# knotd opens the module again on 'knotc reload', as $KUSER: if that user
# cannot read the build tree (e.g. a clone under /root), use a copy.
if [ "$KUSER" != "$(id -un)" ] && ! runuser -u "$KUSER" -- test -r "$MODULE_SO"; then
	say "user $KUSER cannot read $MODULE_SO; the demo uses a copy in $RUNDIR"
	cp "$MODULE_SO" "$RUNDIR/mxpolicy.so"
	MODULE_SO="$RUNDIR/mxpolicy.so"
fi

if [ "$FOREGROUND" = 1 ]; then
	LOGTARGET=stderr
else
	LOGTARGET="\"$RUNDIR/knot.log\""
fi

CONF="$RUNDIR/knot.conf"
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
sed -e "s|@RUNDIR@|$(sed_escape "$RUNDIR")|g" \
    -e "s|@USER@|$(sed_escape "$KUSER:$KGROUP")|g" \
    -e "s|@LISTEN@|127.0.0.1@$PORT|g" \
    -e "s|@LOGTARGET@|$(sed_escape "$LOGTARGET")|g" \
    -e "s|@MODULE_SO@|$(sed_escape "$MODULE_SO")|g" \
    config/knot.conf.in >"$CONF"
chown -R "$KUSER:$KGROUP" "$RUNDIR"

cleanup_rundir() { rm -rf -- "$RUNDIR"; }

say "knotc -c $CONF conf-check"
if ! knotc -c "$CONF" conf-check; then
	cleanup_rundir
	die "knotc conf-check failed for the demo configuration"
fi

# 6. Start knotd and wait until it answers.
wait_ready() {
	local pid=$1
	for _ in $(seq 1 100); do
		pid_alive "$pid" || return 1
		if kdig @127.0.0.1 -p "$PORT" example.com SOA +timeout=1 +retry=0 +short 2>/dev/null \
			| grep -q 'ns1.example.com'; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

print_howto() {
	local pid=$1
	cat <<EOF

knotd (pid $pid) answers on 127.0.0.1 port $PORT with mod-mxpolicy loaded from
  $MODULE_SO
config: $CONF

Try:
  kdig @127.0.0.1 -p $PORT example.com MX
  kdig @127.0.0.1 -p $PORT example.com MX +tcp
  kdig @127.0.0.1 -p $PORT example.com TXT
  kdig @127.0.0.1 -p $PORT _dmarc.example.com TXT
  kdig @127.0.0.1 -p $PORT sel1._domainkey.example.com TXT
  kdig @127.0.0.1 -p $PORT info.example.com TXT
  kdig @127.0.0.1 -p $PORT anything.wild.example.com MX
  kdig @127.0.0.1 -p $PORT nomail.example.com MX
  kdig @127.0.0.1 -p $PORT mail-alias.example.com MX
  for i in \$(seq 100); do kdig @127.0.0.1 -p $PORT +short example.com MX | head -n 1; done | sort | uniq -c
  knotc -c $CONF zone-stats example.com mod-mxpolicy

Exchanger health (server-wide, every zone at once):
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock status
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock down mx1.example.com --reason test --for 10m
  kdig @127.0.0.1 -p $PORT example.com MX
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock drain mx2.example.com
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock status mx1.example.com
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock auto mx1.example.com

Signed zone (example.net, signed by knotd, same exchangers): DO answers of a
changed set carry a signature made for it with the zone's key:
  kdig @127.0.0.1 -p $PORT example.net MX +dnssec
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock down mx2.example.com
  kdig @127.0.0.1 -p $PORT example.net MX +dnssec
  knotc -c $CONF zone-stats example.net mod-mxpolicy
  $SRCDIR/tools/mxpolicyctl -s $RUNDIR/mxpolicy.sock stats
EOF
}

if [ "$FOREGROUND" = 1 ]; then
	say "starting knotd in the foreground (Ctrl-C stops it)"
	knotd -c "$CONF" &
	PID=$!
	trap 'kill -TERM "$PID" 2>/dev/null || true' INT TERM
	if ! wait_ready "$PID"; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		cleanup_rundir
		die "knotd did not start or does not answer on 127.0.0.1@$PORT"
	fi
	print_howto "$PID"
	echo
	echo "Stop: Ctrl-C (or: knotc -c $CONF stop)"
	while pid_alive "$PID"; do
		wait "$PID" || true
	done
	trap - INT TERM
	cleanup_rundir
	say "knotd stopped"
	exit 0
fi

say "starting knotd -c $CONF -d"
knotd -c "$CONF" -d
PID=""
for _ in $(seq 1 50); do
	PID=$(cat "$RUNDIR/knot.pid" 2>/dev/null || true)
	[ -n "$PID" ] && break
	sleep 0.1
done
if [ -z "$PID" ] || ! wait_ready "$PID"; then
	echo "--- $RUNDIR/knot.log" >&2
	cat "$RUNDIR/knot.log" >&2 2>/dev/null || true
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	cleanup_rundir
	die "knotd did not start or does not answer on 127.0.0.1@$PORT"
fi

if ! write_state; then
	knotc -c "$CONF" stop >/dev/null 2>&1 || kill "$PID" 2>/dev/null || true
	die "cannot record the demo in $STATE_FILE ($STATE_DIR must be a directory owned by $(id -un), not writable by others); knotd stopped"
fi

print_howto "$PID"
cat <<EOF
  log: $RUNDIR/knot.log

Stop it with:
  $0 --stop
or
  knotc -c $CONF stop      (knotd pid $PID)
EOF
