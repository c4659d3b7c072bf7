//go:build tools

// Package tools pins the kube-apiserver used by the envtest suites.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
