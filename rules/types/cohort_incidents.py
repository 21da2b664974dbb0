"""How one step's spiking cohorts become incidents: roots, drill-down, nesting and overlaps (pure).

A ``cohort_spike`` rule judges every cohort each step; this module decides
which alerts that makes, so one incident is one alert:

* **roots** are spiking cohorts with no broader cohort spiking or still under
  an open alert (which covers its narrower ones), and not under an alert that
  resolved less than a window ago (the rest of its incident is not a new one);
* a root explained mostly by one narrower cohort is reported on it (the
  drill-down, by contribution to the change, as ThirdEye does) when its rise
  is confined there (:func:`_confined`), unless the root already has an open
  alert; confined to a cohort under an open alert still elevated, it is that
  alert's incident;
* several spiking children of one broader cohort that is well above normal but
  not significant on its own are that cohort's incident (:func:`_gather_siblings`);
* a narrower incident inside a broader one joins it;
* an incident of other dimensions that rises only by its overlap with a
  stronger one joins that one (:func:`detectors.baseline.explained_by`).
"""

from __future__ import annotations

import dataclasses
import functools

import msgspec

from detectors.baseline import Spike, SpikeTest, drill_down, explained_by, log_likelihood_ratio

__all__ = ["Counts", "Scored", "add_counts", "cohort_key", "group_incidents", "parse_cohort"]


class Counts(msgspec.Struct, array_like=True):
    """A cohort's complaints (numerator) and denominator events in one step, as stored, with the ids of the
    events counted (the contract's delivery is at-least-once: an event delivered again must not count again).
    The ids of a finest cohort's step are few, and live as long as its counts: the trailing window."""

    numerator: int = 0
    denominator: int = 0
    event_ids: list[str] = msgspec.field(default_factory=list)


@dataclasses.dataclass
class Scored:
    """A cohort at the close of a step: its trailing window, and the spike (if any) of the span that showed it."""

    observed: int
    expected: float
    spike: Spike | None = None
    span: float = 0.0  # seconds
    dispersion: float = 0.0
    warm: bool = False  # past the warm-up: its expectation means something
    long_observed: int = 0  # over the longest span judged (three windows)
    long_expected: float = 0.0
    sustained: bool = False  # the spike is the CUSUM's (a sustained rise since ``span`` ago), not a fixed span's
    newest_observed: int = 0  # over the newest half window (a broader cohort gathering its spiking children)
    newest_expected: float = 0.0
    newest_span: float = 0.0  # seconds


def cohort_key(pairs: tuple[tuple[str, str], ...]) -> str:
    """``region=台州,product=宽带`` (dimensions in the rule's order)."""
    return ",".join(f"{k}={v}" for k, v in pairs)


@functools.lru_cache(maxsize=1 << 16)
def parse_cohort(key: str) -> tuple[tuple[str, str], ...]:
    """The ``(dimension, value)`` pairs of a cohort key (cached: every step parses the same few thousand keys)."""
    return tuple(tuple(part.split("=", 1)) for part in key.split(",")) if key else ()  # type: ignore[misc]


def add_counts(into: dict[str, Counts], key: str, c: Counts) -> None:
    total = into.get(key)
    if total is None:
        into[key] = Counts(c.numerator, c.denominator)
    else:
        total.numerator += c.numerator
        total.denominator += c.denominator


def group_incidents(
    scored: dict[str, Scored],
    trailing: dict[str, Counts],
    opened: set[str],
    covering: set[str],
    test: SpikeTest,
    explain_share: float,
    quiet: set[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, float]]]]:
    """One step's spiking cohorts as incidents: alert cohort → the spiking roots it stands for, and each
    root's drill-down. ``opened``: cohorts with an open alert; ``covering``: those still elevated;
    ``quiet``: cohorts whose alert just resolved (neither they nor narrower ones start a new one yet).
    A broader cohort that gathers its spiking children (:func:`_gather_siblings`) has its decision written into
    ``scored`` (its ``spike``), for the alert to state."""
    spiking = {k for k, s in scored.items() if s.spike is not None}
    pairs = {k: frozenset(parse_cohort(k)) for k in scored}
    # Roots: spiking cohorts with no broader cohort spiking or still under an open alert.
    hushed = [frozenset(parse_cohort(k)) for k in quiet or ()]
    roots = [k for k in spiking if not any(pairs[o] < pairs[k] for o in spiking | covering) and not any(q <= pairs[k] for q in hushed)]
    incidents: dict[str, list[str]] = {}  # alert cohort → roots it stands for
    explained: dict[str, list[tuple[str, float]]] = {}
    roots = _gather_siblings(roots, scored, pairs, opened | covering, test, incidents, explained)
    for root in sorted(roots):
        s = scored[root]
        narrower = [k for k in scored if pairs[root] < pairs[k] and len(pairs[k]) == len(pairs[root]) + 1]
        children = {k: (scored[k].observed, scored[k].expected) for k in narrower}
        explanation = drill_down((s.observed, s.expected), children, share=0.8)
        explained[root] = explanation
        # The drill-down names the alert's cohort when its rise is confined there, unless the root already has an
        # open alert (it stays that alert).
        moved = explanation and explanation[0][1] >= explain_share and root not in opened and _confined(s, scored[explanation[0][0]])
        lead = explanation[0][0] if moved else root
        if moved and any(pairs[c] < pairs[lead] for c in covering):
            continue  # confined to a cohort under an open alert still elevated: that alert's incident, reported by it
        incidents.setdefault(lead, []).append(root)
    # A narrower incident inside a broader one (a region-wide outage shows in each product too) joins it.
    for lead in sorted(incidents, key=lambda k: -len(pairs[k])):
        broader = [a for a in incidents if a != lead and pairs[a] < pairs[lead]]
        if broader:
            incidents[min(broader, key=lambda a: len(pairs[a]))].extend(incidents.pop(lead))
    finest = [(frozenset(parse_cohort(f)), c.numerator) for f, c in trailing.items()]  # parsed once per step
    _join_overlaps(incidents, covering, scored, finest, pairs, test)
    return incidents, explained


def _confined(parent: Scored, child: Scored) -> bool:
    """Whether ``parent``'s rise is confined to ``child``: the rest of the parent is likelier at its own
    expectation than risen as the parent has.

    Contribution to the change alone (:func:`~detectors.baseline.drill_down`) names whichever child carries most
    of the parent's volume: a hotline that takes 45 % of a city's complaints explains about half of any city-wide
    outage, and a plan with 60 % of the complaints explains 60 % of it. What is left of the parent without the
    child (its count and expectation less the child's) tells the two apart: an incident of the child leaves it
    at its expectation, one of the whole parent lifts it by the parent's ratio. Whichever explains the rest's
    count better (the count model's likelihood, at the parent's dispersion) decides.

    >>> _confined(Scored(32, 8.65, dispersion=0.01), Scored(20, 3.0))  # the rest: 12 where 5.65 were due
    False
    >>> _confined(Scored(40, 10.0, dispersion=0.01), Scored(31, 4.0))  # the rest: 9 where 6 were due
    True
    """
    rest_observed = parent.observed - child.observed
    rest_expected = max(parent.expected - child.expected, 0.0)
    if rest_observed <= rest_expected:
        return True
    mean = max(rest_expected, 0.1)  # an empty history still expects a little (as SpikeTest.tail)
    risen = max(rest_expected * parent.observed / max(parent.expected, 0.1), 0.1)
    return log_likelihood_ratio(rest_observed, mean, risen / mean, parent.dispersion) <= 0


def _gather_siblings(
    roots: list[str],
    scored: dict[str, Scored],
    pairs: dict[str, frozenset[tuple[str, str]]],
    alerted: set[str],
    test: SpikeTest,
    incidents: dict[str, list[str]],
    explained: dict[str, list[tuple[str, float]]],
) -> list[str]:
    """Roots that are several children of one broader cohort, itself well above normal but not significant
    on its own, become that cohort's incident; returns the roots left.

    A broader cohort can show less than its children do: its dispersion, learnt while its baseline was still
    fitting a steep office-hours shape, hides a rise its children each show at their own. An APP failure
    then raised one alert per region × APP and product × APP, thirteen for one incident. Now a cohort with at
    least two spiking children, its newest half window at ``min_ratio`` × its expectation with ``min_count``
    complaints (as a span test's rise must still be on), is the alert: that half window is its decision (its
    count, expectation and tail probability, which is not significant alone), its spiking children what
    explains it, and later children spiking under it join it while it stays open."""
    # a cohort with an alert open on it or under it is an incident under way, reported where it is (a new
    # sibling joins it by overlap, :func:`_join_overlaps`)
    busy = {frozenset(parse_cohort(k)) for k in alerted}
    candidates: dict[str, list[str]] = {}
    for root in roots:
        if pairs[root] in busy:
            continue
        for broader, labels in pairs.items():
            if labels < pairs[root] and not any(labels <= b for b in busy):
                candidates.setdefault(broader, []).append(root)
    taken: set[str] = set()
    for broader in sorted(candidates, key=lambda k: (-len(candidates[k]), len(pairs[k]), k)):
        children = [r for r in candidates[broader] if r not in taken]
        s = scored[broader]
        if len(children) < 2 or not s.warm or s.spike is not None:
            continue
        observed, expected = s.newest_observed, s.newest_expected
        if observed < test.min_count or observed < test.min_ratio * max(expected, 0.1):
            continue
        taken.update(children)
        incidents[broader] = sorted(children)
        tail = test.tail(observed, expected, s.dispersion)
        scored[broader] = dataclasses.replace(s, spike=Spike(observed, expected, tail), span=s.newest_span, sustained=False)
        excess = max(observed - expected, 1e-9)
        shares = [(c, round(min(1.0, max(0.0, _newest_excess(scored[c])) / excess), 3)) for c in sorted(children)]
        explained[broader] = sorted(shares, key=lambda cs: -cs[1])
    return [r for r in roots if r not in taken]


def _newest_excess(s: Scored) -> float:
    return s.newest_observed - s.newest_expected


def _join_overlaps(
    incidents: dict[str, list[str]],
    covering: set[str],
    scored: dict[str, Scored],
    finest: list[tuple[frozenset[tuple[str, str]], int]],
    pairs: dict[str, frozenset[tuple[str, str]]],
    test: SpikeTest,
) -> None:
    """An incident of other dimensions that is only the overlap with a stronger one joins it.

    Leads are taken strongest first (open alerts still elevated, then by p-value); each is
    checked against those already kept (:func:`_overlap_explains`)."""

    def strength(k: str) -> tuple[int, float]:
        spike = scored[k].spike
        return (0 if k in covering else 1, spike.p_value if spike is not None else 1.0)

    kept: list[str] = []
    for lead in sorted(set(incidents) | covering, key=lambda k: (*strength(k), k)):
        host = None
        if lead in incidents:
            host = next((other for other in kept if _overlap_explains(lead, other, scored, finest, pairs, test)), None)
        if host is None:
            kept.append(lead)
        else:
            incidents.setdefault(host, []).extend(incidents.pop(lead))


def _overlap_explains(
    lead: str,
    other: str,
    scored: dict[str, Scored],
    finest: list[tuple[frozenset[tuple[str, str]], int]],
    pairs: dict[str, frozenset[tuple[str, str]]],
    test: SpikeTest,
) -> bool:
    """Whether ``lead`` spikes only by its overlap with ``other`` (cohorts neither nested nor disjoint)."""
    mine, theirs = dict(pairs[lead]), dict(pairs[other])
    shared = {d: v for d, v in theirs.items() if d in mine}
    if any(mine[d] != v for d, v in shared.items()) or pairs[other] <= pairs[lead] or pairs[lead] <= pairs[other]:
        return False  # disjoint (one incident cannot explain the other) or nested (the drill-down's case)
    if shared:  # other's ordinary share within what they have in common: 杭州's share of IPTV
        parent = scored.get(cohort_key(tuple((d, v) for d, v in theirs.items() if d in shared)))
        whole = parent.expected if parent is not None else 0.0
    else:  # other's ordinary share of everything: a plan's share of all complaints
        whole = sum(v.expected for k, v in scored.items() if {d for d, _ in pairs[k]} == set(theirs))
    if whole <= 0:
        return False
    both = pairs[lead] | pairs[other]
    overlap = sum(n for labels, n in finest if both <= labels)
    s = scored[lead]
    return explained_by((s.observed, s.expected), overlap, min(1.0, scored[other].expected / whole), test)
