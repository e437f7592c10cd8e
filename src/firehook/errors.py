"""One exception tree for firehook.

    FirehookError
    ├── InvalidInput          400: bad input; ``detail`` names the field(s)
    ├── Unauthorized          401: no token, an unknown token, or a relay signature that fails
    ├── Forbidden             403: the token may not do this
    ├── NotFound              404
    ├── Conflict              409
    ├── PayloadTooLarge       413
    ├── StoreError            a database failure, translated at the driver edge
    │   └── DatabaseBusy      the database stayed locked by another writer past the busy timeout
    ├── OutboundBlocked       the outbound guard refused an address
    └── ScriptError           the JavaScript runtime reported a problem

Driver, HTTP and engine errors are translated into these at the edge; the API turns them
into the one error format of SPEC §2.3.
"""

from __future__ import annotations

from typing import Any


class FirehookError(Exception):
    """Root of every error firehook raises on purpose."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail if detail is not None else message


class InvalidInput(FirehookError):
    status = 400
    title = "Bad Request"

    @classmethod
    def field(cls, name: str, message: str) -> InvalidInput:
        """An error about one named field: ``detail`` is ``{name: message}``."""
        return cls(f"{name}: {message}", {name: message})


class Unauthorized(FirehookError):
    status = 401
    title = "Unauthorized"


class Forbidden(FirehookError):
    status = 403
    title = "Forbidden"


class NotFound(FirehookError):
    status = 404
    title = "Not Found"


class Conflict(FirehookError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(FirehookError):
    status = 413
    title = "Payload Too Large"


class TooManyRequests(FirehookError):
    status = 429
    title = "Too Many Requests"


class StoreError(FirehookError):
    status = 503
    title = "Service Unavailable"


class DatabaseBusy(StoreError):
    """The database stayed locked past the busy timeout: a failure of the whole database at
    that moment, which trying again at once (each write of a group alone) cannot mend."""


class OutboundBlocked(FirehookError):
    """The outbound guard refused an address; the message names it and how to allow it."""

    status = 400
    title = "Bad Request"


class ScriptError(FirehookError):
    """A script problem: does not compile, or failed at run time; ``line`` and ``column``
    locate it in the script when known (1-based)."""

    status = 400
    title = "Bad Request"

    def __init__(self, message: str, detail: Any = None, *, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message, detail)
        self.line = line
        self.column = column


def error_body(status: int, title: str, detail: Any) -> dict[str, Any]:
    """The one API error format (SPEC §2.3)."""
    return {"status": "error", "code": status, "title": title, "detail": detail}
