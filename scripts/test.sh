#!/usr/bin/env bash
# Every test: installs what is missing, builds, and runs all meson test suites: unit,
# integration, metrics, api, browser and package (the Debian package built from build/,
# tests/package), then the 'postgres' suite against a private PostgreSQL server
# started for it (scripts/postgres-server.sh) and stopped after, even on failure. Then the
# hardening runs: the suite 'sanitize' on an ASan/UBSan/LSan build (scripts/sanitize.sh,
# build-asan/) and the libFuzzer targets (scripts/fuzz.sh, the same build-asan/: every seed
# and regression input, then SEGX_FUZZ_SECONDS, default 60, of fuzzing per target).
# SEGX_TEST_HARDENING=0 skips those two (a quick local run; CI never sets it). Exits non-zero
# when anything fails. Extra arguments go to the first `meson test` run (e.g. --suite unit);
# the postgres suite always runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh

status=0
meson test -C build --print-errorlogs "$@" || status=$?

pgdir=$(mktemp -d)
chmod 711 "$pgdir"
cleanup() {
  scripts/postgres-server.sh stop "$pgdir/server" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT
SEGX_TEST_POSTGRES=$(scripts/postgres-server.sh start "$pgdir/server")
export SEGX_TEST_POSTGRES
echo "test.sh: PostgreSQL for the postgres suite at $SEGX_TEST_POSTGRES"
meson test -C build --setup postgres --suite postgres --print-errorlogs || status=$?

if [ "${SEGX_TEST_HARDENING:-1}" != 0 ]; then
  echo "test.sh: sanitizers (scripts/sanitize.sh)"
  scripts/sanitize.sh || status=$?
  echo "test.sh: fuzzing (scripts/fuzz.sh, ${SEGX_FUZZ_SECONDS:-60} s per target)"
  scripts/fuzz.sh || status=$?
fi
exit $status
