#!/bin/sh
# Builds the kube-apiserver that the registry/kubernetes tests run against,
# from the k8s.io/kubernetes release pinned in go.mod, into ./bin.
#
# Cold, this compiles all of Kubernetes' API server (about 11 minutes on two
# cores); after that the Go build cache makes it a no-op of a few seconds.
# The tests find the binary here, or wherever GRAYLANE_KUBE_APISERVER points.
set -eu
cd "$(dirname "$0")"

version=v1.37.2 # keep in step with the k8s.io/kubernetes line of go.mod
commit=unknown
date=2026-01-01T00:00:00Z # fixed, so that a rebuild is a cache hit

ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $pkg.gitVersion=$version"
	ldflags="$ldflags -X $pkg.gitMajor=$(echo "$version" | sed 's/^v\([0-9]*\)\..*/\1/')"
	ldflags="$ldflags -X $pkg.gitMinor=$(echo "$version" | sed 's/^v[0-9]*\.\([0-9]*\)\..*/\1/')"
	ldflags="$ldflags -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
done

# The tools module stays out of the repository's go.work: its requirements
# (all of Kubernetes) must not raise the versions the library builds with.
export GOWORK=off
exec go build -trimpath -ldflags "$ldflags" -o bin/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
