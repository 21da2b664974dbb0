"""Session-wide real servers: the tansu broker and ClickHouse. Prometheus is started per test (its scrape targets differ).

Under pytest-xdist (``scripts/test.sh`` runs ``-n 2 --dist loadgroup``) every integration test is in one group, so
they run one after another on one xdist worker, against one set of servers, while the unit tests run on the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import ClickHouseServer, TansuBroker

SERVERS_GROUP = "servers"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the integration tests together on one xdist worker: they share the session's servers, and two workers'
    servers and yujing workers at once would contend for a 2-core machine's CPU in tests that wait on progress."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.xdist_group(SERVERS_GROUP))


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
