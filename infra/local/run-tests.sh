#!/usr/bin/env bash
# `make test`: start every real part the suite needs in a state directory of its own
# (.phoenix-test, other ports than the demo), run pytest, and stop what was started,
# also when the tests fail. Exits non-zero on any failure or error.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv}
shift || true

export PHOENIX_HOME=${PHOENIX_HOME:-$PWD/.phoenix-test}
export PHOENIX_PREFECT__PORT=${PHOENIX_PREFECT__PORT:-4211}
export PHOENIX_RBD__MON_PORT=${PHOENIX_RBD__MON_PORT:-6799}
export PHOENIX_RBD__POOL=${PHOENIX_RBD__POOL:-phoenix-test}
export PHOENIX_KUBERNETES__API_PORT=${PHOENIX_KUBERNETES__API_PORT:-6453}
export PHOENIX_KUBERNETES__ETCD_PORT=${PHOENIX_KUBERNETES__ETCD_PORT:-2389}
export PHOENIX_ANON_KEY=${PHOENIX_ANON_KEY:-test-key-not-secret-0123456789abcdef}
export PREFECT_API_URL="http://127.0.0.1:${PHOENIX_PREFECT__PORT}/api"
export PREFECT_HOME="$PHOENIX_HOME/prefect"
export PREFECT_SERVER_ANALYTICS_ENABLED=false

cleanup() { "$VENV/bin/phoenix" stack down >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

# The fast tier first (pure code and the linters: seconds), then the real parts.
make --no-print-directory unit VENV="$VENV" || exit 1
"$VENV/bin/phoenix" stack up --ceph --kubernetes || exit 1
# The slowest tests are listed at the end: where the CI budget goes.
"$VENV/bin/python" -m pytest -p no:cacheprovider --durations=40 --ignore=tests/unit "$@" tests
