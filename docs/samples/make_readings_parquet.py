#!/usr/bin/env python3
"""Writes readings.parquet: the readings of readings.csv as a Snowflake unload would hold them
(COPY INTO @stage ... FILE_FORMAT = (TYPE = PARQUET) HEADER = TRUE): upper-case column names,
NUMBER columns as DECIMAL, TIMESTAMP_NTZ (UTC wall-clock, no zone), Snappy.

    python3 docs/samples/make_readings_parquet.py      (needs pyarrow)
"""
import datetime
import decimal
import os

import pyarrow as pa
import pyarrow.parquet as pq

utc = datetime.datetime
table = pa.table({
    "EXTERNAL_SITE_ID": pa.array(["site-7"] * 4),
    "EXTERNAL_DEVICE_ID": pa.array(["INV-001", "INV-001", "INV-002", "site"]),
    # 07:15+01:00 in the CSV is 06:15 UTC; TIMESTAMP_NTZ holds UTC wall-clock time.
    "TIMESTAMP": pa.array([utc(2026, 3, 1, 6, 0), utc(2026, 3, 1, 6, 15), utc(2026, 3, 1, 6, 15), utc(2026, 3, 1, 6, 0)], pa.timestamp("ns")),
    "READING_INTERVAL_SECONDS": pa.array([decimal.Decimal(n) for n in [900, 900, 900, 3600]], pa.decimal128(38, 0)),
    "ENERGY_WH": pa.array([decimal.Decimal("1250.50"), decimal.Decimal("1310.00"), None, decimal.Decimal("4800.25")], pa.decimal128(12, 2)),
    "POWER_W": pa.array([5002.0, 5240.0, None, 4800.25]),
    "IRRADIANCE_WM2": pa.array([412.5, None, None, None]),
    "TEMPERATURE_C": pa.array([18.25, 18.5, None, None]),
    "QUALITY": pa.array(["measured", "measured", "missing", "estimated"]),
    "INVERTER_MODE": pa.array(["MPPT", None, None, "derived, from 15-min data"]),
})
pq.write_table(table, os.path.join(os.path.dirname(os.path.abspath(__file__)), "readings.parquet"), compression="SNAPPY")
