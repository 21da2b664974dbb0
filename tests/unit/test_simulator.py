"""The simulator: deterministic, contract-valid, seasonal, with labelled incidents."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from streams.decode import DeadLetter, Decoder
from streams.simulator import SimConfig, simulate
from yujing.events import event_kind

SMALL = SimConfig(customers=300, orders_per_day=200, complaints_per_day=150, bills_per_day=50, history_days=2, days=1)


def test_same_seed_same_events_other_seed_other_events() -> None:
    assert list(simulate(SMALL).lines()) == list(simulate(SMALL).lines())
    assert list(simulate(SMALL).lines()) != list(simulate(SimConfig(**{**SMALL.__dict__, "seed": 8})).lines())


def test_every_event_conforms_to_the_contract() -> None:
    sim = simulate(SMALL)
    decoder = Decoder({"orders": "orders", "billing": "billing", "complaints": "complaints"})
    kinds = Counter()
    for event, line in zip(sim.events, sim.lines(), strict=True):
        kind = event_kind(event["event_type"])
        kinds[kind] += 1
        assert not isinstance(decoder.decode(kind, 0, 0, event["customer_id"].encode(), line), DeadLetter)
    assert set(kinds) == {"orders", "billing", "complaints"}


def test_daily_seasonality_quiet_nights() -> None:
    sim = simulate(SimConfig(**{**SMALL.__dict__, "orders_per_day": 2000, "days": 2}))
    hours = Counter(dt.datetime.fromisoformat(e["ts"]).hour for e in sim.events if e["event_type"] == "order.created")
    assert sum(hours[h] for h in (2, 3, 4)) * 5 < sum(hours[h] for h in (9, 10, 11))


def test_incidents_are_labelled_and_texts_vary() -> None:
    sim = simulate(SMALL)
    incidents = {i.kind: i for i in sim.incidents}
    assert incidents["install_backlog"].labels == {"region": "台州"} and incidents["install_backlog"].keys
    assert len(incidents["redline"].keys) >= SMALL.redline_injections
    texts = [e["text"] for e in sim.events if e["event_type"] == "complaint.opened"]
    assert len(set(texts)) > 0.8 * len(texts)
