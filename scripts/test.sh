#!/usr/bin/env bash
# The whole test run: what `npm test` and CI (`.ci/run`) execute.
#
#   1. scripts/ci/setup.sh     integration-test tools (Debian packages, Go-built
#                              OCI conformance runner and SeaweedFS), idempotent
#   2. MariaDB, Redis and      started when not reachable (scale-out tests;
#      PostgreSQL              Clair's databases in the scanning tests)
#   3. npm run build           tsc -b for every package and the tests, web UI bundle
#   4. npm run lint            eslint, type-aware rules included
#   5. jest                    the whole suite; its summary closes the output
#
# Run from any directory of a clone, after `npm ci`. Safe to run again: every
# step checks before it acts. Arguments are passed to jest
# (`npm test -- packages/registry-core/test/oci`). Set ENTREPOT_SKIP_SETUP=1 to
# skip step 1 (tools already installed), ENTREPOT_SKIP_LINT=1 to skip step 4.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STARTED=$SECONDS
stamp() { printf '[test] %s (%ds)\n' "$*" "$((SECONDS - STARTED))"; }
die() { printf '[test] ERROR: %s\n' "$*" >&2; exit 1; }

MYSQL_HOST="${ENTREPOT_TEST_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${ENTREPOT_TEST_MYSQL_PORT:-3306}"
REDIS_HOST="${ENTREPOT_TEST_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${ENTREPOT_TEST_REDIS_PORT:-6379}"
PG_HOST=127.0.0.1
PG_PORT=5432

# --- 1. tools ----------------------------------------------------------------
if [ "${ENTREPOT_SKIP_SETUP:-0}" = "1" ]; then
  stamp "setup skipped (ENTREPOT_SKIP_SETUP=1)"
elif [ "$(id -u)" -ne 0 ]; then
  stamp "not root: skipping scripts/ci/setup.sh (integration tests that need its tools will say so)"
else
  stamp "tools: scripts/ci/setup.sh"
  bash scripts/ci/setup.sh
fi

# --- 2. services -------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds name
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || die "$4 did not come up on $1:$2 within $3 s"
    sleep 0.5
  done
}

ensure_debian_package() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "$1 is missing; install the Debian package $2"
  stamp "installing $2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

if port_open "$MYSQL_HOST" "$MYSQL_PORT"; then
  stamp "MariaDB reachable on $MYSQL_HOST:$MYSQL_PORT"
else
  ensure_debian_package mariadbd mariadb-server
  stamp "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port "$MYSQL_HOST" "$MYSQL_PORT" 60 MariaDB
fi
if command -v mariadb >/dev/null 2>&1; then
  # The scale-out tests create (and drop) their own database per run; `entrepot_test`
  # is there for manual runs against a shared database.
  mariadb -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u root -e 'CREATE DATABASE IF NOT EXISTS entrepot_test' ||
    die "cannot create a database in MariaDB as root (the tests expect root without a password)"
fi

if port_open "$REDIS_HOST" "$REDIS_PORT"; then
  stamp "Redis reachable on $REDIS_HOST:$REDIS_PORT"
else
  ensure_debian_package redis-server redis-server
  stamp "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port "$REDIS_HOST" "$REDIS_PORT" 30 Redis
fi

if port_open "$PG_HOST" "$PG_PORT"; then
  stamp "PostgreSQL reachable on $PG_HOST:$PG_PORT"
else
  ensure_debian_package pg_ctlcluster postgresql
  stamp "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  wait_port "$PG_HOST" "$PG_PORT" 60 PostgreSQL
fi

# --- 3. build ----------------------------------------------------------------
stamp "build: npm run build"
npm run --silent build || die "build failed (tsc -b or the web UI bundle): see the errors above"

# --- 4. lint -----------------------------------------------------------------
if [ "${ENTREPOT_SKIP_LINT:-0}" = "1" ]; then
  stamp "lint skipped (ENTREPOT_SKIP_LINT=1)"
else
  stamp "lint: npm run lint"
  npm run --silent lint || die "lint failed: see the errors above (npm run lint:fix fixes some)"
fi

# --- 5. tests ----------------------------------------------------------------
# Two cores: two workers keep both busy while the integration tests wait on
# their child processes (registries, skopeo, SeaweedFS).
stamp "tests: jest"
mkdir -p test-results
rm -f test-results/jest.json
set +e
npx jest --maxWorkers=2 --ci --json --outputFile=test-results/jest.json "$@"
status=$?
set -e
stamp "jest exited with code $status; whole run done"
# The closing line, in the plain 'N passed, N failed, N skipped' form.
if [ -f test-results/jest.json ]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    const broken = r.testResults.filter((t) => t.status === "failed" && t.assertionResults.length === 0).length;
    if (broken) console.log(`${broken} test file(s) failed to run`);
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests + broken} failed, ${skipped} skipped`);
  ' "$ROOT/test-results/jest.json"
else
  echo "jest: 0 passed, 1 failed (no results written)"
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
