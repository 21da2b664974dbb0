"""``yujing rules test``: the default pack's own tests pass; a wrong expectation fails with a readable diff."""

from __future__ import annotations

import shutil
from pathlib import Path

from streams.config import default_rules_dir
from tests.unit.test_cli import yujing

PACK = Path(default_rules_dir())


def test_every_rule_of_the_default_pack_has_a_passing_test(tmp_path: Path) -> None:
    # A deep checkout on a narrow terminal (as in CI): each result stays one line, never wrapped mid-path.
    pack = tmp_path / ("a-long-checkout-directory-name" * 3) / "pack"
    shutil.copytree(PACK, pack)
    done = yujing("rules", "test", str(pack), columns=60)
    assert done.returncode == 0, done.stdout + done.stderr
    tested = {line.split(": ")[0] for line in done.stdout.splitlines() if line.startswith("PASS")}
    rule_files = {p.stem for p in PACK.glob("*.yaml") if not p.name.endswith(".policy.yaml")}
    assert {Path(t).name.removesuffix(".test.yaml") for t in tested} == rule_files
    assert "0 failure(s)" in done.stdout


def _copy_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    return pack


def test_a_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    test = pack / "tests" / "complaint-sla.test.yaml"
    test.write_text(test.read_text(encoding="utf-8").replace("status: firing, at: 24h", "status: firing, at: 23h"), encoding="utf-8")
    done = yujing("rules", "test", str(test))
    assert done.returncode == 1
    out = done.stdout.replace("\n", " ")
    assert "FAIL" in out and "- expected   complaint-close-sla firing at +23h" in out
    assert "+ unexpected complaint-close-sla firing at +1d" in out


def test_a_changed_rule_is_caught_by_its_test(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    rule = pack / "redline.yaml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("工信部, ", ""), encoding="utf-8")
    done = yujing("rules", "test", str(pack / "tests" / "redline.test.yaml"))
    assert done.returncode == 1 and "- expected   redline-complaint firing at +0s" in done.stdout


def test_events_that_break_the_contract_and_broken_files_are_errors(tmp_path: Path) -> None:
    bad_event = tmp_path / "a.test.yaml"
    bad_event.write_text(
        f"rule_files: [{PACK / 'redline.yaml'}]\n"
        "tests:\n  - name: no text\n    events: [{at: 0s, event_type: complaint.opened, complaint_id: k1, ts2: 1}]\n",
        encoding="utf-8",
    )
    done = yujing("rules", "test", str(bad_event))
    assert done.returncode == 1 and "breaks the event contract" in done.stdout
    broken = tmp_path / "b.test.yaml"
    broken.write_text("rule_files: [nope.yaml]\ntests: []\n", encoding="utf-8")
    done = yujing("rules", "test", str(broken))
    assert done.returncode == 1 and "ERROR" in done.stdout
    (tmp_path / "empty").mkdir()
    assert yujing("rules", "test", str(tmp_path / "empty")).returncode == 2  # nothing to test is not a pass
