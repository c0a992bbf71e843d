//go:build tools

// Package tools records cmd/kube-apiserver as a dependency of this module so
// that `go build k8s.io/kubernetes/cmd/kube-apiserver` resolves from it.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
