"""Process trees from ``/proc``: the CPU and memory of a process **and all its descendants**.

``firehook serve`` runs its worker in a child process, and script pools are children again;
the benchmark counts them all, whatever the tree looks like:

- descendants are found through ``/proc/<pid>/task/<tid>/children``, recursively (bounded);
- CPU of a tree at an instant = the sum, over its live processes, of user + system time of
  the process itself plus that of the children it has reaped (``cutime``/``cstime``). A
  descendant that exits and is reaped moves its time into its parent's ``cutime``, so the
  difference of two such sums counts every process that lived in the tree in between once,
  including those born and gone within the phase. (Not counted: a process whose parent died
  before it and that was re-parented out of the tree; the memory sampler reports those.)
- memory of a tree = the sum of VmRSS of its processes (shared pages counted in each: an
  upper bound), sampled during the phase; PSS (``smaps_rollup``) is reported beside the idle
  figure, where shared pages are split between the processes that share them.

Processes are only ever read here, never signalled, except :func:`kill_leftovers`, which kills
the descendants the harness's own processes left behind, each checked by PID *and* start time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_PROCESSES = 512  # per tree: a bound on the walk, far above any firehook tree


@dataclasses.dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    comm: str
    own: float  # user + system seconds of the process itself (all its threads)
    reaped: float  # user + system seconds of the children it has waited for
    start: int  # start time in clock ticks since boot: with the PID, the identity of a process


def stat(pid: int) -> Stat | None:
    """``/proc/<pid>/stat``, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    fields = tail.split()  # fields[0] is field 3 of proc(5), "state"
    try:
        return Stat(pid=pid, ppid=int(fields[1]), comm=head.partition("(")[2],
                    own=(int(fields[11]) + int(fields[12])) / CLK_TCK,
                    reaped=(int(fields[13]) + int(fields[14])) / CLK_TCK, start=int(fields[19]))
    except (IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """The direct children of a process (every thread's), from ``task/*/children``."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            out.extend(int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants, parents before children."""
    seen = [pid]
    index = 0
    while index < len(seen) and len(seen) < MAX_PROCESSES:
        for child in children(seen[index]):
            if child not in seen:
                seen.append(child)
        index += 1
    return seen if Path(f"/proc/{pid}").exists() else []


def tree_cpu(pid: int, *, alone: bool = False) -> tuple[float, float, list[Stat]] | None:
    """(CPU seconds of the tree, of the root process itself, the stats read) at this instant;
    ``alone``: the root only, without what it reaped (for the harness, whose children are the
    measured servers). None when the root is gone."""
    if alone:
        root = stat(pid)
        return None if root is None else (root.own, root.own, [root])
    stats = [s for s in (stat(p) for p in tree(pid)) if s is not None]
    if not stats or stats[0].pid != pid:
        return None
    return sum(s.own + s.reaped for s in stats), stats[0].own, stats


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB (empty when it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def pss_kib(pid: int) -> int | None:
    """Proportional set size (shared pages divided among their sharers), KiB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS, VmHWM and PSS of a process and its descendants, summed (MiB)."""
    pids = tree(pid)
    rss = hwm = pss = 0
    pss_known = True
    names = []
    for p in pids:
        st = status(p)
        rss += st.get("VmRSS", 0)
        hwm += st.get("VmHWM", 0)
        one = pss_kib(p)
        pss_known = pss_known and one is not None
        pss += one or 0
        s = stat(p)
        names.append(s.comm if s else "?")
    own = status(pid).get("VmRSS", 0) if pids else 0
    return {"rss_mib": round(rss / 1024, 1), "vm_hwm_mib": round(hwm / 1024, 1),
            "pss_mib": round(pss / 1024, 1) if pss_known and pids else None,
            "own_rss_mib": round(own / 1024, 1), "processes": len(pids), "names": names}


class CpuMeter:
    """CPU seconds used by process trees between ``start()`` and ``stop()``.

    ``pids`` maps a name to a root PID; each is measured with all its descendants, except the
    names in ``alone`` (measured as the process itself)."""

    def __init__(self, pids: dict[str, int], alone: Iterable[str] = ()) -> None:
        self.pids = dict(pids)
        self.alone = set(alone)
        self.before: dict[str, tuple[float, float, list[Stat]] | None] = {}

    def _read(self, name: str) -> tuple[float, float, list[Stat]] | None:
        return tree_cpu(self.pids[name], alone=name in self.alone)

    def start(self) -> CpuMeter:
        self.before = {name: self._read(name) for name in self.pids}
        return self

    def stop(self, elapsed: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.pids:
            after, before = self._read(name), self.before.get(name)
            if after is None or before is None:
                continue
            used = after[0] - before[0]
            entry: dict[str, Any] = {"cpu_seconds": round(used, 3),
                                     "cores_busy": round(used / elapsed, 2) if elapsed else None}
            if name not in self.alone:
                own = after[1] - before[1]
                entry.update(own_cpu_seconds=round(own, 3), descendants_cpu_seconds=round(used - own, 3),
                             processes=len(after[2]), by_role=_by_role(before[2], after[2]))
            out[name] = entry
        return out


# What a firehook process is, by the module its command line runs.
_ROLES = (("firehook.scripts.child", "script processes"), ("firehook.worker_process", "worker"))


def role(pid: int) -> str:
    """``worker``, ``script processes`` or ``other`` (the root server, anything else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    return next((name for module, name in _ROLES if module in cmdline), "other")


def _by_role(before: list[Stat], after: list[Stat]) -> dict[str, float]:
    """CPU seconds per role of the processes alive at the end (their own time since ``before``;
    what exited meanwhile is in the root's reaped time, not here)."""
    start = {(s.pid, s.start): s.own for s in before}
    out: dict[str, float] = {}
    for s in after[1:]:
        key = role(s.pid)
        out[key] = round(out.get(key, 0.0) + s.own - start.get((s.pid, s.start), 0.0), 3)
    return out


class MemorySampler:
    """Samples the summed VmRSS of process trees every ``interval`` seconds in a thread.

    ``peaks()`` gives, per name, the highest summed VmRSS seen (``peak_rss_mib``), the root's
    own highest VmRSS, the sum of the kernel's VmHWM over the tree's processes at the end (each
    process's own lifetime peak: an upper bound of the tree's), and how many processes the
    tree had at most. ``left_tree`` lists processes seen in a tree that were still alive but no
    longer in it at the end (re-parented away: their CPU is not counted)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self._peak = {name: 0 for name in self.pids}
        self._own_peak = {name: 0 for name in self.pids}
        self._most = {name: 0 for name in self.pids}
        self._seen: dict[str, dict[int, int]] = {name: {} for name in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-memory", daemon=True)
        self._result: dict[str, dict[str, Any]] | None = None

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        out: dict[str, dict[str, Any]] = {}
        for name, pid in self.pids.items():
            members = tree(pid)
            hwm = sum(status(p).get("VmHWM", 0) for p in members)
            left = []
            for p, started in self._seen[name].items():
                s = stat(p)
                if p not in members and s is not None and s.start == started:
                    left.append(p)
            out[name] = {"peak_rss_mib": round(self._peak[name] / 1024, 1),
                         "own_peak_rss_mib": round(self._own_peak[name] / 1024, 1),
                         "vm_hwm_mib": round(hwm / 1024, 1), "processes": self._most[name], "left_tree": left}
        self._result = out

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            members = tree(pid)
            total = 0
            for p in members:
                rss = status(p).get("VmRSS", 0)
                total += rss
                if p == pid:
                    self._own_peak[name] = max(self._own_peak[name], rss)
                elif p not in self._seen[name]:
                    s = stat(p)
                    if s is not None:
                        self._seen[name][p] = s.start
            self._peak[name] = max(self._peak[name], total)
            self._most[name] = max(self._most[name], len(members))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def peaks(self) -> dict[str, dict[str, Any]]:
        assert self._result is not None, "use MemorySampler as a context manager"
        return self._result


def wait_quiet(pids: Iterable[int], timeout: float = 30.0, window: float = 0.5,
               cores: float = 0.1) -> dict[str, Any]:
    """Wait (at most ``timeout`` s) until the trees of ``pids`` are settled: the same processes
    over a window, using less than ``cores`` of CPU. A server whose worker child is still
    importing is not idle yet: its start-up must fall neither in a measured phase nor in the
    idle memory figure. Returns how long it took and whether it settled."""
    roots = list(pids)
    started = time.monotonic()
    deadline = started + timeout
    previous: tuple[float, frozenset[int]] | None = None
    while True:
        total = 0.0
        members: set[int] = set()
        for pid in roots:
            reading = tree_cpu(pid)
            if reading is not None:
                total += reading[0]
                members.update(s.pid for s in reading[2])
        now = (total, frozenset(members))
        if previous is not None and previous[1] == now[1] and (now[0] - previous[0]) / window < cores:
            return {"settled": True, "seconds": round(time.monotonic() - started, 2), "processes": len(members)}
        if time.monotonic() + window > deadline:
            return {"settled": False, "seconds": round(time.monotonic() - started, 2), "processes": len(members)}
        previous = now
        time.sleep(window)


def snapshot(pid: int) -> list[tuple[int, int]]:
    """(PID, start time) of the descendants of ``pid`` (not ``pid`` itself)."""
    out = []
    for p in tree(pid)[1:]:
        s = stat(p)
        if s is not None:
            out.append((p, s.start))
    return out


def kill_leftovers(members: Iterable[tuple[int, int]], grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace``, the processes of a :func:`snapshot` still alive
    (same PID and same start time: never a stranger that reused a PID). Returns those found."""
    import signal

    alive = [(p, s) for p, s in members if (st := stat(p)) is not None and st.start == s]
    for p, _ in alive:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any((st := stat(p)) is not None and st.start == s and not _zombie(p) for p, s in alive):
            break
        time.sleep(0.05)
    for p, s in alive:
        st = stat(p)
        if st is not None and st.start == s and not _zombie(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
    return [p for p, _ in alive]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: a child of the harness never outlives it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
