"""The ``yujing`` command: demo, run, simulate, worker, rules check."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry
from rich.console import Console

from rules import load_rules
from streams.cli_alerts import add_alert_commands
from streams.cli_report import add_report_command
from streams.cli_silences import add_silence_commands
from streams.config import Config, ConfigError, load_config
from streams.dead_letters import DeadLetterFile
from streams.decode import Decoder
from streams.engine import DictBackend, Engine
from streams.evaluate import DELIVERIES
from streams.health import Health
from streams.local import LocalRunner, read_event_lines
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline
from streams.server import serve_metrics
from streams.simulator import SimConfig, simulate
from yujing.protocols import Rule

__all__ = ["main"]

# soft_wrap: a long path or message stays one line when piped (a terminal wraps it for display), so it can be
# copied and grepped whatever the width.
err = Console(stderr=True, soft_wrap=True)
console = Console(soft_wrap=True)


def _rules_or_exit(directory: str) -> list[Rule]:
    result = load_rules(directory)
    for error in result.errors:
        err.print(str(error), markup=False, highlight=False)
    if not result.ok:
        err.print(f"[red]rules in {directory} have {len(result.errors)} error(s); nothing started[/red]")
        raise SystemExit(2)
    return result.rules


def _sinks(config: Config, metrics: PipelineMetrics, alerts_path: str | None, engine: Engine | None = None) -> list[Any]:
    """The configured sinks; with ``engine``, the webhook groups by the policy that engine runs (its rules directory's)."""
    from streams.assembly import build_sinks

    return build_sinks(config, metrics, alerts_path, policy=engine.alerting.policy if engine is not None else None)


def _engine(rules: list[Rule], config: Config, engine_config: Any, rules_dir: str, **kwargs: Any) -> Engine:
    from streams.alerting import PolicyError
    from streams.assembly import build_engine

    try:
        engine, _ = build_engine(rules, DictBackend(), config, engine_config, rules_dir=rules_dir, **kwargs)
    except PolicyError as exc:
        err.print(f"[red]alert policy: {exc}[/red]", markup=True, highlight=False)
        raise SystemExit(2) from None
    return engine


def _sim_config(args: argparse.Namespace) -> SimConfig:
    start = dt.datetime.fromisoformat(args.start) if args.start else SimConfig().start
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return SimConfig.for_customers(
        args.customers,
        seed=args.seed,
        start=start,
        days=args.days,
        history_days=args.history_days,
        disorder_seconds=args.disorder,
        redeliver_share=args.redeliver,
        orders_per_day=args.orders_per_day,
        complaints_per_day=args.complaints_per_day,
        bills_per_day=args.bills_per_day,
    )


def _add_sim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulation")
    g.add_argument("--seed", type=int, default=7, help="random seed (the same seed gives the same events)")
    g.add_argument("--start", default="", help="local midnight of the simulated day, e.g. 2026-03-02 (UTC+8)")
    g.add_argument("--days", type=float, default=1.0, help="simulated days after --start")
    g.add_argument("--history-days", type=float, default=3.0, help="simulated days before --start")
    g.add_argument("--customers", type=int, default=3000, help="the daily volumes follow it (3,000: 500 orders, 250 complaints, 300 bills)")
    g.add_argument("--orders-per-day", type=float, default=None, help="instead of the customers' share")
    g.add_argument("--complaints-per-day", type=float, default=None, help="instead of the customers' share")
    g.add_argument("--bills-per-day", type=float, default=None, help="instead of the customers' share")
    g.add_argument("--disorder", type=float, default=0.0, help="deliver events up to this many seconds out of order")
    g.add_argument("--redeliver", type=float, default=0.0, help="deliver this share of the events twice (at-least-once delivery)")


def _setup(args: argparse.Namespace) -> tuple[Config, CollectorRegistry, PipelineMetrics]:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    registry = CollectorRegistry()
    return config, registry, PipelineMetrics(registry)


def _serve(config: Config, registry: CollectorRegistry, port: int | None, health: Health | None = None) -> str:
    """Serve metrics, /healthz and /readyz on ``port`` (default: config; 0: any free port); a free port if it is taken."""
    port = config.metrics.port if port is None else port
    try:
        bound = serve_metrics(registry, config.metrics.host, port, health)
    except OSError as exc:
        err.print(f"[yellow]metrics port {port} unavailable ({exc}); serving on a free port instead[/yellow]")
        bound = serve_metrics(registry, config.metrics.host, 0, health)
    host = "127.0.0.1" if config.metrics.host in ("0.0.0.0", "") else config.metrics.host
    return f"http://{host}:{bound}/metrics"


# -- commands ---------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import DemoClock, run_demo, summary_table

    config, registry, metrics = _setup(args)
    rules = _rules_or_exit(args.rules or config.rules.dir)
    metrics.rules_loaded.set(len(rules))
    url = _serve(config, registry, args.port)
    console = Console(soft_wrap=True)
    sim_cfg = _sim_config(args)
    console.print(f"simulating {sim_cfg.history_days:g} days of history and {sim_cfg.days:g} day(s) with {sim_cfg.customers} customers …")
    sim = simulate(sim_cfg)
    clock = DemoClock(sim_cfg.start.timestamp())
    engine_cfg = config.engine.engine_config(idle=True)
    engine = _engine(rules, config, engine_cfg, args.rules or config.rules.dir, clock=clock, observer=metrics)
    out = Path(args.alerts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    config.output.alerts = str(out)
    pipeline = Pipeline(
        engine, Decoder(config.kafka.topics()), _sinks(config, metrics, str(out), engine), metrics, partitions=config.kafka.partitions
    )
    dead = DeadLetterFile(args.dead_letters)
    runner = LocalRunner(pipeline, dead)
    _stats, view = run_demo(sim, runner, clock, seconds=args.seconds, console=console, metrics_url=url)
    pipeline.close()
    dead.close()
    console.print(summary_table(view, sim, out))
    if url:
        console.print(f"metrics were served at {url}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from streams.progress import RunProgress

    config, registry, metrics = _setup(args)
    rules = _rules_or_exit(args.rules or config.rules.dir)
    metrics.rules_loaded.set(len(rules))
    if args.clickhouse:
        config.clickhouse.url = args.clickhouse
    url = _serve(config, registry, args.metrics_port) if args.metrics_port is not None else None
    alerts_path = args.alerts or config.output.alerts or "-"
    engine = _engine(rules, config, config.engine.engine_config(idle=False), args.rules or config.rules.dir, observer=metrics)
    pipeline = Pipeline(
        engine, Decoder(config.kafka.topics()), _sinks(config, metrics, alerts_path, engine), metrics, partitions=config.kafka.partitions
    )
    dead = DeadLetterFile(args.dead_letters or config.output.dead_letters)
    runner = LocalRunner(pipeline, dead, batch_size=args.batch)
    unit = "bytes"
    if args.simulate:
        sim = simulate(_sim_config(args))
        events: list[bytes] | None = list(sim.lines())
        total: int | None = len(events)
        unit = "events"
    else:
        if not args.events:
            err.print("[red]give --events FILE (JSON Lines, .gz allowed, - for stdin) or --simulate[/red]")
            return 2
        if args.events != "-" and not Path(args.events).exists():
            err.print(f"[red]no such file: {args.events}[/red]")
            return 2
        events, total = None, (Path(args.events).stat().st_size if args.events != "-" else None)
    started = time.perf_counter()
    with RunProgress(err, engine, "run", total, unit) as bar:
        lines = events if events is not None else read_event_lines(args.events, bar.advance_bytes if total is not None else None)
        stats = runner.run(lines, on_batch=bar.on_batch)
    elapsed = time.perf_counter() - started
    pipeline.close()
    dead.close()
    err.print(
        f"{stats.events} events, {stats.dead_letters} dead letters"
        + (f" (in {dead.path})" if stats.dead_letters else "")
        + f", {stats.alerts} alerts in {elapsed:.2f}s ({(stats.events + stats.dead_letters) / max(elapsed, 1e-9):,.0f} events/s)"
        + (f"; metrics at {url}" if url else "")
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from streams.evaluate import detector_of, evaluate, plot, plot_axis, plot_visibility, summarise
    from streams.simulator.scenarios import PHRASINGS, SCENARIOS, SHAPES

    config, _, _ = _setup(args)
    rules_dir = args.rules or config.rules.dir
    rules = _rules_or_exit(rules_dir)
    if not any(detector_of(r) is not None for r in rules):
        err.print(f"[red]{rules_dir} has no detector (cohort_spike, hot_words or cohort_silence rule) to evaluate[/red]")
        return 2
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        err.print(f"[red]unknown scenario {unknown[0]!r}: one of {', '.join(SCENARIOS)}[/red]")
        return 2
    seeds = list(range(1, args.seeds + 1))
    try:
        volumes = [float(v) for v in args.volumes.split(",")]
    except ValueError:
        volumes = []
    if not volumes or any(v <= 0 for v in volumes):
        err.print(f"[red]--volumes takes complaints a day, comma-separated (e.g. 50,500,2400,20000), not {args.volumes!r}[/red]")
        return 2
    shapes = args.shapes.split(",")
    phrasings = args.phrasings.split(",")
    for flag, given, known in (("--shapes", shapes, SHAPES), ("--phrasings", phrasings, PHRASINGS)):
        if not given or any(g not in known for g in given):
            err.print(f"[red]{flag} takes a comma-separated subset of {', '.join(known)}, not {','.join(given)!r}[/red]")
            return 2
    try:
        sizes = [None if v == "own" else float(v) for v in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(v is not None and v <= 1 for v in sizes):
        err.print(f"[red]--sizes takes incident multipliers above 1, or 'own', e.g. 1.5,2,3,5,8, not {args.sizes!r}[/red]")
        return 2
    columns = (TextColumn("simulating and replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    runs = len(scenarios) * len(seeds) * len(volumes) * len(shapes) * len(sizes) * len(phrasings)
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("eval", total=runs)
        outcomes = evaluate(
            scenarios,
            seeds,
            rules_dir,
            workers=args.workers,
            progress=lambda: progress.advance(task),
            volumes=volumes,
            shapes=shapes,
            sizes=sizes,
            phrasings=phrasings,
            delivery=args.delivery,
        )
    targets = "targets: recall ≥ 0.95, precision ≥ 0.90, median TTD ≤ 1 window; oracle's TTD: as soon as the evidence allowed"
    # Written to a file or a pipe, the tables keep their full width (rich would squeeze them into 80 columns).
    tables = console if console.is_terminal else Console(soft_wrap=True, width=200)
    delivered = "" if args.delivery == "ordered" else f", events delivered as the contract allows ({args.delivery})"
    tables.print(_eval_table(summarise(outcomes, keep=("volume",)), f"detection quality over {len(seeds)} seeds{delivered} ({targets})"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = [plot(summarise(outcomes, keep=("volume",)), out / "eval.png")]
    if any(o.visibility for o in outcomes):
        pngs.append(plot_visibility(outcomes, out / "eval-visibility.png"))
    for axis, values in (("size", sizes), ("shape", shapes), ("phrasings", phrasings)):
        if len(values) > 1:
            by_axis = [s for s in summarise(outcomes, keep=("volume", axis)) if s.scenario == "all"]
            tables.print(_eval_table(by_axis, f"by {axis}, all scenarios (other axes pooled)", axis=axis))
            pngs.append(plot_axis(outcomes, axis, out / f"eval-{axis}.png"))
    records = [{**o.__dict__} for o in outcomes]
    (out / "outcomes.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(f"plots: {', '.join(map(str, pngs))}\nper run (with each false alert's summary): {out / 'outcomes.json'}")
    return 0


def _eval_table(summaries: list[Any], title: str, axis: str | None = None) -> Any:
    """``yujing eval``'s table: a row per detector, volume and scenario (or value of ``axis``)."""
    from rich.table import Table

    table = Table(title=title)
    headers = (
        *("detector", "volume/day", axis or "scenario", "alerts", "true pos."),
        *("precision", "recall", "recall (visible)", "median TTD (windows)", "oracle's TTD"),
    )
    for name in (*headers, "false alarms/week", "precision by labels"):
        table.add_column(name, justify="left" if name in ("detector", "scenario", axis) else "right")

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    for s in summaries:
        third = {"size": s.size_text, "shape": s.shape, "phrasings": s.phrasings}.get(axis or "", s.scenario)
        table.add_row(
            s.detector,
            f"{s.volume:,.0f}",
            third,
            str(s.alerts),
            str(s.true_positives),
            fmt(s.precision),
            fmt(s.recall),
            "–" if s.visible_recall is None else f"{s.visible_recall:.2f} ({s.visible_detected}/{s.visible})",
            fmt(s.median_ttd),
            fmt(s.median_oracle_ttd),
            fmt(s.false_alarms_per_week),
            fmt(s.label_precision),
            style="bold" if s.scenario == "all" and axis is None else None,
        )
    return table


def cmd_backtest(args: argparse.Namespace) -> int:
    from rich.table import Table

    from streams.backtest import Collect, TimeFilter, parse_bound, run_backtest
    from streams.progress import RunProgress
    from streams.timeline import write_html, write_png

    config, _, metrics = _setup(args)
    rules = _rules_or_exit(args.rules or config.rules.dir)
    events = Path(args.events)
    if not events.is_file():
        err.print(f"[red]no such file: {events}[/red]")
        return 2
    try:
        keep = TimeFilter(parse_bound(args.from_), parse_bound(args.to))
    except ValueError as exc:
        err.print(f"[red]--from/--to: {exc} (use e.g. 2026-03-01 or 2026-03-01T08:00+08:00)[/red]")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    alerts_path = out / "alerts.jsonl"
    alerts_path.write_text("")
    collect = Collect()
    engine = _engine(rules, config, config.engine.engine_config(idle=False), args.rules or config.rules.dir, observer=metrics)
    pipeline = Pipeline(
        engine,
        Decoder(config.kafka.topics()),
        [*_sinks(config, metrics, str(alerts_path), engine), collect],
        metrics,
        partitions=config.kafka.partitions,
    )
    dead = DeadLetterFile(str(out / "dead-letters.jsonl"))
    runner = LocalRunner(pipeline, dead, batch_size=args.batch)
    started = time.perf_counter()
    with RunProgress(err, engine, "backtest", events.stat().st_size) as bar:
        lines = read_event_lines(events, bar.advance_bytes)
        summary = run_backtest(runner, lines, keep, collect, flush=not args.keep_open, on_batch=bar.on_batch)
    elapsed = time.perf_counter() - started
    read = summary.stats.events + summary.stats.dead_letters
    pipeline.close()
    dead.close()
    rate = read / max(elapsed, 1e-9)
    table = Table(title=f"{len(rules)} rules over {summary.stats.events:,} events in {elapsed:.1f}s ({rate:,.0f} events/s)")
    for column in ("rule", "severity", "firing", "resolved", "first (UTC+8)", "last (UTC+8)"):
        table.add_column(column, justify="right" if column in ("firing", "resolved") else "left")
    local = dt.timezone(dt.timedelta(hours=8))
    for row in summary.rules:
        first = row.first.astimezone(local).strftime("%m-%d %H:%M") if row.first else ""
        last = row.last.astimezone(local).strftime("%m-%d %H:%M") if row.last else ""
        table.add_row(row.rule_id, row.severity, str(row.firing), str(row.resolved), first, last)
    console.print(table)
    png = write_png(summary, out / "timeline.png")
    page = write_html(summary, png, out / "timeline.html")
    console.print(f"alerts: {alerts_path}\ntimeline: {png}  {page}")
    if summary.stats.dead_letters:
        console.print(f"[yellow]{summary.stats.dead_letters} lines were not valid events: {dead.path}[/yellow]")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    config, _, _ = _setup(args)
    sim = simulate(_sim_config(args))
    if args.truth:
        Path(args.truth).write_text(json.dumps(sim.truth(), ensure_ascii=False, indent=2), encoding="utf-8")
    if args.kafka:
        from streams.publish import publish

        n = publish(sim, config, rate=args.rate, console=err)
        err.print(f"published {n} events to {config.kafka.bootstrap}")
        return 0
    # ``.gz`` is compressed, as ``run`` and ``backtest`` read it.
    out = sys.stdout.buffer if args.out == "-" else (gzip.open if args.out.endswith(".gz") else open)(args.out, "wb")
    try:
        for line in sim.lines():
            out.write(line + b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    err.print(f"{len(sim.events)} events" + (f" written to {args.out}" if args.out != "-" else ""))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from rules.bundle import RuleBundle
    from streams.collector import collect_rarely
    from streams.worker import build_worker_app, ensure_topics

    config, registry, metrics = _setup(args)
    config.rules.dir = args.rules or config.rules.dir
    # The version first, then the rules: a change in between is seen by the watch as a change.
    version = RuleBundle.from_directory(config.rules.dir).version if Path(config.rules.dir).is_dir() else ""
    rules = _rules_or_exit(config.rules.dir)
    cohort = sorted(r.rule_id for r in rules if getattr(r, "cohort", False))
    if cohort and not config.kafka.cohort_topic:
        err.print(
            f"[yellow]cohort rules ({', '.join(cohort)}) count across partitions inside this worker: "
            "run one worker per app id (kafka.cohort_topic is off)[/yellow]"
        )
    health = Health(stale_after=max(60.0, 10 * config.kafka.tick_interval))
    url = _serve(config, registry, None, health)
    topics = list(config.kafka.topics())
    extra = [config.kafka.alerts_topic] if config.kafka.alerts_topic else []
    ensure_topics(config.kafka.bootstrap, topics + [t + config.kafka.dlq_suffix for t in topics] + extra, config.kafka.partitions)
    from streams.alerting import PolicyError

    try:
        sinks = _sinks(config, metrics, config.output.alerts or None)
        app = build_worker_app(config, rules, sinks, metrics, version, health)
    except PolicyError as exc:
        err.print(f"[red]alert policy: {exc}[/red]", highlight=False)
        return 2
    err.print(
        f"worker {config.kafka.app_id}: {len(rules)} rules, topics {', '.join(topics)} at {config.kafka.bootstrap}"
        + (f"; metrics at {url}" if url else "")
    )
    worker = Worker(app, loglevel=args.loglevel, quiet=True)
    # faust's progress spinner, kept at warn and above, sets the root logger to DEBUG so that every record
    # turns it: every library's debug message (aiokafka's, one per message sent) was built and thrown away,
    # a tenth of the worker's time. Without it the root logger keeps the level asked for.
    worker.spinner = None
    collect_rarely()  # the rules' state is millions of objects without cycles (streams.collector)
    worker.execute_from_commandline()
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    """Every rule file and the alert policy of a directory; refuses a missing or empty one unless ``--force``."""
    from rules.rails import refusals
    from streams.alerting.policy import POLICY_FILE, PolicyError, load_policy_file

    result = load_rules(args.dir)
    problems = [str(error) for error in result.errors]
    policy = Path(args.dir) / POLICY_FILE
    if policy.is_file():
        try:
            load_policy_file(policy)
        except PolicyError as exc:
            problems.append(str(exc))
    if result.ok:
        running = None
        if args.against:  # what runs now: a directory, or the rules topic's newest bundle
            against = load_rules(args.against)
            if not against.ok:
                problems.append(f"--against {args.against}: it does not load ({len(against.errors)} error(s)), so nothing can be compared")
            running = {r.rule_id for r in against.rules}
        ids = (r.rule_id for r in result.rules)
        problems += [f"{args.dir}: {reason}" for reason in refusals(ids, running, force=args.force, disabled=result.disabled)]
    for problem in problems:
        print(problem)
    print(f"{result.files} file(s), {len(result.rules)} rule(s), {len(problems)} error(s)")
    return 1 if problems else 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from streams.rule_tests import run_test_file

    paths: list[Path] = []
    for name in args.files:
        path = Path(name)
        if path.is_dir():
            paths.extend(sorted(p for ext in ("*.test.yaml", "*.test.yml") for p in path.rglob(ext)))
        else:
            paths.append(path)
    if not paths:
        err.print("[red]no rule test files given or found (they are named *.test.yaml)[/red]")
        return 2
    cases = failed = 0
    for path in paths:
        result = run_test_file(path)
        if result.error:
            failed += 1
            console.print(f"[red]ERROR[/red] {path}\n  {result.error}")
            continue
        for case in result.cases:
            cases += 1
            if case.passed:
                console.print(f"[green]PASS[/green]  {path}: {case.name} ({case.alerts} alerts)")
            else:
                failed += 1
                console.print(f"[red]FAIL[/red]  {path}: {case.name}", highlight=False)
                for line in case.diff:
                    console.print("    " + line.replace("\n", "\n    "), highlight=False, markup=False)
    console.print(f"{len(paths)} file(s), {cases} case(s), {failed} failure(s)")
    return 1 if failed else 0


def cmd_rules_publish(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    from rules.bundle import RuleBundle
    from rules.rails import refusals
    from streams.reload import newest_bundle
    from streams.worker import ensure_topics

    config, _, _ = _setup(args)
    result = load_rules(args.dir)
    for error in result.errors:
        print(str(error))
    if not result.ok:
        print(f"not published: {len(result.errors)} error(s); the workers keep their rules")
        return 1
    topic = args.topic or config.rules.topic or "yujing-rules"
    ensure_topics(config.kafka.bootstrap, [topic], 1)
    # What the workers run: the topic's newest bundle, else the directory they start from.
    running = newest_bundle(config.kafka.bootstrap, topic)
    running_rules = running.load().rules if running is not None else load_rules(config.rules.dir).rules
    running_ids = {r.rule_id for r in running_rules}
    refused = refusals((r.rule_id for r in result.rules), running_ids, force=args.force, disabled=result.disabled)
    for reason in refused:
        print(f"{args.dir}: {reason}")
    if refused:
        print("not published; the workers keep their rules")
        return 1
    bundle = msgspec.structs.replace(RuleBundle.from_directory(args.dir, stamp=True), force=args.force)
    producer = KafkaProducer(bootstrap_servers=config.kafka.bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    try:
        producer.send(topic, key=b"bundle", value=bundle.to_bytes()).get(timeout=30)
    finally:
        producer.close()
    print(f"published {bundle.version} ({len(result.rules)} rules in {len(bundle.files)} files) to {topic}")
    return 0


def cmd_rules_schema(args: argparse.Namespace) -> int:
    from rules.schema_gen import write_schema

    print(write_schema(Path(args.out)) if args.out else write_schema())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yujing", description="预警 Yujing: real-time early warning on order, billing and complaint streams."
    )
    parser.add_argument("--config", help="YAML config file (also YUJING_CONFIG); env YUJING_<SECTION>_<NAME> overrides")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="a simulated day through the engine, live in the console (no servers needed)")
    _add_sim_args(p)
    p.add_argument("--seconds", type=float, default=60.0, help="real seconds the simulated day takes")
    p.add_argument("--port", type=int, default=None, help="metrics port (default: metrics.port; 0: any free port)")
    p.add_argument("--rules", help="rules directory (default: the bundled pack)")
    p.add_argument("--alerts", default="out/demo-alerts.jsonl")
    p.add_argument("--dead-letters", default="out/demo-dead-letters.jsonl")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="the local runner: events from a file or the simulator through the engine")
    p.add_argument("--events", help="JSON Lines of events (.gz allowed; - for stdin)")
    p.add_argument("--simulate", action="store_true", help="use the simulator instead of a file")
    _add_sim_args(p)
    p.add_argument("--rules", help="rules directory")
    p.add_argument("--alerts", help="alerts JSON Lines output (- for stdout)")
    p.add_argument("--dead-letters", help="dead letters JSON Lines output")
    p.add_argument("--clickhouse", help="ClickHouse URL, e.g. clickhouse://127.0.0.1:9000/yujing")
    p.add_argument("--metrics-port", type=int, default=None, help="serve metrics on this port while running")
    p.add_argument("--batch", type=int, default=1000)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("backtest", help="replay history through the engine: alerts, a per-rule table and a timeline")
    p.add_argument("--events", required=True, help="JSON Lines of events (.gz allowed)")
    p.add_argument("--rules", help="rules directory (default: the configured one)")
    p.add_argument("--from", dest="from_", help="first event time to include, e.g. 2026-03-01 (UTC+8 unless an offset is given)")
    p.add_argument("--to", help="event time to stop before")
    p.add_argument("--out", default="out/backtest", help="directory for alerts.jsonl, timeline.png, timeline.html")
    p.add_argument(
        "--keep-open",
        action="store_true",
        help="stop where a live worker's watermark would stand (no end-of-input flush), to compare with a worker",
    )
    p.add_argument("--batch", type=int, default=1000)
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("eval", help="detection quality of the detectors: precision, recall and time to detect on labelled scenarios")
    p.add_argument("--rules", help="rules directory holding the detectors (default: the configured one)")
    p.add_argument("--seeds", type=int, default=20, help="random seeds per scenario")
    p.add_argument("--scenarios", help="comma-separated subset of: outage, billing, backlog, app_login, campaign, channel_silence, benign")
    p.add_argument("--volumes", default="2400", help="complaints a day, comma-separated: the grid (orders and customers in proportion)")
    p.add_argument("--shapes", default="city", help="seasonal shapes of the background, comma-separated: city, evening, office, flat")
    p.add_argument("--sizes", default="own", help="incident sizes (× the cohort's volume), comma-separated, or 'own': e.g. 1.5,2,3,5,8")
    p.add_argument("--phrasings", default="tuned", help="incident text banks: tuned (the simulator's) and/or heldout (never tuned on)")
    p.add_argument(
        "--delivery",
        choices=sorted(DELIVERIES),
        default="ordered",
        help="ordered: each event once, in time order; contract: up to 4 min out of order and 2%% of events twice "
        "(at-least-once, as docs/contracts/events.md allows)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes")
    p.add_argument("--out", default="out/eval", help="directory for eval.png and outcomes.json")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("simulate", help="generate events: JSON Lines, or publish them to Kafka")
    _add_sim_args(p)
    p.add_argument("--out", default="-", help="output file (- for stdout)")
    p.add_argument("--truth", help="write the injected incidents (ground truth) as JSON here")
    p.add_argument("--kafka", action="store_true", help="publish to kafka.bootstrap instead of writing JSON Lines")
    p.add_argument("--rate", type=float, default=0.0, help="events per second when publishing (0: as fast as possible)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("worker", help="the faust worker: Kafka topics in, alerts to the sinks")
    p.add_argument("--rules", help="rules directory")
    p.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug"))
    p.set_defaults(func=cmd_worker)

    rules_p = sub.add_parser("rules", help="rule tools")
    rsub = rules_p.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("check", help="validate every rule file and the alert policy of a directory (non-zero exit on any error)")
    p.add_argument("dir")
    p.add_argument("--force", action="store_true", help="accept a directory without rules, or one that drops rules of --against")
    p.add_argument("--against", help="the rules directory running now: refuse a change that drops any of its rules")
    p.set_defaults(func=cmd_rules_check)
    p = rsub.add_parser("test", help="run rule unit tests (*.test.yaml): events in, expected alerts out")
    p.add_argument("files", nargs="+", help="test files, or directories to search for *.test.yaml")
    p.set_defaults(func=cmd_rules_test)
    p = rsub.add_parser("publish", help="validate a rules directory and publish it as a bundle every worker follows")
    p.add_argument("dir")
    p.add_argument("--topic", help="rules topic (default: rules.topic, else yujing-rules)")
    p.add_argument("--force", action="store_true", help="publish even when it holds no rules or drops rules the workers run")
    p.set_defaults(func=cmd_rules_publish)
    p = rsub.add_parser("schema", help="write the JSON Schema of rule files (for YAML language servers)")
    p.add_argument("--out", help="where (default: rules/schema/rule.schema.json)")
    p.set_defaults(func=cmd_rules_schema)
    add_silence_commands(sub)
    add_alert_commands(sub)
    add_report_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        sys.argv = [sys.argv[0]]  # faust's worker reads argv
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
