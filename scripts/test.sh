#!/usr/bin/env bash
# Sets everything up (venv, test tools, the real servers) and runs the whole suite:
# ruff, the unit tests and the integration tests against real tansu, ClickHouse and Prometheus.
# Extra arguments go to pytest (e.g. -k worker, -x). The integration tests run one after another on one xdist worker
# (they share the servers and mostly wait on them); the unit tests run beside them on the others.
# YUJING_TEST_PROCESSES=0 runs everything in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/servers.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null
echo "==> pytest"
processes=${YUJING_TEST_PROCESSES:-2}
parallel=()
[ "$processes" != 0 ] && parallel=(-n "$processes" --dist loadgroup)
exec .venv/bin/python -m pytest -p no:cacheprovider "${parallel[@]}" "$@"
