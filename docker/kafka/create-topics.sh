#!/usr/bin/env bash
# Creates the three input topics, their dead-letter topics and the alerts topic with one partition count (co-partitioning),
# and the rules topic the workers follow.
set -euo pipefail
for topic in orders billing complaints orders.dlq billing.dlq complaints.dlq alerts; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1
done
# The rules topic: one partition (bundles in publish order), kept forever (a worker starting reads the newest).
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
  --topic yujing-rules --partitions 1 --replication-factor 1 --config retention.ms=-1
