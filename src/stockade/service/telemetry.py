"""Prometheus metrics, structured JSON logs and the recent-failure tally behind /v1/diagnostics."""

from __future__ import annotations

import collections
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stockade.sandbox.netpolicy import NetworkUsage

STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """One registry per app, so several apps (tests) never collide on metric names."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.executions = Counter("stockade_executions_total", "Executions by language and verdict",
                                  ["language", "verdict"], registry=r)  # fmt: skip
        self.stage_seconds = Histogram("stockade_stage_duration_seconds", "Wall time of a stage",
                                       ["stage", "language"], buckets=STAGE_BUCKETS, registry=r)  # fmt: skip
        self.queue_wait = Histogram("stockade_queue_wait_seconds", "Time a request waited for a slot",
                                    buckets=STAGE_BUCKETS, registry=r)  # fmt: skip
        self.in_flight = Gauge("stockade_in_flight", "Admitted executions (running or queued)", registry=r)
        self.submissions_queued = Gauge("stockade_submissions_queued", "Submissions waiting to run, by surface",
                                        ["surface"], registry=r)  # fmt: skip
        self.submission_oldest = Gauge("stockade_submission_oldest_seconds", "How long the longest-queued "
                                       "submission has waited, by surface", ["surface"], registry=r)  # fmt: skip
        # A cluster's queue, as its Redis counts it (cluster.py): the same figures on every API node.
        self.cluster_figures = {
            name: Gauge(f"stockade_cluster_{name}", text, registry=r)
            for name, text in (
                ("workers_alive", "Workers whose heartbeat is recent"),
                ("redelivered", "Jobs taken again from a dead worker, since the queue began"),
                ("dead_letters", "Jobs given up after their attempts (the dead-letter stream)"),
                ("available", "1 while the cluster's Redis answers"),
            )
        }
        self.rejections = Counter("stockade_rejections_total", "Requests refused, by reason", ["reason"], registry=r)
        self.sandbox_failures = Counter("stockade_sandbox_failures_total", "Boxes that could not be built",
                                        registry=r)  # fmt: skip
        self.audit_failures = Counter("stockade_audit_failures_total", "Executions whose audit record could not "
                                      "be written", registry=r)  # fmt: skip
        self.interrupted = Counter("stockade_interrupted_total", "Admitted executions recorded as interrupted, "
                                   "by reason", ["reason"], registry=r)  # fmt: skip
        self.connections = Gauge("stockade_connections", "Open client connections", registry=r)
        self.connection_refusals = Counter("stockade_connection_refusals_total", "Connections refused or closed "
                                           "by the connection guard, by reason", ["reason"], registry=r)  # fmt: skip
        self.accept_errors = Counter("stockade_accept_errors_total", "accept() failures (EMFILE and the like)",
                                     registry=r)  # fmt: skip
        self.quota_saturation = Gauge("stockade_quota_saturation", "Used fraction of a tenant's daily quota",
                                      ["tenant", "quota"], registry=r)  # fmt: skip
        self.egress_connections = Counter("stockade_egress_connections_total", "Egress proxy requests, allowed or "
                                          "refused", ["outcome"], registry=r)  # fmt: skip
        self.egress_bytes = Counter("stockade_egress_bytes_total", "Bytes the egress proxy carried, by direction",
                                    ["direction"], registry=r)  # fmt: skip

    def cluster(self, figures: dict[str, Any]) -> None:
        for name, gauge in self.cluster_figures.items():
            gauge.set(float(figures.get(name) or 0))

    def count_network(self, usage: NetworkUsage | None) -> None:
        if usage is None:
            return
        self.egress_connections.labels("allowed").inc(usage.connections)
        self.egress_connections.labels("refused").inc(usage.refused)
        self.egress_bytes.labels("out").inc(usage.bytes_out)
        self.egress_bytes.labels("in").inc(usage.bytes_in)


class RecentFailures:
    """Counts of failures by cause over a sliding window, for operators."""

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_s = window_s
        self._events: collections.deque[tuple[float, str]] = collections.deque(maxlen=10_000)

    def add(self, cause: str) -> None:
        self._events.append((time.monotonic(), cause))

    def summary(self) -> dict[str, int]:
        cutoff = time.monotonic() - self.window_s
        return dict(collections.Counter(cause for t, cause in self._events if t >= cutoff))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("stockade")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
