"""``hot_words``: terms that suddenly fill complaint texts ("多扣费", "登录不了"), one alert per topic.

.. code-block:: yaml

    id: complaint-hot-words
    type: hot_words
    title: 投诉热词
    severity: major
    on: complaint.opened
    window: 1h
    dictionary: [多扣费, 断网, 登录不了]    # domain words the segmenter keeps whole
    summary: "投诉热词：{terms}（{count} 件，平时占比 {expected}）"

Each partition tokenises its complaints (:mod:`detectors.tokenize`) and forwards
the terms to the cohort stage, where one :class:`detectors.signitrend.BurstDetector`
per rule scores each tumbling window when the watermark passes its end. Terms
that burst together are one alert (a topic); it fires at the window's end and
resolves at the end of the first window in which its lead term no longer bursts.

``spans: [3h, 6h]`` also judges each term over the last three and six hours
together (multiples of the window): a grievance of one or two complaints an
hour never fills one window, but fills a few (see
:class:`detectors.signitrend.BurstDetector`). The summary's ``{count}``,
``{share}`` and ``{span}`` are the deciding span's.

``scope: [region]`` also looks for hot words *within* each region (one smaller
detector per region, at most ``max_scopes``: a region gets its detector when the
first window it complains in closes, the busiest of that window first, whatever
the order its complaints came in; it is looked into from its second window on,
inside its warm-up anyway): an installation backlog in one
city barely moves 装机's share of the whole province, but fills that city's
complaints. A scoped topic sharing a term with a province-wide one is part of
it (one alert), unless that one city carries at least half of the province's
excess of their strongest shared term: then the alert is the city's, with its
numbers and complaints (an outage in 宁波 lifts the province's 断网, and the
risk team needs 宁波). A topic sharing words with an open alert of the other
kind keeps that alert going (a city's still showing a province-wide grievance,
the province still showing a city's). A scoped topic part of nothing else is an
alert labelled with its scope. Each region tests its own terms, some ten times
the tests of the province: its binomial tail must reach ``scope_alpha``
(default ``alpha`` / 10, Bonferroni over about ten regions). Within one look,
alpha is shared among all the terms it tests, each weighed by its chance of
reaching ``min_support`` (:func:`~detectors.signitrend.effective_tests`): the
chance of a false alarm does not grow with the volume or the vocabulary.

State goes through the engine's keyed state, so a restart neither loses the
open window nor learns from zero: each complaint's terms are kept until its
window closes, and the learnt tables (``depth × width`` float32 means and
variances) are stored in compressed chunks when a window closes. Memory is fixed by
``width``, ``depth``, ``candidates`` and ``samples``
(:meth:`~detectors.signitrend.BurstDetector.memory_bytes`), whatever the vocabulary.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import msgspec
import numpy as np

from detectors.signitrend import BurstDetector, TermBurst, Topic
from detectors.tokenize import DOMAIN_WORDS, STOP_WORDS, Tokenizer
from rules.base import RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.registry import register
from rules.types.match import event_types
from rules.window import Window, WindowCloser
from yujing.cohort import CohortRecord
from yujing.events import Event
from yujing.protocols import KeyedState, RuleContext
from yujing.scores import Score
from yujing.timeutil import format_duration, format_rfc3339, parse_duration

__all__ = ["HotWordsRule", "HotWordsSpec"]

VARIABLES = frozenset({"terms", "count", "share", "expected", "score", "window", "window_start", "complaints", "scope", "span"})
SCOPES = ("region", "product", "channel", "tier")
SEP = "\x1f"
#: Terms an open topic keeps (in order of first burst): a later hour's topic sharing one continues it. Twenty
#: were too few for a long incident: the everyday words it lifts late (问题 in 系统问题) fell off the list and
#: then fired as a topic of their own.
TOPIC_TERMS = 64
MAX_SPAN_WINDOWS = 48  # a span reaches back at most this many windows (each closed one's counts are kept)
CHUNK = 1 << 16  # raw bytes per stored piece of a table, packed when stored (well under a Kafka message's limit)


def pack_chunk(raw: bytes) -> bytes:
    """A piece of a float32 table (at most :data:`CHUNK` bytes) as stored: its non-zero values and their
    positions (uint16), or as it is when most values are non-zero; the first byte says which. Bit for bit:
    the values are compared and copied as integers. A tenth of zlib's time for a little more space.

    >>> raw = np.array([0, 1.5, 0, 0, -2.0], dtype=np.float32).tobytes()
    >>> len(pack_chunk(raw)), unpack_chunk(pack_chunk(raw)) == raw
    (17, True)
    """
    bits = np.frombuffer(raw, dtype=np.uint32)
    where = np.flatnonzero(bits)
    if 1 + where.size * 6 + 4 >= len(raw):
        return b"\x00" + raw
    return b"\x01" + np.uint32(bits.size).tobytes() + where.astype(np.uint16).tobytes() + bits[where].tobytes()


def unpack_chunk(data: bytes) -> bytes:
    """The piece of a table :func:`pack_chunk` stored."""
    if data[:1] != b"\x01":
        return data[1:]
    size = int(np.frombuffer(data, dtype=np.uint32, count=1, offset=1)[0])
    n = (len(data) - 5) // 6
    out = np.zeros(size, dtype=np.uint32)
    out[np.frombuffer(data, dtype=np.uint16, count=n, offset=5)] = np.frombuffer(data, dtype=np.uint32, offset=5 + 2 * n)
    return out.tobytes()


class HotWordsSpec(RuleSpec, tag="hot_words", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``hot_words`` rule."""

    on: str | list[str] = "complaint.opened"
    where: Condition | None = None
    text: str = "text"
    window: str | int | float = "1h"
    step: str | int | float | None = None  # look into the open window every step (default a quarter of it)
    dictionary: list[str] = msgspec.field(default_factory=list)
    stop_words: list[str] = msgspec.field(default_factory=list)
    threshold: float = 4.0
    alpha: float = 1e-6  # and the binomial tail of the count at the term's usual share at most this
    scope_alpha: float | None = None  # within a scope value (default alpha / 10: ten times the tests)
    min_support: int = 5
    max_share: float = 0.05  # terms usually in this share of complaints or more are background (never hot)
    beta: float = 0.005
    half_life: float = 12.0
    warmup: str | int | float = "12h"
    width: int = 1 << 16
    depth: int = 3
    candidates: int = 512
    samples: int = 2000
    scope: list[str] = msgspec.field(default_factory=list)
    spans: list[str | int | float] = msgspec.field(default_factory=list)  # longer spans a term is also judged over (window multiples)
    scope_width: int = 1 << 12
    max_scopes: int = 64


class Doc(msgspec.Struct, array_like=True):
    """A complaint kept until its window closes."""

    window: float
    terms: list[str]
    text: str
    scope: str = ""  # ``region=宁波`` when the rule has a scope
    ts: float = 0.0  # event time (a look into the open window counts those up to then)


class Learnt(msgspec.Struct, array_like=True):
    """What the tables were stored with."""

    windows_seen: int
    width: int
    depth: int
    chunks: int
    docs_mean: float = 0.0  # the detector's complaints a window, moving average
    packed: bool = False  # chunks as :func:`pack_chunk` stores them (stored before: raw)
    unlearnt: float | None = None  # the weight left on the tables' zero start (None: stored before windows had weights)


class Tallies(msgspec.Struct, array_like=True):
    """The closed windows' term counts the spans reach back to: (start, complaints, counts) each."""

    windows: list[tuple[float, int, dict[str, int]]]
    weights: list[float] = []  # what each window taught the tables (stored before windows had weights: none)


class OpenTopic(msgspec.Struct, array_like=True):
    since: float
    terms: list[str]
    last: dict[str, Any] = msgspec.field(default_factory=dict)  # the summary's variables when it last burst
    scope: str = ""
    detected: float = 0.0  # when it first fired (a look into its first window, or that window's end)


class Found(NamedTuple):
    """A topic of a window and the scope of the alert it fires or continues ("" the province's); ``carried``: a
    topic of the other kind (a city's for the province's alert, or the reverse) that keeps an open one going."""

    scope: str
    topic: Topic
    carried: bool = False


class HotWordsRule(RuleHeader):
    """Tokenises in the partitions, scores bursts in the cohort stage; see the module docstring."""

    cohort = True
    source = "hot_word"
    detector_kind = "hot_word"

    def __init__(self, spec: HotWordsSpec, version: str) -> None:
        super().__init__(spec, version, VARIABLES, ())
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where, on=self.event_types)
        self.text_field = spec.text
        self.window = Window.from_spec(spec.window, "tumbling", "+00:00")
        self.window_text = str(spec.window)
        self.tokenizer = _tokenizer(tuple(spec.dictionary), tuple(spec.stop_words))
        if spec.width < 64 or spec.width & (spec.width - 1):
            raise SpecError("`width` must be a power of two, at least 64", ("width",))
        if not 1 <= spec.depth <= 8:
            raise SpecError("`depth` must be between 1 and 8", ("depth",))
        if spec.min_support < 1:
            raise SpecError("`min_support` must be at least 1", ("min_support",))
        if not 0 < spec.alpha <= 1:
            raise SpecError("`alpha` must be above 0 and at most 1 (1: the score alone)", ("alpha",))
        warmup_windows = int(parse_duration(spec.warmup) // self.window.size)
        unknown = [d for d in spec.scope if d not in SCOPES]
        if unknown:
            raise SpecError(f"unknown scope dimension `{unknown[0]}`", ("scope",), f"use some of {', '.join(SCOPES)}")
        if spec.scope_width < 64 or spec.scope_width & (spec.scope_width - 1):
            raise SpecError("`scope_width` must be a power of two, at least 64", ("scope_width",))
        self.scope = tuple(spec.scope)
        self.max_scopes = spec.max_scopes
        self.dropped_scopes = 0  # complaints of scopes beyond ``max_scopes`` (counted province-wide only; see _admit_scopes)
        spans = []
        for i, text in enumerate(spec.spans):
            k = parse_duration(text) / self.window.size
            if abs(k - round(k)) > 1e-6 or not 2 <= round(k) <= MAX_SPAN_WINDOWS:
                reason = f"a span is a multiple of the window, 2 to {MAX_SPAN_WINDOWS} of them: not `{text}`"
                raise SpecError(reason, ("spans", i), "e.g. window: 1h, spans: [3h, 6h]")
            spans.append(round(k))
        self.params = dict(
            window=self.window.size,
            width=spec.width,
            depth=spec.depth,
            half_life=spec.half_life,
            beta=spec.beta,
            threshold=spec.threshold,
            alpha=spec.alpha,
            min_support=spec.min_support,
            candidates=spec.candidates,
            samples=spec.samples,
            warmup_windows=warmup_windows,
            max_share=spec.max_share,
            spans=tuple(spans),
        )
        if not 0 < spec.max_share <= 1:
            raise SpecError("`max_share` is a share of complaints, above 0 and at most 1", ("max_share",))
        scope_alpha = spec.scope_alpha if spec.scope_alpha is not None else spec.alpha / 10
        if not 0 < scope_alpha <= 1:
            raise SpecError("`scope_alpha` must be above 0 and at most 1", ("scope_alpha",))
        smaller = {
            "width": spec.scope_width,
            "candidates": min(spec.candidates, 128),
            "samples": min(spec.samples, 200),
            "alpha": scope_alpha,
        }
        self.scope_params = {**self.params, **smaller}
        step = parse_duration(spec.step) if spec.step is not None else self.window.size / 4
        peeks = round(self.window.size / step) - 1 if step > 0 else -1
        if peeks < 0 or abs((peeks + 1) * step - self.window.size) > 1e-6:
            raise SpecError("`step` must divide the window", ("step",), "e.g. window: 1h, step: 15m")
        self.closer = WindowCloser(self.window, self.rule_id, peeks)
        self.forget_cached()  # nothing read from state yet
        self.ns = spec.id

    # -- partition half ------------------------------------------------------
    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        if not self.when(event):
            return
        text = getattr(event, self.text_field, None)
        if not text:
            return
        terms = self.tokenizer.terms(text)
        if terms:
            labels = {"text": text[:300]}
            for d in self.scope:
                if (v := getattr(event, d, None)) is not None:
                    labels[d] = str(v)
            ctx.forward(CohortRecord("cohort:" + self.rule_id, "*", event.ts, event.event_id, "", "hit", SEP.join(terms), labels))

    # -- cohort half ---------------------------------------------------------
    def _docs(self, ctx: RuleContext) -> KeyedState[Doc]:
        return ctx.state(f"hw-d:{self.ns}", Doc)

    def _loaded(self, ctx: RuleContext) -> BurstDetector:
        """The detector, restored from state the first time (after a start, a restart or a reload)."""
        if self.detector is not None:
            return self.detector
        detector = self._restore("", BurstDetector(**self.params), ctx)  # type: ignore[arg-type]
        self.detector = detector
        learnt = ctx.state(f"hw-l:{self.ns}", Learnt)
        for key, _ in sorted(learnt.items()):
            if key.startswith("tables|"):
                scope = key[len("tables|") :]
                self.scoped[scope] = self._restore(scope, BurstDetector(**self.scope_params), ctx)  # type: ignore[arg-type]
        kept = sorted(self._docs(ctx).items(), key=lambda kv: (kv[1].window, kv[1].ts, kv[0]))
        self.window_docs = {}
        for doc_id, doc in kept:
            self.window_docs.setdefault(doc.window, {})[doc_id] = doc
        for doc_id, doc in kept:
            self._add(doc_id, doc, ctx)
        return detector

    def forget_cached(self) -> None:
        """Drop what the rule holds in memory of its state (a recovery: state may have changed behind it); the
        detector is read from state again when next used (:meth:`_loaded`)."""
        self.detector: BurstDetector | None = None
        self.scoped: dict[str, BurstDetector] = {}
        self.waiting: dict[float, list[tuple[str, Doc]]] = {}  # complaints of windows beyond the open ones (see _add)
        # The complaints kept in state (``hw-d``) by window, read from it when the detector is loaded and kept with
        # it: a look or a close reads its own window's, not every complaint kept (a worker reading one partition
        # ahead keeps many of later windows).
        self.window_docs: dict[float, dict[str, Doc]] = {}
        self.stored_seen: dict[str, int] = {}  # per scope, the windows seen when its tables were last stored

    def _restore(self, scope: str, detector: BurstDetector, ctx: RuleContext) -> BurstDetector:
        """A detector with the tables stored for ``scope`` ("" province-wide), if they fit its shape."""
        learnt = ctx.state(f"hw-l:{self.ns}", Learnt).get(f"tables|{scope}" if scope else "tables")
        if learnt is not None and (learnt.width, learnt.depth) == (detector.width, detector.depth):
            chunks = ctx.state(f"hw-t:{self.ns}", bytes)
            prefix = f"{scope}|" if scope else ""
            unpack = unpack_chunk if learnt.packed else bytes
            mean = b"".join(unpack(chunks.get(f"{prefix}m{i}") or b"") for i in range(learnt.chunks))
            var = b"".join(unpack(chunks.get(f"{prefix}v{i}") or b"") for i in range(learnt.chunks))
            if detector.load_tables(learnt.windows_seen, mean, var, learnt.unlearnt):
                detector.docs_mean = learnt.docs_mean
        tallies = ctx.state(f"hw-r:{self.ns}", Tallies).get(scope)
        if tallies is not None:
            detector.load_tallies(tallies.windows, tallies.weights)
        return detector

    def _add(self, doc_id: str, doc: Doc, ctx: RuleContext) -> None:
        """One complaint into the province-wide detector and its scope's, or to wait for its window.

        The detector keeps at most :attr:`~detectors.signitrend.BurstDetector.MAX_OPEN` windows open:
        the earliest ones that have complaints. A worker catching up on a backlog reads some partitions
        many windows ahead of others, so the complaints of a later window wait (their terms are in state
        anyway), and a complaint of an earlier window sends the latest open one back to waiting. Windows
        are thus counted, judged and learnt in time order, whatever order the partitions come in: no
        window is closed early, and the alerts are those of a backtest.
        """
        detector = self.detector
        assert detector is not None
        start = doc.window
        if start not in detector.open and len(detector.open) >= detector.MAX_OPEN:
            latest = max(detector.open)
            if start > latest:
                self.waiting.setdefault(start, []).append((doc_id, doc))
                return
            self._send_back(latest, ctx)
        detector.add_to(start, doc_id, doc.terms, doc.text, doc.ts)
        scoped = self.scoped.get(doc.scope) if doc.scope else None
        if scoped is not None:  # a scope not kept yet is decided on when its window closes (_admit_scopes)
            scoped.add_to(start, doc_id, doc.terms, doc.text, doc.ts)

    def _admit_scopes(self, start: float) -> None:
        """Scopes with complaints in the closing window and no detector yet get one now, the busiest first (ties
        by name), while the rule keeps fewer than ``max_scopes``; the complaints of the others are counted in
        :attr:`dropped_scopes`. Each new detector counts the window's complaints of its scope, and those of the
        later open windows, before the window is judged: the same counts as a detector made at its first
        complaint. Which scopes a rule keeps thus follows from each window's complaints, not from the order they
        came in: made at a scope's first complaint while there was room, a worker reading its partitions in
        another order than a backtest kept other cities once more came in than it had room for."""
        assert self.detector is not None
        new: dict[str, int] = {}
        for doc in self.window_docs.get(start, {}).values():
            if doc.scope and doc.scope not in self.scoped:
                new[doc.scope] = new.get(doc.scope, 0) + 1
        admitted: dict[str, BurstDetector] = {}
        for scope in sorted(new, key=lambda name: (-new[name], name)):
            if len(self.scoped) >= self.max_scopes:
                self.dropped_scopes += new[scope]
            else:
                admitted[scope] = self.scoped[scope] = BurstDetector(**self.scope_params)  # type: ignore[arg-type]
        if not admitted:
            return
        for window in sorted(w for w in self.detector.open if w >= start):  # one pass a window for all new scopes
            for _, doc_id, doc in sorted((d.ts, i, d) for i, d in self.window_docs.get(window, {}).items() if d.scope in admitted):
                admitted[doc.scope].add_to(window, doc_id, doc.terms, doc.text, doc.ts)

    def _send_back(self, start: float, ctx: RuleContext) -> None:
        """An open window back to waiting (its counts dropped, nothing learnt); its complaints are read again from state."""
        assert self.detector is not None
        self.detector.open.pop(start, None)
        for scoped in self.scoped.values():
            scoped.open.pop(start, None)
        self.waiting[start] = list(self.window_docs.get(start, {}).items())

    def _admit_waiting(self, ctx: RuleContext) -> None:
        """After a window closed: the earliest waiting windows into the detector, while it has room."""
        detector = self.detector
        assert detector is not None
        while self.waiting and len(detector.open) < detector.MAX_OPEN:
            docs = self.waiting.pop(min(self.waiting))
            for doc_id, doc in sorted(docs, key=lambda kv: (kv[1].ts, kv[0])):
                self._add(doc_id, doc, ctx)

    def on_record(self, record: CohortRecord, ts: float, ctx: RuleContext) -> None:
        start = self.closer.open_window(ts, ctx)
        if start is None:
            return
        self._loaded(ctx)
        if record.event_id in self.window_docs.get(start, ()):
            return  # a redelivery: the complaint is in its window already
        labels = record.labels
        scope = ",".join(f"{d}={labels[d]}" for d in self.scope) if all(d in labels for d in self.scope) and self.scope else ""
        doc = Doc(start, record.value.split(SEP), labels.get("text", ""), scope, ts)
        self._docs(ctx).set(record.event_id, doc)
        self.window_docs.setdefault(start, {})[record.event_id] = doc
        self._add(record.event_id, doc, ctx)

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        peek = self.closer.peeking(key)
        if peek is not None:
            if peek in self._loaded(ctx).open:
                self._peeked(peek, fire_at, ctx)
            return
        start = self.closer.closing(key)
        if start is None:
            return
        detector = self._loaded(ctx)
        if start in detector.open:  # a window with complaints
            self._admit_scopes(start)
            self._closed(start, detector.close(start), ctx)
        self._admit_waiting(ctx)

    def _peeked(self, start: float, at: float, ctx: RuleContext) -> None:
        """A look into the open window at a step: a topic not yet firing fires now, not at the window's end.
        Nothing is learnt and nothing resolves here; the window's close decides what goes on."""
        assert self.detector is not None
        docs = sorted((d.ts, doc_id, d) for doc_id, d in self.window_docs.get(start, {}).items() if d.ts <= at)
        province = self.detector.peek(start, at, [(doc_id, d.terms, d.text) for _, doc_id, d in docs])
        by_scope: dict[str, list[tuple[str, list[str], str]]] = {}
        for _, doc_id, d in docs:
            if d.scope:
                by_scope.setdefault(d.scope, []).append((doc_id, d.terms, d.text))
        found = self._topics(start, province, ctx, at, by_scope)
        open_topics = ctx.state(f"hw-o:{self.ns}", OpenTopic)
        opened = dict(open_topics.items())
        for scope, topic, _ in found:
            if any(o.scope == scope and _part_of(topic, set(o.terms)) for o in opened.values()):
                continue  # already firing
            lead = f"{scope}|{topic.bursts[0].term}" if scope else topic.bursts[0].term
            current = OpenTopic(start, topic.terms, self._variables(topic, topic.terms, at, scope), scope, at)
            open_topics.set(lead, current)
            opened[lead] = current
            ctx.emit(self._alert(lead, current, "firing", at, topic))

    def _report(self, scope: str, detector: BurstDetector, end: float, ctx: RuleContext) -> None:
        """The window's top terms as scores (the significance, bursting or not); scoped ones as ``scope|term``."""
        prefix = f"{scope}|" if scope else ""
        scores = [
            Score(self.rule_id, self.source, prefix + b.term, end, round(b.score, 3), b.count, round(b.expected * b.count / b.share, 3))
            for b in detector.last_scores
            if b.share > 0
        ]
        if scores:
            ctx.score(scores)

    def _topics(
        self,
        start: float,
        province: list[Topic],
        ctx: RuleContext,
        at: float | None = None,
        docs: dict[str, list[tuple[str, list[str], str]]] | None = None,
    ) -> list[Found]:
        """The window's topics: the province's, then each scope's, closing ``start`` in every scope (or with
        ``at``, looking into it then, with each scope's ``docs``).

        A scoped topic that is part of a province-wide one of this window (:func:`_part_of`) is that one's; a
        province-wide topic whose excess is mostly one scope's (:func:`_local_part`) is that scope's alert
        instead, with its numbers and sample complaints (a city's outage fills the province's 断网 too, and the
        risk team needs the city). A topic part of an open alert of the other kind keeps that one going, carried
        (the grievance still fills some city's complaints, or the province still shows a city's); others stand
        alone."""
        opened = [o for _, o in sorted(ctx.state(f"hw-o:{self.ns}", OpenTopic).items())]
        wide = {t for topic in province for t in topic.terms}
        still_open = {t for o in opened if not o.scope for t in o.terms}
        parts: list[tuple[str, Topic]] = []  # scoped topics part of a province-wide one
        alone = []
        for scope, detector in sorted(self.scoped.items()):
            if start not in detector.open:
                continue
            if at is None:
                topics = detector.close(start)
                self._report(scope, detector, start + self.window.size, ctx)
            else:
                topics = detector.peek(start, at, (docs or {}).get(scope, []))
            for topic in topics:
                if _part_of(topic, wide):
                    parts.append((scope, topic))
                elif _part_of(topic, still_open):
                    alone.append(Found("", topic, carried=True))
                else:
                    alone.append(Found(scope, topic))
        found = []
        for topic in province:
            if _part_of(topic, still_open):  # an open province-wide alert goes on
                found.append(Found("", topic))
            elif (local := _local_part(topic, parts)) is not None:
                found.append(Found(*local))
            elif (city := next((o.scope for o in opened if o.scope and _part_of(topic, set(o.terms))), None)) is not None:
                found.append(Found(city, topic, carried=True))
            else:
                found.append(Found("", topic))
        return found + alone

    def _closed(self, start: float, topics: list[Topic], ctx: RuleContext) -> None:
        docs = self._docs(ctx)
        for window in [w for w in self.window_docs if w <= start]:
            for doc_id in self.window_docs.pop(window):
                docs.delete(doc_id)
        assert self.detector is not None
        self._report("", self.detector, start + self.window.size, ctx)
        found = self._topics(start, topics, ctx)
        self._store_tables(ctx)
        open_topics = ctx.state(f"hw-o:{self.ns}", OpenTopic)
        end = start + self.window.size
        leads = set()
        this_window: dict[str, OpenTopic] = {}  # the open topics this window's topics fired or continued
        opened = dict(open_topics.items())
        for scope, topic, carried in found:
            # A topic part of an open one of its scope continues it (its lead may change hour by hour).
            own = f"{scope}|{topic.bursts[0].term}" if scope else topic.bursts[0].term
            lead = next((k for k, o in opened.items() if o.scope == scope and _part_of(topic, set(o.terms))), own)
            if lead in leads:
                # A weaker topic of this window that continues the same open one: part of its alert, and its terms
                # the topic's from now on (an everyday word the grievance lifts is known as its word next hour,
                # when its sample complaints may no longer show it).
                merged = this_window[lead]
                merged.terms = list(dict.fromkeys([*merged.terms, *topic.terms]))[:TOPIC_TERMS]
                open_topics.set(lead, merged)
                continue
            leads.add(lead)
            current = opened.get(lead)
            since = start if current is None else current.since
            terms = topic.terms if current is None else list(dict.fromkeys([*current.terms, *topic.terms]))[:TOPIC_TERMS]
            detected = end if current is None else current.detected
            # A carried topic's numbers are not its alert's scope's: the alert reads as its scope last burst.
            variables = current.last if carried and current is not None else self._variables(topic, terms, end, scope)
            current = OpenTopic(since, terms, variables, scope, detected)
            open_topics.set(lead, current)
            this_window[lead] = current
            ctx.emit(self._alert(lead, current, "firing", end, topic))
        for lead, current in list(open_topics.items()):
            if lead not in leads:
                open_topics.delete(lead)
                ctx.emit(self._alert(lead, current, "resolved", end, None))

    def _store_tables(self, ctx: RuleContext) -> None:
        """Each detector's tables, tallies and moving averages, where a window taught it something since it was
        last stored (a scope without complaints in the window closed learnt nothing: its stored tables stand).

        The chunks are stored sparse (:func:`pack_chunk`): most counters of a table are never touched (98 % of
        the province's after ten days of the peer events), and the tables of every hour were three quarters of
        the pack's changelog bytes (2.6 MB an hour, 0.47 MB sparse)."""
        assert self.detector is not None
        for scope, detector in [("", self.detector), *sorted(self.scoped.items())]:
            seen, mean, var, unlearnt = detector.tables()
            if self.stored_seen.get(scope) == seen:
                continue
            self.stored_seen[scope] = seen
            chunks = ctx.state(f"hw-t:{self.ns}", bytes)
            prefix = f"{scope}|" if scope else ""
            n = (len(mean) + CHUNK - 1) // CHUNK
            for i in range(n):
                chunks.set(f"{prefix}m{i}", pack_chunk(mean[i * CHUNK : (i + 1) * CHUNK]))
                chunks.set(f"{prefix}v{i}", pack_chunk(var[i * CHUNK : (i + 1) * CHUNK]))
            learnt = Learnt(seen, detector.width, detector.depth, n, detector.docs_mean, packed=True, unlearnt=unlearnt)
            ctx.state(f"hw-l:{self.ns}", Learnt).set(f"tables|{scope}" if scope else "tables", learnt)
            if detector.spans:
                ctx.state(f"hw-r:{self.ns}", Tallies).set(scope, Tallies(detector.tallies(), detector.tally_weights()))

    def _variables(self, topic: Topic, terms: list[str], end: float, scope: str) -> dict[str, Any]:
        lead = topic.bursts[0]
        return {
            "scope": ",".join(v.split("=", 1)[1] for v in scope.split(",")) if scope else "",
            "terms": "、".join(terms[:5]),
            "count": lead.count,
            "share": f"{lead.share:.1%}",
            "expected": f"{lead.expected:.1%}",
            "score": round(lead.score, 1),
            "complaints": topic.complaints,
            "window": self.window_text,
            "window_start": format_rfc3339(topic.window_start),
            "span": format_duration(lead.span),
        }

    def _alert(self, lead: str, current: OpenTopic, status: str, end: float, topic: Topic | None) -> Any:
        variables = current.last  # a resolved topic reads as it last burst
        labels = dict(part.split("=", 1) for part in current.scope.split(",")) if current.scope else {}
        evidence: dict[str, Any] = {
            "lead_term": lead.split("|", 1)[1] if current.scope else lead,
            "window_start": format_rfc3339(topic.window_start if topic is not None else end - self.window.size),
        }
        if current.scope:
            evidence["scope"] = labels
        if topic is not None:
            evidence.update(
                terms=[
                    {
                        "term": b.term,
                        "count": b.count,
                        "observed_share": round(b.share, 5),
                        "expected_share": round(b.expected, 5),
                        "score": round(b.score, 2),
                        "p_value": float(f"{b.p_value:.3g}"),
                        "tests": round(b.tests, 2),  # the tests the look's alpha was shared among: the tail reached alpha / tests
                        "new": b.new,
                        "span_seconds": b.span,
                    }
                    for b in topic.bursts[:10]
                ],
                score=round(topic.score, 2),
                span_seconds=topic.bursts[0].span,  # what the lead term's count covers (see the summary's {span})
                complaints=topic.complaints,
                event_ids=[doc_id for doc_id, _ in topic.samples],
                sample_texts=[text for _, text in topic.samples],
            )
        return self.alert(
            parts=(lead, repr(current.since)),
            status=status,
            starts_at=current.detected or current.since + self.window.size,
            ends_at=end if status == "resolved" else None,
            labels=labels,
            summary=self.summary.render(None, variables),
            evidence=evidence,
        )


def _excess(burst: TermBurst) -> float:
    """The complaints a burst counted beyond its usual share of the complaints it covers."""
    return burst.count * (1.0 - burst.expected / burst.share) if burst.share > 0 else 0.0


def _local_part(topic: Topic, parts: list[tuple[str, Topic]]) -> tuple[str, Topic] | None:
    """The scoped topic (scope, topic) among ``parts`` that carries at least half of the province-wide ``topic``'s
    excess, if one does: the burst is that scope's. The excess compared is the strongest term of the province's
    topic that the scope's also burst in (over a span no longer than the province's): the lead may be a variant
    (宽代 断网) the city's own topic does not rank.

    >>> def burst(count, share, expected, term="断网", span=3600.0):
    ...     return TermBurst(term, count, share, expected, 9.0, False, 1e-9, span)
    >>> wide = Topic(0.0, 3600.0, 12000, (burst(300, 0.025, 0.001, "宽代 断网"), burst(832, 0.068, 0.018)), ())
    >>> city = Topic(0.0, 3600.0, 1200, (burst(640, 0.53, 0.02),), ())
    >>> _local_part(wide, [("region=宁波", city)])[0]
    'region=宁波'
    >>> _local_part(wide, [("region=宁波", Topic(0.0, 3600.0, 1200, (burst(200, 0.17, 0.02),), ()))]) is None
    True
    """
    best: tuple[float, tuple[str, Topic]] | None = None
    for scope, part in parts:
        own = {b.term: b for b in part.bursts}
        for wide in topic.bursts:
            burst = own.get(wide.term)
            if burst is not None and burst.span <= wide.span:
                share = _excess(burst) / _excess(wide) if _excess(wide) > 0 else 0.0
                if share >= 0.5 and (best is None or share > best[0]):
                    best = (share, (scope, part))
                break
    return best[1] if best else None


def _part_of(topic: Topic, terms: set[str]) -> bool:
    """Whether a topic is the grievance of another kind's (a city's of the province's, or the reverse): it shares
    a term, one's term is a word of the other's phrases (杭州's 登录不了 is the province's 营业厅 登录不了), or most of
    its sample complaints name one (嘉兴's 账单 burst is the province's 多扣费 in other words)."""
    mine = set(topic.terms)
    if terms & mine or mine & _words_of(terms) or terms & _words_of(mine):
        return True
    words = [t for t in terms if " " not in t]
    named = sum(1 for _, text in topic.samples if any(w in text for w in words))
    return bool(topic.samples) and named >= 0.5 * len(topic.samples)


def _words_of(terms: set[str]) -> set[str]:
    """The words of ``terms``' phrases (``营业厅 登录不了`` → 营业厅, 登录不了)."""
    return {word for term in terms if " " in term for word in term.split(" ")}


@functools.lru_cache(maxsize=16)
def _tokenizer(dictionary: tuple[str, ...], stop_words: tuple[str, ...]) -> Tokenizer:
    """One segmenter per word list (loading one takes a moment; reloads and rule tests reuse it)."""
    return Tokenizer(dictionary=(*DOMAIN_WORDS, *dictionary), stop_words=STOP_WORDS | frozenset(stop_words))


register("hot_words", HotWordsSpec, HotWordsRule)
