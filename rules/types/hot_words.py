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

State goes through the engine's keyed state, so a restart neither loses the
open window nor learns from zero: each complaint's terms are kept until its
window closes, and the learnt tables (``depth × width`` float32 means and
variances) are stored in chunks when a window closes. Memory is fixed by
``width``, ``depth``, ``candidates`` and ``samples``
(:meth:`~detectors.signitrend.BurstDetector.memory_bytes`), whatever the vocabulary.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from detectors.signitrend import BurstDetector, Topic
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
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["HotWordsRule", "HotWordsSpec"]

VARIABLES = frozenset({"terms", "count", "share", "expected", "score", "window", "window_start", "complaints"})
SEP = "\x1f"
CHUNK = 1 << 16  # bytes per stored piece of a table (well under a Kafka message's limit)


class HotWordsSpec(RuleSpec, tag="hot_words", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``hot_words`` rule."""

    on: str | list[str] = "complaint.opened"
    where: Condition | None = None
    text: str = "text"
    window: str | int | float = "1h"
    dictionary: list[str] = msgspec.field(default_factory=list)
    stop_words: list[str] = msgspec.field(default_factory=list)
    threshold: float = 4.0
    min_support: int = 5
    beta: float = 0.005
    half_life: float = 12.0
    warmup: str | int | float = "12h"
    width: int = 1 << 16
    depth: int = 3
    candidates: int = 512
    samples: int = 2000


class Doc(msgspec.Struct, array_like=True):
    """A complaint kept until its window closes."""

    window: float
    terms: list[str]
    text: str


class Learnt(msgspec.Struct, array_like=True):
    """What the tables were stored with."""

    windows_seen: int
    width: int
    depth: int
    chunks: int


class OpenTopic(msgspec.Struct, array_like=True):
    since: float
    terms: list[str]
    last: dict[str, Any] = msgspec.field(default_factory=dict)  # the summary's variables when it last burst


class HotWordsRule(RuleHeader):
    """Tokenises in the partitions, scores bursts in the cohort stage; see the module docstring."""

    cohort = True
    source = "hot_word"

    def __init__(self, spec: HotWordsSpec, version: str) -> None:
        super().__init__(spec, version, VARIABLES, ())
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where)
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
        warmup_windows = int(parse_duration(spec.warmup) // self.window.size)
        self.params = dict(
            window=self.window.size,
            width=spec.width,
            depth=spec.depth,
            half_life=spec.half_life,
            beta=spec.beta,
            threshold=spec.threshold,
            min_support=spec.min_support,
            candidates=spec.candidates,
            samples=spec.samples,
            warmup_windows=warmup_windows,
        )
        self.closer = WindowCloser(self.window, self.rule_id)
        self.detector: BurstDetector | None = None
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
            ctx.forward(
                CohortRecord("cohort:" + self.rule_id, "*", event.ts, event.event_id, "", "hit", SEP.join(terms), {"text": text[:300]})
            )

    # -- cohort half ---------------------------------------------------------
    def _docs(self, ctx: RuleContext) -> KeyedState[Doc]:
        return ctx.state(f"hw-d:{self.ns}", Doc)

    def _loaded(self, ctx: RuleContext) -> BurstDetector:
        """The detector, restored from state the first time (after a start, a restart or a reload)."""
        if self.detector is not None:
            return self.detector
        detector = BurstDetector(**self.params)  # type: ignore[arg-type]
        learnt = ctx.state(f"hw-l:{self.ns}", Learnt).get("tables")
        if learnt is not None and (learnt.width, learnt.depth) == (detector.width, detector.depth):
            chunks = ctx.state(f"hw-t:{self.ns}", bytes)
            mean = b"".join(chunks.get(f"m{i}") or b"" for i in range(learnt.chunks))
            var = b"".join(chunks.get(f"v{i}") or b"" for i in range(learnt.chunks))
            detector.load_tables(learnt.windows_seen, mean, var)
        for doc_id, doc in sorted(self._docs(ctx).items(), key=lambda kv: kv[1].window):
            detector.add_to(doc.window, doc_id, doc.terms, doc.text)
        self.detector = detector
        return detector

    def on_record(self, record: CohortRecord, ts: float, ctx: RuleContext) -> None:
        start = self.closer.open_window(ts, ctx)
        if start is None:
            return
        detector = self._loaded(ctx)
        terms = record.value.split(SEP)
        text = record.labels.get("text", "")
        self._docs(ctx).set(record.event_id, Doc(start, terms, text))
        for topic in detector.add_to(start, record.event_id, terms, text):  # only when too many windows are open
            self._closed(topic.window_start, [topic], ctx)

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        start = self.closer.closing(key)
        if start is None:
            return
        detector = self._loaded(ctx)
        if start in detector.open:  # not already closed early (more than MAX_OPEN windows open)
            self._closed(start, detector.close(start), ctx)

    def _closed(self, start: float, topics: list[Topic], ctx: RuleContext) -> None:
        docs = self._docs(ctx)
        for doc_id in [k for k, d in docs.items() if d.window <= start]:
            docs.delete(doc_id)
        self._store_tables(ctx)
        open_topics = ctx.state(f"hw-o:{self.ns}", OpenTopic)
        end = start + self.window.size
        leads = set()
        opened = dict(open_topics.items())
        for topic in topics:
            # A topic that shares a term with an open one continues it (its lead may change hour by hour).
            lead = next((k for k, o in opened.items() if k not in leads and set(o.terms) & set(topic.terms)), topic.bursts[0].term)
            leads.add(lead)
            current = opened.get(lead)
            since = start if current is None else current.since
            terms = topic.terms if current is None else list(dict.fromkeys([*current.terms, *topic.terms]))[:20]
            current = OpenTopic(since, terms, self._variables(topic, terms, end))
            open_topics.set(lead, current)
            ctx.emit(self._alert(lead, current, "firing", end, topic))
        for lead, current in list(open_topics.items()):
            if lead not in leads:
                open_topics.delete(lead)
                ctx.emit(self._alert(lead, current, "resolved", end, None))

    def _store_tables(self, ctx: RuleContext) -> None:
        detector = self.detector
        assert detector is not None
        seen, mean, var = detector.tables()
        chunks = ctx.state(f"hw-t:{self.ns}", bytes)
        n = (len(mean) + CHUNK - 1) // CHUNK
        for i in range(n):
            chunks.set(f"m{i}", mean[i * CHUNK : (i + 1) * CHUNK])
            chunks.set(f"v{i}", var[i * CHUNK : (i + 1) * CHUNK])
        ctx.state(f"hw-l:{self.ns}", Learnt).set("tables", Learnt(seen, detector.width, detector.depth, n))

    def _variables(self, topic: Topic, terms: list[str], end: float) -> dict[str, Any]:
        lead = topic.bursts[0]
        return {
            "terms": "、".join(terms[:5]),
            "count": lead.count,
            "share": f"{lead.share:.1%}",
            "expected": f"{lead.expected:.1%}",
            "score": round(lead.score, 1),
            "complaints": topic.complaints,
            "window": self.window_text,
            "window_start": format_rfc3339(end - self.window.size),
        }

    def _alert(self, lead: str, current: OpenTopic, status: str, end: float, topic: Topic | None) -> Any:
        variables = current.last  # a resolved topic reads as it last burst
        evidence: dict[str, Any] = {"lead_term": lead, "window_start": format_rfc3339(end - self.window.size)}
        if topic is not None:
            evidence.update(
                terms=[
                    {
                        "term": b.term,
                        "count": b.count,
                        "observed_share": round(b.share, 5),
                        "expected_share": round(b.expected, 5),
                        "score": round(b.score, 2),
                        "new": b.new,
                    }
                    for b in topic.bursts[:10]
                ],
                score=round(topic.score, 2),
                complaints=topic.complaints,
                event_ids=[doc_id for doc_id, _ in topic.samples],
                sample_texts=[text for _, text in topic.samples],
            )
        return self.alert(
            parts=(lead, repr(current.since)),
            status=status,
            starts_at=current.since + self.window.size,
            ends_at=end if status == "resolved" else None,
            labels={},
            summary=self.summary.render(None, variables),
            evidence=evidence,
        )


@functools.lru_cache(maxsize=16)
def _tokenizer(dictionary: tuple[str, ...], stop_words: tuple[str, ...]) -> Tokenizer:
    """One segmenter per word list (loading one takes a moment; reloads and rule tests reuse it)."""
    return Tokenizer(dictionary=(*DOMAIN_WORDS, *dictionary), stop_words=STOP_WORDS | frozenset(stop_words))


register("hot_words", HotWordsSpec, HotWordsRule)
