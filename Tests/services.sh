# Throwaway services for tests and benchmarks. Source it, call start_postgres; the cluster is
# removed when the calling script exits.
#   start_postgres   -> exports DATABASE_URL (a superuser on 127.0.0.1 and a free port)

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
    trap stop_services EXIT
}

stop_services() {
    if [ -n "${MTL_PGDATA:-}" ] && [ -d "$MTL_PGDATA" ]; then
        as_postgres "$MTL_PG_CTL" -D "$MTL_PGDATA" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$MTL_PGDATA" "$MTL_PGDATA.initdb.log"
    fi
}
