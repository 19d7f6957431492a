#!/usr/bin/env bash
# The test suites again on a build with AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer (build-asan/, clang): every unit test, and the integration
# tests that run segx's data plane end to end on pcap files (segx/passthrough,
# dataplane/pcap, services/pcap) and the REST API over HTTP (api/http). The rest of the
# integration suite (af_packet, metering, market activation, metrics, browser, postgres)
# adds build and run time but little code the ones above do not run; see
# docs/development.md. Extra arguments go to `meson test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# build-asan/: clang, ASan and UBSan, shared with scripts/fuzz.sh (libFuzzer's coverage
# instrumentation in the libraries costs the tests little and saves a second build).
scripts/setup-build-asan.sh

# Only what the suite 'sanitize' runs is built (tests/meson.build marks it), not the whole
# tree: the sanitizer build is the slowest part of CI.
mapfile -t exes < <(meson introspect build-asan --tests | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    # meson names suites "project:suite" ("segx:sanitize").
    if any(s.split(":")[-1] == "sanitize" for s in t["suite"]):
        print(t["cmd"][0])
' ; meson introspect build-asan --targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["name"] in ("segx", "segxctl"):
        print(t["filename"][0])')
ninja -C build-asan "${exes[@]#"$PWD/build-asan/"}"

# The sanitizers' settings, for the tests and for the segx processes they start (which
# inherit them). Why each one:
#  halt_on_error/abort_on_error: the first finding ends the process with an error, so the
#    test that caused it fails instead of a report scrolling past (UBSan by default goes on).
#  detect_leaks=1: LeakSanitizer at exit (the default on Linux; said so it is not lost).
#    DPDK's own memory (memzones, mempools, rings) comes from EAL's mmap'ed segments, not
#    malloc, so LSan neither checks nor reports it; what EAL mallocs at rte_eal_init stays
#    reachable from its globals. No suppression is needed today.
#  DPDK needs nothing else here: with --no-huge, EAL's segments are anonymous mmaps that
#    ASan leaves alone, and its lcore threads are pthreads ASan intercepts. (use_sigaltstack
#    and friends were not needed.)
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1}

meson test -C build-asan --no-rebuild --print-errorlogs --suite sanitize "$@"
