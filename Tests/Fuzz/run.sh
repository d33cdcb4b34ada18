#!/usr/bin/env bash
# Fuzzes the Parquet reader with libFuzzer and AddressSanitizer for a bounded time.
#
#   Tests/Fuzz/run.sh [SECONDS]      (default 60)
#
# Seeds: the pyarrow corpus (Tests/ParquetTests/make_corpus.py). Findings land in
# .build/fuzz/crashes/; the run fails if libFuzzer reports any.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
command -v swiftc >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
out=.build/fuzz
rm -rf "$out/modules" && mkdir -p "$out/modules" "$out/corpus" "$out/crashes"

flags=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 -I "$out/modules")
echo "==> building the fuzz target (Compression, Parquet, ParquetFuzz with -sanitize=fuzzer,address)"
# gold warns about every ASan helper symbol it cannot export; those lines say nothing.
exec 3>&2 2> >(grep -v "Cannot export local symbol" >&3)
swiftc "${flags[@]}" -module-name Compression -emit-module -emit-module-path "$out/modules/Compression.swiftmodule" \
    -emit-library -static -o "$out/libCompression.a" -I Shared/CZlib -I Shared/CZstd Shared/Compression/*.swift
swiftc "${flags[@]}" -module-name Parquet -emit-module -emit-module-path "$out/modules/Parquet.swiftmodule" \
    -emit-library -static -o "$out/libParquet.a" -I Shared/CZlib -I Shared/CZstd Shared/Parquet/*.swift
swiftc "${flags[@]}" -I Shared/CZlib -I Shared/CZstd Tests/Fuzz/ParquetFuzz.swift "$out/libParquet.a" "$out/libCompression.a" \
    -lz -lzstd -o "$out/parquet-fuzz"

exec 2>&3
if [ -z "$(ls -A "$out/corpus")" ]; then
    echo "==> seeding from the pyarrow corpus"
    python3 Tests/ParquetTests/make_corpus.py "$out/seeds" >/dev/null
    cp "$out/seeds"/*.parquet "$out/corpus/"
fi
echo "==> fuzzing for $seconds s"
# One allocation over 128 MiB is a finding: nothing may be allocated from a declared count.
"$out/parquet-fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=128 -timeout=10 -max_len=262144 \
    -artifact_prefix="$out/crashes/" -print_final_stats=1 "$out/corpus" 2>&1 | tail -25
if [ -n "$(ls -A "$out/crashes")" ]; then
    echo "libFuzzer found inputs that crash the reader: $out/crashes" >&2
    exit 1
fi
echo "==> no crash, leak, hang or runaway allocation in $seconds s"
