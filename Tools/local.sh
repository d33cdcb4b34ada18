#!/usr/bin/env bash
# README command 1: the main job locally, on embedded defaults. Builds the validator, the two
# fetchers and the meterlake command, starts a throwaway PostgreSQL and the project's fake vendor
# clouds (both removed on exit), uses a local directory as the lake, runs the real fetcher
# binaries on a scheduled event, drops sample files into raw/ and runs the real validator binary
# on the S3 event of everything that landed.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/requirements.sh
ensure_requirements
echo "==> building the validator, the SolarEdge and GoodWe fetchers and the meterlake command"
for product in validator fetcher-solaredge fetcher-goodwe meterlake; do
    swift build --product "$product" 2>&1 | tail -n 1
done
source Tests/services.sh
start_postgres

# The fake SolarEdge and GoodWe clouds (nothing here reaches the real ones; docs/fetchers.md says
# how to point the fetchers at a real account).
port_file=$(mktemp -u /tmp/meterlake-vendors.XXXXXX)
python3 Tools/fake_vendors.py --port-file "$port_file" >/dev/null 2>&1 &
vendors_pid=$!
trap 'kill $vendors_pid 2>/dev/null || true; stop_services' EXIT
for _ in $(seq 1 100); do [ -s "$port_file" ] && break; sleep 0.1; done
vendors_port=$(cat "$port_file")
rm -f "$port_file"
echo "==> fake vendor clouds on http://127.0.0.1:$vendors_port/ (solaredge/, goodwe/api/)"
export SOLAREDGE_API_BASE_URL="http://127.0.0.1:$vendors_port/solaredge/"
export GOODWE_API_BASE_URL="http://127.0.0.1:$vendors_port/goodwe/api/"
export METERLAKE_ENCRYPTION_KEY="${METERLAKE_ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"

lake="${METERLAKE_LAKE_DIR:-$(mktemp -d /tmp/meterlake-lake.XXXXXX)}"
echo
.build/debug/meterlake local --lake "$lake" --validator .build/debug/validator --fetchers .build/debug --samples docs/samples
