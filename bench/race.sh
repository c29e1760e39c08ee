#!/usr/bin/env bash
# The same XMPP load against ej, Prosody and ejabberd on this machine, one
# server at a time, with `ej-load` as the client; writes the comparison
# table into BENCHMARKS.md (between the race markers) and keeps every
# run's JSON report under target/race/.
#
#   bench/race.sh                  # everything, from a fresh machine
#   SERVERS=ej STEP_SECONDS=3 bench/race.sh   # a quick look at one server
#
# It installs prosody and ejabberd from Debian when missing (never
# started as system services), builds ej and the XMPP handler in release,
# and runs each server from its own config and data under a temporary
# directory, on 127.0.0.1 and a free port, stopped by PID at the end.
# Not part of CI: a full run takes about 15 minutes.
#
# Knobs (environment): SERVERS, USER_STEPS, RATES, STEP_SECONDS, DRAIN,
# P99_LIMIT_MS, IDLE_USERS, CONCURRENCY, NO_STORE=1 (the <no-store/> hint:
# no server archives), SKIP_BUILD=1 (use target/release/ej, ej-load and
# target/guests/xmpp.wasm as built), EJ_MODULE (another handler file),
# WRITE=0 (leave BENCHMARKS.md alone), KEEP=1 (keep the servers' files and
# logs in the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

SERVERS=${SERVERS:-ej prosody ejabberd}
USER_STEPS=${USER_STEPS:-200 2000}
# Finer steps above 4,000 msg/s, where the servers part: doubling there
# would leave ratios known only to within a factor of two.
RATES=${RATES:-250 500 1000 2000 4000 6000 8000 12000 16000 20000 24000 28000 32000}
STEP_SECONDS=${STEP_SECONDS:-10}
DRAIN=${DRAIN:-5}
P99_LIMIT_MS=${P99_LIMIT_MS:-100}
IDLE_USERS=${IDLE_USERS:-10000}
CONCURRENCY=${CONCURRENCY:-100}
NO_STORE=${NO_STORE:-0}
WRITE=${WRITE:-1}
PASSWORD=load-password
PREFIX=load

say() { echo "race: $*" >&2; }

# --- what the run needs -----------------------------------------------------

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

install_servers() {
    local missing=()
    command -v prosody >/dev/null || missing+=(prosody)
    command -v ejabberdctl >/dev/null || missing+=(ejabberd)
    command -v python3 >/dev/null || missing+=(python3)
    [ ${#missing[@]} = 0 ] && return
    say "installing ${missing[*]} from Debian"
    # policy-rc.d keeps the packages from starting system services.
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    as_root apt-get update -q
    as_root apt-get install -y --no-install-recommends "${missing[@]}" || {
        as_root rm -f /usr/sbin/policy-rc.d
        exit 1
    }
    as_root rm -f /usr/sbin/policy-rc.d
    # Should a package have started its service all the same, stop it: it
    # would take CPU from the servers under test.
    local pidfile
    for pidfile in /run/prosody/prosody.pid /run/ejabberd/ejabberd.pid; do
        if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            say "stopping the system service of $pidfile"
            as_root kill -TERM "$(cat "$pidfile")" || true
        fi
    done
}

build() {
    if [ "${SKIP_BUILD:-0}" = 1 ]; then
        return
    fi
    say "building ej, ej-load and the handlers (release)"
    cargo build --release -p ej -p ej-load
    cargo xtask guests
}

# A TCP port on 127.0.0.1 nobody listens on.
free_port() {
    local port
    for port in $(seq "$1" $(($1 + 500))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    say "no free port from $1"
    exit 1
}

# Waits until "$@" succeeds (up to 120 s).
wait_for() {
    local tries=0
    until "$@" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt 240 ]; then
            say "gave up waiting for: $*"
            return 1
        fi
        sleep 0.5
    done
}

# Waits for process $1 to exit (up to 20 s), then kills it.
stop_pid() {
    local pid=$1 tries=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        if [ $tries -gt 40 ]; then
            kill -KILL "$pid" 2>/dev/null || true
            return 0
        fi
        sleep 0.5
    done
}

# The first descendant of process $1 whose command is $2.
descendant() {
    local pid child
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        if [ "$(cat /proc/"$child"/comm 2>/dev/null)" = "$2" ]; then
            echo "$child"
            return
        fi
        pid=$(descendant "$child" "$2")
        if [ -n "$pid" ]; then
            echo "$pid"
            return
        fi
    done
}

# --- ej ---------------------------------------------------------------------

ej_setup() {
    EJ_DIR=$WORK/ej
    mkdir -p "$EJ_DIR"
    EJ_PORT=$(free_port 25222)
}

ej_start() {
    "$EJ" serve --listen "127.0.0.1:$EJ_PORT" --module "$EJ_MODULE" --data-dir "$EJ_DIR/data" \
        --admin "$EJ_DIR/admin.sock" --cache-dir "$EJ_DIR/cache" --max-connections 30000 --max-connections-per-ip 30000 \
        >>"$EJ_DIR/log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for "$EJ" command --admin "$EJ_DIR/admin.sock" user list
    SERVER_ADDR=127.0.0.1:$EJ_PORT
}

ej_accounts() {
    seq 0 $(($1 - 1)) | xargs -P 4 -I{} "$EJ" command --admin "$EJ_DIR/admin.sock" user add "$PREFIX{}" "$PASSWORD" >/dev/null
}

ej_stop() { stop_pid "$SERVER_PID"; }

ej_version() { echo "ej $("$EJ" --version | awk '{print $2}') ($(git -C "$ROOT" rev-parse --short HEAD))"; }

# --- Prosody ----------------------------------------------------------------

prosody_setup() {
    PROSODY_DIR=$WORK/prosody
    mkdir -p "$PROSODY_DIR/data"
    PROSODY_PORT=$(free_port 25322)
    cat >"$PROSODY_DIR/prosody.cfg.lua" <<EOF
-- Generated by bench/race.sh: plain TCP on loopback, SCRAM with 4096
-- iterations (as ej and ejabberd), archives and offline storage on.
pidfile = "$PROSODY_DIR/prosody.pid"
data_path = "$PROSODY_DIR/data"
daemonize = false
log = { warn = "$PROSODY_DIR/prosody.log" }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = {}
s2s_ports = {}
admin_socket = "$PROSODY_DIR/prosody.sock"
c2s_require_encryption = false
authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "admin_shell", "mam", "offline" }
modules_disabled = { "s2s" }
default_archive_policy = true
archive_expires_after = "1d"
VirtualHost "localhost"
EOF
    chown -R prosody: "$PROSODY_DIR" 2>/dev/null || true
}

prosody_start() {
    rm -f "$PROSODY_DIR/prosody.pid"
    # The open-files limit is set again after su: PAM lowers it.
    su -s /bin/sh prosody -c "ulimit -n $(ulimit -n); exec prosody --config '$PROSODY_DIR/prosody.cfg.lua'" \
        >>"$PROSODY_DIR/stdout" 2>&1 &
    PIDS+=("$!")
    wait_for test -s "$PROSODY_DIR/prosody.pid"
    SERVER_PID=$(cat "$PROSODY_DIR/prosody.pid")
    PIDS+=("$SERVER_PID")
    wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$PROSODY_PORT"
    SERVER_ADDR=127.0.0.1:$PROSODY_PORT
}

prosody_accounts() {
    seq 0 $(($1 - 1)) | sed "s/.*/user:create(\"$PREFIX&@localhost\", \"$PASSWORD\")/" |
        prosodyctl --config "$PROSODY_DIR/prosody.cfg.lua" shell >"$PROSODY_DIR/accounts.log" 2>&1
    local made
    made=$(grep -c "User created" "$PROSODY_DIR/accounts.log" || true)
    [ "$made" = "$1" ] || say "prosody: $made of $1 accounts created (see $PROSODY_DIR/accounts.log)"
}

prosody_stop() { stop_pid "$SERVER_PID"; }

prosody_version() { echo "Prosody $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || prosody --version)"; }

# --- ejabberd ---------------------------------------------------------------

ejabberd_setup() {
    EJABBERD_DIR=$WORK/ejabberd
    mkdir -p "$EJABBERD_DIR"/{etc,log,spool}
    EJABBERD_PORT=$(free_port 25422)
    cp /etc/ejabberd/inetrc "$EJABBERD_DIR/etc/" 2>/dev/null || touch "$EJABBERD_DIR/etc/inetrc"
    cat >"$EJABBERD_DIR/etc/ejabberdctl.cfg" <<EOF
ERLANG_NODE=race$EJABBERD_PORT@localhost
ERL_DIST_PORT=$(free_port 25499)
# The schedulers do not busy-wait, so the CPU time counts work, not spinning.
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 +sbwt none +sbwtdcpu none +sbwtdio none"
EOF
    cat >"$EJABBERD_DIR/etc/ejabberd.yml" <<EOF
# Generated by bench/race.sh: plain TCP on loopback, no shaper, SCRAM
# (4096 iterations), archives (Mnesia) and offline storage on.
hosts:
  - localhost
loglevel: warning
log_rotate_count: 0
certfiles: []
listen:
  -
    port: $EJABBERD_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: false
    backlog: 1024
    shaper: none
    access: all
acl:
  local:
    user_regexp: ""
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
auth_method: internal
auth_password_format: scram
default_db: mnesia
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_offline: {}
  mod_mam:
    default: always
EOF
    chown -R ejabberd: "$EJABBERD_DIR" 2>/dev/null || true
}

ejabberdctl_() {
    ejabberdctl --config-dir "$EJABBERD_DIR/etc" --logs "$EJABBERD_DIR/log" --spool "$EJABBERD_DIR/spool" "$@"
}

ejabberd_start() {
    # As the ejabberd user, so that ejabberdctl runs the node itself: its su
    # (PAM) would bring the open-files limit back down to 1024.
    su -s /bin/sh ejabberd -c "ulimit -n $(ulimit -n); exec ejabberdctl --config-dir '$EJABBERD_DIR/etc' \
        --logs '$EJABBERD_DIR/log' --spool '$EJABBERD_DIR/spool' foreground" >>"$EJABBERD_DIR/stdout" 2>&1 &
    local ctl=$!
    PIDS+=("$ctl")
    wait_for ejabberdctl_ status
    SERVER_PID=$(descendant "$ctl" beam.smp)
    PIDS+=("$SERVER_PID")
    SERVER_ADDR=127.0.0.1:$EJABBERD_PORT
}

ejabberd_accounts() {
    # One XEP-0227 file: one ejabberdctl call instead of one per account.
    {
        echo "<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
        seq 0 $(($1 - 1)) | sed "s/.*/<user name='$PREFIX&' password='$PASSWORD'\/>/"
        echo "</host></server-data>"
    } >"$EJABBERD_DIR/accounts.xml"
    chown ejabberd: "$EJABBERD_DIR/accounts.xml" 2>/dev/null || true
    ejabberdctl_ --no-timeout import_piefxis "$EJABBERD_DIR/accounts.xml"
}

ejabberd_stop() {
    ejabberdctl_ stop >/dev/null 2>&1 || true
    stop_pid "$SERVER_PID"
}

ejabberd_version() { echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null), Erlang/OTP $(cat /usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -1)"; }

# --- the run ----------------------------------------------------------------

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" != 1 ]; then
        sleep 1
        rm -rf "$WORK"
    fi
}

# One ej-load run against the server started last; prints the JSON file.
load() {
    local name=$1 out=$RESULTS/$1.json
    shift
    "$EJ_LOAD" --addr "$SERVER_ADDR" --server-pid "$SERVER_PID" --label "$SERVER" --concurrency "$CONCURRENCY" \
        --json "$out" "$@" >"$RESULTS/$name.txt"
    sed -n '/^{/q;p' "$RESULTS/$name.txt" | sed "s/^/  /" >&2
    echo "$out"
}

# Whether a run's p99 stayed under the limit with nothing lost.
passed() {
    python3 - "$1" "$P99_LIMIT_MS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ok = (r["latency_ms"]["p99"] <= float(sys.argv[2]) and r["lost"] == 0 and r["duplicates"] == 0
      and r["stream_errors"] == 0
      and r["logins"] == r["users"] and r["delivered_per_second"] >= 0.95 * r["rate_target"])
sys.exit(0 if ok else 1)
EOF
}

race() {
    SERVER=$1
    "${SERVER}_setup"
    say "$SERVER: starting, making $ACCOUNTS accounts"
    "${SERVER}_start"
    local started=$SECONDS
    "${SERVER}_accounts" "$ACCOUNTS"
    echo "$SERVER $(( SECONDS - started ))" >>"$RESULTS/accounts-seconds"
    "${SERVER}_version" >>"$RESULTS/versions"
    local users rate no_store=()
    [ "$NO_STORE" = 1 ] && no_store=(--no-store)
    for users in $USER_STEPS; do
        # A fresh process for each step, so memory readings start clean.
        "${SERVER}_stop"
        "${SERVER}_start"
        for rate in $RATES; do
            say "$SERVER: $users users, $rate msg/s for $STEP_SECONDS s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
            local file
            file=$(load "$SERVER-$users-$rate" --users "$users" --rate "$rate" --duration "$STEP_SECONDS" \
                --drain "$DRAIN" "${no_store[@]}")
            passed "$file" || break
        done
    done
    "${SERVER}_stop"
    "${SERVER}_start"
    say "$SERVER: $IDLE_USERS idle sessions (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    load "$SERVER-idle-$IDLE_USERS" --users "$IDLE_USERS" --idle --duration 5 >/dev/null
    "${SERVER}_stop"
}

main() {
    install_servers
    build
    EJ=$TARGET/release/ej
    EJ_LOAD=$TARGET/release/ej-load
    EJ_MODULE=${EJ_MODULE:-$TARGET/guests/xmpp.wasm}
    local limit
    limit=$(ulimit -Hn)
    ulimit -n "$limit"
    if [ "$limit" != unlimited ] && [ "$limit" -lt $((IDLE_USERS + 200)) ]; then
        say "the open-files limit is $limit: $IDLE_USERS sessions need more; using $((limit - 200))"
        IDLE_USERS=$((limit - 200))
    fi
    ACCOUNTS=$IDLE_USERS
    for users in $USER_STEPS; do
        [ "$users" -gt "$ACCOUNTS" ] && ACCOUNTS=$users
    done
    WORK=$(mktemp -d /tmp/ej-race.XXXXXX)
    chmod 755 "$WORK"
    RESULTS=$TARGET/race/$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$RESULTS"
    PIDS=()
    trap cleanup EXIT
    say "results in $RESULTS, servers' files in $WORK"
    {
        echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GB, Linux $(uname -r)"
        echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$RESULTS/machine"
    for server in $SERVERS; do
        race "$server"
    done
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/machine"
    local command="bench/race.sh"
    [ "$NO_STORE" = 1 ] && command="NO_STORE=1 $command"
    python3 bench/race_table.py "$RESULTS" "$P99_LIMIT_MS" "$command" >"$RESULTS/table.md"
    cat "$RESULTS/table.md"
    if [ "$WRITE" = 1 ]; then
        local marker=race
        [ "$NO_STORE" = 1 ] && marker=race-no-store
        python3 bench/race_table.py --into BENCHMARKS.md "$RESULTS/table.md" "$marker"
        say "BENCHMARKS.md updated"
    fi
}

main "$@"
