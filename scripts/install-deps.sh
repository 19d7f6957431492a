#!/usr/bin/env bash
# Installs the Debian 12 packages segx needs that are not installed yet.
# Idempotent: with everything present it changes nothing and needs no network.
# Only Debian's own mirror is used; nothing is downloaded from anywhere else.
set -euo pipefail

# One list, grouped by what needs it, so a later feature adds its packages here.
packages=(
  # build
  g++ meson ninja-build pkg-config
  # data plane: DPDK 22.11 (headers, libraries, PMDs, dpdk-testpmd, dpdk-devbind.py)
  libdpdk-dev dpdk libpcap-dev libtbb-dev
  # configuration
  libyaml-cpp-dev nlohmann-json3-dev
  # services: dpi (Hyperscan), compress (zstd), fingerprint and anonymize (OpenSSL)
  libhyperscan-dev libzstd-dev libssl-dev
  # compress with engine: compressdev: the zlib and ISA-L software PMDs, loaded by EAL as
  # plugins (libdpdk-dev depends on them, the runtime package dpdk only suggests them);
  # zlib's headers for the tests' independent DEFLATE
  librte-compress-zlib23 librte-compress-isal23 zlib1g-dev
  # market and ledger: SQLite journal, SHA-256 chain, parallel winner determination,
  # HTTP payment webhook
  libsqlite3-dev libcpp-httplib-dev
  # shared ledger for several appliances (docs/scale-out.md); the server for its tests
  libpqxx-dev postgresql
  # tests
  libgtest-dev libgmock-dev
  # metrics: the /metrics HTTP server; Prometheus server and promtool for the metrics
  # tests; dpdk-dev also brings dpdk-telemetry.py and dpdk-dumpcap
  libcpp-httplib-dev prometheus dpdk-dev
  # API and segxctl: JSON, the command-line parser; openssl makes the TLS test's certificate
  # and plays the weak TLS client; the HTTP listener of the API and /metrics (Boost.Beast and
  # Asio, header-only)
  libcli11-dev openssl libboost-dev
  # browser test of the web board: Debian's Chromium, its WebDriver, Selenium for python3
  chromium chromium-driver python3-selenium
  # demo and test traffic (scapy for Debian's /usr/bin/python3; YAML for the segment oracle)
  python3 python3-scapy python3-yaml
  # network namespaces and veth pairs for the af_packet tests
  iproute2 procps tcpdump
  # the sanitizer build (scripts/sanitize.sh) and fuzzing (scripts/fuzz.sh): clang with
  # libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # benchmarks (scripts/bench.sh): HTTP load for the API; DPDK's example sources (l3fwd,
  # built by bench.sh against the installed libdpdk and run beside segx)
  wrk dpdk-doc
  # systemd service (sd_notify) and the Debian package (scripts/package.sh, suite package):
  # debhelper, lintian, manual pages from --help, systemd-analyze verify
  libsystemd-dev systemd build-essential debhelper lintian help2man
)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing packages and not root (no sudo): ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}
# The package lists may be absent (fresh image) or stale (404s): update once, then retry.
if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
  "${sudo[@]}" apt-get update -q
  apt_install
elif ! apt_install; then
  "${sudo[@]}" apt-get update -q
  apt_install
fi
echo "install-deps: done"
