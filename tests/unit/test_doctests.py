"""The examples in the detectors' (and the run progress bar's) docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["detectors.baseline", "detectors.signitrend", "detectors.tokenize", "streams.progress"])
def test_docstring_examples_hold(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
