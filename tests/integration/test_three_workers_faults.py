"""Three workers of one app through the suite's faults at once: poison mixed into the input, ClickHouse down
across a kill, Alertmanager down across another, and SIGKILLs of workers mid-stream, each started again on its own
data directory at once.

ClickHouse ends with exactly the backtest's alerts (``FINAL``: none lost, none twice), and what the workers wrote
has each alert's times, summary and labels; the cohort rules' alerts are included (their records and marks cross
between the workers over the cohort topic, and a killed worker's partitions move to the others while it is away).
Every bad message is dead-lettered with its reason; what is written again after the kills is the unconfirmed
tail, not the history. Alertmanager ends holding every alert the backtest's alert manager still holds open, and
none whose resolve it sent: after each rebalance a worker keeps alive only its own partitions' alerts (one that
kept re-sending an alert of a partition it gave away brought it back after its new owner had resolved it).

Each fault also has its one-worker test (``test_sigkill``, ``test_bad_input``, ``test_alert_delivery``,
``test_broker_restart``). A broker restart is not among the faults here: the test broker keeps its log in memory,
so a restart loses the changelogs, and with several workers the group may give a partition to a worker that never
held its state (the one-worker test shows the reconnection).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from tests.integration.harness import (
    Worker,
    alerts_of,
    backtest_decisions,
    check,
    clickhouse_rows,
    comparable,
    create_topics,
    diagnose,
    final_state,
    group_worker,
    malformed,
    publish,
    read_dead_letters,
    rules_with_cohort_rule,
    sent_and_not_resolved,
    settle,
    sim_records,
    small_sim,
    start_workers,
)
from tests.integration.servers import AlertmanagerServer, ClickHouseServer, TansuBroker, wait_for

pytestmark = pytest.mark.integration

KILLS = 5
BAD = 200
PREFIX, APP = "f3-", "yujing-faults-3"


def test_three_workers_through_poison_a_clickhouse_outage_and_kills_lose_and_add_nothing(workdir: Path, tmp_path: Path) -> None:
    # Its own broker: five kills, three workers and a megabyte of poison leave the shared one busy for the tests
    # after it. (The rocksdb restart test that stalled after it in two CI runs was the worker dropping a fetch
    # that came back while its state recovered, fixed in 1b07199, not the shared broker.)
    broker = TansuBroker(tmp_path)
    broker.start()
    try:
        _run(workdir, broker, tmp_path)
    finally:
        broker.stop()


def _run(workdir: Path, broker: TansuBroker, tmp_path: Path) -> None:
    sim = small_sim(seed=24)
    rules = rules_with_cohort_rule(workdir)
    decisions, still_open = backtest_decisions(sim, rules)
    expected_alerts = [alert for alert, _ in decisions]
    assert sum(a.rule_id == "region-hour" for a in expected_alerts) >= 20  # the cohort rule has work to do
    expected = final_state(expected_alerts)
    rng = random.Random(9)
    bad = [malformed(rng, sim.events[rng.randrange(len(sim.events))], i) for i in range(BAD)]
    mixed: list[tuple[str, bytes | None, bytes]] = list(sim_records(sim, prefix=PREFIX))
    for topic, key, value, _ in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), (PREFIX + topic, key, value))
    slices = [mixed[i * len(mixed) // (KILLS + 1) : (i + 1) * len(mixed) // (KILLS + 1)] for i in range(KILLS + 1)]
    create_topics(broker.bootstrap, prefix=PREFIX)
    ch = ClickHouseServer(tmp_path)  # its own: it is stopped in the middle
    ch.start()
    am = AlertmanagerServer(tmp_path)
    am.start()
    am_env = {"YUJING_ALERTMANAGER_URL": am.url, "YUJING_ALERTMANAGER_RESEND_INTERVAL": "2"}
    url = ch.url
    database = url.rsplit("/", 1)[1]
    workers: list[Worker] = []
    try:
        workers = start_workers(workdir, broker.bootstrap, APP, PREFIX, rules, 3, url, **am_env)
        for kill in range(KILLS):
            victim_index = rng.randrange(len(workers))
            victim = workers[victim_index]
            start = victim.sum("yujing_events_total")
            if kill == 1:
                ch.stop()  # down from before this slice until after the next kill
            if kill == 3:
                am.stop()  # the same for Alertmanager, which forgets its alerts
            publish(broker.bootstrap, slices[kill])
            target = rng.uniform(0.1, 0.3) * len(slices[kill]) / len(workers)  # some of its share of the slice

            def progressed(w: Worker = victim, s: float = start, t: float = target) -> bool:
                return w.sum("yujing_events_total") - s >= t

            wait_for(progressed, 180, lambda w=victim, k=kill: f"kill {k + 1}: the victim reads\n{w.tail()}\n{diagnose(w)}")
            victim.stop(signal.SIGKILL)
            workers[victim_index] = group_worker(workdir, broker.bootstrap, APP, PREFIX, rules, victim_index, url, **am_env)
            if kill == 2:
                ch.start()
            if kill == 4:
                am.start()
        publish(broker.bootstrap, slices[KILLS])
        client = ch.client()
        rows = settle(lambda: clickhouse_rows(client, database), expected, 300, "alerts after the faults")
        missing, extra = sorted(set(expected) - set(rows)), sorted(set(rows) - set(expected))
        by_id = {a.alert_id: a.rule_id for a in expected_alerts}
        assert rows == expected, (
            f"missing {len(missing)} (by rule {sorted({by_id.get(m[0], '?') for m in missing})}): {missing[:5]}\n"
            f"extra {len(extra)}: {extra[:5]}\n" + "\n".join(f"{w.tail(30)}\n{diagnose(w)}" for w in workers)
        )
        # …and what the workers wrote, with each alert's times, summary and labels (a count a redelivered record
        # added twice shows in a summary, not in the ids)
        check(settle(lambda: alerts_of(workdir, APP), comparable(expected_alerts), 60, "the workers' alerts"), expected_alerts, workers)
        raw, distinct = client.execute(f"SELECT count(), uniqExact(alert_id, status) FROM {database}.alerts")[0]
        assert raw <= distinct * 1.25 + 20, (raw, distinct)  # written again: the unconfirmed tail, never the history
        letters = read_dead_letters(broker.bootstrap, PREFIX, BAD)
        assert {value for value, _ in letters} == {value for _, _, value, _ in bad}  # each bad message, nothing else
        assert len(letters) <= BAD * 1.25, len(letters)  # again after a kill: only what was not committed
        assert all(headers.get("yujing.dlq.reason") and headers.get("yujing.dlq.category") for _, headers in letters)
        # Alertmanager (which forgot everything when it stopped) holds again every alert the manager has sent and
        # still holds open, and none whose resolve it sent. Between the two: those it sent long ago and forgot, after
        # ``dedup_retention`` of event time, before their resolve (never sent); a re-send keeps one alive for up to
        # ``resend_for`` of wall clock, unless a rebalance since has left the worker to keep alive only the open ones.
        assert still_open, "some alerts are still open at the end"
        at_most = sent_and_not_resolved(decisions)
        rule_of = {a.alert_id: a.rule_id for a in expected_alerts}
        held = lambda: {a["labels"]["alert_id"] for a in am.alerts()}
        wait_for(
            lambda: still_open <= held() <= at_most,
            60,
            lambda: (
                f"Alertmanager to hold the open alerts: missing {len(still_open - held())} of {len(still_open)} "
                f"(by rule {sorted({rule_of[i] for i in still_open - held()})}): {sorted(still_open - held())[:5]}; "
                f"resolved or never sent {sorted(held() - at_most)[:5]}"
            ),
        )
        assert all(w.alive() for w in workers)
    finally:
        for w in workers:
            w.stop()
        ch.stop()
        am.stop()
