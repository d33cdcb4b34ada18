#!/usr/bin/env python3
"""100 SolarEdge sites, hourly, against the fake SolarEdge (Tools/fake_vendors.py).

usage: fetcher_benchmark.py FETCHER SITES LATENCY_MS   (DATABASE_URL set; meterlake beside FETCHER)

Measures, with the fake answering every call after LATENCY_MS (a real vendor's round trip):
  baseline   the same calls the fetcher makes, sent one after another by urllib: the time the
             vendor alone takes for them
  first run  every site never synced (from local midnight of the previous day)
  hourly run the steady state: every site's cursor one hour ago
and prints each run's wall time, its ratio to the baseline, the calls per site, and the calls per
site-day an hourly schedule makes against SolarEdge's 300.
"""
import base64, json, os, subprocess, sys, tempfile, time, urllib.parse, urllib.request

fetcher, sites, latency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
database = os.environ["DATABASE_URL"]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psql(sql):
    return subprocess.run(["psql", database, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.strip()


ids = [str(7_000_000 + n) for n in range(sites)]
config = {"solaredge": {"keys": {"bench-account-key": {"kind": "account", "sites": ids}},
                        "sites": {i: {"name": i, "timeZone": "Europe/Berlin", "sensors": True} for i in ids},
                        "quota_per_site": 100000, "quota_per_key": 100000},
          "latency_ms": latency}
scratch = tempfile.mkdtemp(prefix="meterlake-fetch-bench.")
with open(f"{scratch}/config.json", "w") as handle:
    json.dump(config, handle)
fake = subprocess.Popen([sys.executable, f"{root}/Tools/fake_vendors.py", "--port-file", f"{scratch}/port", "--config", f"{scratch}/config.json"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while not os.path.exists(f"{scratch}/port"):
        time.sleep(0.05)
    port = int(open(f"{scratch}/port").read())
    base = f"http://127.0.0.1:{port}/solaredge/"

    key = base64.b64encode(os.urandom(32)).decode()
    schema = "fetch_bench"
    psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    url = database + ("&" if "?" in database else "?") + f"options=-csearch_path%3D{schema}"
    env = dict(os.environ, DATABASE_URL=url, METERLAKE_ENCRYPTION_KEY=key, METERLAKE_LAKE_DIR=f"{scratch}/lake",
               SOLAREDGE_API_BASE_URL=base, AWS_LAMBDA_LOG_LEVEL="WARN")
    meterlake = os.path.join(os.path.dirname(fetcher), "meterlake")
    subprocess.run([meterlake, "migrate"], env=env, check=True, capture_output=True)
    psql(f"INSERT INTO {schema}.organization VALUES (42, 'Bench')")
    subprocess.run([meterlake, "credential", "add", "--org", "42", "--vendor", "solaredge"], env=env, check=True,
                   input=b'{"api_key": "bench-account-key"}', capture_output=True)
    with open(f"{scratch}/event.json", "w") as handle:
        handle.write('{"detail-type":"Scheduled Event","source":"aws.events"}')

    def run(label):
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/_control", data=b'{"reset_stats": true}', method="POST"))
        started = time.monotonic()
        out = subprocess.run([fetcher, "--event", f"{scratch}/event.json"], env=env, check=True, capture_output=True)
        elapsed = time.monotonic() - started
        answer = json.loads(out.stdout)
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats"))
        statuses = {}
        for site in answer["sites"]:
            statuses[site["status"]] = statuses.get(site["status"], 0) + 1
        return elapsed, stats["requests"], statuses

    first, first_requests, first_statuses = run("first")
    # The steady state: every cursor an hour ago (what the previous hourly run left).
    psql(f"UPDATE {schema}.integration_site SET sync_cursor = date_trunc('hour', now()) - interval '1 hour'")
    hourly, hourly_requests, hourly_statuses = run("hourly")

    # Baseline: the hourly run's own requests, replayed one by one with urllib.
    started = time.monotonic()
    for request in hourly_requests:
        query = dict(request["query"], api_key="bench-account-key")
        urllib.request.urlopen(f"http://127.0.0.1:{port}{request['path']}?{urllib.parse.urlencode(query)}").read()
    baseline = time.monotonic() - started

    per_site = (len(hourly_requests) - 1) / sites
    print(f"fetcher, {sites} SolarEdge sites, vendor latency {latency} ms per call (fake SolarEdge)")
    print(f"  baseline (the hourly run's {len(hourly_requests)} calls, one after another): {baseline:6.2f} s")
    print(f"  first run  (never synced):  {first:6.2f} s  {len(first_requests)} calls  {first_statuses}  ratio {first / baseline:5.2f}")
    print(f"  hourly run (steady state):  {hourly:6.2f} s  {len(hourly_requests)} calls  {hourly_statuses}  ratio {hourly / baseline:5.2f}")
    print(f"  calls per site and run: {per_site:.0f}; per site-day at 24 runs: {per_site * 24:.0f} of SolarEdge's 300;"
          f" per account key and day: 24 of 300")
finally:
    fake.terminate()
    psql("DROP SCHEMA IF EXISTS fetch_bench CASCADE")
