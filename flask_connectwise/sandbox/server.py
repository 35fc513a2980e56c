"""``Sandbox``: the pipeline in ``app`` served over HTTP/1.1 keep-alive on a background thread."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

from .app import Headers, HttpRequest, SandboxApp
from .rules import SandboxRules

log = logging.getLogger("flask_connectwise.sandbox")


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # The listen backlog. socketserver's default of 5 made the kernel drop and then reset new
    # connections whenever more than 5 arrived faster than the accept loop took them (a load
    # benchmark's burst): a write sent on such a connection came back "connection broke".
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], family: int) -> None:
        self.address_family = family
        self.sandbox: Sandbox | None = None
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            log.exception("sandbox: error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ConnectWiseSandbox/1.0"
    sys_version = ""
    timeout = 300
    server: _Server

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)
        if self.server.sandbox is not None:
            self.server.sandbox._connection_opened()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self.send_error(400, "Bad request framing")
            self.close_connection = True
            return
        sandbox = self.server.sandbox
        assert sandbox is not None
        req = HttpRequest(self.command, self.path, Headers(self.headers.items()), body)
        outcome = sandbox.handle(req)
        if outcome.hold:
            sandbox.wait(outcome.hold)
        if outcome.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(outcome.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


class Sandbox(SandboxApp):
    """A ConnectWise-compatible server. The port is bound at construction, so ``url`` is
    known before ``start()``. A stopped sandbox cannot be started again."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        company_id: str = "sandbox",
        public_key: str | None = None,
        private_key: str | None = None,
        client_id: str | None = None,
        codebase: str = "v2025_1/",
        latency: float = 0.0,
        seed: int = 1234,
        cloud_auth_404: bool = False,
        rules: SandboxRules | str | dict[str, Any] | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = _Server((host, port), family)
        self.host = host
        self.port: int = self._server.server_address[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        super().__init__(
            f"http://{shown}:{self.port}",
            company_id=company_id,
            public_key=public_key,
            private_key=private_key,
            client_id=client_id,
            codebase=codebase,
            latency=latency,
            seed=seed,
            cloud_auth_404=cloud_auth_404,
            rules=rules,
        )
        self._server.sandbox = self
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def app_config(self) -> dict[str, Any]:
        """The Flask config that lets an app use this sandbox, and no other loopback port."""
        return {
            "CONNECTWISE_ALLOW_LOOPBACK_HTTP": True,
            "CONNECTWISE_LOOPBACK_PORTS": [self.port],
        }

    def start(self) -> Sandbox:
        """Serve on a daemon thread (each connection gets its own thread); returns self."""
        if self._stopped:
            raise RuntimeError("this Sandbox was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"connectwise-sandbox:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and wake held requests (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        with self._server.sockets_lock:
            sockets = list(self._server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self._thread else "bound")
        return f"<Sandbox {self.url} company_id={self.company_id!r} {state}>"
