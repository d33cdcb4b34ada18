#!/usr/bin/env python3
"""A minimal Lambda Runtime API for build.sh's bundle check (stdlib only, loopback only).

usage: fake_runtime_api.py PORT_FILE EVENT_JSON [EVENT_JSON ...]
Serves the events in order to GET /2018-06-01/runtime/invocation/next, prints one JSON line per
outcome ({"id", "kind": "response"|"error", "type", "body"}) and exits once every event has an
outcome (or after 60 s). The port it listens on is written to PORT_FILE.
"""
import http.server, json, sys, threading

events = sys.argv[2:]
outcomes = []
lock = threading.Condition()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b'{"status":"OK"}'):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            if self.server.served >= len(events):
                lock.wait(5)
                self.reply(500, b'{"errorMessage":"no more events"}')
                return
            body = events[self.server.served].encode()
            self.server.served += 1
            request_id = "check-%d" % self.server.served
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-central-1:000000000000:function:check")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        parts = self.path.strip("/").split("/")
        kind = parts[-1]
        with lock:
            outcomes.append({"id": parts[-2] if len(parts) > 1 else "", "kind": kind,
                             "type": self.headers.get("Lambda-Runtime-Function-Error-Type"), "body": body})
            lock.notify_all()
        self.reply(202)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.served = 0
with open(sys.argv[1], "w") as handle:
    handle.write(str(server.server_address[1]))
threading.Thread(target=server.serve_forever, daemon=True).start()
with lock:
    lock.wait_for(lambda: len(outcomes) >= len(events), timeout=60)
for outcome in outcomes:
    print(json.dumps(outcome))
sys.exit(0 if len(outcomes) >= len(events) else 1)
