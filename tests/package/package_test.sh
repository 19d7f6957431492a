#!/usr/bin/env bash
# Suite 'package': the Debian package of issue 17, built from this build dir
# (scripts/package.sh --reuse, no second compilation), then checked as an operator meets it:
# its contents, its unit, its default configuration, and what install, remove and purge
# leave behind, in a scratch root (dpkg --root), never on this host.
set -uo pipefail

src=${SEGX_SOURCE_ROOT:?} build=${SEGX_BUILD_ROOT:?}
work=$(mktemp -d /tmp/segx-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

# 1. The .deb builds, and lintian reports no error or warning.
if "$src/scripts/package.sh" --reuse "$build" --out "$work/pkg" >"$work/package.out" 2>&1; then
  pass "scripts/package.sh --reuse builds the package; lintian clean"
else
  cat "$work/package.out"
  fail "scripts/package.sh --reuse"
  finish
fi
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb="$work/pkg/segx_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb"
[ -f "$deb" ] && pass "$(basename "$deb")" || { fail "no $deb"; finish; }

# 2. Contents: the binaries, the unit, the presets, the configuration as a conffile.
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"
for f in ./usr/bin/segx ./usr/bin/segxctl ./lib/systemd/system/segx.service \
         ./etc/segx/segx.yaml ./usr/share/segx/drivers-config/README.md \
         ./usr/share/man/man8/segx.8.gz ./usr/share/man/man1/segxctl.1.gz \
         ./usr/share/doc/segx/operations.md ./usr/share/doc/segx/copyright; do
  grep -qxF "$f" "$work/contents" && pass "dpkg-deb -c lists $f" || fail "dpkg-deb -c lacks $f"
done
for preset in "$src"/drivers-config/*.yaml; do
  f=./usr/share/segx/drivers-config/$(basename "$preset")
  grep -qxF "$f" "$work/contents" || fail "dpkg-deb -c lacks $f"
done
pass "every preset of drivers-config/ is in the package"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles >"$work/conffiles" 2>/dev/null
grep -qxF /etc/segx/segx.yaml "$work/conffiles" && pass "/etc/segx/segx.yaml is a conffile" ||
  fail "conffiles: $(cat "$work/conffiles")"

# 3. The files as installed: the unit passes systemd-analyze verify, the default
# configuration passes the installed segx's --check-config.
x="$work/x"
dpkg-deb -x "$deb" "$x"
unit="$x/lib/systemd/system/segx.service"
grep -qx "Type=notify" "$unit" && grep -qx "ExecStart=/usr/bin/segx --config /etc/segx/segx.yaml" "$unit" &&
  pass "segx.service: Type=notify, ExecStart from the installed paths" || fail "segx.service: $(cat "$unit")"
# verify reads the unit in the root it is given, finds its commands there and its man: page
# through MANPATH; the root also needs the host's own units (sysinit.target, ...) and
# /bin/kill of ExecReload, which the package depends on rather than ships. A key it does not
# know or a bad value is a line on stderr, not an exit code: any output fails.
cp -rn /lib/systemd/system/. "$x/lib/systemd/system/"
mkdir -p "$x/bin" && cp /bin/kill "$x/bin/kill"
if MANPATH="$x/usr/share/man" systemd-analyze verify --root="$x" /lib/systemd/system/segx.service \
     >"$work/verify" 2>&1 && [ ! -s "$work/verify" ]; then
  pass "systemd-analyze verify accepts segx.service"
else
  cat "$work/verify"
  fail "systemd-analyze verify"
fi
if "$x/usr/bin/segx" --check-config "$x/etc/segx/segx.yaml" >"$work/check.out" 2>&1; then
  pass "installed segx --check-config /etc/segx/segx.yaml: $(head -1 "$work/check.out")"
else
  cat "$work/check.out"
  fail "installed segx --check-config on the installed segx.yaml"
fi

# 4. Install, remove and purge in a scratch root, maintainer scripts included: remove keeps
# the configuration and the state, purge removes the configuration and keeps the ledger.
r="$work/root"
mkdir -p "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/info"
touch "$r/var/lib/dpkg/status"
dpkg_r() {
  # The dependencies (DPDK's PMDs, libraries) are this host's, not the scratch root's.
  dpkg --root="$r" --force-script-chrootless --force-depends --log=/dev/null "$@" \
    >>"$work/dpkg.out" 2>&1
}
if dpkg_r -i "$deb" && [ -x "$r/usr/bin/segx" ] && [ -f "$r/etc/segx/segx.yaml" ]; then
  pass "dpkg --root -i installs segx"
else
  cat "$work/dpkg.out"
  fail "dpkg --root -i"
  finish
fi
[ ! -e "$r/etc/systemd/system/multi-user.target.wants/segx.service" ] &&
  pass "segx.service is installed disabled" || fail "segx.service enabled at install"
echo "# edited by the operator" >>"$r/etc/segx/segx.yaml"
mkdir -p "$r/var/lib/segx" && echo ledger >"$r/var/lib/segx/segx-ledger.db"
if dpkg_r -r segx && [ ! -e "$r/usr/bin/segx" ] && grep -q "edited by the operator" "$r/etc/segx/segx.yaml" &&
   [ -f "$r/var/lib/segx/segx-ledger.db" ]; then
  pass "dpkg -r removes the binaries, keeps the edited /etc/segx/segx.yaml and /var/lib/segx"
else
  cat "$work/dpkg.out"
  fail "dpkg --root -r"
fi
if dpkg_r -P segx && [ ! -e "$r/etc/segx" ] && [ -f "$r/var/lib/segx/segx-ledger.db" ]; then
  pass "dpkg -P removes /etc/segx and keeps the ledger in /var/lib/segx"
else
  cat "$work/dpkg.out"; ls -R "$r/etc" "$r/var/lib/segx" 2>&1 | head -20
  fail "dpkg --root -P"
fi
rm -f "$r/var/lib/segx/segx-ledger.db"
dpkg_r -i "$deb" && dpkg_r -P segx && [ ! -e "$r/var/lib/segx" ] &&
  pass "purge removes an empty /var/lib/segx" || fail "purge with an empty /var/lib/segx"
# Nothing escaped the scratch root.
[ ! -e /etc/segx ] || dpkg -s segx >/dev/null 2>&1 || fail "/etc/segx appeared on this host"
finish
