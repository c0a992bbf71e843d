#!/usr/bin/env bash
# Load through the Bookinfo gateway at the highest rate this machine
# sustains: graylane's routing on and off (every client calling a fixed
# prod instance), the same topology otherwise. Prints a Markdown table.
# The runs go in the order on, off, off, on (ROUNDS=2; each round adds one
# of each, mirrored), so that a machine that slows down or speeds up over
# the minutes favours neither mode; the summary compares mean rates.
# DURATION (default 30s), CONCURRENCY (default 32), TAGGED (default 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DURATION=${DURATION:-30s}
CONCURRENCY=${CONCURRENCY:-32}
TAGGED=${TAGGED:-0.5}
ROUNDS=${ROUNDS:-2}
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

order=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order+=("routing $r" "fixed $r"); else order+=("fixed $r" "routing $r"); fi
done
for o in "${order[@]}"; do
  set -- $o
  if [ "$1" = routing ]; then run "routing-$2"; else run "fixed-$2" -no-routing; fi
done

rate() { grep -o '[0-9.]*/s' "$work/$1.txt" | head -1 | tr -d '/s'; }
field() { grep -o "$2 [0-9.]*[µnm]*s" "$work/$1.txt" | head -1 | awk '{print $2}'; }
errors() { grep -o 'errors [0-9]*' "$work/$1.txt" | head -1 | awk '{print $2}'; }
name() { if [ "$1" = routing ]; then echo "graylane routing (lanes, fallback, registry)"; else echo "routing off (fixed prod instances)"; fi; }

echo "| run | mode | requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|---|"
n=0
for o in "${order[@]}"; do
  set -- $o
  n=$((n + 1))
  echo "| $n | $(name "$1") | $(rate "$1-$2") | $(field "$1-$2" p50) | $(field "$1-$2" p99) | $(errors "$1-$2") |"
done
mean() { for r in $(seq 1 "$ROUNDS"); do rate "$1-$r"; done | awk '{s += $1} END {printf "%.1f", s/NR}'; }
r1=$(mean routing); r2=$(mean fixed)
echo
awk -v a="$r1" -v b="$r2" 'BEGIN { printf "Mean throughput: %.1f requests/s with routing, %.1f without: %.1f%% of the baseline (the bar is 90%%).\n", a, b, 100*a/b }'
echo
echo "$DURATION per run, $CONCURRENCY requests in flight, ${TAGGED} of them tagged gray (every gray deployment at 0 replicas: tagged requests fall back on every hop)."
