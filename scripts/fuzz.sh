#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan + libFuzzer) in
# build-asan/ (shared with scripts/sanitize.sh), runs every seed and regression input once
# (meson suite 'fuzz'), then fuzzes each target for SEGX_FUZZ_SECONDS seconds (default 60; 0
# skips this part), two at a time (this machine has 2 CPUs). New inputs go to a scratch
# corpus, never into tests/fuzz/; a crash leaves its input in build-asan/fuzz-artifacts/ and
# makes this script fail. A crash, once fixed, keeps its input in
# tests/fuzz/<target>/regressions/ so every run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SEGX_FUZZ_SECONDS:-60}
targets=(packet config api ledger http)

scripts/setup-build-asan.sh
# Only the fuzz targets (and the libraries they link), not the tests: --no-rebuild, as
# `meson test` would otherwise build the whole tree first.
ninja -C build-asan fuzz
meson test -C build-asan --no-rebuild --suite fuzz --print-errorlogs

[ "$seconds" -gt 0 ] || exit 0

artifacts=build-asan/fuzz-artifacts
logs=build-asan/fuzz-logs
mkdir -p "$artifacts" "$logs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

fuzz_one() {
  local t=$1
  mkdir -p "$scratch/$t"
  # -timeout: one input taking longer than this is a hang, reported like a crash.
  # The first corpus directory receives new inputs: the scratch one.
  build-asan/tests/fuzz/${t}_fuzz -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
    "$scratch/$t" "tests/fuzz/$t" </dev/null >"$logs/$t.log" 2>&1
}

status=0
pids=()
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  pids+=("$!:$t")
  if [ ${#pids[@]} -eq 2 ]; then
    for p in "${pids[@]}"; do
      wait "${p%%:*}" || { status=1; echo "fuzz.sh: ${p#*:}: FAILED, see $logs/${p#*:}.log" >&2; }
    done
    pids=()
  fi
done
for p in "${pids[@]}"; do
  wait "${p%%:*}" || { status=1; echo "fuzz.sh: ${p#*:}: FAILED, see $logs/${p#*:}.log" >&2; }
done

for t in "${targets[@]}"; do
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 || true)
  echo "fuzz.sh: $t: $runs inputs in ${seconds}s, $cov, corpus $(ls "$scratch/$t" | wc -l) new"
done
if [ $status -ne 0 ]; then
  ls -l "$artifacts" >&2
  for t in "${targets[@]}"; do grep -A30 '==ERROR\|SUMMARY\|deadly signal' "$logs/$t.log" >&2 || true; done
fi
exit $status
