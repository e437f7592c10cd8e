"""Scaling: the PostgreSQL fan-out figure with 1, 2 and 4 ``firehook worker`` processes.

Each point is a full end-to-end fan-out run of ``bench/fanout.py`` (same checks: every
delivery verified, every run ``complete/success``) with ``serve --no-worker`` for intake and
N worker processes sharing the queue (``FOR UPDATE SKIP LOCKED``). The 1-worker point is
taken from the fan-out scenario of the same run when it measured the same configuration.

The CPU each process used during the run (user + system, from ``/proc/<pid>/stat``) is
reported too: on a machine with few cores the curve flattens where the processes together
(serve, workers, PostgreSQL, the receiver, the harness) use all of them.
"""

from __future__ import annotations

import json
from typing import Any

from bench import common, fanout
from bench.profile import Profiler
from bench.receiver import ReceiverProcess


async def _scenario(cfg: common.Config, profiler: Profiler | None, known: dict[int, Any]) -> dict[str, Any]:
    points: dict[str, Any] = {}
    with ReceiverProcess(common.KEY) as receiver:
        for workers in cfg.scaling_workers:
            if workers in known and known[workers].get("ok"):
                points[str(workers)] = {**known[workers], "reused_from": "fanout"}
                continue
            try:
                points[str(workers)] = await fanout.measure("postgres", cfg.scaling_webhooks, cfg, workers=workers,
                                                            profiler=profiler, receiver=receiver)
            except common.BenchError as exc:
                points[str(workers)] = {"ok": False, "error": str(exc), "problems": [str(exc)]}
    rates = {w: p.get("per_second") for w, p in points.items()}
    return {"webhooks_per_activity": cfg.scaling_webhooks, "nproc": common.machine()["nproc"],
            "points": points, "per_second": rates, "flattens_at": flattens_at(rates)}


def flattens_at(rates: dict[str, float | None]) -> str | None:
    """The first worker count after which adding workers gains less than 10 %."""
    ordered = sorted((int(w), r) for w, r in rates.items() if r)
    for (w, r), (_w2, r2) in zip(ordered, ordered[1:], strict=False):
        if r2 < r * 1.10:
            return str(w)
    return None


def run(cfg: common.Config, profiler: Profiler | None = None, known: dict[int, Any] | None = None) -> dict[str, Any]:
    return dict(common.run(_scenario(cfg, profiler, known or {})))


if __name__ == "__main__":
    print(json.dumps(run(common.Config.quick_config()), indent=2))
