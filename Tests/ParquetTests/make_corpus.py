#!/usr/bin/env python3
"""Writes the Parquet test corpus with pyarrow and, beside each file, pyarrow's own reading of it.

    make_corpus.py OUTDIR

For every NAME.parquet it writes NAME.expected.json: {"rows": N, "columns": {name: [cell, ...]}}
where each cell is null or a string in the rendering the Swift tests use (ParquetTests/Render.swift):
integers in decimal (unsigned ones as unsigned; timestamps, dates and INT96 as their integer count:
the stored unit, days, nanoseconds), DECIMAL as "<unscaled>e-<scale>", FLOAT/DOUBLE as "f"/"d" + the
IEEE bits in hex, booleans as true/false, strings as themselves, other bytes as "x" + hex.

The corpus covers every codec, dictionary on and off, data pages v1 and v2, several row groups
and pages, nulls, every timestamp form, decimals on INT32/INT64/FIXED_LEN_BYTE_ARRAY, zero rows,
the DELTA_* and BYTE_STREAM_SPLIT encodings, dictionary overflow, and Snowflake-like unloads.
"""
import decimal
import json
import os
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 2500


def render_column(array):
    """pyarrow's values of one column, rendered as the Swift test renders them."""
    t = array.type
    if pa.types.is_timestamp(t):
        return [None if v is None else str(v) for v in array.cast(pa.int64()).to_pylist()]
    if pa.types.is_date32(t):
        return [None if v is None else str(v) for v in array.cast(pa.int32()).to_pylist()]
    if pa.types.is_float32(t):
        return [None if v is None else "f%08x" % (v & 0xFFFFFFFF) for v in array.view(pa.int32()).to_pylist()]
    if pa.types.is_float64(t):
        return [None if v is None else "d%016x" % (v & 0xFFFFFFFFFFFFFFFF) for v in array.view(pa.int64()).to_pylist()]
    if pa.types.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in array.to_pylist()]
    if pa.types.is_integer(t):
        return [None if v is None else str(v) for v in array.to_pylist()]
    if pa.types.is_decimal(t):
        out = []
        for v in array.to_pylist():
            if v is None:
                out.append(None)
                continue
            sign, digits, exponent = v.as_tuple()
            unscaled = int("".join(map(str, digits)) or "0") * 10 ** (exponent + t.scale)
            out.append("%de-%d" % (-unscaled if sign else unscaled, t.scale))
        return out
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return array.to_pylist()
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else "x" + v.hex() for v in array.to_pylist()]
    raise SystemExit("no rendering for %s" % t)


def write(outdir, name, table, **options):
    path = os.path.join(outdir, name + ".parquet")
    pq.write_table(table, path, **options)
    read = pq.read_table(path, use_threads=False)
    expected = {"rows": read.num_rows, "columns": {f.name: render_column(read.column(f.name).combine_chunks()) for f in read.schema}}
    with open(os.path.join(outdir, name + ".expected.json"), "w") as handle:
        json.dump(expected, handle)


def maybe_null(rng, values, share=0.15):
    return [None if rng.random() < share else v for v in values]


def wide_table(rng, rows=ROWS):
    """Every type the reader supports, most of them OPTIONAL with nulls."""
    sites = ["site-%d" % i for i in range(7)] + ["Zürich-Ost", "東京"]
    base = 1_767_225_600  # 2026-01-01T00:00:00Z
    seconds = [base + 300 * i for i in range(rows)]
    dec = decimal.Decimal
    columns = {
        "site": pa.array(maybe_null(rng, [rng.choice(sites) for _ in range(rows)]), pa.string()),
        "device_required": pa.array(["dev-%d" % rng.randrange(40) for _ in range(rows)], pa.string()),
        "note": pa.array(maybe_null(rng, ["n%x" % rng.getrandbits(48) for _ in range(rows)], 0.5), pa.string()),
        "raw": pa.array(maybe_null(rng, [bytes(rng.getrandbits(8) for _ in range(rng.randrange(6))) for _ in range(rows)]), pa.binary()),
        "fixed": pa.array(maybe_null(rng, [bytes(rng.getrandbits(8) for _ in range(4)) for _ in range(rows)]), pa.binary(4)),
        "flag": pa.array(maybe_null(rng, [rng.random() < 0.3 for _ in range(rows)]), pa.bool_()),
        "flag_required": pa.array([rng.random() < 0.5 for _ in range(rows)], pa.bool_()),
        "i8": pa.array(maybe_null(rng, [rng.randrange(-128, 128) for _ in range(rows)]), pa.int8()),
        "i16": pa.array(maybe_null(rng, [rng.randrange(-32768, 32768) for _ in range(rows)]), pa.int16()),
        "i32": pa.array(maybe_null(rng, [rng.randrange(-2**31, 2**31) for _ in range(rows)]), pa.int32()),
        "i64": pa.array(maybe_null(rng, [rng.randrange(-2**63, 2**63) for _ in range(rows)]), pa.int64()),
        "u8": pa.array(maybe_null(rng, [rng.randrange(0, 256) for _ in range(rows)]), pa.uint8()),
        "u16": pa.array(maybe_null(rng, [rng.randrange(0, 65536) for _ in range(rows)]), pa.uint16()),
        "u32": pa.array(maybe_null(rng, [rng.randrange(2**31, 2**32) for _ in range(rows)]), pa.uint32()),
        "u64": pa.array(maybe_null(rng, [rng.randrange(2**63, 2**64) for _ in range(rows)]), pa.uint64()),
        "f32": pa.array(maybe_null(rng, [rng.uniform(-1e6, 1e6) for _ in range(rows)]), pa.float32()),
        "f64": pa.array(maybe_null(rng, [rng.uniform(-1e9, 1e9) for _ in range(rows - 3)] + [float("nan"), float("inf"), -0.0]), pa.float64()),
        "energy_required": pa.array([round(rng.uniform(0, 5000), 3) for _ in range(rows)], pa.float64()),
        "day": pa.array(maybe_null(rng, [rng.randrange(-1000, 30000) for _ in range(rows)]), pa.date32()),
        "ts_ms_utc": pa.array(maybe_null(rng, [s * 1000 for s in seconds]), pa.timestamp("ms", tz="UTC")),
        "ts_us_utc": pa.array(maybe_null(rng, [s * 1_000_000 + rng.randrange(1000) for s in seconds]), pa.timestamp("us", tz="UTC")),
        "ts_ns_utc": pa.array(maybe_null(rng, [s * 10**9 + rng.randrange(10**9) for s in seconds]), pa.timestamp("ns", tz="UTC")),
        "ts_ms_local": pa.array(maybe_null(rng, [s * 1000 for s in seconds]), pa.timestamp("ms")),
        "ts_us_local": pa.array(maybe_null(rng, [s * 1_000_000 for s in seconds]), pa.timestamp("us")),
        "ts_ns_local": pa.array(maybe_null(rng, [s * 10**9 for s in seconds]), pa.timestamp("ns")),
        "dec_9_2": pa.array(maybe_null(rng, [dec(rng.randrange(-10**9 + 1, 10**9)).scaleb(-2) for _ in range(rows)]), pa.decimal128(9, 2)),
        "dec_18_4": pa.array(maybe_null(rng, [dec(rng.randrange(-10**18 + 1, 10**18)).scaleb(-4) for _ in range(rows)]), pa.decimal128(18, 4)),
        "dec_38_0": pa.array(maybe_null(rng, [dec(rng.randrange(-10**38 + 1, 10**38)) for _ in range(rows)]), pa.decimal128(38, 0)),
        "dec_38_10": pa.array(maybe_null(rng, [dec(rng.randrange(-10**38 + 1, 10**38)).scaleb(-10) for _ in range(rows)]), pa.decimal128(38, 10)),
        "all_null": pa.array([None] * rows, pa.float64()),
    }
    return pa.table(columns)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(20261129)
    wide = wide_table(rng)
    small_pages = dict(row_group_size=1000, data_page_size=4096, write_batch_size=256)

    # Every codec x dictionary on/off x data page v1/v2, several row groups and pages.
    for codec in ["NONE", "SNAPPY", "GZIP", "ZSTD"]:
        for dictionary in [True, False]:
            for version in ["1.0", "2.0"]:
                name = "wide_%s_%s_v%s" % (codec.lower(), "dict" if dictionary else "plain", version[0])
                write(outdir, name, wide, compression=codec, use_dictionary=dictionary, data_page_version=version, **small_pages)

    # Decimals on INT32/INT64 (store_decimal_as_integer) as well as FIXED_LEN_BYTE_ARRAY.
    write(outdir, "decimal_as_integer", wide.select(["dec_9_2", "dec_18_4", "dec_38_0"]), store_decimal_as_integer=True, **small_pages)
    # The legacy INT96 timestamps (Impala, Hive, older Spark).
    write(outdir, "int96", wide.select(["ts_ns_utc", "ts_us_local", "site"]), use_deprecated_int96_timestamps=True, **small_pages)
    # The non-default encodings (parquet-mr v2 writers, Spark with v2 enabled).
    encodings = wide.select(["i32", "i64", "u64", "note", "site", "raw", "f32", "f64", "fixed", "ts_us_utc", "dec_38_10"])
    for version in ["1.0", "2.0"]:
        write(outdir, "delta_v%s" % version[0], encodings, use_dictionary=False, data_page_version=version, compression="SNAPPY",
              column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "u64": "DELTA_BINARY_PACKED",
                               "ts_us_utc": "DELTA_BINARY_PACKED", "note": "DELTA_LENGTH_BYTE_ARRAY", "site": "DELTA_BYTE_ARRAY",
                               "raw": "DELTA_BYTE_ARRAY", "fixed": "DELTA_BYTE_ARRAY", "dec_38_10": "DELTA_BYTE_ARRAY",
                               "f32": "BYTE_STREAM_SPLIT", "f64": "BYTE_STREAM_SPLIT"}, **small_pages)
    write(outdir, "byte_stream_split", wide.select(["i32", "i64", "f32", "f64", "fixed"]), use_dictionary=False,
          column_encoding="BYTE_STREAM_SPLIT", compression="ZSTD", **small_pages)
    # A dictionary that overflows: the chunk switches to PLAIN pages part way.
    write(outdir, "dictionary_overflow", wide.select(["note", "i64", "site"]), dictionary_pagesize_limit=2048, **small_pages)
    # Zero rows, and a file whose only row group is empty.
    write(outdir, "zero_rows", wide.slice(0, 0))
    # One big page per column, the default writer settings.
    write(outdir, "defaults", wide)
    # Snowflake-like unloads: upper-case names, NUMBER as DECIMAL with a physical type that
    # differs between two files of one unload, TIMESTAMP_NTZ in nanoseconds and milliseconds.
    site = pa.array(["SITE-%d" % (i % 3) for i in range(ROWS)])
    device = pa.array(["INV-%d" % (i % 5) for i in range(ROWS)])
    when = [1_767_225_600 + 300 * (i // 15) for i in range(ROWS)]
    energy = pa.array([decimal.Decimal(rng.randrange(0, 10**7)).scaleb(-3) for _ in range(ROWS)], pa.decimal128(12, 3))
    snowflake = {
        "EXTERNAL_SITE_ID": site, "EXTERNAL_DEVICE_ID": device,
        "TIMESTAMP": pa.array([w * 10**9 for w in when], pa.timestamp("ns")),
        "READING_INTERVAL_SECONDS": pa.array([300] * ROWS, pa.decimal128(38, 0)),
        "ENERGY_WH": energy,
        "POWER_W": pa.array(maybe_null(rng, [rng.uniform(0, 9000) for _ in range(ROWS)]), pa.float64()),
    }
    write(outdir, "snowflake_unload_0", pa.table(snowflake), compression="SNAPPY", row_group_size=1000)
    snowflake["TIMESTAMP"] = pa.array([w * 1000 for w in when], pa.timestamp("ms"))
    snowflake["READING_INTERVAL_SECONDS"] = pa.array([300] * ROWS, pa.decimal128(3, 0))
    write(outdir, "snowflake_unload_1", pa.table(snowflake), compression="SNAPPY", store_decimal_as_integer=True)


if __name__ == "__main__":
    main(sys.argv[1])
