"""Sampling profiles of firehook's processes under load, with py-spy (``--profile``).

``py-spy record -p PID --subprocesses --gil -f raw`` runs beside a measured phase, on the PIDs
the harness started itself and their descendants (serve's worker child, script pools), and
is stopped with SIGINT when the phase ends (py-spy then writes its collapsed stacks).
``--gil`` keeps only the samples of the thread holding the interpreter lock: what the process
spends its Python time on. The raw file is kept as
``bench/results/profile-<name>-<process>.raw.tmp`` (git-ignored) and summarised as the top
functions by own time and by inclusive time.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TOP = 15
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` as ``func (file.py)``: the line dropped, so that one
    function's samples add up."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    marker = "site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "/src/" in path:
        path = path.split("/src/", 1)[1]
    return f"{match.group('func')} ({path})"


def summarise(raw: str, top: int = TOP) -> dict[str, Any]:
    """Top functions by own samples (leaf frame) and by inclusive samples, from py-spy's
    ``-f raw`` output (one ``frame;frame;…;leaf count`` line per distinct stack)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def rows(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [{"function": name, "samples": n, "percent": round(100.0 * n / total, 1) if total else 0.0}
                for name, n in counter.most_common(top)]

    return {"samples": total, "own": rows(own), "inclusive": rows(inclusive)}


class Profiler:
    """Starts py-spy on PIDs for the duration of a ``with profiler.phase(name, pids)`` block."""

    def __init__(self, out_dir: Path, rate: int = 100) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)  # py-spy writes there before the report does
        self.rate = rate
        self.binary = py_spy()
        self.results: dict[str, Any] = {}

    @property
    def available(self) -> bool:
        return self.binary is not None

    @contextlib.contextmanager
    def phase(self, name: str, pids: dict[str, int]) -> Iterator[None]:
        if self.binary is None:
            self.results[name] = {"error": "py-spy is not installed (pip install py-spy)"}
            yield
            return
        started: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        for proc_name, pid in pids.items():
            path = self.out_dir / f"profile-{name}-{proc_name}.raw.tmp"
            # --subprocesses: serve's worker runs in a child process (and script pools below it).
            cmd = [self.binary, "record", "-p", str(pid), "--subprocesses", "--gil", "-f", "raw",
                   "-r", str(self.rate), "-o", str(path)]
            started.append((proc_name, path, subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                              stderr=subprocess.PIPE)))
        try:
            yield
        finally:
            summaries: dict[str, Any] = {}
            for proc_name, path, proc in started:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                try:
                    _, err = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                if path.exists():
                    summaries[proc_name] = summarise(path.read_text(errors="replace"))
                    summaries[proc_name]["raw"] = str(path)
                else:
                    summaries[proc_name] = {"error": (err or b"").decode(errors="replace")[-500:]}
            self.results[name] = summaries
