"""The host functions of one run: what the prelude's ``__fh(op, arg)`` reaches.

One :class:`HostSession` per run holds the run's inputs, log, storage, fetch counter and
deadline. :meth:`HostSession.dispatch` never raises: a script's bad call becomes an error
envelope the prelude turns into a JavaScript exception, and a limit that ends the run is
recorded in :attr:`HostSession.abort`, which the engine's interrupt poll reads so the script
stops at once and cannot catch it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from firehook.scripts import crypto, fetch, limits
from firehook.scripts.storage import QuotaStorage, StorageBackend, StorageRuleError

_NULL = '{"v":null}'


def _value(value: Any) -> str:
    return '{"v":' + json.dumps(value, ensure_ascii=False) + "}"


def _error(name: str, message: str) -> str:
    return json.dumps({"e": [name, message]}, ensure_ascii=False)


class Abort:
    """A limit that ended the run: its name (``limits.*``) and the log line that says so."""

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        self.message = message


class HostSession:
    """Per-run state behind the host functions."""

    def __init__(
        self,
        *,
        source: str,
        activity_json: str,
        project: Mapping[str, Any],
        variables: Mapping[str, Any],
        storage: StorageBackend,
        script_limits: limits.ScriptLimits,
        log: limits.RunLog,
        outbound_allow: Sequence[str] = (),
        dry_fetch: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.activity_json = activity_json
        self.limits = script_limits
        self.log = log
        self.storage = QuotaStorage(storage, script_limits)
        self.dry_fetch = dry_fetch
        self.clock = clock
        self.deadline = clock() + script_limits.timeout
        self.abort: Abort | None = None
        self.internal_error: Exception | None = None
        self.fetch_count = 0
        self.fetcher = fetch.Fetcher(
            allow=outbound_allow,
            timeout=script_limits.fetch_timeout,
            max_bytes=script_limits.fetch_max_bytes,
            time_left=self.time_left,
        )
        # Serialised now, so that a project or variables that are not JSON fail the caller at
        # once rather than looking like the script's fault.
        self._context_json = json.dumps(
            {
                "project": project,
                "variables": variables,
                "seed": [secrets.randbits(32) | 1 for _ in range(4)],
                "logLimit": script_limits.log_bytes,
            },
            ensure_ascii=False,
        )
        self._ops: dict[str, Callable[[str], str]] = {
            "input": self._input,
            "log": self._log,
            "storage.get": self._storage_get,
            "storage.set": self._storage_set,
            "storage.remove": self._storage_remove,
            "storage.clear": self._storage_clear,
            "hmac": self._hmac,
            "hash": self._hash,
            "fetch": self._fetch,
        }

    # ---- plumbing -----------------------------------------------------------------------

    def time_left(self) -> float:
        return self.deadline - self.clock()

    def should_interrupt(self) -> bool:
        """The engine's interrupt poll: past the deadline, or a limit ended the run."""
        return self.abort is not None or self.clock() >= self.deadline

    def end(self, limit: str, message: str) -> str:
        """Record that ``limit`` ends the run (first one wins) and answer the call with it."""
        if self.abort is None:
            self.abort = Abort(limit, message)
        return _error("Error", message)

    def dispatch(self, op: object, arg: object) -> str:
        """Entry point of every host call; never raises."""
        if self.abort is not None:
            return _error("Error", self.abort.message)
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return _error("Error", f"unknown host operation {op!r}")
        try:
            return handler(arg if isinstance(arg, str) else "")
        except StorageRuleError as exc:
            return _error(exc.js_name, exc.message)
        except crypto.CryptoError as exc:
            return _error("Error", str(exc))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return _error("TypeError", f"invalid arguments to {op}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a fault of ours must not escape into the guest
            # E.g. the storage database failing: the script sees an Error, and the log says the
            # fault was firehook's (by type only: the message may hold internals).
            self.internal_error = exc
            self.log.write(f"Internal error in firehook while handling {op}: {type(exc).__name__}")
            return _error("Error", f"internal error in firehook while handling {op}")

    # ---- inputs -------------------------------------------------------------------------

    def _input(self, _: str) -> str:
        """The run's inputs in one string (see ``__fh_main`` in the prelude)."""
        context = self._context_json
        header = f"{_utf16_len(context)},{_utf16_len(self.activity_json)}\n"
        return header + context + self.activity_json + self.source

    def _log(self, line: str) -> str:
        # Lone surrogates cannot be stored or sent anywhere; they become U+FFFD.
        if not line.isascii():
            line = line.encode("utf-8", "replace").decode("utf-8")
        self.log.write(line)
        return "cut" if self.log.cut else _NULL

    # ---- storage ------------------------------------------------------------------------

    def _storage_get(self, key: str) -> str:
        return _value(self.storage.get(key))

    def _storage_set(self, arg: str) -> str:
        key, encoded = json.loads(arg)
        if not isinstance(key, str) or not isinstance(encoded, str):
            raise TypeError("key and value must be strings")
        self.storage.set(key, encoded)
        return _NULL

    def _storage_remove(self, key: str) -> str:
        self.storage.remove(key)
        return _NULL

    def _storage_clear(self, _: str) -> str:
        self.storage.clear()
        return _NULL

    # ---- crypto -------------------------------------------------------------------------

    def _hmac(self, arg: str) -> str:
        alg, key, parts, fmt = json.loads(arg)
        return _value(crypto.hmac_digest(alg, key, parts, fmt))

    def _hash(self, arg: str) -> str:
        alg, parts, fmt = json.loads(arg)
        return _value(crypto.hash_digest(alg, parts, fmt))

    # ---- fetch --------------------------------------------------------------------------

    def _fetch(self, arg: str) -> str:
        self.fetch_count += 1
        if self.fetch_count > self.limits.fetch_limit:
            return self.end(
                limits.FETCH_LIMIT,
                f"fetch limit of {self.limits.fetch_limit} calls per run exceeded",
            )
        request = _parse_request(arg)
        self.log.write(f"HTTP request: {request.method} {request.url}")
        if self.dry_fetch:
            return self._dry(request)
        started = self.clock()
        try:
            response = self.fetcher.fetch(request)
        except fetch.OutOfTime:
            return self.end(limits.TIMEOUT, self.timeout_message())
        except fetch.ResponseTooLarge as exc:
            self.log.write(f"HTTP error: {exc} ({_ms(started, self.clock())} ms)")
            return self.end(
                limits.FETCH_MAX_BYTES,
                f"fetch response size limit of {self.limits.fetch_max_bytes} bytes exceeded",
            )
        except fetch.NetworkError as exc:
            self.log.write(f"HTTP error: {exc} ({_ms(started, self.clock())} ms)")
            if self.time_left() <= 0:
                return self.end(limits.TIMEOUT, self.timeout_message())
            return _error("TypeError", f"fetch failed: {exc}")
        elapsed = _ms(started, self.clock())
        self.log.write(f"HTTP response: {response.status} {response.status_text} ({elapsed} ms)")
        return _value(
            {
                "status": response.status,
                "statusText": response.status_text,
                "headers": response.headers,
                "url": response.url,
                "redirected": response.redirected,
                "body": response.body.decode("utf-8", "replace"),
            }
        )

    def _dry(self, request: fetch.FetchRequest) -> str:
        """Log what would have been sent and answer a canned ``200 {}``."""
        try:
            fetch.check_url(request.url)
        except fetch.NetworkError as exc:
            return _error("TypeError", f"fetch failed: {exc}")
        for name, value in request.headers:
            self.log.write(f"  {name}: {value}")
        if request.body is not None:
            self.log.write("  body: " + request.body.decode("utf-8", "replace"))
        self.log.write("HTTP response: 200 OK (dry run: nothing was sent)")
        return _value(
            {
                "status": 200,
                "statusText": "OK",
                "headers": [["content-type", "application/json"]],
                "url": request.url,
                "redirected": False,
                "body": "{}",
            }
        )

    def timeout_message(self) -> str:
        """The log line of a run that ran out of time."""
        return f"time limit of {limits.describe_seconds(self.limits.timeout)} s exceeded"


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as JavaScript counts it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _ms(start: float, end: float) -> int:
    return round((end - start) * 1000)


def _parse_request(arg: str) -> fetch.FetchRequest:
    data = json.loads(arg)
    if not isinstance(data, dict):
        raise TypeError("request must be an object")
    url, method, redirect = data.get("url"), data.get("method"), data.get("redirect")
    if not isinstance(url, str) or not isinstance(method, str) or not isinstance(redirect, str):
        raise TypeError("url, method and redirect must be strings")
    headers = []
    for pair in data.get("headers") or []:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("header names and values must be strings")
        if not name or any(c in name for c in "\r\n:") or any(c in value for c in "\r\n"):
            raise ValueError(f"invalid header {name!r}")
        headers.append((name, value))
    body = data.get("body")
    raw: bytes | None = None
    if isinstance(body, str):
        raw = (
            body.encode("latin-1") if data.get("binary") else body.encode("utf-8", "surrogatepass")
        )
    elif body is not None:
        raise TypeError("body must be a string")
    return fetch.FetchRequest(
        url=url, method=fetch.normalise_method(method), headers=headers, body=raw, redirect=redirect
    )
