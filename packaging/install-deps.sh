#!/bin/sh
# Install the Debian (bookworm) packages needed to build, run and test
# knot-mxpolicy. Idempotent: does nothing when everything is installed.
# Runs apt-get directly as root, through sudo otherwise.
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
python3-pytest
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

# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS install -y \
	--no-install-recommends $missing

echo "install-deps: done"
