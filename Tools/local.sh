#!/usr/bin/env bash
# README command 1: the main job locally, on embedded defaults. Builds the validator, the four
# fetchers and the meterlake command, starts a throwaway PostgreSQL and the project's fake vendor
# clouds (both removed on exit), uses a local directory as the lake, runs the real fetcher
# binaries on a scheduled event, drops sample files into raw/ and runs the real validator binary
# on the S3 event of everything that landed.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/requirements.sh
ensure_requirements
echo "==> building the validator, the SolarEdge, GoodWe, Enphase and SMA fetchers, the maintenance function and the meterlake command"
for product in validator fetcher-solaredge fetcher-goodwe fetcher-enphase fetcher-sma maintenance meterlake; do
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
vendors="http://127.0.0.1:$vendors_port"
echo "==> fake vendor clouds on $vendors/ (solaredge/, goodwe/api/, enphase/, sma/)"
export SOLAREDGE_API_BASE_URL="$vendors/solaredge/" GOODWE_API_BASE_URL="$vendors/goodwe/api/"
export ENPHASE_API_BASE_URL="$vendors/enphase/api/v4/" ENPHASE_AUTH_BASE_URL="$vendors/enphase/" ENPHASE_API_KEY=demo-enphase-key \
    ENPHASE_CLIENT_ID=demo-enphase-client ENPHASE_CLIENT_SECRET=demo-enphase-secret
export SMA_API_BASE_URL="$vendors/sma/v1/" SMA_AUTH_BASE_URL="$vendors/sma/auth/" SMA_CLIENT_ID=demo-sma-client SMA_CLIENT_SECRET=demo-sma-secret
export METERLAKE_ENCRYPTION_KEY="${METERLAKE_ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"

lake="${METERLAKE_LAKE_DIR:-$(mktemp -d /tmp/meterlake-lake.XXXXXX)}"
echo
.build/debug/meterlake local --lake "$lake" --validator .build/debug/validator --fetchers .build/debug \
    --maintenance .build/debug/maintenance --samples docs/samples

# `Tools/local.sh --shell`: stay in a shell with this run's database and lake (and the meterlake
# command on PATH) to try the trust commands on its data; everything is removed when it exits.
if [ "${1:-}" = "--shell" ]; then
    export METERLAKE_LAKE_DIR="$lake" PATH="$PWD/.build/debug:$PATH"
    echo
    echo "==> a shell with DATABASE_URL and METERLAKE_LAKE_DIR of this run; try: meterlake audit verify  (exit to clean up)"
    bash -i || true
fi
