#!/usr/bin/env bash
# Configures (first time only) and builds segx into build/. Extra arguments go to
# `meson setup` on the first run, e.g. scripts/build.sh -Dbuildtype=release.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/build.ninja ]; then
  meson setup build "$@"
fi
meson compile -C build
