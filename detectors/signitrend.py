"""Hot words: terms whose share of complaints jumps above its own history, in fixed memory (SigniTrend, KDD 2014).

Per window (event time), every complaint adds its distinct terms to a
count-min table (``depth`` rows × ``width`` counters, hashed). Each counter
also carries an exponentially weighted mean of its share (count / complaints
in the window) over past windows, and of how far it swings beyond chance: each
window's squared deviation less its own binomial noise m(1 − m)/n. A window
teaches in proportion to its complaints, up to the usual number: a night
window of one complaint is a share of 0 or 100 %, and learnt as a whole step
it made an everyday word's usual share and swings those of its lonely
mentions. When a window closes, a term's significance is

    sig = (share − e) / (√(var + e(1 − e)/n) + β),    e = max(mean, β)

with the count, mean and variance each the *smallest* over the term's rows
(count-min: a collision only adds, so every row holds at least the term's own
and the least collided is the closest; a term never looks more unusual than
it is). β is the bias term of the paper: it
keeps rare and new terms from scoring huge on a handful of mentions, and
e(1 − e)/n is the binomial noise of a share among n complaints: a quiet night
window of 30 complaints swings far more than a busy noon of 500, and the
learnt variance, the swings beyond chance, does not hold that noise. A term
bursts when ``sig ≥ threshold``, it appears in at least ``min_support``
complaints, and the binomial tail P(X ≥ count | n, e) is at most ``alpha``; a
burst of a term whose mean was below β is *new*. The score is a normal
approximation, and on a night window of 40 complaints, 8 naming an everyday
term (3 % as a rule) score above 4 about once in 25,000 tests: with thousands
of terms tested every quarter hour, in every region, that is a false alarm
every few days. The exact tail at ``alpha`` (1e-6) keeps those quiet, while a
new term or an incident's word, far beyond its share, passes it by orders of
magnitude. ``alpha`` is shared among the terms one look tests, every term of
the look that is not background, each weighed by its chance of reaching
``min_support`` at its usual share (:func:`effective_tests`): a busy province
tests hundreds a quarter hour, a county a few, and each is a chance of a false
alarm (:attr:`TermBurst.tests`). A span's look shares it the same way.

Terms whose usual share is at least ``max_share`` are *background*, the
deployment's own stop words (as ``max_df`` in a document-frequency
vectoriser): filler and boilerplate (``尽快 处理``, ``说实话``, ``客服``) that
general stop-word lists do not know and an incident's texts lift with
everything else. They are never scored, so they neither burst nor lead a
report; the hot-word rule sets 5 %. Collisions can only raise a term's mean,
so a rare term hashed with a common one may be taken for background: only
when all three of its counters are shared with common terms, with 65,536
counters a row rare.

A grievance that comes one or two complaints an hour (a city's installation
backlog on a county's volume) never fills one window, however long it lasts.
With ``spans`` (in windows, e.g. ``(3, 6)``) a term of the window is also
judged over the last few windows together: its count and the complaints
summed over them (each closed window's candidate counts are kept for this,
a :class:`Tally`). The usual share is the one that stood *before* the span:
the tables learn every window, so a grievance too slow to burst in one is
learnt as usual while it lasts; the span's windows' steps of the moving
averages are undone for the term, exactly, from its counts in them (each
window's own step). The mean of k windows' shares swings 1/k as much as one
window's, with the binomial noise of the span's complaints. The tail is the
beta-binomial's, not the binomial's: the usual share is an estimate learnt
from some hundreds of complaints in a small scope, and chance clusters of
everyday words there are only as rare as that allows. Each span's tail must
reach ``alpha`` / the number of spans, and the grievance must go on, not only
be remembered by the span: the newest window carries at least half its share
of the span's excess, and alone is unusual for the term (its own binomial
tail at most :attr:`BurstDetector.STILL`). Spans are judged when a window
closes. The burst says the span it was decided over (:attr:`TermBurst.span`).

Memory does not grow with the vocabulary: the tables are fixed, and the
window keeps a bounded, uniform sample of complaints (the ``samples`` with
the lowest hash of their id). The terms of the sample are the window's
candidates (at most ``candidates`` of them, the heaviest by count), and from
the sample, terms that burst together are grouped into one topic. Neither
depends on the order the complaints came in.

>>> d = BurstDetector(window=600, warmup_windows=2, min_support=3)
>>> for w in range(4):
...     for i in range(50):
...         terms = ["宽带", "网速慢"] if i % 2 else ["宽带", "装机"]
...         if w == 3 and i < 12:
...             terms = ["多扣费", "账单"]
...         _ = d.add(w * 600 + i, f"k{w}-{i}", terms, "…")
>>> [t.terms[:2] for t in d.close_window(4 * 600)]
[['多扣费', '账单']]
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
from scipy.stats import betabinom, binom

__all__ = ["INDEX_TERMS", "BurstDetector", "Tally", "TermBurst", "Topic", "effective_tests"]

#: Terms whose counter positions are kept per table shape (width, depth): about 1.5 MB each at most.
INDEX_TERMS = 4096
_INDEXES: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}


@dataclass(frozen=True)
class TermBurst:
    """One term that burst: observed vs expected share, and its score."""

    term: str
    count: int
    share: float
    expected: float
    score: float
    new: bool
    p_value: float = 1.0  # tail P(X ≥ count) (a span's: beta-binomial), computed for terms scoring above the threshold
    span: float = 0.0  # seconds the count covers (one window, the part of it looked into, or a longer span)
    tests: float = 1.0  # the tests the look's alpha is shared among (the tail must reach alpha / tests): effective_tests


@dataclass(frozen=True)
class Topic:
    """Terms that burst together in one window, with sample complaints."""

    window_start: float
    window_end: float
    complaints: int
    bursts: tuple[TermBurst, ...]
    samples: tuple[tuple[str, str], ...]  # (complaint id, text)

    @property
    def terms(self) -> list[str]:
        return [b.term for b in self.bursts]

    @property
    def score(self) -> float:
        return max(b.score for b in self.bursts)


@dataclass(frozen=True)
class Tally:
    """A closed window's complaints and its candidate terms' counts, kept for the longer spans' tests."""

    start: float
    docs: int
    counts: dict[str, int]
    #: The share of a full step the window taught the tables (its complaints over the usual number, at most 1).
    weight: float = 1.0


@functools.lru_cache(maxsize=4096)
def _fewest_unusual(docs: int, share: float, level: float) -> int:
    """The fewest mentions among ``docs`` complaints whose binomial tail at ``share`` is at most ``level``
    (scipy's ``isf`` took a fifth of the spans' time, once per window).

    >>> _fewest_unusual(100, 0.005, 0.01), float(binom.sf(3, 100, 0.005)) <= 0.01 < float(binom.sf(2, 100, 0.005))
    (4, True)
    """
    if docs * share > 20:  # many expected: the loop below would be long and its sums inexact
        return int(binom.isf(level, docs, share)) + 1
    pmf = (1.0 - share) ** docs  # P(X = 0)
    tail, k = 1.0, 0  # tail = P(X ≥ k)
    while tail > level * (1 + 1e-9) and k < docs:  # (a prefilter: rounding may only make it fewer)
        tail -= pmf
        pmf *= (docs - k) / (k + 1) * share / (1.0 - share)  # P(X = k + 1)
        k += 1
    return k if tail <= level * (1 + 1e-9) else docs + 1


def effective_tests(chances: np.ndarray, alpha: float) -> float:
    """The number of tests a look's ``alpha`` is shared among: the k ≥ 1 where Σ min(alpha / k, q) = alpha,
    each term's q (``chances``) its chance, at its usual share, of the ``min_support`` mentions a term needs to
    be flagged at all (Tarone 1990, with ``min_support`` as the floor of what a test can find).

    Each term of a look is a test, whether or not it reached ``min_support``: one that fell short was tested and
    found ordinary. Counting only those that reached it (as the detector did) let chance clusters of everyday
    words through: a look at 13 complaints of a county-sized province tested one or two terms that way, and
    ``你好 孩子`` in 6 of them (usually 1.9 %, a tail of 8e-8) was a burst. Yet a look is not as many tests as
    it has terms: a term met once in a thousand complaints reaches six of thirteen with a chance far below
    alpha, and adds that chance, not a whole test. Each term is flagged with a chance of at most
    min(alpha / k, q), so the look's chance of any false alarm stays at most alpha.

    >>> effective_tests(np.full(50, 0.9), 1e-6)  # fifty everyday terms: fifty tests
    50.0
    >>> round(effective_tests(np.array([0.9] + [1e-9] * 500), 1e-6), 3)  # one, and 500 rare ones taking half of alpha
    2.0
    >>> effective_tests(np.array([1e-12] * 1000), 1e-6), effective_tests(np.array([]), 1e-6)
    (1.0, 1.0)
    """
    q = np.sort(np.asarray(chances, dtype=np.float64))[::-1]
    if float(np.minimum(q, alpha).sum()) <= alpha:
        return 1.0
    # With the j likeliest terms at alpha / k and the rest at their q, the sum is alpha at k = j·alpha / (alpha − rest):
    # the j for which the likeliest j reach alpha / k and the others do not is the one k (the sum falls as k grows).
    rest = np.append(np.cumsum(q[::-1])[::-1], 0.0)[1:]  # rest[j - 1] = q[j] + q[j + 1] + …
    j = np.arange(1, len(q) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(rest < alpha, j * alpha / (alpha - rest), np.inf)
        below = np.append(q[1:], 0.0)
        fits = (q >= alpha / k) & (below <= alpha / k)
    return float(max(k[np.argmax(fits)], 1.0)) if fits.any() else float(len(q))


def _sample_rank(doc_id: str) -> int:
    """A complaint's rank for the window's sample: the ``samples`` lowest-ranked are kept, a bottom-k sample,
    uniform over the window and the same whatever order its complaints arrive in. Keeping the first ones
    showed, at 100,000 complaints a day, the first twenty minutes of each hour only: a topic's evidence and
    its grouping missed an incident that began later in the hour."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")


def _cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


#: Counter positions an open window holds back before it counts them (some 300 complaints' worth).
PENDING_POSITIONS = 4096


@dataclass
class _Window:
    """One open window: its own count-min counts and sample complaints (whose terms are its candidates)."""

    start: float
    table: np.ndarray
    docs: int = 0
    #: A bottom-k sample, as a heap: (−rank, time, id, text, terms) of the ``samples`` lowest-ranked complaints.
    samples: list[tuple[int, float, str, str, frozenset[str]]] = field(default_factory=list)
    #: Counter positions of the complaints added since the table was last read: counted in one go when it is.
    pending: list[int] = field(default_factory=list)

    @property
    def counts(self) -> np.ndarray:
        """The count-min table with every complaint added so far."""
        self.count_pending()
        return self.table

    def count_pending(self) -> None:
        """Add the waiting positions to the table in one go (a position twice, from two terms sharing a
        counter, counts twice: count-min never undercounts)."""
        if self.pending:
            self.table += np.bincount(self.pending, minlength=self.table.size).reshape(self.table.shape).astype(np.int32)
            self.pending = []


class BurstDetector:
    """Finds bursting terms window by window in fixed memory; see the module docstring."""

    def __init__(
        self,
        window: float = 600.0,
        width: int = 1 << 16,
        depth: int = 3,
        half_life: float = 12.0,
        beta: float = 0.005,
        threshold: float = 4.0,
        min_support: int = 5,
        candidates: int = 512,
        samples: int = 2000,
        warmup_windows: int = 6,
        alpha: float = 1.0,
        max_share: float = 1.0,
        spans: tuple[int, ...] = (),
    ) -> None:
        self.window = window
        self.width, self.depth = width, depth
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)  # weight of a new window: half-life in windows
        self.beta, self.threshold, self.min_support = beta, threshold, min_support
        self.tail_alpha = alpha  # the binomial tail a burst must reach (1: the score alone)
        self.max_share = max_share  # a term usually in at least this share of complaints is background
        self.candidates, self.max_samples, self.warmup = candidates, samples, warmup_windows
        self.mean = np.zeros((depth, width), dtype=np.float32)
        self.var = np.zeros((depth, width), dtype=np.float32)
        self._index = _INDEXES.setdefault((width, depth), {})  # term → its counters' positions, shared by shape
        self._row_offsets = np.arange(depth, dtype=np.int64) * width
        self.open: dict[float, _Window] = {}  # windows still taking complaints (out-of-order input keeps 2–3 open)
        self.windows_seen = 0
        self.last_scores: list[TermBurst] = []  # the top terms of the window closed last, by score
        if any(k < 2 for k in spans):
            raise ValueError(f"a span is two windows or more, not {min(spans)}")
        self.spans = tuple(sorted(set(spans)))
        self.recent: list[Tally] = []  # the closed windows the longest span reaches back to, oldest first
        self.docs_mean = 0.0  # complaints a window, moving average (from zero: read through :meth:`usual_docs`)
        #: The weight the tables' moving averages still give their zero start: the product of (1 − each window's
        #: step). A window teaches in proportion to its complaints (:meth:`close`), so it is not (1 − alpha)^windows.
        self.unlearnt = 1.0
        self._touched: np.ndarray | None = None  # per counter: has it held a count (None: not known yet)

    #: At most this many windows are open at once; a complaint for a newer one closes the oldest early.
    MAX_OPEN = 4
    #: A span's burst holds only while its newest window's own count is this unlikely at the usual share (one-sided).
    STILL = 0.01
    #: …and while its newest window's share is this many deviations (its learnt swings with the window's binomial
    #: noise, and β) above its usual share (the normal quantile of :attr:`STILL`): an everyday word whose share
    #: swings from hour to hour is not still bursting because the hour after its grievance swung high.
    STILL_DEVIATIONS = NormalDist().inv_cdf(1 - STILL)
    #: Terms kept in :attr:`last_scores` after a window closes (the top scores, bursting or not).
    TOP_SCORES = 20

    def memory_bytes(self) -> int:
        """The tables' size: fixed by ``width`` × ``depth``: the learnt mean and variance, and one count table
        per open window (at most :attr:`MAX_OPEN`), plus at most ``samples`` texts each (their terms the window's
        candidates), at most ``candidates`` term counts per window the spans reach back to, and the term index
        shared by the detectors of one table shape (:data:`INDEX_TERMS` terms, ≤ 1.7 MB)."""
        return int(self.mean.nbytes + self.var.nbytes + self.MAX_OPEN * self.depth * self.width * 4)

    def _window(self, start: float) -> _Window:
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = _Window(start, np.zeros((self.depth, self.width), dtype=np.int32))
        return window

    def _flat(self, term: str) -> tuple[int, ...]:
        """The term's counter in each row, as positions in the flattened table. The latest
        :data:`INDEX_TERMS` terms' positions are kept per table shape, shared by the detectors of that
        shape (a scope's): hashing was most of a complaint's cost."""
        index = self._index.get(term)
        if index is None:
            digest = hashlib.blake2b(term.encode(), digest_size=4 * self.depth).digest()
            cols = np.frombuffer(digest, dtype=np.uint32) % self.width
            index = tuple(int(i) for i in cols.astype(np.int64) + self._row_offsets)
            if len(self._index) >= INDEX_TERMS:  # oldest first out
                del self._index[next(iter(self._index))]
            self._index[term] = index
        return index

    def add(self, ts: float, doc_id: str, terms: list[str], text: str) -> list[Topic]:
        """One complaint at event time ``ts``, input in time order; returns the topics of a window it closed (if any)."""
        start = ts - ts % self.window
        out: list[Topic] = []
        for earlier in sorted(w for w in self.open if w < start):
            out.extend(self.close(earlier))
        self.add_to(start, doc_id, terms, text, ts)
        return out

    def add_to(self, start: float, doc_id: str, terms: list[str], text: str, ts: float | None = None) -> list[Topic]:
        """One complaint into the window starting at ``start`` (any open window: input may be out of order).
        A topic's sample complaints are shown in time order (``ts``, else ``start``), then by id.

        Returns the topics of the oldest window if this one made more than :attr:`MAX_OPEN` open."""
        out: list[Topic] = []
        if start not in self.open and len(self.open) >= self.MAX_OPEN:
            out = self.close(min(self.open))
        window = self._window(start)
        window.docs += 1
        positions = window.pending
        unique = frozenset(terms)
        for term in unique:  # a counter's count does not depend on the order terms come in
            positions.extend(self._flat(term))
        if len(positions) >= PENDING_POSITIONS:
            window.count_pending()  # what waits stays small
        entry = (-_sample_rank(doc_id), start if ts is None else ts, doc_id, text, unique)
        if len(window.samples) < self.max_samples:
            heapq.heappush(window.samples, entry)
        elif entry[0] > window.samples[0][0]:  # ranks below the sample's highest: it takes that one's place
            heapq.heapreplace(window.samples, entry)
        return out

    def close_window(self, next_start: float | None = None) -> list[Topic]:
        """Close every open window, oldest first (end of input); returns their topics."""
        out: list[Topic] = []
        for start in sorted(self.open):
            out.extend(self.close(start))
        return out

    def close(self, start: float) -> list[Topic]:
        """Score the window starting at ``start``, learn from it, and drop it; returns its topics."""
        window = self.open.pop(start, None)
        if window is None or window.docs == 0:
            return []
        # Counted once judged, or kept for the spans of the first windows judged (warm-up is counting-free).
        reach = self.spans[-1] if self.spans else 0
        counts = self._counts(window) if self.windows_seen >= self.warmup - reach else {}
        bursts, scored = self._judge(window, counts)
        self.last_scores = scored[: self.TOP_SCORES]
        # A window teaches in proportion to its complaints, up to the usual number: a share of one complaint in
        # one is not a share learnt. Every window alike made a night hour's single complaint naming 登录不了 a share
        # of 100 %, one step of the moving averages: the word's usual share read 7 % where it is 4.5 % of
        # complaints, and its learnt deviation 18 points, so the app failure that lifted it to 29 % scored 0.7.
        usual = self.usual_docs()
        weight = min(window.docs / usual, 1.0) if usual > 0 else 1.0
        step = self.alpha * weight
        self._keep(Tally(window.start, window.docs, counts, weight))
        self.docs_mean += self.alpha * (window.docs - self.docs_mean)
        # Learn: every counter's share this window (untouched counters saw 0). A counter that never held a
        # count has a mean and a variance of 0 and keeps them: only those that did are computed.
        table = window.counts.ravel()
        active = self._active(table)
        mean, var = self.mean.ravel(), self.var.ravel()  # views: written through
        before = mean[active]
        delta = table[active] / np.float32(window.docs) - before
        # The swings beyond chance: each window's squared deviation less its own binomial noise, m(1 − m)/n.
        # Negative where a term swings no more than chance says; a test reads it as 0, and adds the
        # noise of the complaints it judges.
        noise = before * (np.float32(1.0) - before) / np.float32(window.docs)
        var[active] = np.float32(1.0 - step) * (var[active] + np.float32(step) * (delta * delta - noise))
        mean[active] += np.float32(step) * delta
        self.unlearnt *= 1.0 - step
        self.windows_seen += 1
        samples = [(doc_id, text, terms) for _, _, doc_id, text, terms in sorted(window.samples, key=lambda s: (s[1], s[2]))]
        return self._group(bursts, samples, window.docs, window.start, window.start + self.window)

    def _active(self, table: np.ndarray) -> np.ndarray:
        """The positions of the counters that have held a count, ``table``'s (a closing window's, flat) among
        them: of the province's table, after ten days of complaints, 2 % (the others' learning is a no-op)."""
        touched = self._touched
        if touched is None:  # fresh, or tables loaded: what they hold says which counters have
            touched = self._touched = (self.mean.ravel() != 0) | (self.var.ravel() != 0)
        touched |= table != 0
        return np.flatnonzero(touched)

    def peek(self, start: float, now: float, docs: list[tuple[str, list[str], str]]) -> list[Topic]:
        """Score the open window as it stands at ``now`` (nothing learnt, nothing dropped): a burst shows
        before its window ends. ``docs`` are the window's complaints up to ``now`` (event time), counted
        exactly here, so what a look sees does not depend on what else had arrived by then. Shares
        make a part of a window comparable with whole ones, and the binomial noise term knows it
        holds fewer complaints."""
        if start not in self.open or not docs or self.windows_seen < self.warmup:
            return []
        counts: dict[str, int] = {}
        samples = []
        kept = None  # the same bottom-k sample as a closing window's
        if len(docs) > self.max_samples:
            kept = {d[0] for d in heapq.nsmallest(self.max_samples, docs, key=lambda d: _sample_rank(d[0]))}
        for doc_id, terms, text in docs:
            for term in dict.fromkeys(terms):  # the complaint's order: the same in every process (see add_to)
                counts[term] = counts.get(term, 0) + 1
            unique = frozenset(terms)
            if kept is None or doc_id in kept:
                samples.append((doc_id, text, unique))
        bursts = [b for b in self._scores(counts, len(docs), now - start) if self._bursts(b)]
        return self._group(bursts, samples, len(docs), start, now)

    def _unbias(self, unlearnt: float | None = None) -> float:
        """The tables start at zero: early on, an exponentially weighted mean is that much too small (the
        bias correction of Adam, Kingma & Ba 2015); without it a young detector sees every term as rising.
        ``unlearnt``: the weight left on the start (default: now, :attr:`unlearnt`)."""
        unlearnt = self.unlearnt if unlearnt is None else unlearnt
        return 1.0 / (1.0 - unlearnt) if unlearnt < 1.0 else 1.0

    def usual_docs(self) -> float:
        """Complaints in a usual window: the moving average of every window's (each a whole step), unbiased (0
        before the first)."""
        return self.docs_mean / (1.0 - self._whole_steps(self.windows_seen)) if self.windows_seen > 0 else 0.0

    def _whole_steps(self, windows: int) -> float:
        """The weight a moving average still gives its zero start after ``windows`` whole steps."""
        return (1.0 - self.alpha) ** windows

    def _deviation(self, swings: float, expected: float, docs: float) -> float:
        """How far a share among ``docs`` complaints may stray from ``expected``: the learnt ``swings`` beyond
        chance, the binomial noise of those complaints, and β (the denominator of every score and check)."""
        return math.sqrt(swings + expected * (1 - expected) / docs) + self.beta

    def _learnt(self, terms: list[str]) -> tuple[list[float], list[float]]:
        """Each term's learnt share and its swings (below zero where it swings less than chance) as the tables hold
        them, in one look-up for all: the smallest over its rows, as count-min reads counts. Collisions only add, so
        every row holds at least the term's own; the least collided row is the closest (the largest read a rare term
        as common whenever any of its rows met a common one: in a region's 4,096-counter table, most of them)."""
        if not terms:
            return [], []
        where = self._positions(terms)
        return self.mean.ravel()[where].min(axis=1).tolist(), self.var.ravel()[where].min(axis=1).tolist()

    def _positions(self, terms: list[str]) -> np.ndarray:
        """Each term's counters (:meth:`_flat`) as one row of an array, for look-ups of all terms at once."""
        return np.array([self._flat(term) for term in terms], dtype=np.int64)

    def _scores(self, counts: dict[str, int], docs: int, span: float) -> list[TermBurst]:
        """Each term's significance given its count among ``docs`` complaints (terms below min_support skipped)."""
        unbias = self._unbias()
        supported = [(term, count) for term, count in counts.items() if count >= self.min_support]
        means, variances = self._learnt([term for term, _ in supported])
        learnt = zip(supported, means, variances, strict=True)
        # background: how complaints are written here, not news (the corpus' own stop words)
        tested = [(t, c, m * unbias, max(v, 0.0) * unbias) for (t, c), m, v in learnt if m * unbias < self.max_share]
        out = []
        for term, count, mean, var in tested:
            expected = max(mean, self.beta)
            score = (count / docs - expected) / self._deviation(var, expected, docs)
            # The exact tail only where the score alone would call it a burst (a handful of terms a window).
            p = float(binom.sf(count - 1, docs, min(expected, 1.0))) if score >= self.threshold and self.tail_alpha < 1 else 1.0
            out.append(TermBurst(term, count, count / docs, mean, score, mean < self.beta, p, span))
        # Every term a look tests is one more chance of a false alarm: a city's quarter hour at 100 complaints a
        # day tests a word or two, at 100,000 a day hundreds. The tail each must reach is alpha shared among them
        # (effective_tests), so a look's chance of crying wolf does not grow with volume or vocabulary. Counted
        # only where a term could burst at all (alpha with a single test): most looks have none.
        if self.tail_alpha < 1 and any(self._bursts(b) for b in out):
            tests = self._tests(self._everyday(counts), docs, self.tail_alpha)
            out = [replace(b, tests=tests) for b in out]
        return out

    def _everyday(self, counts: dict[str, int]) -> np.ndarray:
        """The own usual shares (unbiased) of a look's terms that are not background: its tests. A term's own
        share is its least collided counter's (the smallest over its rows: what count-min estimates), as its
        test reads it (:meth:`_learnt`)."""
        if not counts:
            return np.zeros(0)
        means = (self.mean.ravel()[self._positions(list(counts))] * np.float32(self._unbias())).min(axis=1)
        return means[means < self.max_share].astype(np.float64)

    def _tests(self, shares: np.ndarray, docs: int, alpha: float) -> float:
        """The tests a look's ``alpha`` is shared among (:func:`effective_tests`): of terms at these usual
        ``shares`` (unbiased), each one's chance of ``min_support`` mentions among ``docs`` complaints.

        The chance is at the share learnt, not at the floor β a test takes for a rare term's expectation: a word
        never seen before has a learnt share of 0 and adds no test, though a burst of it is judged against β."""
        return effective_tests(binom.sf(self.min_support - 1, docs, np.clip(shares, 0.0, 1.0)), alpha)

    def _span_bursts(self, counts: dict[str, int], docs: int, start: float, skip: set[str]) -> list[TermBurst]:
        """Terms of the closing window starting at ``start`` (``counts`` among its ``docs`` complaints) that
        burst over a longer span, not in the window alone (``skip``): the window with the closed ones before
        it, over each of :attr:`spans`; per term the span with the smallest tail.
        Judged when a window closes, not in a look into it: a quarter of a window is too few complaints to
        tell a grievance going on from the span's memory of one."""
        if not self.spans or self.windows_seen < self.warmup:
            return []
        alpha = self.tail_alpha / len(self.spans) if self.tail_alpha < 1 else 1.0
        before = [t for t in self.recent if t.start < start]
        plans = []  # per span: (k, closed windows it reaches back, its complaints, its seconds, learnt from)
        usual = self.usual_docs()
        for k in self.spans:
            prior = [t for t in before if start - (k - 1) * self.window <= t.start]
            if not prior or self.windows_seen - len(prior) < max(self.warmup, 1):
                continue  # the usual share before the span is not learnt yet
            # complaints the usual share was learnt from: a window's usual number × the moving average's
            # effective number of windows, (2 − a) / a, or the windows seen before the span if fewer
            learnt = usual * min((2 - self.alpha) / self.alpha, self.windows_seen - len(prior))
            plans.append((k, len(prior), docs + sum(t.docs for t in prior), start + self.window - prior[0].start, learnt))
        if not plans:
            return []
        reach = before[-max(depth for _, depth, _, _, _ in plans) :]  # each span's windows are the latest of these
        # The newest window alone must be unusual (its tail at most STILL), and at the least usual share (beta)
        # it takes this many mentions: most terms of a window, mentioned once or twice, need no more looking at.
        least = _fewest_unusual(docs, self.beta, self.STILL)
        candidates = []
        for term, count in counts.items():
            if term in skip or count < least or count / docs <= self.beta:
                continue  # bursting in the window alone, or not unusual in the newest window whatever the usual
            per = [t.counts.get(term, 0) for t in reach]
            if count + sum(per) >= self.min_support:  # the longest span's count bounds every span's
                candidates.append((term, count, per))
        if not candidates:
            return []
        means, variances = self._learnt([term for term, _, _ in candidates])
        depths = {depth for _, depth, _, _, _ in plans}
        # Each span's look tests every term of the window (effective_tests), at its usual share over the span:
        # counted once a term could burst at all (alpha / spans with a single test).
        everyday: np.ndarray | None = None
        tests: dict[int, float] = {}
        best: dict[str, TermBurst] = {}
        for (term, count, per), now_mean, now_var in zip(candidates, means, variances, strict=True):
            usual = self._learnt_before(now_mean, now_var, reach, per, depths)
            for k, depth, n, span, learnt in plans:
                total = count + sum(per[len(per) - depth :])
                if total < self.min_support:
                    continue
                mean, var = usual[depth]
                expected = max(mean, self.beta)
                if mean >= self.max_share or count / docs <= expected:
                    continue  # background, or no longer above its share
                # The mean of k windows' shares swings 1/k as much as one window's, and its noise is that of the n complaints.
                score = (total / n - expected) / self._deviation(var / k, expected, n)
                if score < self.threshold:
                    continue
                # The grievance goes on: the newest window carries at least half its share of the span's excess,
                # and alone is unusual for the term, both as a count at its usual share and beside the swings its
                # share has shown window to window; else the span only remembers an earlier burst. (Asked before
                # the span's tails, which cost more.)
                if count - expected * docs < 0.5 * (total - expected * n) * docs / n:
                    continue
                if count / docs - expected < self.STILL_DEVIATIONS * self._deviation(var, expected, docs):
                    continue
                if float(binom.sf(count - 1, docs, min(expected, 1.0))) > self.STILL:
                    continue
                # The usual share is itself an estimate from some ``learnt`` complaints: the tail is the
                # beta-binomial's (the binomial's, mixed over what the share may be), not the binomial's.
                p = float(betabinom.sf(total - 1, n, expected * learnt, (1 - expected) * learnt)) if learnt else 1.0
                burst = TermBurst(term, total, total / n, mean, score, mean < self.beta, p, span)
                if not self._bursts(burst, alpha):
                    continue
                if depth not in tests:
                    everyday = self._everyday(counts) if everyday is None else everyday
                    tests[depth] = self._tests(everyday, n, alpha)
                burst = replace(burst, tests=tests[depth])
                if not self._bursts(burst, alpha) or (term in best and burst.p_value >= best[term].p_value):
                    continue
                best[term] = burst
        return sorted(best.values(), key=lambda b: (-b.score, b.term))

    def _learnt_before(
        self, mean: float, var: float, reach: list[Tally], counts: list[int], depths: set[int]
    ) -> dict[int, tuple[float, float]]:
        """A term's learnt share and variance (``mean``, ``var``: as the tables hold them now) as they stood
        before the last ``depth`` windows of ``reach`` (closed, oldest first, the last ones learnt; ``counts``:
        the term's in each), for each of ``depths``: each window's step of the moving averages undone, newest
        first, with the term's share in it (collisions keep their own)."""
        out = {}
        unlearnt = self.unlearnt
        for undone, (tally, count) in enumerate(zip(reversed(reach), reversed(counts), strict=True), start=1):
            a = self.alpha * tally.weight  # the step this window took
            share = count / tally.docs
            mean = max((mean - a * share) / (1 - a), 0.0)  # m' = m + a(s − m)
            var = var / (1 - a) - a * ((share - mean) ** 2 - mean * (1 - mean) / tally.docs)  # v' = (1 − a)(v + a((s − m)² − m(1 − m)/n))
            unlearnt /= 1 - a
            if undone in depths:
                unbias = self._unbias(unlearnt)
                out[undone] = (mean * unbias, max(var, 0.0) * unbias)
        return out

    def _keep(self, tally: Tally) -> None:
        """A closed window's tally, for the spans; those beyond the longest span's reach are dropped."""
        if not self.spans:
            return
        reach = tally.start - (self.spans[-1] - 1) * self.window
        self.recent = sorted([t for t in self.recent if reach <= t.start and t.start != tally.start] + [tally], key=lambda t: t.start)

    def _counts(self, window: _Window) -> dict[str, int]:
        """The window's candidate terms and their counts (count-min: the smallest of a term's counters), heaviest
        first: of the terms of its sample complaints (every complaint, up to ``samples``; beyond, a uniform sample
        by id, in which a term of ten complaints among twice the sample is missing once in a thousand windows),
        the ``candidates`` with the largest counts, ties by term.

        Which terms they are depends on the window's complaints only, never on the order they came in: a worker
        reading several partitions gets a backtest's candidates. (A streaming summary of the heaviest terms, as
        SpaceSaving, keeps different ones in different orders once the window holds more terms than it has slots:
        at 10,000 complaints a day, 29 of 243 hourly windows scored other terms when shuffled.)"""
        terms = sorted({term for entry in window.samples for term in entry[4]})
        if not terms:
            return {}
        counts = window.counts.ravel()[self._positions(terms)].min(axis=1)
        keep = np.lexsort((np.arange(len(terms)), -counts))[: self.candidates]  # count descending, then term
        return {terms[i]: int(counts[i]) for i in keep.tolist()}

    def _judge(self, window: _Window, counts: dict[str, int]) -> tuple[list[TermBurst], list[TermBurst]]:
        """The window's bursting terms (in the window alone, then over longer spans), and every candidate's
        score in the window alone (best first)."""
        if self.windows_seen < self.warmup:
            return [], []
        scored = self._scores(counts, window.docs, self.window)
        scored.sort(key=lambda b: (-b.score, b.term))
        bursts = [b for b in scored if self._bursts(b)]
        return bursts + self._span_bursts(counts, window.docs, window.start, {b.term for b in bursts}), scored

    def _bursts(self, burst: TermBurst, alpha: float | None = None) -> bool:
        return burst.score >= self.threshold and burst.p_value * burst.tests <= (self.tail_alpha if alpha is None else alpha)

    # -- state ---------------------------------------------------------------
    def tallies(self) -> list[tuple[float, int, dict[str, int]]]:
        """The closed windows the spans reach back to, to store: (start, complaints, term counts) each; their
        weights apart (:meth:`tally_weights`)."""
        return [(t.start, t.docs, t.counts) for t in self.recent]

    def tally_weights(self) -> list[float]:
        """What each of :meth:`tallies` taught the tables (:attr:`Tally.weight`)."""
        return [t.weight for t in self.recent]

    def load_tallies(self, tallies: list[tuple[float, int, dict[str, int]]], weights: list[float] | None = None) -> None:
        """Restore :meth:`tallies` and their :meth:`tally_weights` (stored before windows had weights: 1 each;
        those beyond the longest span's reach, as after a change of ``spans``, dropped)."""
        weights = weights if weights and len(weights) == len(tallies) else [1.0] * len(tallies)
        for (start, docs, counts), weight in zip(tallies, weights, strict=True):
            self._keep(Tally(start, docs, counts, weight))

    def tables(self) -> tuple[int, bytes, bytes, float]:
        """What is learnt, to store: windows seen, the mean and variance tables as bytes, and :attr:`unlearnt`."""
        return self.windows_seen, self.mean.tobytes(), self.var.tobytes(), self.unlearnt

    def load_tables(self, windows_seen: int, mean: bytes, var: bytes, unlearnt: float | None = None) -> bool:
        """Restore :meth:`tables`; False (and nothing changed) when they were stored for another shape.
        ``unlearnt``: as stored (None, stored before windows had weights: every window a full step)."""
        size = self.depth * self.width * 4
        if len(mean) != size or len(var) != size:
            return False
        self.mean = np.frombuffer(mean, dtype=np.float32).reshape(self.depth, self.width).copy()
        self.var = np.frombuffer(var, dtype=np.float32).reshape(self.depth, self.width).copy()
        self._touched = None
        self.windows_seen = windows_seen
        self.unlearnt = self._whole_steps(windows_seen) if unlearnt is None else unlearnt
        return True

    def _group(
        self, bursts: list[TermBurst], samples: list[tuple[str, str, frozenset[str]]], docs: int, start: float, end: float
    ) -> list[Topic]:
        """Terms that burst in the same complaints, or share a two-character word part, are one topic (union-find)."""
        if not bursts:
            return []
        docs_of = {b.term: {i for i, (_, _, terms) in enumerate(samples) if b.term in terms} for b in bursts}
        parent = {b.term: b.term for b in bursts}

        def find(t: str) -> str:
            while parent[t] != t:
                parent[t] = parent[parent[t]]
                t = parent[t]
            return t

        terms = [b.term for b in bursts]
        # Phrasings of one complaint rarely share a complaint but share a word part: 多扣费 / 重复扣费.
        grams = {t: {t[i : i + 2] for i in range(len(t) - 1) if _cjk(t[i]) and _cjk(t[i + 1])} for t in terms}
        for i, a in enumerate(terms):
            for b in terms[i + 1 :]:
                da, db = docs_of[a], docs_of[b]
                if (da and db and len(da & db) >= 0.5 * min(len(da), len(db))) or grams[a] & grams[b]:
                    parent[find(a)] = find(b)
        groups: dict[str, list[TermBurst]] = {}
        for burst in bursts:
            groups.setdefault(find(burst.term), []).append(burst)
        topics = []
        for members in groups.values():
            members.sort(key=lambda b: (-b.score, b.term))
            # The complaints that carry most of the topic's terms show it best (a topic of 更新 and 登录不了
            # is shown by complaints naming both, not the first that mention an update); among equals the
            # latest, since a burst grows towards the window's end (an alert nine minutes into a billing error
            # showed the quarter-hour's first complaints, mostly the usual background of 多扣费).
            weight = {m.term: m.score for m in members}
            carried = set().union(*(docs_of[m.term] for m in members))
            ids = sorted(carried, key=lambda i: (-sum(weight.get(t, 0.0) for t in samples[i][2]), -i))[:5]
            shown = tuple((samples[i][0], samples[i][1]) for i in sorted(ids))
            topics.append(Topic(start, end, docs, tuple(members), shown))
        topics.sort(key=lambda t: (-t.score, t.terms))
        return topics
