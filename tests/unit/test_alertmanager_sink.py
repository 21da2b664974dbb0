"""The Alertmanager sink's re-sends never overtake a resolve: Alertmanager's last word on an alert is the sink's."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sinks.alertmanager import AlertmanagerSink
from tests.unit.test_sinks import make_alert
from yujing.alerts import Alert


class SlowResendAlertmanager:
    """Stands in for the HTTP post: records each alert's status in the order posts *arrive*, and holds the first
    re-send on its way until released (a slow network, a busy Alertmanager)."""

    def __init__(self) -> None:
        self.arrived: list[tuple[str, str]] = []
        self.resend_on_its_way = threading.Event()
        self.release_resend = threading.Event()

    def post(self, alerts: Sequence[Alert]) -> None:
        if threading.current_thread().name == "resend":
            self.resend_on_its_way.set()
            self.release_resend.wait(5)
        self.arrived.extend((a.alert_id, a.status) for a in alerts)


def test_a_resolve_written_during_a_resend_arrives_after_it() -> None:
    sink = AlertmanagerSink("http://127.0.0.1:1", resend_interval=0)
    am = SlowResendAlertmanager()
    sink._post = am.post  # type: ignore[method-assign]
    firing, resolved = make_alert("firing"), make_alert("resolved")
    sink.write_chunk([firing])
    resend = threading.Thread(target=sink.resend, name="resend")
    resend.start()
    assert am.resend_on_its_way.wait(5)
    writer = threading.Thread(target=sink.write_chunk, args=([resolved],), name="writer")
    writer.start()
    writer.join(0.5)  # the resolve waits for the re-send on its way (with the race, it arrived in this time)
    am.release_resend.set()
    resend.join(5)
    writer.join(5)
    assert am.arrived[-1] == (resolved.alert_id, "resolved"), am.arrived  # not brought back by the stale re-send
    assert sink.firing == {}
    assert sink.resend() == 0  # nothing left to keep alive
