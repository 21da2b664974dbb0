"""Small JSON-over-HTTP requests (stdlib only) for the sinks that talk HTTP and Alertmanager's silences."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["HttpError", "post_json", "request_json"]


class HttpError(RuntimeError):
    """A request that did not get a 2xx answer."""


def post_json(url: str, payload: Any, timeout: float = 10.0, headers: dict[str, str] | None = None) -> int:
    """POST ``payload`` as UTF-8 JSON; returns the status, raises :class:`HttpError` unless it is 2xx."""
    status, _ = _send("POST", url, payload, timeout, headers or {})
    return status


def request_json(method: str, url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    """``method`` on ``url`` with an optional JSON body; the decoded JSON answer (``None`` when empty).
    Raises :class:`HttpError` unless the answer is 2xx."""
    _, raw = _send(method, url, payload, timeout, {"Accept": "application/json"})
    return json.loads(raw) if raw.strip() else None


def _send(method: str, url: str, payload: Any, timeout: float, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request with an optional JSON body: the status and the body of a 2xx answer, else :class:`HttpError`."""
    body = None if payload is None else json.dumps(payload, ensure_ascii=False, default=str).encode()
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise HttpError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise HttpError(f"{method} {url}: {exc}") from None
