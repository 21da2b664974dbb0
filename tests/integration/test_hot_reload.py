"""Hot reload against a running worker on the real broker: `yujing rules publish` → every worker follows.

A valid change takes effect without a restart and the unchanged SLA rule keeps
its open watch across the reload; an invalid bundle is rejected and the rules
running keep alerting.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rules import load_rules
from streams.config import default_rules_dir
from tests.integration.harness import ROOT, Worker, create_topics, publish, read_alerts
from tests.integration.servers import TansuBroker, wait_for

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
CUSTOMER = "c-reload"


def event(kind: str, hours: float, prefix: str = "hr-", **fields: Any) -> tuple[str, bytes, bytes]:
    topic = {"order": "orders", "bill": "billing", "complaint": "complaints", "refund": "billing"}[kind.split(".")[0]]
    body = {
        "event_id": f"{kind}-{hours}-{fields.get('order_id', fields.get('complaint_id', fields.get('bill_id', '')))}",
        "event_type": kind,
        "ts": (T0 + dt.timedelta(hours=hours)).isoformat(),
        "customer_id": CUSTOMER,
        "region": "台州",
        **fields,
    }
    return prefix + topic, CUSTOMER.encode(), json.dumps(body, ensure_ascii=False).encode()


def all_streams(hours: float, tag: str) -> list[tuple[str, bytes, bytes]]:
    """One event on each stream of the customer's partition, so its watermark moves to ``hours`` − lateness."""
    return [
        event("order.scheduled", hours, order_id=f"o-{tag}"),
        event("bill.adjusted", hours, bill_id=f"b-{tag}", cycle="2026-03", amount=1.0),
        event("complaint.updated", hours, complaint_id=f"k-{tag}"),
    ]


def publish_rules(bootstrap: str, directory: Path, topic: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUJING_KAFKA_BOOTSTRAP": bootstrap}
    command = [sys.executable, "-m", "streams.cli", "rules", "publish", str(directory), "--topic", topic, *flags]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_published_rules_reload_without_restart_and_bad_ones_are_rejected(workdir: Path, broker: TansuBroker) -> None:
    pack = workdir / "reload-pack"
    shutil.copytree(default_rules_dir(), pack)
    create_topics(broker.bootstrap, prefix="hr-")
    topic = "hr-rules"
    out = workdir / "reload-alerts.jsonl"
    worker = Worker(
        workdir,
        broker.bootstrap,
        app_id="yujing-reload",
        prefix="hr-",
        YUJING_RULES_DIR=str(pack),
        YUJING_RULES_TOPIC=topic,
        YUJING_OUTPUT_ALERTS=str(out),
    )
    worker.start()
    try:

        def alerts(rule: str, status: str = "firing") -> list:
            return [a for a in read_alerts(out) if a.rule_id == rule and a.status == status]

        # Before: a gold broadband order opens an install-SLA watch (48 h); a red-line complaint alerts.
        publish(
            broker.bootstrap,
            [
                event("order.created", 0, order_id="o-1", tier="gold", product="宽带"),
                event("complaint.opened", 0, complaint_id="k-1", text="我要去工信部投诉"),
                *all_streams(1, "a"),
            ],
        )
        assert wait_for(lambda: len(alerts("redline-complaint")) == 1, 60, lambda: f"the first red-line alert\n{worker.tail()}")
        old_version = alerts("redline-complaint")[0].rule_version
        assert worker.sum("yujing_rules_loaded") == len(load_rules(pack).rules)

        # A valid change, published: 断网投诉 becomes a red-line term.
        redline = pack / "redline.yaml"
        redline.write_text(redline.read_text(encoding="utf-8").replace("12315]", "12315, 断网投诉]"), encoding="utf-8")
        done = publish_rules(broker.bootstrap, pack, topic)
        assert done.returncode == 0, done.stdout + done.stderr
        version = done.stdout.split()[1]
        assert wait_for(lambda: worker.sum("yujing_rules_info", version=version) == 1, 60, lambda: f"the reload\n{worker.tail()}")
        publish(broker.bootstrap, [event("complaint.opened", 2, complaint_id="k-2", text="再不修好我就断网投诉")])
        assert wait_for(lambda: len(alerts("redline-complaint")) == 2, 60, lambda: f"the new term to alert\n{worker.tail()}")
        assert alerts("redline-complaint")[1].rule_version != old_version

        # The unchanged SLA rule kept its watch: moving event time past 48 h breaches the order opened before the reload.
        publish(broker.bootstrap, all_streams(49, "b"))
        assert wait_for(
            lambda: len(alerts("install-sla")) >= 1, 60, lambda: f"the breach of the watch opened before the reload\n{worker.tail()}"
        )
        breach = next(a for a in alerts("install-sla") if "phase" not in a.labels)
        assert breach.labels["order_id"] == "o-1"

        # The CLI refuses an invalid directory; a bad bundle that reaches the topic anyway is rejected by the worker.
        redline.write_text(redline.read_text(encoding="utf-8").replace("severity: critical", "severity: urgent"), encoding="utf-8")
        refused = publish_rules(broker.bootstrap, pack, topic)
        assert refused.returncode == 1 and "not published" in refused.stdout
        from rules.bundle import RuleBundle

        bad = RuleBundle.from_directory(pack)
        publish(broker.bootstrap, [(topic, b"bundle", bad.to_bytes())])
        assert wait_for(
            lambda: worker.sum("yujing_rules_reloads_total", outcome="rejected") >= 1, 60, lambda: f"the rejection\n{worker.tail()}"
        )
        assert worker.sum("yujing_rules_info", version=version) == 1
        publish(broker.bootstrap, [event("complaint.opened", 50, complaint_id="k-3", text="媒体曝光你们")])
        assert wait_for(lambda: len(alerts("redline-complaint")) == 3, 60, lambda: f"the old rules to keep alerting\n{worker.tail()}")
        assert worker.alive()

        # Rails: a directory that drops a running rule is refused against the topic's newest bundle, unless forced.
        redline.write_text(redline.read_text(encoding="utf-8").replace("severity: urgent", "severity: critical"), encoding="utf-8")
        (pack / "intake-silence.yaml").unlink()
        shrunk = publish_rules(broker.bootstrap, pack, topic)
        assert shrunk.returncode == 1 and "drops 1 running rule(s): intake-silence" in shrunk.stdout, shrunk.stdout + shrunk.stderr
        forced = publish_rules(broker.bootstrap, pack, topic, "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        rules_now = len(load_rules(pack).rules)
        assert wait_for(lambda: worker.sum("yujing_rules_loaded") == rules_now, 60, lambda: f"the forced bundle\n{worker.tail()}")
    finally:
        worker.stop()


def test_a_single_worker_watching_its_rules_directory_picks_up_a_change(workdir: Path, broker: TansuBroker) -> None:
    pack = workdir / "watch-pack"
    shutil.copytree(default_rules_dir(), pack)
    create_topics(broker.bootstrap, prefix="hw-")
    out = workdir / "watch-alerts.jsonl"
    worker = Worker(
        workdir,
        broker.bootstrap,
        app_id="yujing-watch",
        prefix="hw-",
        YUJING_RULES_DIR=str(pack),
        YUJING_RULES_WATCH="1",
        YUJING_OUTPUT_ALERTS=str(out),
    )
    worker.start()
    try:
        before = len(load_rules(pack).rules)
        hidden = pack / "redline.yaml"
        text = hidden.read_text(encoding="utf-8")
        hidden.unlink()  # a file gone (a half-copied directory?): refused, the red-line rule keeps running
        assert wait_for(
            lambda: worker.sum("yujing_rules_reloads_total", outcome="rejected") == 1, 90, lambda: f"the refusal\n{worker.tail()}"
        )
        assert worker.sum("yujing_rules_loaded") == before
        hidden.write_text(text.replace("severity: critical", "enabled: false\nseverity: critical"), encoding="utf-8")  # retired on purpose
        assert wait_for(lambda: worker.sum("yujing_rules_loaded") == before - 1, 90, lambda: f"the file watch\n{worker.tail()}")
        assert worker.sum("yujing_rules_reloads_total", outcome="applied") == 1
        publish(broker.bootstrap, [event("complaint.opened", 100, prefix="hw-", complaint_id="k-w", text="我要去工信部投诉")])
        assert wait_for(lambda: worker.sum("yujing_events_total", outcome="accepted") >= 1, 30, "the event")
        assert not [a for a in read_alerts(out) if a.rule_id == "redline-complaint"]
    finally:
        worker.stop()
