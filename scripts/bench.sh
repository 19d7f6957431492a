#!/usr/bin/env bash
# Benchmarks (docs/performance.md). Prints figures and never fails on speed.
#   scripts/bench.sh [--seconds S] [--no-dataplane] [--no-market] [--no-api]
# Data plane: net_pcap (infinite_rx=1) replaying a capture of many IPv4/IPv6/VLAN flows into
# net_null (no-rx=1), one forwarding lcore, --no-huge. dpdk-testpmd --forward-mode=io first,
# then segx on the same virtual devices (drivers-config/bench.yaml) with no service, with
# fingerprint and with dpi (100 patterns), for 64- and 1500-byte frames; Mpps and the ratio
# segx/testpmd. Market: scripts/bench-market.sh. API: bids/s through a running segx with wrk,
# against GET /healthz (a trivial handler on the same server and settings).
# Everything goes to stdout and build/bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
dataplane=1 market=1 api=1
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --no-dataplane) dataplane=0 ;;
    --no-market) market=0 ;;
    --no-api) api=0 ;;
    *) echo "usage: scripts/bench.sh [--seconds S] [--no-dataplane] [--no-market] [--no-api]" >&2
       exit 2 ;;
  esac
  shift
done

scripts/build.sh >/dev/null
out=build/bench
mkdir -p "$out"
work=$(mktemp -d)
segx_pid=
cleanup() {
  [ -n "$segx_pid" ] && kill "$segx_pid" 2>/dev/null && wait "$segx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
results=$work/results.jsonl  # one JSON object per figure, gathered into results.json
: >"$results"
figure() {  # figure GROUP NAME VALUE UNIT [NOTE]
  printf '{"group":"%s","name":"%s","value":%s,"unit":"%s","note":"%s"}\n' \
    "$1" "$2" "$3" "$4" "${5:-}" >>"$results"
}

# ---- data plane -------------------------------------------------------------------------
testpmd_mpps() {  # capture -> Mpps transmitted to the sink over $seconds
  # Interactive with --auto-start: the first stats call starts the window, the second
  # reports packets/s over it. --no-flush-rx: flushing would eat the replayed capture.
  { sleep 3; echo "show port stats all"; sleep "$seconds"; echo "show port stats all"; echo quit; } |
    dpdk-testpmd --no-huge -m 1024 --no-pci -l 0-1 --file-prefix "bench-testpmd-$$" \
      --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" --vdev net_null0,no-rx=1 -- \
      -i --auto-start --forward-mode=io --no-flush-rx --nb-cores=1 --rxq=1 --txq=1 \
      >"$work/testpmd.log" 2>&1 || true
  # Port 1 (the sink) of the second stats block: its Tx-pps.
  awk '/Tx-pps:/ {n++; if (n == 4) print $2 / 1e6}' "$work/testpmd.log"
}

segx_mpps() {  # capture service-yaml -> Mpps transmitted, received
  cp "$1" "$out/traffic.pcap"
  # The market's ledger goes to the scratch directory, not the default in the working
  # directory (the source root, for bench.yaml's relative capture path).
  { cat drivers-config/bench.yaml; printf '%s\n' "$2";
    printf 'market:\n  ledger: sqlite:%s/dataplane-ledger.db\n' "$work"; } >"$work/segx.yaml"
  build/app/segx/segx --config "$work/segx.yaml" --duration "$seconds" \
    --report "$work/report.json" >"$work/segx.log" 2>&1 || {
    echo "bench.sh: segx failed:" >&2; tail -20 "$work/segx.log" >&2; echo "0 0"; return; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=float(sys.argv[2])
print(round(r["transmitted"]/s/1e6, 3), round(r["received"]/s/1e6, 3))' "$work/report.json" "$seconds"
}

patterns() {  # 100 literal patterns, none of them in the capture: dpi scans every byte
  for i in $(seq -w 1 100); do echo "          - {id: p$i, regex: \"segx-bench-signature-$i\"}"; done
}

if [ "$dataplane" = 1 ]; then
  echo "== data plane: net_pcap (infinite_rx) -> net_null (no-rx), 1 forwarding lcore, ${seconds}s each"
  profile_head=$'providers:\n  offers: [pass, count, fingerprint, dpi]\nprofiles:\n  - name: all\n    output: sink\n    segment: {packets: 64, time: 100ms, idle: 20ms}\n    services:'
  printf '%-8s %-14s %10s %10s %8s\n' size case "tx Mpps" "rx Mpps" "/testpmd"
  for size in 64 1500; do
    cap=$out/traffic-$size.pcap
    [ -f "$cap" ] || /usr/bin/python3 scripts/bench-traffic.py --out "$cap" --size "$size" \
      --packets 4096 --flows 1024 >/dev/null
    tp=$(testpmd_mpps "$cap")
    tp=${tp:-0}
    printf '%-8s %-14s %10s %10s %8s\n' "$size" testpmd-io "$tp" "" 1
    figure dataplane "testpmd_io_${size}B" "$tp" Mpps
    for case in none fingerprint dpi; do
      case $case in
        none) svc=" []" ;;
        fingerprint) svc=$'\n      - fingerprint' ;;
        dpi) svc=$'\n      - name: dpi\n        patterns:\n'"$(patterns)" ;;
      esac
      read -r tx rx < <(segx_mpps "$cap" "$profile_head$svc")
      ratio=$(python3 -c "import sys; t=float(sys.argv[2]); print(round(float(sys.argv[1])/t, 3) if t else 0)" "$tx" "$tp")
      printf '%-8s %-14s %10s %10s %8s\n' "$size" "segx-$case" "$tx" "$rx" "$ratio"
      figure dataplane "segx_${case}_${size}B" "$tx" Mpps "rx $rx Mpps, ratio to testpmd io $ratio"
    done
  done
fi

# ---- market -----------------------------------------------------------------------------
if [ "$market" = 1 ]; then
  echo "== market (scripts/bench-market.sh)"
  scripts/bench-market.sh
  python3 - "$out/market.json" >>"$results" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
def walk(prefix, v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from walk(f"{prefix}{k}.", x)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield prefix[:-1], v
for name, v in walk("", m):
    print(json.dumps({"group": "market", "name": name, "value": v, "unit": "", "note": ""}))
PY
fi

# ---- API --------------------------------------------------------------------------------
if [ "$api" = 1 ]; then
  echo "== API: wrk, 4 threads, 16 connections, ${seconds}s; segx api.threads 16"
  # Sealed bids are final (one per recipient and lot): 500 recipients bid on lots in turn,
  # so every bid is a new, valid one (201).
  recipients=500
  tokens=$(python3 -c '
import hashlib, sys
for i in ["acme"] + [f"r{n}" for n in range(int(sys.argv[1]))]:
    role = "provider" if i == "acme" else "recipient"
    h = hashlib.sha256((i + "-t").encode()).hexdigest()
    print(f"      - {{principal: {i}, role: {role}, sha256: {h}}}")' "$recipients")
  cat >"$work/api.yaml" <<YAML
eal:
  lcores: "0-1"
  main_lcore: 0
  memory: 256MiB
  hugepages: false
  file_prefix: segx-bench-api-$$
  vdevs: [net_null0, "net_null1,no-rx=1"]
ports:
  - {name: in, device: net_null0}
  - {name: out, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: drop}
providers: {id: acme}
profiles:
  - {name: all, metered: true, output: out, match: {protocol: 253}}
market:
  ledger: sqlite:$work/ledger.db
  bids_per_lot: 1000000
  api:
    listen: 127.0.0.1:0
    threads: 16
    rate_limit: 1000000
    tokens:
$tokens
YAML
  build/app/segx/segx --config "$work/api.yaml" --duration 600 >"$work/api-segx.log" 2>&1 &
  segx_pid=$!
  url=
  for _ in $(seq 1 120); do
    url=$(grep -o 'api: http://[0-9.:]*' "$work/api-segx.log" | head -1 | cut -c6- || true)
    [ -n "$url" ] && break
    sleep 0.5
  done
  if [ -z "$url" ]; then
    echo "bench.sh: segx's API did not come up:" >&2; tail -20 "$work/api-segx.log" >&2
  else
    # Lots enough for every bid: 500 recipients x 400 lots = 200,000 bids.
    lots=400
    for _ in $(seq 1 "$lots"); do
      curl -sf -o /dev/null -X POST -H 'Authorization: Bearer acme-t' "$url/v1/lots" \
        -d '{"profile": "all", "closes_in": "1h", "start_in": "2h", "duration": "1h", "reserve": 1}'
    done
    curl -sf -H 'Authorization: Bearer acme-t' "$url/v1/lots" |
      python3 -c 'import json,sys; print(" ".join(str(l["id"]) for l in json.load(sys.stdin)["lots"]))' \
      >"$work/lots.txt"
    cat >"$work/bid.lua" <<LUA
-- Thread t sends request k as recipient k mod R on lot (t + 4 * (k div R)) mod L.
local lots = {}
for id in io.open("$work/lots.txt"):read("*a"):gmatch("%d+") do lots[#lots + 1] = id end
local counter = 0
thread_id = 0  -- a global: setup() sets it per thread with thread:set()
local next_id = 0
function setup(thread) thread:set("thread_id", next_id); next_id = next_id + 1 end
function request()
  local r = counter % $recipients
  local lot = lots[((thread_id + 4 * math.floor(counter / $recipients)) % #lots) + 1]
  counter = counter + 1
  return wrk.format("POST", "/v1/lots/" .. lot .. "/bids",
    {["Authorization"] = "Bearer r" .. r .. "-t", ["Content-Type"] = "application/json"},
    '{"price": 10, "members": ["ip:10.0.0.0/8"], "payment_token": "tok_visa"}')
end
LUA
    rate() {  # wrk output -> requests/s
      awk '/^Requests\/sec:/ {print $2}' "$1"
    }
    wrk -t4 -c16 -d"${seconds}s" -s "$work/bid.lua" "$url" >"$work/wrk-bids.txt" 2>&1 || true
    wrk -t4 -c16 -d"${seconds}s" "$url/healthz" >"$work/wrk-healthz.txt" 2>&1 || true
    bids=$(rate "$work/wrk-bids.txt"); healthz=$(rate "$work/wrk-healthz.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk-bids.txt"); non2xx=${non2xx:-0}
    ratio=$(python3 -c "import sys; h=float(sys.argv[2] or 0); print(round(float(sys.argv[1] or 0)/h, 3) if h else 0)" "${bids:-0}" "${healthz:-0}")
    printf '%-34s %10s\n' "POST bids (durable, 201)" "${bids:-0}/s" "GET /healthz (trivial)" "${healthz:-0}/s" \
      "ratio bids/trivial" "$ratio" "bid responses not 2xx" "$non2xx"
    figure api bids_per_s "${bids:-0}" "req/s" "wrk -t4 -c16; non-2xx $non2xx"
    figure api healthz_per_s "${healthz:-0}" "req/s" "same server and settings"
    figure api bids_over_trivial "$ratio" ""
  fi
  kill "$segx_pid" 2>/dev/null || true
  wait "$segx_pid" 2>/dev/null || true
  segx_pid=
fi

python3 - "$results" "$out/results.json" "$seconds" <<'PY'
import json, os, platform, sys, time
figs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "machine": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                   "loadavg_at_end": os.getloadavg()},
       "seconds_per_run": float(sys.argv[3]), "figures": figs}
json.dump(doc, open(sys.argv[2], "w"), indent=2)
print(f"bench.sh: {len(figs)} figures in {sys.argv[2]} (load average at end {os.getloadavg()[0]:.1f})")
PY
