"""Group notifications to a generic webhook: one JSON POST per group of alerts with equal group labels.

Run behind a :class:`sinks.outbox.BufferedSink` whose ``linger`` is the
policy's ``group.interval``: the thread collects what was sent during the
interval and this sink posts it as one message per ``group.by`` labels (e.g.
one per region every five minutes). The alerts stay in the outbox state until
their group is posted, so a restart re-sends them, with the same ``group_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sinks.base import RetryingSink
from sinks.http import post_json
from yujing.alerts import Alert
from yujing.groups import group_alerts

__all__ = ["WebhookSink"]


class WebhookSink(RetryingSink):
    """POSTs each group (``group_id``, ``labels``, counts, up to 50 alerts) as JSON.

    >>> WebhookSink("http://127.0.0.1:8080/hook", group_by=("region",)).group_by
    ('region',)
    """

    name = "webhook"
    receives = "sent"

    def __init__(
        self,
        url: str,
        *,
        group_by: Sequence[str] = ("region",),
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_batch", 100_000)  # a batch is what the interval collected
        super().__init__(**kwargs)
        self.url = url
        self.group_by = tuple(group_by)
        self.timeout = timeout
        self.headers = headers or {}

    def write(self, alerts: Sequence[Alert]) -> None:
        for group in group_alerts(alerts, self.group_by):
            payload = msgspec.to_builtins(group)
            self.retry(lambda payload=payload: post_json(self.url, payload, self.timeout, self.headers))
            self.observer.batch(self.name, group.count)
