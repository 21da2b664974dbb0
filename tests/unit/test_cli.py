"""The ``yujing`` command as a user runs it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from streams.cli import main
from tests.helpers import VOLUMES

ROOT = Path(__file__).resolve().parents[2]


def yujing(*args: str, timeout: float = 120, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = None if columns is None else {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_shows_an_sla_breach_and_a_redline_alert(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    done = yujing("demo", "--seconds", "4", "--port", "0", "--alerts", str(alerts), "--dead-letters", str(tmp_path / "dl.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "metrics were served at http://127.0.0.1:" in done.stdout
    records = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines()]
    firing = {r["rule_id"] for r in records if r["status"] == "firing"}
    assert {"install-sla", "redline-complaint"} <= firing
    assert "install-sla" in done.stdout and "redline-complaint" in done.stdout


def test_simulate_then_run_a_gzip_file_with_bad_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    assert (
        main(
            [
                "simulate",
                "--customers",
                "300",
                *VOLUMES,
                "--history-days",
                "1",
                "--out",
                str(events),
                "--truth",
                str(tmp_path / "truth.json"),
            ]
        )
        == 0
    )
    lines = events.read_bytes().splitlines()
    packed = tmp_path / "events.jsonl.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(b"\n".join([*lines[:10], b"{broken", b'{"event_type": "order.unknown"}', *lines[10:]]) + b"\n")
    out, dead = tmp_path / "alerts.jsonl", tmp_path / "dead.jsonl"
    assert main(["run", "--events", str(packed), "--alerts", str(out), "--dead-letters", str(dead)]) == 0
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [(d["category"], d["original"]) for d in letters] == [
        ("invalid_json", "{broken"),
        ("unknown_event_type", '{"event_type": "order.unknown"}'),
    ]
    assert out.read_text().count("\n") > 0
    assert json.loads((tmp_path / "truth.json").read_text())["incidents"]


def test_run_explains_a_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["run", "--events", str(tmp_path / "nope.jsonl")]) == 2


def test_rules_check_exit_codes(tmp_path: Path) -> None:
    assert main(["rules", "check", str(ROOT / "rules" / "packs" / "default")]) == 0
    (tmp_path / "bad.yaml").write_text("id: x\ntype: match\n")
    done = yujing("rules", "check", str(tmp_path))
    assert done.returncode == 1 and "bad.yaml:" in done.stdout


def test_bad_rules_stop_the_worker_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: x\ntype: nope\n")
    done = yujing("worker", "--rules", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "nothing started" in done.stderr


def test_rules_check_refuses_a_missing_or_empty_directory_and_locates_policy_and_duplicate_id_errors(tmp_path: Path, capsys) -> None:
    assert main(["rules", "check", str(tmp_path / "typo")]) == 1
    assert "typo:1:1: no such file or directory" in capsys.readouterr().out
    assert main(["rules", "check", str(tmp_path)]) == 1
    assert "holds no rules" in capsys.readouterr().out
    assert main(["rules", "check", str(tmp_path), "--force"]) == 0
    rule = "  - {{id: {}, type: match, title: t, severity: major, on: complaint.opened, summary: s}}\n"
    (tmp_path / "two.yaml").write_text("rules:\n" + rule.format("same") + rule.format("same"), encoding="utf-8")
    policy = "realert: 30m\ninhibit:\n  - name: outage\n    source: [source=cohort_spike]\n    target: [category=redline]\n"
    (tmp_path / "alerting.policy.yaml").write_text(policy, encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "two.yaml:3:10: duplicate rule id `same` (also rule 1 of this file)" in out
    assert "alerting.policy.yaml:5:13: policy.inhibit[0].target: category=redline alerts are always sent" in out


def test_simulate_writes_gzip_when_the_name_says_so_and_backtest_reads_it(tmp_path: Path) -> None:
    packed = tmp_path / "events.jsonl.gz"
    assert main(["simulate", "--customers", "200", *VOLUMES, "--history-days", "1", "--out", str(packed)]) == 0
    with gzip.open(packed, "rb") as fh:  # a plain file here raised BadGzipFile
        assert json.loads(fh.readline())["event_type"]
    assert main(["run", "--events", str(packed), "--alerts", str(tmp_path / "alerts.jsonl")]) == 0


def test_rules_check_against_the_running_set_refuses_a_shrunk_directory(tmp_path: Path, capsys) -> None:
    import shutil

    new = tmp_path / "new"
    shutil.copytree(ROOT / "rules" / "packs" / "default", new)
    (new / "redline.yaml").unlink()
    running = str(ROOT / "rules" / "packs" / "default")
    assert main(["rules", "check", str(new), "--against", running]) == 1
    assert "drops 1 running rule(s): redline-complaint" in capsys.readouterr().out
    assert main(["rules", "check", str(new), "--against", running, "--force"]) == 0
    retired = (ROOT / "rules" / "packs" / "default" / "redline.yaml").read_text(encoding="utf-8")
    (new / "redline.yaml").write_text(retired.replace("severity: critical", "enabled: false\nseverity: critical"), encoding="utf-8")
    assert main(["rules", "check", str(new), "--against", running]) == 0  # retired on purpose: not a drop
