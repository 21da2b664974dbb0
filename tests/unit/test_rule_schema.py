"""The published JSON Schema of rule files: up to date, and it agrees with the loader."""

from __future__ import annotations

import json

import jsonschema

from rules.loader import rule_files
from rules.schema_gen import SCHEMA_PATH, rule_schema
from rules.yaml_marks import load_with_marks
from streams.config import default_rules_dir


def test_committed_schema_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == rule_schema(), "run `yujing rules schema`"


def test_schema_accepts_the_default_pack_and_rejects_what_the_loader_rejects() -> None:
    from pathlib import Path

    validator = jsonschema.Draft202012Validator(rule_schema())
    files = rule_files(Path(default_rules_dir()))
    assert files
    for path in files:
        doc, _ = load_with_marks(path.read_text(encoding="utf-8"), str(path))
        assert not list(validator.iter_errors(doc)), path
    good, _ = load_with_marks(files[0].read_text(encoding="utf-8"))
    for bad in ({**good, "severty": "major"}, {**good, "severity": "urgent"}, {**good, "type": "magic"}, {"rules": [good, {"id": "x"}]}):
        assert list(validator.iter_errors(bad)), bad
