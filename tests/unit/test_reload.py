"""Hot reload in the engine: a changed directory is swapped in whole, state of unchanged rules survives, bad sets are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry

from rules import load_rules
from rules.bundle import RuleBundle
from streams.config import default_rules_dir
from streams.engine import DictBackend, Engine, EngineConfig
from streams.metrics import PipelineMetrics
from streams.reload import DirectoryWatch, RuleReloader
from tests.helpers import complaint, order, run


def setup(tmp_path: Path) -> tuple[Path, Engine, RuleReloader, DirectoryWatch, PipelineMetrics]:
    pack = tmp_path / "pack"
    shutil.copytree(default_rules_dir(), pack)
    engine = Engine(load_rules(pack).rules, DictBackend(), EngineConfig(allowed_lateness=60, idle_after=None))
    metrics = PipelineMetrics(CollectorRegistry())
    watch = DirectoryWatch(pack)
    return pack, engine, RuleReloader(engine, metrics, RuleBundle.from_directory(pack).version), watch, metrics


def test_a_valid_change_is_applied_and_open_watches_survive(tmp_path: Path) -> None:
    pack, engine, reloader, watch, metrics = setup(tmp_path)
    assert watch.poll() is None  # nothing changed yet
    run(engine.rules, [order("created", 0, product="宽带", tier="gold")], engine=engine, close=False)
    redline = pack / "redline.yaml"
    redline.write_text(redline.read_text(encoding="utf-8").replace("12315]", "12315, 断网投诉]"), encoding="utf-8")
    bundle = watch.poll()
    assert bundle is not None and reloader.apply(bundle)
    assert metrics.rules_info.labels(bundle.version)._value.get() == 1
    later = [
        complaint("opened", 60, text="我要断网投诉"),
        order("created", 49 * 60, order_id="late", product="宽带"),
        complaint("updated", 49 * 60),  # every stream past 48 h: the watermark passes the deadline
    ]
    alerts = run(engine.rules, later, engine=engine, close=False)
    assert {a.rule_id for a in alerts if a.status == "firing"} >= {"redline-complaint", "install-sla"}
    breach = next(a for a in alerts if a.rule_id == "install-sla" and "phase" not in a.labels)
    assert breach.labels["order_id"] == "ord-1"  # the watch opened before the reload


def test_an_invalid_change_is_refused_and_the_old_rules_keep_alerting(tmp_path: Path) -> None:
    pack, engine, reloader, watch, metrics = setup(tmp_path)
    before = reloader.version
    (pack / "broken.yaml").write_text("id: broken\ntype: match\n", encoding="utf-8")
    bundle = watch.poll()
    assert bundle is not None and not reloader.apply(bundle)
    assert reloader.version == before and "broken.yaml" in reloader.last_errors[0]
    assert metrics.rules_reloads_total.labels("rejected")._value.get() == 1
    alerts = run(engine.rules, [complaint("opened", 0, text="去工信部投诉")], engine=engine)
    assert [a.rule_id for a in alerts] == ["redline-complaint"]


def test_the_same_bundle_twice_is_no_change(tmp_path: Path) -> None:
    pack, _engine, reloader, _watch, metrics = setup(tmp_path)
    assert reloader.apply(RuleBundle.from_directory(pack))
    assert metrics.rules_reloads_total.labels("unchanged")._value.get() == 1
    assert metrics.rules_reloads_total.labels("applied")._value.get() == 0


def test_a_set_that_drops_rules_or_is_empty_is_refused_unless_forced(tmp_path: Path) -> None:
    """A half-copied or emptied directory must not silence the fleet: refused, the running rules keep alerting."""
    pack, engine, reloader, watch, metrics = setup(tmp_path)
    before, count = reloader.version, len(engine.rules)
    (pack / "redline.yaml").unlink()
    shrunk = watch.poll()
    assert shrunk is not None and not reloader.apply(shrunk)
    assert reloader.version == before and "drops 1 running rule(s): redline-complaint" in reloader.last_errors[0]
    for path in pack.glob("*.yaml"):
        path.unlink()
    empty = watch.poll()
    assert empty is not None and not reloader.apply(empty) and "holds no rules" in reloader.last_errors[0]
    assert metrics.rules_reloads_total.labels("rejected")._value.get() == 2 and len(engine.rules) == count
    assert [a.rule_id for a in run(engine.rules, [complaint("opened", 0, text="去工信部投诉")], engine=engine)] == ["redline-complaint"]
    forced = RuleBundle(version=shrunk.version, files=shrunk.files, force=True)  # `rules publish --force`
    assert reloader.apply(forced) and len(engine.rules) == count - 1
