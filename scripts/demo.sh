#!/usr/bin/env bash
# The demo: installs what is missing, builds, makes a reproducible capture of mixed
# traffic, runs segx on drivers-config/demo.yaml (net_pcap in and out, no NIC, no
# hugepages) and prints what went in and what came out. Then a whole market cycle over the
# REST API with segxctl: a provider posts a lot, two recipients bid (one as a sponsored
# group), the auction closes, the winners' block meters the demo traffic, settlement charges
# the group (one card accepted, one declined), both sides rate, reputations are printed, and
# the web board stays up at http://127.0.0.1:8080/ui/ until segx's --duration ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh

mkdir -p build/demo
if [ ! -f build/demo/input.pcap ] || [ ! -f build/demo/input.json ]; then
  # Flows over IPv4 and IPv6, VLAN and QinQ, fragments, GTP-U, and 24 malformed frames
  # that segx must drop and count.
  /usr/bin/python3 scripts/gen-traffic.py --out build/demo/input.pcap --packets 2000 --seed 1 \
    --fragments --gtpu --malformed 24 --manifest build/demo/input.json
fi
packets=$(/usr/bin/python3 scripts/pcap-tool.py count build/demo/input.pcap)

echo "demo: checking drivers-config/demo.yaml"
build/app/segx/segx --check-config drivers-config/demo.yaml
echo
echo "demo: running segx on the $packets packets of build/demo/input.pcap"
echo "demo: while it runs, Prometheus metrics are served at http://127.0.0.1:9464/metrics"
echo "      (metrics.listen in drivers-config/demo.yaml) and DPDK telemetry answers"
echo "      dpdk-telemetry.py -f segx-demo (commands /segx/stats, /segx/profiles, /segx/blocks, /segx/flows)"
rm -f build/demo/output.pcap build/demo/report.json build/demo/segments.jsonl
# Stops once every packet of the capture is in (or after 60 s, whichever comes first).
build/app/segx/segx --config drivers-config/demo.yaml --max-packets "$packets" --duration 60 \
  --report build/demo/report.json

/usr/bin/python3 scripts/pcap-tool.py summary build/demo/report.json \
  build/demo/input.pcap build/demo/output.pcap build/demo/input.json build/demo/segments.jsonl

# ---- part 2: a market cycle over the API ---------------------------------------------------
echo
echo "demo: part 2, a market cycle over the REST API (segxctl), on the embedded defaults"
echo "      (SQLite ledger build/demo/ledger.db, the test payment gateway)"
# The same appliance with the capture replayed in a loop, so traffic flows while the block
# the auction sells is active.
sed -e 's|rx_pcap=build/demo/input.pcap|rx_pcap=build/demo/input.pcap,infinite_rx=1|' \
    -e 's|tx_pcap=build/demo/output.pcap|tx_pcap=build/demo/market-output.pcap|' \
    -e 's|build/demo/segments.jsonl|build/demo/market-segments.jsonl|' \
    drivers-config/demo.yaml > build/demo/market.yaml
rm -f build/demo/ledger.db build/demo/ledger.db-wal build/demo/ledger.db-shm \
  build/demo/market-output.pcap build/demo/market-segments.jsonl
duration=${SEGX_DEMO_DURATION:-45}
build/app/segx/segx --config build/demo/market.yaml --duration "$duration" \
  --report build/demo/market-report.json > build/demo/market-segx.log 2>&1 &
segx_pid=$!
# segx stops by itself at --duration; if this script is interrupted, stop it (by its PID).
trap 'kill "$segx_pid" 2>/dev/null || true' INT TERM

export SEGX_URL=http://127.0.0.1:8080
ctl() { local token=$1; shift; SEGX_TOKEN=$token build/app/segxctl/segxctl "$@"; }
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
for _ in $(seq 1 150); do
  ctl demo-admin-token whoami >/dev/null 2>&1 && break
  kill -0 "$segx_pid" 2>/dev/null || { cat build/demo/market-segx.log; exit 1; }
  sleep 0.2
done
ctl demo-admin-token whoami >/dev/null

echo "demo: tokens: demo-provider-token, alice-demo-token, bob-demo-token, carol-demo-token,"
echo "      dave-demo-token, bob-phone-demo-token (bob's device), demo-admin-token"
echo "demo: the board: http://127.0.0.1:8080/ui/ (sign in with a token)"
echo
echo "$ segxctl lots create --profile web --closes-in 8s --start-in 9s --duration 8s ...  (provider)"
lot=$(ctl demo-provider-token --json lots create --profile web --closes-in 8s --start-in 9s \
  --duration 8s --min-rate 1Mbit/s --max-rate 20Mbit/s --reserve 100 | field '["id"]')
echo "lot $lot: blocks of the web profile, bidding closes in 8 s"
echo "$ segxctl bid $lot --price 700 --member ip:10.45.0.0/16 --payment-token tok_visa   (alice)"
ctl alice-demo-token bid "$lot" --price 700 --member ip:10.45.0.0/16 --payment-token tok_visa
echo "$ segxctl group create $lot --price 1000 --member bob=... --member carol=... --member dave=...   (bob)"
group=$(ctl bob-demo-token --json group create "$lot" --price 1000 --member bob=ip:10.1.0.0/16 \
  --member carol=ip:192.0.2.0/24 --member dave=ip:2001:db8:1::/48 | field '["id"]')
echo "$ segxctl group pledge $group --amount 600 --payment-token tok_visa      (bob)"
ctl bob-demo-token group pledge "$group" --amount 600 --payment-token tok_visa >/dev/null
echo "$ segxctl group pledge $group --amount 400 --payment-token tok_decline   (carol)"
ctl carol-demo-token group pledge "$group" --amount 400 --payment-token tok_decline >/dev/null
echo "$ segxctl group pledge $group --amount 0   (dave joins, sponsored: a member takes part once it joins)"
ctl dave-demo-token group pledge "$group" --amount 0
echo "$ segxctl lots list   (alice)"
ctl alice-demo-token lots list
echo
echo "demo: waiting for the auction to close and the block to run its 8 s ..."
for _ in $(seq 1 200); do
  state=$(ctl bob-demo-token --json leases | /usr/bin/python3 -c \
    'import json,sys; l=json.load(sys.stdin)["leases"]; print(l[0]["state"] if l else "")')
  [ "$state" = finished ] && break
  kill -0 "$segx_pid" 2>/dev/null || { echo "segx stopped early"; cat build/demo/market-segx.log; exit 1; }
  sleep 0.5
done
lease=$(ctl bob-demo-token --json leases | field '["leases"][0]["id"]')
echo "$ segxctl bids   (bob)"
ctl bob-demo-token bids
echo "$ segxctl leases   (admin: the group won and pays alice's 700, split 420/280 by pledge)"
ctl demo-admin-token leases
ctl demo-admin-token --json leases "$lease" | /usr/bin/python3 -c '
import json, sys
l = json.load(sys.stdin)["leases"][0]
u = l["usage"]
print("lease %d block %s: active %.1f s, metered %d green, %d yellow, %d red packets" % (
    l["id"], l["block"], u["active_ns"] / 1e9, u["packets"]["green"], u["packets"]["yellow"],
    u["packets"]["red"]))
for c in l["charges"]:
    print("  charge %s %d %s %s" % (c["payer"], c["amount"], c["result"], c["reason"]))'
echo
echo "$ segxctl rate $lease --satisfied --score 5 --comment ...   (bob, from his phone)"
ctl bob-phone-demo-token rate "$lease" --satisfied --score 5 --comment "steady rate all block"
echo "$ segxctl rate $lease --satisfied --score 4   (carol)"
ctl carol-demo-token rate "$lease" --satisfied --score 4
echo "$ segxctl rate $lease --recipient carol --note ...   (provider; settlement rated the payers)"
ctl demo-provider-token rate "$lease" --recipient carol --note "card declined; please update it"
echo
echo "$ segxctl reputation ...   (as shown beside every later lot)"
for who in demo-provider bob carol alice; do
  ctl alice-demo-token reputation "$who" | tail -n 1
done
echo "$ segxctl ledger verify   (admin)"
ctl demo-admin-token ledger verify
echo
echo "demo: the board is at http://127.0.0.1:8080/ui/ until segx's --duration ($duration s) ends;"
echo "      sign in with alice-demo-token or demo-provider-token (Ctrl-C stops now)"
wait "$segx_pid" || true
trap - INT TERM
grep -E "lot [0-9]+ closed|lease [0-9]+ (active|finished)" build/demo/market-segx.log | sed 's/^/  /'
echo "demo: market ledger build/demo/ledger.db, segx log build/demo/market-segx.log"
