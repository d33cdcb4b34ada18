#!/usr/bin/env bash
# README command 1: the main job locally, on embedded defaults. Builds the validator and the
# meterlake command, starts a throwaway PostgreSQL (removed on exit), uses a local directory as
# the lake, drops sample files into raw/ and runs the real validator binary on their event.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/requirements.sh
ensure_requirements
echo "==> building the validator and the meterlake command"
swift build --product validator 2>&1 | tail -n 1
swift build --product meterlake 2>&1 | tail -n 1
source Tests/services.sh
start_postgres
lake="${METERLAKE_LAKE_DIR:-$(mktemp -d /tmp/meterlake-lake.XXXXXX)}"
echo
.build/debug/meterlake local --lake "$lake" --validator .build/debug/validator --samples docs/samples
