"""Publishing simulated events to Kafka, keyed by ``customer_id``, at a chosen rate."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import Progress

from streams.config import Config
from streams.simulator import Simulation
from yujing.events import event_kind

__all__ = ["publish"]


def publish(sim: Simulation, config: Config, *, rate: float = 0.0, console: Console | None = None) -> int:
    """Send every event to its topic; ``rate`` events/s (0: as fast as the producer goes). Returns the count."""
    from kafka import KafkaProducer

    from streams.worker import ensure_topics

    kc = config.kafka
    topic_of = {kind: name for name, kind in kc.topics().items()}
    ensure_topics(kc.bootstrap, list(topic_of.values()), kc.partitions)
    producer = KafkaProducer(bootstrap_servers=kc.bootstrap, linger_ms=5, batch_size=256 * 1024, acks=1, max_request_size=8 * 1024 * 1024)
    started = time.monotonic()
    sent = 0
    with Progress(console=console, transient=True, disable=console is None or not console.is_terminal) as progress:
        task = progress.add_task("publishing", total=len(sim.events))
        for event, line in zip(sim.events, sim.lines(), strict=True):
            producer.send(topic_of[event_kind(event["event_type"]) or "orders"], key=event["customer_id"].encode(), value=line)
            sent += 1
            if rate > 0 and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if sent % 1000 == 0:
                progress.update(task, completed=sent)
    producer.flush()
    producer.close()
    return sent
