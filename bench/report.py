"""The report of ``python -m bench``: targets, the Markdown table, the plot.

Every firehook figure is put next to the baseline measured in the same run. A figure whose
checks failed is shown as "failed" with the reason — never as throughput.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The targets of issue 7.
TARGETS = {
    "intake_single": 3000.0,  # activities/s, single-document requests
    "intake_batch": 20000.0,  # activities/s, batch endpoint
    "fanout_sqlite": 3000.0,  # deliveries/s on SQLite
    "fanout_ceiling_ratio": 0.5,  # of the bare aiohttp ceiling
    "latency_p99_ms": 50.0,  # at 500 activities/s
    "scripts": 400.0,  # runs/s, all cores
}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, unit: str = "/s") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 100 or isinstance(value, int):
        return f"{value:,.0f}{unit}"
    return f"{value:,.1f}{unit}"


def _why(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "not measured"
    problems = entry.get("problems") or ([entry["error"]] if entry.get("error") else [])
    return "; ".join(str(p) for p in problems)[:300] or "failed"


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: what, firehook, baseline, ratio, target, met (None: no target)."""
    out: list[dict[str, Any]] = []

    def add(what: str, figure: Any, baseline: Any, baseline_what: str, target: str = "",
            met: bool | None = None, unit: str = "/s", entry: Any = None, ratio: float | None = None) -> None:
        ok = entry is None or (isinstance(entry, dict) and entry.get("ok", False))
        if ratio is None and isinstance(figure, (int, float)) and isinstance(baseline, (int, float)) and baseline:
            ratio = figure / baseline
        out.append({
            "what": what, "firehook": figure if ok else None, "baseline": baseline, "baseline_what": baseline_what,
            "ratio": round(ratio, 3) if ratio is not None and ok else None, "target": target,
            "met": met if ok else (False if target else None), "unit": unit,
            "failed": None if ok else _why(entry),
        })

    intake = results.get("intake") or {}
    for database in ("sqlite", "postgres"):
        block = intake.get(database)
        if not block:
            continue
        if "error" in block:
            add(f"intake single, {database}", None, None, "", f"≥ {TARGETS['intake_single']:,.0f}/s", entry=block)
            continue
        ceiling = _get(block, "healthz", "per_second")
        single = _get(block, "single", "per_second")
        batch = _get(block, "batch", "per_second")
        add(f"intake single 20 KB, {database} (8 clients)", single, ceiling, "GET /healthz, same client",
            f"≥ {TARGETS['intake_single']:,.0f}/s", single is not None and single >= TARGETS["intake_single"],
            entry=block.get("single"))
        add(f"intake batch 20 KB × {block.get('batch_lines')}, {database}", batch, ceiling,
            "GET /healthz (requests/s)", f"≥ {TARGETS['intake_batch']:,.0f}/s",
            batch is not None and batch >= TARGETS["intake_batch"], entry=block.get("batch"))

    fan = results.get("fanout") or {}
    ceiling = fan.get("ceiling_per_second")
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            rate = _get(entry, "per_second")
            ratio_ok = bool(rate is not None and ceiling and rate >= TARGETS["fanout_ceiling_ratio"] * ceiling)
            where = "serve" if database == "sqlite" else "serve --no-worker + 1 worker"
            if database == "sqlite":
                target = f"≥ {TARGETS['fanout_sqlite']:,.0f}/s and ≥ 50 % of ceiling"
                met = rate is not None and rate >= TARGETS["fanout_sqlite"] and ratio_ok
            else:
                target, met = "≥ 50 % of ceiling", ratio_ok
            add(f"fan-out, {webhooks} webhook{'s' if webhooks != '1' else ''}/activity, {database} ({where})",
                rate, ceiling, "bare aiohttp → same receiver", target, met, entry=entry)

    lat = results.get("latency") or {}
    fire = lat.get("firehook") or {}
    base = lat.get("baseline") or {}
    for q in ("p50", "p95", "p99"):
        figure = _get(fire, "answer_to_delivery", f"{q}_ms")
        baseline = _get(base, "send_to_arrival", f"{q}_ms")
        target, met = "", None
        if q == "p99":
            target = f"≤ {TARGETS['latency_p99_ms']:.0f} ms"
            met = figure is not None and figure <= TARGETS["latency_p99_ms"]
        add(f"latency {q}, answer → delivery at {fire.get('offered_per_second', 500):.0f}/s offered, sqlite",
            figure, baseline, "bare aiohttp → receiver, same open loop", target, met, unit=" ms", entry=fire)

    scr = results.get("scripts") or {}
    runtime = scr.get("runtime") or {}
    node = scr.get("node") or {}
    for key, entry in runtime.items():
        figure = entry.get("runs_per_second")
        node_entry = node.get(key) if node else None
        baseline = node_entry.get("runs_per_second") if node_entry and node_entry.get("ok") else None
        threads = int(key)
        target, met = "", None
        if threads == max(int(k) for k in runtime):
            target = f"≥ {TARGETS['scripts']:,.0f}/s"
            met = figure is not None and figure >= TARGETS["scripts"]
        add(f"script runs, {threads} thread{'s' if threads > 1 else ''} (in process)", figure, baseline,
            f"new Node.js process per run, {threads} at a time" if node else "Node.js not installed",
            target, met, entry=entry)
    if scr.get("serve"):
        add("script runs end to end through serve, sqlite", _get(scr, "serve", "runs_per_second"), None, "",
            entry=scr["serve"])

    scaling = results.get("scaling") or {}
    for workers, entry in (scaling.get("points") or {}).items():
        add(f"scaling: fan-out {scaling.get('webhooks_per_activity')} webhooks, postgres, {workers} worker(s)",
            _get(entry, "per_second"), ceiling, "bare aiohttp → same receiver", entry=entry)
    return out


def memory_rows(results: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(what, serve peak RSS MiB, serve VmHWM MiB) per load."""
    out: list[tuple[str, Any, Any]] = []
    intake = results.get("intake") or {}
    for database in ("sqlite", "postgres"):
        block = intake.get(database) or {}
        if "idle_memory" in block:
            out.append((f"serve idle, {database}", block["idle_memory"]["rss_mib"], block["idle_memory"]["vm_hwm_mib"]))
        for phase in ("healthz", "single", "batch"):
            mem = _get(block, phase, "memory")
            if mem:
                out.append((f"serve under intake {phase}, {database}", mem["peak_rss_mib"], mem["vm_hwm_mib"]))
    fan = results.get("fanout") or {}
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            for proc, mem in (_get(entry, "memory") or {}).items():
                out.append((f"{proc} under fan-out {webhooks} webhook(s), {database}", mem["peak_rss_mib"],
                            mem["vm_hwm_mib"]))
    mem = _get(results, "latency", "firehook", "memory", "serve")
    if mem:
        out.append(("serve under latency load (500/s, 1 webhook), sqlite", mem["peak_rss_mib"], mem["vm_hwm_mib"]))
    serve = _get(results, "scripts", "serve") or {}
    if serve.get("memory_idle"):
        out.append(("serve idle with a script integration, sqlite", serve["memory_idle"]["rss_mib"],
                    serve["memory_idle"]["vm_hwm_mib"]))
    mem = _get(serve, "memory", "serve")
    if mem:
        out.append(("serve under script runs, sqlite", mem["peak_rss_mib"], mem["vm_hwm_mib"]))
    for workers, entry in (_get(results, "scaling", "points") or {}).items():
        if entry.get("reused_from"):
            continue
        for proc, mem in (_get(entry, "memory") or {}).items():
            out.append((f"{proc} under scaling run, {workers} worker(s), postgres", mem["peak_rss_mib"],
                        mem["vm_hwm_mib"]))
    return out


def cpu_table(results: dict[str, Any]) -> str:
    """CPU time per item, per process: what the work costs, much less sensitive to the
    machine's load than the rates are."""
    lines = ["| load | per | " + " | ".join(["serve", "worker(s)", "postgres", "receiver", "client"]) + " |",
             "|---|---|---:|---:|---:|---:|---:|"]

    def ms(usage: Any, key: str) -> str:
        return f"{usage[key]:.2f}" if isinstance(usage, dict) and usage.get(key) is not None else "—"

    intake = results.get("intake") or {}
    for database in ("sqlite", "postgres"):
        for phase in ("single", "batch"):
            entry = _get(intake, database, phase) or {}
            cpu = entry.get("cpu") or {}
            if not cpu:
                continue
            client = entry.get("client_cpu_us_per_request")
            per_item = None
            if client and entry.get("accepted"):
                per_item = client / 1000 / (entry["accepted"] / max(entry["requests"], 1))
            lines.append(f"| intake {phase}, {database} | activity | {ms(cpu.get('serve'), 'ms_per_item')} | — | "
                         f"{ms(cpu.get('postgres'), 'ms_per_item')} | — | {f'{per_item:.2f}' if per_item else '—'} |")
    fan = results.get("fanout") or {}
    for key in ("ceiling_before", "ceiling_after"):
        c = fan.get(key)
        if c and c.get("ok"):
            receiver = c.get("receiver_cpu_us_per_delivery")
            lines.append(f"| bare aiohttp ceiling ({key.split('_')[1]}) | delivery | — | — | — | "
                         f"{receiver / 1000:.2f} | {c['client_cpu_us_per_delivery'] / 1000:.2f} |"
                         if receiver is not None else "")
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            cpu = entry.get("cpu") or {}
            if not cpu:
                continue
            workers = [v for k, v in cpu.items() if k.startswith("worker")]
            per = [w.get("ms_per_delivery") for w in workers]
            worker_ms = sum(per) if workers and None not in per else None
            worker_txt = f"{worker_ms:.2f}" if worker_ms is not None else ("—" if workers else "in serve")
            lines.append(f"| fan-out {webhooks} webhook(s), {database} | delivery | "
                         f"{ms(cpu.get('serve'), 'ms_per_delivery')} | {worker_txt} | "
                         f"{ms(cpu.get('postgres'), 'ms_per_delivery')} | "
                         f"{ms(cpu.get('receiver'), 'ms_per_delivery')} | "
                         f"{ms(cpu.get('harness'), 'ms_per_delivery')} |")
    return "\n".join(line for line in lines if line)


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | firehook | baseline | firehook / baseline | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for row in rows(results):
        unit = row["unit"]
        figure = f"failed: {row['failed']}" if row["failed"] else _fmt(row["firehook"], unit)
        baseline = _fmt(row["baseline"], unit) + (f" ({row['baseline_what']})" if row["baseline_what"] else "")
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        lines.append(f"| {row['what']} | {figure} | {baseline} | {ratio} | {row['target']} | {met} |")
    return "\n".join(lines)


def memory_table(results: dict[str, Any]) -> str:
    lines = ["| process and load | peak VmRSS sampled (MiB) | VmHWM at the end (MiB) |", "|---|---:|---:|"]
    for what, rss, hwm in memory_rows(results):
        lines.append(f"| {what} | {rss} | {hwm} |")
    return "\n".join(lines)


def profiles_md(profiles: dict[str, Any], top: int = 8) -> str:
    parts = []
    for phase, per_proc in profiles.items():
        for proc, summary in per_proc.items():
            if "error" in summary:
                parts.append(f"**{phase} / {proc}**: {summary['error']}")
                continue
            parts.append(f"**{phase} / {proc}** ({summary['samples']} samples with the GIL held), own time:\n")
            parts.append("| % | function |\n|---:|---|")
            for item in summary["own"][:top]:
                parts.append(f"| {item['percent']} | `{item['function']}` |")
            parts.append("")
    return "\n".join(parts)


def markdown(results: dict[str, Any], plot_name: str | None) -> str:
    meta = results["meta"]
    m = meta["machine"]
    loads = [meta["load_average_before"][0], *(v[0] for v in (meta.get("load_average_by_scenario") or {}).values()),
             *(meta.get("load_average_after") or [])[:1]]
    busy = max(loads) > 0.5 * (m["nproc"] or 1)
    out = [
        f"# firehook benchmark — {meta['started_at']}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_mib']:,} MiB, Python {m['python']}, "
        f"node {m['node'] or 'absent'}. Mode: {'quick (smoke counts)' if meta['quick'] else 'full'}; "
        f"commit {meta.get('commit') or '?'}; took {meta.get('seconds', 0):.0f} s.",
        f"Load average before: {' / '.join(str(x) for x in meta['load_average_before'])}; "
        f"after: {' / '.join(str(x) for x in meta.get('load_average_after', []))}."
        + ("" if not meta.get("load_average_by_scenario") else " 1-minute load at the start of each scenario: "
           + ", ".join(f"{k} {v[0]}" for k, v in meta["load_average_by_scenario"].items()) + "."),
    ]
    if busy:
        out += ["", f"**The machine was busy** (1-minute load up to {max(loads)} on {m['nproc']} cores, this run "
                "included): the rates say more about the machine than about firehook. The CPU time per item "
                "below is a steadier guide."]
    out += ["", table(results), ""]
    if plot_name:
        out += [f"![figures]({plot_name})", ""]
    out += ["## CPU time per item (ms)", "",
            "CPU seconds each process used during the phase, divided by the activities accepted or the "
            "deliveries made: what the work costs, much less sensitive to a busy machine than the rates.", "",
            cpu_table(results), ""]
    out += ["## Memory of the firehook processes", "", memory_table(results), ""]
    scaling = results.get("scaling")
    if scaling:
        out += ["## Scaling", "",
                f"Fan-out, {scaling['webhooks_per_activity']} webhooks per activity, PostgreSQL: "
                + ", ".join(f"{w} worker(s): {_fmt(r)}" for w, r in scaling["per_second"].items())
                + ". Adding workers stops paying (< 10 % gain) after: "
                + f"{scaling.get('flattens_at') or 'not within the range'}.",
                ""]
        cpu = [(w, _get(p, "cpu")) for w, p in (scaling.get("points") or {}).items()]
        cpu_lines = []
        for w, c in cpu:
            if c:
                busy_txt = ", ".join(f"{name} {v['cores_busy']}" for name, v in c.items())
                cpu_lines.append(f"- {w} worker(s): cores busy — {busy_txt}")
        if cpu_lines:
            out += ["CPU used during each point (cores busy = CPU seconds / wall seconds):", "", *cpu_lines, ""]
    problems = [f"- {r['what']}: {r['failed']}" for r in rows(results) if r["failed"]]
    if problems:
        out += ["## Failed checks", "", *problems, ""]
    if results.get("profiles"):
        out += ["## Profiles (py-spy, --gil)", "", profiles_md(results["profiles"]), ""]
    return "\n".join(out) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """A 2×3 grid: each firehook figure beside its baseline. False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    fire_c, base_c = "#d9534f", "#7f8c8d"

    def bars(ax: Any, labels: list[str], fire: list[Any], base: list[Any], title: str, ylabel: str,
             target: float | None = None, log: bool = False) -> None:
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], [f or 0 for f in fire], 0.4, label="firehook", color=fire_c)
        ax.bar([x + 0.2 for x in xs], [b or 0 for b in base], 0.4, label="baseline", color=base_c)
        for x, f in zip(xs, fire, strict=True):
            if f is None:
                ax.text(x - 0.2, 0, "failed", rotation=90, ha="center", va="bottom", fontsize=8)
        if target:
            ax.axhline(target, color="black", linestyle="--", linewidth=1, label="target")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=7)

    intake = results.get("intake") or {}
    labels, fire, base = [], [], []
    for database in ("sqlite", "postgres"):
        block = intake.get(database) or {}
        for phase in ("single", "batch"):
            entry = block.get(phase) or {}
            labels.append(f"{phase}\n{database}")
            fire.append(entry.get("per_second") if entry.get("ok") else None)
            base.append(_get(block, "healthz", "per_second"))
    bars(axes[0][0], labels, fire, base, "Intake (baseline: GET /healthz)", "activities/s", log=True)
    axes[0][0].axhline(TARGETS["intake_single"], color="black", linestyle="--", linewidth=1)
    axes[0][0].axhline(TARGETS["intake_batch"], color="black", linestyle=":", linewidth=1)

    fan = results.get("fanout") or {}
    labels, fire, base = [], [], []
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            labels.append(f"{webhooks} wh\n{database}")
            fire.append(entry.get("per_second"))
            base.append(fan.get("ceiling_per_second"))
    bars(axes[0][1], labels, fire, base, "Webhook fan-out (baseline: bare aiohttp)", "deliveries/s",
         TARGETS["fanout_sqlite"], log=True)

    lat = results.get("latency") or {}
    qs = ["p50", "p95", "p99"]
    fire = [_get(lat, "firehook", "answer_to_delivery", f"{q}_ms") if _get(lat, "firehook", "ok") else None for q in qs]
    base = [_get(lat, "baseline", "send_to_arrival", f"{q}_ms") for q in qs]
    bars(axes[0][2], qs, fire, base, "Latency at 500/s, answer → delivery", "ms", TARGETS["latency_p99_ms"], log=True)

    scr = results.get("scripts") or {}
    labels, fire, base = [], [], []
    for key, entry in (scr.get("runtime") or {}).items():
        labels.append(f"{key} thread(s)")
        fire.append(entry.get("runs_per_second") if entry.get("ok") else None)
        node_entry = (scr.get("node") or {}).get(key)
        base.append(node_entry.get("runs_per_second") if node_entry else None)
    bars(axes[1][0], labels, fire, base, "Script runs (baseline: node process per run)", "runs/s", TARGETS["scripts"])

    mem = memory_rows(results)
    serve_mem = [(w, r) for w, r, _ in mem if w.startswith("serve")]
    ax = axes[1][1]
    ax.barh([w.replace("serve ", "") for w, _ in serve_mem], [r for _, r in serve_mem], color=fire_c)
    ax.set_title("serve: peak RSS (MiB)", fontsize=10)
    ax.tick_params(axis="y", labelsize=6)

    scaling = results.get("scaling") or {}
    ax = axes[1][2]
    points = sorted((int(w), r) for w, r in (scaling.get("per_second") or {}).items() if r)
    if points:
        ax.plot([w for w, _ in points], [r for _, r in points], marker="o", color=fire_c, label="firehook")
        for w, r in points:
            ax.annotate(f"{r:,.0f}/s", (w, r), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_ylim(0, max(r for _, r in points) * 1.3)
        ax.set_xticks([w for w, _ in points])
        if fan.get("ceiling_per_second"):
            ax.text(0.02, 0.02, f"bare aiohttp ceiling: {fan['ceiling_per_second']:,.0f}/s", transform=ax.transAxes,
                    fontsize=8, color=base_c)
    ax.set_title(f"Scaling: workers on PostgreSQL ({scaling.get('webhooks_per_activity', '?')} webhooks)", fontsize=10)
    ax.set_xlabel("worker processes", fontsize=8)
    ax.set_ylabel("deliveries/s", fontsize=8)

    meta = results["meta"]
    fig.suptitle(f"firehook on {meta['machine']['nproc']} cores, load average {meta['load_average_before'][0]} "
                 f"at start — {meta['started_at']}{' (quick)' if meta['quick'] else ''}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    return True
