#!/usr/bin/env python3
"""Local fake SolarEdge and GoodWe clouds, built from vendor-apis.md (§1, §4, §5). Stdlib only.

usage: fake_vendors.py [--port N] [--port-file PATH] [--config JSON_FILE]

Serves, on 127.0.0.1:
  /solaredge/...           the SolarEdge Monitoring API v1 (api_key query parameter)
  /goodwe/api/...          the SEMS login host; data calls there answer 100001 (wrong region)
  /goodwe-eu/api/...       the regional API the login answer names
  /enphase/oauth/token, /enphase/api/v4/...   Enphase (Basic client auth, Bearer + key, rotation)
  /sma/auth/oauth2/token, /sma/v1/...          SMA (form client auth, 300 s tokens, 308 moves)
  /enphase/oauth/authorize, /sma/auth/oauth2/auth  consent pages: 302 with a code (or access_denied);
                           codes are single-use, bound to the redirect URI and the PKCE S256 challenge
  POST /_control           merge a JSON object into the configuration (see DEFAULTS)
  GET  /_stats             calls per path kind, per site and per day, the highest concurrency seen

The data is a pure function of the UTC instant, so tests can check every row exactly:
  SolarEdge energy(t) = 10 + (t // 900) % 50 Wh, power(t) = 4 * energy(t) W, for slots whose
  site-local hour is 5..20; other slots are null. Slots listed in `gaps` are null until released.
  Sensors: irradiance 100 + (t // 900) % 7, ambient 20.5 at the same daytime slots.
  GoodWe power(t) = 100 + ((t // 300) % 40) * 10 W at local hours 6..19, 0 at night, null at
  local 12:30; day Generation = 1.01 * the integrated curve, kWh (rounded to 2 decimals).
  Enphase enwh(end_at) = 5 + (end_at // 300) % 30 Wh, powr = 12 * enwh W, for intervals whose local
  start hour is 6..19; other intervals are absent. A meter's wh_del(end_at) = 20.5 + (end_at // 900) % 40
  for 15-minute intervals of the same hours. SMA energy(slot start t) = 3 + (t // 300) % 20 Wh,
  power = 12 * energy W, labelled by the interval's local END, for local start hours 6..19; nights absent.
Labels are the site-local wall times of each UTC slot (a fall-back hour appears twice, in
order; a spring-forward hour not at all), computed with Python's zoneinfo, independently of
the Swift code under test.
"""
import argparse, base64, datetime, hashlib, http.server, json, os, socket, sys, threading, time, urllib.parse, uuid
from zoneinfo import ZoneInfo

DEFAULTS = {
    "solaredge": {
        # api key -> {"kind": "account"|"site", "sites": [ids]}
        "keys": {"demo-account-key": {"kind": "account", "sites": ["3017452", "3017453"]}},
        # site id -> {"name", "timeZone", "sensors": bool}
        "sites": {
            "3017452": {"name": "Hofmann Scheune", "timeZone": "Europe/Berlin", "sensors": True},
            "3017453": {"name": "Weingut Sonnhalde", "timeZone": "Europe/Berlin", "sensors": False},
        },
        "quota_per_site": 300,
        "quota_per_key": 300,
        "max_concurrency": 3,
        # UTC instants (seconds) whose slots are null until removed from this list
        "gaps": [],
    },
    "goodwe": {
        # account -> {"password", "plants": [ids]}
        "accounts": {"demo@example.org": {"password": "demo-password", "plants": ["6a1e8c2f-0000-4000-8000-000000000001"]}},
        "plants": {"6a1e8c2f-0000-4000-8000-000000000001": {"name": "Demo Plant", "timeZone": "Europe/Berlin"}},
        # a token stops working after this many data calls (then 100002)
        "token_calls": 1000,
        # after this many data calls in total, answer GY0429
        "rate_limit_after": 1000000,
    },
    "enphase": {
        "client_id": "demo-enphase-client", "client_secret": "demo-enphase-secret", "api_key": "demo-enphase-key",
        # "meter": True gives a system a production meter (15-minute wh_del); others answer 422
        "systems": {"4123456": {"name": "Harbour View", "timezone": "Australia/Sydney", "meter": True}},
        # refresh token -> the systems its owner sees (a token used once is dead: rotation)
        "refresh_tokens": {"demo-enphase-refresh": ["4123456"]},
        "access_tokens": {"demo-enphase-access": {"systems": ["4123456"], "expires_at": 4102444800}},
        "access_lifetime": 86393,
        # the authorization-code flow: redirect URIs registered for the client (exact match), and
        # what the owner does on the consent page (grant the systems listed, or deny)
        "redirect_uris": ["http://127.0.0.1:3000/oauth/callback"],
        "consent": {"grant": True, "sees": ["4123456"]},
        # an access token stops working after this many data calls (401, as when it expires)
        "access_calls": 1000000,
        "revoked": False,
    },
    "sma": {
        "client_id": "demo-sma-client", "client_secret": "demo-sma-secret",
        "plants": {"8731046": {"name": "Weingut Sonnhalde", "timezone": "Europe/Berlin", "devices": ["8731051"]}},
        "refresh_tokens": {"demo-sma-refresh": ["8731046"]},
        "access_tokens": {"demo-sma-access": {"plants": ["8731046"], "expires_at": 4102444800}},
        "access_lifetime": 300,
        "redirect_uris": ["http://127.0.0.1:3000/oauth/callback"],
        "consent": {"grant": True, "sees": ["8731046"]},
        # old plant id -> new one: the old one answers 308 to the new one's path
        "moved": {},
        "revoked": False,
    },
    # [{"path": substring, "status": 503 | "drop": true, "times": N, "after": M, "body": text}]: the
    # next N requests whose path contains the substring, after M of them passed untouched, get the
    # status (with `body`, where {api_key} and {token} stand for the request's) or a dropped
    # connection; answered before any latency
    "faults": [],
    "latency_ms": 0,
}

config = json.loads(json.dumps(DEFAULTS))
lock = threading.Lock()
stats = {"calls": {}, "site_day": {}, "key_day": {}, "max_concurrency": 0, "logins": 0, "requests": [], "tokens": [],
         "refreshes": {"enphase": 0, "sma": 0}, "dead_refresh_used": {"enphase": 0, "sma": 0}, "code_exchanges": []}
codes = {}  # authorization code -> {"vendor", "client_id", "redirect_uri", "challenge", "method", "sees", "expires", "used", "issued"}
in_flight = {"count": 0}
tokens = {}  # token -> {"account", "calls"}
goodwe_calls = {"count": 0}


def merge(target, update):
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and key not in (
                "keys", "sites", "accounts", "plants", "systems", "refresh_tokens", "access_tokens", "moved"):
            merge(target[key], value)
        else:
            target[key] = value


def count(table, key):
    stats[table][key] = stats[table].get(key, 0) + 1
    return stats[table][key]


def local_labels(zone, first_local_date, last_local_date, step):
    """(label datetime naive, utc seconds) for every UTC slot of the local dates, in order."""
    tz = ZoneInfo(zone)
    start = datetime.datetime.combine(first_local_date, datetime.time(0), tzinfo=tz).astimezone(datetime.timezone.utc)
    end = datetime.datetime.combine(last_local_date + datetime.timedelta(days=1), datetime.time(0), tzinfo=tz).astimezone(datetime.timezone.utc)
    t = int(start.timestamp()) // step * step
    while t < int(end.timestamp()):
        local = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).astimezone(tz)
        yield local.replace(tzinfo=None), t
        t += step


def solaredge_energy(site, t):
    zone = config["solaredge"]["sites"][site]["timeZone"]
    hour = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).astimezone(ZoneInfo(zone)).hour
    if not 5 <= hour <= 20 or t in config["solaredge"]["gaps"] or t > time.time():
        return None
    return 10 + (t // 900) % 50


def goodwe_power(plant, t):
    zone = config["goodwe"]["plants"][plant]["timeZone"]
    local = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).astimezone(ZoneInfo(zone))
    if local.hour == 12 and local.minute == 30:
        return None
    if not 6 <= local.hour <= 19:
        return 0
    return 100 + ((t // 300) % 40) * 10


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def fault(self, path):
        with lock:
            for fault in config["faults"]:
                if fault.get("times", 0) > 0 and fault["path"] in path:
                    if fault.get("after", 0) > 0:
                        fault["after"] -= 1
                        continue
                    fault["times"] -= 1
                    return fault
        return None

    def handle_request(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path
        body = self.body() if method == "POST" else b""
        if path == "/_control" and method == "POST":
            with lock:
                merge(config, json.loads(body or b"{}"))
                if json.loads(body or b"{}").get("reset_stats"):
                    for table in ("calls", "site_day", "key_day"):
                        stats[table].clear()
                    stats["max_concurrency"] = 0
                    stats["logins"] = 0
                    stats["requests"].clear()
                    stats["refreshes"] = {"enphase": 0, "sma": 0}
                    stats["dead_refresh_used"] = {"enphase": 0, "sma": 0}
                    stats["code_exchanges"] = []
            return self.reply(200, {"ok": True})
        if path == "/_stats":
            with lock:
                live = {v: sorted(config[v]["refresh_tokens"]) for v in ("enphase", "sma")}
                return self.reply(200, dict(stats, live_refresh_tokens=live))
        with lock:
            in_flight["count"] += 1
            stats["max_concurrency"] = max(stats["max_concurrency"], in_flight["count"])
            concurrent = in_flight["count"]
            stats["requests"].append({"method": method, "path": path, "t": time.time(),
                                      "query": {k: v for k, v in query.items() if k not in ("api_key", "key", "refresh_token", "code", "code_verifier")}})
        try:
            fault = self.fault(path)
            if not fault and config["latency_ms"]:
                time.sleep(config["latency_ms"] / 1000)
            if fault and fault.get("drop"):
                # Headers, part of the body, then a dropped connection.
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"power\":")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault:
                body = fault.get("body", '{"message": "injected fault"}')
                try:
                    token = json.loads(self.headers.get("Token") or "{}").get("token") or ""
                except ValueError:
                    token = ""
                body = body.replace("{api_key}", query.get("api_key", "")).replace("{token}", token)
                return self.reply(fault.get("status", 503), body.encode())
            if path.startswith("/solaredge/"):
                return self.solaredge(path[len("/solaredge/"):], query, concurrent)
            if path.startswith("/enphase/"):
                return self.enphase(path[len("/enphase/"):], query)
            if path.startswith("/sma/"):
                return self.sma(path[len("/sma/"):], query, body)
            if path.startswith("/goodwe/api/") or path.startswith("/goodwe-eu/api/"):
                regional = path.startswith("/goodwe-eu/")
                return self.goodwe(path.split("/api/", 1)[1], body, regional)
            return self.reply(404, {"message": "not found"})
        finally:
            with lock:
                in_flight["count"] -= 1

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    # --- SolarEdge ---------------------------------------------------------------------------

    def solaredge(self, path, query, concurrent):
        se = config["solaredge"]
        key = query.get("api_key", "")
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        if key not in se["keys"]:
            return self.reply(403, b"Invalid token", "text/plain")
        if concurrent > se["max_concurrency"]:
            return self.reply(429, b"Too many concurrent requests", "text/plain")
        parts = path.split("/")
        with lock:
            count("calls", parts[0] if parts[0] != "site" else (parts[2] if len(parts) > 2 else "site"))
        if parts[:2] == ["sites", "list"]:
            with lock:
                if count("key_day", key + "|" + day) > se["quota_per_key"]:
                    return self.reply(429, b"Too many requests", "text/plain")
            if se["keys"][key]["kind"] != "account":
                return self.reply(403, b"Site key cannot list sites", "text/plain")
            ids = se["keys"][key]["sites"]
            start, size = int(query.get("startIndex", 0)), min(100, int(query.get("size", 100)))
            page = ids[start:start + size]
            sites = [{"id": int(i) if i.isdigit() else i, "name": se["sites"][i]["name"], "accountId": 58231, "status": "Active",
                      "peakPower": 9.9, "location": {"country": "Germany", "timeZone": se["sites"][i]["timeZone"], "countryCode": "DE"},
                      "publicSettings": {"isPublic": False}} for i in page]
            return self.reply(200, {"sites": {"count": len(ids), "site": sites}})
        if len(parts) < 3 or parts[0] != "site":
            return self.reply(404, b"Not found", "text/plain")
        site, kind = parts[1], parts[2]
        if site not in se["keys"][key]["sites"] or site not in se["sites"]:
            return self.reply(403, b"Forbidden", "text/plain")
        with lock:
            if count("site_day", site + "|" + day) > se["quota_per_site"]:
                return self.reply(429, b"Too many requests", "text/plain")
        zone = se["sites"][site]["timeZone"]
        parse_dt = lambda text: datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        if kind == "energy":
            if query.get("timeUnit") != "QUARTER_OF_AN_HOUR":
                return self.reply(403, b"unsupported timeUnit in this fake", "text/plain")
            first = datetime.date.fromisoformat(query["startDate"])
            last = datetime.date.fromisoformat(query["endDate"])
            if last < first or (last - first).days > 31 or last > add_month(first):
                return self.reply(403, b"Period too long", "text/plain")
            values = [{"date": label.strftime("%Y-%m-%d %H:%M:%S"), "value": solaredge_energy(site, t)}
                      for label, t in local_labels(zone, first, last, 900)]
            return self.reply(200, {"energy": {"timeUnit": "QUARTER_OF_AN_HOUR", "unit": "Wh", "measuredBy": "INVERTER", "values": values}})
        if kind == "power":
            first, last = parse_dt(query["startTime"]), parse_dt(query["endTime"])
            if last < first or last.date() > add_month(first.date()):
                return self.reply(403, b"Period too long", "text/plain")
            values = []
            for label, t in local_labels(zone, first.date(), last.date(), 900):
                if first <= label <= last:
                    energy = solaredge_energy(site, t)
                    values.append({"date": label.strftime("%Y-%m-%d %H:%M:%S"), "value": None if energy is None else energy * 4.0})
            return self.reply(200, {"power": {"timeUnit": "QUARTER_OF_AN_HOUR", "unit": "W", "values": values}})
        if kind == "sensors":
            first, last = parse_dt(query["startDate"]), parse_dt(query["endDate"])
            if last < first or (last - first).days >= 7 + 1:
                return self.reply(403, b"Period too long", "text/plain")
            if not se["sites"][site].get("sensors"):
                return self.reply(200, {"siteSensors": {"data": []}})
            telemetries = []
            for label, t in local_labels(zone, first.date(), last.date(), 900):
                if first <= label <= last and solaredge_energy(site, t) is not None:
                    telemetries.append({"date": label.strftime("%Y-%m-%d %H:%M:%S"), "ambientTemperature": 20.5,
                                        "moduleTemperature": 31.0, "windSpeed": 2.5, "globalHorizontalIrradiance": 100 + (t // 900) % 7})
            return self.reply(200, {"siteSensors": {"data": [{"connectedTo": "Gateway 1", "count": len(telemetries), "telemetries": telemetries}]}})
        if kind == "details":
            return self.reply(200, {"details": {"id": site, "name": se["sites"][site]["name"], "location": {"timeZone": zone}}})
        return self.reply(404, b"Not found", "text/plain")

    # --- Enphase -----------------------------------------------------------------------------

    def enphase(self, path, query):
        cfg = config["enphase"]
        if path == "oauth/authorize":
            return self.authorize("enphase", query)
        if path == "oauth/token":
            expected = "Basic " + base64.b64encode(f"{cfg['client_id']}:{cfg['client_secret']}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.reply(401, {"error": "unauthorized", "error_description": "Bad client credentials"})
            if query.get("grant_type") == "authorization_code":
                return self.code_grant("enphase", query, "systems")
            if query.get("grant_type") != "refresh_token":
                return self.reply(400, {"error": "unsupported_grant_type"})
            answer = rotate("enphase", query.get("refresh_token", ""), "systems")
            if not answer:
                return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            return self.reply(200, dict(answer, enl_uid="4418023", app_type="system"))
        if not path.startswith("api/v4/"):
            return self.reply(404, {"message": "Not Found", "code": 404})
        path = path[len("api/v4/"):]
        unauthorized = {"message": "Not Authorized", "details": "User is not authorized", "code": 401}
        if query.get("key") != cfg["api_key"]:
            return self.reply(401, dict(unauthorized, details="API Key -Client mismatch"))
        grant = access_of("enphase", bearer(self.headers))
        if not grant:
            return self.reply(401, unauthorized)
        with lock:
            count("calls", "enphase:" + path.split("?")[0])
        if path == "systems":
            page, size = int(query.get("page", 1)), min(100, int(query.get("size", 10)))
            ids = grant["systems"]
            chunk = ids[(page - 1) * size:page * size]
            return self.reply(200, {"total": len(ids), "current_page": page, "size": size, "count": len(chunk), "items": "systems",
                                    "systems": [{"system_id": int(i), "name": cfg["systems"][i]["name"], "timezone": cfg["systems"][i]["timezone"],
                                                 "status": "normal"} for i in chunk]})
        parts = path.split("/")
        if len(parts) == 4 and parts[0] == "systems" and parts[2:] == ["telemetry", "production_micro"]:
            system = parts[1]
            if system not in grant["systems"]:
                return self.reply(403, {"message": "Forbidden", "details": "Not authorized to access this resource", "code": 403})
            start = int(query.get("start_at", 0))
            zone = ZoneInfo(cfg["systems"][system]["timezone"])
            intervals = []
            end_at = start + 300
            while end_at <= min(start + 86400, time.time()):
                hour = datetime.datetime.fromtimestamp(end_at - 300, datetime.timezone.utc).astimezone(zone).hour
                if 6 <= hour <= 19:
                    enwh = 5 + (end_at // 300) % 30
                    intervals.append({"end_at": end_at, "devices_reporting": 10, "powr": enwh * 12, "enwh": enwh})
                end_at += 300
            return self.reply(200, {"system_id": int(system), "granularity": "day", "total_devices": 10, "start_at": start,
                                    "end_at": min(start + 86400, int(time.time())), "items": "intervals", "intervals": intervals,
                                    "meta": {"status": "normal"}})
        if len(parts) == 4 and parts[0] == "systems" and parts[2:] == ["telemetry", "production_meter"]:
            system = parts[1]
            if system not in grant["systems"]:
                return self.reply(403, {"message": "Forbidden", "details": "Not authorized to access this resource", "code": 403})
            if not cfg["systems"][system].get("meter"):
                return self.reply(422, {"message": "Unprocessable Entity", "details": "No production meter on this system", "code": 422})
            start = int(query.get("start_at", 0))
            zone = ZoneInfo(cfg["systems"][system]["timezone"])
            intervals = []
            end_at = (start // 900 + 1) * 900
            while end_at <= min(start + 86400, time.time()):
                hour = datetime.datetime.fromtimestamp(end_at - 900, datetime.timezone.utc).astimezone(zone).hour
                if 6 <= hour <= 19:
                    intervals.append({"end_at": end_at, "devices_reporting": 1, "wh_del": 20.5 + (end_at // 900) % 40})
                end_at += 900
            return self.reply(200, {"system_id": int(system), "granularity": "day", "total_devices": 1, "start_at": start,
                                    "end_at": min(start + 86400, int(time.time())), "items": "intervals", "intervals": intervals,
                                    "meta": {"status": "normal"}})
        return self.reply(404, {"message": "Not Found", "code": 404})

    # --- The authorization-code flow (RFC 6749 4.1, PKCE RFC 7636), shared by Enphase and SMA ---

    def authorize(self, vendor, query):
        """The consent page, decided by config[vendor]["consent"]: 302 to the redirect URI with a
        code (or error=access_denied). An unknown client or redirect URI gets an error page and no
        redirect, as RFC 6749 4.1.2.1 requires."""
        cfg = config[vendor]
        if query.get("client_id") != cfg["client_id"]:
            return self.reply(400, b"<h1>Unknown client</h1>", "text/html")
        redirect = query.get("redirect_uri", "")
        if redirect not in cfg["redirect_uris"]:
            return self.reply(400, b"<h1>Invalid redirect_uri</h1>", "text/html")
        if query.get("response_type") != "code":
            return self.redirect(redirect, {"error": "unsupported_response_type", "state": query.get("state", "")})
        method = query.get("code_challenge_method", "plain" if query.get("code_challenge") else None)
        if method not in (None, "S256"):
            return self.redirect(redirect, {"error": "invalid_request", "error_description": "S256 only", "state": query.get("state", "")})
        consent = cfg["consent"]
        if not consent.get("grant"):
            return self.redirect(redirect, {"error": "access_denied", "error_description": "The owner declined", "state": query.get("state", "")})
        code = f"{vendor}-code-{uuid.uuid4().hex}"
        with lock:
            codes[code] = {"vendor": vendor, "redirect_uri": redirect, "challenge": query.get("code_challenge"), "sees": list(consent["sees"]),
                           "expires": time.time() + 600, "used": False, "issued": [], "refresh": consent.get("issue_refresh", True)}
        return self.redirect(redirect, {"code": code, "state": query.get("state", "")})

    def redirect(self, target, parameters):
        self.send_response(302)
        self.send_header("Location", target + ("&" if "?" in target else "?") + urllib.parse.urlencode(parameters))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def code_grant(self, vendor, params, sees):
        """Redeems a code once: same redirect URI, a verifier matching the S256 challenge. A code
        presented twice is refused and the tokens it issued are revoked (RFC 6749 4.1.2)."""
        cfg = config[vendor]
        with lock:
            grant = codes.get(params.get("code", ""))
            verifier = params.get("code_verifier")
            entry = {"vendor": vendor, "redirect_uri": params.get("redirect_uri"), "verifier_sent": bool(verifier)}
            stats["code_exchanges"].append(entry)
            refusal = None
            if not grant or grant["vendor"] != vendor:
                refusal = "unknown code"
            elif grant["used"]:
                refusal = "code already used"
                for access, refresh in grant["issued"]:
                    cfg["access_tokens"].pop(access, None)
                    cfg["refresh_tokens"].pop(refresh, None)
            elif grant["expires"] < time.time():
                refusal = "code expired"
            elif params.get("redirect_uri") != grant["redirect_uri"]:
                refusal = "redirect_uri mismatch"
            elif grant["challenge"] and (not verifier or base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() != grant["challenge"]):
                refusal = "PKCE verification failed"
            if grant:
                grant["used"] = True
            entry["outcome"] = refusal or "issued"
            if refusal:
                return self.reply(400, {"error": "invalid_grant", "error_description": refusal})
            access, refresh = f"{vendor}-at-{uuid.uuid4().hex}", f"{vendor}-rt-{uuid.uuid4().hex}"
            cfg["refresh_tokens"][refresh] = grant["sees"]
            cfg["access_tokens"][access] = {sees: grant["sees"], "expires_at": time.time() + cfg["access_lifetime"], "calls": 0}
            grant["issued"].append((access, refresh))
            entry["access_token"], entry["refresh_token"] = access, refresh
        answer = {"access_token": access, "token_type": "bearer", "refresh_token": refresh, "expires_in": cfg["access_lifetime"], "scope": "read write"}
        if not grant["refresh"]:
            del answer["refresh_token"]
        return self.reply(200, answer)

    # --- SMA ---------------------------------------------------------------------------------

    def sma(self, path, query, body):
        cfg = config["sma"]
        if path == "auth/oauth2/auth":
            return self.authorize("sma", query)
        if path == "auth/oauth2/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("client_id") != cfg["client_id"] or form.get("client_secret") != cfg["client_secret"]:
                return self.reply(401, {"error": "invalid_client", "error_description": "Invalid client credentials"})
            if form.get("grant_type") == "authorization_code":
                return self.code_grant("sma", form, "plants")
            answer = rotate("sma", form.get("refresh_token", ""), "plants")
            if not answer:
                return self.reply(400, {"error": "invalid_grant", "error_description": "Token is not active"})
            return self.reply(200, dict(answer, refresh_expires_in=0, token_type="Bearer"))
        if not path.startswith("v1/"):
            return self.reply(404, {"error": "not found"})
        path = path[len("v1/"):]
        grant = access_of("sma", bearer(self.headers))
        if not grant:
            return self.reply(401, {"error": "invalid_token"})
        parts = path.split("/")
        with lock:
            count("calls", "sma:" + "/".join(parts[:1] + parts[2:]))
        if len(parts) >= 2 and parts[0] == "plants" and parts[1] in cfg["moved"]:
            moved = "/".join(["plants", cfg["moved"][parts[1]]] + parts[2:])
            location = f"/sma/v1/{moved}" + (("?" + urllib.parse.urlencode(query)) if query else "")
            self.send_response(308)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "plants":
            return self.reply(200, {"plants": [{"plantId": p, "name": cfg["plants"][p]["name"], "timezone": cfg["plants"][p]["timezone"]}
                                               for p in grant["plants"] if p in cfg["plants"]]})
        if len(parts) == 3 and parts[0] == "plants" and parts[2] == "devices":
            plant = parts[1]
            owner = plant in grant["plants"] or any(new == plant and old in grant["plants"] for old, new in cfg["moved"].items())
            if plant not in cfg["plants"] or not owner:
                return self.reply(403, {"error": "forbidden"})
            return self.reply(200, {"devices": [{"deviceId": d, "name": "WR", "type": "Solar Inverters", "product": "STP 25000TL-30",
                                                 "isActive": True} for d in cfg["plants"][plant]["devices"]]})
        if len(parts) == 6 and parts[0] == "devices" and parts[2:5] == ["measurements", "sets", "EnergyAndPowerPv"] and parts[5] == "Day":
            device = parts[1]
            plant = next((p for p, v in cfg["plants"].items() if device in v["devices"]), None)
            if not plant:
                return self.reply(404, {"error": "unknown device"})
            zone = cfg["plants"][plant]["timezone"]
            date = datetime.date.fromisoformat(query["Date"])
            energy = query.get("ReturnEnergyValues") == "true"
            entries = []
            for label, t in local_labels(zone, date, date, 300):
                if t + 300 > time.time():
                    break
                if 6 <= label.hour <= 19:
                    wh = 3 + (t // 300) % 20
                    end_label = label + datetime.timedelta(minutes=5)
                    entries.append({"time": end_label.strftime("%Y-%m-%dT%H:%M:%S"), "pvGeneration": float(wh if energy else wh * 12)})
            return self.reply(200, {"plant": {"plantId": plant, "name": cfg["plants"][plant]["name"], "timezone": zone},
                                    "device": {"deviceId": device, "name": "WR", "timezone": zone},
                                    "setType": "EnergyAndPowerPv", "resolution": "FiveMinutes", "set": entries})
        return self.reply(404, {"error": "not found"})

    # --- GoodWe ------------------------------------------------------------------------------

    def goodwe(self, path, body, regional):
        gw = config["goodwe"]
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self.reply(200, {"hasError": True, "code": 100005, "msg": "bad request", "data": None})
        if path.lower() == "v2/common/crosslogin":
            account = gw["accounts"].get(request.get("account"))
            if not account or account["password"] != request.get("pwd"):
                return self.reply(200, {"hasError": True, "code": 100005, "msg": "Email or password error.", "data": None})
            token = uuid.uuid4().hex
            with lock:
                tokens[token] = {"account": request["account"], "calls": 0}
                stats["logins"] += 1
                stats["tokens"].append(token)
            host = self.headers.get("Host")
            return self.reply(200, {"hasError": False, "code": 0, "msg": "Successful",
                                    "data": {"uid": str(uuid.uuid4()), "timestamp": int(time.time() * 1000), "token": token,
                                             "client": "ios", "version": "v2.1.0", "language": "en"},
                                    "components": {"para": None, "langVer": 179, "timeSpan": 0, "api": None},
                                    "api": f"http://{host}/goodwe-eu/api/"})
        try:
            token = json.loads(self.headers.get("Token") or "{}").get("token")
        except ValueError:
            token = None
        if not regional or token not in tokens:
            return self.reply(200, {"hasError": True, "code": 100001, "msg": "No access, please log in.", "data": None})
        with lock:
            session = tokens[token]
            session["calls"] += 1
            goodwe_calls["count"] += 1
            count("calls", "goodwe:" + path)
            if goodwe_calls["count"] > gw["rate_limit_after"]:
                return self.reply(200, {"hasError": True, "code": "GY0429", "msg": "Too many requests", "data": None})
            if session["calls"] > gw["token_calls"]:
                return self.reply(200, {"hasError": True, "code": 100002, "msg": "The authorization has expired, please login again.", "data": None})
        plants = gw["accounts"][session["account"]]["plants"]
        if path == "PowerStationMonitor/QueryPowerStationMonitor":
            index, size = int(request.get("page_index", 1)), int(request.get("page_size", 50))
            page = plants[(index - 1) * size:index * size]
            return self.reply(200, {"hasError": False, "code": 0, "msg": "Successful", "data": {"record": len(plants), "list": [
                {"powerstation_id": p, "stationname": gw["plants"][p]["name"], "status": 1, "capacity": 10.0} for p in page]}})
        if path == "v2/Charts/GetPlantPowerChart":
            plant = request.get("id")
            if plant not in plants:
                return self.reply(200, {"hasError": True, "code": 100003, "msg": "No access to this plant", "data": None})
            date = datetime.date.fromisoformat(request["date"])
            points, total = [], 0.0
            for label, t in local_labels(gw["plants"][plant]["timeZone"], date, date, 300):
                if t > time.time():
                    break
                power = goodwe_power(plant, t)
                points.append({"x": label.strftime("%H:%M"), "y": power, "z": None})
                total += (power or 0) * 300 / 3600
            return self.reply(200, {"hasError": False, "code": 0, "msg": "Successful", "data": {
                "generateData": [{"key": "Generation", "value": round(total * 1.01 / 1000, 2)}, {"key": "Income", "value": 1.0}],
                "lines": [{"key": "PCurve_Power_PV", "label": "PV", "isActive": True, "unit": "W", "xy": points},
                          {"key": "PCurve_Power_SOC", "label": "SOC", "isActive": False, "unit": "%", "xy": []}]}})
        return self.reply(200, {"hasError": True, "code": 404, "msg": "unknown function", "data": None})


def bearer(headers):
    value = headers.get("Authorization") or ""
    return value[7:] if value.startswith("Bearer ") else None


def rotate(vendor, refresh, sees):
    """A refresh grant: the used refresh token dies, a new pair is issued."""
    cfg = config[vendor]
    with lock:
        if cfg["revoked"] or refresh not in cfg["refresh_tokens"]:
            stats["dead_refresh_used"][vendor] += 1
            return None
        owned = cfg["refresh_tokens"].pop(refresh)
        access, new_refresh = f"{vendor}-at-{uuid.uuid4().hex}", f"{vendor}-rt-{uuid.uuid4().hex}"
        cfg["refresh_tokens"][new_refresh] = owned
        cfg["access_tokens"][access] = {sees: owned, "expires_at": time.time() + cfg["access_lifetime"], "calls": 0}
        stats["refreshes"][vendor] += 1
        return {"access_token": access, "token_type": "bearer", "refresh_token": new_refresh, "expires_in": cfg["access_lifetime"],
                "scope": "read write"}


def access_of(vendor, token):
    """The access token's grant, or None when it is unknown, expired, used up or revoked."""
    cfg = config[vendor]
    with lock:
        grant = cfg["access_tokens"].get(token)
        if not grant or cfg["revoked"] or grant["expires_at"] < time.time():
            return None
        grant["calls"] = grant.get("calls", 0) + 1
        if grant["calls"] > cfg.get("access_calls", 1000000):
            return None
        return grant


def add_month(day):
    month = day.month % 12 + 1
    year = day.year + (day.month == 12)
    import calendar
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--config")
    args = parser.parse_args()
    if args.config:
        with open(args.config) as handle:
            merge(config, json.load(handle))
    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as handle:
            handle.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"fake vendors on http://127.0.0.1:{port}/ (solaredge/, goodwe/api/)", flush=True)
    # Gone with the process that started it, even one that crashed before stopping it.
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
