#!/usr/bin/env bash
# The side-by-side benchmark: meshgate, nginx, HAProxy and Caddy as keep-alive
# reverse proxies in front of one nginx backend (and the backend alone), with
# wrk and h2load; reload latency and errors under load; a CPU profile of
# meshgate. See BENCHMARKS.md. Flags go to the runner (bench/main.go), e.g.
#
#   bench/run.sh -smoke                      # a short run while developing
#   bench/run.sh -record BENCHMARKS.md       # the full run, recorded
#
# It installs from Debian whatever of nginx, haproxy, caddy, wrk and h2load
# is missing, and needs two CPUs: the load generators run on one, the
# servers on the other.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  # The benchmark runs its own instances with its own configs; a system
  # service the packages may have started stays idle on its default port.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "bench/run.sh needs 2 CPUs: load generators on one, servers on the other" >&2
  exit 1
fi

out="bench/out/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
go build -o "$out/meshgate" ./cmd/meshgate
go build -o "$out/bench" ./bench
BENCH_COMMAND="bench/run.sh $*" exec taskset -c "${BENCH_LOAD_CPU:-0}" "$out/bench" -meshgate "$out/meshgate" -out "$out" "$@"
