#!/usr/bin/env bash
# Market benchmark (prints figures; never fails on speed): bids per second in memory and
# durable through the SQLite ledger, and winner determination for 1,000,000 bids.
#   scripts/bench-market.sh [--bids N] [--threads T] [--window W]
# Figures also go to build/bench/market.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
mkdir -p build/bench
# The journal goes on the disk the ledger would use (not tmpfs), so fsync costs what it costs.
exec build/bench/market_bench --dir build/bench --json build/bench/market.json "$@"
