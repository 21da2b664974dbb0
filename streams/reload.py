"""Hot reload: a running engine takes a new rule set without a restart, or keeps the last good one.

Two sources feed a :class:`RuleReloader`: a :class:`DirectoryWatch` (one
worker, rules on its disk) and :class:`BundleFollower` (a fleet, bundles
published to a Kafka topic by ``yujing rules publish``). A bundle is applied
only when every file in it compiles, and when it is neither empty nor drops a
running rule (unless published with ``--force``, :mod:`rules.rails`); otherwise
it is rejected, the reasons are logged, and the rules running keep running. State lives in namespaces named
after rule type and id, so a rule that did not change keeps its watches,
windows and timers across a reload; alerts carry each rule's version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from rules.bundle import RuleBundle
from rules.rails import refusals
from streams.engine import Engine
from streams.metrics import PipelineMetrics

__all__ = ["BundleFollower", "DirectoryWatch", "RuleReloader", "newest_bundle"]

log = logging.getLogger(__name__)


class RuleReloader:
    """Swaps an engine's rules for a bundle that compiles in full.

    >>> from streams.engine import DictBackend, EngineConfig
    >>> reloader = RuleReloader(Engine([], DictBackend(), EngineConfig()), None, "v0")
    >>> reloader.apply(RuleBundle.from_files({"bad.yaml": "id: [unclosed"}))
    False
    >>> reloader.version
    'v0'
    """

    def __init__(self, engine: Engine, metrics: PipelineMetrics | None, version: str) -> None:
        self.engine = engine
        self.metrics = metrics
        self.version = version
        self.last_errors: list[str] = []
        if metrics is not None:
            metrics.rules_version(version, len(engine.rules))

    def apply(self, bundle: RuleBundle) -> bool:
        """Load ``bundle``; ``True`` when it now runs (or already ran)."""
        if bundle.version == self.version:
            self._count("unchanged")
            return True
        result = bundle.load()
        if not result.ok:
            self.last_errors = [str(e) for e in result.errors]
            log.error("rules %s rejected; %s keeps running:\n%s", bundle.version, self.version, "\n".join(self.last_errors))
            self._count("rejected")
            return False
        before = {r.rule_id: r.version for r in self.engine.rules}
        refused = refusals((r.rule_id for r in result.rules), before, force=bundle.force, disabled=result.disabled)
        if refused:
            self.last_errors = refused
            log.error("rules %s refused; %s keeps running: %s", bundle.version, self.version, "; ".join(refused))
            self._count("rejected")
            return False
        self.engine.set_rules(result.rules)
        after = {r.rule_id: r.version for r in result.rules}
        changed = sorted(k for k in after if k in before and before[k] != after[k])
        log.warning(
            "rules %s loaded (%d rules; added %s, removed %s, changed %s)",
            bundle.version,
            len(result.rules),
            sorted(after.keys() - before.keys()) or "none",
            sorted(before.keys() - after.keys()) or "none",
            changed or "none",
        )
        self.version = bundle.version
        self.last_errors = []
        if self.metrics is not None:
            self.metrics.rules_version(bundle.version, len(result.rules))
        self._count("applied")
        return True

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.rules_reloads_total.labels(outcome).inc()


class DirectoryWatch:
    """Reads a rules directory as a bundle and says when its content changed since the last look."""

    def __init__(self, directory: Path | str, seen: str | None = None) -> None:
        """``seen``: the version already loaded (default: what the directory holds now)."""
        self.directory = Path(directory)
        self.seen = seen or RuleBundle.from_directory(self.directory).version

    def poll(self) -> RuleBundle | None:
        try:
            bundle = RuleBundle.from_directory(self.directory)
        except (OSError, UnicodeDecodeError) as exc:
            log.error("cannot read rules from %s: %s", self.directory, exc)
            return None
        if bundle.version == self.seen:
            return None
        self.seen = bundle.version
        return bundle


class BundleFollower:
    """Follows the rules topic (every worker reads all of it: no consumer group).

    At start it drains what the topic holds and hands over only the newest
    bundle; after that, each bundle as it arrives. Messages that are not
    bundles are logged and skipped.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic

    async def run(self, on_bundle: Callable[[RuleBundle], Awaitable[None]]) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            newest: RuleBundle | None = None
            while batch := await consumer.getmany(timeout_ms=1500):  # the backlog: keep the newest only
                for messages in batch.values():
                    for message in messages:
                        newest = self._decode(message.value) or newest
            if newest is not None:
                await on_bundle(newest)
            while True:
                for messages in (await consumer.getmany(timeout_ms=1000)).values():
                    for message in messages:
                        bundle = self._decode(message.value)
                        if bundle is not None:
                            await on_bundle(bundle)
        except asyncio.CancelledError:
            raise
        finally:
            await consumer.stop()

    def _decode(self, raw: bytes | None) -> RuleBundle | None:
        return _decode_bundle(raw, self.topic)


def _decode_bundle(raw: bytes | None, topic: str) -> RuleBundle | None:
    try:
        return RuleBundle.from_bytes(raw or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("skipping a message on %s that is not a rules bundle: %s", topic, exc)
        return None


def newest_bundle(bootstrap: str, topic: str, timeout: float = 3.0) -> RuleBundle | None:
    """The last bundle on the rules topic (what a worker starting now would run), or ``None`` when it has none.

    Reads the whole topic (it holds a bundle per publish, a few kilobytes each) until ``timeout`` seconds pass
    without a message; the broker's end offsets are not trusted.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, consumer_timeout_ms=int(timeout * 1000))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        newest = None
        for message in consumer:
            newest = _decode_bundle(message.value, topic) or newest
        return newest
    finally:
        consumer.close()
