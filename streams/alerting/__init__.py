"""Alert handling between the engine and the sinks: dedup (in the engine), silences, inhibition,
realert, rate limits and grouping, as stages over each alert (see :mod:`streams.alerting.manager`)."""

from streams.alerting.manager import AlertManager, Dispatch
from streams.alerting.matchers import Matcher, parse_matchers
from streams.alerting.policy import AlertPolicy, PolicyError, load_policy

__all__ = ["AlertManager", "AlertPolicy", "Dispatch", "Matcher", "PolicyError", "load_policy", "parse_matchers"]
