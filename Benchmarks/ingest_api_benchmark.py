#!/usr/bin/env python3
"""The ingest API's cold start and per-request latency, through a local Runtime API.

usage: ingest_api_benchmark.py INGEST_API VALIDATOR REQUESTS   (DATABASE_URL set; meterlake beside INGEST_API)

Measures, on the release binaries:
  init       from spawning the function to its first poll of /next (configuration, zone database,
             JWT verifier): its ratio to the validator's own init, measured the same way here
  liveness   GET /health (no I/O): the baseline for a request
  status     GET /uploads/status of one key among 20,000 ingestion_log rows (token verified, one
             indexed query on the kept connection, a HEAD on the lake for a pending key not needed)
and prints p50/p90 of each, and status's ratio to liveness. Times are taken by the Runtime API:
from handing out the event to receiving the response, so they include the runtime loop's own
HTTP round trips (what Lambda bills), not the network to a client.
"""
import base64, hashlib, hmac, http.server, json, os, queue, statistics, subprocess, sys, tempfile, threading, time, uuid

ingest_api, validator, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
database = os.environ["DATABASE_URL"]


def psql(sql):
    return subprocess.run(["psql", database, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.strip()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


secret = "bench-jwt-secret-of-at-least-32-bytes!"
header = b64(b'{"alg":"HS256","typ":"JWT"}')
claims = b64(json.dumps({"sub": "bench", "aud": "authenticated", "exp": int(time.time()) + 3600, "role": "authenticated",
                         "app_metadata": {"organization_id": 42}}).encode())
token = f"{header}.{claims}." + b64(hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())


class RuntimeAPI(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.events = queue.Queue()
        self.first_poll = None
        self.served = {}
        self.done = {}
        self.lock = threading.Condition()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer, no Nagle: a response split into header and body segments would wait
    # for a delayed ACK (about 40 ms) and measure TCP, not the function.
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        server = self.server
        with server.lock:
            if server.first_poll is None:
                server.first_poll = time.monotonic()
                server.lock.notify_all()
        request_id, body = server.events.get()
        with server.lock:
            server.served[request_id] = time.monotonic()
        self.answer(200, [("Lambda-Runtime-Aws-Request-Id", request_id),
                          ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000)),
                          ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-central-1:0:function:bench")], body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        request_id = self.path.split("/")[-2]
        with self.server.lock:
            self.server.done[request_id] = (time.monotonic(), body)
            self.server.lock.notify_all()
        self.answer(202, [])


def start(binary, env):
    api = RuntimeAPI()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    spawned = time.monotonic()
    process = subprocess.Popen([binary], env=dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with api.lock:
        while api.first_poll is None:
            if not api.lock.wait(30):
                raise SystemExit(f"{binary} never polled /next")
    return api, process, (api.first_poll - spawned) * 1000


def invoke(api, event):
    request_id = str(uuid.uuid4())
    api.events.put((request_id, json.dumps(event).encode()))
    with api.lock:
        while request_id not in api.done:
            if not api.lock.wait(30):
                raise SystemExit("no response")
        finished, body = api.done[request_id]
        return (finished - api.served[request_id]) * 1000, json.loads(body)


def url_event(path, query=""):
    return {"version": "2.0", "rawPath": path, "rawQueryString": query, "headers": {"authorization": "Bearer " + token},
            "requestContext": {"requestId": "r", "http": {"method": "GET", "path": path}}, "isBase64Encoded": False}


scratch = tempfile.mkdtemp(prefix="meterlake-api-bench.")
schema = "api_bench"
psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
url = database + ("&" if "?" in database else "?") + f"options=-csearch_path%3D{schema}"
env = dict(os.environ, DATABASE_URL=url, METERLAKE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(),
           METERLAKE_LAKE_DIR=f"{scratch}/lake", METERLAKE_JWT_SECRET=secret, AWS_LAMBDA_LOG_LEVEL="WARN",
           AWS_LAMBDA_FUNCTION_NAME="bench")
os.makedirs(f"{scratch}/lake")
meterlake = os.path.join(os.path.dirname(ingest_api), "meterlake")
subprocess.run([meterlake, "migrate"], env=env, check=True, capture_output=True)
psql(f"""INSERT INTO {schema}.organization VALUES (42, 'Bench');
INSERT INTO {schema}.ingestion_log (bucket, key, size, sha256, data_source_id, organization_id, status, rows_processed, rows_loaded,
    destination, finished_at)
SELECT 'lake', 'raw/manual/42/2026-12-0' || (n % 9 + 1) || '/file-' || n || '.csv', 1000, md5(n::text) || md5((n + 1)::text), 6, 42,
       'validated', 96, 96, 'validated/x/' || n, now() - make_interval(secs => n)
FROM generate_series(1, 20000) AS n; ANALYZE {schema}.ingestion_log;""")
key = "raw/manual/42/2026-12-07/file-12345.csv"  # 12345 % 9 + 1 = 7

inits = {"ingest-api": [], "validator": []}
for _ in range(5):
    for name, binary in (("validator", validator), ("ingest-api", ingest_api)):
        api, process, init = start(binary, env)
        inits[name].append(init)
        process.kill()
        process.wait()
        api.shutdown()

api, process, _ = start(ingest_api, env)
try:
    for _ in range(20):  # warm: the connection is opened by the first status request
        invoke(api, url_event("/uploads/status", f"key={key}"))
    liveness, status = [], []
    for _ in range(requests):
        elapsed, answer = invoke(api, url_event("/health"))
        liveness.append(elapsed)
        elapsed, answer = invoke(api, url_event("/uploads/status", f"key={key}"))
        assert answer["statusCode"] == 200 and json.loads(answer["body"])["status"] == "validated", answer
        status.append(elapsed)
finally:
    process.kill()
    api.shutdown()
    psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def p(values, q):
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


init_api, init_validator = statistics.median(inits["ingest-api"]), statistics.median(inits["validator"])
print("ingest-api: cold start and per-request latency (release build, local PostgreSQL, 20,000 ingestion_log rows)")
print(f"  init (spawn -> first /next), median of 5: {init_api:.1f} ms   (validator: {init_validator:.1f} ms; ratio {init_api / init_validator:.2f})")
print(f"  GET /health         p50 {p(liveness, 50):.2f} ms   p90 {p(liveness, 90):.2f} ms   ({requests} requests)")
print(f"  GET /uploads/status p50 {p(status, 50):.2f} ms   p90 {p(status, 90):.2f} ms   ratio to /health p50 {p(status, 50) / p(liveness, 50):.2f}")
