"""Serving the Prometheus ``/metrics`` endpoint of a registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["serve_metrics"]


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> int:
    """Serve ``registry`` on ``host:port`` (0: a free port) in a daemon thread; returns the bound port."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
