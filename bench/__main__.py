"""``python -m bench`` (``make bench``): measure firehook on this machine.

    python -m bench                    # everything; writes bench/results/latest.{json,md,png}
    python -m bench --quick            # smoke run, small counts; writes bench/results/quick.*.tmp
    python -m bench --only fanout,latency
    python -m bench --profile          # py-spy on the firehook processes during each phase
    python -m bench --self-check       # checks the harness itself (no pytest), ~1 minute

Scenarios: intake, fanout, latency, scripts, dbwork, isolation, scaling (memory is sampled during
all of them; CPU and memory count each firehook server with all its descendant processes).
Each one is bounded in count and in time and sends traffic to 127.0.0.1 only; see
docs/performance.md for the method. Runs that are not the full set (``--quick``, ``--only``)
write ``*.tmp`` files (git-ignored), so that only a full run replaces the committed report.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, report

SCENARIOS = ("intake", "fanout", "latency", "scripts", "dbwork", "isolation", "scaling")
RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = common.Config.quick_config() if args.quick else common.Config()
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    profiler = None
    if args.profile:
        from bench.profile import Profiler

        profiler = Profiler(args.out)
        if not profiler.available:
            print("py-spy is not installed: no profiles (pip install py-spy)", file=sys.stderr)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": cfg.quick,
            "scenarios": chosen,
            "profiled": bool(args.profile),
            "machine": common.machine(),
            "load_average_before": common.load_average(),
            "commit": _commit(),
            "client_loop": common.loop_name(),
            "config": {k: v for k, v in cfg.__dict__.items()},
        }
    }
    for name in chosen:
        t0 = time.perf_counter()
        load = common.load_average()
        results["meta"].setdefault("load_average_by_scenario", {})[name] = load
        print(f"[bench] {name} … (load average {load[0]})", file=sys.stderr, flush=True)
        try:
            if name == "intake":
                from bench import intake

                results["intake"] = intake.run(cfg, profiler)
            elif name == "fanout":
                from bench import fanout

                results["fanout"] = fanout.run(cfg, profiler)
            elif name == "latency":
                from bench import latency

                results["latency"] = latency.run(cfg, profiler)
            elif name == "scripts":
                from bench import scripts

                results["scripts"] = scripts.run(cfg, profiler)
            elif name == "dbwork":
                from bench import dbwork

                results["dbwork"] = dbwork.run(cfg, profiler)
            elif name == "isolation":
                from bench import isolation

                results["isolation"] = isolation.run(cfg, profiler)
            elif name == "scaling":
                from bench import scaling

                known = {}
                same = (results.get("fanout") or {}).get("postgres", {}).get(str(cfg.scaling_webhooks))
                if same:
                    known[1] = same
                results["scaling"] = scaling.run(cfg, profiler, known)
        except Exception as exc:  # one scenario failing must not lose the others' figures
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "problems": [str(exc)]}
        print(f"[bench] {name} took {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_after"] = common.load_average()
    results["meta"]["leftover_processes"] = list(common.LEFTOVERS)
    if profiler is not None:
        results["profiles"] = profiler.results
    results["rows"] = report.rows(results)
    return results


def write(results: dict[str, Any], out: Path, name: str, suffix: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json{suffix}"
    md_path = out / f"{name}.md{suffix}"
    png_path = out / f"{name}.png{suffix}"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    plotted = report.plot(results, png_path)
    md_path.write_text(report.markdown(results, png_path.name if plotted else None))
    return [json_path, md_path] + ([png_path] if plotted else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every scenario")
    parser.add_argument("--only", help=f"comma-separated scenarios among {', '.join(SCENARIOS)}")
    parser.add_argument("--profile", action="store_true", help="py-spy --gil on the firehook processes per phase")
    parser.add_argument("--self-check", action="store_true", help="check the harness itself, then exit")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results (bench/results)")
    args = parser.parse_args(argv)
    if args.self_check:
        from bench import selfcheck

        return selfcheck.main()
    results = run(args)
    partial = args.quick or args.only or args.profile
    name = "quick" if args.quick else ("partial" if partial else "latest")
    paths = write(results, args.out, name, ".tmp" if partial else "")
    print(report.table(results))
    print()
    print("\n".join(f"wrote {p}" for p in paths))
    for leftover in results["meta"]["leftover_processes"]:
        print(f"warning: {leftover}", file=sys.stderr)
    failed = [r for r in results["rows"] if r["failed"]]
    if failed:
        print(f"{len(failed)} figure(s) failed their checks: see the report", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
