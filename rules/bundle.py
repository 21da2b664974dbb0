"""A rules bundle: every rule file of a directory as one versioned message, for a fleet of workers.

``yujing rules publish DIR`` validates a directory and publishes its bundle
to the rules topic; each worker follows the topic and swaps in a bundle only
when every file in it compiles. The version is a hash of the file names and
contents, so publishing an unchanged directory is recognised as no change.

>>> b = RuleBundle.from_files({"a.yaml": "id: x"})
>>> RuleBundle.from_bytes(b.to_bytes()) == b
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import msgspec

from rules.loader import LoadResult, load_rule_texts, rule_files

__all__ = ["RuleBundle"]


class RuleBundle(msgspec.Struct, frozen=True, kw_only=True):
    """Rule files by relative name, with a content version."""

    version: str
    files: dict[str, str]
    published_at: str = ""
    #: Published with ``--force``: workers take it even when it is empty or drops running rules (:mod:`rules.rails`).
    force: bool = False

    @classmethod
    def from_files(cls, files: dict[str, str], published_at: str = "") -> RuleBundle:
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
        return cls(version="bundle:" + digest.hexdigest()[:12], files=dict(sorted(files.items())), published_at=published_at)

    @classmethod
    def from_directory(cls, directory: Path | str, stamp: bool = False) -> RuleBundle:
        """Every rule file under ``directory`` (``*.test.yaml`` excluded)."""
        root = Path(directory)
        files = {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in rule_files(root)}
        return cls.from_files(files, dt.datetime.now(dt.UTC).isoformat() if stamp else "")

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RuleBundle:
        """Decode a published bundle (``msgspec.DecodeError`` / ``ValidationError`` when it is not one)."""
        return msgspec.json.decode(raw, type=cls)

    def load(self) -> LoadResult:
        """Compile every file of the bundle."""
        return load_rule_texts(self.files)
