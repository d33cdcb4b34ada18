#!/usr/bin/env python3
"""The Parquet reader beside pyarrow, on the same 1M-row Snappy file, in the same run.

Prints rows/s for
  - pyarrow.parquet.read_table(use_threads=False): the baseline (strings decoded to plain arrays);
  - the same with read_dictionary for the string columns (strings kept dictionary-encoded, which
    is what the meterlake reader does with a dictionary-encoded chunk);
  - meterlake's decode of every page of every column (goal: at least pyarrow's speed);
  - meterlake's full reading path (columns mapped to the canonical model and checked), for scale.
Each measure is the best of 5 runs; ratios are against the baseline measured here.

usage: parquet_benchmark.py PARQUET_BENCHMARK_BINARY [ROWS]
"""
import json, os, subprocess, sys, tempfile, time

import pyarrow as pa
import pyarrow.parquet as pq

binary = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
path = os.path.join(tempfile.mkdtemp(prefix="meterlake-pbench-"), "unload.snappy.parquet")

# A meter-reading table as a Snowflake unload or a client upload would hold it.
start = 1_735_689_600
index = pa.array(range(rows), pa.int64())
table = pa.table({
    "EXTERNAL_SITE_ID": pa.array([f"site-{i % 1000 // 10}" for i in range(rows)]),
    "EXTERNAL_DEVICE_ID": pa.array([f"inv-{i % 1000}" for i in range(rows)]),
    "TIMESTAMP": pa.array([(start + (i // 1000) * 900) * 1_000_000 for i in range(rows)], pa.timestamp("us", tz="UTC")),
    "READING_INTERVAL_SECONDS": pa.array([900] * rows, pa.int32()),
    "ENERGY_WH": pa.array([(i % 4000) / 4 for i in range(rows)]),
    "POWER_W": pa.array([(i % 4000) for i in range(rows)], pa.float64()),
    "TEMPERATURE_C": pa.array([None if i % 7 == 0 else 15 + (i % 200) / 10 for i in range(rows)]),
    "QUALITY": pa.array(["measured"] * rows),
})
strings = ["EXTERNAL_SITE_ID", "EXTERNAL_DEVICE_ID", "QUALITY"]


def best(function, runs=5):
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return min(times)


# pyarrow's defaults (dictionary pages, Snowflake writes them too), then plain pages, where every
# string must be copied out.
for label, dictionary in [("dictionary-encoded (pyarrow's default)", True), ("plain-encoded", False)]:
    pq.write_table(table, path, compression="SNAPPY", use_dictionary=dictionary)
    size = os.path.getsize(path)
    pyarrow_plain = best(lambda: pq.read_table(path, use_threads=False))
    pyarrow_dictionary = best(lambda: pq.read_table(path, use_threads=False, read_dictionary=strings))
    ours = json.loads(subprocess.run([binary, path, "5"], check=True, capture_output=True, text=True).stdout)
    assert ours["rows"] == rows

    print(f"Parquet decode, {rows:,} rows, {label}, {size / 1e6:.1f} MB Snappy file, single-threaded, best of 5")
    print(f"{'reader':58} {'rows/s':>12} {'vs pyarrow':>11}")
    for name, seconds in [
        ("pyarrow read_table (baseline)", pyarrow_plain),
        ("pyarrow read_table, string columns as dictionaries", pyarrow_dictionary),
        ("meterlake ParquetFile: every page of every column", ours["decode_seconds"]),
        ("meterlake ReadingFileReader: to checked readings", ours["readings_seconds"]),
    ]:
        print(f"{name:58} {rows / seconds:>12,.0f} {pyarrow_plain / seconds:>10.2f}x")
    print()
