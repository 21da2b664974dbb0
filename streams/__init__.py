"""Runners and plumbing: decoding, the pure engine (``streams.engine``), the local and faust runners, the CLI."""

__all__: list[str] = []
