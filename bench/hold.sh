#!/usr/bin/env bash
# Holds 10,000 connections (CONNECTIONS) against the real `ej` serving the
# faulty handler for HOLD_SECONDS, from ten loopback addresses (the default
# --max-connections-per-ip is 1,000; 10,000 is the default
# --max-connections), then checks each answers a ping and closes cleanly
# and prints the server's RSS per connection. Raises the open-file limit as
# far as the hard limit allows first: the test process and the server each
# need one descriptor per connection.
#
#   bench/hold.sh
#   CONNECTIONS=5000 HOLD_SECONDS=5 RELEASE=1 bench/hold.sh   # RELEASE=1: an optimised build
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-10000}
ulimit -n "$(ulimit -Hn)"
need=$((CONNECTIONS + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    echo "hold: the open-file limit is $(ulimit -n), $need are needed" >&2
    exit 1
fi
EJ_HOLD_CONNECTIONS=$CONNECTIONS EJ_HOLD_SECONDS=${HOLD_SECONDS:-30} \
    cargo test ${RELEASE:+--release} -p ej --test hold -- --nocapture
