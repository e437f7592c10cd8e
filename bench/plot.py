"""The plot of ``python -m bench``: each firehook figure beside its same-run baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.tables import memory_rows
from bench.targets import TARGETS, dig, passed

FIRE, BASE = "#d9534f", "#7f8c8d"


def _bars(ax: Any, labels: list[str], fire: list[Any], base: list[Any], title: str, ylabel: str,
          target: float | None = None, log: bool = False) -> None:
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], [f or 0 for f in fire], 0.4, label="firehook", color=FIRE)
    ax.bar([x + 0.2 for x in xs], [b or 0 for b in base], 0.4, label="baseline", color=BASE)
    for x, f in zip(xs, fire, strict=True):
        if f is None:
            ax.text(x - 0.2, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=8)
    if target:
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label="target")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)


def _intake(ax: Any, results: dict[str, Any]) -> None:
    intake = results.get("intake") or {}
    bare = dig(intake, "bare_fastapi", "per_second") if passed(intake.get("bare_fastapi")) else None
    labels, fire, base = [], [], []
    for database in ("sqlite", "postgres"):
        block = intake.get(database) or {}
        for phase in ("single", "batch"):
            entry = block.get(phase) or {}
            labels.append(f"{phase}\n{database}")
            fire.append(entry.get("per_second") if entry.get("ok") else None)
            base.append(bare if phase == "single" else dig(block, "healthz", "per_second"))
    _bars(ax, labels, fire, base, "Intake (baseline: bare FastAPI route; batch: GET /healthz)", "activities/s",
          log=True)
    ax.axhline(TARGETS["intake_postgres_single"], color="black", linestyle=":", linewidth=1)


def _cpu(ax: Any, results: dict[str, Any]) -> None:
    """The CPU-per-item targets: firehook's figure, its baseline, the target."""
    intake = results.get("intake") or {}
    db = results.get("dbwork") or {}
    runtime = dig(results, "scripts", "runtime", "1") or {}
    node = dig(results, "scripts", "node", "1") or {}
    items = [
        ("intake single\nper request", dig(intake, "sqlite", "single", "cpu", "serve", "ms_per_item")
         if passed(dig(intake, "sqlite", "single")) else None, dig(intake, "bare_fastapi", "cpu_ms_per_request"),
         TARGETS["intake_single_cpu_ms"]),
        ("intake batch\nper document", dig(intake, "sqlite", "batch", "cpu", "serve", "ms_per_item")
         if passed(dig(intake, "sqlite", "batch")) else None, None, TARGETS["intake_batch_cpu_ms"]),
        ("database work\nper script run", db.get("ms_per_run"), dig(db, "floor", "ms_per_run"),
         TARGETS["dbwork_cpu_ms"]),
        ("script runtime\nper run", runtime.get("cpu_ms_per_run") if passed(runtime) else None,
         node.get("cpu_ms_per_run") if passed(node) else None, TARGETS["runtime_cpu_ms"]),
    ]
    xs = range(len(items))
    _bars(ax, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
          "CPU per item, ms (targets: short black lines)", "ms of CPU", log=True)
    for x, item in zip(xs, items, strict=True):
        ax.hlines(item[3], x - 0.4, x + 0.4, color="black", linewidth=1.5)


def _fanout(ax: Any, results: dict[str, Any]) -> None:
    fan = results.get("fanout") or {}
    labels, fire, base = [], [], []
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            labels.append(f"{webhooks} wh\n{database}")
            fire.append(entry.get("per_second"))
            base.append(fan.get("ceiling_per_second"))
    _bars(ax, labels, fire, base, "Webhook fan-out (baseline: bare aiohttp)", "deliveries/s", log=True)
    if fan.get("ceiling_per_second"):
        ax.axhline(fan["ceiling_per_second"] * TARGETS["fanout_sqlite_ratio"], color="black", linestyle="--",
                   linewidth=1)
        ax.axhline(fan["ceiling_per_second"] * TARGETS["fanout_postgres_ratio"], color="black", linestyle=":",
                   linewidth=1)


def _latency(ax: Any, results: dict[str, Any]) -> None:
    lat = results.get("latency") or {}
    qs = ["p50", "p95", "p99"]
    fire = [dig(lat, "firehook", "answer_to_delivery", f"{q}_ms") if dig(lat, "firehook", "ok") else None
            for q in qs]
    base = [dig(lat, "baseline", "send_to_arrival", f"{q}_ms") for q in qs]
    _bars(ax, qs, fire, base, "Latency at 500/s, answer → delivery", "ms", TARGETS["latency_p99_ms"], log=True)


def _scripts(ax: Any, results: dict[str, Any]) -> None:
    scr = results.get("scripts") or {}
    labels, fire, base = [], [], []
    for key, entry in (scr.get("runtime") or {}).items():
        labels.append(f"{key} thread(s)\nin process")
        fire.append(entry.get("runs_per_second") if entry.get("ok") else None)
        node_entry = (scr.get("node") or {}).get(key)
        base.append(node_entry.get("runs_per_second") if node_entry else None)
    if scr.get("serve"):
        labels.append("through\nserve")
        fire.append(dig(scr, "serve", "runs_per_second"))
        base.append(None)
    _bars(ax, labels, fire, base, "Script runs (baseline: node process per run)", "runs/s", TARGETS["scripts_serve"])


def _memory(ax: Any, results: dict[str, Any]) -> None:
    serve_mem = [(w, r) for w, r, _, _ in memory_rows(results) if w.startswith(("serve", "bare"))]
    ax.barh([w.split(" (")[0].replace("serve ", "") for w, _ in serve_mem], [r for _, r in serve_mem], color=FIRE)
    ax.axvline(TARGETS["idle_rss_mib"], color="black", linestyle="--", linewidth=1)
    ax.set_title("serve, all processes: peak summed RSS (MiB; idle target dashed)", fontsize=10)
    ax.tick_params(axis="y", labelsize=6)


def _scaling(ax: Any, results: dict[str, Any]) -> None:
    scaling = results.get("scaling") or {}
    fan = results.get("fanout") or {}
    points = sorted((int(w), r) for w, r in (scaling.get("per_second") or {}).items() if r)
    if points:
        ax.plot([w for w, _ in points], [r for _, r in points], marker="o", color=FIRE, label="firehook")
        for w, r in points:
            ax.annotate(f"{r:,.0f}/s", (w, r), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_ylim(0, max(r for _, r in points) * 1.3)
        ax.set_xticks([w for w, _ in points])
        if fan.get("ceiling_per_second"):
            ax.text(0.02, 0.02, f"bare aiohttp ceiling: {fan['ceiling_per_second']:,.0f}/s", transform=ax.transAxes,
                    fontsize=8, color=BASE)
    ax.set_title(f"Scaling: workers on PostgreSQL ({scaling.get('webhooks_per_activity', '?')} webhooks)", fontsize=10)
    ax.set_xlabel("worker processes", fontsize=8)
    ax.set_ylabel("deliveries/s", fontsize=8)


def draw(results: dict[str, Any], path: Path) -> bool:
    """A 2×4 grid of the figures; False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 4, figsize=(24, 10))
    for ax, part in zip([a for row in axes for a in row],
                        (_intake, _cpu, _fanout, _latency, _scripts, _memory, _scaling), strict=False):
        part(ax, results)
    axes[1][3].axis("off")
    meta = results["meta"]
    fig.suptitle(f"firehook on {meta['machine']['nproc']} cores, load average {meta['load_average_before'][0]} "
                 f"at start — {meta['started_at']}{' (quick)' if meta['quick'] else ''}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
    return True
