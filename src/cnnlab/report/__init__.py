"""One self-contained HTML page for a run."""

from cnnlab.report.html import build_report

__all__ = ["build_report"]
