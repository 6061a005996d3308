#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- OPTIONS]`: Entrepot against CNCF Distribution
# (proxy mode), direct upstream pulls and nginx, on this machine. See
# docs/BENCHMARKS.md for the scenarios, the options and the last results.
#
#   --quick                small sizes, one run (a smoke run of a few minutes)
#   --runs N               repetitions per scenario (default 3; medians reported)
#   --only 1,...,11        scenarios to run (7 needs --scanner; 8, 9: lazy pulling and per-connection-capped cold pulls;
#                          10: scale-out with 1, 2, 3 replicas behind nginx)
#   --contenders LIST      direct,nginx,distribution,entrepot,entrepot-scaleout,entrepot-scanner
#   --scanner              also run Entrepot with a real Clair scanning (scenario 7: on beside off)
#   --no-scaleout          skip Entrepot scale-out (MariaDB + Redis + S3)
#   --s3-tls               SeaweedFS of scale-out and of distribution-s3 serves HTTPS (self-signed, trusted as a CA)
#   --cpu-prof DIR         run Entrepot under `node --cpu-prof`, profiles into DIR
#   --wrk-seconds N        duration of each wrk case
#   --lazy-mib N           layer size of scenarios 7 and 8 (default 200; 100 with --quick)
#   --lazy-mbps N          relay cap of scenarios 7 and 8 in MB/s (default 20)
#   --stream-mib N         blob of scenario 11 (one cold, then one warm stream; default 200, 64 with --quick)
#
# Needs the integration-test tools (scripts/ci/setup.sh, as root), MariaDB on
# 127.0.0.1:3306 and Redis on 127.0.0.1:6379 for the scale-out contender.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[bench] %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ] && [ "${ENTREPOT_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/ci/setup.sh >/dev/null
fi
# HEAD load: wrk 4.1 cannot time HEAD requests (it waits for a body), hey can.
if ! [ -x /usr/bin/hey ] && [ "$(id -u)" -eq 0 ]; then
  log "installing the Debian package hey"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hey >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hey >/dev/null; }
fi
for tool in /usr/bin/hey /usr/bin/docker-registry /usr/bin/skopeo /usr/sbin/nginx /usr/bin/wrk /usr/bin/curl; do
  [ -x "$tool" ] || { log "missing $tool: run scripts/ci/setup.sh as root"; exit 1; }
done

log "building Entrepot (tsc -b packages)"
npx tsc -b packages/registry-core packages/proxy-cache
log "compiling bench/ into bench/dist"
rm -rf bench/dist
npx tsc -p bench/tsconfig.json

# Many parallel transfers and wrk connections.
ulimit -n 65536 2>/dev/null || true

exec node bench/dist/bench/run.js "$@"
