"""A soak: the worker fed at 70 % of its maximum rate for 20 minutes; its RSS and lag sampled throughout.

    .venv/bin/python bench/soak.py [--minutes 20] [--share 0.7] [--max-rate R] [--day-seconds 5]

Without ``--max-rate`` the maximum is measured first: the worker's end-to-end rate over
events already on the broker (as in benchmark 2). The soak then produces one simulation of as many
days as it needs (orders opened one day complete the next), paced at ``share`` × that rate, to a
fresh worker with the default pack and both detectors.

A simulated day lasts ``--day-seconds`` (5 s): the state is flat only once its longest retention
has passed, and the default pack's longest is 120 days (``first-bill-above-promise`` remembers each
order that long, waiting for its first bill; most simulated orders get none). At a minute a day, a
20-minute soak saw 20 days and its state grew to the end (its RSS too) with nothing leaking; at 5 s,
120 days pass in the first 10 minutes and the second half shows the steady state. Every 10 s it
samples:

* the worker's RSS (``/proc/PID/status``);
* its lag: events produced − events the worker has read (``yujing_events_total``). The
  tansu broker's end offsets are wrong, so lag is counted on both sides instead.

It reports the RSS slope (least squares, MB per hour) over the whole run and over its
second half (after the state has filled: open watches, cohort baselines, hot words), the
largest and last lag and the lag's slope over the second half, and plots both against time in ``out/bench/soak-<time>.png`` (with
the samples as CSV beside it).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: E402

from bench.throughput import make_events, the_mix, worker_rate  # noqa: E402
from streams.simulator import simulate  # noqa: E402
from tests.integration.harness import Worker, create_topics, publish, sim_records  # noqa: E402
from tests.integration.servers import TansuBroker  # noqa: E402

SAMPLE_EVERY = 10.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def simulated_days(events_per_day: int, days: int, prefix: str) -> list[tuple[str, bytes, bytes]]:
    """``days`` simulated days in one simulation, so that orders opened one day complete the next (days
    simulated apart left every order open at midnight open for good, and the state grew with the input)."""
    start = dt.datetime(2026, 3, 2, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    sim = simulate(the_mix(events_per_day, max(3000, events_per_day // 20), seed=1000, start=start, history_days=0, days=days))
    return sim_records(sim, prefix=prefix)


def produce_paced(
    bootstrap: str, rate: float, seconds: float, records: list[tuple[str, bytes, bytes]], produced: list[int], stop: threading.Event
) -> None:
    """Produce ``records`` at ``rate`` events/s for at most ``seconds``, counting them in ``produced[0]``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    started = time.perf_counter()
    try:
        for topic, key, value in records:
            producer.send(topic, key=key, value=value)
            produced[0] += 1
            ahead = started + produced[0] / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            if stop.is_set() or time.perf_counter() - started >= seconds:
                break
    finally:
        producer.flush()
        producer.close()


def soak(
    workdir: Path, bootstrap: str, rate: float, seconds: float, console: Console, day_seconds: float = 5.0
) -> list[tuple[float, int, int, int]]:
    """Samples ``(elapsed s, produced, read, RSS bytes)`` of a worker fed ``rate`` events/s for ``seconds``."""
    prefix = "soak-"
    create_topics(bootstrap, prefix=prefix)
    worker = Worker(workdir, bootstrap, app_id=f"bench-soak-{int(time.time())}", prefix=prefix)
    worker.start()
    assert worker.proc is not None
    produced = [0]
    stop = threading.Event()
    per_day = int(rate * day_seconds)  # a simulated day every day_seconds (about: the mix comes out a little short)
    records = simulated_days(per_day, int(seconds / day_seconds * 1.5) + 2, prefix)
    producer = threading.Thread(target=produce_paced, args=(bootstrap, rate, seconds, records, produced, stop), daemon=True)
    samples: list[tuple[float, int, int, int]] = []
    started = time.perf_counter()
    producer.start()
    columns = (TextColumn("soak"), BarColumn(), TextColumn("{task.description}"), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("", total=seconds)
            while producer.is_alive():
                time.sleep(SAMPLE_EVERY - (time.perf_counter() - started) % SAMPLE_EVERY)
                if not worker.alive():
                    raise RuntimeError(f"the worker died during the soak\n{worker.tail()}")
                elapsed = time.perf_counter() - started
                read = int(worker.sum("yujing_events_total"))
                samples.append((elapsed, produced[0], read, rss_bytes(worker.proc.pid)))
                progress.update(
                    task,
                    completed=min(elapsed, seconds),
                    description=f"RSS {samples[-1][3] / 2**20:,.0f} MB, lag {produced[0] - read:,} events",
                )
    finally:
        stop.set()
        worker.stop()
    return samples


def plot(samples: list[tuple[float, int, int, int]], rate: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s[0] / 60 for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.plot(minutes, [s[3] / 2**20 for s in samples], color="tab:blue")
    top.set_ylabel("worker RSS (MB)")
    top.set_ylim(bottom=0)
    top.set_title(f"Soak at {rate:,.0f} events/s")
    bottom.plot(minutes, [s[1] - s[2] for s in samples], color="tab:red")
    bottom.set_ylabel("lag (events produced − read)")
    bottom.set_xlabel("minutes")
    bottom.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(samples: list[tuple[float, int, int, int]], rate: float) -> dict[str, float]:
    rss = [(s[0] / 3600, s[3] / 2**20) for s in samples]
    half = rss[len(rss) // 2 :]
    lags = [s[1] - s[2] for s in samples]
    return {
        "rate": rate,
        "minutes": samples[-1][0] / 60,
        "events": samples[-1][1],
        "rss_start_mb": rss[0][1],
        "rss_end_mb": rss[-1][1],
        "slope_mb_per_h": slope(rss),
        "slope_second_half_mb_per_h": slope(half),
        "lag_max": max(lags),
        "lag_last": lags[-1],
        "lag_max_s": max(lags) / rate,
        "lag_slope_second_half_per_min": slope([(s[0] / 60, s[1] - s[2]) for s in samples[len(samples) // 2 :]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--share", type=float, default=0.7, help="of the maximum rate")
    parser.add_argument("--max-rate", type=float, default=0.0, help="events/s; measured first when not given")
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=5.0,
        help="real seconds per simulated day (5: 240 days in 20 minutes, past the pack's longest retention of 120 days)",
    )
    args = parser.parse_args()
    console = Console()
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = TansuBroker(workdir)
        broker.start()
        try:
            maximum = args.max_rate
            if not maximum:
                _, records = make_events(60_000)
                create_topics(broker.bootstrap, prefix="bench-")
                publish(broker.bootstrap, records)
                maximum = worker_rate(workdir, broker.bootstrap, "bench-", len(records))
                console.print(f"maximum: {maximum:,.0f} events/s over {len(records):,} events")
            rate = maximum * args.share
            samples = soak(workdir, broker.bootstrap, rate, args.minutes * 60, console, args.day_seconds)
        finally:
            broker.stop()
    with open(out / f"soak-{stamp}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["elapsed_s", "produced", "read", "rss_bytes"])
        writer.writerows(samples)
    plot(samples, rate, out / f"soak-{stamp}.png")
    s = summary(samples, rate)
    console.print(
        f"soak {s['minutes']:.1f} min at {rate:,.0f} events/s ({args.share:.0%} of {maximum:,.0f}), {s['events']:,} events\n"
        f"RSS {s['rss_start_mb']:,.0f} → {s['rss_end_mb']:,.0f} MB; slope {s['slope_mb_per_h']:+.1f} MB/h overall, "
        f"{s['slope_second_half_mb_per_h']:+.1f} MB/h over the second half\n"
        f"lag: at most {s['lag_max']:,} events ({s['lag_max_s']:.1f} s of input), {s['lag_last']:,} at the last sample, "
        f"slope {s['lag_slope_second_half_per_min']:+,.0f} events/min over the second half\n"
        f"plot: out/bench/soak-{stamp}.png, samples: out/bench/soak-{stamp}.csv"
    )


if __name__ == "__main__":
    main()
