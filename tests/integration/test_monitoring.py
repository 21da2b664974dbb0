"""Prometheus alerting rules (promtool), the Alertmanager config (amtool), and every Grafana dashboard query run for
real: ClickHouse SQL against the test ClickHouse filled by a local run, PromQL against a Prometheus scraping that run."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from rules import load_rules
from sinks.clickhouse import ClickHouseSink
from streams.alerting import AlertManager, load_policy
from streams.alerting.silences import new_silence
from streams.config import default_rules_dir
from streams.decode import Decoder
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline
from streams.server import serve_metrics
from streams.simulator import SimConfig, simulate
from tests.integration.harness import PARTITIONS, TOPICS
from tests.integration.servers import ClickHouseServer, PrometheusServer, require, wait_for

DOCKER = Path(__file__).resolve().parents[2] / "docker"
RULES = DOCKER / "prometheus" / "rules"
DASHBOARDS = sorted((DOCKER / "grafana" / "dashboards").glob("*.json"))
FROM, TO = "2026-02-20 00:00:00", "2026-03-10 00:00:00"  # the simulated weeks


def _run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_prometheus_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = require("promtool", "Debian package prometheus")
    assert "SUCCESS: 11 rules found" in _run(promtool, "check", "rules", str(RULES / "yujing.rules.yml"))
    assert "SUCCESS" in _run(promtool, "test", "rules", "yujing.rules.test.yml", cwd=RULES)


def test_a_broken_rule_expectation_fails_promtool(tmp_path: Path) -> None:
    """The rule tests can fail: a wrong expected label makes promtool exit non-zero."""
    promtool = require("promtool", "Debian package prometheus")
    shutil.copy(RULES / "yujing.rules.yml", tmp_path)
    text = (RULES / "yujing.rules.test.yml").read_text().replace("sink: clickhouse}", "sink: webhook}", 1)
    (tmp_path / "yujing.rules.test.yml").write_text(text)
    done = subprocess.run([promtool, "test", "rules", "yujing.rules.test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_production_prometheus_and_alertmanager_configs_are_valid(tmp_path: Path) -> None:
    promtool = require("promtool", "Debian package prometheus")
    config = (DOCKER / "prometheus" / "prometheus.yml").read_text().replace("/etc/prometheus/rules", str(RULES))
    (tmp_path / "prometheus.yml").write_text(config)
    _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    amtool = require("amtool", "Debian package prometheus-alertmanager")
    _run(amtool, "check-config", str(DOCKER / "alertmanager" / "alertmanager.yml"))


def test_alertmanager_routes_pipeline_alerts_to_sre_and_red_lines_at_once() -> None:
    amtool = require("amtool", "Debian package prometheus-alertmanager")
    config = str(DOCKER / "alertmanager" / "alertmanager.yml")
    cases = {
        "team=sre alertname=YujingNoWorkers severity=critical": "sre",
        "alertname=install-sla region=杭州 severity=major": "risk-team",
        "alertname=redline-complaint category=redline severity=critical": "risk-team-redline",
        "alertname=complaint-spike source=cohort_spike severity=critical region=金华": "risk-team-redline",
    }
    for labels, receiver in cases.items():
        assert _run(amtool, "config", "routes", "test", f"--config.file={config}", *labels.split()).strip() == receiver, labels
    # The check can fail: a label set routed elsewhere is a non-zero exit with --verify.receivers.
    wrong = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", "--verify.receivers=sre", "alertname=install-sla"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0


def _metric_names() -> set[str]:
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def _exprs() -> list[str]:
    rules = yaml.safe_load((RULES / "yujing.rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for path in DASHBOARDS:
        exprs += [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p.get("targets", []) if "expr" in t]
    return exprs


def test_every_metric_the_rules_and_dashboards_name_is_exported() -> None:
    names = _metric_names()
    used = {m for expr in _exprs() for m in re.findall(r"\byujing_[a-z_]+", expr)}
    assert used and used <= names, used - names


DASHBOARD_EVENTS = 'sum by (topic, outcome) (rate(yujing_events_total{instance=~"$instance"}[5m]))'


def test_dashboards_have_variables_units_local_days_operational_panels_and_the_alert_a_link_opens() -> None:
    boards = {p.stem: json.loads(p.read_text()) for p in DASHBOARDS}
    variables = {name: {v["name"] for v in b["templating"]["list"]} for name, b in boards.items()}
    assert {"region", "rule", "severity", "alert_id"} <= variables["alerts-overview"]
    assert {"rule", "region"} <= variables["detectors"] and {"instance"} <= variables["pipeline"]
    for name, board in boards.items():
        assert board["timezone"] == "Asia/Shanghai", name
        for panel in board["panels"]:
            assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), (name, panel["title"])
            for target in panel["targets"]:
                query = target.get("rawSql") or target.get("expr")
                assert "toStartOfDay(" not in query or "'Asia/Shanghai'" in query, (name, panel["title"])  # Beijing days
                used = set(re.findall(r"\$\{?(\w+)", query)) - {"__timeFilter"}
                assert used <= variables[name], (name, panel["title"], used)
                assert used, (name, panel["title"], "follows none of the dashboard's variables")
        ch = [t["rawSql"] for p in board["panels"] for t in p["targets"] if "rawSql" in t and "alerts_latest" in t["rawSql"]]
        assert all("${region:singlequote}" in q or "alert_id = " in q for q in ch), name  # every alert panel follows the region
    assert DASHBOARD_EVENTS in [t["expr"] for p in boards["pipeline"]["panels"] for t in p["targets"]]
    titles = {p["title"] for p in boards["pipeline"]["panels"]}
    assert {"Rule errors (/h)", "Late events (/s)", "Rule reloads", "Event to processed p99 (s)"} <= titles
    # Alertmanager's evidence link opens this dashboard on the alert
    env = yaml.safe_load((DOCKER / "compose.yaml").read_text())["x-yujing-env"]
    link = env["YUJING_ALERTMANAGER_EVIDENCE_URL"]
    assert f"/d/{boards['alerts-overview']['uid']}?" in link and "var-alert_id={alert_id}" in link
    assert any(
        "alert_id = '${alert_id}'" in t["rawSql"] for p in boards["alerts-overview"]["panels"] for t in p["targets"] if "rawSql" in t
    )


def test_dashboards_are_well_formed_and_use_provisioned_datasources() -> None:
    provisioned = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert {p.stem for p in DASHBOARDS} >= {"pipeline", "alerts-overview", "detectors"}
    seen_uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in seen_uids and board["title"] and board["panels"]
        seen_uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            ds = panel["datasource"]
            assert uids.get(ds["uid"]) == ds["type"], (path.name, panel["title"])
            assert panel["targets"] and all(("expr" in t) != ("rawSql" in t) for t in panel["targets"])
            assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def _sql_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel["targets"]:
                if "rawSql" in t:
                    out.append((path.stem, panel["title"], t["rawSql"]))
    return out


def _expand(sql: str, choices: dict[str, str] | None = None) -> str:
    """The Grafana ClickHouse plugin's macros and the dashboards' variables, as Grafana expands them, for the
    simulated range: a multi-value variable left at "All" is its allValue, quoted (``'.*'``)."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime('{FROM}', 'UTC') AND \1 <= toDateTime('{TO}', 'UTC')", sql)
    chosen = choices or {}
    sql = re.sub(r"\$\{(\w+):singlequote\}", lambda m: ", ".join(f"'{v}'" for v in chosen.get(m.group(1), ".*").split(",")), sql)
    sql = re.sub(r"\$\{(\w+)\}", lambda m: chosen.get(m.group(1), ""), sql)
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql


def _promql(expr: str) -> str:
    """A dashboard's PromQL with its variables at "All" (their allValue, ``.*``)."""
    return re.sub(r"\$\{\w+:pipe\}", ".*", expr).replace('"$instance"', '".*"')


@pytest.fixture(scope="module")
def filled(clickhouse: ClickHouseServer) -> dict[str, Any]:
    """Eight simulated days through the default pack, into ClickHouse's ``yujing`` database, metrics served."""
    sim = simulate(SimConfig(seed=5, customers=1500, days=2.0, history_days=6.0))
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    backend = DictBackend()
    config = EngineConfig(allowed_lateness=300.0, idle_after=None)
    manager = AlertManager(load_policy(default_rules_dir()), backend, config.dedup_retention, config.partitions)
    now = time.time()
    manager.set_silences({"s": new_silence(["region=杭州"], starts_at=now - 60, ends_at=now + 3600)})  # some are held back
    engine = Engine(load_rules(default_rules_dir()).rules, backend, config, alerting=manager)
    sink = ClickHouseSink(clickhouse.url, metrics=metrics)
    LocalRunner(Pipeline(engine, Decoder(TOPICS), [sink], metrics, partitions=PARTITIONS), None).run(sim.lines())
    sink.close()
    port = serve_metrics(registry, "127.0.0.1", 0)
    return {"port": port}


def test_every_dashboard_sql_runs_on_clickhouse_and_the_main_panels_have_data(filled: dict[str, Any], clickhouse: ClickHouseServer) -> None:
    client = clickhouse.client()
    results = {}
    for board, title, sql in _sql_queries():
        try:
            results[(board, title)] = client.execute(_expand(sql))
        except Exception as exc:
            raise AssertionError(f"{board} · {title}: {str(exc).splitlines()[0]}\n{sql}") from None
    assert len(results) >= 10
    for needed in ("Alerts per hour by rule", "Alerts by region", "Open work: firing now", "Recorded but not sent, by reason"):
        (rows,) = [r for (_, t), r in results.items() if t == needed]
        assert rows, f"{needed}: no rows"
    assert results[("detectors", "Cohort spikes: observed vs expected, top cohorts")], "the outage leaves cohort scores"
    # the variables' own queries run, and choosing a region narrows the panels to it
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            if variable.get("datasource", {}).get("uid") == "clickhouse":
                assert client.execute(variable["query"]), (path.stem, variable["name"])
    by_region = {row[0]: row[1] for row in results[("alerts-overview", "Alerts by region")][:2]}
    region = next(iter(by_region))
    (panel_sql,) = [q for b, t, q in _sql_queries() if t == "Alerts by region"]
    assert client.execute(_expand(panel_sql, {"region": region}))[0][:2] == (region, by_region[region])
    assert len(client.execute(_expand(panel_sql, {"region": region}))) == 1
    # the alert a link opens: its record, status history and actions
    alert_id = client.execute("SELECT alert_id FROM yujing.alerts_latest WHERE status = 'resolved' LIMIT 1")[0][0]
    opened = {t: client.execute(_expand(q, {"alert_id": alert_id})) for b, t, q in _sql_queries() if "${alert_id}" in q}
    assert len(opened["This alert (${alert_id})"]) == 1 and opened["This alert (${alert_id})"][0][1] == "resolved"
    assert [row[1] for row in opened["This alert: status history"]] == ["firing", "resolved"]


def test_the_open_work_list_follows_acknowledgements_and_assignments(
    filled: dict[str, Any], clickhouse: ClickHouseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main

    client = clickhouse.client()
    firing = {a for (a,) in client.execute("SELECT alert_id FROM yujing.alerts_latest WHERE status = 'firing'")}
    open_now = client.execute("SELECT alert_id, rule_id, acked, assignee FROM yujing.alerts_open ORDER BY alert_id")
    assert {a for a, *_ in open_now} == firing and len(open_now) == len(firing)  # one row each: the work list
    all_rules = {r for (r,) in client.execute("SELECT DISTINCT rule_id FROM yujing.alerts_latest")}
    one_off_closed = {r for (r,) in client.execute("SELECT DISTINCT rule_id FROM yujing.alerts_latest WHERE status = 'resolved'")}
    assert {"redline-complaint", "repeat-complaint"} & all_rules <= one_off_closed | {r for _, r, *_ in open_now}
    first, second = open_now[0][0], open_now[1][0]
    assert not open_now[0][2] and open_now[0][3] == ""
    url = ["--clickhouse", clickhouse.url]
    assert main(["alert", "ack", first, "--by", "li", "--note", "calling the customer", *url]) == 0
    assert main(["alert", "assign", second, "--by", "li", "--to", "wang", *url]) == 0
    assert main(["alert", "ack", "no-such-alert", "--by", "li", *url]) == 2
    rows = dict(
        (
            (a, (acked_by, assignee))
            for a, acked_by, assignee in client.execute("SELECT alert_id, acked_by, assignee FROM yujing.alerts_open")
        )
    )
    assert rows[first] == ("li", "") and rows[second] == ("", "wang")
    capsys.readouterr()
    assert main(["alert", "open", "--unacked", "--limit", "5000", *url]) == 0
    listed = capsys.readouterr().out
    assert f"open alerts ({len(firing) - 1} shown)" in listed  # all but the acknowledged one


def test_every_dashboard_and_rule_promql_runs_on_prometheus(filled: dict[str, Any], tmp_path: Path) -> None:
    prometheus = PrometheusServer(tmp_path, [f"127.0.0.1:{filled['port']}"], rule_files=[str(RULES / "yujing.rules.yml")])
    prometheus.start()
    try:
        wait_for(lambda: prometheus.query("yujing_events_total"), 30, "a scrape")
        time.sleep(2.5)  # a few samples for rate()
        for expr in _exprs():
            prometheus.query(_promql(expr))  # raises unless Prometheus accepts and evaluates it
        # the worker variable narrows to one worker: the series are there under its instance label
        assert prometheus.query(_promql(DASHBOARD_EVENTS).replace('".*"', f'"127.0.0.1:{filled["port"]}"'))
        assert prometheus.query('sum(yujing_events_total{outcome="accepted"})')[0]["value"][1] != "0"
        assert prometheus.query("sum(yujing_alerts_held_total)") or prometheus.query("sum(yujing_alerts_total)")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{prometheus.port}/api/v1/rules", timeout=10) as resp:
            groups = json.loads(resp.read())["data"]["groups"]
        written = yaml.safe_load((RULES / "yujing.rules.yml").read_text())["groups"][0]["rules"]
        assert [g["name"] for g in groups] == ["yujing-pipeline"] and len(groups[0]["rules"]) == len(written) == 11
    finally:
        prometheus.stop()


def test_report_from_clickhouse_in_markdown_and_html_with_charts(
    filled: dict[str, Any], clickhouse: ClickHouseServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli import main

    out = tmp_path / "report"
    args = ["report", "--since", "2026-02-28", "--until", "2026-03-04", "--clickhouse", clickhouse.url, "--out", str(out)]
    assert main(args) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    client = clickhouse.client()
    window = "starts_at >= toDateTime('2026-02-27 16:00:00', 'UTC') AND starts_at < toDateTime('2026-03-03 16:00:00', 'UTC')"
    (total,) = client.execute(f"SELECT count() FROM yujing.alerts_latest WHERE {window}")[0]
    assert total > 0 and f"**{total:,} alerts**" in md
    assert md.startswith("# 预警周报 Yujing report: 2026-02-28 00:00 – 2026-03-04 00:00 (UTC+08:00)")
    assert "| starts (UTC+08:00) |" in md  # times in the report's zone, not the database's UTC
    for heading in (
        "Alerts by rule",
        "Top alerts",
        "Top hot words",
        "Cohorts with the most complaints per 10,000 orders",
        "SLA breaches by customer tier",
    ):
        assert f"## {heading}" in md and heading in page
    rate_rows = [line for line in md.split("## Cohorts with the most")[1].split("##")[0].splitlines() if line.startswith("| product=")]
    assert rate_rows, "the service-rate rule's groups make the per-10,000 table"
    _cohort, complaints, orders, per = (c.strip() for c in rate_rows[0].strip("|").split("|"))
    assert float(per) == round(int(complaints) / int(orders) * 10000, 1)
    sla = md.split("## SLA breaches by customer tier")[1]
    assert any(f"| {tier} |" in sla for tier in ("platinum", "gold", "silver", "standard"))
    for chart in ("alerts-per-day.png", "alerts-by-rule.png", "sla-by-tier.png"):
        assert (out / chart).stat().st_size > 5000 and f"]({chart})" in md
    assert page.count("data:image/png;base64,") == 3  # the page stands alone
    # what was not sent, by reason and by the silence that held it (the fixture silences 杭州)
    reasons = dict(
        client.execute(
            "SELECT splitByChar(':', held_reason)[1] AS reason, count() FROM yujing.alert_history_latest"
            " WHERE sent = 0 AND at >= toDateTime('2026-02-27 16:00:00', 'UTC') AND at < toDateTime('2026-03-03 16:00:00', 'UTC')"
            " GROUP BY reason"
        )
    )
    assert reasons.get("silenced") and f"{reasons['silenced']:,} silenced" in md
    assert f"| silenced | {reasons['silenced']} |" in md.split("## Recorded but not sent, by reason")[1]
    holders = md.split("## Held back by which silence or inhibit rule")[1].split("##")[0]
    assert f" | {reasons['silenced']} | " in holders and "| silenced:" in holders  # all by the fixture's one silence
    # a previous period that begins before the first record is compared per day over the days it has data for
    first = client.execute("SELECT min(starts_at) FROM yujing.alerts_latest")[0][0]
    early = ["report", "--since", "2026-02-26", "--until", "2026-03-04", "--clickhouse", clickhouse.url, "--out", str(tmp_path / "early")]
    assert main(early) == 0
    head = (tmp_path / "early" / "report.md").read_text(encoding="utf-8").splitlines()[2]
    begins = first.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert f"the previous period has data on 1.6 of its 6 days, from {begins:%Y-%m-%d %H:%M}" in head, head
    # the fixture's detectors learn for days: their first score falls in the previous period, so rules are compared alone
    rules_now = client.execute(
        "SELECT count() FROM yujing.alerts_latest WHERE source = 'rule'"
        " AND starts_at >= toDateTime('2026-02-25 16:00:00', 'UTC') AND starts_at < toDateTime('2026-03-03 16:00:00', 'UTC')"
    )[0][0]
    assert "a day against the previous period (rules only, as the detectors were still learning until" in head, head
    assert f": {rules_now:,} against " in head, head
    # bad input: a clear message and exit 2, nothing written
    backwards = ["--since", "2026-03-04", "--until", "2026-03-01", "--clickhouse", clickhouse.url, "--out", str(tmp_path / "x")]
    assert main(["report", *backwards]) == 2
    assert main(["report", "--since", "next week", "--clickhouse", clickhouse.url]) == 2
    assert main(["report", "--since", "2026-03-01", "--clickhouse", "clickhouse://127.0.0.1:1/yujing", "--out", str(tmp_path / "y")]) == 2
    assert "cannot read" in capsys.readouterr().err and not (tmp_path / "y").exists()
