"""``python -m bench --self-check``: the harness checks itself, without pytest.

A benchmark that counts failures as throughput is wrong, so this checks the parts that decide
what counts: the receiver refuses bad signatures and missing delivery ids; the closed-loop
counter loses no additions between concurrent clients; percentiles are right; a fan-out run
whose deliveries are refused (a webhook signed with the wrong key) is reported as failed with
no figure, while the same run with the right key passes; profiles parse; the report shows a
failed figure as failed. Exit status 0 when every check passes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import common, fanout, intake, profile, report
from bench.receiver import ReceiverProcess
from firehook import signing

_results: list[tuple[str, bool, str]] = []


def check(name: str, condition: bool, detail: Any = "") -> None:
    _results.append((name, bool(condition), str(detail)[:500]))
    print(f"[{'ok' if condition else 'FAIL'}] {name}{'' if condition else f': {detail}'}", flush=True)


def _percentiles() -> None:
    values = list(range(1, 101))
    check("percentile p50 of 1..100 is 50.5", common.percentile(values, 50) == 50.5, common.percentile(values, 50))
    check("percentile p99 of 1..100 is 99.01", abs(common.percentile(values, 99) - 99.01) < 1e-9,
          common.percentile(values, 99))
    check("percentile of one value", common.percentile([7.0], 99) == 7.0)


async def _closed_loop() -> None:
    async def request(_session: Any, i: int) -> int:
        await asyncio.sleep(0.001 * (i % 3))
        if i % 50 == 49:
            raise RuntimeError("refused")
        return 2

    result = await intake.closed_loop(None, request, 500, 8, 30)  # type: ignore[arg-type]
    check("closed loop adds every answer (no lost updates between clients)",
          result["accepted"] == 2 * 490 and result["requests"] == 490, result)
    check("closed loop counts failures apart", result["failed_requests"] == 10, result["failed_requests"])


async def _receiver() -> None:
    with ReceiverProcess(common.KEY) as receiver:
        body = b'{"id":"x","type":"environment.push"}'
        good = signing.signature_header(body, (common.KEY,))
        bad = signing.signature_header(body, ("another-key",))
        async with aiohttp.ClientSession() as session:
            async def post(headers: dict[str, str]) -> int:
                async with session.post(receiver.url, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            statuses = [
                await post({"X-JWS-Signature": good, "X-Firehook-Delivery": "d1"}),
                await post({"X-JWS-Signature": good, "X-Firehook-Delivery": "d1"}),
                await post({"X-JWS-Signature": bad, "X-Firehook-Delivery": "d2"}),
                await post({"X-Firehook-Delivery": "d3"}),
                await post({"X-JWS-Signature": good}),
            ]
            async with session.post(receiver.url, data=body + b" ",
                                    headers={"X-JWS-Signature": good, "X-Firehook-Delivery": "d4"}) as response:
                statuses.append(response.status)
        stats = await receiver.stats()
        arrivals = await receiver.arrivals()
    check("receiver answers 204, 204, 401, 401, 400, 401", statuses == [204, 204, 401, 401, 400, 401], statuses)
    check("receiver counts only verified deliveries", stats["verified"] == 2 and stats["unique"] == 1
          and stats["duplicates"] == 1 and stats["refused"] == 3 and stats["missing_id"] == 1, stats)
    check("receiver records the arrival of verified ids only", set(arrivals) == {"d1"}, arrivals)


async def _fanout_end_to_end() -> None:
    cfg = common.Config(quick=True, fanout_deliveries=20, fanout_batch_lines=10, fanout_feed_seconds=10,
                        fanout_drain_seconds=30)
    with ReceiverProcess(common.KEY) as receiver:
        good = await fanout.measure("sqlite", 1, cfg, receiver=receiver)
        check("fan-out with the right key: every delivery verified, figure given",
              good["ok"] and good["per_second"] and good["deliveries"] == 20, good.get("problems"))
        bad = await fanout.measure("sqlite", 2, cfg, receiver=receiver, integration_key="not-the-receivers-key")
        check("fan-out with a wrong key: refused deliveries fail the run, no figure",
              not bad["ok"] and bad["per_second"] is None and any("refused" in p for p in bad["problems"]),
              bad.get("problems"))
        results = {"meta": _meta(), "fanout": {"sqlite": {"1": good, "2": bad}, "ceiling_per_second": 1000.0}}
        rows = {r["what"]: r for r in report.rows(results)}
        failed_row = next(r for w, r in rows.items() if "2 webhooks" in w)
        check("the report shows a failed run as failed, not as a figure",
              failed_row["firehook"] is None and failed_row["failed"], failed_row)


def _meta() -> dict[str, Any]:
    return {"started_at": "now", "quick": True, "machine": common.machine(), "load_average_before": [0.0, 0.0, 0.0],
            "load_average_after": [0.0, 0.0, 0.0], "seconds": 1}


def _profile() -> None:
    raw = ("main (a.py:1);loop (a.py:5);work (b.py:9) 30\n"
           "main (a.py:1);loop (a.py:5);idle (c.py:2) 10\n"
           "main (a.py:1);work (b.py:10) 10\n")
    summary = profile.summarise(raw)
    own = {r["function"]: r["samples"] for r in summary["own"]}
    inclusive = {r["function"]: r["samples"] for r in summary["inclusive"]}
    check("profile summary: own time per function, lines merged", own == {"work (b.py)": 40, "idle (c.py)": 10}, own)
    check("profile summary: inclusive time", inclusive["main (a.py)"] == 50 and inclusive["loop (a.py)"] == 40,
          inclusive)


def _report() -> None:
    memory = {"peak_rss_mib": 1, "vm_hwm_mib": 1}
    results = {
        "meta": _meta(),
        "intake": {"sqlite": {"idle_memory": {"rss_mib": 1, "vm_hwm_mib": 1}, "batch_lines": 10,
                              "healthz": {"per_second": 100.0, "ok": True, "memory": memory},
                              "single": {"per_second": 50.0, "ok": True, "memory": memory},
                              "batch": {"per_second": 999.0, "ok": False, "problems": ["boom"],
                                        "memory": memory}}},
    }
    text = report.markdown(results, "x.png")
    check("markdown: a passing figure is shown with its baseline", "| 50.0/s | 100/s" in text, text[:800])
    check("markdown: a failed figure is shown as failed", "failed: boom" in text and "999" not in text, text[:800])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.png"
        drawn = report.plot(results, path)
        check("plot: drawn (matplotlib installed)", drawn and path.stat().st_size > 1000, drawn)


def main() -> int:
    started = time.perf_counter()
    _percentiles()
    _profile()
    _report()
    common.run(_closed_loop())
    common.run(_receiver())
    try:
        common.run(_fanout_end_to_end())
    except Exception as exc:
        check("fan-out end to end ran", False, f"{type(exc).__name__}: {exc}")
    failed = [name for name, ok, _ in _results if not ok]
    print(json.dumps({"checks": len(_results), "failed": failed,
                      "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
