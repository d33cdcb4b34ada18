#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them. Each prints its result as a ratio to a
# baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product reader-benchmark
.build/release/reader-benchmark "${1:-1000000}"
