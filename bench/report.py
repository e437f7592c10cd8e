"""The report of ``python -m bench``: the table of figures and targets, the Markdown, the plot.

Every firehook figure is put next to the baseline measured in the same run, with the CPU
each item cost beside the rate. A figure whose checks failed is shown as "failed" with the
reason — never as throughput. The CPU and memory tables are in ``bench/tables.py``, the
targets in ``bench/targets.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.tables import cpu_rows, cpu_table, memory_rows, memory_table
from bench.targets import (
    FANOUT_TARGET_WEBHOOKS,
    TARGETS,
    at_least,
    at_most,
    below,
    dig,
    fmt,
    met_text,
    ms_text,
    passed,
    pct,
    why,
)

__all__ = ["TARGETS", "cpu_rows", "cpu_table", "markdown", "memory_rows", "memory_table", "plot", "rows", "table"]


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: what, firehook (and its CPU per item), baseline (and its CPU per
    item), ratio, target, met (None: no target, or it cannot be judged without the baseline)."""
    out: list[dict[str, Any]] = []

    def add(what: str, figure: Any, baseline: Any, baseline_what: str, target: str = "", met: bool | None = None,
            unit: str = "/s", entry: Any = None, cpu: Any = None, baseline_cpu: Any = None, per: str = "") -> None:
        ok = entry is None or passed(entry)
        ratio = None
        if isinstance(figure, (int, float)) and isinstance(baseline, (int, float)) and baseline:
            ratio = figure / baseline
        out.append({
            "what": what, "firehook": figure if ok else None, "unit": unit, "cpu_ms": cpu if ok else None,
            "per": per, "baseline": baseline, "baseline_cpu_ms": baseline_cpu, "baseline_what": baseline_what,
            "ratio": round(ratio, 3) if ratio is not None and ok else None, "target": target,
            "met": met if ok else (False if target else None), "failed": None if ok else why(entry),
        })

    _intake_rows(results, add)
    _fanout_rows(results, add)
    _latency_rows(results, add)
    _script_rows(results, add)
    _dbwork_rows(results, add)
    _isolation_rows(results, add)
    _memory_target_rows(results, add)
    ceiling = dig(results, "fanout", "ceiling_per_second")
    scaling = results.get("scaling") or {}
    for workers, entry in (scaling.get("points") or {}).items():
        add(f"scaling: fan-out {scaling.get('webhooks_per_activity')} webhooks, postgres, {workers} worker(s)",
            dig(entry, "per_second"), ceiling, "bare aiohttp → same receiver", entry=entry,
            cpu=dig(entry, "cpu", "firehook", "ms_per_delivery"), per="delivery")
    return out


def _bare(results: dict[str, Any]) -> tuple[Any, Any]:
    bare = dig(results, "intake", "bare_fastapi") or {}
    return (bare.get("per_second"), bare.get("cpu_ms_per_request")) if bare.get("ok") else (None, None)


def _intake_rows(results: dict[str, Any], add: Any) -> None:
    intake = results.get("intake") or {}
    bare_rate, bare_cpu = _bare(results)
    measured = dig(results, "intake", "bare_fastapi") is not None
    bare_what = ("bare FastAPI route, same client" if bare_rate is not None
                 else f"bare FastAPI route: {'failed' if measured else 'not measured'}")
    for database in ("sqlite", "postgres"):
        block = intake.get(database)
        if not block:
            continue
        if "error" in block:
            add(f"intake, {database}", None, None, "", "measured", entry=block)
            continue
        healthz, single, batch = (block.get(k) or {} for k in ("healthz", "single", "batch"))
        add(f"GET /healthz of serve, {database} (8 clients)", dig(healthz, "per_second"), bare_rate, bare_what,
            entry=healthz, cpu=dig(healthz, "cpu", "serve", "ms_per_item"), baseline_cpu=bare_cpu, per="request")
        rate = dig(single, "per_second")
        cpu = dig(single, "cpu", "serve", "ms_per_item")
        if database == "sqlite":
            ratio = rate / bare_rate if rate is not None and bare_rate else None
            add(f"intake single 20 KB, {database} (8 clients)", rate, bare_rate, bare_what,
                f"≥ {pct(TARGETS['intake_single_ratio'])} of the bare route",
                at_least(ratio, TARGETS["intake_single_ratio"]), entry=single, cpu=cpu, baseline_cpu=bare_cpu,
                per="request")
            add(f"intake single, {database}: server CPU per request (serve + descendants)", cpu, bare_cpu,
                "bare FastAPI route's process", f"≤ {TARGETS['intake_single_cpu_ms']:.2f} ms",
                at_most(cpu, TARGETS["intake_single_cpu_ms"]), unit=" ms CPU", entry=single)
        else:
            add(f"intake single 20 KB, {database} (8 clients)", rate, bare_rate, bare_what,
                f"≥ {TARGETS['intake_postgres_single']:,.0f}/s", at_least(rate, TARGETS["intake_postgres_single"]),
                entry=single, cpu=cpu, baseline_cpu=bare_cpu, per="request")
        cpu = dig(batch, "cpu", "serve", "ms_per_item")
        target, met = "", None
        if database == "sqlite":
            target = f"≤ {TARGETS['intake_batch_cpu_ms']:.2f} ms server CPU per document"
            met = at_most(cpu, TARGETS["intake_batch_cpu_ms"])
        add(f"intake batch 20 KB × {block.get('batch_lines')}, {database} (documents/s)", dig(batch, "per_second"),
            dig(healthz, "per_second"), "GET /healthz of serve (requests/s)", target, met, entry=batch, cpu=cpu,
            baseline_cpu=dig(healthz, "cpu", "serve", "ms_per_item"), per="document")


def _ceiling_cpu(fan: dict[str, Any]) -> Any:
    values = [c["client_cpu_us_per_delivery"] / 1000 for c in (fan.get("ceiling_before"), fan.get("ceiling_after"))
              if passed(c) and c.get("client_cpu_us_per_delivery") is not None]
    return round(sum(values) / len(values), 4) if values else None


def _fanout_rows(results: dict[str, Any], add: Any) -> None:
    fan = results.get("fanout") or {}
    ceiling = fan.get("ceiling_per_second")
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            rate = dig(entry, "per_second")
            where = "serve" if database == "sqlite" else "serve --no-worker + 1 worker"
            target, met = "", None
            if webhooks == FANOUT_TARGET_WEBHOOKS:
                share = TARGETS["fanout_sqlite_ratio" if database == "sqlite" else "fanout_postgres_ratio"]
                target = f"≥ {pct(share)} of the ceiling"
                met = at_least(rate / ceiling if rate is not None and ceiling else None, share)
            add(f"fan-out, {webhooks} webhook{'s' if webhooks != '1' else ''}/activity, {database} ({where})",
                rate, ceiling, "bare aiohttp → same receiver", target, met, entry=entry,
                cpu=dig(entry, "cpu", "firehook", "ms_per_delivery"), baseline_cpu=_ceiling_cpu(fan), per="delivery")


def _latency_rows(results: dict[str, Any], add: Any) -> None:
    lat = results.get("latency")
    if not lat:
        return
    fire = lat.get("firehook") or {}
    base = lat.get("baseline") or {}
    for q in ("p50", "p95", "p99"):
        figure = dig(fire, "answer_to_delivery", f"{q}_ms")
        baseline = dig(base, "send_to_arrival", f"{q}_ms")
        target, met, cpu = "", None, None
        if q == "p99":
            target = f"≤ {TARGETS['latency_p99_ms']:.0f} ms"
            met = at_most(figure, TARGETS["latency_p99_ms"])
            cpu = dig(fire, "cpu", "serve", "ms_per_activity")
        add(f"latency {q}, answer → delivery at {fire.get('offered_per_second', 500):.0f}/s offered, sqlite",
            figure, baseline if passed(base) else None, "bare aiohttp → receiver, same open loop", target, met,
            unit=" ms", entry=fire, cpu=cpu, per="activity" if cpu is not None else "")


def _script_rows(results: dict[str, Any], add: Any) -> None:
    scr = results.get("scripts") or {}
    runtime = scr.get("runtime") or {}
    node = scr.get("node") or {}
    for key, entry in runtime.items():
        node_entry = node.get(key) if node else None
        good_node = node_entry if passed(node_entry) else None
        threads = int(key)
        add(f"script runs, {threads} thread{'s' if threads > 1 else ''} (runtime in process)",
            entry.get("runs_per_second"), dig(good_node, "runs_per_second"),
            f"new Node.js process per run, {threads} at a time" if node else "Node.js not installed",
            entry=entry, cpu=entry.get("cpu_ms_per_run"), baseline_cpu=dig(good_node, "cpu_ms_per_run"), per="run")
    one = runtime.get("1")
    if one:
        cpu = one.get("cpu_ms_per_run")
        add("script runtime alone, CPU per run (in process, 1 thread)", cpu,
            dig(node.get("1") if passed(node.get("1")) else None, "cpu_ms_per_run"), "a Node.js process per run",
            f"≤ {TARGETS['runtime_cpu_ms']:.2f} ms", at_most(cpu, TARGETS["runtime_cpu_ms"]), unit=" ms CPU",
            entry=one)
    serve = scr.get("serve")
    if serve:
        rate = dig(serve, "runs_per_second")
        widest = runtime.get(max(runtime, key=int)) if runtime else None
        add("script runs end to end through serve, sqlite", rate, dig(widest, "runs_per_second"),
            f"the runtime in process, {max(runtime, key=int)} thread(s)" if runtime else "",
            f"≥ {TARGETS['scripts_serve']:,.0f}/s", at_least(rate, TARGETS["scripts_serve"]), entry=serve,
            cpu=dig(serve, "cpu", "serve", "ms_per_run"), baseline_cpu=dig(widest, "cpu_ms_per_run"), per="run")


def _dbwork_rows(results: dict[str, Any], add: Any) -> None:
    entry = results.get("dbwork")
    if not entry:
        return
    figure = entry.get("ms_per_run")
    add("database work per script run, sqlite (real worker, one storage.set, engine stubbed)", figure,
        dig(entry, "floor", "ms_per_run"), "raw sqlite3, the same writes, one thread",
        f"≤ {TARGETS['dbwork_cpu_ms']:.2f} ms", at_most(figure, TARGETS["dbwork_cpu_ms"]), unit=" ms CPU",
        entry=entry)


#: The isolation scenario's phases: (key, what runs away in project A, what project B sends).
ISOLATION_PHASES = (("runs", "2 runaways of A run", "run"), ("dry_runs", "2 runaway dry runs of A are in flight",
                                                               "dry run"))


ISOLATION_BOUNDS = {"count": "all of them sent", "time": "ended by the runaways' time limit",
                    "error": "ended by a failed one"}


def _isolation_rows(results: dict[str, Any], add: Any) -> None:
    iso = results.get("isolation")
    if not iso:
        return
    run_target = f"< {TARGETS['isolation_run_ms'] / 1000:g} s"
    healthz_target = f"< {TARGETS['isolation_healthz_p99_ms']:.0f} ms"
    if "error" in iso:
        add("isolation: trivial runs of project B beside 2 runaways of A", None, None, "", run_target, entry=iso)
        return
    base = iso.get("baseline") or {}
    good_base = base if passed(base) else None
    rate = iso.get("healthz_per_second", 100)
    for key, runaways, noun in ISOLATION_PHASES:
        entry = iso.get(key)
        if not entry:
            continue
        n = dig(entry, "b", "n")
        for q in ("max", "p50"):
            figure = dig(entry, "b", f"{q}_ms")
            target, met = ("", None) if q == "p50" else (run_target, below(figure, TARGETS["isolation_run_ms"]))
            add(f"isolation: trivial {noun} of project B while {runaways}, {q} of {n or '—'}", figure,
                dig(good_base, key, f"{q}_ms"), f"project B's {noun}s with nothing else running", target, met,
                unit=" ms", entry=entry)
        figure = dig(entry, "healthz", "p99_ms")
        add(f"isolation: GET /healthz p99 while {runaways} ({rate:g}/s offered)", figure,
            dig(good_base, "healthz", "p99_ms"), "GET /healthz with nothing running", healthz_target,
            below(figure, TARGETS["isolation_healthz_p99_ms"]), unit=" ms", entry=entry)


def isolation_md(iso: dict[str, Any]) -> list[str]:
    """The isolation scenario's details: each phase's figures, CPU, children and load."""
    out = ["## Isolation (issue 12)", "",
           f"`serve` on SQLite, {dig(iso, 'settings', 'workers')} script processes per pool, script time limit "
           f"{dig(iso, 'settings', 'script_timeout'):g} s; `GET /healthz` open loop at "
           f"{iso.get('healthz_per_second', 100):g}/s from a process of its own in every phase.", ""]
    base = iso.get("baseline") or {}

    def ms(block: Any, *quantiles: str) -> str:
        if not block:
            return "—"
        return " / ".join(fmt(block.get(f"{q}_ms"), " ms") for q in quantiles) + f" (n {block.get('n')})"

    if base:
        out.append(f"- baseline, nothing else running: `/healthz` p50 / p95 / p99 "
                   f"{ms(base.get('healthz'), 'p50', 'p95', 'p99')}; B's runs p50 / max "
                   f"{ms(base.get('runs'), 'p50', 'max')}, dry runs {ms(base.get('dry_runs'), 'p50', 'max')}; "
                   f"load {base.get('load_average')}"
                   + ("" if passed(base) else f"; **failed**: {why(base)}"))
    for key, runaways, noun in ISOLATION_PHASES:
        entry = iso.get(key)
        if not entry:
            continue
        if "error" in entry:
            out.append(f"- while {runaways}: **failed**: {why(entry)}")
            continue
        cpu = dig(entry, "cpu", "serve") or {}
        children = entry.get("script_children") or {}
        wait = dig(entry, "b_timings", "wait", "p50_ms")
        out.append(
            f"- while {runaways}: B's {noun}s p50 / max {ms(entry.get('b'), 'p50', 'max')} "
            f"({ISOLATION_BOUNDS.get(entry.get('bound'), entry.get('bound'))}; each: "
            f"{', '.join(fmt(x, ' ms') for x in entry.get('b_each_ms') or [])})"
            + (f", of which waiting for a script process (`timings.wait`, p50) {fmt(wait, ' ms')}" if wait else "")
            + f"; `/healthz` p50 / p95 / p99 {ms(entry.get('healthz'), 'p50', 'p95', 'p99')} (the probe's own "
            f"send lag p99 {fmt(dig(entry, 'healthz', 'send_lag_p99_ms'), ' ms')}); `serve` tree "
            f"{cpu.get('cores_busy', '—')} cores busy; script processes started meanwhile "
            f"{children.get('started_during', '—')}; load {entry.get('load_average')}"
            + ("" if passed(entry) else f"; **failed**: {why(entry)}"))
    return out + [""]


def _memory_target_rows(results: dict[str, Any], add: Any) -> None:
    bare = dig(results, "intake", "bare_fastapi", "idle_memory", "rss_mib")
    for database in ("sqlite", "postgres"):
        idle = dig(results, "intake", database, "idle_memory")
        if not idle:
            continue
        rss = idle.get("rss_mib")
        count = f" ({idle['processes']})" if idle.get("processes") is not None else ""
        add(f"serve idle, all its processes{count}, {database}: summed RSS", rss, bare,
            "bare FastAPI route's process, idle", f"≤ {TARGETS['idle_rss_mib']:.0f} MiB",
            at_most(rss, TARGETS["idle_rss_mib"]), unit=" MiB")


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | firehook | CPU per item | baseline (same run) | baseline CPU per item | firehook / baseline "
             "| target | met |", "|---|---:|---:|---|---:|---:|---|---|"]
    for row in rows(results):
        unit = row["unit"]
        figure = f"failed: {row['failed']}" if row["failed"] else fmt(row["firehook"], unit)
        cpu = f"{ms_text(row['cpu_ms'])} ms/{row['per']}" if row["cpu_ms"] is not None else "—"
        base_cpu = f"{ms_text(row['baseline_cpu_ms'])} ms" if row["baseline_cpu_ms"] is not None else "—"
        baseline = fmt(row["baseline"], unit) + (f" ({row['baseline_what']})" if row["baseline_what"] else "")
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "—"
        lines.append(f"| {row['what']} | {figure} | {cpu} | {baseline} | {base_cpu} | {ratio} | {row['target']} | "
                     f"{met_text(row['met'])} |")
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
                "is a steadier guide."]
    out += ["", "Targets: issue 11 (data path) and issue 12 (scripts). CPU per item is the CPU time of the "
            "firehook processes (each server with all its descendants) during the phase, divided by the items.",
            "", table(results), ""]
    if plot_name:
        out += [f"![figures]({plot_name})", ""]
    out += ["## CPU time per item (ms)", "",
            "CPU seconds each process tree used during the phase (user + system, the descendants included, those "
            "that exited through their parent's cutime/cstime), divided by the activities accepted, the "
            "deliveries made or the runs finished: what the work costs, much less sensitive to a busy machine "
            "than the rates. Client: the harness's own CPU (the load generator).", "",
            cpu_table(results), ""]
    out += ["## Memory of the firehook processes", "",
            "Each server with all its descendants: VmRSS summed over the tree (shared pages counted in every "
            "process: an upper bound), sampled every 50 ms, the peak kept; VmHWM summed at the end.", "",
            memory_table(results), ""]
    if results.get("isolation"):
        out += isolation_md(results["isolation"])
    scaling = results.get("scaling")
    if scaling:
        out += ["## Scaling", "",
                f"Fan-out, {scaling['webhooks_per_activity']} webhooks per activity, PostgreSQL: "
                + ", ".join(f"{w} worker(s): {fmt(r)}" for w, r in scaling["per_second"].items())
                + ". Adding workers stops paying (< 10 % gain) after: "
                + f"{scaling.get('flattens_at') or 'not within the range'}.",
                ""]
        cpu_lines = []
        for w, c in ((w, dig(p, "cpu")) for w, p in (scaling.get("points") or {}).items()):
            if c:
                cpu_lines.append(f"- {w} worker(s): cores busy — "
                                 + ", ".join(f"{name} {v['cores_busy']}" for name, v in c.items()))
        if cpu_lines:
            out += ["CPU used during each point (cores busy = CPU seconds / wall seconds):", "", *cpu_lines, ""]
    problems = [f"- {r['what']}: {r['failed']}" for r in rows(results) if r["failed"]]
    if problems:
        out += ["## Failed checks", "", *problems, ""]
    leftovers = meta.get("leftover_processes") or []
    if leftovers:
        out += ["## Processes left running", "", *(f"- {x}" for x in leftovers), ""]
    if results.get("profiles"):
        out += ["## Profiles (py-spy, --gil)", "", profiles_md(results["profiles"]), ""]
    return "\n".join(out) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """The figures beside their baselines as a PNG; False when matplotlib is absent."""
    from bench import plot as plot_mod

    return plot_mod.draw(results, path)
