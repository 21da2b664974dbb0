"""Session-wide real servers: the tansu broker and ClickHouse. Prometheus is started per test (its scrape targets differ)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import ClickHouseServer, TansuBroker


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def broker(workdir: Path) -> Iterator[TansuBroker]:
    server = TansuBroker(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clickhouse(workdir: Path) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(workdir)
    server.start()
    yield server
    server.stop()
