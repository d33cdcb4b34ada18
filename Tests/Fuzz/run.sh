#!/usr/bin/env bash
# Fuzzes the readers with libFuzzer and AddressSanitizer for a bounded time:
#   parquet  the Parquet reader (seeds: the pyarrow corpus of Tests/ParquetTests/make_corpus.py)
#   reader   CSV, NDJSON and JSON documents, plain and gzip, and vendor envelopes through their
#            transforms (seeds: docs/samples, Tests/Fixtures/gzip, Tests/Fixtures/vendors)
#   keys     S3 event key decoding and the lake key checks (seeds: keys of the tests)
#
#   Tests/Fuzz/run.sh [SECONDS]      (default 60: each target runs that long)
#
# Inputs kept in Tests/Fuzz/regressions/TARGET/ (crashes found before) are replayed first. New
# findings land in .build/fuzz/crashes/TARGET/; the run fails if libFuzzer reports any: copy the
# input into the regressions folder with the fix.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
# A crash is reported by libFuzzer and AddressSanitizer at once; Swift's own backtracer, on these
# instrumented binaries, could take minutes or hang (and hold the run open).
export SWIFT_BACKTRACE=enable=no
command -v swiftc >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
out=.build/fuzz
rm -rf "$out/modules" && mkdir -p "$out/modules"

flags=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 -I "$out/modules"
       -I Shared/CZlib -I Shared/CZstd -I Shared/COpenSSL -I Shared/CCurl)
module() {  # name, sources...
    local name=$1
    shift
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
        -emit-library -static -o "$out/lib$name.a" "$@"
}
echo "==> building the fuzz targets (Compression, Parquet, Cryptography, Core, Vendors, HTTPClient, Lake with -sanitize=fuzzer,address)"
# gold warns about every ASan helper symbol it cannot export; those lines say nothing.
exec 3>&2 2> >(grep -v "Cannot export local symbol" >&3)
module Compression Shared/Compression/*.swift
module Parquet Shared/Parquet/*.swift
module Cryptography Shared/Cryptography/*.swift
module Core $(find Shared/Core -name '*.swift')
module Vendors Shared/Vendors/*.swift
module HTTPClient Shared/HTTPClient/*.swift
module Lake Shared/Lake/*.swift
libraries=("$out/libLake.a" "$out/libHTTPClient.a" "$out/libCore.a" "$out/libCryptography.a" "$out/libParquet.a" "$out/libCompression.a"
           -lz -lzstd -lcrypto -lcurl)
swiftc "${flags[@]}" Tests/Fuzz/ParquetFuzz.swift "$out/libParquet.a" "$out/libCompression.a" -lz -lzstd -o "$out/parquet-fuzz"
swiftc "${flags[@]}" Tests/Fuzz/ReaderFuzz.swift "$out/libVendors.a" "${libraries[@]}" -o "$out/reader-fuzz"
swiftc "${flags[@]}" Tests/Fuzz/KeyFuzz.swift "${libraries[@]}" -o "$out/keys-fuzz"
exec 2>&3

seed() {  # target; fills the target's corpus once
    local corpus="$out/corpus/$1"
    mkdir -p "$corpus"
    [ -z "$(ls -A "$corpus")" ] || return 0
    case $1 in
    parquet)
        python3 Tests/ParquetTests/make_corpus.py "$out/seeds" >/dev/null
        cp "$out/seeds"/*.parquet "$corpus/" ;;
    reader)
        # The first byte picks the name: 0 .csv, 1 .ndjson, 2 .json, 3 .csv.gz, 4 .ndjson.gz, 5 .json.gz,
        # 6 a SolarEdge envelope, 7 a GoodWe envelope, 8 an Enphase envelope, 9 an SMA envelope
        for pair in "0 docs/samples/readings.csv" "1 docs/samples/readings.ndjson" "2 docs/samples/readings.json" \
                    "2 docs/samples/envelope.json" "3 Tests/Fixtures/gzip/readings.csv.gz" "4 Tests/Fixtures/gzip/readings.ndjson.gz" \
                    "5 Tests/Fixtures/gzip/readings.json.gz" "3 Tests/Fixtures/gzip/two-members.csv.gz" \
                    "6 Tests/Fixtures/vendors/solaredge-fall-back.json" "7 Tests/Fixtures/vendors/goodwe-fall-back.json" \
                    "8 Tests/Fixtures/vendors/enphase-morning.json" "9 Tests/Fixtures/vendors/sma-fall-back.json"; do
            set -- $pair
            { printf "\\$(printf '%03o' "$1")"; cat "$2"; } > "$corpus/$(basename "$2").$1"
        done ;;
    keys)
        for key in "raw/manual/42/2026-03-01/site+7.csv" "raw/snowflake/1/2024-02-29/unload/data_0_0_0.snappy.parquet" \
                   "raw/enphase/999999999999999999/2026-12-31/a%2Bb%20c.json" "raw/manual/42/2026-03-01/k%00zzz.csv" \
                   "raw/manual/42/2026-03-01/%2e%2e/x.csv" "raw/goodwe/7/2026-01-01/Z%C3%A4hler.json"; do
            printf '%s' "$key" > "$corpus/$(printf '%s' "$key" | sha256sum | cut -c1-16)"
        done ;;
    esac
}

for target in parquet reader keys; do
    seed "$target"
    crashes="$out/crashes/$target"
    mkdir -p "$crashes"
    mapfile -t kept < <(find "Tests/Fuzz/regressions/$target" -type f ! -name '.*' 2>/dev/null | sort)
    if [ ${#kept[@]} -gt 0 ]; then
        echo "==> $target: replaying ${#kept[@]} inputs of Tests/Fuzz/regressions/$target"
        "$out/$target-fuzz" -rss_limit_mb=2048 -malloc_limit_mb=128 -timeout=10 "${kept[@]}" 2>&1 | tail -2
    fi
    echo "==> $target: fuzzing for $seconds s"
    # One allocation over 128 MiB is a finding: nothing may be allocated from a declared count.
    "$out/$target-fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=128 -timeout=10 -max_len=262144 \
        -artifact_prefix="$crashes/" -print_final_stats=1 "$out/corpus/$target" 2>&1 | tail -6
    if [ -n "$(ls -A "$crashes")" ]; then
        echo "libFuzzer found inputs that break the $target target: $crashes" >&2
        exit 1
    fi
done
echo "==> no crash, leak, hang or runaway allocation in any target ($seconds s each)"
