"""``yujing report``: the weekly pain-point broadcast for the risk team, from ClickHouse (Markdown and HTML, with charts)."""

from streams.report.data import ReportData, Table, collect
from streams.report.render import write_report

__all__ = ["ReportData", "Table", "collect", "write_report"]
