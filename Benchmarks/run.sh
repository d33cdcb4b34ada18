#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them; each prints its result as a ratio to a
# baseline measured in the same run (machines here are noisy: compare ratios, not seconds).
#   Benchmarks/run.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
swift build -c release --product reader-benchmark
swift build -c release --product loader-benchmark
swift build -c release --product s3-benchmark
swift build -c release --product parquet-benchmark
swift build -c release --product validator
swift build -c release --product meterlake
swift build -c release --product fetcher-solaredge
swift build -c release --product ingest-api
swift build -c release --product maintenance
.build/release/reader-benchmark "$rows"
echo
python3 Benchmarks/parquet_benchmark.py .build/release/parquet-benchmark "$rows"
source Tests/services.sh
start_postgres
.build/release/loader-benchmark "$rows"
echo
python3 Benchmarks/validator_benchmark.py .build/release/validator .build/release/meterlake "$rows"
echo
python3 Benchmarks/fetcher_benchmark.py .build/release/fetcher-solaredge 100 100
echo
python3 Benchmarks/ingest_api_benchmark.py .build/release/ingest-api .build/release/validator 500
echo
python3 Benchmarks/maintenance_benchmark.py .build/release/maintenance 1000
echo
start_moto
.build/release/s3-benchmark 200
