#!/usr/bin/env bash
# Creates the three input topics, their dead-letter topics and the alerts topic with one partition count (co-partitioning).
set -euo pipefail
for topic in orders billing complaints orders.dlq billing.dlq complaints.dlq alerts; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1
done
