"""NDJSON batch intake (SPEC §2.3), taken in as it arrives.

A batch is fed a piece at a time (:meth:`BatchIngest.feed`, in a thread, off the event loop)
and never held whole: complete lines are parsed and checked as they come, good documents are
written :data:`intake.BATCH_CHUNK` at a time, one transaction per chunk, and only a line not
yet complete is kept. So the memory a batch costs is bounded by a piece, one line (a document
over the size limit is dropped as it streams, and reported) and the report of at most
:data:`MAX_LINES` lines — not by the body's size.

Limits: a batch holds at most :data:`MAX_LINES` documents and ``max_bytes`` bytes; past
either, reading stops, and the report's last line (code 413) says from which line nothing
was read. A bad line never loses the good ones, and lines written before a limit stay.
"""

from __future__ import annotations

from typing import Any

from firehook import errors, model
from firehook.service import intake
from firehook.service.core import Services, project_not_found
from firehook.store import jsonutil
from firehook.store import projects as project_store

MAX_LINES = 10_000  # documents (non-blank lines) per batch
_SLACK = 1024  # bytes of spaces a line may carry around a document of the size limit


class BatchIngest:
    """One batch: :meth:`feed` it pieces of the body in order, then :meth:`finish` for the report."""

    def __init__(self, services: Services, principal: model.Token, project_id: str, *,
                 token_hash: str | None = None, max_bytes: int | None = None) -> None:
        intake.authorize(principal, project_id)
        with services.database.read() as conn:
            if not project_store.exists(conn, project_id):
                raise project_not_found(project_id)
        self.services = services
        self.project_id = project_id
        self.token_hash = token_hash
        self.line_limit = services.settings.max_document_bytes
        self.max_bytes = max_bytes
        self.results: dict[int, dict[str, Any]] = {}
        self.chunk: list[tuple[int, dict[str, Any]]] = []
        self.any_runs = False
        self.number = 0  # lines seen (complete ones)
        self.documents = 0  # non-blank lines taken
        self.received = 0
        self.tail = bytearray()  # the line not yet complete
        self.skipping = 0  # bytes of a line over the limit seen so far (0: not skipping)
        self.stopped = False

    def feed(self, data: bytes) -> bool:
        """Take the next piece of the body; False once reading has stopped at a limit."""
        if self.stopped:
            return False
        self.received += len(data)
        if self.max_bytes is not None and self.received > self.max_bytes:
            self._take(data[:len(data) - (self.received - self.max_bytes)])
            self._stop(f"the batch is over the limit of {self.max_bytes} bytes: from this line on nothing was "
                       "read; send the rest in another batch", next_line=True)
            return False
        self._take(data)
        return not self.stopped

    def finish(self) -> dict[str, Any]:
        """The report: per line, the id or the error (after writing what is left)."""
        if not self.stopped:
            if self.skipping:
                self.number += 1
                self._too_long(self.skipping)
            elif self.tail:
                self.number += 1
                self._line(bytes(self.tail))
            self.tail.clear()
        self._flush()
        if not self.results:
            raise errors.InvalidInput.field("body", "no documents: send one JSON activity per line")
        if self.any_runs:
            self.services.notify()
        ordered = [self.results[n] for n in sorted(self.results)]
        accepted = sum(1 for r in ordered if "id" in r)
        return {"status": "ok", "accepted": accepted, "rejected": len(ordered) - accepted, "results": ordered}

    def _take(self, data: bytes) -> None:
        start = 0
        buffer: jsonutil.StrictBuffer | None = None  # the lines whole in this piece, read in place
        while not self.stopped:
            end = data.find(b"\n", start)
            if end < 0:
                rest = len(data) - start
                if self.skipping:
                    self.skipping += rest
                elif len(self.tail) + rest > self.line_limit + _SLACK:
                    self.skipping = len(self.tail) + rest  # over the limit: dropped as it streams
                    self.tail.clear()
                else:
                    self.tail += data[start:]
                return
            self.number += 1
            if self.skipping:
                self._too_long(self.skipping + end - start)
                self.skipping = 0
            elif self.tail:
                self.tail += data[start:end]
                line = bytes(self.tail)
                self.tail.clear()
                self._line(line)
            elif end > start:
                if buffer is None:
                    buffer = jsonutil.StrictBuffer(data)
                self._parsed(intake.parse_in(buffer, self.number, start, end, self.line_limit))
            start = end + 1

    def _line(self, line: bytes) -> None:
        self._parsed(intake.parse_line(line, self.number, self.line_limit))

    def _parsed(self, parsed: intake.Line | None) -> None:
        if parsed is None:
            return  # a blank line
        if self.documents >= MAX_LINES:
            self._stop(f"a batch holds at most {MAX_LINES} documents: from this line on nothing was read; "
                       "send the rest in another batch")
            return
        self.documents += 1
        number, doc, err = parsed
        if err is not None:
            self.results[number] = err
            return
        self.chunk.append((number, doc))  # type: ignore[arg-type]
        if len(self.chunk) >= intake.BATCH_CHUNK:
            self._flush()

    def _too_long(self, size: int) -> None:
        if self.documents >= MAX_LINES:
            self._stop(f"a batch holds at most {MAX_LINES} documents: from this line on nothing was read")
            return
        self.documents += 1
        self.results[self.number] = {"line": self.number, "code": 413,
                                     "detail": f"document of {size} bytes is over the limit of {self.line_limit}"}

    def _stop(self, detail: str, *, next_line: bool = False) -> None:
        line = self.number + 1 if next_line else self.number
        self.results[line] = {"line": line, "code": 413, "detail": detail}
        self.stopped = True
        self.tail.clear()

    def _flush(self) -> None:
        if not self.chunk:
            return
        outcomes = intake.write(self.services, [intake.Item(self.project_id, doc, self.token_hash, answered=False)
                                                for _, doc in self.chunk])
        refused = next((o for o in outcomes if isinstance(o, errors.Unauthorized)), None)
        if refused is not None and not any("id" in r for r in self.results.values()):
            raise refused  # revoked before anything was stored: the request's answer, not each line's
        for (n, _), outcome in zip(self.chunk, outcomes, strict=True):
            if isinstance(outcome, errors.FirehookError):
                self.results[n] = {"line": n, "code": outcome.status, "detail": outcome.detail}
            else:
                self.results[n] = {"line": n, "id": outcome.doc["id"],
                                   "status": "created" if outcome.created else "updated", "runs": len(outcome.runs)}
                self.any_runs = self.any_runs or bool(outcome.runs)
        self.chunk.clear()


def ingest_batch(services: Services, principal: model.Token, project_id: str, data: bytes, *,
                 token_hash: str | None = None) -> dict[str, Any]:
    """A whole NDJSON body at once (the service call; HTTP feeds it as it arrives)."""
    batch = BatchIngest(services, principal, project_id, token_hash=token_hash)
    batch.feed(data)
    return batch.finish()



