"""The event timeline: orders, bills and complaints over simulated days, with injected incidents.

The simulation covers ``history_days`` before ``start`` and ``days`` after it.
Incidents are labelled (:class:`Incident`), so a test or an evaluation knows
what should be found:

* ``install_backlog`` — in one region, installations of orders created
  during a window are held up for days (their SLA breaches fall inside the
  simulated day);
* ``redline`` — a complaint that mentions 工信部, 315, 起诉, 媒体曝光, …
  (injected ones, plus a few organic ones, all labelled).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.simulator.delivery import arrival_order
from streams.simulator.texts import CATEGORIES, complaint_text
from streams.simulator.world import PRODUCTS, Customer, hour_weights, make_customers

__all__ = ["Incident", "SimConfig", "Simulation", "simulate"]

CST = dt.timezone(dt.timedelta(hours=8))
HOUR = 3600.0
DAY = 86400.0
_INSTALL_HOURS = {"platinum": (2, 14), "gold": (4, 30), "silver": (6, 50), "standard": (6, 50)}


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. ``start`` is local midnight (UTC+8) of the main day."""

    seed: int = 7
    start: dt.datetime = dt.datetime(2026, 3, 2, tzinfo=CST)
    days: float = 1.0
    history_days: float = 3.0
    customers: int = 3000
    orders_per_day: float = 500.0
    complaints_per_day: float = 250.0
    bills_per_day: float = 300.0
    backlog_region: str = "台州"
    redline_injections: int = 3
    organic_redline_rate: float = 0.004
    disorder_seconds: float = 0.0  # each event arrives up to this long after its time (the contract allows minutes)
    redeliver_share: float = 0.0  # and this share of them a second time (at-least-once)

    @classmethod
    def for_customers(cls, customers: int, **fields: Any) -> SimConfig:
        """A config whose daily volumes follow the customer count, at the defaults' rates per customer (500 orders,
        250 complaints and 300 bills a day for 3,000 customers); a volume given in ``fields`` wins.

        >>> SimConfig.for_customers(30_000).complaints_per_day
        2500.0
        """
        base = cls()
        scale = customers / base.customers
        volumes = {
            "orders_per_day": base.orders_per_day * scale,
            "complaints_per_day": base.complaints_per_day * scale,
            "bills_per_day": base.bills_per_day * scale,
        }
        return cls(customers=customers, **{**volumes, **{k: v for k, v in fields.items() if v is not None}})


@dataclass(frozen=True)
class Incident:
    """A labelled incident: what, where, when, and the keys of the events it involves."""

    kind: str
    start: str
    end: str
    labels: dict[str, str]
    keys: list[str] = field(default_factory=list)


@dataclass
class Simulation:
    """The events (sorted by arrival order) and the incidents injected into them."""

    events: list[dict[str, Any]]
    incidents: list[Incident]
    config: SimConfig

    def lines(self) -> Iterator[bytes]:
        """Each event as one JSON line (UTF-8 bytes, no newline)."""
        encode = msgspec.json.Encoder().encode
        for event in self.events:
            yield encode(event)

    def truth(self) -> dict[str, Any]:
        return {
            "config": repr(self.config),
            "incidents": [dataclasses.asdict(i) for i in self.incidents],
        }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


class _Clock:
    """Arrival times with daily seasonality (thinning over hour weights)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        weights = hour_weights()
        self.cum = list(itertools.accumulate(weights))

    def times(self, begin: float, end: float, per_day: float) -> list[float]:
        rng, total = self.rng, self.cum[-1]
        out: list[float] = []
        day0 = begin - (begin + 8 * HOUR) % DAY
        day = day0
        while day < end:
            n = int(rng.gauss(per_day * min(1.0, (end - day) / DAY), (per_day**0.5)))
            for _ in range(max(0, n)):
                hour = bisect.bisect_left(self.cum, rng.random() * total)
                ts = day + hour * HOUR + rng.random() * HOUR
                if begin <= ts < end:
                    out.append(ts)
            day += DAY
        out.sort()
        return out


class _Builder:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.clock = _Clock(self.rng)
        self.customers = make_customers(self.rng, cfg.customers)
        self.events: list[tuple[float, int, dict[str, Any]]] = []
        self.seq = itertools.count()
        self.incidents: list[Incident] = []
        self.t0 = cfg.start.timestamp()
        self.begin = self.t0 - cfg.history_days * DAY
        self.end = self.t0 + cfg.days * DAY
        self.completed_orders: list[tuple[float, Customer, dict[str, Any]]] = []

    def emit(self, ts: float, customer: Customer, event_type: str, prefix: str, **fields: Any) -> None:
        if ts >= self.end:
            return
        n = next(self.seq)
        event = {
            "event_id": f"{prefix}-{self.cfg.seed}-{n}",
            "event_type": event_type,
            "ts": _iso(ts),
            "customer_id": customer.customer_id,
            "region": customer.region,
            "tier": customer.tier,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.events.append((ts, n, event))

    # -- orders -----------------------------------------------------------
    def orders(self) -> None:
        rng, cfg = self.rng, self.cfg
        backlog_from, backlog_to = self.t0 - 60 * HOUR, self.t0 - 20 * HOUR
        backlog_keys: list[str] = []
        products = list(PRODUCTS)
        shares = [PRODUCTS[p][0] for p in products]
        for i, ts in enumerate(self.clock.times(self.begin, self.end, cfg.orders_per_day)):
            customer = rng.choice(self.customers)
            product = rng.choices(products, shares)[0]
            _, fees, needs_install = PRODUCTS[product]
            order_id = f"ord-{cfg.seed}-{i}"
            fee = rng.choice(fees)
            common = {"order_id": order_id, "product": product, "channel": rng.choice(("营业厅", "APP", "10000热线", "微信"))}
            self.emit(ts, customer, "order.created", "o", plan_id=f"{product}-{fee}", monthly_fee=fee, **common)
            if rng.random() < 0.04:
                self.emit(ts + rng.uniform(0.5, 20) * HOUR, customer, "order.cancelled", "o", **common)
                continue
            if not needs_install:
                done = ts + rng.uniform(0.05, 1.0) * HOUR
            else:
                lo, hi = _INSTALL_HOURS[customer.tier]
                done = ts + rng.uniform(lo, hi) * HOUR
                self.emit(ts + rng.uniform(0.2, 2) * HOUR, customer, "order.scheduled", "o", **common)
                if customer.region == cfg.backlog_region and backlog_from <= ts < backlog_to:
                    done = ts + rng.uniform(4, 6) * DAY  # the backlog: crews unavailable
                    backlog_keys.append(order_id)
            self.emit(done, customer, "order.completed", "o", **common)
            self.completed_orders.append((done, customer, {"order_id": order_id, "product": product, "fee": fee}))
        self.incidents.append(
            Incident("install_backlog", _iso(backlog_from), _iso(backlog_to), {"region": cfg.backlog_region}, backlog_keys)
        )

    # -- billing ----------------------------------------------------------
    def bills(self) -> None:
        rng = self.rng
        for i, (done, customer, order) in enumerate(self.completed_orders):
            issued = done + rng.uniform(2, 20) * HOUR
            fee = order["fee"]
            amount = float(fee) if rng.random() > 0.05 else round(fee * rng.uniform(1.3, 2.2), 2)
            cycle = dt.datetime.fromtimestamp(issued, CST).strftime("%Y-%m")
            items = [{"code": "BASE", "name": "套餐月费", "amount": float(fee)}]
            if amount != fee:
                items.append({"code": "VAS", "name": rng.choice(("视频会员", "流量包", "彩铃")), "amount": round(amount - fee, 2)})
            self.emit(
                issued,
                customer,
                "bill.issued",
                "b",
                bill_id=f"bill-{self.cfg.seed}-{i}",
                cycle=cycle,
                amount=amount,
                order_id=order["order_id"],
                plan_fee=float(fee),
                is_first_bill=True,
                product=order["product"],
                items=items,
            )
        for i, ts in enumerate(self.clock.times(self.begin, self.end, self.cfg.bills_per_day * 0.2)):
            customer = rng.choice(self.customers)
            self.emit(
                ts,
                customer,
                "refund.issued",
                "b",
                bill_id=f"rf-{self.cfg.seed}-{i}",
                cycle=_iso(ts)[:7],
                amount=-round(rng.uniform(5, 80), 2),
            )

    # -- complaints -------------------------------------------------------
    def complaints(self) -> None:
        rng, cfg = self.rng, self.cfg
        categories = list(CATEGORIES)
        redline_keys: list[str] = []
        times = self.clock.times(self.begin, self.end, cfg.complaints_per_day)
        injected = {
            int(len(times) * (1 - (k + 1) / (cfg.redline_injections + 1) * cfg.days / (cfg.days + cfg.history_days)))
            for k in range(cfg.redline_injections)
        }
        for i, ts in enumerate(times):
            customer = rng.choice(self.customers)
            category = rng.choice(categories)
            product = rng.choice(list(PRODUCTS))
            redline = i in injected or rng.random() < cfg.organic_redline_rate
            complaint_id = f"cp-{cfg.seed}-{i}"
            channel = "工信部申诉" if redline and rng.random() < 0.3 else rng.choice(("10000热线", "APP", "微信", "营业厅"))
            common = {"complaint_id": complaint_id, "product": product, "channel": channel}
            self.emit(
                ts, customer, "complaint.opened", "k", text=complaint_text(rng, category, product, redline), category=category, **common
            )
            if redline:
                redline_keys.append(complaint_id)
            limit = {"platinum": 12, "gold": 24}.get(customer.tier, 48)
            close_after = rng.uniform(0.5, limit * 0.9) if rng.random() > 0.03 else rng.uniform(limit * 1.05, limit * 1.5)
            if rng.random() < 0.2:
                self.emit(ts + close_after * HOUR * 0.3, customer, "complaint.updated", "k", **common)
            satisfaction = rng.choices((1, 2, 3, 4, 5), (0.1, 0.1, 0.2, 0.3, 0.3))[0]
            self.emit(
                ts + close_after * HOUR,
                customer,
                "complaint.closed",
                "k",
                resolution="resolved" if satisfaction > 2 else "unresolved",
                satisfaction=satisfaction,
                **common,
            )
        self.incidents.append(Incident("redline", _iso(self.begin), _iso(self.end), {}, redline_keys))

    def build(self) -> Simulation:
        self.orders()
        self.bills()
        self.complaints()
        # delivery order differs from event time, within a bound, and some events come twice
        events = arrival_order(self.events, self.rng, self.cfg.disorder_seconds, self.cfg.redeliver_share)
        return Simulation(events, self.incidents, self.cfg)


def simulate(config: SimConfig | None = None) -> Simulation:
    """Run the simulation (deterministic for a given config).

    >>> sim = simulate(SimConfig(customers=50, orders_per_day=20, complaints_per_day=10, bills_per_day=5, history_days=0.5, days=0.5))
    >>> all(e["ts"] for e in sim.events) and {i.kind for i in sim.incidents} == {"install_backlog", "redline"}
    True
    """
    return _Builder(config or SimConfig()).build()
