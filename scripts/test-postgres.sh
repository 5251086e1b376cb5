#!/usr/bin/env bash
# A throw-away PostgreSQL server for the multi-machine study test.
#
#   eval "$(bash scripts/test-postgres.sh start DIR)"   # prints: export DIGITLAB_TEST_POSTGRES=...
#   bash scripts/test-postgres.sh stop DIR              # stops it and deletes DIR
#
# The server runs as an unprivileged user (PostgreSQL refuses root), listens on 127.0.0.1
# only, on a free port, and trusts local connections: for tests, never for real data.
set -euo pipefail
action=${1:?usage: test-postgres.sh start|stop DIR}
dir=${2:?usage: test-postgres.sh start|stop DIR}
user=digitlab-pg

find_bin() {
    for candidate in "$(command -v "$1" 2>/dev/null)" /usr/lib/postgresql/*/bin/"$1"; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    return 1
}

if [ "$action" = stop ]; then
    [ -d "$dir" ] && runuser -u "$user" -- "$(find_bin pg_ctl)" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    exit 0
fi

if ! find_bin initdb >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
mkdir -p "$dir"
chown "$user" "$dir"
if ! runuser -u "$user" -- test -w "$dir"; then
    echo "test-postgres.sh: user $user cannot reach $dir; use a folder whose parents others may enter (e.g. under /tmp)" >&2
    exit 1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u "$user" -- "$(find_bin initdb)" -D "$dir/data" -U postgres -A trust >/dev/null
runuser -u "$user" -- "$(find_bin pg_ctl)" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
runuser -u "$user" -- "$(find_bin createdb)" -h 127.0.0.1 -p "$port" -U postgres digitlab_test
echo "export DIGITLAB_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/digitlab_test"
