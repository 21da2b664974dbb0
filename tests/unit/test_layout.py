"""Architecture rules: the engine imports no Kafka, packages do not import in cycles, metrics are bounded."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from streams.metrics import PipelineMetrics

ROOT = Path(__file__).resolve().parents[2]
# What each top-level package may import from the project.
ALLOWED = {
    "yujing": set(),
    # The detectors are algorithms (tokeniser, burst scoring, baselines); the rule types that put
    # them behind YAML (rules/types/cohort_spike.py, hot_words.py) use them, never the other way.
    "rules": {"yujing", "detectors"},
    "detectors": {"yujing"},
    "sinks": {"yujing"},
    "streams": {"yujing", "rules", "detectors", "sinks"},
}


def test_engine_imports_no_kafka_or_faust() -> None:
    code = (
        "import sys, streams.engine, rules.types; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'kafka', 'aiokafka', 'mode')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_packages_import_only_downwards() -> None:
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top in ALLOWED and top != package:
                        assert top in allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_no_metric_has_a_per_customer_label() -> None:
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    labels = {label for metric in registry.collect() for sample in metric.samples for label in sample.labels}
    labels |= {name for m in PipelineMetrics(CollectorRegistry()).__dict__.values() if hasattr(m, "_labelnames") for name in m._labelnames}
    # `version` is the rule set's: one series at a time (the gauge is cleared on every reload). `subject` is a
    # detector score's cohort or term: TOP_K per rule at a time (test_detector_scores shows the set is replaced).
    bounded = {"topic", "outcome", "reason", "kind", "rule_id", "source", "severity", "status", "partition", "sink", "le", "version"}
    bounded |= {"subject"}
    assert labels <= bounded


def test_every_package_is_listed_for_a_non_editable_install() -> None:
    """The Docker image installs with ``pip install .``: a package missing from the list is missing from the image."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for top in ("yujing", "streams", "rules", "detectors", "sinks")
        for init in (root / top).rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)


def test_every_data_file_of_the_packages_is_declared_as_package_data() -> None:
    """The rule pack, the rule schema and the stop words ship in the wheel only as package data of a listed package
    (setuptools warns that it will stop including data of directories it was not told are packages)."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, patterns = set(setuptools["packages"]), setuptools["package-data"]
    data = [
        path
        for top in ("yujing", "streams", "rules", "detectors", "sinks")
        for path in (root / top).rglob("*")
        if path.is_file() and path.suffix in {".yaml", ".json", ".txt", ".md"} and path.name != "README.md"
    ]
    assert data
    undeclared = []
    for path in data:
        package = ".".join(path.parent.relative_to(root).parts)
        if package not in listed or not any(fnmatch.fnmatch(path.name, p) for p in patterns.get(package, ())):
            undeclared.append(str(path.relative_to(root)))
    assert not undeclared, undeclared


def test_every_third_party_import_of_the_package_is_a_declared_dependency() -> None:
    """A clean `pip install .` must have what the code imports (numpy and scipy once came only through river)."""
    import ast
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower().replace("-", "_") for d in project["dependencies"]}
    import_names = {"faust_streaming": "faust", "kafka_python": "kafka", "prometheus_client": "prometheus_client", "pyyaml": "yaml"}
    import_names |= {"clickhouse_driver": "clickhouse_driver", "google_re2": "re2"}
    provided = {import_names.get(d, d) for d in declared}
    ours = {"yujing", "streams", "rules", "detectors", "sinks"}
    optional = {"rocksdict"}  # the rocksdb extra, imported only when that store is configured
    used = set()
    for package in ours:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                used |= {n.split(".")[0] for n in names}
    third_party = {n for n in used if n not in ours and n not in sys.stdlib_module_names}
    assert third_party - provided - optional == set()
    # …and nothing is declared that the package never imports (river was, for a year), except what others need
    indirect = {"crc32c": "kafka-python's fast CRC, found at run time", "mode_streaming": "faust's runtime, pinned with it"}
    assert provided - third_party - set(indirect) == set()


def test_faust_and_aiokafka_are_pinned_to_the_versions_installed() -> None:
    """The worker reads their private attributes: the versions it was tested with are the ones it runs with."""
    import tomllib
    from importlib.metadata import version

    root = Path(__file__).resolve().parents[2]
    pins = {
        d.split("==")[0]: d.split("==")[1]
        for d in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
        if "==" in d
    }
    for package in ("faust-streaming", "mode-streaming", "aiokafka"):
        assert pins.get(package) == version(package), package
