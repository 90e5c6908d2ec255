"""An embedded OpenAI-compatible server: stdlib ``ThreadingHTTPServer`` on loopback, in-process.

``POST /v1/chat/completions`` answers with ``examples.llm.sim.respond`` (deterministic: the same model
and messages always get the same text) in the OpenAI response format; ``GET /v1/models`` lists models.
It listens on ``127.0.0.1`` on an ephemeral port chosen by the OS and serves from a daemon thread.

Knobs, as constructor arguments or, for the default server the examples start when ``OPENAI_BASE_URL``
is unset, as environment variables:

============================  ================================================================
``latency``                   seconds each completion takes (``EMBEDDED_LLM_LATENCY``, default 0.02)
``failure_rate``              fraction of completions that fail (``EMBEDDED_LLM_FAILURE_RATE``)
``failure_modes``             how they fail, chosen in turn: ``429``, ``500``, ``malformed``
                              (a 200 whose body is not JSON) (``EMBEDDED_LLM_FAILURE_MODES``,
                              comma-separated, default ``429``)
``api_key``                   require ``Authorization: Bearer <api_key>``; anything else is a 401
                              (``EMBEDDED_LLM_API_KEY``)
``seed``                      seed of the failure draw, so a failure rate fails the same requests
============================  ================================================================

Use it as a context manager (``with EmbeddedServer(...) as server: server.url``) or ``start()`` and
``stop()``; ``stop()`` also closes connections clients keep alive, so no handler thread outlives it.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from examples.llm.sim import digest, respond

FAILURE_MODES = ("429", "500", "malformed")
MODELS = ("sim-small", "sim-medium", "sim-large")


class EmbeddedServer:
    """A local OpenAI-compatible chat completions server with deterministic answers."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        failure_modes: Iterable[str] = ("429",),
        api_key: str | None = None,
        seed: int = 0,
    ):
        modes = tuple(failure_modes)
        unknown = [m for m in modes if m not in FAILURE_MODES]
        if unknown or not modes:
            raise ValueError(f"failure_modes must be some of {', '.join(FAILURE_MODES)}; got {modes!r}")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1, got {failure_rate!r}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        self.latency = float(latency)
        self.failure_rate = float(failure_rate)
        self.failure_modes = modes
        self.api_key = api_key
        self.requests = 0  # completions received (failed ones included)
        self.failures = 0  # completions answered with an injected failure
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """The base URL to give a client (``OPENAI_BASE_URL``): ``http://127.0.0.1:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("the embedded server is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "EmbeddedServer":
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="embedded-llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection; wait for the thread."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # ------------------------------------------------------------------ behaviour
    def _draw_failure(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self.failure_rate and self._random.random() < self.failure_rate:
                mode = self.failure_modes[self.failures % len(self.failure_modes)]
                self.failures += 1
                return mode
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: EmbeddedServer
    protocol_version = "HTTP/1.1"  # keep-alive: the client's pooled connections are reused
    timeout = 30  # an idle kept-alive connection is closed after this many seconds
    server_version = "ember-xcs-embedded-llm/1"

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and examples print their own
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str, headers: dict | None = None) -> None:
        body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
        self._send(status, body, headers=headers)

    def _authorized(self) -> bool:
        key = self.owner.api_key
        if key is None:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._error(401, "Incorrect or missing API key (send Authorization: Bearer <key>)", "invalid_request_error")
        return False

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route GET {self.path}", "invalid_request_error")
            return
        if self._authorized():
            data = [{"id": m, "object": "model", "owned_by": "ember-xcs"} for m in MODELS]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route POST {self.path}", "invalid_request_error")
            return
        if not self._authorized():
            return
        try:
            request = json.loads(raw)
            model = request["model"]
            messages = request["messages"]
            if not isinstance(model, str) or not isinstance(messages, list):
                raise TypeError("model must be a string and messages a list")
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"bad request body: {exc}", "invalid_request_error")
            return
        owner = self.owner
        if owner.latency:
            time.sleep(owner.latency)
        failure = owner._draw_failure()
        if failure == "429":
            self._error(429, "Rate limit reached (injected by the embedded server)", "rate_limit_error",
                        headers={"Retry-After": "0"})
            return
        if failure == "500":
            self._error(500, "The server had an error (injected by the embedded server)", "server_error")
            return
        if failure == "malformed":
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "unterminated')
            return
        text = respond(model, messages, request.get("temperature") or 0.0)
        ident = f"chatcmpl-{digest(model, json.dumps(messages, sort_keys=True)):016x}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
        body = {
            "id": ident,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            },
        }
        self._send(200, json.dumps(body).encode())


# ---------------------------------------------------------------------- the process-wide default
_DEFAULT: EmbeddedServer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_server() -> EmbeddedServer:
    """The embedded server the examples use when ``OPENAI_BASE_URL`` is unset: started on first use
    (configured by the ``EMBEDDED_LLM_*`` variables), stopped when the process exits."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or not _DEFAULT.running:
            modes = os.environ.get("EMBEDDED_LLM_FAILURE_MODES", "429")
            _DEFAULT = EmbeddedServer(
                latency=float(os.environ.get("EMBEDDED_LLM_LATENCY") or 0.02),
                failure_rate=float(os.environ.get("EMBEDDED_LLM_FAILURE_RATE") or 0.0),
                failure_modes=[m.strip() for m in modes.split(",") if m.strip()],
                api_key=os.environ.get("EMBEDDED_LLM_API_KEY") or None,
            ).start()
            atexit.register(_DEFAULT.stop)
        return _DEFAULT


def stop_default_server() -> None:
    """Stop the default embedded server if it runs (the next ``default_server()`` starts a new one)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        server, _DEFAULT = _DEFAULT, None
    if server is not None:
        server.stop()
