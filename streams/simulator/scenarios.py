"""Detection scenarios: days of ordinary complaints and orders, then one labelled incident (or none).

Each scenario is a :class:`Simulation` whose incidents say what a detector should
find (kind, window, cohort labels, and the words its complaints use). The
background has what must *not* alert: a daily cycle, busier Monday mornings,
evening peaks, region and product mix, and a steady stream of varied texts.

=================  ==========================================================
``outage``         a fibre cut: one region's broadband and IPTV complaints ×5
                   for 2–4 hours, texts about 断网 / 没信号
``billing``        a billing misconfiguration on one plan: that product's
                   complaints about 多扣费 ×3–4 in every region for 6 hours
``backlog``        an installation backlog: one region's broadband
                   installation complaints ×4 for 8 hours
``app_login``      an app release that breaks login: APP-channel complaints
                   about 登录不了 ×4 for 3 hours
``campaign``       a marketing campaign: orders ×3 in one region, and
                   complaints about the promised 优惠 not arriving ×3
``channel_silence``  one channel's intake breaks (a re-routed line, a dead
                   sync): none of its complaints arrive for 3–6 hours
``benign``         nothing: only the ordinary peaks (the must-not-alert case)
=================  ==========================================================

Three more axes make the evaluation grid (:mod:`streams.evaluate`), so that no
detector is judged only on the data it was tuned on:

* ``shape``, the background's seasonality (:data:`SHAPES`): ``city`` (the
  tuning shape: mornings and evenings, busier Monday mornings), ``evening``
  (residential broadband: evenings and weekends), ``office`` (business lines:
  weekday office hours, quiet weekends) and ``flat`` (a round-the-clock intake);
* ``size``, the incident's multiplier on its cohort's ordinary volume, from
  barely visible (×1.5) to obvious (×8), instead of the scenario's own;
* ``phrasings``: ``heldout`` writes the incidents' complaints from a second
  bank (:data:`HELDOUT_TEXTS`), other words for the same faults (上不了网,
  光猫红灯, 乱扣钱, 一直转圈), none of them in the pack's dictionary, and never
  looked at while tuning.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from streams.simulator.delivery import arrival_order
from streams.simulator.generator import CST, DAY, HOUR, Incident, SimConfig, Simulation, _iso
from streams.simulator.texts import CATEGORIES, complaint_text
from streams.simulator.world import CHANNELS, PRODUCTS, REGIONS, hour_weights, make_customers

__all__ = ["HELDOUT_TEXTS", "PHRASINGS", "SCENARIOS", "SHAPES", "Background", "ScenarioConfig", "scenario"]

SCENARIOS = ("outage", "billing", "backlog", "app_login", "campaign", "channel_silence", "benign")
SHAPES = ("city", "evening", "office", "flat")
PHRASINGS = ("tuned", "heldout")

_INCIDENT_TEXTS = {
    "outage": (
        "{region}这边突然断网了，{product}完全用不了",
        "家里宽带断网，光猫LOS红灯一直亮",
        "整个小区都没网了，是不是光缆断了",
        "断网两个小时了，IPTV也没信号",
        "网络中断，打10000一直占线，什么时候恢复",
        "宽代断网了，急",
    ),
    "billing": (
        "这个月多扣费了，套餐{fee}元怎么扣了两倍",
        "账单多扣费，同一个套餐被扣了两次",
        "莫名其妙重复扣费，账单金额不对",
        "多扣费{money}元，请退回来",
        "帐单重复扣费，客服说是系统问题",
    ),
    "backlog": (
        "宽带装机等了好几天，师傅一直说排不上",
        "报装宽带一个星期了还没人上门安装",
        "装机师傅说人手不够，要再等几天",
        "新装宽带一直排队，什么时候能装",
    ),
    "app_login": (
        "APP登录不了，一直提示验证码错误",
        "掌上营业厅登录不了，更新以后就这样",
        "app登录不了，闪退",
        "新版APP登录失败，验证码收不到",
        "登录不了app，说系统升级",
    ),
    "campaign": (
        "参加活动办的{product}，说好的优惠没到账",
        "活动优惠没到账，营业员承诺的返现也没有",
        "双十一活动的优惠券用不了",
        "办了活动套餐，优惠一直没有到账",
    ),
}
#: The same faults in other words: never used to tune a detector or the pack's dictionary (``phrasings="heldout"``).
HELDOUT_TEXTS = {
    "outage": (
        "上不了网了，光猫红灯在闪",
        "{region}这片网络全瘫了，手机热点都开不起来",
        "wifi连不上，路由器重启了好多遍也没用",
        "光猫红灯，电视也看不了，啥时候修好",
        "网速直接变成零，邻居家也一样",
        "网络故障大半天了，没人通知",
    ),
    "billing": (
        "乱扣钱，{fee}的套餐扣了我{money}",
        "话费异常，这个月账单莫名多出一笔",
        "被扣款两次，同一笔月租收了双份",
        "账户余额无故减少，查了账单说不清",
        "收费跟合同对不上，多收了钱",
    ),
    "backlog": (
        "预约安装的日子到了也没人来",
        "工单一直没派下来，催了三次",
        "说好这周开通宽带，现在还没动静",
        "报装以后一直等，营业厅也说不清哪天上门",
    ),
    "app_login": (
        "app打不开，一直转圈圈",
        "营业厅app进不去，提示网络异常",
        "新版本装上后账号登陆失败",
        "手机app认证失败，短信码一直不来",
        "app卡在启动页面，用不了",
    ),
    "campaign": (
        "返现没收到，当时说一个月内到",
        "赠送的流量包没有生效",
        "说好的折扣没给，月租还是原价",
        "促销送的话费一直没充进来",
    ),
}
#: Words an alert about the incident would name (hot words are judged by these): both banks'.
INCIDENT_WORDS = {
    "outage": ("断网", "没网", "中断", "光缆", "los", "没信号", "上不了网", "光猫", "红灯", "瘫", "wifi", "网速", "网络故障"),
    "billing": ("多扣费", "重复扣费", "扣费", "重复", "乱扣", "扣钱", "话费异常", "扣款", "多收", "余额"),
    "backlog": ("装机", "排队", "人手", "上门", "安装", "预约", "工单", "开通", "报装"),
    "app_login": ("登录不了", "登录", "验证码", "app", "闪退", "打不开", "转圈", "登陆", "认证", "短信码"),
    "campaign": ("优惠", "活动", "到账", "返现", "赠送", "流量包", "折扣", "促销"),
}


@dataclass(frozen=True)
class ScenarioConfig:
    """One scenario run: which incident, the seed, and the volume."""

    kind: str = "outage"
    seed: int = 1
    history_days: float = 9.0
    days: float = 1.0
    complaints_per_day: float = 2400.0
    orders_per_day: float = 2000.0
    customers: int = 20000
    start: dt.datetime = dt.datetime(2026, 3, 16, tzinfo=CST)  # a Monday
    shape: str = "city"  # the background's seasonality (SHAPES)
    size: float | None = None  # the incident's multiplier on its cohort's volume (None: the scenario's own)
    phrasings: str = "tuned"  # the incident texts' bank (PHRASINGS)
    #: Delivery as the event contract allows (:func:`~streams.simulator.delivery.arrival_order`): events up to
    #: this many seconds after their time, and this share of them twice. The events are the same either way.
    disorder_seconds: float = 0.0
    redeliver_share: float = 0.0


def _week(hourly: tuple[float, ...], weekday: tuple[float, ...], peaks: dict[tuple[int, int], float] | None = None) -> tuple[float, ...]:
    """168 weights (Monday 00:00 first): the hour's weight × its weekday's, × a benign peak's factor where one is."""
    peaks = peaks or {}
    return tuple(hourly[h] * weekday[d] * peaks.get((d, h), 1.0) for d in range(7) for h in range(24))


_MONDAY_MORNING = {(0, h): 1.6 for h in range(8, 13)}  # a benign, weekly peak
_EVENING = (0.3, 0.15, 0.08, 0.05, 0.05, 0.08, 0.2, 0.4, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0, 2.3, 2.4, 1.9, 0.9)
_OFFICE = (0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.1, 0.5, 1.6, 2.2, 2.4, 2.1, 1.2, 1.6, 2.2, 2.3, 2.1, 1.6, 0.8, 0.3, 0.15, 0.1, 0.05, 0.03)
_FLAT = tuple(1.0 + 0.15 * math.sin(2 * math.pi * (h - 9) / 24) for h in range(24))
#: Per shape: the week's weights and the mean weight that ``per_day`` is spread over.
_SHAPES: dict[str, tuple[tuple[float, ...], float]] = {
    # the tuning shape, as it has always been drawn (its mean is the day's, Monday's peak added on top)
    "city": (_week(hour_weights(), (1.0,) * 7, _MONDAY_MORNING), sum(hour_weights()) / 24),
    "evening": (_week(_EVENING, (0.9, 0.9, 0.9, 0.95, 1.1, 1.4, 1.4)), 0.0),
    "office": (_week(_OFFICE, (1.3, 1.1, 1.0, 1.0, 1.0, 0.35, 0.2), {(0, h): 1.3 for h in range(8, 12)}), 0.0),
    "flat": (_week(_FLAT, (1.0,) * 7), 0.0),
}
_SHAPES = {name: (week, mean or sum(week) / len(week)) for name, (week, mean) in _SHAPES.items()}


def _hour_weight(ts: float, shape: str = "city") -> float:
    local = dt.datetime.fromtimestamp(ts, CST)
    return _SHAPES[shape][0][local.weekday() * 24 + local.hour]


def _times(rng: random.Random, begin: float, end: float, per_day: float, shape: str = "city") -> list[float]:
    """Poisson arrivals with daily and weekly seasonality (thinning)."""
    if per_day <= 0:
        return []
    week, mean_weight = _SHAPES[shape]
    peak = max(week)
    rate = per_day / DAY / mean_weight * peak  # events per second at the peak
    out, t = [], begin
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        if rng.random() < _hour_weight(t, shape) / peak:
            out.append(t)


@dataclass(frozen=True)
class Background:
    """What a scenario's ordinary complaints are drawn from: a cohort's expected count over a span, the incident's
    own complaints left out. The judge's oracle (:func:`streams.evaluate.Truth.earliest`) tests against it, where
    a detector has only the history to learn from.

    >>> cfg = ScenarioConfig("benign", 1, complaints_per_day=480.0, customers=2000)
    >>> bg = Background.of(cfg)
    >>> t0 = cfg.start.timestamp()
    >>> round(bg.expected({}, t0 + DAY, t0 + 2 * DAY))  # a Tuesday: the day's mean
    480
    >>> round(bg.expected({"product": "宽带", "channel": "APP"}, t0 + DAY, t0 + 2 * DAY) / (480 * 0.40 * 0.25 / 0.98), 3)
    1.0
    """

    shape: str
    #: Complaints a second where the shape's weight is 1.
    rate: float
    #: Each customer's region and tier, as drawn (a complaint picks a customer at random).
    customers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, cfg: ScenarioConfig) -> Background:
        customers = make_customers(random.Random(f"{cfg.kind}-{cfg.seed}"), cfg.customers)  # scenario()'s first draw
        return cls(cfg.shape, cfg.complaints_per_day / DAY / _SHAPES[cfg.shape][1], tuple((c.region, c.tier) for c in customers))

    def share(self, labels: dict[str, str]) -> float:
        """The share of the ordinary complaints in the cohort ``labels`` (region, tier, product, channel)."""
        who = sum(1 for region, tier in self.customers if labels.get("region", region) == region and labels.get("tier", tier) == tier)
        share = who / len(self.customers)
        if "product" in labels:
            share *= PRODUCTS[labels["product"]][0] / sum(p[0] for p in PRODUCTS.values()) if labels["product"] in PRODUCTS else 0.0
        if "channel" in labels:
            weights = {c: w for c, w in CHANNELS.items() if c != "工信部申诉"}
            share *= weights.get(labels["channel"], 0.0) / sum(weights.values())
        return share

    def expected(self, labels: dict[str, str], begin: float, end: float) -> float:
        """The cohort's expected ordinary complaints over ``[begin, end)`` (epoch seconds)."""
        total, t = 0.0, begin
        while t < end:
            stop = min(end, (t // HOUR + 1) * HOUR)  # CST is a whole number of hours from UTC
            total += _hour_weight(t, self.shape) * (stop - t)
            t = stop
        return total * self.rate * self.share(labels)


def scenario(cfg: ScenarioConfig) -> Simulation:
    """Build one scenario (deterministic for a config)."""
    if cfg.kind not in SCENARIOS:
        raise ValueError(f"unknown scenario {cfg.kind!r}: one of {', '.join(SCENARIOS)}")
    if cfg.shape not in SHAPES:
        raise ValueError(f"unknown shape {cfg.shape!r}: one of {', '.join(SHAPES)}")
    if cfg.phrasings not in PHRASINGS:
        raise ValueError(f"unknown phrasings {cfg.phrasings!r}: one of {', '.join(PHRASINGS)}")
    if cfg.size is not None and cfg.size <= 1:
        raise ValueError(f"an incident's size multiplies its cohort's volume: more than 1, not {cfg.size}")
    shape = cfg.shape
    rng = random.Random(f"{cfg.kind}-{cfg.seed}")
    customers = make_customers(rng, cfg.customers)
    t0 = cfg.start.timestamp()
    begin, end = t0 - cfg.history_days * DAY, t0 + cfg.days * DAY
    regions, products, channels = list(REGIONS), list(PRODUCTS), [c for c in CHANNELS if c != "工信部申诉"]
    region = rng.choice(regions[:6])  # a region big enough to have a baseline
    product = rng.choice(products)
    # The incident starts on the main day between 09:00 and 17:00 local time.
    inc_start = t0 + rng.uniform(9, 17) * HOUR
    duration = {"outage": rng.uniform(2, 4), "billing": 6.0, "backlog": 8.0, "app_login": 3.0, "campaign": 6.0}.get(cfg.kind, 0.0)
    inc_end = inc_start + duration * HOUR
    silent = None  # the channel whose complaints vanish (drawn for that scenario only: the others' draws stay as they were)
    if cfg.kind == "channel_silence":
        silent = rng.choice(("10000热线", "APP", "微信", "营业厅"))
        inc_end = inc_start + rng.uniform(3, 6) * HOUR
    factor = {"outage": 5.0, "billing": rng.uniform(3, 4), "backlog": 4.0, "app_login": 4.0, "campaign": 3.0}.get(cfg.kind, 1.0)
    if cfg.size is not None and cfg.kind in _INCIDENT_TEXTS:
        factor = cfg.size
    # Every stream ends with the run: an incident still going at the end is cut there. A backlog begun after 16:00
    # ran past midnight with no background beside it, and the watermark its last complaints set made every other
    # city look silent (three silence alerts at 00:15 in one run at 100,000 a day).
    inc_end = min(inc_end, end)
    events: list[tuple[float, int, dict[str, Any]]] = []
    seq = itertools.count()
    keys: list[str] = []

    def emit(ts: float, event: dict[str, Any]) -> None:
        events.append((ts, next(seq), {"ts": _iso(ts), **event}))

    def complaint(ts: float, cust: Any, prod: str, channel: str, text: str, category: str, incident: bool = False) -> None:
        n = next(seq)
        complaint_id = f"cp-{cfg.seed}-{n}"
        emit(
            ts,
            {
                "event_id": f"k-{cfg.kind}-{cfg.seed}-{n}",
                "event_type": "complaint.opened",
                "customer_id": cust.customer_id,
                "complaint_id": complaint_id,
                "region": cust.region,
                "tier": cust.tier,
                "product": prod,
                "channel": channel,
                "category": category,
                "text": text,
            },
        )
        if incident:
            keys.append(complaint_id)

    shares = [PRODUCTS[p][0] for p in products]
    channel_weights = [CHANNELS[c] for c in channels]
    categories = list(CATEGORIES)
    by_region: dict[str, list[Any]] = {}
    for c in customers:
        by_region.setdefault(c.region, []).append(c)
    # Orders (the rate's denominator), with the campaign's extra orders.
    for i, ts in enumerate(_times(rng, begin, end, cfg.orders_per_day, shape)):
        cust = rng.choice(customers)
        emit(ts, _order(cfg, i, cust, rng.choices(products, shares)[0], rng.choices(channels, channel_weights)[0]))
    if cfg.kind == "campaign":
        extra = _times(rng, inc_start, inc_end, cfg.orders_per_day * REGIONS[region] / sum(REGIONS.values()) * (factor - 1), shape)
        for i, ts in enumerate(extra):
            emit(ts, _order(cfg, 10**7 + i, rng.choice(by_region[region]), product, "营业厅"))
    # The ordinary complaints.
    for ts in _times(rng, begin, end, cfg.complaints_per_day, shape):
        cust = rng.choice(customers)
        prod = rng.choices(products, shares)[0]
        category = rng.choice(categories)
        channel = rng.choices(channels, channel_weights)[0]
        text = complaint_text(rng, category, prod)
        if channel == silent and inc_start <= ts < inc_end:
            continue  # lost on the way in
        complaint(ts, cust, prod, channel, text, category)
    # The incident's complaints: (factor − 1) × the cohort's ordinary volume, with its own texts.
    incidents: list[Incident] = []
    if silent is not None:
        incidents.append(Incident(cfg.kind, _iso(inc_start), _iso(inc_end), {"channel": silent}, []))
    elif cfg.kind != "benign":
        region_share = REGIONS[region] / sum(REGIONS.values())
        share = {
            "outage": region_share * (PRODUCTS["宽带"][0] + PRODUCTS["IPTV"][0]),
            "billing": PRODUCTS[product][0],
            "backlog": region_share * PRODUCTS["宽带"][0],
            "app_login": CHANNELS["APP"],
            "campaign": region_share * PRODUCTS[product][0],
        }[cfg.kind]
        for ts in _times(rng, inc_start, inc_end, cfg.complaints_per_day * share * (factor - 1), shape):
            if cfg.kind == "app_login":  # a broken login hits every product's app users
                prod = rng.choices(products, shares)[0]
            else:
                prod = {"outage": rng.choice(("宽带", "IPTV")), "backlog": "宽带"}.get(cfg.kind, product)
            pool = customers if cfg.kind in ("billing", "app_login") else by_region[region]
            channel = "APP" if cfg.kind == "app_login" else rng.choices(channels, channel_weights)[0]
            text = _incident_text(rng, cfg.kind, region, prod, HELDOUT_TEXTS if cfg.phrasings == "heldout" else _INCIDENT_TEXTS)
            complaint(ts, rng.choice(pool), prod, channel, text, "incident", incident=True)
        labels = {
            "outage": {"region": region},
            "billing": {"product": product},
            "backlog": {"region": region, "product": "宽带"},
            "app_login": {"channel": "APP"},
            "campaign": {"region": region, "product": product},
        }[cfg.kind]
        incidents.append(Incident(cfg.kind, _iso(inc_start), _iso(inc_end), labels, keys))
    # a generator of its own, so that the events are the same however they are delivered
    delivery = random.Random(f"delivery-{cfg.seed}")
    sim_cfg = SimConfig(seed=cfg.seed, start=cfg.start, days=cfg.days, history_days=cfg.history_days, customers=cfg.customers)
    return Simulation(arrival_order(events, delivery, cfg.disorder_seconds, cfg.redeliver_share), incidents, sim_cfg)


def _order(cfg: ScenarioConfig, i: int, cust: Any, product: str, channel: str) -> dict[str, Any]:
    return {
        "event_id": f"o-{cfg.kind}-{cfg.seed}-{i}",
        "event_type": "order.completed",
        "customer_id": cust.customer_id,
        "order_id": f"ord-{cfg.seed}-{i}",
        "region": cust.region,
        "tier": cust.tier,
        "product": product,
        "channel": channel,
    }


def _incident_text(rng: random.Random, kind: str, region: str, product: str, bank: dict[str, tuple[str, ...]]) -> str:
    """An incident complaint: its own phrasings (from ``bank``), with the background's openers, typos and chatter."""
    body = rng.choice(bank[kind])
    body = body.replace("{region}", region).replace("{product}", product)
    body = body.replace("{fee}", rng.choice(("99", "129", "199"))).replace("{money}", rng.choice(("30", "59", "129")))
    background = complaint_text(rng, rng.choice(list(CATEGORIES)), product)  # mixed content: an old grievance too
    return body + ("。" + background if rng.random() < 0.25 else rng.choice(("", "！", "，请尽快处理。", "。")))
