"""Hot words (issue 4, first part): tokenisation and SigniTrend-style burst scoring in fixed memory."""

from __future__ import annotations

import itertools
import os
import random
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from detectors.signitrend import INDEX_TERMS, BurstDetector, effective_tests
from detectors.tokenize import Tokenizer

W = 600.0
BACKGROUND = [
    ["宽带", "网速慢", "宽带 网速慢"],
    ["装机", "师傅", "预约"],
    ["账单", "话费"],
    ["客服", "热线", "没人接"],
    ["app", "闪退"],
    ["信号差", "5g"],
]


def test_tokenizer_normalises_width_and_case_keeps_domain_words_and_drops_noise() -> None:
    t = Tokenizer()
    assert t.terms("ＡＰＰ登录不了，５Ｇ套餐多扣费20元！！") == [
        "app",
        "登录不了",
        "5g套餐",
        "多扣费",
        "app 登录不了",
        "登录不了 5g套餐",
        "5g套餐 多扣费",
    ]
    assert t.terms("的了吗？？？ 123") == []  # stop words, punctuation and amounts only
    assert "10000" in t.terms("打10000热线没人接")  # a number the dictionary names stays
    assert t.terms("网速慢 网速慢 网速慢") == ["网速慢"]  # a complaint counts a term once


def test_the_domain_dictionary_is_extensible_per_tokenizer() -> None:
    default = Tokenizer()
    custom = Tokenizer(dictionary=["翼支付扣款"])
    assert "翼支付扣款" not in default.terms("翼支付扣款失败")
    assert "翼支付扣款" in custom.terms("翼支付扣款失败")
    assert "翼支付扣款" not in Tokenizer().terms("翼支付扣款失败")  # no leak between instances


def feed(detector: BurstDetector, windows: int, per_window: int, rng: random.Random, burst: dict[int, tuple[list[str], int]]) -> list:
    topics = []
    for w in range(windows):
        extra_terms, extra = burst.get(w, ([], 0))
        for i in range(per_window):
            terms = list(rng.choice(BACKGROUND))
            if i < extra:
                terms = list(extra_terms)
            topics += [(w, t) for t in detector.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms))]
    topics += [(windows, t) for t in detector.close_window()]
    return topics


def test_a_steady_background_never_bursts() -> None:
    topics = feed(BurstDetector(window=W), 40, 200, random.Random(1), {})
    assert topics == []


def test_a_new_phrase_filling_complaints_bursts_as_one_topic_in_its_window() -> None:
    rng = random.Random(2)
    topics = feed(BurstDetector(window=W), 30, 200, rng, {25: (["多扣费", "账单", "账单 多扣费"], 40)})
    assert len(topics) == 1
    closed_by, topic = topics[0]
    assert closed_by == 26 and topic.window_start == 25 * W  # reported when its window closed
    assert set(topic.terms) == {"多扣费", "账单 多扣费"} | ({"账单"} & set(topic.terms))
    burst = next(b for b in topic.bursts if b.term == "多扣费")
    assert burst.new and burst.count == 40 and burst.share == 40 / 200 and burst.expected < 0.005
    assert topic.samples and all(sid.startswith("k25-") for sid, _ in topic.samples)


def test_a_known_term_bursts_on_its_own_history_and_below_support_nothing_fires() -> None:
    rng = random.Random(3)
    # 宽带 网速慢 is common (1/6 of complaints); tripling it is a burst, not "new".
    topics = feed(BurstDetector(window=W), 30, 300, rng, {20: (["宽带", "网速慢", "宽带 网速慢"], 150)})
    bursts = {b.term: b for _, t in topics for b in t.bursts}
    assert "网速慢" in bursts and not bursts["网速慢"].new and bursts["网速慢"].expected > 0.1
    quiet = feed(BurstDetector(window=W, min_support=5), 30, 300, random.Random(4), {20: (["断网 投诉"], 4)})
    assert quiet == []  # four mentions are below the minimum support


def test_background_terms_are_the_deployments_own_stop_words_never_scored_while_news_still_bursts() -> None:
    """max_share: a term usually in a sixth of complaints (how complaints are written here) does not burst or score
    when an incident's texts lift it; the incident's own phrase does."""
    burst = {20: (["宽带", "网速慢", "宽带 网速慢", "多扣费"], 150)}
    plain = feed(BurstDetector(window=W), 30, 300, random.Random(3), burst)
    assert "网速慢" in {b.term for _, t in plain for b in t.bursts}
    detector = BurstDetector(window=W, max_share=0.05)
    topics = feed(detector, 30, 300, random.Random(3), burst)
    terms = {b.term for _, t in topics for b in t.bursts}
    assert "多扣费" in terms and terms.isdisjoint({"宽带", "网速慢", "宽带 网速慢"}), terms
    closed = feed(BurstDetector(window=W, max_share=0.05), 21, 300, random.Random(3), burst)  # closing window 20 last
    assert closed and not {"宽带", "网速慢"} & {s.term for s in detector.last_scores}


def test_stop_words_are_the_kept_lists_as_released_less_the_domain_words() -> None:
    from detectors.tokenize import DOMAIN_WORDS, STOP_WORDS, kept_list

    zh, en = kept_list("stopwords-zh.txt"), kept_list("stopwords-en.txt")
    assert (len(zh), len(en)) == (794, 1298)  # stopwords-iso as released (detectors/data/README.md)
    assert (zh | en) - set(DOMAIN_WORDS) == STOP_WORDS
    assert Tokenizer().terms("hello，我的宽带怎么又断网了 ok please") == ["宽带", "断网", "宽带 断网"]  # 请问: learnt, if common


def test_a_busy_windows_sample_is_uniform_and_the_same_in_any_arrival_order() -> None:
    """At 100,000 complaints a day an hour holds thousands: the sample kept the first ones, so a burst later in
    the hour had no sample complaints to show or to group its terms by."""

    def run(order_seed: int | None) -> list:
        detector = BurstDetector(window=W, samples=40, min_support=5)
        rng = random.Random(8)
        for w in range(12):  # history
            for i in range(200):
                terms = rng.choice(BACKGROUND)
                detector.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms))
        late = [(12 * W + i, f"k12-{i}", ["光猫", "红灯"] if i >= 150 else rng.choice(BACKGROUND)) for i in range(200)]
        if order_seed is not None:
            random.Random(order_seed).shuffle(late)
        for ts, doc_id, terms in late:
            detector.add(ts, doc_id, list(terms), " ".join(terms))
        return detector.close_window()

    (topic,) = run(None)
    assert {"光猫", "红灯"} <= set(topic.terms)
    assert topic.samples and all(int(sid.split("-")[1]) >= 150 for sid, _ in topic.samples)  # the burst's own, from the hour's end
    assert [t.samples for t in run(1)] == [topic.samples] == [t.samples for t in run(2)]


def test_nothing_fires_during_warm_up() -> None:
    topics = feed(BurstDetector(window=W, warmup_windows=6), 5, 200, random.Random(5), {3: (["多扣费"], 80)})
    assert topics == []


def test_memory_stays_within_the_tables_whatever_the_vocabulary() -> None:
    detector = BurstDetector(window=W, width=1 << 14, depth=3, candidates=64, samples=100)
    fixed = detector.memory_bytes()
    assert fixed == 3 * (1 << 14) * (2 * 4 + BurstDetector.MAX_OPEN * 4)  # float32 mean and var, int32 counts per open window
    per_window = 20_000
    detector.add(0.0, "k0", ["warm"], "")
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for i in range(100_000):  # 100,000 distinct terms over 5 windows
        detector.add((i // per_window) * W, f"k{i}", [f"term-{i}"], "")
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert len(detector.open) == 1
    assert all(len(detector._counts(w)) <= 64 and len(w.samples) <= 100 for w in detector.open.values())
    assert detector.memory_bytes() == fixed
    assert len(detector._index) <= INDEX_TERMS  # the shared term index is bounded too (about 1.7 MB when full)
    assert grown < 1_000_000 + 2_000_000, grown  # no per-term growth: 100,000 terms kept would cost over 10 MB


def test_a_million_distinct_terms_grow_the_process_by_a_few_megabytes() -> None:
    """1,000,000 distinct terms (100,000 complaints of ten new terms each, over five windows): the resident
    size grows by the bounded term index and window summaries only. A dictionary of a million terms' counts
    would take over 100 MB; the bound asserted is 16 MB (measured: about 4 MB)."""
    detector = BurstDetector(window=W, width=1 << 14, depth=3, candidates=64, samples=100)
    detector.add(0.0, "k0", ["warm"], "")

    def resident() -> int:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    before = resident()
    for d in range(100_000):
        detector.add((d // 20_000) * W, f"k{d}", [f"term-{d * 10 + j}" for j in range(10)], "")
    grown = resident() - before
    assert len(detector._index) <= INDEX_TERMS
    assert all(len(detector._counts(w)) <= 64 and len(w.samples) <= 100 for w in detector.open.values())
    assert grown < 16 * 2**20, grown


def test_a_small_windows_everyday_term_needs_the_exact_tail_a_new_term_passes_it() -> None:
    """8 of a night's 40 complaints naming a term that 3 % name as a rule scores above 4 (a normal
    approximation) but its binomial tail is ~2e-5: with alpha 1e-6 it is not a burst. 8 of 40 naming a
    term never seen before is, either way."""

    def night(alpha: float, term: str) -> list[str]:
        d = BurstDetector(window=W, warmup_windows=6, min_support=8, alpha=alpha)
        rng = random.Random(3)
        for w in range(30):
            for i in range(200):
                terms = list(rng.choice(BACKGROUND)) + (["处理"] if rng.random() < 0.03 else [])
                d.add(w * W + i, f"k{w}-{i}", terms, "")
        for i in range(40):  # a quiet window
            terms = [term] if i < 8 else list(rng.choice(BACKGROUND))
            d.add(30 * W + i, f"n-{i}", terms, "")
        return [t for topic in d.close_window() for t in topic.terms]

    assert "处理" in night(1.0, "处理")  # the score alone calls it a burst
    assert "处理" not in night(1e-6, "处理")
    assert "多扣费" in night(1e-6, "多扣费")


def test_a_topics_samples_are_the_complaints_carrying_most_of_its_terms() -> None:
    """An app release: 更新 (an everyday word) and 登录不了 burst together. The samples show complaints naming
    both, not the first few that merely mention an update."""
    d = BurstDetector(window=W, warmup_windows=6, min_support=8, alpha=1e-6)
    rng = random.Random(5)
    for w in range(30):
        for i in range(200):
            d.add(w * W + i, f"k{w}-{i}", list(rng.choice(BACKGROUND)) + (["更新"] if rng.random() < 0.05 else []), "")
    for i in range(200):
        if i < 12:
            terms = ["更新", "以后"]  # ordinary mentions of an update, first in the window
        elif i < 40:
            terms = ["更新", "登录不了", "闪退"]
        else:
            terms = list(rng.choice(BACKGROUND))
        d.add(30 * W + i, f"n-{i}", terms, " ".join(terms))
    topics = [t for t in d.close_window() if "登录不了" in t.terms]
    assert topics and "更新" in topics[0].terms
    assert all("登录不了" in text for _, text in topics[0].samples), topics[0].samples


def test_a_burst_starting_mid_window_is_shown_by_its_own_complaints_not_the_windows_first() -> None:
    """A billing error begins two thirds into a window, on a word the background uses every day (多扣费, 3 %).
    Complaints carrying the topic equally, the latest show it: the burst's, not the usual ones before it (from
    two thirds in, the usual complaints are about other things, so every sample can be the burst's)."""
    d = BurstDetector(window=W, warmup_windows=6, min_support=8, alpha=1e-6)
    rng = random.Random(6)
    for w in range(31):
        for i in range(300):
            late = w == 30 and i >= 200
            burst = late and i % 2 == 0
            terms = ["多扣费"] if burst or (rng.random() < 0.03 and not late) else list(rng.choice(BACKGROUND))
            d.add(w * W + i, f"{'burst' if burst else 'usual'}-{w}-{i}", terms, " ".join(terms))
    topics = [t for t in d.close_window() if "多扣费" in t.terms]
    assert topics and topics[0].samples
    assert all(sid.startswith("burst-") for sid, _ in topics[0].samples), topics[0].samples


def _judged_window(mentions: int, ordinary_terms: int, min_support: int = 3) -> list:
    """Topics of a window of 200 complaints with ``mentions`` of 光猫 (usually 5: 2.5 %), after 120 windows
    where each complaint also carries one of ``ordinary_terms`` everyday words, in turn (each tested, none news;
    0: a word of its own, too rare to test)."""
    d = BurstDetector(window=W, warmup_windows=6, min_support=min_support, alpha=1e-6)
    for w in range(121):  # long enough for the variance learnt from the first window's jump to fade
        for i in range(200):
            guangmao = i % 40 == 0 if w < 120 else i < mentions
            word = f"词{i % ordinary_terms}" if ordinary_terms else f"词{w}-{i}"  # else each its own, never tested
            terms = (["光猫"] if guangmao else []) + [word]
            d.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms))
    return [t for t in d.close_window() if "光猫" in t.terms]


def test_a_look_testing_many_terms_shares_alpha_among_them() -> None:
    """A quarter hour at 100,000 complaints a day tests hundreds of terms, at 500 a day a few; each is one more
    chance of a false alarm. A count whose tail reaches alpha alone bursts where it is the only term tested, not
    where fifty others are; a count far beyond chance bursts in both."""
    ordinary = 50  # each 4 of 200 complaints: tested (at least min_support), never unusual
    p_alone = float(binom.sf(19 - 1, 200, 0.025))
    assert 1e-6 / (ordinary + 1) < p_alone < 1e-6  # the premise: 19 mentions pass alpha, not alpha / 51
    assert _judged_window(19, 0) and not _judged_window(19, ordinary)
    burst = next(b for b in _judged_window(22, ordinary)[0].bursts if b.term == "光猫")
    assert burst.tests == ordinary + 1 and burst.p_value * burst.tests < 1e-6


def test_terms_short_of_min_support_are_tests_of_the_look_too() -> None:
    """Fifty everyday words, each in 4 of the 200 complaints, are below ``min_support`` (5): none can be flagged,
    yet each was looked at, and each comes 5 times often enough (a chance of 0.37) to be a whole test. Counting
    only the terms that reached the support made 光猫 the one test of the look, and its 19 mentions a burst at a
    tail alpha allows one test, not fifty-one. Words of their own, never seen before, are no test at all."""
    ordinary = 50
    assert float(binom.sf(5 - 1, 200, 1 / ordinary)) > 0.3  # the premise: each everyday word could have reached 5
    assert _judged_window(19, 0, min_support=5)  # words never seen before add no test
    assert not _judged_window(19, ordinary, min_support=5)
    burst = next(b for b in _judged_window(22, ordinary, min_support=5)[0].bursts if b.term == "光猫")
    assert 50 < burst.tests <= ordinary + 1 and burst.p_value * burst.tests < 1e-6


def test_a_new_word_sharing_a_counter_with_an_everyday_one_adds_no_test() -> None:
    """How often a term may come, for counting the look's tests, is its least collided counter's share (what
    count-min estimates): a new word that shares one of its three counters with an everyday word is still new.
    Its largest counter would make each of them a whole test, and 21 mentions of 光猫 would burst only where the
    new words were not."""
    d = BurstDetector(window=W, width=256, depth=3, warmup_windows=6, min_support=3, alpha=1e-6)
    everyday, guangmao = set(d._flat("常见")), set(d._flat("光猫"))
    shares_one = (w for w in (f"新词{i}" for i in range(20000)) if len(everyday & set(d._flat(w))) == 1 and not guangmao & set(d._flat(w)))
    new_words = list(itertools.islice(shares_one, 100))
    assert len(new_words) == 100  # the premise: each shares one counter with 常见, none with 光猫
    for w in range(81):
        for i in range(200):
            terms = ["光猫"] if (i % 40 == 0 if w < 80 else i < 21) else []
            terms += ["常见"] if i % 2 else ([new_words[i // 2]] if w == 80 and i // 2 < len(new_words) else [])
            d.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms))
    topics = [t for t in d.close_window() if "光猫" in t.terms]
    assert topics and next(b for b in topics[0].bursts if b.term == "光猫").tests < 3  # 光猫 and 常见: the look's tests


def test_a_new_word_sharing_a_counter_with_an_everyday_one_bursts_as_a_new_word() -> None:
    """Collisions only add, so each of a term's counters holds at least its own share: the test takes the least
    collided one, as count-min reads counts. A new word sharing one of its three counters with an everyday word
    (in half the complaints) is still new, and bursts as one that shares none (in a region's 4,096-counter
    table, the largest counter made most never-seen phrases look common)."""
    d = BurstDetector(window=W, width=256, depth=3, warmup_windows=6, min_support=5, alpha=1e-6)
    everyday = set(d._flat("常见"))
    colliding = next(w for w in (f"新词{i}" for i in range(20000)) if len(everyday & set(d._flat(w))) == 1)
    taken = everyday | set(d._flat(colliding))
    apart = next(w for w in (f"生词{i}" for i in range(20000)) if not taken & set(d._flat(w)))
    for w in range(81):
        for i in range(200):
            terms = ["常见"] if i % 2 else []
            if w == 80 and i < 24:
                terms.append(colliding if i < 12 else apart)
            d.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms))
    bursts = {b.term: b for t in d.close_window() for b in t.bursts}
    assert colliding in bursts and apart in bursts
    assert bursts[colliding].new and bursts[colliding].expected == bursts[apart].expected == 0.0


def _span_topics(per_window: int, everyday: int) -> list:
    """Topics with 排队 over 3 windows of 60 complaints where it usually comes once (1.7 %) and now comes
    ``per_window`` times, never reaching ``min_support`` (8) in one window; each complaint also carries one of
    ``everyday`` words in turn (2 mentions a window each: 8 over a span is likely), or, at 0, a word of its own."""
    d = BurstDetector(window=W, warmup_windows=6, min_support=8, alpha=1e-6, spans=(3, 6))
    topics = []
    for w in range(123):
        for i in range(60):
            terms = (["排队"] if i < (per_window if w >= 120 else 1) else []) + [f"词{i % everyday}" if everyday else f"词{w}-{i}"]
            topics += [t for t in d.add(w * W + i, f"k{w}-{i}", terms, " ".join(terms)) if "排队" in t.terms]
    return topics + [t for t in d.close_window() if "排队" in t.terms]


def test_a_spans_look_shares_alpha_among_the_terms_of_the_window_too() -> None:
    """A span's look tests every term of the window as much as the window's own look does. Eighteen mentions of
    排队 in 180 complaints, where 3 were usual, have a tail (2.5e-8) each span may reach alone (alpha / 2), not
    when thirty everyday words share it; 21 are beyond chance either way."""
    assert _span_topics(6, 0) and not _span_topics(6, 30)
    burst = next(b for t in _span_topics(7, 30) for b in t.bursts if b.term == "排队")
    assert burst.span == 3 * W and 30 <= burst.tests <= 32 and burst.p_value * burst.tests <= 1e-6 / 2


@given(st.lists(st.floats(0.0, 1.0), max_size=60), st.sampled_from([1e-6, 1e-3, 0.05]))
def test_the_tests_a_look_shares_alpha_among_keep_its_chance_of_a_false_alarm_within_alpha(chances: list[float], alpha: float) -> None:
    """The k of :func:`~detectors.signitrend.effective_tests` bounds the look's chance of any false alarm by alpha
    (each term flagged with a chance of at most min(alpha / k, q)), and is the least k that does, at least one
    and at most one test a term."""
    q = np.array(chances)
    k = effective_tests(q, alpha)
    assert 1.0 <= k <= max(len(q), 1) * (1 + 1e-9)
    assert float(np.minimum(q, alpha / k).sum()) <= alpha * (1 + 1e-6)
    if k > 1.0:
        assert float(np.minimum(q, alpha / (k * (1 - 1e-6))).sum()) > alpha * (1 - 1e-9)


def test_a_grievance_too_slow_for_any_window_bursts_over_a_span_and_ends_with_it() -> None:
    """Six complaints a window among sixty never reach ``min_support`` (8) in one window; over three windows they
    do. The burst states the span it was decided over and counts exactly the mentions in it, and once the
    grievance stops the span's memory of it raises nothing more."""
    slow = {w: (["人手不够", "排队"], 6) for w in range(30, 36)}
    assert feed(BurstDetector(window=W, min_support=8, alpha=1e-6), 40, 60, random.Random(7), slow) == []
    assert feed(BurstDetector(window=W, min_support=8, alpha=1e-6, spans=(3, 6)), 40, 60, random.Random(1), {}) == []
    topics = feed(BurstDetector(window=W, min_support=8, alpha=1e-6, spans=(3, 6)), 40, 60, random.Random(7), slow)
    assert topics
    for _, topic in topics:
        assert 30 * W < topic.window_end <= 36 * W  # found while it lasts, never after
        for burst in topic.bursts:
            assert burst.span > W and burst.span % W == 0
            first = round((topic.window_end - burst.span) / W)
            mentioned = sum(6 for w in range(first, round(topic.window_end / W)) if w in slow)
            assert burst.count == mentioned and burst.share == mentioned / (60 * burst.span / W)


def test_a_span_is_two_windows_or_more() -> None:
    import pytest

    with pytest.raises(ValueError, match="two windows"):
        BurstDetector(window=W, spans=(1, 3))


def test_a_spans_memory_of_a_grievance_raises_nothing_once_it_is_over() -> None:
    """排队 is an everyday word here (a complaint a window); for six windows it comes six times as often, then
    twice as often (the stragglers). The longer spans still hold the grievance's windows, but the newest one
    alone is not unusual: the grievance is over."""
    ordinary = {w: (["排队"], 1 if w < 30 else 2) for w in range(44)}
    slow = {**ordinary, **{w: (["人手不够", "排队"], 6) for w in range(30, 36)}}
    topics = feed(BurstDetector(window=W, min_support=8, alpha=1e-6, spans=(3, 6)), 44, 60, random.Random(7), slow)
    assert topics and all(topic.window_end <= 36 * W for _, topic in topics), [(t.window_end / W, t.terms) for _, t in topics]


def test_an_everyday_word_swinging_high_after_its_grievance_is_the_spans_memory_not_a_new_burst() -> None:
    """排队 is an everyday word whose share swings from window to window (0 to 12 of 60). For three windows it
    fills half the complaints, then goes back to its swings; three windows later 14 of 60: a count its usual share
    makes unlikely (binomial tail below 1 %), but within the swings it has shown. The six-window span still holds
    the grievance; the newest window alone is not unusual for this word, so nothing fires after the grievance.
    Thirty of 60 are beyond its swings: the grievance is back, and fires."""

    def topics_after(seed: int, newest: int) -> list[float]:
        swing = random.Random(seed)
        ordinary = {w: (["排队"], swing.choice((0, 2, 4, 8, 12))) for w in range(40)}
        ordinary[35] = (["排队"], newest)
        grievance = {**ordinary, **{w: (["排队"], 30) for w in range(30, 33)}}
        topics = feed(BurstDetector(window=W, min_support=8, alpha=1e-6, spans=(3, 6)), 40, 60, random.Random(7), grievance)
        assert any(30 * W < t.window_end <= 33 * W for _, t in topics)  # the grievance itself is found
        return [t.window_end / W for _, t in topics if t.window_end > 33 * W]

    for seed in (0, 1, 2):
        assert topics_after(seed, 14) == [], seed
        assert topics_after(seed, 30) == [36.0], seed


def test_a_window_of_one_complaint_teaches_a_share_of_one_complaint_not_a_usual_windows() -> None:
    """Night windows of one complaint, some naming an everyday word (登录不了, in 4.5 % of complaints): a share of
    100 % each. Learnt as whole steps of the moving averages they made its usual share 7 % and its swings 18 points,
    and an app failure that lifted it to 29 % of an hour's complaints scored 0.7 (500 a day, seed 4: found two
    hours late, over a span). A window teaches in proportion to its complaints, up to the usual number, and the
    swings learnt are those beyond the binomial noise of each window's complaints."""
    rng = random.Random(4)
    d = BurstDetector(window=W, min_support=6, alpha=1e-6)
    topics, outage = [], 24 * 8 + 10
    for w in range(outage + 1):
        night = w % 24 < 6
        docs = 1 if night else 60
        if night:
            naming = 1 if w % 24 == 3 and w // 24 % 2 == 0 else 0  # every other night, one complaint of one
        else:
            naming = 18 if w == outage else sum(rng.random() < 0.045 for _ in range(docs))
        for i in range(docs):
            terms = ["登录不了"] if i < naming else [f"词{rng.randrange(200)}"]
            topics += d.add(w * W + i, f"k{w}-{i}", [*terms, "投诉"], "…")
    topics += d.close_window()
    found = [b for t in topics for b in t.bursts if b.term == "登录不了"]
    assert [t.window_start for t in topics] == [outage * W], [(t.window_start / W, t.terms) for t in topics]
    assert found and 0.03 < found[0].expected < 0.06, found


def test_a_spans_usual_share_is_the_tables_as_they_stood_before_it_whatever_each_window_taught() -> None:
    """A span is judged against the term's share and swings before it: the last windows' steps undone. Windows of
    one complaint or of eighty teach different steps (in proportion to their complaints); undone with each one's,
    the share and swings are those of a detector that never saw the span's windows."""
    rng = random.Random(9)
    windows = []
    for _ in range(40):
        docs = rng.choice((1, 3, 40, 80))
        windows.append([["排队"] if rng.random() < 0.1 else [f"词{rng.randrange(50)}"] for _ in range(docs)])
    seen, kept = BurstDetector(window=W, width=1 << 12, spans=(3,)), BurstDetector(window=W, width=1 << 12, spans=(3,))
    for w, complaints in enumerate(windows):
        for detector in (seen, kept) if w < 37 else (seen,):
            for i, terms in enumerate(complaints):
                detector.add_to(w * W, f"k{w}-{i}", terms, "…")
            detector.close(w * W)
    assert {t.weight for t in seen.recent} - {1.0}  # some of the span's windows taught less than a whole step
    (mean,), (var,) = seen._learnt(["排队"])
    counts = [sum(terms == ["排队"] for terms in complaints) for complaints in windows[37:]]
    before_mean, before_var = seen._learnt_before(mean, var, seen.recent[-3:], counts, {3})[3]
    (kept_mean,), (kept_var,) = kept._learnt(["排队"])
    assert before_mean == pytest.approx(kept_mean * kept._unbias(), rel=1e-4)
    assert before_var == pytest.approx(max(kept_var, 0.0) * kept._unbias(), rel=1e-3, abs=1e-6)


def test_the_fewest_unusual_mentions_are_scipys_never_more() -> None:
    """The spans' prefilter skips terms with fewer mentions than this; more than scipy's count would skip a
    term that could burst."""
    from scipy.stats import binom

    from detectors.signitrend import _fewest_unusual

    for docs in [*range(1, 400), 1000, 5000, 20000]:
        for share in (0.005, 0.01, 0.05, 0.2):
            exact = min(int(binom.isf(0.01, docs, share)) + 1, docs + 1)
            assert _fewest_unusual(docs, share, 0.01) <= exact, (docs, share)


def _dense_learning(mean: np.ndarray, var: np.ndarray, counts: np.ndarray, docs: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """The moving averages' step over every counter of the table, as the detector's documentation states it: the
    share's deviation, and its square less the window's binomial noise."""
    delta = counts / np.float32(docs) - mean
    noise = mean * (np.float32(1.0) - mean) / np.float32(docs)
    return (mean + np.float32(step) * delta).astype(np.float32), (
        np.float32(1.0 - step) * (var + np.float32(step) * (delta * delta - noise))
    ).astype(np.float32)


def test_learning_only_the_counters_that_held_a_count_gives_the_whole_tables_step_bit_for_bit() -> None:
    rng = random.Random(11)
    vocabulary = [f"词{i}" for i in range(400)]
    d = BurstDetector(window=W, width=1 << 10, warmup_windows=2, min_support=3)
    mean, var = d.mean.copy(), d.var.copy()
    for w in range(30):
        docs = rng.randint(1, 60)
        for i in range(docs):
            d.add_to(w * W, f"k{w}-{i}", rng.sample(vocabulary[: 40 + 12 * w], rng.randint(1, 4)), "…")
        counts = d.open[w * W].counts.copy()
        usual = d.usual_docs()  # a window teaches in proportion to its complaints, up to the usual number
        step = d.alpha * (min(docs / usual, 1.0) if usual > 0 else 1.0)
        d.close(w * W)
        mean, var = _dense_learning(mean, var, counts, docs, step)
        assert d.mean.tobytes() == mean.tobytes() and d.var.tobytes() == var.tobytes(), w
        if w == 12:  # restored from what was stored: which counters held a count is read from the tables
            restored = BurstDetector(window=W, width=1 << 10, warmup_windows=2, min_support=3)
            assert restored.load_tables(*d.tables())
            restored.windows_seen, restored.docs_mean = d.windows_seen, d.docs_mean
            d = restored
    assert 0 < np.count_nonzero(d.mean) < d.mean.size  # some counters never held a count


_SUMMARY_SCRIPT = """
import random
from detectors.signitrend import BurstDetector
d = BurstDetector(window=600.0, candidates=16, warmup_windows=2, min_support=3)
rng = random.Random(7)
for w in range(4):
    for i in range(300):
        d.add(w * 600.0 + i, f"k{w}-{i}", [f"词{rng.randrange(400)}" for _ in range(6)], "")
d.close_window()
print(sorted((b.term, b.count) for b in d.last_scores))
"""


def test_which_terms_a_full_window_keeps_does_not_depend_on_the_processs_string_hashing() -> None:
    """What a window scores must not follow a set's iteration order, which changes with PYTHONHASHSEED (and with
    it a replay's alerts): when its heaviest terms were a streaming summary's, they came in in a set's order."""
    import subprocess
    import sys

    runs = {
        subprocess.run(
            [sys.executable, "-c", _SUMMARY_SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(runs) == 1 and "词" in next(iter(runs)), runs


def test_a_windows_candidates_and_topics_do_not_depend_on_the_order_its_complaints_came_in() -> None:
    """A worker reading several partitions adds a window's complaints in another order than a backtest: the terms
    a window scores (more distinct ones than it has candidate slots) and its topics must be the backtest's."""
    rng = random.Random(11)
    windows = []
    for w in range(12):
        docs = []
        for i in range(300):
            terms = [f"词{min(int(rng.paretovariate(1.2)), 600)}" for _ in range(5)]
            if w == 11 and i < 30:
                terms.append("光猫 红灯")
            docs.append((f"k{w}-{i}", terms))
        windows.append(docs)

    def run(order: random.Random | None) -> list:
        d = BurstDetector(window=W, candidates=16, samples=100, warmup_windows=6, min_support=5, alpha=1e-6, spans=(3,))
        out = []
        for w, docs in enumerate(windows):
            docs = list(docs)
            if order is not None:
                order.shuffle(docs)
            for doc_id, terms in docs:
                d.add_to(w * W, doc_id, terms, " ".join(terms), w * W)
            out.append(([t.terms for t in d.close(w * W)], [(b.term, b.count) for b in d.last_scores]))
        return out

    in_order = run(None)
    assert any("光猫 红灯" in terms for topics, _ in in_order for terms in topics)  # the premise: a burst to find
    assert run(random.Random(1)) == in_order
    assert run(random.Random(2)) == in_order
