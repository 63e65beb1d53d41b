"""Running the app on uvicorn: the listening socket, a time limit on a request's head, and signals.

uvicorn (on h11) gives HTTP/1.1 keep-alive that survives error replies (a body left unread is
drained), chunked bodies, a 2048-connection listen backlog and graceful shutdown. Three things are
added here: a client that opens a connection and then stalls before its request head is complete is
disconnected after `head_timeout` seconds (uvicorn times out only idle keep-alive connections; a
stalled body is handled by the app, app.py), a request that is malformed at the HTTP level gets the
same JSON 400 as every other bad request, naming the fault, and SIGTERM / SIGINT stop the server
without being raised again afterwards, so `alignlab serve` exits with status 0 when stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import threading
import time
from typing import Any, Iterator

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

BACKLOG = 2048


def protocol_class(head_timeout: float) -> type:
    class HeadTimeoutH11(H11Protocol):
        """h11 protocol that closes a connection whose request head does not arrive in time."""

        _timer: asyncio.TimerHandle | None = None
        _timer_cycle: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if not self._waiting_for_head() or self.transport.is_closing():
                return
            if self._timer is not None and self._timer_cycle is self.cycle:
                return  # already timing this head: more bytes do not buy more time
            self._disarm()
            self._timer_cycle = self.cycle
            self._timer = self.loop.call_later(head_timeout, self._expire, self.cycle)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, cycle: Any) -> None:
            self._timer = None
            if self.cycle is cycle and self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            """The answer to a request h11 cannot parse (a bad Content-Length, two of them, a Transfer-Encoding
            other than chunked, a malformed head): uvicorn's is text/plain "Invalid HTTP request received.";
            this one is the OpenAI-style JSON error naming what h11 found wrong. uvicorn calls it inside its
            `except h11.RemoteProtocolError`, so that error is the one being handled."""
            exc = sys.exc_info()[1]
            detail = str(exc) if isinstance(exc, h11.RemoteProtocolError) and str(exc) else msg
            error = {"message": f"malformed HTTP request: {detail}", "type": "invalid_request_error", "param": None,
                     "code": "bad_http_request"}
            body = json.dumps({"error": error}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            try:
                for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                              h11.Data(data=body), h11.EndOfMessage()):
                    self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:  # a response had already begun on this connection: nothing to add
                pass
            self.transport.close()

    return HeadTimeoutH11


class Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT / SIGTERM without re-raising the signal after shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (clients that connect before the server runs wait in the backlog)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def make_server(app: Any, head_timeout: float, graceful_s: float = 5.0) -> Server:
    config = uvicorn.Config(app, http=protocol_class(head_timeout), loop="asyncio", lifespan="on",
                            log_config=None, log_level="warning", access_log=False, backlog=BACKLOG,
                            timeout_keep_alive=5, timeout_graceful_shutdown=int(max(1, graceful_s)),
                            limit_concurrency=1000, server_header=False)
    return Server(config)


class Running:
    """A server running in a background thread (tests, notebooks): `url`, `app`, `stop()`."""

    def __init__(self, app: Any, sock: socket.socket, head_timeout: float):
        self.app, self.sock = app, sock
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, port
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/v1"
        self.server = make_server(app, head_timeout)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name="alignlab-serve-http")

    def start(self, timeout: float = 30.0) -> "Running":
        self.thread.start()
        until = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > until:
                raise RuntimeError("alignlab serve did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
