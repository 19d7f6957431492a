#!/usr/bin/env bash
# Configures (first time only) and builds segx into build/. Extra arguments go to
# `meson setup` on the first run, e.g. scripts/build.sh -Dbuildtype=release.
# build/ installs under /usr (`meson install --destdir DIR` from it is what
# `scripts/package.sh --reuse build` packages); a build/ configured before that is moved
# to /usr here, which recompiles nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/build.ninja ]; then
  meson setup build --prefix=/usr "$@"
elif [ "$(meson introspect --buildoptions build | python3 -c \
          'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')" != /usr ]; then
  meson configure build -Dprefix=/usr
fi
meson compile -C build
