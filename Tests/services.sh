# Throwaway services for tests and benchmarks. Source it and call what you need; everything is
# stopped and removed when the calling script exits.
#   start_postgres   -> exports DATABASE_URL (a superuser on 127.0.0.1 and a free port)
#   start_moto       -> exports MOTO_S3_ENDPOINT, MOTO_S3_AUTH_ENDPOINT, MOTO_S3_AUTH_KEY_ID, MOTO_S3_AUTH_SECRET

trap stop_services EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "PostgreSQL server binaries not found under /usr/lib/postgresql: install the postgresql package" >&2
        return 1
    fi
    MTL_PGDATA=$(mktemp -d /tmp/meterlake-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$MTL_PGDATA"
    as_postgres "$bin/initdb" -D "$MTL_PGDATA" -U postgres -A trust -E UTF8 --no-sync >"$MTL_PGDATA.initdb.log" 2>&1 || {
        cat "$MTL_PGDATA.initdb.log" >&2
        return 1
    }
    local port
    port=$(free_port)
    # Throwaway data: durability settings off for speed.
    as_postgres "$bin/pg_ctl" -D "$MTL_PGDATA" -w -t 60 -l "$MTL_PGDATA/server.log" \
        -o "-p $port -k $MTL_PGDATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || {
        cat "$MTL_PGDATA/server.log" >&2
        return 1
    }
    MTL_PG_CTL="$bin/pg_ctl"
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $MTL_PGDATA)"
}

stop_services() {
    stop_moto
    if [ -n "${MTL_PGDATA:-}" ] && [ -d "$MTL_PGDATA" ]; then
        as_postgres "$MTL_PG_CTL" -D "$MTL_PGDATA" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$MTL_PGDATA" "$MTL_PGDATA.initdb.log"
    fi
}

# Waits until an HTTP server answers on 127.0.0.1:$1.
wait_http() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "nothing answered on 127.0.0.1:$1" >&2
    return 1
}

# Two moto S3 servers on loopback:
#   MOTO_S3_ENDPOINT        signatures not checked (moto's checker rejects correct signatures for
#                           keys with +, (, ), non-ASCII and for encoded query values; aws.md §8)
#   MOTO_S3_AUTH_ENDPOINT   signatures checked: an IAM user made in that server, its key in
#                           MOTO_S3_AUTH_KEY_ID / MOTO_S3_AUTH_SECRET
start_moto() {
    command -v moto_server >/dev/null || { echo "moto_server not found: pip install 'moto[server]'" >&2; return 1; }
    local open_port auth_port credentials
    open_port=$(free_port)
    auth_port=$(free_port)
    MTL_MOTO_LOG=$(mktemp -d /tmp/meterlake-moto.XXXXXX)
    moto_server -H 127.0.0.1 -p "$open_port" >"$MTL_MOTO_LOG/open.log" 2>&1 &
    MTL_MOTO_PIDS="$!"
    # Checking starts off: the IAM user is made first, then reset-auth (below) turns it on.
    moto_server -H 127.0.0.1 -p "$auth_port" >"$MTL_MOTO_LOG/auth.log" 2>&1 &
    MTL_MOTO_PIDS="$MTL_MOTO_PIDS $!"
    wait_http "$open_port" && wait_http "$auth_port" || return 1
    credentials=$(python3 - "$auth_port" <<'PY'
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="meterlake-test")
key = iam.create_access_key(UserName="meterlake-test")["AccessKey"]
iam.put_user_policy(UserName="meterlake-test", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
    ) || return 1
    # From now on every request to this server must carry a valid signature of that user.
    curl -sf -X POST -H 'Content-Type: text/plain' --data-binary 0 "http://127.0.0.1:$auth_port/moto-api/reset-auth" >/dev/null || {
        echo "could not turn on moto's signature checking" >&2
        return 1
    }
    export MOTO_S3_ENDPOINT="http://127.0.0.1:$open_port"
    export MOTO_S3_AUTH_ENDPOINT="http://127.0.0.1:$auth_port"
    export MOTO_S3_AUTH_KEY_ID="${credentials% *}"
    export MOTO_S3_AUTH_SECRET="${credentials#* }"
    echo "==> moto S3 on $MOTO_S3_ENDPOINT (signatures unchecked) and $MOTO_S3_AUTH_ENDPOINT (signatures checked)"
}

stop_moto() {
    for pid in ${MTL_MOTO_PIDS:-}; do kill "$pid" 2>/dev/null || true; done
    # An `if`, not `[ … ] && rm`: a false test would make this function fail, and under `set -e`
    # that would end the EXIT trap before PostgreSQL is stopped.
    if [ -n "${MTL_MOTO_LOG:-}" ]; then rm -rf "$MTL_MOTO_LOG"; fi
}
