#!/usr/bin/env bash
# What a route between nodes costs: two ej nodes (release build, the XMPP
# handler) sharing one PostgreSQL store and one NATS server, and the same
# `ej-load` run twice side by side, alternating: `same`, every user on the
# first node, and `across`, users alternating between the nodes, each
# sending to the next user (so every message crosses from one node to the
# other). Prints one line per run: delivered/s, p50 and p99 latency, lost.
#
#   bench/cluster.sh
#   USERS=200 RATES="1000 2000" ROUNDS=3 bench/cluster.sh
#
# Installs postgresql and nats-server from Debian when missing; runs both
# (and the nodes) from a temporary directory on free loopback ports, all
# stopped at the end. PostgreSQL syncs commits to disk, as in production.
# Not part of CI: a run takes a few minutes.
#
# Knobs (environment): USERS, RATES, STEP_SECONDS, DRAIN, ROUNDS, NO_STORE=1
# (no archives), SKIP_BUILD=1 (use target/release/ej, ej-load and
# target/guests/xmpp.wasm as built), KEEP=1 (keep the files and logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
USERS=${USERS:-200}
RATES=${RATES:-1000 2000 4000}
STEP_SECONDS=${STEP_SECONDS:-10}
DRAIN=${DRAIN:-5}
ROUNDS=${ROUNDS:-2}
PASSWORD=load-password
PREFIX=load

say() { echo "cluster: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

for need in /usr/sbin/nats-server:nats-server /usr/bin/pg_isready:postgresql; do
    if [ ! -x "${need%%:*}" ]; then
        say "installing ${need##*:} from Debian"
        as_root apt-get install -y --no-install-recommends "${need##*:}"
    fi
done
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building ej, ej-load and the handlers (release)"
    cargo build --release -p ej -p ej-load
    cargo xtask guests
fi
EJ=$TARGET/release/ej
EJ_LOAD=$TARGET/release/ej-load
MODULE=$TARGET/guests/xmpp.wasm

WORK=$(mktemp -d /tmp/ej-cluster-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && say "files kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {
    local tries=0
    until "$@" >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ $tries -gt 240 ] && { say "gave up waiting for: $*"; exit 1; }
        sleep 0.5
    done
}

# PostgreSQL, as the postgres user when root (initdb refuses root).
PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
RUN_PG=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$WORK/pg"
    RUN_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
"${RUN_PG[@]}" "$PG_BIN/initdb" --auth=trust --username=postgres --locale=C -D "$WORK/pg/data" >/dev/null
"${RUN_PG[@]}" "$PG_BIN/postgres" -D "$WORK/pg/data" -p "$PG_PORT" -k "$WORK/pg/data" \
    -c listen_addresses=127.0.0.1 -c max_connections=300 >"$WORK/pg.log" 2>&1 &
PIDS+=($!)
wait_for "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q
STORE=postgres://postgres@127.0.0.1:$PG_PORT/postgres

NATS_PORT=$(free_port)
/usr/sbin/nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT"

ADDRS=()
METRICS=()
for node in 1 2; do
    port=$(free_port)
    METRICS+=("127.0.0.1:$(free_port)")
    mkdir -p "$WORK/node$node"
    "$EJ" serve --listen "127.0.0.1:$port" --module "$MODULE" --data-dir "$WORK/node$node/data" \
        --admin "$WORK/node$node/admin.sock" --cache-dir "$WORK/cache" \
        --store "$STORE" --cluster "nats://127.0.0.1:$NATS_PORT" --metrics "${METRICS[-1]}" \
        --max-connections 30000 --max-connections-per-ip 30000 >"$WORK/node$node/log" 2>&1 &
    PIDS+=($!)
    wait_for "$EJ" status --admin "$WORK/node$node/admin.sock"
    ADDRS+=("127.0.0.1:$port")
done
say "making $USERS accounts"
seq 0 $((USERS - 1)) | xargs -P 4 -I{} "$EJ" command --admin "$WORK/node1/admin.sock" user add "$PREFIX{}" "$PASSWORD" >/dev/null

# The sum over both nodes of the counter $1.
counter() {
    python3 - "$1" "${METRICS[@]}" <<'PY'
import sys, urllib.request
total = 0.0
for addr in sys.argv[2:]:
    for line in urllib.request.urlopen(f"http://{addr}/metrics").read().decode().splitlines():
        if line.startswith(sys.argv[1] + " ") or line.startswith(sys.argv[1] + "{"):
            total += float(line.rsplit(" ", 1)[1])
print(int(total))
PY
}

# One ej-load run: $1 the label, $2 the rate, the rest its --addr options.
run() {
    local label=$1 rate=$2
    shift 2
    local json=$WORK/$label-$rate-$RANDOM.json
    local extra=()
    [ "${NO_STORE:-0}" = 1 ] && extra+=(--no-store)
    local reruns relayed
    reruns=$(counter ej_store_reruns_total)
    relayed=$(counter ej_routes_relayed_total)
    "$EJ_LOAD" "$@" --users "$USERS" --rate "$rate" --duration "$STEP_SECONDS" --drain "$DRAIN" \
        --concurrency 100 --label "$label" --json "$json" --quiet "${extra[@]}" >/dev/null
    reruns=$(($(counter ej_store_reruns_total) - reruns))
    relayed=$(($(counter ej_routes_relayed_total) - relayed))
    python3 - "$json" "$label" "$rate" "$reruns" "$relayed" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]
print(f"{sys.argv[2]:<7} {sys.argv[3]:>6} msg/s offered: {r['delivered_per_second']:7.0f} delivered/s, "
      f"p50 {lat['p50']:8.2f} ms, p99 {lat['p99']:8.2f} ms, lost {r['lost']}, errors {r['stanza_errors']}, "
      f"reruns {sys.argv[4]}, routes between nodes {sys.argv[5]}, load {r['load_average_start']}")
PY
}

echo "commit $(git -C "$ROOT" rev-parse --short HEAD), $USERS users, ${STEP_SECONDS}s steps, $(nproc) cores"
for rate in $RATES; do
    for round in $(seq "$ROUNDS"); do
        run same "$rate" --addr "${ADDRS[0]}"
        run across "$rate" --addr "${ADDRS[0]}" --addr "${ADDRS[1]}"
    done
done
