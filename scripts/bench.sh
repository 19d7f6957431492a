#!/usr/bin/env bash
# Benchmarks (docs/performance.md). Prints figures and never fails on speed.
#   scripts/bench.sh [--seconds S] [--no-dataplane] [--no-stages] [--no-market] [--no-api]
#                    [--no-soak] [--soak [PACKETS]]
# Data plane: net_pcap (infinite_rx=1) replaying a capture of many IPv4/IPv6/VLAN flows into
# net_null (no-rx=1), one forwarding lcore, --no-huge. dpdk-testpmd --forward-mode=io first,
# then DPDK's l3fwd (LPM, built from Debian's dpdk-doc examples into build-bench/l3fwd/ with
# its Rx checksum offload request taken out: virtual devices have none), then segx on the
# same virtual devices (drivers-config/bench.yaml) with no service, with fingerprint and with
# dpi (100 patterns), for 64- and 1500-byte frames; Mpps and the ratios segx/testpmd and
# segx/l3fwd. Then segx with one and with two rx lcores (two rx queues of the same capture,
# each lcore holding rx, worker and tx): packets per CPU-second of each data-plane lcore.
# Then the same three segx runs again from a build with -Dstage_cycles=true:
# TSC cycles per packet by pipeline stage. Then Hyperscan alone (bench/dpi_bench.cpp) over
# the same payloads with the same patterns: the dpi target's baseline. segx comes from release
# builds of its own (build-bench/, build-bench-stages/). Market: scripts/bench-market.sh.
# API: bids/s through a running segx with wrk, against GET /healthz (a trivial handler on the
# same server and settings), the ledger's commits during the bid run (how many, bids per
# commit, mean time in the store), and the disk under the ledger alone (a durable write).
# Soak: 100,000,000 packets through segx (64 bytes, no service), resident memory (VmRSS)
# after warm-up and at the end; --soak [PACKETS] runs only that.
# Everything goes to stdout and build/bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
dataplane=1 stages=1 market=1 api=1 soak=1
soak_packets=100000000
usage="usage: scripts/bench.sh [--seconds S] [--no-dataplane] [--no-stages] [--no-market] [--no-api] [--no-soak] [--soak [PACKETS]]"
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --no-dataplane) dataplane=0 ;;
    --no-stages) stages=0 ;;
    --no-market) market=0 ;;
    --no-api) api=0 ;;
    --no-soak) soak=0 ;;
    --soak)
      dataplane=0 market=0 api=0 soak=1
      if [[ ${2:-} =~ ^[0-9]+$ ]]; then soak_packets=$2; shift; fi ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done

began=$(date +%s)
out=build/bench
mkdir -p "$out"
work=$(mktemp -d)
prefix=segx-bench-$$  # EAL file prefix of every DPDK process this run starts
segx_pid=
cleanup() {
  [ -n "$segx_pid" ] && kill "$segx_pid" 2>/dev/null && wait "$segx_pid" 2>/dev/null
  rm -rf "$work" "/var/run/dpdk/$prefix" "/var/run/dpdk/$prefix-testpmd" "/var/run/dpdk/$prefix-api" \
    "/var/run/dpdk/$prefix-l3fwd"
}
trap cleanup EXIT
results=$work/results.jsonl  # one JSON object per figure, gathered into results.json
: >"$results"
load1() { cut -d' ' -f1 /proc/loadavg; }
figure() {  # figure GROUP NAME VALUE UNIT [NOTE]: with the 1-minute load average when taken
  printf '{"group":"%s","name":"%s","value":%s,"unit":"%s","note":"%s","load1":%s}\n' \
    "$1" "$2" "$3" "$4" "${5:-}" "$(load1)" >>"$results"
}

# Release builds (-O3, assertions off) of what the data plane benchmark runs: build-bench/
# for the figures, build-bench-stages/ with the per-stage cycle counters compiled in. Only
# segx and dpi_bench are built there, no tests.
bench_build() {  # DIR [MESON OPTION...]
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=release -Dtests=false "$@" >/dev/null
  meson compile -C "$dir" app/segx/segx bench/dpi_bench >/dev/null
}
if [ "$dataplane" = 1 ] || [ "$soak" = 1 ]; then
  echo "== building build-bench/ (release)"
  bench_build build-bench
  if [ "$dataplane" = 1 ] && [ "$stages" = 1 ]; then
    echo "== building build-bench-stages/ (release, -Dstage_cycles=true)"
    bench_build build-bench-stages -Dstage_cycles=true
  fi
fi
[ "$market" = 1 ] || [ "$api" = 1 ] && scripts/build.sh >/dev/null

# DPDK's l3fwd, from the example sources Debian's dpdk-doc ships, built against the
# installed libdpdk in build-bench/l3fwd/. l3fwd asks every port for Rx checksum offload,
# which net_pcap and net_null lack, and would refuse to start: the copy here (never
# committed) asks for none. Routes: every IPv4 and IPv6 destination to port 1 (the sink).
l3fwd_dir=build-bench/l3fwd
l3fwd=
if [ "$dataplane" = 1 ]; then
  if [ -d /usr/share/dpdk/examples/l3fwd ]; then
    if [ ! -x "$l3fwd_dir/l3fwd/build/l3fwd" ]; then
      echo "== building DPDK's l3fwd (dpdk-doc examples) in $l3fwd_dir/"
      rm -rf "$l3fwd_dir" && mkdir -p "$l3fwd_dir"
      cp -r /usr/share/dpdk/examples/l3fwd /usr/share/dpdk/examples/common "$l3fwd_dir/"
      sed -i 's/^\t\t\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,$/\t\t.offloads = 0,/' \
        "$l3fwd_dir/l3fwd/main.c"
      grep -q 'RTE_ETH_RX_OFFLOAD_CHECKSUM,' "$l3fwd_dir/l3fwd/main.c" &&
        echo "bench.sh: could not take l3fwd's Rx checksum offload request out" >&2
      make -C "$l3fwd_dir/l3fwd" >"$work/l3fwd-build.log" 2>&1 ||
        { echo "bench.sh: l3fwd did not build:" >&2; tail -5 "$work/l3fwd-build.log" >&2; }
    fi
    [ -x "$l3fwd_dir/l3fwd/build/l3fwd" ] && l3fwd=$l3fwd_dir/l3fwd/build/l3fwd
    printf 'R0.0.0.0/1 1\nR128.0.0.0/1 1\n' >"$work/l3fwd-v4.cfg"
    printf 'R0000:0000:0000:0000:0000:0000:0000:0000/1 1\nR8000:0000:0000:0000:0000:0000:0000:0000/1 1\n' \
      >"$work/l3fwd-v6.cfg"
  else
    echo "bench.sh: /usr/share/dpdk/examples missing (Debian package dpdk-doc): no l3fwd figure" >&2
  fi
fi

# ---- data plane -------------------------------------------------------------------------
testpmd_mpps() {  # capture -> Mpps transmitted to the sink over $seconds
  # Interactive with --auto-start: the first stats call starts the window, the second
  # reports packets/s over it. --no-flush-rx: flushing would eat the replayed capture.
  { sleep 3; echo "show port stats all"; sleep "$seconds"; echo "show port stats all"; echo quit; } |
    dpdk-testpmd --no-huge -m 1024 --no-pci -l 0-1 --file-prefix "$prefix-testpmd" \
      --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" --vdev net_null0,no-rx=1 -- \
      -i --auto-start --forward-mode=io --no-flush-rx --nb-cores=1 --rxq=1 --txq=1 \
      >"$work/testpmd.log" 2>&1 || true
  # Port 1 (the sink) of the second stats block: its Tx-pps.
  awk '/Tx-pps:/ {n++; if (n == 4) print $2 / 1e6}' "$work/testpmd.log"
}

# Packets both of l3fwd's ports sent, from DPDK's telemetry (l3fwd prints no rates).
l3fwd_sent() {  # file-prefix
  echo "/ethdev/stats,0" "/ethdev/stats,1" | tr ' ' '\n' | dpdk-telemetry.py -f "$1" 2>/dev/null |
    python3 -c 'import json, sys
n = 0
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{\"/ethdev/stats\""):
        n += json.loads(line)["/ethdev/stats"]["opackets"]
print(n)'
}
l3fwd_mpps() {  # capture -> Mpps l3fwd forwarded over $seconds (0 when it did not run)
  [ -n "$l3fwd" ] || { echo 0; return; }
  # One lcore, the main one, on CPU 1 (the CPU of testpmd's and segx's forwarding lcore);
  # l3fwd wants a tx queue per lcore on every port.
  "$l3fwd" --no-huge -m 1024 --no-pci -l 1 --file-prefix "$prefix-l3fwd" \
    --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" --vdev net_null0,no-rx=1 -- \
    -p 0x3 -P --config="(0,0,1),(1,0,1)" --lookup=lpm --parse-ptype \
    --rule_ipv4="$work/l3fwd-v4.cfg" --rule_ipv6="$work/l3fwd-v6.cfg" >"$work/l3fwd.log" 2>&1 &
  local pid=$! a b t0 t1
  sleep 3
  a=$(l3fwd_sent "$prefix-l3fwd"); t0=$(date +%s.%N)
  sleep "$seconds"
  b=$(l3fwd_sent "$prefix-l3fwd"); t1=$(date +%s.%N)
  kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  python3 -c 'import sys; a, b = sys.argv[1], sys.argv[2]
print(round((int(b) - int(a)) / (float(sys.argv[4]) - float(sys.argv[3])) / 1e6, 3) if a and b else 0)' \
    "$a" "$b" "$t0" "$t1"
}

segx_config() {  # capture profile-yaml -> $work/segx.yaml
  cp "$1" "$out/traffic.pcap"
  # The market's ledger goes to the scratch directory, not the default in the working
  # directory (the source root, for bench.yaml's relative capture path). A file prefix and
  # a metrics port of this run's own: other segx processes may be running on the machine.
  { sed "s/^  file_prefix: segx-bench\$/  file_prefix: $prefix/" drivers-config/bench.yaml
    printf '%s\n' "$2"
    printf 'market:\n  ledger: sqlite:%s/dataplane-ledger.db\n' "$work"
    printf 'metrics:\n  listen: 127.0.0.1:0\n'; } >"$work/segx.yaml"
}

segx_mpps() {  # build-dir capture profile-yaml report -> Mpps transmitted, received
  segx_config "$2" "$3"
  "$1/app/segx/segx" --config "$work/segx.yaml" --duration "$seconds" \
    --report "$4" >"$work/segx.log" 2>&1 || {
    echo "bench.sh: segx failed:" >&2; tail -20 "$work/segx.log" >&2; echo "0 0"; return; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=float(sys.argv[2])
print(round(r["transmitted"]/s/1e6, 3), round(r["received"]/s/1e6, 3))' "$4" "$seconds"
}

# The dpi service's 100 patterns, one per line: literals none of which is in the capture, so
# every payload byte is scanned. Written once, read by the service's configuration and by
# dpi_bench alike.
patterns_file=$out/dpi-patterns.txt
for i in $(seq -w 1 100); do echo "segx-bench-signature-$i"; done >"$patterns_file"
patterns() {
  local n=0
  while read -r regex; do
    n=$((n + 1))
    printf '          - {id: p%03d, regex: "%s"}\n' "$n" "$regex"
  done <"$patterns_file"
}
profile_head=$'providers:\n  offers: [pass, count, fingerprint, dpi]\nprofiles:\n  - name: all\n    output: sink\n    segment: {packets: 64, time: 100ms, idle: 20ms}\n    services:'
served_at() {  # log what [seconds] -> the address segx printed as "what: http://...", waiting
  local address  # up to `seconds` (default 60)
  for _ in $(seq 1 $((${3:-60} * 2))); do
    address=$(grep -o "$2: http://[0-9.:]*" "$1" | head -1 | cut -c$((${#2} + 3))- || true)
    [ -n "$address" ] && { echo "$address"; return 0; }
    sleep 0.5
  done
  return 1
}

profile() {  # case -> the profile's YAML
  case $1 in
    none) printf '%s []' "$profile_head" ;;
    fingerprint) printf '%s\n      - fingerprint' "$profile_head" ;;
    dpi) printf '%s\n      - name: dpi\n        patterns:\n%s' "$profile_head" "$(patterns)" ;;
  esac
}
capture() {  # size -> path of the benchmark capture of that frame size (written once)
  local cap=$out/traffic-$1.pcap
  [ -f "$cap" ] || /usr/bin/python3 scripts/bench-traffic.py --out "$cap" --size "$1" \
    --packets 4096 --flows 1024 >/dev/null
  echo "$cap"
}

# Cycles per packet by stage, from the reports of the build with the counters: a table for
# one frame size, its figures appended to the results.
stage_table() {  # size
  python3 - "$1" "$out" >>"$results" <<'PY'
import json, os, sys
size, out = sys.argv[1], sys.argv[2]
cases = ["none", "fingerprint", "dpi"]
reports = {}
for c in cases:
    try:
        reports[c] = json.load(open(f"{out}/report-{size}-{c}-stages.json"))
    except (OSError, ValueError):
        pass
if not reports or not all("stage_cycles" in r for r in reports.values()):
    print("bench.sh: no stage cycles in the reports", file=sys.stderr)
    sys.exit(0)
# In pipeline order (the report's object is sorted by name); any stage not listed goes last.
order = ["rx", "parse", "classify", "meter", "segment", "ring", "service", "reorder", "tx",
         "scan", "other"]
found = list(next(iter(reports.values()))["stage_cycles"]["stages"])
names = [n for n in order if n in found] + [n for n in found if n not in order]
load = os.getloadavg()[0]
err = sys.stderr  # the table goes to the terminal, the figures to the results
print(f"-- {size} B: TSC cycles per packet received, by stage (build-bench-stages, "
      f"-Dstage_cycles=true)", file=err)
print(f"{'stage':<10}" + "".join(f"{'segx-' + c:>18}" for c in reports), file=err)
for n in names:
    row = f"{n:<10}"
    for c, r in reports.items():
        v = r["stage_cycles"]["stages"][n]["per_packet"]
        row += f"{v:>18.1f}"
        print(json.dumps({"group": "stages", "name": f"{c}_{size}B_{n}", "value": round(v, 2),
                          "unit": "cycles/packet", "note": "", "load1": load}))
    print(row, file=err)
row_total, row_mpps = f"{'total':<10}", f"{'Mpps':<10}"
for c, r in reports.items():
    sc = r["stage_cycles"]
    total = sum(s["per_packet"] for s in sc["stages"].values())
    seconds = sum(s["cycles"] for s in sc["stages"].values()) / sc["tsc_hz"]
    row_total += f"{total:>18.1f}"
    row_mpps += f"{r['transmitted'] / seconds / 1e6 if seconds else 0:>18.3f}"
    print(json.dumps({"group": "stages", "name": f"{c}_{size}B_total", "value": round(total, 2),
                      "unit": "cycles/packet", "note": f"TSC {sc['tsc_hz'] / 1e9:.3f} GHz",
                      "load1": load}))
print(row_total, file=err)
print(row_mpps + "   (instrumented build, over the lcore's running time)", file=err)
PY
}

if [ "$dataplane" = 1 ]; then
  echo "== data plane: net_pcap (infinite_rx) -> net_null (no-rx), 1 forwarding lcore, ${seconds}s each"
  printf '%-8s %-16s %10s %10s %9s %8s %6s\n' size case "tx Mpps" "rx Mpps" "/testpmd" "/l3fwd" load
  ratio_of() { python3 -c "import sys; t=float(sys.argv[2]); print(round(float(sys.argv[1])/t, 3) if t else 0)" "$1" "$2"; }
  for size in 64 1500; do
    cap=$(capture "$size")
    tp=$(testpmd_mpps "$cap")
    tp=${tp:-0}
    printf '%-8s %-16s %10s %10s %9s %8s %6s\n' "$size" testpmd-io "$tp" "" 1 "" "$(load1)"
    figure dataplane "testpmd_io_${size}B" "$tp" Mpps
    l3=$(l3fwd_mpps "$cap")
    l3=${l3:-0}
    printf '%-8s %-16s %10s %10s %9s %8s %6s\n' "$size" l3fwd-lpm "$l3" "" "$(ratio_of "$l3" "$tp")" 1 "$(load1)"
    figure dataplane "l3fwd_lpm_${size}B" "$l3" Mpps "both ports' opackets; ratio to testpmd io $(ratio_of "$l3" "$tp")"
    for case in none fingerprint dpi; do
      read -r tx rx < <(segx_mpps build-bench "$cap" "$(profile "$case")" \
        "$out/report-$size-$case.json")
      ratio=$(ratio_of "$tx" "$tp")
      ratio_l3=$(ratio_of "$tx" "$l3")
      printf '%-8s %-16s %10s %10s %9s %8s %6s\n' "$size" "segx-$case" "$tx" "$rx" "$ratio" "$ratio_l3" "$(load1)"
      figure dataplane "segx_${case}_${size}B" "$tx" Mpps "rx $rx Mpps, ratio to testpmd io $ratio, to l3fwd $ratio_l3"
      figure dataplane "segx_${case}_${size}B_over_testpmd" "$ratio" ""
      figure dataplane "segx_${case}_${size}B_over_l3fwd" "$ratio_l3" ""
      [ "$case" = dpi ] && dpi_tx=$tx
    done
    # Hyperscan alone over the same payloads with the same patterns, on the data-plane
    # lcore's CPU: block mode (the target's baseline) and streams as the service uses them.
    half=$(python3 -c "import sys; print(max(1.0, float(sys.argv[1]) / 2))" "$seconds")
    build-bench/bench/dpi_bench --pcap "$cap" --patterns "$patterns_file" --seconds "$half" \
      --cpu 1 --segment 64 --json "$out/dpi-bench-$size.json" >"$work/dpi-bench.log" 2>&1 || {
      echo "bench.sh: dpi_bench failed:" >&2; cat "$work/dpi-bench.log" >&2; }
    if [ -f "$out/dpi-bench-$size.json" ]; then
      read -r block stream gbps < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(round(d["block"]["mpps"], 3), round(d["stream"]["mpps"], 3), round(d["block"]["gbps"], 2))' \
        "$out/dpi-bench-$size.json")
      ratio=$(python3 -c "import sys; t=float(sys.argv[2]); print(round(float(sys.argv[1])/t, 3) if t else 0)" "$dpi_tx" "$block")
      printf '%-8s %-16s %10s %10s %9s %6s   segx-dpi / hyperscan block (%s Gbit/s payload)\n' \
        "$size" hyperscan-block "$block" "" "$ratio" "$(load1)" "$gbps"
      printf '%-8s %-16s %10s\n' "$size" hyperscan-stream "$stream"
      figure dataplane "hyperscan_block_${size}B" "$block" Mpps "$gbps Gbit/s of payload, 100 patterns, one core"
      figure dataplane "hyperscan_stream_${size}B" "$stream" Mpps "a stream per 64 packets, as the dpi service"
      figure dataplane "segx_dpi_over_hyperscan_block_${size}B" "$ratio" ""
    fi
  done
  # Scaling over rx lcores: the 64-byte capture through one lcore, then through two (two
  # rx queues replaying it, RSS's work done by the capture files), each lcore holding rx,
  # worker and tx. Busy-polling lcores must not outnumber CPUs, and this machine has two:
  # lcore 2 shares CPU 0 with the main lcore (which sleeps between 5 ms polls). So the figure
  # is packets per CPU-second of each data-plane lcore (packets from the report's lcores,
  # CPU time from /proc, sampled every 0.2 s until segx exits), not wall-clock Mpps.
  two_lcores() {  # lcores -> prints "lcore packets cpu_seconds" per lcore
    local n=$1 rxq="rx_pcap=$(capture 64)" lcores="    - {lcore: 1, roles: [rx, worker, tx]}"
    if [ "$n" = 2 ]; then
      rxq="$rxq,rx_pcap=$(capture 64)"
      lcores="$lcores"$'\n'"    - {lcore: 2, roles: [rx, worker, tx]}"
    fi
    cat >"$work/lcores.yaml" <<YAML
eal:
  lcores: [0, 1, "2@0"]
  main_lcore: 0
  memory: 1GiB
  hugepages: false
  file_prefix: $prefix
  vdevs: ["net_pcap0,$rxq,infinite_rx=1", "net_null0,no-rx=1"]
ports:
  - {name: source, device: net_pcap0, rx_queues: $n}
  - {name: sink, device: net_null0, rx_queues: 0, tx_queues: $n}
pipeline:
  lcores:
$lcores
  burst: 32
  mempool: {size: 32767, cache: 256}
  default: {action: forward, output: sink}
$(profile none)
market: {enabled: false}
metrics: {enabled: false}
YAML
    build-bench/app/segx/segx --config "$work/lcores.yaml" --duration "$seconds" \
      --report "$out/report-lcores-$n.json" >"$work/lcores.log" 2>&1 &
    local pid=$! t
    declare -A cpu=()
    local hz; hz=$(getconf CLK_TCK)
    while kill -0 "$pid" 2>/dev/null; do
      for t in /proc/"$pid"/task/*; do
        case $(cat "$t/comm" 2>/dev/null) in
          rte-worker-1) cpu[1]=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo "${cpu[1]:-0}") ;;
          rte-worker-2) cpu[2]=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo "${cpu[2]:-0}") ;;
        esac
      done
      sleep 0.2
    done
    wait "$pid" || { echo "bench.sh: segx failed:" >&2; tail -5 "$work/lcores.log" >&2; return; }
    python3 - "$out/report-lcores-$n.json" "$hz" "${cpu[1]:-0}" "${cpu[2]:-0}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
hz, ticks = float(sys.argv[2]), {1: float(sys.argv[3]), 2: float(sys.argv[4])}
for l in r["lcores"]:
    print(l["lcore"], l["received"], ticks[l["lcore"]] / hz)
PY
  }
  echo "== rx lcores: packets per CPU-second of each data-plane lcore (64 B, no service, ${seconds}s)"
  declare -A total=()
  for n in 1 2; do
    total[$n]=0
    while read -r lcore packets secs; do
      pps=$(python3 -c "import sys; s=float(sys.argv[2]); print(round(float(sys.argv[1])/s/1e6, 3) if s else 0)" "$packets" "$secs")
      printf '%-20s lcore %s: %12s packets in %6.2f CPU-s: %8s M packets per CPU-second\n' \
        "$n rx lcore(s)" "$lcore" "$packets" "$secs" "$pps"
      figure lcores "rx_lcores_${n}_lcore_${lcore}_per_cpu_second" "$pps" Mpps "$packets packets in $secs CPU-seconds"
      total[$n]=$(python3 -c "import sys; print(round(float(sys.argv[1]) + float(sys.argv[2]), 3))" "${total[$n]}" "$pps")
    done < <(two_lcores "$n")
    figure lcores "rx_lcores_${n}_total_per_cpu_second" "${total[$n]}" Mpps "sum over the data-plane lcores"
  done
  scaling=$(python3 -c "import sys; a=float(sys.argv[1]); print(round(float(sys.argv[2])/a, 3) if a else 0)" "${total[1]}" "${total[2]}")
  printf '%-20s %s M packets per CPU-second in all, %s x one lcore (target >= 1.8)\n' \
    "2 rx lcores" "${total[2]}" "$scaling"
  figure lcores "two_over_one_rx_lcore" "$scaling" "" "packets per CPU-second, summed over lcores"

  if [ "$stages" = 1 ]; then
    echo "== cycles per stage: the same segx runs from build-bench-stages/ (-Dstage_cycles=true)"
    for size in 64 1500; do
      cap=$(capture "$size")
      for case in none fingerprint dpi; do
        segx_mpps build-bench-stages "$cap" "$(profile "$case")" \
          "$out/report-$size-$case-stages.json" >/dev/null
      done
      stage_table "$size" 2>&1
    done
  fi
fi

# ---- market -----------------------------------------------------------------------------
if [ "$market" = 1 ]; then
  echo "== market (scripts/bench-market.sh)"
  scripts/bench-market.sh
  python3 - "$out/market.json" >>"$results" <<'PY'
import json, os, sys
m = json.load(open(sys.argv[1]))
load = os.getloadavg()[0]
def walk(prefix, v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from walk(f"{prefix}{k}.", x)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield prefix[:-1], v
for name, v in walk("", m):
    print(json.dumps({"group": "market", "name": name, "value": v, "unit": "", "note": "",
                      "load1": load}))
PY
fi

# ---- API --------------------------------------------------------------------------------
# api_bench LEDGER TITLE SUFFIX: segx on the SQLite ledger LEDGER (new or with a past),
# bids and /healthz through wrk; figures api_bids_per_s$SUFFIX and so on.
api_bench() {
  local ledger=$1 title=$2 suffix=$3
  echo "== API$title: wrk on CPU 1, 4 threads, 16 connections, ${seconds}s; segx api.threads unset (1 here)"
  # Sealed bids are final (one per recipient and lot): 500 recipients bid on lots in turn,
  # so every bid is a new, valid one (201).
  recipients=500
  tokens=$(python3 -c '
import hashlib, sys
for i in ["acme"] + [f"r{n}" for n in range(int(sys.argv[1]))]:
    role = "provider" if i == "acme" else "recipient"
    h = hashlib.sha256((i + "-t").encode()).hexdigest()
    print(f"      - {{principal: {i}, role: {role}, sha256: {h}}}")' "$recipients")
  # Each recipient holds its own /24 (a bid may name only what its bidder holds).
  subscribers=$(python3 -c '
import sys
for n in range(int(sys.argv[1])):
    print(f"  - {{id: r{n}, prefixes: [10.{n // 256}.{n % 256}.0/24]}}")' "$recipients")
  cat >"$work/api.yaml" <<YAML
eal:
  lcores: "0-1"
  main_lcore: 0
  memory: 256MiB
  hugepages: false
  file_prefix: $prefix-api
  vdevs: [net_null0, "net_null1,no-rx=1"]
ports:
  - {name: in, device: net_null0}
  - {name: out, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: drop}
providers: {id: acme}
subscribers:
$subscribers
profiles:
  - {name: all, metered: true, output: out, match: {protocol: 253}}
# Metrics for the ledger's commit figures below.
metrics: {listen: 127.0.0.1:0}
market:
  ledger: sqlite:$ledger
  bids_per_lot: 1000000
  api:
    listen: 127.0.0.1:0
    rate_limit: 1000000
    # wrk is one address sending /healthz without a token and keeping its connections.
    anonymous_rate_limit: 0
    keep_alive_requests: 1000000
    max_connections_per_address: 512
    tokens:
$tokens
YAML
  build/app/segx/segx --config "$work/api.yaml" --duration 600 >"$work/api-segx.log" 2>&1 &
  segx_pid=$!
  # A ledger with a past is verified and replayed before the API listens.
  local began; began=$(date +%s.%N)
  url=$(served_at "$work/api-segx.log" api 600 || true)
  metrics_url=$(served_at "$work/api-segx.log" metrics 5 || true)
  [ -z "$suffix" ] || printf '%-34s %10s\n' "segx start (verify, replay)" \
    "$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$began") s"
  if [ -z "$url" ]; then
    echo "bench.sh: segx's API did not come up:" >&2; tail -20 "$work/api-segx.log" >&2
  else
    # Lots enough for every bid: 500 recipients x 400 lots = 200,000 bids.
    lots=400
    for _ in $(seq 1 "$lots"); do
      curl -sf -o /dev/null -X POST -H 'Authorization: Bearer acme-t' "$url/v1/lots" \
        -d '{"profile": "all", "closes_in": "1h", "start_in": "2h", "duration": "1h", "reserve": 1}'
    done
    curl -sf -H 'Authorization: Bearer acme-t' "$url/v1/lots?state=open" |
      python3 -c 'import json,sys; print(" ".join(str(l["id"]) for l in json.load(sys.stdin)["lots"]))' \
      >"$work/lots.txt"
    # The requests are made in init(), before wrk starts its clock: wrk shares the CPU with
    # segx's API here, so building each one as it is sent (string work in Lua) would charge
    # the client's time to the server.
    cat >"$work/bid.lua" <<LUA
-- Thread t sends request k as recipient k mod R on lot (t + 4 * (k div R)) mod L: its
-- L / 4 lots times R recipients, each a new, valid bid; then it starts again (409s).
local lots = {}
for id in io.open("$work/lots.txt"):read("*a"):gmatch("%d+") do lots[#lots + 1] = id end
thread_id = 0  -- a global: setup() sets it per thread with thread:set()
local next_id = 0
function setup(thread) thread:set("thread_id", next_id); next_id = next_id + 1 end
local requests = {}
local sent = 0
function init(args)
  for k = 0, math.floor(#lots / 4) * $recipients - 1 do
    local r = k % $recipients
    local lot = lots[((thread_id + 4 * math.floor(k / $recipients)) % #lots) + 1]
    requests[k + 1] = wrk.format("POST", "/v1/lots/" .. lot .. "/bids",
      {["Authorization"] = "Bearer r" .. r .. "-t", ["Content-Type"] = "application/json"},
      '{"price": 10, "members": ["ip:10.' .. math.floor(r / 256) .. '.' .. (r % 256) ..
      '.0/24"], "payment_token": "tok_visa"}')
  end
end
function request()
  sent = sent % #requests + 1
  return requests[sent]
end
LUA
    rate() {  # wrk output -> requests/s
      awk '/^Requests\/sec:/ {print $2}' "$1"
    }
    # wrk runs on CPU 1, the data-plane lcore's, beside the lcore rather than beside the API's
    # thread on CPU 0: where the scheduler put it, both figures moved by a third between runs.
    local before after
    before=$(ledger_commits "$metrics_url")
    taskset -c 1 wrk -t4 -c16 -d"${seconds}s" -s "$work/bid.lua" "$url" >"$work/wrk-bids.txt" 2>&1 || true
    after=$(ledger_commits "$metrics_url")
    taskset -c 1 wrk -t4 -c16 -d"${seconds}s" "$url/healthz" >"$work/wrk-healthz.txt" 2>&1 || true
    bids=$(rate "$work/wrk-bids.txt"); healthz=$(rate "$work/wrk-healthz.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk-bids.txt"); non2xx=${non2xx:-0}
    ratio=$(python3 -c "import sys; h=float(sys.argv[2] or 0); print(round(float(sys.argv[1] or 0)/h, 3) if h else 0)" "${bids:-0}" "${healthz:-0}")
    printf '%-34s %10s\n' "POST bids (durable, 201)" "${bids:-0}/s" "GET /healthz (trivial)" "${healthz:-0}/s" \
      "ratio bids/trivial" "$ratio" "bid responses not 2xx" "$non2xx"
    figure api "bids_per_s$suffix" "${bids:-0}" "req/s" "wrk -t4 -c16 on CPU 1; non-2xx $non2xx"
    figure api "healthz_per_s$suffix" "${healthz:-0}" "req/s" "same server and settings"
    figure api "bids_over_trivial$suffix" "$ratio" ""
    # What bounds the bids: each is answered once its commit is durable, so 16 connections
    # never put more than 16 bids in one commit, and a bid waits for the commit running
    # when it arrives, then for its own (docs/performance.md).
    local commits batch commit_ms
    read -r commits batch commit_ms < <(python3 -c '
import sys
b, a, wrk = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3]
n = next((int(l.split()[0]) for l in open(wrk) if "requests in" in l), 0)
c = int(float(a[0]) - float(b[0])) if len(a) == 2 and len(b) == 2 else 0
s = float(a[1]) - float(b[1]) if c else 0
print(c, round(n / c, 1) if c else 0, round(1000 * s / c, 3) if c else 0)' \
      "$before" "$after" "$work/wrk-bids.txt")
    printf '%-34s %10s\n' "ledger commits in the bid run" "$commits" \
      "bids per commit" "$batch" "mean commit (store, fsync)" "$commit_ms ms"
    figure api "bids_per_commit$suffix" "$batch" "" "$commits commits in the bid run"
    figure api "commit_ms$suffix" "$commit_ms" "ms" "mean time in the store per commit"
  fi
  kill "$segx_pid" 2>/dev/null || true
  wait "$segx_pid" 2>/dev/null || true
  segx_pid=
}
# The ledger's commits: segx_ledger_commits_total and segx_ledger_commit_seconds_sum.
ledger_commits() {  # metrics URL -> "commits seconds" (nothing if unreachable)
  [ -n "$1" ] || return 0
  curl -sf "$1/metrics" | awk '/^segx_ledger_commits_total / {c = $2}
    /^segx_ledger_commit_seconds_sum / {s = $2} END {if (c != "") print c, s}' || true
}
if [ "$api" = 1 ]; then
  # The disk under the ledger, alone: 4 KiB pages written and made durable (fdatasync) as
  # a SQLite WAL commit of a few bids does, one commit after the other, on an idle CPU.
  echo "== the ledger's disk: pwrite 4 x 4 KiB + fdatasync, 2,000 times in $work"
  disk_ms=$(python3 -c '
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.pwrite(fd, bytes(64 * 4096), 0); os.fsync(fd)
page, n = b"x" * 4096, 2000
began = time.perf_counter()
for i in range(n):
    for p in range(4):
        os.pwrite(fd, page, ((4 * i + p) % 64) * 4096)
    os.fdatasync(fd)
took = time.perf_counter() - began
os.close(fd); os.unlink(path)
print(round(1000 * took / n, 3))' "$work")
  printf '%-34s %10s\n' "durable write of 4 pages" "$disk_ms ms"
  figure api disk_commit_ms "$disk_ms" ms "pwrite 4 x 4 KiB + fdatasync in the bench's directory"
  api_bench "$work/ledger.db" "" ""
  # The same with a past: 1,000 lots of 100 blocks, each bid on by 1,000 recipients, closed,
  # charged, run and ended (bench/market_history.cpp): 100,000 finished leases and 1,000,000
  # past bids in the ledger, replayed at start.
  echo "== writing a market history (1,000 lots x 1,000 bids, 100,000 leases)"
  if build/bench/market_history --ledger "sqlite:$work/history.db" --lots 1000 --units 100 \
    --bidders 1000 --provider acme --profile all; then
    api_bench "$work/history.db" " with 100,000 finished leases and 1,000,000 past bids" \
      "_with_history"
  else
    echo "bench.sh: market_history failed: no figure with a past" >&2
  fi
fi

# ---- soak ---------------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
received() {  # metrics URL -> packets segx received so far
  curl -sf "$1/metrics" | awk '/^segx_received_packets_total / {printf "%d\n", $2}'
}
if [ "$soak" = 1 ]; then
  echo "== soak: $soak_packets packets through segx (64 bytes, no service), resident memory"
  segx_config "$(capture 64)" "$(profile none)"
  build-bench/app/segx/segx --config "$work/segx.yaml" --report "$out/report-soak.json" \
    >"$work/soak.log" 2>&1 &
  segx_pid=$!
  url=$(served_at "$work/soak.log" metrics || true)
  if [ -z "$url" ]; then
    echo "bench.sh: segx did not start:" >&2; tail -20 "$work/soak.log" >&2
  else
    # Warm-up: pools, flow table and caches are in use after a few seconds of traffic. Then
    # the packet count and resident size, and again once soak_packets more went through.
    sleep 3
    p0=$(received "$url"); rss0=$(rss_kib "$segx_pid"); t0=$(date +%s.%N)
    p1=$p0 rss1=$rss0
    while kill -0 "$segx_pid" 2>/dev/null; do
      sleep 0.5
      p1=$(received "$url") || break
      rss1=$(rss_kib "$segx_pid")
      [ $((p1 - p0)) -ge "$soak_packets" ] && break
    done
    t1=$(date +%s.%N)
    kill -TERM "$segx_pid" 2>/dev/null || true
    wait "$segx_pid" 2>/dev/null || true
    segx_pid=
    read -r packets secs growth per100m < <(python3 -c '
import sys; p0, p1, r0, r1 = map(int, sys.argv[1:5]); t = float(sys.argv[6]) - float(sys.argv[5])
print(p1 - p0, round(t, 1), r1 - r0, round((r1 - r0) * 1e8 / (p1 - p0), 1) if p1 > p0 else 0)' \
      "$p0" "$p1" "$rss0" "$rss1" "$t0" "$t1")
    printf '%-34s %s\n' "packets after warm-up" "$packets in ${secs}s" \
      "VmRSS after warm-up" "$rss0 KiB" "VmRSS at end" "$rss1 KiB" \
      "growth" "$growth KiB ($per100m KiB per 100,000,000 packets)" \
      "exit report" "$(grep -E '^mempool:' "$work/soak.log" || echo 'segx did not finish')"
    figure soak packets "$packets" packets "after a 3 s warm-up, in ${secs}s"
    figure soak rss_start "$rss0" KiB "VmRSS after warm-up"
    figure soak rss_end "$rss1" KiB "VmRSS after the soak's packets, segx still running"
    figure soak rss_growth_per_100M_packets "$per100m" KiB "target < 1024"
  fi
fi

python3 - "$results" "$out/results.json" "$seconds" "$began" <<'PY'
import json, os, platform, sys, time
figs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
took = round(time.time() - float(sys.argv[4]))
doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "machine": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                   "loadavg_at_end": os.getloadavg()},
       "seconds_per_run": float(sys.argv[3]), "took_seconds": took, "figures": figs}
json.dump(doc, open(sys.argv[2], "w"), indent=2)
print(f"bench.sh: {len(figs)} figures in {sys.argv[2]} (load average at end "
      f"{os.getloadavg()[0]:.1f}); took {took} s")
PY
