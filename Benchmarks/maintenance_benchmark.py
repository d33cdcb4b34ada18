#!/usr/bin/env python3
"""The maintenance function's run time for one day of 15-minute readings from many meters.

usage: maintenance_benchmark.py MAINTENANCE METERS   (DATABASE_URL set; meterlake beside MAINTENANCE)

Loads one UTC day (yesterday) of 96 readings for each of METERS meters straight into PostgreSQL
with one dirty range per meter (what the loader records for such a file), then times:
  baseline     the same hourly aggregation as one plain GROUP BY query through psql (the least
               the database must do to read the day once)
  maintenance  the release maintenance binary on a scheduled event (local invocation): hourly,
               daily and monthly aggregates, finalising, partitions, credential watch
and prints both, their ratio, and checks that `meterlake aggregates verify` finds no difference.
"""
import os, subprocess, sys, time

maintenance, meters = sys.argv[1], int(sys.argv[2])
database = os.environ["DATABASE_URL"]
meterlake = os.path.join(os.path.dirname(maintenance), "meterlake")
schema = "maintenance_bench"


def psql(sql, url=database):
    return subprocess.run(["psql", url, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.strip()


psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
url = database + ("&" if "?" in database else "?") + f"options=-csearch_path%3D{schema}"
env = dict(os.environ, DATABASE_URL=url, AWS_LAMBDA_LOG_LEVEL="WARN")
subprocess.run([meterlake, "migrate"], env=env, check=True, capture_output=True)
subprocess.run([meterlake, "partitions"], env=env, check=True, capture_output=True)
day = "date_trunc('day', now() - interval '1 day', 'UTC')"
psql(f"""
INSERT INTO organization VALUES (42, 'Bench');
INSERT INTO meter (id, organization_id, data_source_id, external_site_id, external_device_id)
SELECT n, 42, 6, 'site-' || (n / 10), 'inv-' || n FROM generate_series(1, {meters}) AS n;
INSERT INTO meter_reading (meter_id, organization_id, "timestamp", reading_interval_seconds, energy_wh, power_w, quality, ingested_at)
SELECT m, 42, {day} + make_interval(mins => 15 * q), 900, (m + q) % 250, ((m + q) % 250) * 4,
       CASE WHEN q % 37 = 0 THEN 'missing' ELSE 'measured' END, now()
FROM generate_series(1, {meters}) AS m, generate_series(0, 95) AS q;
UPDATE meter_reading SET energy_wh = NULL, power_w = NULL WHERE quality = 'missing';
INSERT INTO aggregate_dirty (meter_id, first_hour, last_hour) SELECT n, {day}, {day} + interval '23 hours' FROM generate_series(1, {meters}) AS n;
ANALYZE;""", url)

started = time.monotonic()
psql(f"""SELECT count(*) FROM (SELECT meter_id, date_trunc('hour', "timestamp", 'UTC'), sum(energy_wh), count(*)
         FROM meter_reading WHERE "timestamp" >= {day} AND "timestamp" < {day} + interval '1 day' GROUP BY 1, 2) h""", url)
baseline = time.monotonic() - started

with open(f"/tmp/{schema}-event.json", "w") as handle:
    handle.write('{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}')
started = time.monotonic()
out = subprocess.run([maintenance, "--event", f"/tmp/{schema}-event.json"], env=env, check=True, capture_output=True, text=True).stdout
elapsed = time.monotonic() - started
verify = subprocess.run([meterlake, "aggregates", "verify"], env=env, capture_output=True, text=True)
psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

print(f"maintenance: one UTC day of 15-minute readings from {meters} meters ({meters * 96} readings, {meters} dirty ranges)")
print(f"  baseline (one GROUP BY of the day via psql)  {baseline:6.2f} s")
print(f"  maintenance run (release, cold start)         {elapsed:6.2f} s   ratio {elapsed / baseline:.1f}   (goal < 10 s)")
print(f"  {out.strip()[:160]}…")
print(f"  {verify.stdout.strip() or verify.stderr.strip()[:300]}")
