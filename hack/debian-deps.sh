#!/usr/bin/env bash
# Installs from Debian what the tests run that is not Go: ip (iproute2) for
# the Kubernetes tests' network namespaces, node and npm for the grpc-js xDS
# tests, slowhttptest for the conformance tests. Nothing is done when all are
# there.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v slowhttptest >/dev/null 2>&1 || need+=(slowhttptest)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "the tests need these Debian packages: ${need[*]} (run as root to have them installed)" >&2
  exit 1
fi
echo "installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
