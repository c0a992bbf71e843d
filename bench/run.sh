#!/usr/bin/env bash
# Runs every benchmark of graylane with -benchmem, $COUNT times (default
# 10), compares each hot path with its baseline through benchstat, and
# writes BENCHMARKS.md: one summary table (path, graylane, baseline, ratio,
# allocs/op, B/op, bar), the load comparison through the Bookinfo gateway
# (bench/load.sh; LOAD=0 skips it), and benchstat's statistics.
#
# The runs are interleaved: the test binaries are built once, then each of
# the $COUNT rounds runs every benchmark once. With -count=N, Go runs one
# benchmark N times in a row before the next, so a slow minute of a shared
# machine lands on one variant and skews its ratio; spread over rounds, it
# lands on every variant alike.
#
#   bash bench/run.sh                 # about 25 minutes on 2 cores
#   COUNT=3 LOAD=0 bash bench/run.sh  # a quick look
#   REPORT=1 bash bench/run.sh        # rewrite BENCHMARKS.md from bench/out
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
COUNT=${COUNT:-10}
LOAD=${LOAD:-1}
out=bench/out
mkdir -p "$out"
benchstat() { go run golang.org/x/perf/cmd/benchstat@latest "$@"; }

pkgs="./tag ./propagation ./fallback ./httpmw ./grpcmw ./resolver ./routing ./ingress ./internal/e2e"
if [ "${REPORT:-0}" = 0 ]; then
  echo "== benchmarks ($COUNT interleaved rounds)" >&2
  bin=$(mktemp -d)
  trap 'rm -rf "$bin"' EXIT
  for p in $pkgs; do
    go test -c -o "$bin/$(basename "$p").test" "$p"
  done
  : >"$out/raw.txt"
  for round in $(seq 1 "$COUNT"); do
    echo "-- round $round of $COUNT" >&2
    for p in $pkgs; do
      # A test binary runs in its package's directory, as go test runs it.
      (cd "$p" && "$bin/$(basename "$p").test" -test.run '^$' -test.bench . -test.benchmem \
        -test.count=1 -test.timeout 30m) | tee -a "$out/raw.txt" >&2
    done
  done
else
  COUNT=$(grep -c '^BenchmarkPick/instances=3/lanes=1/impl=round_robin' "$out/raw.txt")
fi

echo "== benchstat" >&2
: >"$out/benchstat.txt"
while read -r family cols; do
  {
    echo "### $family"
    echo
    echo '```'
    benchstat -filter ".name:$family" -col "/impl@($cols)" "$out/raw.txt"
    echo '```'
    echo
  } >>"$out/benchstat.txt"
done <<'FAMILIES'
Inbound minimal graylane
ReadBaggage otel-parse graylane
Outbound clone-set graylane
ClientInterceptor minimal graylane
ServerInterceptor minimal graylane
Pick round_robin graylane_tag
Routing inject routing
RouterRoute static graylane
Evaluate one-header-check graylane
Middleware bare one-header-middleware graylane
TwoHops plain graylane otel
GRPCHop plain graylane otel
FAMILIES

status=0
go run ./internal/cmd/benchreport -in "$out/raw.txt" >"$out/table.md" || status=$?

if [ "${REPORT:-0}" != 0 ]; then
  : # keep bench/out/load.md
elif [ "$LOAD" != 0 ]; then
  echo "== load through the Bookinfo gateway" >&2
  bash bench/load.sh >"$out/load.md"
else
  echo "(not run: LOAD=0)" >"$out/load.md"
fi

cpu=$(grep -m1 '^cpu:' "$out/raw.txt" | cut -d' ' -f2- || true)
{
  cat <<HEAD
# Benchmarks

What graylane costs on every request, measured by \`bash bench/run.sh\`
on this machine: $(nproc) cores, ${cpu:-unknown CPU}, $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%d).
Each hot path is compared with a baseline benchmark in the same file,
$COUNT runs each, interleaved (every benchmark once per round, so that a
slow spell of the machine falls on graylane and its baseline alike); the
table shows medians. ns/op varies by ±30% from run to run on a shared
machine: read the ratios, not the absolute times. allocs/op and B/op are
stable.

## Summary

HEAD
  cat "$out/table.md"
  cat <<MID

Baselines: *minimal* is the least a hand-written middleware or interceptor
does (read one header, put it into the context; append one metadata key);
*clone-set* is \`r.Clone\` plus \`Header.Set\`; *round_robin* is grpc-go's
policy over the same ready endpoints; *inject* is graylane's transport
without routing; *one-header-check* is a single header comparison; *plain*
is the same servers and clients with no middleware at all; *otel* is
OpenTelemetry's otelhttp / otelgrpc with a sampling tracer and no exporter,
the ecosystem's reference for per-request instrumentation.

## Load through the Bookinfo gateway

MID
  cat "$out/load.md"
  echo
  bash bench/footprint.sh
  # Measured by the tests named in each file, against real servers.
  echo
  cat bench/kubernetes.md
  echo
  cat bench/queue.md
  cat <<TAIL

## Statistics (benchstat)

TAIL
  cat "$out/benchstat.txt"
} >BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
exit "$status"
