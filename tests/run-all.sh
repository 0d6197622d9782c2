#!/usr/bin/env bash
# Install the dependencies, build, and run the whole test suite:
#   1. packaging/install-deps.sh          (skip with MXPOLICY_SKIP_DEPS=1)
#   2. in-tree build: autoreconf -fi (if no configure), ./configure (if no Makefile), make
#   3. make check                         (cmocka unit tests)
#   4. sanitizer build out of tree in _build-asan/ (a 'make distdir' copy of the
#      sources, configured with --enable-sanitizers) and its make check
#      (skip with MXPOLICY_SKIP_ASAN=1)
#   5. /usr/bin/python3 -m pytest -q tests/integration   (real knotd)
# and end with one line: "N passed, N failed[, N skipped]".
# The exit status is non-zero when a test or a stage failed; a failed stage
# counts as one failed test.
# SPDX-License-Identifier: GPL-3.0-or-later

set -uo pipefail

SRCDIR=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$SRCDIR" || exit 1

PYTHON3=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
ASAN_DIR="$SRCDIR/_build-asan"
LOGDIR=$(mktemp -d /tmp/mxpolicy-tests.XXXXXX)
trap 'rm -rf -- "$LOGDIR"' EXIT

# The unit test counts are parsed from cmocka's default output.
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_TEST_ABORT

PASSED=0
FAILED=0
SKIPPED=0
STAGE_FAILURES=()

banner() {
	printf '\n=============================================================\n'
	printf '== %s\n' "$*"
	printf '=============================================================\n'
}

# A stage that failed counts as one failed test.
stage_failed() {
	printf '!! FAILED: %s\n' "$*"
	STAGE_FAILURES+=("$*")
	FAILED=$((FAILED + 1))
}

finish() {
	banner "Summary"
	local f
	if [ ${#STAGE_FAILURES[@]} -gt 0 ]; then
		for f in "${STAGE_FAILURES[@]}"; do
			printf '  failed: %s\n' "$f"
		done
	else
		printf '  all stages passed\n'
	fi
	if [ "$SKIPPED" -gt 0 ]; then
		printf '%d passed, %d failed, %d skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
	else
		printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
	fi
	[ "$FAILED" -eq 0 ]
	exit $?
}

# Count the results of the cmocka binaries run by the automake harness in
# build directory $1; $2 names the stage; $3 is the exit status of make check.
count_unit() {
	local builddir=$1 stage=$2 rc=$3
	local p=0 f=0 s=0 logs=0 log trs result np nf ns
	for log in "$builddir"/tests/unit/*.log; do
		[ -f "$log" ] || continue
		logs=$((logs + 1))
		np=$(sed -n -E 's/^\[ +PASSED +\] +([0-9]+) test\(s\).*/\1/p' "$log" | tail -n 1)
		nf=$(sed -n -E 's/^\[ +FAILED +\] +([0-9]+) test\(s\).*/\1/p' "$log" | tail -n 1)
		ns=$(sed -n -E 's/^\[ +SKIPPED +\] +([0-9]+) test\(s\).*/\1/p' "$log" | tail -n 1)
		np=${np:-0}
		nf=${nf:-0}
		ns=${ns:-0}
		trs="${log%.log}.trs"
		result=$(sed -n 's/^:test-result: *//p' "$trs" 2>/dev/null | head -n 1)
		case "$result" in
		FAIL|ERROR)
			# Crashed or aborted before cmocka printed its totals.
			if [ "$nf" -eq 0 ]; then
				printf '!! %s: %s failed without a cmocka failure count (crash, sanitizer report?)\n' \
					"$stage" "$(basename "${log%.log}")"
				nf=1
			fi
			;;
		SKIP)
			[ "$np" -eq 0 ] && [ "$ns" -eq 0 ] && ns=1
			;;
		esac
		p=$((p + np))
		f=$((f + nf))
		s=$((s + ns))
	done
	if [ "$logs" -eq 0 ]; then
		if [ "$rc" -ne 0 ]; then
			stage_failed "$stage: make check failed before any unit test ran"
		else
			printf '!! %s: no unit test ran (cmocka missing at configure time?)\n' "$stage"
			SKIPPED=$((SKIPPED + 1))
		fi
		return
	fi
	printf '%s: %d passed, %d failed, %d skipped (%d binaries)\n' "$stage" "$p" "$f" "$s" "$logs"
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		stage_failed "$stage: make check failed (see the output above)"
	elif [ "$f" -gt 0 ]; then
		STAGE_FAILURES+=("$stage: $f unit test(s) failed")
	fi
}

# ---------------------------------------------------------------------------
if [ "${MXPOLICY_SKIP_DEPS:-0}" != 1 ]; then
	banner "Dependencies (packaging/install-deps.sh)"
	if ! ./packaging/install-deps.sh; then
		stage_failed "dependencies: packaging/install-deps.sh failed"
	fi
fi

# ---------------------------------------------------------------------------
banner "Build (in the source tree)"
BUILD_OK=1
if [ ! -x ./configure ]; then
	echo "+ autoreconf -fi"
	autoreconf -fi || BUILD_OK=0
fi
if [ "$BUILD_OK" = 1 ] && [ ! -f ./Makefile ]; then
	echo "+ ./configure"
	./configure || BUILD_OK=0
fi
if [ "$BUILD_OK" = 1 ]; then
	echo "+ make -j$JOBS"
	make -j"$JOBS" || BUILD_OK=0
fi
MODULE_SO="$SRCDIR/module/.libs/mxpolicy.so"
MXPOLICYCTL="$SRCDIR/tools/mxpolicyctl"
if [ "$BUILD_OK" = 1 ] && [ ! -f "$MODULE_SO" ]; then
	echo "the build did not produce $MODULE_SO"
	BUILD_OK=0
fi
if [ "$BUILD_OK" != 1 ]; then
	stage_failed "build: the in-tree build failed"
fi

# ---------------------------------------------------------------------------
banner "Unit tests (make check)"
if [ "$BUILD_OK" = 1 ]; then
	rm -f tests/unit/*.log tests/unit/*.trs
	make -j"$JOBS" check
	count_unit "$SRCDIR" "unit tests" $?
else
	echo "skipped: the build failed"
fi

# ---------------------------------------------------------------------------
if [ "${MXPOLICY_SKIP_ASAN:-0}" != 1 ]; then
	banner "Unit tests with sanitizers (out-of-tree build in _build-asan/)"
	ASAN_OK=1
	if [ "$BUILD_OK" != 1 ]; then
		echo "skipped: the in-tree build failed"
		ASAN_OK=0
	else
		rm -rf -- "$ASAN_DIR"
		mkdir -p "$ASAN_DIR/build"
		# automake refuses a second, out-of-tree build of a configured
		# source tree: build from a 'make distdir' copy of the sources.
		echo "+ make distdir distdir=_build-asan/src"
		if ! make distdir distdir=_build-asan/src top_distdir=_build-asan/src >"$LOGDIR/distdir.log" 2>&1; then
			cat "$LOGDIR/distdir.log"
			stage_failed "sanitizer build: make distdir failed (a file listed in Makefile.am is missing?)"
			ASAN_OK=0
		fi
	fi
	if [ "$ASAN_OK" = 1 ]; then
		echo "+ ../src/configure --enable-sanitizers && make"
		if (cd "$ASAN_DIR/build" && ../src/configure --enable-sanitizers >"$LOGDIR/asan-configure.log" 2>&1) \
			|| { cat "$LOGDIR/asan-configure.log"; false; }; then
			if (cd "$ASAN_DIR/build" && make -j"$JOBS"); then
				(cd "$ASAN_DIR/build" && ASAN_OPTIONS=detect_leaks=1 make -j"$JOBS" check)
				count_unit "$ASAN_DIR/build" "unit tests (sanitizers)" $?
			else
				stage_failed "sanitizer build: make failed"
			fi
		else
			stage_failed "sanitizer build: configure --enable-sanitizers failed"
		fi
	fi
fi

# ---------------------------------------------------------------------------
banner "Integration tests (pytest, real knotd)"
if [ "$BUILD_OK" != 1 ]; then
	echo "skipped: the build failed"
else
	SYSMODDIR=$(pkg-config --variable=module_instdir knotd 2>/dev/null || true)
	if [ -n "$SYSMODDIR" ] && [ -e "$SYSMODDIR/mxpolicy.so" ]; then
		echo "an installed copy exists: $SYSMODDIR/mxpolicy.so"
		echo "knotd auto-loads it, so the tests cannot load the build tree's module."
		echo "Remove it (make uninstall) and run the tests again."
		stage_failed "integration: an installed mxpolicy.so shadows the build tree's module"
	else
		echo "+ MXPOLICY_MODULE=$MODULE_SO MXPOLICYCTL=$MXPOLICYCTL $PYTHON3 -m pytest -q tests/integration"
		MXPOLICY_MODULE="$MODULE_SO" MXPOLICYCTL="$MXPOLICYCTL" \
			"$PYTHON3" -m pytest -q tests/integration 2>&1 \
			| tee "$LOGDIR/pytest.log"
		rc=${PIPESTATUS[0]}
		# Summary line, e.g. "3 failed, 40 passed, 2 skipped, 1 error in 12.3s".
		summary=$(grep -E ' in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$LOGDIR/pytest.log" \
			| grep -E '[0-9]+ (passed|failed|skipped|errors?|xfailed|xpassed)|no tests ran' \
			| tail -n 1)
		ip=0; if_=0; is=0
		n_of() { printf '%s\n' "$summary" | grep -oE "[0-9]+ $1([, ]|\$)" | grep -oE '^[0-9]+' | head -n 1; }
		for word in passed xpassed; do
			n=$(n_of "$word"); ip=$((ip + ${n:-0}))
		done
		for word in failed errors error; do
			n=$(n_of "$word"); if_=$((if_ + ${n:-0}))
		done
		for word in skipped xfailed; do
			n=$(n_of "$word"); is=$((is + ${n:-0}))
		done
		printf 'integration tests: %d passed, %d failed, %d skipped (pytest exit %d)\n' \
			"$ip" "$if_" "$is" "$rc"
		PASSED=$((PASSED + ip))
		FAILED=$((FAILED + if_))
		SKIPPED=$((SKIPPED + is))
		case "$rc" in
		0) ;;
		5) stage_failed "integration: pytest collected no tests (exit 5) in tests/integration" ;;
		*)
			if [ "$if_" -gt 0 ]; then
				STAGE_FAILURES+=("integration: $if_ test(s) failed or errored (pytest exit $rc)")
			else
				stage_failed "integration: pytest exited with status $rc (interrupted, internal or usage error)"
			fi
			;;
		esac
	fi
fi

finish
