"""Crash-safety soak: activities stream into firehook while its processes are SIGKILLed and
restarted; afterwards nothing accepted may be missing.

    python -m bench.soak                       # both modes, the long run (make soak)
    python -m bench.soak --mode sqlite --activities 150 --kills 3
    python -m bench.soak --mode postgres --database-url postgresql://…   # an empty, migrated DB

SQLite mode runs one `firehook serve` (API + embedded worker). PostgreSQL mode runs one
`firehook serve` and two `firehook worker` processes on one database. A kill picks one of them
at a random moment of the stream, SIGKILLs it, and starts it again.

Checked at the end, against the API and a loopback receiver:
- every activity document answered 2xx is stored (and in the state it was sent in);
- for every state an activity was accepted in, exactly the matching integrations have a run
  (none missing, none twice), and every run is complete;
- every webhook run reached the receiver at least once (de-duplicated on X-Firehook-Delivery);
- for one activity and one integration, the run of ``in_progress`` reached the receiver before
  the run of ``complete`` (SPEC: runs execute in the order the states were reached);
- an ``ordered`` integration's runs of one environment reach the receiver in activity order
  (SPEC §3.1): when activity X was answered 2xx before activity Y was first sent, X's run is
  first seen before Y's.

``lost`` counts accepted activities that are missing, expected runs that are missing or never
completed, and webhook runs the receiver never saw: it must be 0. Duplicated deliveries are
allowed (at-least-once) and reported. A JSON summary is printed; the exit status is 1 when
anything was lost.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests import support
from tests.receivers import Receiver

PROJECT = "soak"
TYPES = ("environment.push", "environment.deploy", "environment.backup")

# The integrations, and which (type, state) each one matches: computed here independently of
# firehook's matching, from the filters below.
INTEGRATIONS: dict[str, dict[str, Any]] = {
    "all-complete": {"type": "webhook", "events": ["*"], "states": ["complete"]},
    "deploys-any-state": {"type": "webhook", "events": ["environment.deploy"], "states": ["*"]},
    "push-script": {"type": "script", "events": ["environment.push"], "states": ["complete"],
                    "script": "console.log('seen ' + activity.id + ' in ' + activity.state);"},
    "backups-ordered": {"type": "webhook", "events": ["environment.backup"], "states": ["complete"], "ordered": True},
}


def expected_integrations(activity_type: str, state: str) -> set[str]:
    out = set()
    if state == "complete":
        out.add("all-complete")
        if activity_type == "environment.push":
            out.add("push-script")
        if activity_type == "environment.backup":
            out.add("backups-ordered")
    if activity_type == "environment.deploy":
        out.add("deploys-any-state")
    return out


class Fleet:
    """The firehook processes under test, each restartable on the same port and data dir."""

    def __init__(self, base: Path, mode: str, database_url: str | None, env: dict[str, str]) -> None:
        self.base = base
        self.mode = mode
        self.env = dict(env)
        if database_url:
            self.env["FIREHOOK_DATABASE_URL"] = database_url
        self.serve_port = support.free_port()
        self.names = ["serve"] + (["worker-1", "worker-2"] if mode == "postgres" else [])
        self.procs: dict[str, support.ServerProcess] = {}
        self.ports = {name: (self.serve_port if name == "serve" else support.free_port()) for name in self.names}
        for name in self.names:
            self.start(name)
        self.procs["serve"].wait_ready()

    def start(self, name: str) -> None:
        command = "serve" if name == "serve" else "worker"
        self.procs[name] = support.ServerProcess(self.base / name, command=command, env=self.env,
                                                 port=self.ports[name])

    def kill(self, name: str) -> None:
        self.procs[name].stop(signal.SIGKILL)

    def restart(self, name: str) -> None:
        self.start(name)
        if name == "serve":
            self.procs["serve"].wait_ready()

    @property
    def base_url(self) -> str:
        return self.procs["serve"].base_url

    @property
    def token(self) -> str:
        return self.procs["serve"].token

    def stop(self) -> dict[str, int]:
        return {name: proc.stop() for name, proc in self.procs.items()}

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.output()[-3000:]}" for name, proc in self.procs.items())


def queue_depth(client: httpx.Client) -> int | None:
    try:
        text = client.get("/metrics").text
    except httpx.HTTPError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("firehook_queue_depth{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait(condition: Any, timeout: float, interval: float = 0.25) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def soak(mode: str, activities: int, kills: int, seed: int, database_url: str | None = None,
         workdir: Path | None = None, senders: int = 2, settle_timeout: float = 180) -> dict[str, Any]:
    """One soak run; returns the summary (see the module docstring)."""
    rng = random.Random(seed)
    started = time.monotonic()
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix=f"firehook-soak-{mode}-")) if workdir is None else workdir
    created_db: support.PostgresDatabase | None = None
    receiver = Receiver().start()
    # A process killed mid-delivery resets its connection: expected here, not worth a traceback.
    receiver.server.handle_error = lambda *_: None  # type: ignore[method-assign]
    fleet: Fleet | None = None
    try:
        if mode == "postgres":
            if database_url is None:
                created_db = support.PostgresDatabase()
                database_url = created_db.url
            upgrade_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOOK_")}
            upgrade_env["FIREHOOK_DATABASE_URL"] = database_url
            subprocess.run(support.firehook_command() + ["db:upgrade"], env=upgrade_env, check=True,
                           capture_output=True, timeout=120)
        env = {"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32", "FIREHOOK_LEASE_SECONDS": "3",
               "FIREHOOK_POLL_INTERVAL": "0.1", "FIREHOOK_RETRY_SCHEDULE": "0.5,1,1,1,1,1,1,1,1,1",
               "FIREHOOK_WEBHOOK_TIMEOUT": "5", "FIREHOOK_WORKERS": "2"}
        fleet = Fleet(base, mode, database_url if mode == "postgres" else None, env)
        headers = {"Authorization": f"Bearer {fleet.token}"}
        admin = httpx.Client(base_url=fleet.base_url, headers=headers, timeout=30)
        admin.post("/api/projects", json={"id": PROJECT, "title": "Soak"}).raise_for_status()
        integration_ids: dict[str, str] = {}
        for name, spec in INTEGRATIONS.items():
            body = dict(spec, description=name)
            if spec["type"] == "webhook":
                body["url"] = receiver.on(f"/{name}", (200, {}, b"ok"))
            answer = admin.post(f"/api/projects/{PROJECT}/integrations", json=body)
            answer.raise_for_status()
            integration_ids[answer.json()["_embedded"]["entity"]["id"]] = name

        # --- the stream ---------------------------------------------------------------------
        plan: list[list[dict[str, Any]]] = []  # per activity, the documents in order
        for i in range(activities):
            activity_type = rng.choice(TYPES)
            activity_id = f"soak{seed % 1000:03d}x{i:06d}"
            base_doc = {"id": activity_id, "type": activity_type, "environments": [rng.choice(["main", "dev"])],
                        "text": f"soak activity {i}"}
            if activity_type == "environment.deploy":
                plan.append([dict(base_doc, state="in_progress"), dict(base_doc, state="complete", result="success")])
            else:
                plan.append([dict(base_doc, state="complete", result="success")])
        accepted: dict[str, set[str]] = collections.defaultdict(set)  # id -> states answered 2xx
        types = {docs[0]["id"]: docs[0]["type"] for docs in plan}
        first_sent: dict[tuple[str, str], float] = {}  # (id, state) -> when first sent
        accepted_at: dict[tuple[str, str], float] = {}  # (id, state) -> when answered 2xx
        counters = collections.Counter()
        lock = threading.Lock()
        sending_done = threading.Event()
        abort = threading.Event()  # set when a process cannot be restarted: stop sending
        failures: list[BaseException] = []

        def post(client: httpx.Client, docs: list[dict[str, Any]]) -> None:
            """Send until answered 2xx (the same documents: a retry is an idempotent update)."""
            as_batch = len(docs) > 1
            deadline = time.monotonic() + 120
            with lock:
                for doc in docs:
                    first_sent.setdefault((doc["id"], doc["state"]), time.monotonic())
            while time.monotonic() < deadline and not abort.is_set():
                with lock:
                    counters["requests"] += 1
                try:
                    if as_batch:
                        payload = b"".join(json.dumps(d).encode() + b"\n" for d in docs)
                        response = client.post(f"/api/projects/{PROJECT}/activities:batch", content=payload,
                                               headers={"Content-Type": "application/x-ndjson"})
                    else:
                        response = client.post(f"/api/projects/{PROJECT}/activities", json=docs[0])
                except httpx.HTTPError:
                    with lock:
                        counters["connection_errors"] += 1
                    time.sleep(0.1)
                    continue
                if response.status_code >= 500:
                    with lock:
                        counters[f"http_{response.status_code}"] += 1
                    time.sleep(0.1)
                    continue
                if response.status_code not in (200, 201):
                    with lock:
                        counters["refused"] += 1
                    return
                if as_batch:
                    results = response.json()["results"]
                    with lock:
                        for line, doc in zip(results, docs, strict=True):
                            if "id" in line:
                                accepted[doc["id"]].add(doc["state"])
                                accepted_at[(doc["id"], doc["state"])] = time.monotonic()
                    if all("id" in line for line in results):
                        return
                    docs = [doc for line, doc in zip(results, docs, strict=True) if "id" not in line]
                    continue
                with lock:
                    accepted[docs[0]["id"]].add(docs[0]["state"])
                    accepted_at[(docs[0]["id"], docs[0]["state"])] = time.monotonic()
                return
            with lock:
                counters["gave_up"] += 1

        def sender(index: int) -> None:
            local = random.Random(seed * 31 + index)
            client = httpx.Client(base_url=fleet.base_url, headers=headers, timeout=15)
            mine = plan[index::senders]
            pending_second: list[dict[str, Any]] = []
            position = 0
            while position < len(mine) and not abort.is_set():
                # now and then a batch of single-state documents, else one document at a time
                if local.random() < 0.1:
                    group = [d for docs in mine[position:position + 5] for d in docs[:1]]
                    seconds = [docs[1] for docs in mine[position:position + 5] if len(docs) > 1]
                    post(client, group)
                    pending_second.extend(seconds)
                    position += 5
                else:
                    for doc in mine[position]:
                        post(client, [doc])
                    position += 1
                if pending_second and local.random() < 0.5:
                    post(client, [pending_second.pop(0)])
            for doc in pending_second:
                if not abort.is_set():
                    post(client, [doc])
            client.close()

        kill_log: list[dict[str, Any]] = []

        def killer() -> None:
            try:
                kill_and_restart()
            except BaseException as exc:
                failures.append(exc)
                abort.set()

        def kill_and_restart() -> None:
            krng = random.Random(seed + 7)
            names = list(fleet.names)
            targets = ["serve"] + (["worker-1"] if len(names) > 1 else [])
            targets += [krng.choice(names) for _ in range(max(0, kills - len(targets)))]
            targets = targets[:kills]
            krng.shuffle(targets)
            total_docs = sum(len(d) for d in plan)
            for k, name in enumerate(targets):
                threshold = total_docs * (k + 1) / (len(targets) + 1) * krng.uniform(0.7, 1.0)
                while not sending_done.is_set():
                    with lock:
                        done = sum(len(s) for s in accepted.values())
                    if done >= threshold:
                        break
                    time.sleep(0.02)
                time.sleep(krng.uniform(0, 0.3))
                fleet.kill(name)
                down = krng.uniform(0.1, 1.0)
                time.sleep(down)
                fleet.restart(name)
                kill_log.append({"process": name, "down_s": round(down, 2)})

        threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(senders)]
        kill_thread = threading.Thread(target=killer, daemon=True)
        for t in threads:
            t.start()
        kill_thread.start()
        for t in threads:
            t.join()
        sending_done.set()
        kill_thread.join()
        if failures:
            raise RuntimeError(f"a killed process could not be restarted: {failures[0]}")

        # --- settle, then check ---------------------------------------------------------------
        admin.close()
        admin = httpx.Client(base_url=fleet.base_url, headers=headers, timeout=30)
        settled = wait(lambda: queue_depth(admin) == 0, timeout=settle_timeout)
        stored_missing: list[str] = []
        wrong_state: list[str] = []
        runs_missing: list[tuple[str, str, str]] = []
        runs_duplicated: list[tuple[str, str, str]] = []
        runs_incomplete: list[str] = []
        webhook_runs: set[str] = set()
        state_pairs: list[tuple[str, str]] = []  # (earlier state's run, later state's run), one integration
        ordered_runs: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)  # env -> (created_at, run)
        runs_total = 0
        runs_expected = 0
        for activity_id, states in accepted.items():
            response = admin.get(f"/api/projects/{PROJECT}/activities/{activity_id}")
            if response.status_code != 200:
                stored_missing.append(activity_id)
                continue
            doc = response.json()
            last_state = "complete" if "complete" in states else sorted(states)[0]
            if doc["state"] != last_state and "complete" in states:
                wrong_state.append(activity_id)
            runs = admin.get(f"/api/projects/{PROJECT}/activities/{activity_id}/runs").json()
            runs_total += len(runs)
            seen = collections.Counter((r["parameters"]["activity_state"], integration_ids.get(r["integration"], "?"))
                                       for r in runs)
            for state in states:
                for name in expected_integrations(types[activity_id], state):
                    runs_expected += 1
                    if seen[(state, name)] == 0:
                        runs_missing.append((activity_id, state, name))
                    elif seen[(state, name)] > 1:
                        runs_duplicated.append((activity_id, state, name))
            by_key = {(r["parameters"]["activity_state"], integration_ids.get(r["integration"])): r["id"]
                      for r in runs}
            if ("in_progress", "deploys-any-state") in by_key and ("complete", "deploys-any-state") in by_key:
                state_pairs.append((by_key[("in_progress", "deploys-any-state")],
                                    by_key[("complete", "deploys-any-state")]))
            for run in runs:
                if integration_ids.get(run["integration"]) == "backups-ordered":
                    ordered_runs[run["environments"][0]].append((run["created_at"], run["id"], activity_id))
                if run["state"] != "complete":
                    runs_incomplete.append(run["id"])
                if run["type"] == "integration.webhook":
                    webhook_runs.add(run["id"])
        admin.close()
        with receiver.lock:
            delivered = collections.Counter(r.headers.get("x-firehook-delivery") for r in receiver.received)
            first_seen: dict[str, int] = {}
            for index, request in enumerate(receiver.received):
                first_seen.setdefault(request.headers.get("x-firehook-delivery", ""), index)
        # Per activity and integration, the runs of successive states are delivered in order.
        order_violations = [pair for pair in state_pairs
                            if pair[0] in first_seen and pair[1] in first_seen
                            and first_seen[pair[0]] > first_seen[pair[1]]]
        # An `ordered` integration delivers in activity order per environment: when activity X
        # was answered 2xx before activity Y was first sent, X's run is first seen before Y's.
        ordered_violations = []
        ordered_pairs = 0
        created_at_inversions = 0  # informational: later created_at first seen (overlapping intakes)
        for env_runs in ordered_runs.values():
            for (t1, r1, a1), (t2, r2, a2) in itertools.permutations(env_runs, 2):
                if r1 not in first_seen or r2 not in first_seen:
                    continue
                if t1 < t2 and first_seen[r1] > first_seen[r2]:
                    created_at_inversions += 1
                done, sent = accepted_at.get((a1, "complete")), first_sent.get((a2, "complete"))
                if done is None or sent is None or not done < sent:
                    continue
                ordered_pairs += 1
                if first_seen[r1] > first_seen[r2]:
                    ordered_violations.append((r1, a1, r2, a2))
        undelivered = sorted(webhook_runs - set(delivered))
        duplicates = sum(n - 1 for n in delivered.values() if n > 1)
        lost = len(stored_missing) + len(runs_missing) + len(runs_incomplete) + len(undelivered)
        summary = {
            "mode": mode,
            "seed": seed,
            "activities_sent": activities,
            "documents_sent": sum(len(d) for d in plan),
            "requests": counters["requests"],
            "connection_errors": counters["connection_errors"],
            "http_5xx": sum(v for k, v in counters.items() if k.startswith("http_5")),
            "refused": counters["refused"],
            "gave_up": counters["gave_up"],
            "activities_accepted": len(accepted),
            "documents_accepted": sum(len(s) for s in accepted.values()),
            "runs_expected": runs_expected,
            "runs": runs_total,
            "webhook_runs": len(webhook_runs),
            "kills": len(kill_log),
            "killed": [k["process"] for k in kill_log],
            "deliveries": sum(delivered.values()),
            "duplicates": duplicates,
            "state_order_pairs": len(state_pairs),
            "state_order_violations": len(order_violations),
            "ordered_pairs": ordered_pairs,
            "ordered_violations": len(ordered_violations),
            "ordered_created_at_inversions": created_at_inversions,
            "queue_settled": settled,
            "activities_missing": len(stored_missing),
            "activities_wrong_state": len(wrong_state),
            "runs_missing": len(runs_missing),
            "runs_duplicated": len(runs_duplicated),
            "runs_incomplete": len(runs_incomplete),
            "webhook_runs_undelivered": len(undelivered),
            "lost": lost,
            "seconds": round(time.monotonic() - started, 1),
            "examples": {"activities_missing": stored_missing[:5], "runs_missing": runs_missing[:5],
                         "runs_duplicated": runs_duplicated[:5], "runs_incomplete": runs_incomplete[:5],
                         "undelivered": undelivered[:5], "wrong_state": wrong_state[:5],
                         "state_order_violations": order_violations[:5],
                         "ordered_violations": ordered_violations[:5]},
        }
        return summary
    except BaseException:
        if fleet is not None:
            print(fleet.logs(), file=sys.stderr)
        raise
    finally:
        if fleet is not None:
            fleet.stop()
        receiver.stop()
        if created_db is not None:
            created_db.drop()
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--activities", type=int, default=1500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL mode: an empty database to use (default: one is created and dropped)")
    parser.add_argument("--quick", action="store_true", help="150 activities, 3 kills")
    args = parser.parse_args(argv)
    if args.quick:
        args.activities, args.kills = 150, 3
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    modes = ["sqlite", "postgres"] if args.mode == "both" else [args.mode]
    summaries = [soak(mode, args.activities, args.kills, seed, database_url=args.database_url) for mode in modes]
    print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    failed = any(s["lost"] or s["runs_duplicated"] or s["state_order_violations"] or s["ordered_violations"]
                 or not s["queue_settled"] for s in summaries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
