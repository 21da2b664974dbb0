"""The coverage-guided fuzz targets run for a bounded time in the suite: no crash, no hang, every rejection with a reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS, seeds

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 10


def test_every_target_has_seeds_that_pass_it() -> None:
    for name, target in TARGETS.items():
        found = seeds(name)
        assert found, name
        for seed in found:
            target(seed)


def test_fuzzing_each_target_finds_no_crash_and_no_hang(tmp_path: Path) -> None:
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fuzz.targets",
                name,
                f"-max_total_time={SECONDS}",
                "-timeout=10",  # an input taking longer is a hang, reported as a crash
                "-rss_limit_mb=1024",
                f"-artifact_prefix={tmp_path}/{name}-",
                str(tmp_path / f"corpus-{name}"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in TARGETS
    }
    failures = []
    for name, proc in runs.items():
        out, _ = proc.communicate(timeout=SECONDS * 10)
        done = [line for line in out.splitlines() if line.startswith("Done ")]
        if proc.returncode != 0 or not done:
            failures.append(f"{name}: rc {proc.returncode}, artifacts {sorted(p.name for p in tmp_path.glob(name + '-*'))}\n{out[-3000:]}")
        else:
            runs_done = int(done[0].split()[1])
            assert runs_done > 100, f"{name} ran only {runs_done} inputs"
    if failures:
        pytest.fail("\n\n".join(failures))
