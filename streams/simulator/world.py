"""The simulated operator: regions of Zhejiang, products, channels, tiers and customers."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["CHANNELS", "PRODUCTS", "REGIONS", "TIERS", "Customer", "hour_weights", "make_customers"]

#: Cities of Zhejiang with rough relative population.
REGIONS: dict[str, float] = {
    "杭州": 12.2,
    "宁波": 9.6,
    "温州": 9.6,
    "金华": 7.1,
    "台州": 6.6,
    "绍兴": 5.3,
    "嘉兴": 5.5,
    "湖州": 3.4,
    "丽水": 2.5,
    "衢州": 2.3,
    "舟山": 1.2,
}
#: Product → (share of orders, monthly fee choices in CNY, needs an installation).
PRODUCTS: dict[str, tuple[float, tuple[int, ...], bool]] = {
    "宽带": (0.40, (99, 129, 169, 199), True),
    "5G套餐": (0.35, (59, 89, 129, 199, 299), False),
    "IPTV": (0.15, (20, 30, 50), True),
    "固话": (0.10, (15, 25), True),
}
CHANNELS: dict[str, float] = {"10000热线": 0.45, "APP": 0.25, "微信": 0.15, "营业厅": 0.13, "工信部申诉": 0.02}
TIERS: dict[str, float] = {"platinum": 0.03, "gold": 0.12, "silver": 0.30, "standard": 0.55}

# Relative activity by hour of day: quiet at night, peaks mid-morning and evening.
_HOURLY = (0.15, 0.08, 0.05, 0.04, 0.05, 0.1, 0.3, 0.7, 1.2, 1.6, 1.8, 1.7, 1.3, 1.4, 1.6, 1.6, 1.5, 1.4, 1.3, 1.5, 1.7, 1.4, 0.9, 0.4)


def hour_weights() -> tuple[float, ...]:
    """Daily seasonality: the weight of each hour (local time)."""
    return _HOURLY


@dataclass(frozen=True)
class Customer:
    """A subscriber."""

    customer_id: str
    region: str
    tier: str
    channel: str


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_customers(rng: random.Random, count: int) -> list[Customer]:
    return [Customer(f"c-{i:06d}", _pick(rng, REGIONS), _pick(rng, TIERS), _pick(rng, CHANNELS)) for i in range(1, count + 1)]
