"""Alerts to Alertmanager's API v2 (``POST /api/v2/alerts``), re-sent while firing.

Each alert becomes an Alertmanager alert whose labels are the alert's labels
plus ``alertname`` (the rule id), ``alert_id``, ``source`` and ``severity``;
its annotations carry the summary, a link to the evidence, and the evidence
itself (JSON, cut to 4 KB). Alertmanager forgets a firing alert that is not
re-sent within its ``resolve_timeout``, so this sink re-sends the alerts it
knows to be firing every ``resend_interval`` (wall clock) for up to
``resend_for`` after it first sent them, and sends ``endsAt`` when one resolves.
After a restart or a rebalance the pipeline hands it the alerts still firing on
the partitions the process owns (:meth:`restore`): only those are kept alive.
From the moment a rebalance begins until then (:meth:`suspend`) nothing is
re-sent: a partition given away may already be another worker's, which can
resolve one of its alerts before this process learns what it still owns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sinks.base import RetryingSink
from sinks.http import post_json
from yujing.alerts import Alert

__all__ = ["AlertmanagerSink", "am_alert"]

log = logging.getLogger(__name__)

MAX_EVIDENCE_CHARS = 4096


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def am_alert(alert: Alert, evidence_url: str = "") -> dict[str, Any]:
    """The Alertmanager v2 ``postableAlert`` of an alert."""
    labels = {k: v for k, v in alert.labels.items() if v != ""}
    labels.update(alertname=alert.rule_id, alert_id=alert.alert_id, source=alert.source, severity=alert.severity)
    evidence = json.dumps(alert.evidence, ensure_ascii=False, sort_keys=True, default=str)
    annotations = {
        "summary": alert.summary,
        "evidence": evidence if len(evidence) <= MAX_EVIDENCE_CHARS else evidence[: MAX_EVIDENCE_CHARS - 1] + "…",
        "rule_version": alert.rule_version,
    }
    link = evidence_url.format(alert_id=alert.alert_id, rule_id=alert.rule_id) if evidence_url else ""
    if link:
        annotations["evidence_url"] = link
    body: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": _iso(alert.starts_at)}
    if link:
        body["generatorURL"] = link
    if alert.status == "resolved":
        body["endsAt"] = _iso(alert.ends_at or alert.detected_at)
    return body


class AlertmanagerSink(RetryingSink):
    """Posts sent alerts to Alertmanager and keeps the firing ones alive.

    >>> sink = AlertmanagerSink("http://127.0.0.1:9093", resend_interval=0)
    >>> sink.endpoint
    'http://127.0.0.1:9093/api/v2/alerts'
    """

    name = "alertmanager"
    receives = "sent"

    def __init__(
        self,
        url: str,
        *,
        evidence_url: str = "",
        resend_interval: float = 60.0,
        resend_for: float = 86400.0,
        max_firing: int = 50_000,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_batch", 500)
        super().__init__(**kwargs)
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.evidence_url = evidence_url
        self.resend_interval = resend_interval
        self.resend_for = resend_for
        self.max_firing = max_firing
        self.timeout = timeout
        self.firing: OrderedDict[str, tuple[Alert, float]] = OrderedDict()  # id → (alert, first sent, wall clock)
        # Guards ``firing`` (restore() comes from another thread) and makes each post one step with its update of
        # ``firing``: a re-send posts a snapshot of the firing alerts, and a resolve posted while that re-send was on
        # its way would arrive first; the stale "firing" after it would bring the resolved alert back in
        # Alertmanager until its resolve_timeout.
        self._lock = threading.Lock()
        self.suspended = False  # a rebalance under way: which alerts are this process's to keep alive is unknown
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None
        if resend_interval > 0:
            self._resender = threading.Thread(target=self._resend_loop, name="alertmanager-resend", daemon=True)
            self._resender.start()

    def _post(self, alerts: Sequence[Alert]) -> None:
        post_json(self.endpoint, [am_alert(a, self.evidence_url) for a in alerts], timeout=self.timeout)

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        with self._lock:
            self._post(alerts)
            now = time.time()
            for alert in alerts:
                if alert.status == "firing":
                    self.firing[alert.alert_id] = (alert, now)
                    self.firing.move_to_end(alert.alert_id)
                    while len(self.firing) > self.max_firing:
                        self.firing.popitem(last=False)
                else:
                    self.firing.pop(alert.alert_id, None)

    def suspend(self) -> None:
        """A rebalance began: re-send nothing until :meth:`restore` says which alerts this process still owns.

        Until then a partition given away may already be its new owner's, which can resolve one of its alerts;
        a re-send from here after that resolve would make it fire again in Alertmanager (seen with three workers
        and five kills: Alertmanager held alerts whose resolve had been sent)."""
        with self._lock:
            self.suspended = True

    def restore(self, alerts: Sequence[Alert]) -> None:
        """The alerts still firing after a restart or a rebalance (those of the partitions this process now owns):
        from now on the ones re-sent, each for ``resend_for`` from when it was first sent here if it was, else
        from when it was raised (its ``detected_at``, the pipeline's wall clock): a restart does not extend it.

        What is not among them belongs to partitions given away: their new owner keeps them alive from its state,
        and a re-send from here after it resolved one there would make it fire again in Alertmanager."""
        now = time.time()
        with self._lock:
            known = self.firing
            self.firing = OrderedDict((a.alert_id, known.get(a.alert_id) or (a, min(now, a.detected_at.timestamp()))) for a in alerts)
            while len(self.firing) > self.max_firing:
                self.firing.popitem(last=False)
            self.suspended = False

    def resend(self, now: float | None = None) -> int:
        """Send the firing alerts again (those first sent less than ``resend_for`` ago); returns how many (none while
        a rebalance is under way: :meth:`suspend`)."""
        now = time.time() if now is None else now
        with self._lock:
            if self.suspended:
                return 0
            for key in [k for k, (_, first) in self.firing.items() if now - first > self.resend_for]:
                del self.firing[key]
            alive = [alert for alert, _ in self.firing.values()]
            for start in range(0, len(alive), self.max_batch):
                self._post(alive[start : start + self.max_batch])
        return len(alive)

    def _resend_loop(self) -> None:
        while not self._stop.wait(self.resend_interval):
            try:
                self.resend()
            except Exception as exc:  # the next round tries again; the failure is counted
                self.observer.failure(self.name)
                log.warning("alertmanager: re-send failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
