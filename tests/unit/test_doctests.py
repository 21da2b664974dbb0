"""The examples in some modules' docstrings (detectors, the progress bar, the engine's clocks and exchange, hot words'
table packing) run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "detectors.baseline",
        "detectors.signitrend",
        "detectors.tokenize",
        "streams.progress",
        "streams.engine.watermark",
        "streams.engine.exchange",
        "rules.types.hot_words",
    ],
)
def test_docstring_examples_hold(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
