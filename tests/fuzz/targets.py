"""Coverage-guided fuzzing (atheris, libFuzzer) of what enters Yujing from outside: event bytes, rule YAML, alert policies.

    .venv/bin/python -m tests.fuzz.targets decode -runs=200000 -max_total_time=600 -artifact_prefix=out/fuzz/

Each target must accept or reject its input, never crash and never hang (libFuzzer's
``-timeout``), and every rejection must carry a reason: a dead letter's category and
text, a rule error's ``file:line:column`` and message, a policy error naming its place.
An uncaught exception or a failed check is a crash: libFuzzer saves the input under
``-artifact_prefix`` and exits non-zero. The hypothesis tests (``tests/unit/test_decode.py``,
``test_fuzz_config.py``) draw structured mutations; these explore byte by byte from seeds
(the contract's examples, the default rule pack and policy), guided by coverage.
``tests/unit/test_atheris.py`` runs each target for a bounded time in the suite.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import yaml

    from rules.loader import load_rule_text, rule_files
    from streams.alerting.policy import AlertPolicy, PolicyError, parse_policy
    from streams.config import default_rules_dir
    from streams.decode import REASONS, DeadLetter, Decoder
    from yujing.events import BillEvent, ComplaintEvent, OrderEvent

TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}
KINDS = ("orders", "billing", "complaints")
DECODED = (OrderEvent, BillEvent, ComplaintEvent)
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "events.md"


def fuzz_decode(data: bytes) -> None:
    """Any bytes on any topic, with or without a key: an event, or a dead letter with a category and a reason."""
    if not data:
        return
    topic = KINDS[data[0] % 3]
    key = data[1:9] if data[0] & 4 else None
    result = Decoder(TOPICS).decode(topic, 0, 0, key, data[1:])
    if isinstance(result, DeadLetter):
        assert result.category in REASONS and result.reason.strip(), result
        assert result.value == data[1:], "a dead letter keeps the original bytes"
    else:
        assert isinstance(result, DECODED), type(result)


def fuzz_rule(data: bytes) -> None:
    """Any text as a rule file: compiled rules, or errors each with a place and a message."""
    text = data.decode("utf-8", errors="replace")
    result = load_rule_text(text, "fuzz.yaml")
    assert result.ok == (not result.errors)
    assert result.ok or result.errors
    for error in result.errors:
        assert str(error).startswith("fuzz.yaml:") and error.message.strip(), error
        assert error.line >= 1 and error.column >= 1, error


def fuzz_policy(data: bytes) -> None:
    """Any YAML as an alert policy: a policy, or a PolicyError naming the place (YAML errors are the loader's)."""
    try:
        doc = yaml.safe_load(data.decode("utf-8", errors="replace"))
    except yaml.YAMLError:
        return
    try:
        policy = parse_policy(doc)
    except PolicyError as exc:
        assert str(exc).startswith("policy") and len(str(exc)) > len("policy: "), exc
    else:
        assert isinstance(policy, AlertPolicy)


TARGETS: dict[str, Callable[[bytes], None]] = {"decode": fuzz_decode, "rule": fuzz_rule, "policy": fuzz_policy}


def seeds(target: str) -> list[bytes]:
    """Valid inputs to start from: the contract's example events, the default pack's rule files, its policy."""
    if target == "decode":
        text = CONTRACT.read_text(encoding="utf-8") if CONTRACT.exists() else ""
        block = text.split("```json")[1].split("```")[0] if "```json" in text else ""
        out = []
        for line in block.splitlines():
            if line.strip():
                event = json.loads(line)
                kind = 0 if event["event_type"].startswith("order") else 1 if event["event_type"].startswith("bill") else 2
                out.append(bytes([kind]) + line.encode())
        return out
    if target == "rule":
        return [p.read_bytes() for p in rule_files(Path(default_rules_dir()))]
    return [(Path(default_rules_dir()) / "alerting.policy.yaml").read_bytes()]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.targets {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dir]")
    target = argv[1]
    corpus = next((a for a in argv[2:] if not a.startswith("-")), None)
    if corpus is not None:  # libFuzzer reads its corpus from here: start it with the seeds
        Path(corpus).mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds(target)):
            (Path(corpus) / f"seed-{i}").write_bytes(seed)
    atheris.Setup([argv[0], *argv[2:]], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
