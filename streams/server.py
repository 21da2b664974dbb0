"""Serving the Prometheus ``/metrics`` endpoint of a registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["serve_metrics"]


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> int | None:
    """Serve ``registry`` on ``host:port`` in a daemon thread; returns the port (``None`` if ``port`` is 0)."""
    if not port:
        return None
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server.server_port
