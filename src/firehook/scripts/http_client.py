"""HTTP/1.1 on one connection, for the script's synchronous ``fetch``.

A request goes out in one ``sendall`` (head and body joined) on a ``TCP_NODELAY`` socket. The
response is parsed with bytes operations as it arrives: the status line, a header section of at
most 64 KiB and 100 lines (folded lines joined, lines that are not ``name: value`` skipped),
interim 1xx responses skipped, then a body framed by ``Transfer-Encoding: chunked`` (which wins
over ``Content-Length``), ``Content-Length`` or the end of the connection; none after HEAD, 204
and 304. Every connect, send and receive waits at most what ``wait()`` answers, asked again each
time (``fetch``: until the call's limit or the run's end; it raises when no time is left).

https: the ``ssl`` module's default context (the system's CAs, ``CERT_REQUIRED``, the host name
checked) with the URL's host as the TLS name while the socket connects to the checked address
the caller gives; an IP literal is matched against the certificate's addresses, without SNI.

A failure is an :class:`HTTPError` worded for the script's author. ``stale`` says a kept-alive
connection failed before any byte of the response came back (the server had closed it): only
then may the caller send the request again, on a new connection, when it is idempotent.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 100
_MAX_INTERIM = 16  # 1xx responses before the final one
_MAX_CHUNK_LINE = 4096
_READ = 64 * 1024
_HEX = b"0123456789abcdefABCDEF"

# How a response body ends.
NO_BODY, SIZED, CHUNKED, UNTIL_CLOSE = range(4)


class HTTPError(Exception):
    """The exchange failed; ``str()`` is the reason, for the script's author."""

    def __init__(self, reason: str, *, stale: bool = False) -> None:
        super().__init__(reason)
        self.stale = stale


class ConnectFailed(HTTPError):
    """No TCP connection to this address (the host's next address may be tried)."""


_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The process's client context, made on the first https request."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def os_words(exc: BaseException) -> str:
    """An OS error in words: the errno's text when there is one."""
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if errno else (str(exc) or type(exc).__name__)


def _tls_words(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc.reason or exc)


def connect(address: str, port: int, host: str, tls: bool, wait: Callable[[], float]) -> Connection:
    """A connection to ``address`` (checked by the caller) for ``host``, the URL's host."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(wait())
        try:
            sock.connect((address, port))
        except TimeoutError:
            raise HTTPError(f"timed out connecting to {host}") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {host}: {os_words(exc)}") from None
        if tls:
            sock.settimeout(wait())
            try:
                sock = tls_context().wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                raise HTTPError(f"TLS error with {host}: {_tls_words(exc)}") from None
            except TimeoutError:
                raise HTTPError(f"timed out connecting to {host}") from None
            except OSError as exc:
                raise HTTPError(f"TLS error with {host}: {os_words(exc)}") from None
    except BaseException:
        sock.close()
        raise
    return Connection(sock, host)


def _tokens(values: list[str]) -> set[str]:
    """The comma-separated tokens of a header's values, lower case."""
    return {t.strip() for t in ",".join(values).lower().split(",")}


@dataclass(slots=True)
class Head:
    """A final response's status line and header section, and how its body is framed."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    framing: int
    length: int
    keep_alive: bool
    content_encoding: str


class Connection:
    """One socket, carrying one request at a time. ``reused`` is set by whoever keeps idle
    connections; ``clean`` says the last response was read to its end and nothing followed it."""

    __slots__ = ("sock", "host", "buf", "reused", "clean", "idle_since")

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.buf = b""
        self.reused = False
        self.clean = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.sock.close()

    def dropped(self) -> bool:
        """True when something arrived on the idle connection: a FIN, a reset, stray bytes."""
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        poller = select.poll()
        try:
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    # -- the exchange --------------------------------------------------------------------------

    def request(self, data: bytes, head_request: bool, wait: Callable[[], float]) -> Head:
        """Send ``data`` (a whole request) and read the final response's head."""
        self.clean = False
        sock = self.sock
        sock.settimeout(wait())
        try:
            sock.sendall(data)
        except TimeoutError:
            raise HTTPError(f"timed out sending the request to {self.host}") from None
        except ssl.SSLError as exc:
            raise HTTPError(f"TLS error with {self.host}: {_tls_words(exc)}") from None
        except OSError as exc:
            raise HTTPError(f"connection to {self.host} failed: {os_words(exc)}", stale=self.reused) from None
        for _ in range(_MAX_INTERIM):
            head = self._head(head_request, wait)
            if head is not None:
                return head
        raise self._bad(f"more than {_MAX_INTERIM} interim (1xx) responses")

    def _recv(self, wait: Callable[[], float], stale: bool = False) -> bytes:
        sock = self.sock
        sock.settimeout(wait())
        try:
            return sock.recv(_READ)
        except TimeoutError:
            raise HTTPError(f"timed out waiting for {self.host}") from None
        except ssl.SSLError as exc:
            raise HTTPError(f"TLS error with {self.host}: {_tls_words(exc)}") from None
        except OSError as exc:
            raise HTTPError(f"connection to {self.host} failed: {os_words(exc)}", stale=stale) from None

    def _bad(self, what: str) -> HTTPError:
        return HTTPError(f"invalid response from {self.host}: {what}")

    def _cut(self) -> HTTPError:
        return HTTPError(f"{self.host} closed the connection before the end of the response body")

    def _head(self, head_request: bool, wait: Callable[[], float]) -> Head | None:
        """The next head read; None for an interim 1xx response (consumed)."""
        buf, self.buf = self.buf, b""
        scan = 0
        while True:
            end = buf.find(b"\r\n\r\n", scan)
            bare = buf.find(b"\n\n", scan, end if end >= 0 else len(buf))
            if bare >= 0:
                end, skip = bare, 2
                break
            if end >= 0:
                skip = 4
                break
            if len(buf) > MAX_HEAD:
                raise self._bad(f"the header section is larger than {MAX_HEAD // 1024} KiB")
            scan = max(0, len(buf) - 3)
            # Nothing of the response yet on a kept-alive connection: the server had closed it.
            data = self._recv(wait, stale=self.reused and not buf)
            if not data:
                if not buf:
                    raise HTTPError(f"{self.host} closed the connection without a response", stale=self.reused)
                raise self._bad("the connection closed in the middle of the header section")
            buf += data
        if end > MAX_HEAD:
            raise self._bad(f"the header section is larger than {MAX_HEAD // 1024} KiB")
        self.buf = buf[end + skip:]
        text = buf[:end].decode("latin-1")
        lines = text.split("\r\n") if skip == 4 else [line.rstrip("\r") for line in text.split("\n")]
        if len(lines) > MAX_HEADER_LINES + 1:
            raise self._bad(f"more than {MAX_HEADER_LINES} header lines")

        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not (code.isascii() and code.isdigit()):
            raise self._bad(f"the status line is not HTTP/1.x: {lines[0][:60]!r}")
        status = int(code)
        if status < 100:
            raise self._bad(f"the status line is not HTTP/1.x: {lines[0][:60]!r}")
        if status == 101:
            raise self._bad("101 Switching Protocols to a request that asked for no upgrade")

        headers: list[tuple[str, str]] = []
        length: list[str] = []
        transfer: list[str] = []
        connection: list[str] = []
        encoding: list[str] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t"):  # obsolete line folding: part of the previous value
                if headers:
                    name, value = headers[-1]
                    more = line.strip(" \t")
                    headers[-1] = (name, f"{value} {more}" if value else more)
                continue
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                continue  # not a header line (browsers skip these too)
            value = value.strip(" \t")
            headers.append((name, value))
            lower = name.lower()
            if lower == "content-length":
                length.append(value)
            elif lower == "transfer-encoding":
                transfer.append(value)
            elif lower == "connection":
                connection.append(value)
            elif lower == "content-encoding":
                encoding.append(value)
        if status < 200:
            return None

        tokens = _tokens(connection) if connection else set()
        keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
        framing, size = UNTIL_CLOSE, 0
        codings = [t.strip() for t in ",".join(transfer).lower().split(",")] if transfer else []
        codings = [c for c in codings if c and c != "identity"]
        if head_request or status in (204, 304):
            framing = NO_BODY
        elif codings:
            if codings != ["chunked"]:
                raise self._bad(f"unsupported Transfer-Encoding {', '.join(transfer)!r}")
            framing = CHUNKED
            # Both framings at once is how responses are split: not trusted with another request.
            keep_alive = keep_alive and not length
        elif length:
            values = {v.strip() for v in ",".join(length).split(",")}
            if len(values) != 1:
                raise self._bad(f"conflicting Content-Length values {', '.join(length)!r}")
            (value,) = values
            if not value.isascii() or not value.isdigit() or len(value) > 18:
                raise self._bad(f"invalid Content-Length {value!r}")
            framing, size = SIZED, int(value)
        if framing == UNTIL_CLOSE:
            keep_alive = False
        return Head(status, reason.strip(), headers, framing, size, keep_alive, ", ".join(encoding))

    # -- the body ------------------------------------------------------------------------------

    def body(self, head: Head, wait: Callable[[], float]) -> Iterator[bytes]:
        """The body's bytes as they arrive (chunked framing undone); ``clean`` is set at its end
        when nothing followed it."""
        if head.framing == SIZED:
            yield from self._sized(head.length, wait)
        elif head.framing == CHUNKED:
            yield from self._chunked(wait)
        elif head.framing == UNTIL_CLOSE:
            buf, self.buf = self.buf, b""
            if buf:
                yield buf
            while buf := self._recv(wait):
                yield buf
        else:
            self.clean = not self.buf

    def _sized(self, remaining: int, wait: Callable[[], float]) -> Iterator[bytes]:
        buf, self.buf = self.buf, b""
        while remaining:
            if not buf:
                buf = self._recv(wait)
                if not buf:
                    raise self._cut()
            if len(buf) > remaining:
                piece, buf = buf[:remaining], buf[remaining:]
            else:
                piece, buf = buf, b""
            remaining -= len(piece)
            yield piece
        self.clean = not buf

    def _line(self, buf: bytes, wait: Callable[[], float], limit: int) -> tuple[bytes, bytes]:
        """The next line of ``buf`` (more is read as needed) and what follows it."""
        end = buf.find(b"\n")
        while end < 0:
            if len(buf) > limit:
                raise self._bad("a line of the chunked body is too long")
            data = self._recv(wait)
            if not data:
                raise self._cut()
            start = len(buf)
            buf += data
            end = buf.find(b"\n", start)
        return buf[:end].rstrip(b"\r"), buf[end + 1:]

    def _chunked(self, wait: Callable[[], float]) -> Iterator[bytes]:
        buf, self.buf = self.buf, b""
        while True:
            line, buf = self._line(buf, wait, _MAX_CHUNK_LINE)
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not size_text or len(size_text) > 16 or size_text.translate(None, _HEX):
                raise self._bad(f"invalid chunk size line {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            while size:
                if not buf:
                    buf = self._recv(wait)
                    if not buf:
                        raise self._cut()
                piece, buf = buf[:size], buf[size:]
                size -= len(piece)
                yield piece
            while len(buf) < 2 and buf != b"\n":
                data = self._recv(wait)
                if not data:
                    raise self._cut()
                buf += data
            if buf[:2] == b"\r\n":
                buf = buf[2:]
            elif buf[:1] == b"\n":
                buf = buf[1:]
            else:
                raise self._bad("a chunk is longer than its size line says")
        trailers = 0
        while True:  # the trailer section, read and dropped
            line, rest = self._line(buf, wait, MAX_HEAD)
            trailers += len(buf) - len(rest)
            buf = rest
            if not line:
                break
            if trailers > MAX_HEAD:
                raise self._bad(f"the trailer section is larger than {MAX_HEAD // 1024} KiB")
        self.clean = not buf
