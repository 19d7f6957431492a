#!/usr/bin/env bash
# The demo: installs what is missing, builds, makes a reproducible capture of mixed
# traffic, runs segx on drivers-config/demo.yaml (net_pcap in and out, no NIC, no
# hugepages) and prints what went in and what came out.
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
