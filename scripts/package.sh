#!/usr/bin/env bash
# Builds the Debian package build/pkg/segx_<version>_amd64.deb with dpkg-buildpackage, from
# a copy of the source tree in build/pkg/src (the work tree stays clean), then runs lintian
# on it (its tags are printed; docs/operations.md explains the ones that remain).
#
#   scripts/package.sh                 compile afresh in the copy (a release's package)
#   scripts/package.sh --reuse DIR     package what the meson build dir DIR installs
#                                      (configured with --prefix=/usr, as scripts/build.sh
#                                      does): no second compilation; the test suite's way
#   --out DIR                          put the .deb (and the copy) in DIR, not build/pkg
#   --no-lintian                       skip lintian
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

reuse="" out="$root/build/pkg" lintian=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reuse) reuse=$(realpath "$2"); shift 2 ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --no-lintian) lintian=0; shift ;;
    *) echo "usage: scripts/package.sh [--reuse BUILD_DIR] [--out DIR] [--no-lintian]" >&2; exit 2 ;;
  esac
done

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
meson_version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" meson.build)
if [ "$version" != "$meson_version" ]; then
  echo "package.sh: debian/changelog says $version, meson.build says $meson_version" >&2
  exit 1
fi

if [ -n "$reuse" ]; then
  prefix=$(meson introspect --buildoptions "$reuse" | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
  if [ "$prefix" != /usr ]; then
    echo "package.sh: $reuse installs under $prefix; a package needs --prefix=/usr" \
         "(meson configure $reuse -Dprefix=/usr, or scripts/build.sh)" >&2
    exit 1
  fi
  # Up to date with the sources, so the package holds what they say.
  meson compile -C "$reuse" >/dev/null
fi

# The tracked and new (not ignored) files, as they are now, into a fresh copy.
src="$out/src/segx-$version"
rm -rf "$out/src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$src"

echo "package.sh: dpkg-buildpackage in $src${reuse:+ (files from $reuse)}"
(cd "$src" && SEGX_PREBUILT="$reuse" dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
  tail -40 "$out/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}
deb="segx_${version}_${arch}.deb"
mv "$out/src/$deb" "$out/$deb"
echo "package.sh: $out/$deb"

if [ "$lintian" = 1 ]; then
  # The profile's errors and warnings fail; info tags are printed too.
  lintian --info --display-info --fail-on error,warning "$out/$deb"
  echo "package.sh: lintian: no errors or warnings"
fi
