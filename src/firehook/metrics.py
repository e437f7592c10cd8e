"""Prometheus metrics (``GET /metrics``). Counters are per process, except under ``serve``
with its worker child, where both write to one prometheus multiprocess directory and the
API's scrape adds them up; the queue depth is read from the database at scrape time, so
every process reports the shared queue."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

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
