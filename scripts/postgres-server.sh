#!/usr/bin/env bash
# A private PostgreSQL server for the 'postgres' test suite: initdb in a directory of its
# own, listening on loopback only, on a free port, with its socket in that directory.
#   scripts/postgres-server.sh start DIR   prints the connection URL (postgresql://...);
#                                          DIR's parent must be searchable by 'postgres'
#                                          (chmod 711 on a mktemp -d directory)
#   scripts/postgres-server.sh stop DIR    stops it; DIR can then be removed
#   scripts/postgres-server.sh down DIR    stops it at once (-m immediate), keeping its data
#   scripts/postgres-server.sh up DIR      starts it again on the same port (fault tests)
# As root the server runs as the 'postgres' user (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=${1:?usage: postgres-server.sh start|stop|down|up DIR}
dir=${2:?usage: postgres-server.sh start|stop|down|up DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "postgres-server: PostgreSQL is not installed (Debian package postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  down)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  up)
    port=$(cat "$dir/port")
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: postgres-server.sh start|stop|down|up DIR" >&2
    exit 2
    ;;
esac
