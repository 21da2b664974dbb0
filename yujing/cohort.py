"""Cohort records: what a rule grouped by a cohort (a region, a product, a channel) hands to the cohort stage.

Partitions are keyed by customer, so one partition sees only a slice of a
region's complaints. A cohort rule therefore works in two halves: per
partition it turns each matching event into a small :class:`CohortRecord`
(its group, time and id, and what it counts as); the engine's cohort stage
collects the records of every partition, keyed by group, and runs the
rule's windows there, with a watermark that is the minimum over the
partitions the records came from.
"""

from __future__ import annotations

import datetime as dt

import msgspec

__all__ = ["CUSTOMER_FIELDS", "CohortRecord", "is_cohort_grouping"]

#: Fields that belong to one customer: a grouping by these stays inside a partition.
CUSTOMER_FIELDS = frozenset({"customer_id", "order_id", "complaint_id", "bill_id"})


def is_cohort_grouping(fields: tuple[str, ...]) -> bool:
    """True when a grouping spans customers (and so partitions)."""
    return not any(f in CUSTOMER_FIELDS for f in fields)


class CohortRecord(msgspec.Struct, array_like=True, frozen=True):
    """One event as a cohort rule counts it."""

    event_type: str  # "cohort:<rule id>": how the cohort stage dispatches it
    key: str  # the group
    ts: dt.datetime
    event_id: str
    stream: str  # the partition it came from ("p3"): the cohort stage's watermark is the min over them
    role: str = "hit"  # what it counts as: "hit", or for ratios "num" / "den"
    value: str = ""  # the distinct-counted value
    labels: dict[str, str] = {}
