"""The HTTP endpoint: /metrics, /healthz and /readyz answer what the health says; other paths are 404."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from streams.health import Health
from streams.server import serve_metrics


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probes_follow_the_heartbeat_and_the_checks() -> None:
    registry = CollectorRegistry()
    Counter("yujing_probe_test", "a counter", registry=registry).inc()
    now = [100.0]
    recovering = [True]
    health = Health(stale_after=30, clock=lambda: now[0])
    health.add_check("state", lambda: "recovering state from the changelog" if recovering[0] else None)
    health.add_check("broken", lambda: 1 / 0 if now[0] > 500 else None)
    port = serve_metrics(registry, "127.0.0.1", 0, health)
    assert "yujing_probe_test_total 1.0" in get(port, "/metrics")[1]
    assert get(port, "/healthz") == (200, "live\n")
    assert get(port, "/readyz") == (503, "state: recovering state from the changelog\n")
    recovering[0] = False
    assert get(port, "/readyz") == (200, "ready\n")
    health.beat()
    now[0] += 45  # the loop stopped beating
    assert get(port, "/healthz")[0] == 503 and get(port, "/readyz")[1].startswith("no heartbeat for 45 s")
    health.beat()
    now[0] = 600.0
    health.beat()
    status, text = get(port, "/readyz")
    assert status == 503 and text.startswith("broken: check failed: ZeroDivisionError")
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/nope")[0] == 404
