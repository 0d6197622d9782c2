#!/bin/sh
# Install the Debian (bookworm) packages needed to build, run and test
# knot-mxpolicy. Idempotent: does nothing when everything is installed.
# Runs apt-get directly as root, through sudo otherwise. Never starts the
# services of the packages it installs (knot, unbound): see policy-rc.d below.
# SPDX-License-Identifier: GPL-3.0-or-later

set -eu

export DEBIAN_FRONTEND=noninteractive

PACKAGES="
build-essential
autoconf
automake
libtool
pkg-config
libknot-dev
liburcu-dev
libssl-dev
libcmocka-dev
knot
knot-dnsutils
python3
python3-dnspython
python3-cryptography
python3-pytest
unbound
dnsperf
valgrind
ca-certificates
git
"

missing=""
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing="$missing $pkg" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "install-deps: all dependencies already installed"
	exit 0
fi

echo "install-deps: installing:$missing"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: not root and sudo is not available; run as root:" >&2
	echo "  apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

# Wait for another apt/dpkg run instead of failing on its lock.
APT_OPTS="-o DPkg::Lock::Timeout=600"

# Never start the packages' services: the tests run their own knotd and
# unbound on free loopback ports.  Without a policy-rc.d, the maintainer
# scripts start knot and unbound through their init scripts in containers
# without systemd (knot's postinst fails the install when knotd cannot
# start; unbound's would leave a resolver running on port 53), and through
# systemd elsewhere.  An existing policy-rc.d (Docker images ship one) is
# left alone; ours is removed again on exit.
POLICY_RC=/usr/sbin/policy-rc.d
OUR_POLICY_RC=""
remove_policy_rc() {
	if [ -n "$OUR_POLICY_RC" ]; then
		$SUDO rm -f "$POLICY_RC"
		OUR_POLICY_RC=""
	fi
}
trap remove_policy_rc EXIT
trap 'exit 130' HUP INT TERM
if [ ! -e "$POLICY_RC" ]; then
	OUR_POLICY_RC=1
	# shellcheck disable=SC2016
	$SUDO sh -c 'printf "#!/bin/sh\n# knot-mxpolicy install-deps.sh: no service starts\nexit 101\n" >"$1" && chmod 755 "$1"' \
		sh "$POLICY_RC"
fi

# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS install -y \
	--no-install-recommends $missing

remove_policy_rc
echo "install-deps: done"
