"""Group notifications to a generic webhook: one JSON POST per group (labels, interval, counts, alerts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sinks.base import RetryingSink
from sinks.http import post_json
from yujing.groups import AlertGroup

__all__ = ["WebhookSink"]


class WebhookSink(RetryingSink):
    """POSTs each :class:`AlertGroup` as JSON; the body's ``group_id`` lets a receiver drop a repeat.

    >>> WebhookSink("http://127.0.0.1:8080/hook").receives
    'groups'
    """

    name = "webhook"
    receives = "groups"

    def __init__(self, url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("max_batch", 50)
        super().__init__(**kwargs)
        self.url = url
        self.timeout = timeout
        self.headers = headers or {}

    def write_groups(self, groups: Sequence[AlertGroup]) -> None:
        for group in groups:
            payload = msgspec.to_builtins(group)
            self.retry(lambda payload=payload: post_json(self.url, payload, self.timeout, self.headers))
            self.observer.batch(self.name, group.count)

    def write_chunk(self, alerts: Sequence[Any]) -> None:
        raise TypeError("the webhook receives group notifications (write_groups)")
