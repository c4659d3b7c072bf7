#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that the envtest suites run, once per
# machine, into a version-keyed cache outside the repository, and prints that
# folder (use it as KUBEBUILDER_ASSETS). Neither binary can be `go install`ed
# (their go.mod files carry replace directives), so each is built from a
# wrapper module beside this script that pins exactly what Kubernetes pins.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S=v1.37.2 ETCD=v3.7.3
dir=${MESHGATE_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshgate-envtest/$K8S-etcd$ETCD}
mkdir -p "$dir"
# One builder at a time: parallel `go test` packages or make jobs may all ask.
exec 9>"$dir/.lock"
flock 9
export CGO_ENABLED=0 GOFLAGS=-mod=mod
ver="-X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/client-go/pkg/version.gitVersion=$K8S -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"
build() { # name module-dir package
  [ -x "$dir/$1" ] && return 0
  echo "building $1 into $dir (first time on a machine: kube-apiserver takes ~11-13 min on 2 cores)" >&2
  (cd "$here/$2" && go build -trimpath -ldflags "-s -w $ver" -o "$dir/$1.tmp" "$3" >&2)
  mv "$dir/$1.tmp" "$dir/$1" # an interrupted build never leaves a half binary
}
build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
echo "$dir"
