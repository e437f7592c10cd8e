"""Activity-script throughput: runs per second, each in a fresh isolated sandbox.

Each run gets a ~50 KB activity, uses Underscore and makes one ``fetch`` (a JSON POST) to a
loopback HTTP server that runs in a separate process, so the server does not compete with
the runs for the interpreter lock. Measured with one thread and with a pool of as many
threads as there are cores. Prints a JSON report.

    .venv/bin/python -m bench.scripts_bench [--seconds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from firehook import scripts

SCRIPT = """
var commits = _.map(activity.payload.commits || [], function (c) { return c.sha.slice(0, 7); });
var summary = {
  text: activity.text || activity.description,
  type: activity.type,
  project: project.id,
  commits: commits,
  size: _.size(activity.log)
};
var response = fetch(variables.URL, {
  method: 'POST',
  headers: {'Content-Type': 'application/json'},
  body: JSON.stringify(summary)
});
if (!response.ok) { throw new Error('status ' + response.status); }
console.log('sent', response.json().received);
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer each response into one write: headers and body as two small writes on a
    # kept-alive connection meet Nagle's algorithm and delayed ACKs (40 ms stalls).
    wbufsize = 64 * 1024

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        answer = json.dumps({"received": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(port_out: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port_out.send(server.server_address[1])
    server.serve_forever()


def _activity() -> str:
    fixtures = _find_fixtures()
    base: dict[str, Any] = {"type": "environment.push", "payload": {"commits": []}, "log": ""}
    if fixtures is not None:
        base = json.loads((fixtures / "push-complete.json").read_text())
    text = json.dumps(base)
    filler = 50 * 1024 - len(text)
    if filler > 0:
        base["log"] = (base.get("log") or "") + ("x" * filler)
    return json.dumps(base)


def _find_fixtures() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "fixtures" / "upsun"
        if candidate.is_dir():
            return candidate
    return None


def _measure(threads: int, seconds: float, run: Any) -> dict[str, Any]:
    done = 0
    failures = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal done, failures
        while time.perf_counter() < stop:
            outcome = run()
            with lock:
                done += 1
                failures += 0 if outcome.success else 1

    load = os.getloadavg()[0]
    cpu_started = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "threads": threads,
        "runs": done,
        "failures": failures,
        "seconds": round(elapsed, 3),
        "runs_per_second": round(done / elapsed, 1),
        "ms_per_run": round(elapsed * 1000 * threads / max(done, 1), 3),
        # CPU time of this process (the server is another process): what a run costs, whatever
        # else the machine is doing.
        "cpu_ms_per_run": round(cpu * 1000 / max(done, 1), 3),
        "load_average_at_start": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_serve, args=(sender,), daemon=True)
    server.start()
    port = receiver.recv()
    try:
        activity = _activity()
        limits = scripts.ScriptLimits(timeout=10.0)
        variables = {"URL": f"http://127.0.0.1:{port}/hook"}

        def run() -> scripts.ScriptOutcome:
            return scripts.run_script(
                SCRIPT,
                activity_json=activity,
                project={"id": "abcdefgh1234567", "title": "Bench"},
                variables=variables,
                storage=scripts.MemoryStorage(),
                limits=limits,
                log=lambda line: None,
                outbound_allow=("127.0.0.1/32",),
            )

        first = run()
        if not first.success:
            raise SystemExit(f"the benchmark script failed: {first.error}")
        warm = time.perf_counter()
        while time.perf_counter() - warm < 0.5:
            run()
        results = [_measure(1, args.seconds, run)]
        if args.threads > 1:
            results.append(_measure(args.threads, args.seconds, run))
        report = {
            "benchmark": "scripts",
            "activity_bytes": len(activity),
            "underscore": True,
            "fetch_per_run": 1,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "results": results,
            "target_runs_per_second": 400,
        }
        print(json.dumps(report, indent=2))
    finally:
        server.terminate()
        server.join(timeout=5)


if __name__ == "__main__":
    main()
