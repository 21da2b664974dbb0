"""``hot_words`` through the engine: one alert per topic, quiet on a steady background, and a restart
in the middle (fresh rule objects over the same state) gives exactly the alerts of an unbroken run."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from rules.types.hot_words import unpack_chunk
from streams.engine import DictBackend, Engine, EngineConfig
from streams.partitioning import partition_for
from tests.helpers import T0, CountingState, complaint, rules_from, run, run_with_restart, spread_over_partitions

RULE = """
id: hot
type: hot_words
title: 投诉热词
severity: major
window: 1h
warmup: 6h
dictionary: [多扣费]
summary: "投诉热词：{terms}（{count} 件）"
"""

BACKGROUND = [
    "宽带网速很慢，晚上看视频卡顿",
    "装机师傅迟到了两个小时",
    "电视信号不好，经常花屏",
    "客服电话打不通，等了很久",
    "话费套餐不清楚，想咨询一下",
]
BURST = ["这个月账单多扣费了三十块", "又多扣费，账单和套餐对不上", "账单上多扣费，要求退还"]


def complaints(hours: int, burst_at: int | None, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for h in range(hours):
        texts = [rnd.choice(BACKGROUND) for _ in range(80)]
        if h == burst_at:
            texts += [rnd.choice(BURST) for _ in range(30)]
            rnd.shuffle(texts)
        for i, text in enumerate(texts):
            out.append(complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=text))
    return out


def test_a_steady_background_raises_nothing(tmp_path: Path) -> None:
    assert run(rules_from(tmp_path, RULE), complaints(20, None), batch=40) == []


def test_a_new_phrase_is_one_topic_alert_with_its_evidence_then_resolves(tmp_path: Path) -> None:
    alerts = run(rules_from(tmp_path, RULE), complaints(20, 12), batch=40)
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1, [(a.status, a.summary) for a in alerts]
    alert = firing[0]
    assert alert.source == "hot_word" and alert.evidence["lead_term"] in {"多扣费", "账单", "账单 多扣费", "多扣费 账单"}
    terms = {t["term"] for t in alert.evidence["terms"]}
    assert {"多扣费", "账单"} <= terms
    top = alert.evidence["terms"][0]
    assert top["observed_share"] > 5 * top["expected_share"] and top["count"] >= 5
    assert alert.evidence["sample_texts"] and all("多扣费" in t or "账单" in t for t in alert.evidence["sample_texts"])
    assert [a.alert_id for a in alerts if a.status == "resolved"] == [alert.alert_id]


def test_a_restart_mid_stream_loses_neither_the_open_window_nor_what_was_learnt(tmp_path: Path) -> None:
    events = complaints(20, 12)
    whole = run(rules_from(tmp_path, RULE), events, batch=40)
    cut = next(i for i, e in enumerate(events) if e["complaint_id"] == "cp-12-50")  # inside the bursting window
    restarted = run_with_restart(lambda: rules_from(tmp_path, RULE), events, cut, batch=40)
    assert [(a.alert_id, a.status, a.summary, a.evidence) for a in restarted] == [
        (a.alert_id, a.status, a.summary, a.evidence) for a in whole
    ]


SCOPED = RULE.replace("id: hot", "id: hot-scoped").replace("dictionary: [多扣费]", "dictionary: [多扣费]\nscope: [region]")
CITIES = ("杭州", "宁波", "温州", "台州", "绍兴", "金华")
BACKLOG = ["装机师傅一直不来，等了好几天", "报装宽带装机排队，说人手不够", "装机排不上，什么时候能装"]


def city_complaints(hours: int, backlog_at: int | None, seed: int = 2) -> list[dict[str, Any]]:
    """300 complaints an hour over six cities (装机 is an everyday word); at ``backlog_at`` one city adds 25 about it."""
    rnd = random.Random(seed)
    out = []
    for h in range(hours):
        texts = [(rnd.choice(BACKGROUND), CITIES[i % 6]) for i in range(300)]
        if h == backlog_at:
            texts += [(rnd.choice(BACKLOG), "温州") for _ in range(25)]
            rnd.shuffle(texts)
        for i, (text, city) in enumerate(texts):
            out.append(complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=text, region=city))
    return out


def test_a_backlog_in_one_city_is_a_hot_word_there_that_the_province_does_not_show(tmp_path: Path) -> None:
    events = city_complaints(20, 12)
    assert run(rules_from(tmp_path, RULE), events, batch=100) == []  # 装机's province-wide share barely moves
    alerts = run(rules_from(tmp_path, SCOPED), events, batch=100)
    firing = [a for a in alerts if a.status == "firing"]
    assert firing, "the city's backlog went unseen"
    # Its phrasings share no word that bursts in all of them, so they may be one topic or two; all are 温州's.
    assert all(a.labels.get("region") == "温州" and a.evidence["scope"] == {"region": "温州"} for a in firing), [a.summary for a in firing]
    terms = {t["term"] for a in firing for t in a.evidence["terms"]}
    assert any(w in t for t in terms for w in ("装机", "人手", "排不上", "能装")), terms
    assert all(any(p in text for p in ("装机", "人手", "排不上")) for a in firing for text in a.evidence["sample_texts"])
    assert {a.alert_id for a in alerts if a.status == "resolved"} == {a.alert_id for a in firing}
    # A look into the open window every quarter hour: found before the backlog's hour is over.
    assert min(a.starts_at for a in firing) < T0 + dt.timedelta(hours=13)


def test_what_a_look_into_the_open_window_finds_does_not_depend_on_batching(tmp_path: Path) -> None:
    events = city_complaints(20, 12)
    by_batch = [
        [(a.alert_id, a.status, a.starts_at, a.evidence) for a in run(rules_from(tmp_path, SCOPED), events, batch=b)] for b in (7, 400)
    ]
    assert by_batch[0] and by_batch[0] == by_batch[1]


def test_a_grievance_bursting_province_wide_is_one_alert_not_one_more_per_city(tmp_path: Path) -> None:
    events = [dict(e, region=CITIES[i % 6]) for i, e in enumerate(complaints(20, 12))]
    plain = [a for a in run(rules_from(tmp_path, RULE), events, batch=40) if a.status == "firing"]
    scoped = [a for a in run(rules_from(tmp_path, SCOPED), events, batch=40) if a.status == "firing"]
    assert len(plain) == 1 and len(scoped) == 1 and "region" not in scoped[0].labels, [a.summary for a in scoped]


def test_a_restart_keeps_each_citys_tables(tmp_path: Path) -> None:
    events = city_complaints(20, 12)
    whole = run(rules_from(tmp_path, SCOPED), events, batch=100)
    cut = next(i for i, e in enumerate(events) if e["complaint_id"] == "cp-12-150")
    restarted = run_with_restart(lambda: rules_from(tmp_path, SCOPED), events, cut, batch=100)
    assert whole and [(a.alert_id, a.status, a.evidence) for a in restarted] == [(a.alert_id, a.status, a.evidence) for a in whole]


def test_a_citys_tables_are_stored_again_only_after_a_window_that_taught_it(tmp_path: Path) -> None:
    # 杭州 complains in the first 10 hours only; the other cities throughout.
    events = [e for e in city_complaints(20, None) if not (e["region"] == "杭州" and e["ts"] >= (T0 + dt.timedelta(hours=10)).isoformat())]
    backend = DictBackend()
    chunks = backend.namespaces["hw-t:hot-scoped"] = CountingState()
    run([], events, engine=Engine(rules_from(tmp_path, SCOPED), backend, EngineConfig(allowed_lateness=300, idle_after=None)), batch=100)
    stores = Counter(key.partition("|")[0] if "|" in key else "" for key in chunks.written if key.endswith("m0"))
    # every window closed (the last hour stays open at the end of the input) taught the province and the others
    assert stores["region=杭州"] == 10 and stores[""] == 19 and all(stores[f"region={c}"] == 19 for c in CITIES[1:]), stores


def test_tables_stored_uncompressed_by_an_earlier_version_are_read(tmp_path: Path) -> None:
    events = city_complaints(20, 12)
    whole = run(rules_from(tmp_path, SCOPED), events, batch=100)
    cut = next(i for i, e in enumerate(events) if e["complaint_id"] == "cp-12-150")
    backend = DictBackend()
    config = EngineConfig(allowed_lateness=300, idle_after=None)
    first = run([], events[:cut], engine=Engine(rules_from(tmp_path, SCOPED), backend, config), batch=100, close=False)
    chunks, learnt = backend.namespaces["hw-t:hot-scoped"], backend.namespaces["hw-l:hot-scoped"]
    for key, value in list(chunks.items()):  # as the earlier version stored them: raw, and the record says nothing of packing
        chunks.set(key, unpack_chunk(value))
    for key, value in list(learnt.items()):
        learnt.set(key, msgspec.structs.replace(value, packed=False))
    restarted = Engine(rules_from(tmp_path, SCOPED), backend, config)
    restarted.recover()
    again = first + run([], events[cut:], engine=restarted, batch=100)
    assert whole and [(a.alert_id, a.status, a.evidence) for a in again] == [(a.alert_id, a.status, a.evidence) for a in whole]


def test_each_scope_tests_its_terms_at_a_tenth_of_alpha_unless_told(tmp_path: Path) -> None:
    """Eleven regions test eleven times the terms: a region's tail must be ten times as unlikely (Bonferroni)."""
    from rules.loader import load_rule_file

    (default,) = rules_from(tmp_path, SCOPED.replace("scope: [region]", "scope: [region]\nalpha: 1.0e-5"))
    assert default.params["alpha"] == 1e-5 and abs(default.scope_params["alpha"] - 1e-6) < 1e-18  # type: ignore[attr-defined]
    (told,) = rules_from(tmp_path, SCOPED.replace("scope: [region]", "scope: [region]\nscope_alpha: 1.0e-4"))
    assert told.scope_params["alpha"] == 1e-4  # type: ignore[attr-defined]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCOPED.replace("scope: [region]", "scope: [region]\nscope_alpha: 0"), encoding="utf-8")
    result = load_rule_file(bad)
    assert not result.ok and "scope_alpha" in str(result.errors[0])


def test_partitions_read_hours_apart_give_the_alerts_of_time_order(tmp_path: Path) -> None:
    """A worker catching up on a backlog reads some partitions many windows ahead of others: the cohort
    stage then holds records of more windows than its detector keeps open. The alerts, their evidence
    and what the detectors learn must still be those of time order."""
    events = city_complaints(20, 12)
    config = EngineConfig(allowed_lateness=300, idle_after=None)
    in_order = run(rules_from(tmp_path, SCOPED), events, spread=True, batch=50)
    engine = Engine(rules_from(tmp_path, SCOPED), DictBackend(), config)
    first_hour = [e for e in events if e["complaint_id"].startswith("cp-0-")]  # every partition seen, in time order
    rest = sorted(events[len(first_hour) :], key=lambda e: partition_for(e["customer_id"], 8))  # then one partition after another
    skewed = run([], first_hour + rest, engine=engine, spread=True, batch=50)
    assert in_order and [(a.alert_id, a.status, a.starts_at, a.evidence) for a in skewed] == [
        (a.alert_id, a.status, a.starts_at, a.evidence) for a in in_order
    ]


def test_a_partition_read_after_the_others_does_not_find_its_windows_closed(tmp_path: Path) -> None:
    """A worker's first fetches can bring hours of one partition before any of another. The partitions
    it was assigned hold the cohort stage's time until each has been seen."""
    events = city_complaints(20, 12)
    in_order = run(rules_from(tmp_path, SCOPED), events, spread=True, batch=50)
    spread = spread_over_partitions(events)
    first = [pe for pe in spread if pe[0] == 0]  # partition 0, all of it, before any other
    rest = [pe for pe in spread if pe[0] != 0]
    wall = [0.0]
    config = EngineConfig(allowed_lateness=300, idle_after=3600, streams=("complaints",))
    engine = Engine(rules_from(tmp_path, SCOPED), DictBackend(), config, clock=lambda: wall[0])
    engine.expect_partitions(range(8))
    out = []
    for batch in (first, *[rest[i : i + 50] for i in range(0, len(rest), 50)]):
        out += engine.process(batch)
        engine.commit()
    out += engine.close_input()
    assert in_order and [(a.alert_id, a.status, a.starts_at, a.evidence) for a in out] == [
        (a.alert_id, a.status, a.starts_at, a.evidence) for a in in_order
    ]


def test_an_assigned_partition_that_stays_empty_holds_the_cohort_stage_only_until_idle(tmp_path: Path) -> None:
    spread = [pe for pe in spread_over_partitions(city_complaints(20, 12)) if pe[0] != 3]  # partition 3 never has an event
    wall = [0.0]
    config = EngineConfig(allowed_lateness=300, idle_after=600, streams=("complaints",))
    engine = Engine(rules_from(tmp_path, SCOPED), DictBackend(), config, clock=lambda: wall[0])
    engine.expect_partitions(range(8))
    held = engine.process(spread[: len(spread) // 2])
    assert held == [] and engine.cohort is not None and engine.cohort.watermark == float("-inf")
    wall[0] = 601.0  # partition 3 silent for longer than idle_after: the others' time goes on
    late = engine.process(spread[len(spread) // 2 :])
    assert [a for a in late if a.status == "firing"], "the cohort stage never moved on"


SPANS = SCOPED.replace("id: hot-scoped", "id: hot-spans").replace("scope: [region]", "scope: [region]\nspans: [3h, 6h]")


def slow_backlog(hours: int = 20, seed: int = 3) -> list[dict[str, Any]]:
    """300 complaints an hour over six cities; from hour 10 to 15 温州 adds four a hour about a backlog, below
    ``min_support`` (5) in any one hour."""
    rnd = random.Random(seed)
    out = []
    for h in range(hours):
        texts = [(rnd.choice(BACKGROUND), CITIES[i % 6]) for i in range(300)]
        if 10 <= h < 16:
            texts += [(BACKLOG[1], "温州") for _ in range(4)]
            rnd.shuffle(texts)
        for i, (text, city) in enumerate(texts):
            out.append(complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=text, region=city))
    return out


def test_a_backlog_too_slow_for_one_hour_is_found_over_the_spans_and_says_so(tmp_path: Path) -> None:
    events = slow_backlog()
    assert run(rules_from(tmp_path, SCOPED), events, batch=100) == []
    alerts = run(rules_from(tmp_path, SPANS.replace("{count} 件", "近 {span} {count} 件")), events, batch=100)
    firing = [a for a in alerts if a.status == "firing"]
    assert firing and all(a.labels.get("region") == "温州" for a in firing), [a.summary for a in alerts]
    first = firing[0]
    lead = first.evidence["terms"][0]
    assert first.evidence["span_seconds"] == lead["span_seconds"] >= 2 * 3600
    span_text = f"{round(lead['span_seconds'] / 3600)}h"
    assert f"近 {span_text} {lead['count']} 件" in first.summary, first.summary
    assert T0 + dt.timedelta(hours=11) < first.starts_at <= T0 + dt.timedelta(hours=16)
    assert all(a.ends_at <= T0 + dt.timedelta(hours=17) for a in alerts if a.status == "resolved")


def test_a_restart_keeps_what_the_spans_reach_back_to(tmp_path: Path) -> None:
    events = slow_backlog()
    whole = run(rules_from(tmp_path, SPANS), events, batch=100)
    cut = next(i for i, e in enumerate(events) if e["complaint_id"] == "cp-13-150")  # three hours into the backlog
    restarted = run_with_restart(lambda: rules_from(tmp_path, SPANS), events, cut, batch=100)
    assert whole and [(a.alert_id, a.status, a.evidence) for a in restarted] == [(a.alert_id, a.status, a.evidence) for a in whole]


def test_a_span_must_be_a_multiple_of_the_window(tmp_path: Path) -> None:
    from rules.loader import load_rule_file

    for spans, wrong in (("[90m]", "90m"), ("[1h]", "1h"), ("[3h, 49h]", "49h")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(SPANS.replace("[3h, 6h]", spans), encoding="utf-8")
        result = load_rule_file(bad)
        assert not result.ok and f"not `{wrong}`" in str(result.errors[0]) and "spans" in str(result.errors[0]), result.errors


def test_a_long_grievance_keeps_every_term_it_burst_with_so_a_late_one_continues_its_alert(tmp_path: Path) -> None:
    """An incident's topic gathers many terms (here 25 words and their 24 phrases at once); an hour later only
    the last of them still bursts. It is the same grievance: the same alert goes on, none is raised for it."""
    words = [f"zw{i:02d}" for i in range(1, 26)]
    rnd = random.Random(5)
    events = []
    for h in range(16):
        texts = [rnd.choice(BACKGROUND) for _ in range(80)]
        if h == 12:
            texts += [" ".join(words)] * 30
        if h == 13:
            texts += [words[-1]] * 80
        rnd.shuffle(texts)
        events += [complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=t) for i, t in enumerate(texts)]
    alerts = run(rules_from(tmp_path, RULE), events, batch=40)
    firing = [a for a in alerts if a.status == "firing"]
    assert firing and len({a.alert_id for a in firing}) == 1, [a.summary for a in firing]
    (resolved,) = [a for a in alerts if a.status == "resolved"]
    assert resolved.ends_at == T0 + dt.timedelta(hours=15)  # kept open by the last word's hour, ended by the next


def local_burst(hours: int = 20, spread: dict[int, dict[str, int]] | None = None, seed: int = 4) -> list[dict[str, Any]]:
    """300 complaints an hour over six cities; ``spread``: hour → city → complaints about 多扣费 added."""
    rnd = random.Random(seed)
    out = []
    for h in range(hours):
        texts = [(rnd.choice(BACKGROUND), CITIES[i % 6]) for i in range(300)]
        for city, n in (spread or {}).get(h, {}).items():
            texts += [(rnd.choice(BURST), city) for _ in range(n)]
        rnd.shuffle(texts)
        for i, (text, city) in enumerate(texts):
            out.append(complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=text, region=city))
    return out


def test_a_burst_one_city_carries_is_that_citys_alert_where_the_province_shows_it_too(tmp_path: Path) -> None:
    events = local_burst(spread={12: {"温州": 60}})  # the first look into the hour shows it in both
    region = {e["event_id"]: e["region"] for e in events}
    plain = [a for a in run(rules_from(tmp_path, RULE), events, batch=100) if a.status == "firing"]
    assert len(plain) == 1, "the province's share shows the city's burst too"
    alerts = run(rules_from(tmp_path, SCOPED), events, batch=100)
    firing = [a for a in alerts if a.status == "firing"]
    assert len({a.alert_id for a in firing}) == 1, [a.summary for a in firing]
    alert = firing[-1]
    assert alert.labels.get("region") == "温州" and alert.evidence["scope"] == {"region": "温州"}, alert.summary
    assert {region[i] for i in alert.evidence["event_ids"]} == {"温州"}
    # Its numbers are the city's: at most the 60 complaints it added and its own 50 a window.
    assert alert.evidence["terms"][0]["count"] <= 60 and alert.evidence["complaints"] <= 110, alert.evidence


def test_a_province_wide_burst_continuing_an_open_city_alert_keeps_it_going(tmp_path: Path) -> None:
    # 温州 bursts alone, then the grievance spreads: 温州 has a third of the next hour's, so the province's
    # topic is not the city's; it shares the city's words, so it is the city's alert going on, not a second one.
    spread = {12: {"温州": 8}, 13: {"温州": 12, "杭州": 4, "宁波": 4, "台州": 4, "绍兴": 4, "金华": 4}}
    alerts = run(rules_from(tmp_path, SCOPED), local_burst(spread=spread), batch=100)
    firing = [a for a in alerts if a.status == "firing"]
    assert len({a.alert_id for a in firing}) == 1, [(a.starts_at, a.summary) for a in firing]
    [resolved] = [a for a in alerts if a.status == "resolved"]
    assert resolved.labels.get("region") == "温州" and resolved.ends_at == T0 + dt.timedelta(hours=15), resolved
    # It reads as the city last burst, not with the province's numbers under the city's name.
    assert resolved.summary == firing[0].summary and "（8 件）" in resolved.summary, resolved.summary


def _topic(terms: list[str], texts: list[str]) -> Any:
    from detectors.signitrend import TermBurst, Topic

    bursts = tuple(TermBurst(term, 12, 0.3, 0.02, 9.0, False) for term in terms)
    return Topic(0.0, 3600.0, 40, bursts, tuple((f"c{i}", text) for i, text in enumerate(texts)))


def test_a_citys_word_inside_the_provinces_phrases_is_the_same_grievance() -> None:
    """An app failure's province-wide alert bursts with phrases (营业厅 登录不了, 登录不了 更新); three hours on, 杭州's
    share of it bursts as the word 登录不了 alone, in complaints that do not say 更新. It is the same grievance and
    keeps the province's alert going, not a second alert (golden case app_login-3). A word shared only with an
    unrelated topic's samples is not."""
    from rules.types.hot_words import _part_of

    province = {"更新", "更新 以后", "登录不了 更新", "营业厅 登录不了"}
    city = _topic(["登录不了"], ["app登录不了，闪退", "登录不了，验证码收不到", "掌上营业厅登录不了"])
    assert _part_of(city, province)
    assert _part_of(_topic(sorted(province), ["更新以后登录不了"]), {"登录不了"})  # and the other way round
    assert not _part_of(_topic(["排队"], ["装机排队一个星期"]), province)


#: A hot-word rule whose windows hold more distinct terms than it scores and more complaints than it samples.
FEW_CANDIDATES_RULE = RULE.replace("warmup: 6h", "warmup: 6h\ncandidates: 12\nsamples: 60")


def many_terms_complaints(hours: int = 16, burst_at: int = 12, seed: int = 5) -> list[dict[str, Any]]:
    """90 complaints an hour of four words each from a long-tailed vocabulary of 400, and 30 more naming 多扣费 at
    ``burst_at``."""
    rnd = random.Random(seed)
    events = []
    for h in range(hours):
        texts = [" ".join(f"w{min(int(rnd.paretovariate(1.1)), 400)}" for _ in range(4)) for _ in range(90)]
        if h == burst_at:
            texts += [rnd.choice(BURST) for _ in range(30)]
            rnd.shuffle(texts)
        events += [complaint("opened", h * 60 + 59.0 * i / len(texts), f"cp-{h}-{i}", f"c-{i}", text=t) for i, t in enumerate(texts)]
    return events


def in_order_and_hour_by_partition(tmp_path: Path, rule: str, events: list[dict[str, Any]]) -> tuple[list[Any], list[Any], Engine]:
    """The alerts of ``events`` (complaint ids ``cp-<hour>-…``) in time order, then with each hour's complaints read
    one partition after another, each partition's own still in time order, as several workers' records reach the
    cohort stage; and the second run's engine."""
    in_order = run(rules_from(tmp_path, rule), events, spread=True, batch=50)
    engine = Engine(rules_from(tmp_path, rule), DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    by_hour = sorted(events, key=lambda e: (e["complaint_id"].split("-")[1].zfill(3), partition_for(e["customer_id"], 8)))
    return in_order, run([], by_hour, engine=engine, spread=True, batch=50), engine


def test_a_window_of_more_terms_than_candidates_gives_the_alerts_of_time_order_whatever_the_reading_order(
    tmp_path: Path,
) -> None:
    """With more distinct terms in a window than it scores (``candidates``) and more complaints than it samples,
    which terms it scores must follow from the window's complaints, not from the order partitions were read in:
    here each hour's complaints come one partition after another, as several workers' records reach the cohort
    stage. (With the streaming summary of the heaviest terms, the burst's alert resolved an hour later and named
    other terms.)"""
    in_order, skewed, _ = in_order_and_hour_by_partition(tmp_path, FEW_CANDIDATES_RULE, many_terms_complaints())
    assert any("多扣费" in a.summary for a in in_order)  # the premise: the burst is found
    assert [(a.alert_id, a.status, a.starts_at, a.summary, a.evidence) for a in skewed] == [
        (a.alert_id, a.status, a.starts_at, a.summary, a.evidence) for a in in_order
    ]


def test_a_rule_with_more_scopes_than_it_keeps_keeps_the_busiest_whatever_the_reading_order(tmp_path: Path) -> None:
    """``max_scopes: 1`` over six cities: the one kept is the busiest of the first window (温州, with ten
    complaints more than each of the others), not the city of whichever complaint came first. So each hour read
    one partition after another, as a worker reads them, keeps the same city and raises the alerts of time order,
    温州's backlog among them. (Kept at its first complaint, it was 杭州 in time order and 绍兴 read this way.)"""
    rule = SCOPED.replace("scope: [region]", "scope: [region]\nmax_scopes: 1")
    extra = [complaint("opened", 30.5 + i, f"cp-0-x{i}", f"c-x{i}", text=BACKGROUND[i % 5], region="温州") for i in range(10)]
    events = sorted(city_complaints(20, 12) + extra, key=lambda e: e["ts"])
    in_order, skewed, engine = in_order_and_hour_by_partition(tmp_path, rule, events)
    assert any(a.status == "firing" and a.labels.get("region") == "温州" for a in in_order), [a.summary for a in in_order]
    assert [(a.alert_id, a.status, a.starts_at, a.summary, a.evidence) for a in skewed] == [
        (a.alert_id, a.status, a.starts_at, a.summary, a.evidence) for a in in_order
    ]
    assert list(engine.cohort.rules[0].rule.scoped) == ["region=温州"]  # type: ignore[union-attr, attr-defined]


def test_tables_and_tallies_stored_before_windows_had_weights_read_as_whole_steps() -> None:
    """State stored before a window taught in proportion to its complaints has no weights: its tables read as
    every window a whole step (the weight left on their zero start, (1 − a)^windows), its tallies as weight 1."""
    from detectors.signitrend import BurstDetector
    from rules.types.hot_words import Learnt, Tallies

    learnt = msgspec.msgpack.decode(msgspec.msgpack.encode([30, 1024, 3, 2, 40.0, True]), type=Learnt)
    tallies = msgspec.msgpack.decode(msgspec.msgpack.encode([[[600.0, 40, {"断网": 3}]]]), type=Tallies)
    assert learnt.unlearnt is None and tallies.weights == []
    detector = BurstDetector(window=600.0, width=1024, spans=(3,))
    empty = bytes(3 * 1024 * 4)
    assert detector.load_tables(learnt.windows_seen, empty, empty, learnt.unlearnt)
    assert detector.unlearnt == (1.0 - detector.alpha) ** 30
    detector.load_tallies(tallies.windows, tallies.weights)
    assert [(t.start, t.weight) for t in detector.recent] == [(600.0, 1.0)]
