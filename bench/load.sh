#!/usr/bin/env bash
# Load through the Bookinfo gateway at the highest rate this machine
# sustains: graylane's routing on, then off (every client calling a fixed
# prod instance), the same topology otherwise. Prints a Markdown table.
# DURATION (default 30s), CONCURRENCY (default 32), TAGGED (default 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DURATION=${DURATION:-30s}
CONCURRENCY=${CONCURRENCY:-32}
TAGGED=${TAGGED:-0.5}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/bookinfo" ./examples/bookinfo

run() { # $1: label, $2...: extra flags of the demo
  local label=$1; shift
  "$work/bookinfo" -gateway-addr 127.0.0.1:0 -admin-addr 127.0.0.1:0 -log-level error "$@" >"$work/out.txt" 2>&1 &
  local pid=$!
  local url=""
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*/productpage' "$work/out.txt" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "the demo did not start:"; cat "$work/out.txt"; exit 1; }
  "$work/bookinfo" load -url "$url" -rate 0 -concurrency "$CONCURRENCY" -duration "$DURATION" \
    -tagged "$TAGGED" -route=false -page-errors=true >"$work/$label.txt" || true
  kill -INT "$pid"; wait "$pid" || true
  cat "$work/$label.txt" >&2
}

run routing
run fixed -no-routing

rate() { grep -o '[0-9.]*/s' "$work/$1.txt" | head -1 | tr -d '/s'; }
field() { grep -o "$2 [0-9.]*[µnm]*s" "$work/$1.txt" | head -1 | awk '{print $2}'; }
errors() { grep -o 'errors [0-9]*' "$work/$1.txt" | head -1 | awk '{print $2}'; }

r1=$(rate routing); r2=$(rate fixed)
echo "| mode | requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
echo "| graylane routing (lanes, fallback, registry) | $r1 | $(field routing p50) | $(field routing p99) | $(errors routing) |"
echo "| routing off (fixed prod instances) | $r2 | $(field fixed p50) | $(field fixed p99) | $(errors fixed) |"
echo
awk -v a="$r1" -v b="$r2" 'BEGIN { printf "Throughput with routing: %.1f%% of the baseline (the bar is 90%%).\n", 100*a/b }'
echo
echo "$DURATION each, $CONCURRENCY requests in flight, ${TAGGED} of them tagged gray (every gray deployment at 0 replicas: tagged requests fall back on every hop)."
