#!/usr/bin/env bash
# Measures what importing graylane costs a program: builds throwaway
# consumer modules against this checkout (a replace line, no workspace)
# and prints the "Footprint" section of BENCHMARKS.md to stdout.
#
#   bash bench/footprint.sh            # prints the section
#   CHECK=1 bash bench/footprint.sh    # also fails when a bar is not met
#
# Consumers:
#   httpmw   - a server wrapped with httpmw.Middleware (and an outbound
#              httpmw.Transport)
#   otelhttp - the same server wrapped with otelhttp.NewHandler (and
#              otelhttp.NewTransport): the reference
#   grpc     - a gRPC client dialled with resolver.DialOptions and grpcmw's
#              interceptors
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOWORK=off GOFLAGS=-mod=mod

otelv=$(go list -m -f '{{.Version}}' go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp 2>/dev/null || true)
[ -n "$otelv" ] || otelv=v0.72.0

consumer() { # name, main.go body (imports and main)
  local d="$work/$1"
  mkdir -p "$d"
  cat >"$d/go.mod" <<MOD
module example.com/$1

go 1.26.0

require github.com/graylane/graylane v0.0.0

replace github.com/graylane/graylane => $root
MOD
  printf '%s\n' "$2" >"$d/main.go"
  (cd "$d" && go mod tidy >/dev/null 2>&1 && go build -o "$d/bin" .)
}

consumer httpmw 'package main

import (
	"net/http"

	"github.com/graylane/graylane/httpmw"
)

func main() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := (&http.Client{Transport: httpmw.NewTransport(nil)}).Get("http://127.0.0.1:1/")
		if err == nil {
			resp.Body.Close()
		}
	})
	http.ListenAndServe("127.0.0.1:8080", httpmw.Middleware()(h))
}'

consumer otelhttp 'package main

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

func main() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := (&http.Client{Transport: otelhttp.NewTransport(nil)}).Get("http://127.0.0.1:1/")
		if err == nil {
			resp.Body.Close()
		}
	})
	http.ListenAndServe("127.0.0.1:8080", otelhttp.NewHandler(h, "server"))
}'

consumer grpc 'package main

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/graylane/graylane/grpcmw"
	"github.com/graylane/graylane/registry"
	"github.com/graylane/graylane/resolver"
)

func main() {
	cc, err := grpc.NewClient("graylane:///reviews", append(resolver.DialOptions(registry.NewMemory(), nil),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcmw.UnaryClientInterceptor()))...)
	if err == nil {
		cc.Close()
	}
}'

mods() { (cd "$work/$1" && go list -m all | wc -l); }
grpcpkgs() { (cd "$work/$1" && go list -deps . | grep -c '^google.golang.org/grpc' || true); }
size() { stat -c %s "$work/$1/bin"; }
heavy() { (cd "$work/$1" && go list -m all | grep -E 'etcd|chromedp|prometheus|k8s.io|nats|franz' | tr '\n' ' ' || true); }

hm=$(mods httpmw) om=$(mods otelhttp) gm=$(mods grpc)
hg=$(grpcpkgs httpmw) og=$(grpcpkgs otelhttp) gg=$(grpcpkgs grpc)
hs=$(size httpmw) os=$(size otelhttp) gs=$(size grpc)
ratio=$(awk -v a="$hs" -v b="$os" 'BEGIN{printf "%.2f", a/b}')
mb() { awk -v a="$1" 'BEGIN{printf "%.1f MB", a/1e6}'; }
hh=$(heavy httpmw) gh=$(heavy grpc)

cat <<MD
## Footprint

What a program pays for importing graylane: throwaway consumer modules
built against this checkout with a replace line (\`bash bench/footprint.sh\`,
$(go env GOVERSION), $(date -u +%Y-%m-%d)).

| consumer | modules (\`go list -m all\`) | grpc packages linked | binary | heavy modules in graph |
|---|---:|---:|---:|---|
| server wrapped with \`httpmw\` (+ its Transport) | $hm (bar: ≤ 30) | $hg (bar: 0) | $(mb "$hs") ($ratio× otelhttp; bar: ≤ 1.25×) | ${hh:-none} |
| the same server wrapped with \`otelhttp\` (reference) | $om | $og | $(mb "$os") | |
| gRPC client with \`resolver\` + \`grpcmw\` | $gm | $gg | $(mb "$gs") | ${gh:-none} (bar: no etcd, chromedp, Prometheus) |
MD

if [ "${CHECK:-0}" = 1 ]; then
  fail=0
  [ "$hg" -eq 0 ] || { echo "httpmw links $hg grpc packages" >&2; fail=1; }
  [ "$hm" -le 30 ] || { echo "httpmw consumer has $hm modules" >&2; fail=1; }
  awk -v r="$ratio" 'BEGIN{exit !(r <= 1.25)}' || { echo "httpmw binary is ${ratio}x otelhttp's" >&2; fail=1; }
  [ -z "$gh" ] || { echo "grpc consumer pulls: $gh" >&2; fail=1; }
  exit $fail
fi
