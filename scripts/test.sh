#!/usr/bin/env bash
# Sets everything up (venv, test tools, the real servers) and runs the whole suite:
# ruff, the unit tests and the integration tests against real tansu, ClickHouse and Prometheus.
# Extra arguments go to pytest (e.g. -k worker, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/servers.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null
echo "==> pytest"
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
