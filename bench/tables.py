"""The CPU-per-item and memory tables of the report: each server with all its descendants."""

from __future__ import annotations

from typing import Any

from bench.targets import TARGETS, at_most, dig, met_text, ms_text, passed


def memory_rows(results: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(what, peak summed RSS MiB, summed VmHWM MiB, processes) per load; each firehook
    server counted with all its descendants."""
    out: list[tuple[str, Any, Any, Any]] = []

    def idle_row(what: str, idle: Any) -> None:
        if idle:
            notes = [f"serve's own RSS {idle['own_rss_mib']}"] if idle.get("own_rss_mib") is not None else []
            if idle.get("pss_mib") is not None:
                notes.append(f"PSS summed {idle['pss_mib']}")
            out.append((what + (f" ({', '.join(notes)})" if notes else ""), idle["rss_mib"],
                        idle["vm_hwm_mib"], idle.get("processes")))

    bare = dig(results, "intake", "bare_fastapi", "idle_memory")
    if bare:
        out.append(("bare FastAPI route, idle (baseline)", bare["rss_mib"], bare["vm_hwm_mib"], bare.get("processes")))
    intake = results.get("intake") or {}
    for database in ("sqlite", "postgres"):
        block = intake.get(database) or {}
        idle_row(f"serve idle, {database}", block.get("idle_memory"))
        for phase in ("healthz", "single", "batch"):
            mem = dig(block, phase, "memory")
            if mem:
                out.append((f"serve under intake {phase}, {database}", mem["peak_rss_mib"], mem["vm_hwm_mib"],
                            mem.get("processes")))
    fan = results.get("fanout") or {}
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            for proc, mem in (dig(entry, "memory") or {}).items():
                out.append((f"{proc} under fan-out {webhooks} webhook(s), {database}", mem["peak_rss_mib"],
                            mem["vm_hwm_mib"], mem.get("processes")))
    mem = dig(results, "latency", "firehook", "memory", "serve")
    if mem:
        out.append(("serve under latency load (500/s, 1 webhook), sqlite", mem["peak_rss_mib"], mem["vm_hwm_mib"],
                    mem.get("processes")))
    serve = dig(results, "scripts", "serve") or {}
    idle_row("serve idle with a script integration, sqlite", serve.get("memory_idle"))
    mem = dig(serve, "memory", "serve")
    if mem:
        out.append(("serve under script runs, sqlite", mem["peak_rss_mib"], mem["vm_hwm_mib"], mem.get("processes")))
    for key, what in (("runs", "2 runaway runs of project A and B's runs"),
                      ("dry_runs", "2 runaway dry runs of project A and B's dry runs")):
        mem = dig(results, "isolation", key, "memory", "serve")
        if mem:
            out.append((f"serve under {what}, sqlite (2 script processes per pool)", mem["peak_rss_mib"],
                        mem["vm_hwm_mib"], mem.get("processes")))
    for workers, entry in (dig(results, "scaling", "points") or {}).items():
        if entry.get("reused_from"):
            continue
        for proc, mem in (dig(entry, "memory") or {}).items():
            out.append((f"{proc} under scaling run, {workers} worker(s), postgres", mem["peak_rss_mib"],
                        mem["vm_hwm_mib"], mem.get("processes")))
    return out


def cpu_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """CPU time per item (ms) per process: what the work costs, much less sensitive to the
    machine's load than the rates are. ``server`` is the measured server with all its
    descendants (serve and workers summed, with the split given beside)."""
    out: list[dict[str, Any]] = []

    def add(load: str, per: str, server: Any, *, detail: str = "", postgres: Any = None, receiver: Any = None,
            client: Any = None, target: str = "", met: bool | None = None) -> None:
        out.append({"load": load, "per": per, "server": server, "detail": detail, "postgres": postgres,
                    "receiver": receiver, "client": client, "target": target, "met": met})

    intake = results.get("intake") or {}
    bare = intake.get("bare_fastapi") or {}
    for when in ("before", "after"):
        entry = bare.get(when) or {}
        if passed(entry):
            add(f"bare FastAPI route ({when}), its uvicorn process", "request",
                dig(entry, "cpu", "bare", "ms_per_item"), client=_client_per_item(entry))
    for database in ("sqlite", "postgres"):
        for phase, per in (("healthz", "request"), ("single", "activity"), ("batch", "activity")):
            entry = dig(intake, database, phase) or {}
            if not entry.get("cpu"):
                continue
            server = dig(entry, "cpu", "serve", "ms_per_item")
            target, met = "", None
            if database == "sqlite" and phase in ("single", "batch"):
                limit = TARGETS["intake_single_cpu_ms" if phase == "single" else "intake_batch_cpu_ms"]
                target, met = f"≤ {limit:.2f}", at_most(server, limit) if passed(entry) else False
            add(f"{'GET /healthz' if phase == 'healthz' else 'intake ' + phase}, {database}", per, server,
                detail=_split(entry.get("cpu"), "ms_per_item", ("serve",)),
                postgres=dig(entry, "cpu", "postgres", "ms_per_item"), client=_client_per_item(entry),
                target=target, met=met)
    fan = results.get("fanout") or {}
    for key in ("ceiling_before", "ceiling_after"):
        c = fan.get(key)
        if passed(c) and c.get("receiver_cpu_us_per_delivery") is not None:
            add(f"bare aiohttp ceiling ({key.split('_')[1]})", "delivery", None,
                receiver=c["receiver_cpu_us_per_delivery"] / 1000, client=c["client_cpu_us_per_delivery"] / 1000)
    for database in ("sqlite", "postgres"):
        for webhooks, entry in (fan.get(database) or {}).items():
            cpu = entry.get("cpu") or {}
            if cpu:
                roots = tuple(k for k in cpu if k == "serve" or k.startswith("worker"))
                add(f"fan-out {webhooks} webhook(s), {database}", "delivery", dig(cpu, "firehook", "ms_per_delivery"),
                    detail=_split(cpu, "ms_per_delivery", roots), postgres=dig(cpu, "postgres", "ms_per_delivery"),
                    receiver=dig(cpu, "receiver", "ms_per_delivery"), client=dig(cpu, "harness", "ms_per_delivery"))
    lat = dig(results, "latency", "firehook", "cpu", "serve")
    if lat:
        add("latency, 500/s offered, 1 webhook, sqlite (intake and delivery)", "activity", lat.get("ms_per_activity"),
            detail=_split({"serve": lat}, "ms_per_activity", ("serve",)))
    scr = results.get("scripts") or {}
    for key, entry in (scr.get("runtime") or {}).items():
        target, met = "", None
        if key == "1":
            target = f"≤ {TARGETS['runtime_cpu_ms']:.2f}"
            met = at_most(entry.get("cpu_ms_per_run"), TARGETS["runtime_cpu_ms"]) if passed(entry) else False
        add(f"script runtime in process, {key} thread(s)", "run", entry.get("cpu_ms_per_run"), target=target, met=met)
    for key, entry in (scr.get("node") or {}).items():
        if passed(entry):
            add(f"Node.js, a process per run, {key} at a time (baseline)", "run", entry.get("cpu_ms_per_run"))
    serve = scr.get("serve") or {}
    if serve.get("cpu"):
        add("scripts through serve, sqlite", "run", dig(serve, "cpu", "serve", "ms_per_run"),
            detail=_split(serve["cpu"], "ms_per_run", ("serve",)))
    db = results.get("dbwork") or {}
    if db.get("worker") and "error" not in db["worker"]:
        worker = db["worker"]
        add("database work of a script run: firehook worker process, engine stubbed", "run",
            worker.get("ms_per_run") if passed(db) else None,
            detail=f"storage.set {ms_text(worker.get('storage_ms_per_run'))}, the rest "
                   f"{ms_text(_minus(worker.get('ms_per_run'), worker.get('storage_ms_per_run')))}",
            target=f"≤ {TARGETS['dbwork_cpu_ms']:.2f}",
            met=at_most(worker.get("ms_per_run"), TARGETS["dbwork_cpu_ms"]) if passed(db) else False)
    if dig(db, "floor", "ms_per_run") is not None:
        add("database work of a script run: raw sqlite3 floor, same writes (baseline)", "run",
            db["floor"]["ms_per_run"])
    for workers, entry in (dig(results, "scaling", "points") or {}).items():
        cpu = entry.get("cpu") or {}
        if cpu and not entry.get("reused_from"):
            roots = tuple(k for k in cpu if k == "serve" or k.startswith("worker"))
            add(f"scaling, {workers} worker(s), postgres", "delivery", dig(cpu, "firehook", "ms_per_delivery"),
                detail=_split(cpu, "ms_per_delivery", roots), postgres=dig(cpu, "postgres", "ms_per_delivery"),
                receiver=dig(cpu, "receiver", "ms_per_delivery"), client=dig(cpu, "harness", "ms_per_delivery"))
    return out


def _minus(a: Any, b: Any) -> Any:
    return None if a is None or b is None else a - b


def _client_per_item(entry: dict[str, Any]) -> Any:
    client = entry.get("client_cpu_us_per_request")
    if not client or not entry.get("accepted"):
        return None
    return client / 1000 / (entry["accepted"] / max(entry["requests"], 1))


def _split(cpu: Any, key: str, roots: tuple[str, ...]) -> str:
    """"serve 0.10 (own 0.04, 2 descendants 0.06)" for each root of a CPU measurement."""
    parts = []
    for name in roots:
        usage = (cpu or {}).get(name) or {}
        total, own = usage.get(key), usage.get("own_cpu_seconds")
        if total is None:
            continue
        text = f"{name} {ms_text(total)}"
        descendants = usage.get("descendants_cpu_seconds") or 0
        if own is not None and usage.get("cpu_seconds") and (usage.get("processes", 1) > 1 or descendants > 0):
            share = own / usage["cpu_seconds"]
            text += f" (own {ms_text(total * share)}, {max(0, usage.get('processes', 1) - 1)} descendant(s) " \
                    f"{ms_text(total * (1 - share))}"
            roles = usage.get("by_role") or {}
            if len(roles) > 1 or "script processes" in roles:
                # the descendants by what they are: e.g. the worker and the script processes
                text += ": " + ", ".join(f"{role} {ms_text(total * seconds / usage['cpu_seconds'])}"
                                         for role, seconds in sorted(roles.items()))
            text += ")"
        parts.append(text)
    return "; ".join(parts)


def cpu_table(results: dict[str, Any]) -> str:
    lines = ["| load | per | server (+ descendants) | split | postgres | receiver | client | target | met |",
             "|---|---|---:|---|---:|---:|---:|---|---|"]
    for r in cpu_rows(results):
        lines.append(f"| {r['load']} | {r['per']} | {ms_text(r['server'])} | {r['detail']} | "
                     f"{ms_text(r['postgres'])} | {ms_text(r['receiver'])} | {ms_text(r['client'])} | "
                     f"{r['target']} | {met_text(r['met'])} |")
    return "\n".join(lines)


def memory_table(results: dict[str, Any]) -> str:
    lines = ["| process and load | peak summed VmRSS (MiB) | summed VmHWM at the end (MiB) | processes |",
             "|---|---:|---:|---:|"]
    for what, rss, hwm, count in memory_rows(results):
        lines.append(f"| {what} | {rss} | {hwm} | {count if count is not None else '—'} |")
    return "\n".join(lines)


