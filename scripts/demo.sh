#!/usr/bin/env bash
# Sets everything up and runs the demo: a simulated day through the engine, live in the console.
# Extra arguments go to `yujing demo` (e.g. --seconds 120, --port 9464).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/yujing demo "$@"
