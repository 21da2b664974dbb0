"""The process's HTTP endpoint: Prometheus ``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` and ``/readyz`` answer 200 or 503 with a one-line reason (see
:mod:`streams.health`); any other path is a 404, so a mistyped probe fails
instead of reading the metrics page as healthy.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from streams.health import Health

__all__ = ["serve_metrics"]


def _handler(registry: CollectorRegistry, health: Health) -> type[MetricsHandler]:
    class Handler(MetricsHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path in ("/metrics", "/"):
                super().do_GET()
            elif path == "/healthz":
                self._answer(*health.live())
            elif path == "/readyz":
                self._answer(*health.ready())
            else:
                self._answer(False, "not found: the endpoints are /metrics, /healthz and /readyz", status=404)

        def _answer(self, ok: bool, text: str, status: int | None = None) -> None:
            body = (text + "\n").encode()
            self.send_response(status or (200 if ok else 503))
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    Handler.registry = registry
    return Handler


def serve_metrics(registry: CollectorRegistry, host: str, port: int, health: Health | None = None) -> int:
    """Serve ``registry`` and ``health`` on ``host:port`` (0: a free port) in a daemon thread; returns the bound port."""
    server: Any = ThreadingHTTPServer((host, port), _handler(registry, health or Health()))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return int(server.server_port)
