"""Loopback servers that answer with exactly the bytes a test scripts, for fetch's HTTP client."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Handler = Callable[["Peer"], None]


@dataclass
class Peer:
    """One accepted connection, as its handler sees it."""

    sock: socket.socket
    number: int  # 1 for the server's first connection
    server: RawServer
    buf: bytes = b""

    def request(self) -> bytes | None:
        """The next whole request (head and Content-Length body), or None when the client
        closed the connection."""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = self.sock.recv(65536)
            if not data:
                return None
            rest += data
        self.buf = rest[length:]
        whole = head + b"\r\n\r\n" + rest[:length]
        self.server.requests.append((self.number, whole))
        return whole

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


@dataclass
class RawServer:
    """A TCP (or TLS) server on 127.0.0.1; each connection runs ``handler`` on its own thread,
    and is closed when the handler returns."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    port: int = 0
    connections: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)  # connections the server has closed

    def __post_init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        if self.tls is not None:
            self.tls.sni_callback = lambda sslobj, name, ctx: self.server_names.append(name)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock, self.connections), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            self.handler(Peer(sock, number, self))
        except (OSError, ssl.SSLError):
            pass  # the client gave up or refused the certificate: expected in these tests
        finally:
            sock.close()
            self.closed.append(number)

    def close(self) -> None:
        self._listener.close()


def answering(*responses: bytes) -> Handler:
    """A handler that answers each request on a connection with the next of ``responses``,
    the last one repeated, and keeps the connection open for more."""

    def handle(peer: Peer) -> None:
        index = 0
        while peer.request() is not None:
            peer.send(responses[min(index, len(responses) - 1)])
            index += 1

    return handle


def ok(body: bytes = b"ok", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for the DNS name ``name`` only (no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context
