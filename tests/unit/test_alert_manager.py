"""The alert manager's stages, driven through the real engine by a scripted rule.

The rule raises an alert per complaint: ``opened`` fires it, ``closed`` resolves
it; its ``rule_id`` and labels come from the complaint (``product`` names the
rule, so one stream can carry several rules' alerts). Rule ``critical`` raises
critical alerts, rule ``redline`` alerts labelled ``category=redline``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.alerting import AlertManager, parse_matchers
from streams.alerting.manager import OVERFLOW_LABEL, Dispatch
from streams.alerting.policy import PolicyError, load_policy, parse_policy
from streams.alerting.silences import SilenceFile, new_silence
from streams.engine import DictBackend, Engine, EngineConfig
from tests.helpers import T0, complaint, order, to_event
from yujing.alerts import Alert, alert_id
from yujing.events import ComplaintEvent

REDLINE = {"redline": {"category": "redline"}}


class Scripted:
    """Fires on ``complaint.opened``, resolves on ``complaint.closed``; the complaint's product is the rule id."""

    rule_id = "scripted"
    version = "1"
    event_types = frozenset({"complaint.opened", "complaint.closed"})

    def on_event(self, event: ComplaintEvent, ts: float, ctx: Any) -> None:  # type: ignore[override]
        rule = event.product or "r"
        firing = event.event_type == "complaint.opened"
        when = event.ts
        ctx.emit(
            Alert(
                alert_id=alert_id(rule, event.complaint_id),
                source="cohort_spike" if rule == "outage" else "rule",
                rule_id=rule,
                rule_version="1",
                severity="critical" if rule == "critical" else "major",
                status="firing" if firing else "resolved",
                starts_at=when if firing else T0,
                detected_at=dt.datetime.now(dt.UTC),
                ends_at=None if firing else when,
                labels={
                    "region": event.region or "",
                    "customer_id": event.customer_id,
                    **({"category": "redline"} if rule == "redline" else {}),
                },
                summary="投诉告警",
                evidence={},
            )
        )

    def on_timer(self, key: str, fire_at: float, ctx: Any) -> None:
        pass


def engine_with(policy: dict[str, Any] | None = None, backend: DictBackend | None = None) -> Engine:
    backend = backend or DictBackend()
    config = EngineConfig(allowed_lateness=0.0, idle_after=None)
    manager = AlertManager(parse_policy(policy), backend, config.dedup_retention, config.partitions)
    return Engine([Scripted()], backend, config, alerting=manager)


def opened(minutes: float, cid: str, rule: str = "r", region: str = "杭州", customer: str = "c-1") -> dict[str, Any]:
    return complaint("opened", minutes, complaint_id=cid, customer=customer, region=region, product=rule)


def closed(minutes: float, cid: str, rule: str = "r", region: str = "杭州", customer: str = "c-1") -> dict[str, Any]:
    return complaint("closed", minutes, complaint_id=cid, customer=customer, region=region, product=rule)


def feed(engine: Engine, events: list[dict[str, Any]], close: bool = True) -> Dispatch:
    out = Dispatch()
    for e in events:
        engine.process([(0, to_event(e))])
        out.decisions += engine.take_dispatch().decisions
    if close:
        engine.close_input(float("inf"))
        out.decisions += engine.take_dispatch().decisions
    return out


def held(dispatch: Dispatch) -> dict[tuple[str, str], str | None]:
    return {(d.alert.alert_id, d.alert.status): d.held for d in dispatch.decisions}


def test_default_policy_sends_each_alert_once_and_its_resolve() -> None:
    engine = engine_with()
    out = feed(engine, [opened(0, "a"), opened(1, "a"), closed(5, "a"), closed(6, "a")])
    assert [(d.alert.status, d.held) for d in out.decisions] == [("firing", None), ("resolved", None)]


def test_a_resolve_is_sent_only_if_its_firing_was() -> None:
    engine = engine_with({"realert": "1h"})
    out = feed(engine, [opened(0, "a"), opened(10, "b"), closed(20, "b")])  # b: same rule and labels as a
    decisions = held(out)
    assert decisions[(alert_id("r", "b"), "firing")] == "realert"
    assert decisions[(alert_id("r", "b"), "resolved")] == "not_sent"


def test_realert_holds_back_the_same_labels_within_the_interval_then_lets_one_through() -> None:
    engine = engine_with({"realert": "30m", "rules": {"other": {"realert": "0s"}}})
    events = [opened(0, "a"), opened(10, "b"), opened(29, "c"), opened(31, "d"), opened(5, "e", customer="c-2")]
    events += [opened(11, "x", rule="other"), opened(12, "y", rule="other")]
    decisions = held(feed(engine, events))
    status = {cid: decisions[(alert_id(rule, cid), "firing")] for rule, cid in [("r", "a"), ("r", "b"), ("r", "c"), ("r", "d"), ("r", "e")]}
    assert status == {"a": None, "b": "realert", "c": "realert", "d": None, "e": None}  # e: other labels
    assert decisions[(alert_id("other", "y"), "firing")] is None  # the rule's override turns realert off


def test_realert_state_is_cleared_by_its_timer() -> None:
    engine = engine_with({"realert": "30m"})
    feed(engine, [opened(0, "a"), opened(100, "b", customer="c-9")])
    assert not dict(engine.alerting.realerts.items()) or all(v >= (T0.timestamp() + 100 * 60) for _, v in engine.alerting.realerts.items())


def test_silence_mutes_matching_alerts_only_while_active(tmp_path) -> None:
    engine = engine_with()
    now = dt.datetime.now(dt.UTC).timestamp()
    log = SilenceFile(tmp_path / "silences.jsonl")
    s = log.add(new_silence(["region=杭州", "rule_id=r"], starts_at=now - 60, ends_at=now + 3600, created_by="li", comment="cable cut"))
    log.add(new_silence(["region=宁波"], starts_at=now - 7200, ends_at=now - 3600))  # over already
    engine.alerting.set_silences(log.current())
    decisions = held(feed(engine, [opened(0, "a"), opened(1, "b", region="宁波"), opened(2, "c", rule="q")]))
    assert decisions[(alert_id("r", "a"), "firing")] == f"silenced:{s.id}"
    assert decisions[(alert_id("r", "b"), "firing")] is None
    assert decisions[(alert_id("q", "c"), "firing")] is None
    log.expire(s.id, now)
    engine.alerting.set_silences(log.current())
    assert held(feed(engine, [opened(3, "d", customer="c-3")]))[(alert_id("r", "d"), "firing")] is None


def test_a_silence_may_match_by_regular_expression_as_in_alertmanager() -> None:
    """Alertmanager's silences may use =~ and !~ (anchored); Yujing matches them the same way, through RE2."""
    engine = engine_with()
    now = dt.datetime.now(dt.UTC).timestamp()
    engine.alerting.set_silences({"s": new_silence(["region=~杭.*|宁波", "rule_id!~q.*"], starts_at=now - 10, ends_at=now + 600)})
    events = [opened(0, "a"), opened(1, "b", region="宁波", customer="c-2"), opened(2, "c", region="温州", customer="c-3")]
    events.append(opened(3, "d", rule="q", customer="c-4"))
    decisions = held(feed(engine, events))
    assert [decisions[(alert_id(r, c), "firing")] is not None for r, c in [("r", "a"), ("r", "b"), ("r", "c"), ("q", "d")]] == [
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="RE2"):
        new_silence(["region=~("], starts_at=0, ends_at=1)


def test_silence_file_reports_bad_lines_and_keeps_the_rest(tmp_path) -> None:
    log = SilenceFile(tmp_path / "s.jsonl")
    s = log.add(new_silence(["severity=info"], starts_at=0, ends_at=10))
    with open(log.path, "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    assert list(log.current()) == [s.id]
    assert len(log.problems) == 1 and ":2:" in log.problems[0]
    with pytest.raises(ValueError, match="at least one matcher"):
        new_silence([], starts_at=0, ends_at=10)
    with pytest.raises(ValueError, match="end after"):
        new_silence(["a=b"], starts_at=10, ends_at=10)
    with pytest.raises(KeyError):
        log.expire("nope", 0)


INHIBIT = {"inhibit": [{"name": "outage", "source": ["source=cohort_spike"], "target": ["source=rule"], "equal": ["region"]}]}


def test_a_firing_outage_inhibits_the_alerts_it_explains_until_it_resolves() -> None:
    engine = engine_with(INHIBIT)
    events = [
        opened(0, "o1", rule="outage"),  # a cohort alert in 杭州
        opened(5, "a"),  # 杭州: explained
        opened(6, "b", region="宁波", customer="c-2"),  # another region: sent
        closed(10, "o1", rule="outage"),
        opened(11, "c", customer="c-3"),  # after the outage resolved: sent
    ]
    decisions = held(feed(engine, events))
    assert decisions[(alert_id("r", "a"), "firing")] == f"inhibited:outage:{alert_id('outage', 'o1')}"
    assert decisions[(alert_id("r", "b"), "firing")] is None
    assert decisions[(alert_id("r", "c"), "firing")] is None
    assert decisions[(alert_id("outage", "o1"), "firing")] is None  # a source is not a target of itself


def test_a_silenced_source_still_inhibits() -> None:
    engine = engine_with(INHIBIT)
    now = dt.datetime.now(dt.UTC).timestamp()
    engine.alerting.set_silences({"s": new_silence(["rule_id=outage"], starts_at=now - 10, ends_at=now + 600)})
    decisions = held(feed(engine, [opened(0, "o1", rule="outage"), opened(5, "a")]))
    assert decisions[(alert_id("outage", "o1"), "firing")].startswith("silenced:")
    assert decisions[(alert_id("r", "a"), "firing")].startswith("inhibited:")


def test_critical_and_red_line_alerts_are_never_inhibited_realerted_or_rate_limited() -> None:
    policy = {**INHIBIT, "realert": "1h", "rate_limit": {"max": 1, "per": "1h"}}
    engine = engine_with(policy)
    events = [opened(0, "o1", rule="outage")]  # an outage fires in 杭州 ...
    events += [
        opened(1 + i, f"{rule}{i}", rule=rule) for rule in ("critical", "redline") for i in range(3)
    ]  # ... same customer, same labels
    events += [opened(10, "x", rule="r"), opened(11, "y", rule="r", region="宁波")]
    decisions = held(feed(engine, events))
    for rule in ("critical", "redline"):
        assert [decisions[(alert_id(rule, f"{rule}{i}"), "firing")] for i in range(3)] == [None, None, None]
    assert decisions[(alert_id("r", "x"), "firing")].startswith("inhibited:")  # the others still are
    assert decisions[(alert_id("r", "y"), "firing")] is None


def test_a_silence_still_holds_a_critical_alert(tmp_path) -> None:
    """Only an operator's explicit silence, recorded with its author and reason, holds back a red line."""
    engine = engine_with()
    now = dt.datetime.now(dt.UTC).timestamp()
    engine.alerting.set_silences({"s": new_silence(["rule_id=critical"], starts_at=now - 10, ends_at=now + 600)})
    assert held(feed(engine, [opened(0, "a", rule="critical")]))[(alert_id("critical", "a"), "firing")].startswith("silenced:")


def test_the_policy_cannot_unprotect_red_lines() -> None:
    with pytest.raises(PolicyError, match=r"inhibit\[0\]\.target: severity=critical alerts are always sent"):
        parse_policy({"inhibit": [{"source": ["source=cohort_spike"], "target": ["severity=critical"]}]})
    with pytest.raises(PolicyError, match=r"inhibit\[0\]\.target: category=redline"):
        parse_policy({"inhibit": [{"source": ["a=b"], "target": ["source=rule", "category=redline"]}]})
    with pytest.raises(PolicyError, match=r"protected\[0\]: an empty matcher list"):
        parse_policy({"protected": [[]]})
    policy = parse_policy({"protected": [["rule_id=refund-overdue"]]})
    assert len(policy.protected) == 3  # the built-in two stay


def test_rate_limit_sends_max_then_one_overflow_summary_resolved_with_the_count() -> None:
    engine = engine_with({"rate_limit": {"max": 3, "per": "1h"}})
    events = [opened(i, f"a{i}", customer=f"c-{i}") for i in range(10)]
    out = feed(engine, events)
    sent = [d.alert for d in out.decisions if d.held is None and d.alert.labels.get(OVERFLOW_LABEL) != "true"]
    limited = [d for d in out.decisions if d.held == "rate_limited"]
    overflow = [d.alert for d in out.decisions if d.alert.labels.get(OVERFLOW_LABEL) == "true"]
    assert len(sent) == 3 and len(limited) == 7
    assert [a.status for a in overflow] == ["firing", "resolved"]
    assert overflow[0].alert_id == overflow[1].alert_id
    assert overflow[1].evidence["held"] == 7 and overflow[1].evidence["sent"] == 3
    assert "超过 3 条" in overflow[0].summary  # in the rule's language
    assert all(d.held is None for d in out.decisions if d.alert.labels.get(OVERFLOW_LABEL) == "true")


def test_rate_limit_counts_afresh_in_the_next_interval() -> None:
    engine = engine_with({"rate_limit": {"max": 2, "per": "1h"}})
    events = [opened(i, f"a{i}", customer=f"c-{i}") for i in range(4)] + [opened(70 + i, f"b{i}", customer=f"d-{i}") for i in range(2)]
    decisions = held(feed(engine, events))
    assert [decisions[(alert_id("r", f"b{i}"), "firing")] for i in range(2)] == [None, None]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=1, max_size=30),  # complaints' minutes
    st.lists(st.integers(0, 300), max_size=10),  # orders' minutes (a second stream: it moves the watermark too)
    st.integers(1, 8),  # the interleaved reading's batch size
)
def test_rate_limit_buckets_do_not_depend_on_how_the_streams_were_read(complaints, orders, batch) -> None:
    """An alert counts in the interval of its own time, not of the watermark its batch had reached: one worker and
    three (other fetches, other interleavings of the topics) must raise the same overflow alerts (bench/suite.py
    item 7 found them differing)."""
    policy = {"rate_limit": {"max": 2, "per": "30m"}}
    made = [opened(m, f"a{i}", customer=f"c-{i}") for i, m in enumerate(sorted(complaints))]
    made += [order("created", m, order_id=f"o{i}", customer=f"c-{i}") for i, m in enumerate(sorted(orders))]

    def overflow(batches: list[list[dict[str, Any]]]) -> set[tuple[Any, ...]]:
        engine = Engine([Scripted()], DictBackend(), EngineConfig(allowed_lateness=6 * 3600.0, idle_after=None))  # none late
        engine.alerting = AlertManager(parse_policy(policy), engine.backend, engine.config.dedup_retention, engine.config.partitions)
        decisions = []
        for part in batches:
            engine.process([(0, to_event(e)) for e in part])
            decisions += engine.take_dispatch().decisions
        engine.close_input(float("inf"))
        decisions += engine.take_dispatch().decisions
        return {
            (d.alert.alert_id, d.alert.status, d.alert.summary, d.alert.starts_at)
            for d in decisions
            if d.alert.labels.get(OVERFLOW_LABEL) == "true"
        }

    in_time_order = sorted(made, key=lambda e: e["ts"])
    by_stream = [e for e in made if e["event_type"] == "order.created"] + [e for e in made if e["event_type"] != "order.created"]
    one_by_one = overflow([[e] for e in in_time_order])
    assert overflow([in_time_order[i : i + batch] for i in range(0, len(made), batch)]) == one_by_one
    assert overflow([by_stream]) == one_by_one  # every order read before any complaint


def test_rate_limits_count_per_input_partition_each_with_its_own_overflow_alert() -> None:
    """Per rule, interval and input partition, as the policy says: one worker or several count the same, and each
    partition's count is its own state key (one key written from every partition was a count per worker)."""
    engine = engine_with({"rate_limit": {"max": 2, "per": "1h"}})
    decisions = []
    for p in (0, 1):
        engine.process([(p, to_event(opened(i, f"p{p}-{i}", customer=f"c-{p}-{i}"))) for i in range(3)])
        decisions += engine.take_dispatch().decisions
    engine.close_input(float("inf"))
    decisions += engine.take_dispatch().decisions
    assert [d.held for d in decisions if d.alert.labels.get(OVERFLOW_LABEL) != "true"].count("rate_limited") == 2  # 3rd of each
    overflow = [d.alert for d in decisions if d.alert.labels.get(OVERFLOW_LABEL) == "true"]
    assert len({a.alert_id for a in overflow}) == 2 and len(overflow) == 4  # firing and resolved, per partition
    assert sorted(a.evidence["partition"] for a in overflow if a.status == "resolved") == [0, 1]
    assert all("分区" in a.summary and a.evidence["held"] == 1 for a in overflow if a.status == "resolved")


def test_state_survives_a_restart() -> None:
    backend = DictBackend()
    first = engine_with({**INHIBIT, "realert": "1h"}, backend)
    now = dt.datetime.now(dt.UTC).timestamp()
    first.alerting.set_silences({"s": new_silence(["region=上海"], starts_at=now - 10, ends_at=now + 600)})
    feed(first, [opened(0, "o1", rule="outage"), opened(1, "a")], close=False)
    first.commit()
    second = engine_with({**INHIBIT, "realert": "1h"}, backend)
    second.recover()
    events = [opened(2, "b", customer="c-2"), opened(3, "c", region="上海", customer="c-3"), opened(4, "a2")]
    decisions = held(feed(second, events, close=False))
    assert decisions[(alert_id("r", "b"), "firing")].startswith("inhibited:")  # the outage source came back
    assert decisions[(alert_id("r", "c"), "firing")].startswith("silenced:")  # and the silence
    assert [a.rule_id for a in second.alerting.open_alerts()] == ["outage"]  # and what is firing, for re-sending notifiers


def test_policy_errors_name_the_place(tmp_path) -> None:
    with pytest.raises(PolicyError, match=r"inhibit\[0\]: `target` matchers are required"):
        parse_policy({"inhibit": [{"source": ["a=b"]}]})
    with pytest.raises(PolicyError, match=r"rate_limit.max"):
        parse_policy({"rate_limit": {"max": 0}})
    with pytest.raises(PolicyError, match="regular expressions"):
        parse_policy({"inhibit": [{"source": ["region=~杭.*"], "target": ["a=b"]}]})
    with pytest.raises(PolicyError, match="unknown key"):
        parse_policy({"realret": "1h"})
    with pytest.raises(PolicyError, match=r"rules.x.realert"):
        parse_policy({"rules": {"x": {"realert": "soon"}}})
    (tmp_path / "alerting.policy.yaml").write_text("realert: [1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"alerting\.policy\.yaml"):
        load_policy(tmp_path)
    assert parse_matchers(["severity!=info"])[0].op == "!="


def test_the_default_pack_policy_loads_and_its_rules_exist() -> None:
    from rules.loader import load_rules
    from streams.config import default_rules_dir

    policy = load_policy(default_rules_dir())
    ids = {r.rule_id for r in load_rules(default_rules_dir()).rules}
    assert policy.inhibit and set(policy.per_rule) <= ids


# -- invariants ---------------------------------------------------------------------------
step = st.tuples(
    st.integers(0, 240),  # minute
    st.sampled_from(["a", "b", "c", "d", "e", "f"]),  # complaint
    st.sampled_from(["r", "outage"]),
    st.sampled_from(["杭州", "宁波"]),
    st.booleans(),  # opened or closed
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=40), st.sampled_from([{}, {"realert": "20m"}, {"rate_limit": {"max": 2, "per": "30m"}}, INHIBIT]))
def test_every_alert_gets_one_decision_resolves_follow_firings_and_replays_change_nothing(steps, policy) -> None:
    made = [(opened if is_open else closed)(m, cid, rule=rule, region=region, customer=cid) for m, cid, rule, region, is_open in steps]
    events = sorted(made, key=lambda e: e["ts"])
    engine = engine_with(policy)
    first = feed(engine, events, close=False)
    assert len(first.decisions) == len({(d.alert.alert_id, d.alert.status) for d in first.decisions})
    again = feed(engine, events, close=False)  # a redelivery of everything
    assert not again.decisions
    seen = [(d.alert.alert_id, d.alert.status) for d in first.decisions]
    assert len(seen) == len(set(seen))
    sent = {(d.alert.alert_id, d.alert.status) for d in first.decisions if d.held is None}
    for aid, status in sent:
        if status == "resolved":
            assert (aid, "firing") in sent


def test_silence_commands_add_list_and_expire(tmp_path, capsys) -> None:
    from streams.cli import main

    path = str(tmp_path / "silences.jsonl")
    assert main(["silence", "add", "region=杭州", "rule_id=install-sla", "--for", "2h", "-c", "光缆中断", "--file", path]) == 0
    (silence,) = SilenceFile(path).current().values()
    assert silence.matchers == ["region=杭州", "rule_id=install-sla"] and 7190 < silence.ends_at - silence.starts_at <= 7200
    assert main(["silence", "add", "region=~杭(", "--file", path]) == 2  # not a pattern RE2 reads: rejected, nothing written
    assert main(["silence", "add", "region=杭州", "--for", "soon", "--file", path]) == 2
    assert len(SilenceFile(path).current()) == 1
    assert main(["silence", "list", "--file", path]) == 0
    assert "active" in capsys.readouterr().out
    assert main(["silence", "expire", silence.id, "--file", path]) == 0
    assert not SilenceFile(path).current()[silence.id].active(dt.datetime.now(dt.UTC).timestamp())
    assert main(["silence", "expire", "nope", "--file", path]) == 2


def test_state_written_after_silences_change_goes_to_the_events_partition() -> None:
    """Setting silences moves the backend's partition; the next event's state must still be routed to its own."""

    class Recording(DictBackend):
        """Dict state that notes, for every write, the partition the backend was set to."""

        def __init__(self) -> None:
            super().__init__()
            self.current = -1
            self.writes: list[tuple[str, int]] = []

        def use_partition(self, partition: int) -> None:
            self.current = partition

        def namespace(self, name: str, value_type: Any, packed: bool = False) -> Any:
            backend, inner = self, super().namespace(name, value_type, packed)

            class Noted:
                def __getattr__(self, attr: str) -> Any:
                    return getattr(inner, attr)

                def set(self, key: str, value: Any) -> None:
                    backend.writes.append((name, backend.current))
                    inner.set(key, value)

            return Noted()

    backend = Recording()
    engine = engine_with(backend=backend)
    engine.process([(3, to_event(opened(0, "a")))])
    engine.alerting.set_silences({"s": new_silence(["region=上海"], starts_at=0, ends_at=1)})  # writes to every partition
    backend.writes.clear()
    engine.process([(3, to_event(opened(1, "b", customer="c-2")))])
    assert backend.writes and {p for _, p in backend.writes} == {3}


DAY = 24 * 60


def test_an_alert_open_for_days_stays_sent_and_its_resolve_is_sent() -> None:
    """An alert sent firing is remembered until it resolves, not two days (the dedup window): a one-off alert
    closes after 3 days by default, and its resolve used to be held as ``not_sent``, while the notifier had
    stopped keeping it alive in Alertmanager a day before."""
    engine = engine_with()
    feed(engine, [opened(0, "a"), opened(4 * DAY, "b", customer="c-2")], close=False)
    assert [a.alert_id for a in engine.alerting.open_alerts()] == [alert_id("r", "a"), alert_id("r", "b")]
    decisions = held(feed(engine, [closed(5 * DAY, "a")]))
    assert decisions[(alert_id("r", "a"), "resolved")] is None


def test_an_outage_open_for_days_still_inhibits() -> None:
    engine = engine_with(INHIBIT)
    later = opened(2.5 * DAY, "x", region="宁波", customer="c-2")  # event time moves on past two days
    decisions = held(feed(engine, [opened(0, "o1", rule="outage"), later, opened(3 * DAY, "a")]))
    assert decisions[(alert_id("r", "a"), "firing")] == f"inhibited:outage:{alert_id('outage', 'o1')}"


def test_an_alert_that_never_resolves_is_forgotten_after_the_open_retention() -> None:
    """Only an alert whose rule was removed never resolves: it is kept at most ``open_retention``."""
    backend = DictBackend()
    config = EngineConfig(allowed_lateness=0.0, idle_after=None)
    manager = AlertManager(parse_policy(None), backend, config.dedup_retention, config.partitions, open_retention=10 * 86400.0)
    engine = Engine([Scripted()], backend, config, alerting=manager)
    feed(engine, [opened(0, "a"), opened(9 * DAY, "b", customer="c-2")], close=False)
    assert len(manager.open_alerts()) == 2
    feed(engine, [opened(11 * DAY, "c", customer="c-3")], close=False)
    assert [a.alert_id for a in manager.open_alerts()] == [alert_id("r", "b"), alert_id("r", "c")]
