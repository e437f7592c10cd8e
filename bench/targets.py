"""The targets the report judges (issue 11: the data path; issue 12: scripts in a pool), and
the small helpers the report, its tables and the plot share."""

from __future__ import annotations

from typing import Any

#: The targets of issue 11 (the data path) and issue 12 (scripts in a pool of processes).
TARGETS = {
    "fanout_sqlite_ratio": 0.5,  # 10 webhooks per activity, `serve` on SQLite, of the bare aiohttp ceiling
    "fanout_postgres_ratio": 0.4,  # the same, `serve --no-worker` + 1 `worker` on PostgreSQL
    "intake_single_ratio": 0.4,  # single-document intake rate, of the bare FastAPI route's
    "intake_single_cpu_ms": 0.3,  # server CPU (serve + descendants) per request, SQLite
    "intake_batch_cpu_ms": 0.1,  # server CPU per document of a batch, SQLite
    "intake_postgres_single": 2000.0,  # activities/s, single documents on PostgreSQL
    "latency_p99_ms": 50.0,  # intake answer → first attempt, at 500 activities/s offered
    "dbwork_cpu_ms": 0.2,  # database CPU per script run
    "idle_rss_mib": 200.0,  # `serve` idle, all its processes together
    "scripts_serve": 600.0,  # script runs/s through `serve` (issue 12)
    "runtime_cpu_ms": 1.5,  # the script runtime alone, CPU per run (issue 12)
    "isolation_run_ms": 1000.0,  # a trivial run of project B beside 2 runaways of A, the slowest (issue 12)
    "isolation_healthz_p99_ms": 50.0,  # GET /healthz p99 beside 2 runaways of A (issue 12)
}
FANOUT_TARGET_WEBHOOKS = "10"


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def fmt(value: Any, unit: str = "/s") -> str:
    if value is None:
        return "—"
    if unit == " MiB":
        return f"{value:,.1f}{unit}"
    if unit == " ms CPU" or (unit == " ms" and isinstance(value, float) and value < 10):
        return f"{value:,.3f}{unit}" if value < 1 else f"{value:,.2f}{unit}"
    if isinstance(value, float) and value >= 100 or isinstance(value, int):
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f}{unit}"


def ms_text(value: Any) -> str:
    return "—" if value is None else (f"{value:.3f}" if value < 1 else f"{value:.2f}")


def pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def why(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "not measured"
    problems = entry.get("problems") or ([entry["error"]] if entry.get("error") else [])
    return "; ".join(str(p) for p in problems)[:300] or "failed"


def passed(entry: Any) -> bool:
    return isinstance(entry, dict) and bool(entry.get("ok", False))


def at_most(value: Any, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: Any, limit: float) -> bool | None:
    return None if value is None else value >= limit


def below(value: Any, limit: float) -> bool | None:
    return None if value is None else value < limit


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]
