"""Prometheus metrics (``GET /metrics``). Counters are per process, except under ``serve``
with its worker child, where both write to one prometheus multiprocess directory and the
API's scrape adds them up; the queue depth is read from the database at scrape time, so
every process reports the shared queue."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

ACTIVITIES = Counter("firehook_activities_accepted_total", "Activity documents accepted at intake.",
                     ["source"], registry=REGISTRY)
REJECTED = Counter("firehook_activities_rejected_total", "Activity documents refused at intake.",
                   ["source"], registry=REGISTRY)
RUNS = Counter("firehook_runs_total", "Runs finished, by type and result.", ["type", "result"], registry=REGISTRY)
ATTEMPTS = Counter("firehook_webhook_attempts_total", "Webhook delivery attempts, by outcome.",
                   ["outcome"], registry=REGISTRY)
LATENCY = Histogram("firehook_run_latency_seconds", "From a run being queued to it finishing.", ["type"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
                    registry=REGISTRY)
WAIT = Histogram("firehook_run_wait_seconds", "From a run being queued to its first attempt starting.", ["type"],
                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30), registry=REGISTRY)


class QueueDepth(Collector):
    """``firehook_queue_depth{kind}``: jobs waiting or running, read when scraped."""

    def __init__(self, depth: Callable[[], dict[str, int]]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("firehook_queue_depth", "Jobs queued or running, by kind.", labels=["kind"])
        try:
            values = self.depth()
        except Exception:  # the database is down: report nothing rather than fail the scrape
            values = {}
        for kind in ("script", "webhook"):
            family.add_metric([kind], values.get(kind, 0))
        yield family


_installed: list[QueueDepth] = []


def install_queue_depth(depth: Callable[[], dict[str, int]]) -> None:
    """Register the queue-depth collector once per process (the newest source wins)."""
    if _installed:
        _installed[0].depth = depth
        return
    collector = QueueDepth(depth)
    REGISTRY.register(collector)
    _installed.append(collector)


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: this process's registry, or, when processes share a
    multiprocess directory, the sum over all of them plus the queue depth."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _installed:
        registry.register(collector)
    return registry


class Tally:
    """Counts and observations kept in this process and added to their metrics in one go: the
    worker adds those of a whole group of recorded runs at once, since a metric's lock (a file
    write under ``serve``'s multiprocess directory) and bucket search per run cost more than
    the run's other bookkeeping. Event loop only."""

    def __init__(self) -> None:
        self._counts: dict[Any, int] = {}
        self._observed: dict[Any, list[float]] = {}

    def inc(self, child: Any) -> None:
        self._counts[child] = self._counts.get(child, 0) + 1

    def observe(self, child: Any, value: float) -> None:
        self._observed.setdefault(child, []).append(value)

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for child, n in counts.items():
            child.inc(n)
        for child, values in observed.items():
            _observe_all(child, values)


def _observe_all(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for each value, each bucket and the sum added to once."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:  # a prometheus_client whose histograms are built otherwise
            child.observe(value)
        return
    per_bucket = [0] * len(bounds)
    for value in values:
        per_bucket[bisect.bisect_left(bounds, value)] += 1
    total.inc(sum(values))
    for index, n in enumerate(per_bucket):
        if n:
            buckets[index].inc(n)
