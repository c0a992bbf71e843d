// Package tools records cmd/kube-apiserver as a dependency of this module
// (tools.go, behind the "tools" build tag) so that build.sh can build
// k8s.io/kubernetes/cmd/kube-apiserver from it. Nothing imports it.
package tools
