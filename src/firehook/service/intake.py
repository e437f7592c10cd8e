"""Intake (SPEC §2.3): create, update (a state transition), PATCH and NDJSON batches.

Every time an activity reaches a state it has not reached before, it is snapshotted as it is
then, and every matching integration gets a run — all in the transaction that stores the
activity, so a 2xx answer means the activity and its runs are durable.

Documents are written a group at a time (:func:`write`): the group commit's waiting
documents, or a chunk of a batch. A group is one transaction with a few statements per
table, whatever its size, and no savepoint per document: a document refused on its own
merits (a token, a project, a type change, a lone surrogate) is set aside before anything is
written. Only when a statement fails (another process created the same id at the same moment,
or the database failed) is the group written again one document per savepoint, so that the
faulty one fails alone and nothing already accepted is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from firehook import errors, fanout, ids, model, queue, timefmt, validation
from firehook.service import tokens as token_service
from firehook.service.core import Services, project_not_found, require_project, require_write
from firehook.store import activities as store
from firehook.store import db as dbmod
from firehook.store import integrations as integration_store
from firehook.store import jsonutil, raw
from firehook.store import projects as project_store

log = logging.getLogger("firehook.intake")

BATCH_CHUNK = 200  # documents per transaction of a batch


@dataclasses.dataclass
class Accepted:
    doc: dict[str, Any]
    created: bool
    runs: list[dict[str, Any]]
    text: str  # the document's JSON as stored
    raw: bytes | None = None  # that text in UTF-8, kept when the caller answers with it (Item.answered)

    def answer_bytes(self) -> bytes:
        """The answer's JSON, reusing the document's stored text rather than serialising it again."""
        entity = self.raw if self.raw is not None else self.text.encode("utf-8")
        head = b'{"status":"created","code":201,' if self.created else b'{"status":"updated","code":200,'
        return head + b'"_embedded":{"entity":' + entity + b',"runs":' + jsonutil.answer(self.runs) + b"}}"

    def answer(self) -> dict[str, Any]:
        code = 201 if self.created else 200
        return {
            "status": "created" if self.created else "updated",
            "code": code,
            "_embedded": {"entity": self.doc, "runs": self.runs},
        }


@dataclasses.dataclass
class Item:
    """One document to take in, checked by ``validation.activity`` (a PATCH body: by
    ``validation.check_activity_fields``). ``token_hash``: the caller's token, checked (again)
    in the transaction that writes it; None when the caller was authorised otherwise (the
    relay's signature, a service call with a principal)."""

    project_id: str
    doc: dict[str, Any]
    token_hash: str | None = None
    patch_of: str | None = None  # PATCH: the id of the activity the fields merge into
    # Whether the caller answers with the stored document (its UTF-8 bytes are kept for that); a
    # batch, which answers ids only, does not keep a third copy of each 20 KB document meanwhile.
    answered: bool = True


Outcome = Accepted | errors.FirehookError


@dataclasses.dataclass
class _Entry:
    """An activity as this transaction sees it, including what earlier documents of the group
    did to it."""

    project_id: str
    pk: int | None  # None until inserted
    doc: dict[str, Any]
    text: str
    states: set[str]
    integration_id: str | None
    new: bool
    changed: bool = False
    stored: str | None = None  # the document's text in the database (None: not stored yet)
    utf8: bytes | None = None  # ``text`` in UTF-8, when this transaction serialised it (store.doc_value)


# Projects known to exist, per database, so a group does not ask again. Safe without expiry:
# an activity's row refers to its project (a foreign key), so a document for a project deleted
# meanwhile fails its group's transaction, and the group is written again one document at a
# time without trusting this (see :func:`write`), which answers that document 404.
_known_projects: weakref.WeakKeyDictionary[dbmod.Database, set[str]] = weakref.WeakKeyDictionary()


class Writer:
    """Writes groups of documents in the caller's transaction; projects, their integrations
    and the fair-queueing clock are read once per transaction. Call :meth:`close` last.
    ``trust_known``: whether a project seen before in this process is taken to exist."""

    def __init__(self, services: Services, conn: sa.Connection, *, trust_known: bool = True) -> None:
        self.services = services
        self.conn = conn
        self.clock = queue.FairClock(conn)
        self._projects: dict[str, bool] = {}
        self._integrations: dict[str, list[model.Integration]] = {}
        known = _known_projects.get(services.database)
        if known is None:
            known = _known_projects.setdefault(services.database, set())
        self._known = known
        self._trust_known = trust_known

    def close(self) -> None:
        """Write what the transaction kept in memory (the fair-queueing clocks)."""
        self.clock.flush()

    def _project_exists(self, project_id: str) -> bool:
        if project_id not in self._projects:
            found = (self._trust_known and project_id in self._known) or project_store.exists(self.conn, project_id)
            if found:
                self._known.add(project_id)
            else:
                self._known.discard(project_id)
            self._projects[project_id] = found
        return self._projects[project_id]

    def integrations(self, project_id: str) -> list[model.Integration]:
        if project_id not in self._integrations:
            self._integrations[project_id] = [i for i in integration_store.list_for(self.conn, project_id)
                                              if i.enabled or i.auto_disabled]
        return self._integrations[project_id]

    def write(self, items: Sequence[Item]) -> list[Outcome]:
        """Apply ``items`` in order (a later document with the same id updates what an earlier
        one created). A document refused on its merits is an outcome; a statement that fails
        raises, and the transaction is the caller's to roll back."""
        outcomes: list[Outcome | None] = [None] * len(items)
        hashes = [item.token_hash for item in items if item.token_hash is not None]
        tokens = token_service.check_on(self.services, self.conn, hashes)
        admitted: list[int] = []
        for n, item in enumerate(items):
            try:
                if item.token_hash is not None:
                    token = tokens.get(item.token_hash)
                    if token is None:
                        raise token_service.invalid_token()
                    authorize(token, item.project_id)
                if not self._project_exists(item.project_id):
                    raise project_not_found(item.project_id)
            except errors.FirehookError as exc:
                outcomes[n] = exc
                continue
            admitted.append(n)
        known = self._existing([items[n] for n in admitted])
        now = timefmt.now_ts()
        order: list[_Entry | fanout.Planned] = []  # activity rows to insert, in creation order
        snapshots: list[tuple[_Entry, str, str, fanout.Planned | None]] = []
        for n in admitted:
            try:
                outcomes[n] = self._apply(items[n], known, now, order, snapshots)
            except errors.FirehookError as exc:
                outcomes[n] = exc
        self._flush(known, now, order, snapshots)
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _existing(self, items: Sequence[Item]) -> dict[tuple[str, str], _Entry]:
        """The stored activities the documents name, read (and locked) with one statement per project."""
        wanted: dict[str, list[str]] = {}
        for item in items:
            activity_id = item.patch_of if item.patch_of is not None else item.doc.get("id")
            if activity_id:
                wanted.setdefault(item.project_id, []).append(activity_id)
        found = {(project_id, activity_id): row for project_id, names in wanted.items()
                 for activity_id, row in store.find_for_update(self.conn, project_id, names).items()}
        if not found:
            return {}
        states = store.states_reached(self.conn, [pk for pk, _, _ in found.values()])
        return {key: _Entry(key[0], pk, jsonutil.loads(text), text, states[pk], integration_id, new=False, stored=text)
                for key, (pk, integration_id, text) in found.items()}

    def _apply(self, item: Item, known: dict[tuple[str, str], _Entry], now: str, order: list[_Entry | fanout.Planned],
               snapshots: list[tuple[_Entry, str, str, fanout.Planned | None]]) -> Accepted:
        project_id, incoming = item.project_id, item.doc
        activity_id = item.patch_of if item.patch_of is not None else incoming.get("id")
        entry = known.get((project_id, activity_id)) if activity_id else None
        if item.patch_of is not None and entry is None:
            raise errors.NotFound(f"activity {item.patch_of} not found in project {project_id}")
        if entry is not None:
            doc = dict(entry.doc)
            if incoming.get("type") not in (None, doc["type"]):
                raise errors.InvalidInput.field("type", f"cannot change from {doc['type']} to {incoming['type']}")
            if entry.integration_id is not None:
                raise errors.InvalidInput.field("id", f"{activity_id} is a run; runs are updated by firehook only")
            doc.update({k: v for k, v in incoming.items() if k not in ("id", "project", "_links")})
            if "updated_at" not in incoming:
                doc["updated_at"] = now
        else:
            doc = dict(incoming)
            doc["id"] = activity_id or ids.new_id()
            doc.setdefault("created_at", now)
            doc.setdefault("updated_at", now)
            doc.setdefault("environments", [])
            doc.setdefault("result", None)
        if doc.get("state") is None:
            doc["state"] = model.State.COMPLETE.value
        if doc.get("environments") is None:
            doc["environments"] = []
        if doc.get("created_at") is None:
            doc["created_at"] = now
        # The document passes through (SPEC §2.1): a sender's `project` (an Upsun document
        # carries Upsun's id) and `_links` are kept; firehook's own fill only what is absent.
        if doc.get("project") is None:
            doc["project"] = project_id
        doc["_links"] = _links_of(doc.get("_links"), self.services.activity_links(project_id, doc["id"]))
        if entry is not None:
            # A new document is the checked input plus firehook's own valid fields; a merged
            # one is checked again, whatever the stored document it merges into holds.
            validation.check_activity_fields(doc)
        unfit = store.unfit_field(doc)
        if unfit is not None:
            raise errors.InvalidInput.field(*unfit)
        # Serialised once: the stored document, the snapshot and the answer are the same text.
        try:
            text, raw = jsonutil.document(doc)
        except ValueError as exc:
            raise errors.InvalidInput.field("body", str(exc)) from None
        # Nothing above changed what this transaction knows: a refused document leaves no trace.
        created = entry is None
        if entry is None:
            entry = _Entry(project_id, None, doc, text, set(), None, new=True)
            known[(project_id, doc["id"])] = entry
            order.append(entry)
        entry.doc, entry.text, entry.utf8, entry.changed = doc, text, raw, True
        state = doc["state"]
        runs: list[dict[str, Any]] = []
        if state not in entry.states:
            entry.states.add(state)
            planned = fanout.plan_matching(self.services.settings.resolved_public_url, project_id, doc, state,
                                           self.integrations(project_id))
            snapshots.append((entry, state, text, planned))
            if planned is not None:
                order.append(planned)
                runs = planned.summary()
        return Accepted(doc=doc, created=created, runs=runs, text=text, raw=raw if item.answered else None)

    def _flush(self, known: dict[tuple[str, str], _Entry], now: str, order: list[_Entry | fanout.Planned],
               snapshots: list[tuple[_Entry, str, str, fanout.Planned | None]]) -> None:
        """The group's statements, one per table and on PostgreSQL one round trip for all but
        the jobs: activities (new sources and runs, in creation order), updates, snapshots,
        runs; then the jobs."""
        count = sum(1 if isinstance(thing, _Entry) else len(thing.docs) for thing in order)
        keys, snapshot_keys = store.new_keys(self.conn, count, len(snapshots))
        pks = iter(keys)
        dialect = self.conn.dialect.name
        rows: list[tuple[Any, ...]] = []
        run_pks: dict[int, list[int]] = {}
        for thing in order:
            if isinstance(thing, _Entry):
                thing.pk = next(pks)
                rows.append(store.activity_row(thing.pk, thing.project_id, thing.doc,
                                               store.doc_value(dialect, thing.text, thing.utf8), None, now))
            else:
                run_pks[id(thing)] = [next(pks) for _ in thing.docs]
                rows.extend(thing.activity_rows(run_pks[id(thing)]))
        # An activity posted again as it is stored (its own updated_at included) is not rewritten.
        updates = [(e.doc["state"], e.doc.get("result"), jsonutil.dumps(e.doc.get("environments") or []),
                    e.doc.get("updated_at") or now, store.doc_value(dialect, e.text, e.utf8), e.pk)
                   for e in known.values()
                   if e.changed and not e.new and e.text != e.stored]
        if not rows and not updates and not snapshots:
            return  # every document was refused: not even an empty pipeline's round trip
        placed = [fanout.Placed(planned, entry.pk, snapshot_pk, run_pks[id(planned)])  # type: ignore[arg-type]
                  for (entry, _, _, planned), snapshot_pk in zip(snapshots, snapshot_keys, strict=True)
                  if planned is not None]
        # A snapshot of the document as the group leaves it, which no run is given, leaves its
        # body to the activity's row (NULL): the document is written once. A later change of
        # the document writes it out first (store.update_activities).
        snapshot_rows = [(pk, e.pk, state, None if planned is None and text is e.text
                          else store.doc_value(dialect, text, e.utf8 if text is e.text else None), now)
                         for (e, state, text, planned), pk in zip(snapshots, snapshot_keys, strict=True)]
        with raw.pipelined(self.conn):
            store.insert_activities(self.conn, rows)
            store.update_activities(self.conn, updates)
            store.insert_snapshots(self.conn, snapshot_rows)
            fanout.insert_runs(self.conn, placed)
        fanout.enqueue(self.conn, placed, self.clock)


def _links_of(sent: Any, own: dict[str, Any]) -> dict[str, Any]:
    """The sender's ``_links`` as sent, with firehook's own links added under the names it
    does not use (``[]``, PHP's empty object, counts as none)."""
    if not isinstance(sent, dict) or not sent:
        return own
    merged = dict(sent)
    for name, link in own.items():
        merged.setdefault(name, link)
    return merged


Transaction = Callable[[], AbstractContextManager[sa.Connection]]


def write(services: Services, items: Sequence[Item], transaction: Transaction | None = None) -> list[Outcome]:
    """Write ``items`` in one transaction; when a statement fails, each alone (one savepoint
    each, in one transaction), so only the faulty one fails. One outcome per item, in order;
    every outcome is final (committed) when this returns. ``transaction``: how to open a write
    transaction (default ``services.database.write``; the group commit's keeps its connection)."""
    if not items:
        return []
    transaction = transaction or services.database.write
    try:
        with transaction() as conn:
            writer = Writer(services, conn)
            outcomes = writer.write(items)
            writer.close()
        return outcomes
    except errors.DatabaseBusy as exc:
        # Locked by another program past the busy timeout: each document alone would wait
        # that long again, and fail the same way. The group is answered 503 at once.
        log.warning("event=intake.group_failed size=%d error=%s", len(items), exc.message)
        return [exc] * len(items)
    except Exception as exc:  # the whole transaction rolled back: nothing of it is stored
        log.warning("event=intake.group_isolated size=%d error=%s", len(items), _safe_reason(exc))
    return _write_isolated(services, items, transaction)


def _write_isolated(services: Services, items: Sequence[Item], transaction: Transaction) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        with transaction() as conn:
            for item in items:
                outcomes.append(_write_alone(services, conn, item))
    except Exception as exc:  # the commit itself failed: nothing of the group is stored
        log.error("event=intake.group_failed size=%d error=%s", len(items), _safe_reason(exc))
        failure = exc if isinstance(exc, errors.StoreError) else errors.StoreError(
            "the database refused the write; send the activity again")
        return [failure] * len(items)
    return outcomes


def _write_alone(services: Services, conn: sa.Connection, item: Item) -> Outcome:
    for attempt in (1, 2):
        try:
            with conn.begin_nested():
                writer = Writer(services, conn, trust_known=False)
                [outcome] = writer.write([item])
                writer.close()
            return outcome
        except (errors.Conflict, sa.exc.IntegrityError):
            # Another process created the same new id at the same moment: the second try finds
            # it, and the document is an update.
            if attempt == 2:
                return errors.Conflict(f"activity {item.doc.get('id') or item.patch_of} conflicts with a "
                                       "concurrent write; send it again")
        except errors.FirehookError as exc:
            return exc
        except sa.exc.DBAPIError as exc:
            return errors.StoreError(f"the activity could not be stored: {_safe_reason(exc)}")
        except Exception as exc:  # a fault of this document's write: it alone fails
            log.exception("event=intake.document_failed project=%s", item.project_id)
            return errors.FirehookError(f"the activity could not be stored: {type(exc).__name__}")
    raise AssertionError("unreachable")  # pragma: no cover


def _safe_reason(exc: BaseException) -> str:
    """Why a write failed, for a log line: never the statement's parameters (documents, secrets)."""
    if isinstance(exc, errors.FirehookError):
        return exc.message  # store.raw and db.py word these without parameters
    if isinstance(exc, sa.exc.DBAPIError):
        text = str(exc.orig).strip() if exc.orig is not None else ""
        return text.splitlines()[0] if text else type(exc).__name__
    return type(exc).__name__


def _one(services: Services, item: Item) -> Accepted:
    [outcome] = write(services, [item])
    if isinstance(outcome, errors.FirehookError):
        raise outcome
    if outcome.runs:
        services.notify()
    return outcome


def authorize(principal: model.Token, project_id: str) -> None:
    require_project(principal, project_id)
    require_write(principal)


def ingest(services: Services, principal: model.Token, project_id: str, body: Any) -> Accepted:
    """Take in one activity document: create it, or update it when its id exists."""
    authorize(principal, project_id)
    return _one(services, Item(project_id, validation.activity(body)))


def patch(services: Services, principal: model.Token, project_id: str, activity_id: str, body: Any) -> Accepted:
    """Merge top-level fields into an existing activity (which may reach a new state)."""
    authorize(principal, project_id)
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    validation.check_activity_fields(body)
    return _one(services, Item(project_id, body, patch_of=activity_id))


Line = tuple[int, dict[str, Any] | None, dict[str, Any] | None]
_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() strips


def parse_ndjson(data: bytes, max_line_bytes: int) -> list[Line]:
    """Split an NDJSON body into ``(line number, document or None, error or None)``; blank
    lines are skipped. Every error names the line and the problem."""
    return list(iter_ndjson(data, max_line_bytes))


def iter_ndjson(data: bytes, max_line_bytes: int) -> Iterator[Line]:
    """:func:`parse_ndjson`, a line at a time, each read in place in ``data``."""
    buffer = jsonutil.StrictBuffer(data)
    start, number, size = 0, 0, len(data)
    while start <= size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        number += 1
        if end > start:
            line = _line(buffer, number, start, end, max_line_bytes)
            if line is not None:
                yield line
        start = end + 1


def parse_line(line: bytes, number: int, limit: int) -> Line | None:
    """One NDJSON line (without its newline) as :func:`iter_ndjson` reads it; None when blank."""
    return _line(jsonutil.StrictBuffer(line), number, 0, len(line), limit) if line else None


def parse_in(buffer: jsonutil.StrictBuffer, number: int, start: int, end: int, limit: int) -> Line | None:
    """:func:`parse_line` of ``buffer.data[start:end]``, read in place (no copy of the line)."""
    return _line(buffer, number, start, end, limit) if end > start else None


def _line(buffer: jsonutil.StrictBuffer, number: int, start: int, end: int, limit: int) -> Line | None:
    data = buffer.data
    try:
        if end - start > limit or data[start] in _SPACE or data[end - 1] in _SPACE:
            line = data[start:end].strip()  # rare: measured and parsed without the spaces around it
            if not line:
                return None
            if len(line) > limit:
                return (number, None, {"line": number, "code": 413,
                                       "detail": f"document of {len(line)} bytes is over the limit of {limit}"})
            doc = jsonutil.loads_strict(line)
        else:
            doc = buffer.loads(start, end)
    except (UnicodeDecodeError, ValueError) as exc:
        return (number, None, {"line": number, "code": 400, "detail": f"invalid JSON: {exc}"})
    try:
        return (number, validation.activity(doc), None)
    except errors.InvalidInput as exc:
        return (number, None, {"line": number, "code": 400, "detail": exc.detail})
