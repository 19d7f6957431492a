#!/usr/bin/env bash
# Every test: installs what is missing, builds, and runs all meson test suites (unit,
# integration). Exits non-zero when anything fails. Extra arguments go to `meson test`
# (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh
meson test -C build --print-errorlogs "$@"
