#!/usr/bin/env bash
# The long soak: a million store writes (EVENTS) through the real `ej`
# serving the faulty handler, with injected faults, resets, hot swaps
# (SWAPS) and kill -9 restarts (KILLS), checked against an external ledger
# (see tests/soak.rs); then draws docs/soak.svg from the CSV it sampled.
# The ledger, the CSV and the store are left in target/soak/.
#
#   bench/soak.sh
#   EVENTS=100000 SWAPS=2 KILLS=1 RELEASE=1 bench/soak.sh   # RELEASE=1: an optimised build
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${CARGO_TARGET_DIR:-$PWD/target}/soak
EJ_SOAK_EVENTS=${EVENTS:-1000000} EJ_SOAK_SWAPS=${SWAPS:-4} EJ_SOAK_KILLS=${KILLS:-3} EJ_SOAK_DIR=$DIR \
    cargo test ${RELEASE:+--release} -p ej --test soak -- --nocapture
bench/soak_plot.py "$DIR/soak.csv" docs/soak.svg
