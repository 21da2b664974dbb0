"""The Alertmanager sink: its re-sends never overtake a resolve (Alertmanager's last word on an alert is the sink's), and
after a rebalance it keeps alive only the alerts of the partitions it still owns."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import msgspec

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


def test_after_a_rebalance_only_the_alerts_of_the_partitions_still_owned_are_kept_alive() -> None:
    """A worker that gave a partition away must stop re-sending its firing alerts: the new owner keeps them alive
    from its state, and when one resolves there, a re-send from here would make it fire again in Alertmanager
    (for up to ``resend_for``, a day by default)."""
    sink = AlertmanagerSink("http://127.0.0.1:1", resend_interval=0, resend_for=3600)
    posted: list[tuple[str, str]] = []
    sink._post = lambda alerts: posted.extend((a.alert_id, a.status) for a in alerts)  # type: ignore[method-assign]
    kept, moved = msgspec.structs.replace(make_alert(), alert_id="kept"), msgspec.structs.replace(make_alert(), alert_id="moved")
    arrived = msgspec.structs.replace(make_alert(), alert_id="arrived", detected_at=dt.datetime.now(dt.UTC))  # raised lately
    sink.write_chunk([kept, moved])
    first_sent = sink.firing["kept"][1]
    sink.restore([kept, arrived])  # the recovery after the rebalance: what the partitions now owned have open
    posted.clear()
    assert sink.resend() == 2
    assert sorted(posted) == [("arrived", "firing"), ("kept", "firing")]
    assert sink.firing["kept"][1] == first_sent  # still kept alive for resend_for from when it was first sent


def test_from_the_start_of_a_rebalance_until_the_restore_nothing_is_re_sent() -> None:
    """Between a rebalance's start and this process's recovery, a partition it gave away may be its new owner's,
    which can resolve an alert: a re-send from here then would make it fire again in Alertmanager."""
    sink = AlertmanagerSink("http://127.0.0.1:1", resend_interval=0)
    posted: list[str] = []
    sink._post = lambda alerts: posted.extend(a.alert_id for a in alerts)  # type: ignore[method-assign]
    kept, moved = msgspec.structs.replace(make_alert(), alert_id="kept"), msgspec.structs.replace(make_alert(), alert_id="moved")
    sink.write_chunk([kept, moved])
    posted.clear()
    sink.suspend()
    assert sink.resend() == 0 and posted == []
    sink.restore([kept])
    assert sink.resend() == 1 and posted == ["kept"]


def test_a_restart_does_not_keep_an_alert_alive_longer_than_resend_for_from_when_it_was_raised() -> None:
    """After a restart the sink knows nothing of when it sent an alert: it counts ``resend_for`` from the alert's
    ``detected_at`` (when the pipeline raised it), so every restart does not grant it another ``resend_for``."""
    now = dt.datetime.now(dt.UTC)
    sink = AlertmanagerSink("http://127.0.0.1:1", resend_interval=0, resend_for=86400)
    sink._post = lambda alerts: None  # type: ignore[method-assign]
    old = msgspec.structs.replace(make_alert(), alert_id="old", detected_at=now - dt.timedelta(days=2))
    recent = msgspec.structs.replace(make_alert(), alert_id="recent", detected_at=now - dt.timedelta(hours=1))
    sink.restore([old, recent])
    assert sink.resend() == 1 and list(sink.firing) == ["recent"]
    assert abs(sink.firing["recent"][1] - recent.detected_at.timestamp()) < 1e-6
