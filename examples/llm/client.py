"""An OpenAI-compatible chat client, and ``ChatModel``, the operator the examples call models with.

Configuration, as in the OpenAI SDKs, so any compatible endpoint (a hosted API, a local vLLM or Ollama
server) works unchanged:

- ``OPENAI_BASE_URL``: the endpoint, e.g. ``https://api.openai.com/v1`` or ``http://localhost:11434/v1``.
  Unset: the embedded server (``examples.llm.server``) is started on loopback and used.
- ``OPENAI_API_KEY``: sent as ``Authorization: Bearer ...`` when set.
- ``OPENAI_MODEL``: the default model name (``sim-medium``, a model of the embedded server, when unset);
  ``OPENAI_MODELS``: comma-separated model names for the examples that use several.

Every request goes through one process-wide ``httpx.Client`` (a pool of keep-alive connections, shared
by all operators and threads) with connect/read timeouts. 429 and 5xx answers are retried with a short
backoff (``max_retries``); then, like every other failure, they raise an ``LLMError`` subclass that names
the operator and the endpoint.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any, Mapping

import httpx

from xcs import Operator, XCSError

DEFAULT_MODEL = "sim-medium"
HOSTED_NEEDING_KEYS = ("api.openai.com",)


# ---------------------------------------------------------------------- errors
class LLMError(XCSError):
    """A chat completion failed. ``operator`` and ``endpoint`` say which call and where it went;
    ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, *, operator: str, endpoint: str, status: int | None = None):
        self.operator = operator
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{operator}: {message} (endpoint {endpoint})")


class EndpointUnreachableError(LLMError):
    """Nothing answered at the endpoint (connection refused, unknown host, TLS failure)."""


class EndpointTimeoutError(LLMError):
    """The endpoint did not answer within the client's timeout."""


class RateLimitError(LLMError):
    """HTTP 429 from the endpoint, still after the retries."""


class ServerError(LLMError):
    """HTTP 5xx from the endpoint, still after the retries."""


class MalformedResponseError(LLMError):
    """The endpoint answered 200 with a body that is not an OpenAI chat completion."""


class MissingAPIKeyError(LLMError):
    """The endpoint needs an API key and ``OPENAI_API_KEY`` is not set."""


class AuthenticationError(LLMError):
    """The endpoint rejected the API key (HTTP 401/403)."""


class RequestError(LLMError):
    """Any other HTTP 4xx: an unknown model, a bad request."""


# ---------------------------------------------------------------------- the shared HTTP pool
_HTTP: httpx.Client | None = None
_HTTP_LOCK = threading.Lock()


def http_client() -> httpx.Client:
    """The one ``httpx.Client`` every ``ChatClient`` sends through (closed when the process exits)."""
    global _HTTP
    if _HTTP is None:
        with _HTTP_LOCK:
            if _HTTP is None:
                _HTTP = httpx.Client(
                    limits=httpx.Limits(max_connections=128, max_keepalive_connections=64, keepalive_expiry=30),
                    headers={"User-Agent": "ember-xcs-examples"},
                )
                atexit.register(close_http_client)
    return _HTTP


def close_http_client() -> None:
    global _HTTP
    with _HTTP_LOCK:
        client, _HTTP = _HTTP, None
    if client is not None:
        client.close()


# ---------------------------------------------------------------------- the client
def default_model() -> str:
    return os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL


def default_models(n: int) -> list[str]:
    """``n`` model names: ``OPENAI_MODELS`` (comma-separated, cycled) or the embedded server's models."""
    names = [m.strip() for m in (os.environ.get("OPENAI_MODELS") or "").split(",") if m.strip()]
    if not names:
        names = ["sim-small", "sim-medium", "sim-large"] if not os.environ.get("OPENAI_MODEL") else [default_model()]
    return [names[i % len(names)] for i in range(n)]


class ChatClient:
    """Where chat completions go: base URL, API key, timeouts and retries.

    ``base_url``/``api_key`` default to ``OPENAI_BASE_URL``/``OPENAI_API_KEY``; with no base URL at all
    the embedded server is started and used. The endpoint is resolved once, at construction. All
    state is private, so an operator holding a client has the same plan (and structure hash) whichever
    endpoint it talks to.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        backoff: float = 0.05,
    ):
        if base_url is None:
            base_url = os.environ.get("OPENAI_BASE_URL") or None
        if base_url is None:
            from examples.llm.server import default_server

            base_url = default_server().url
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY") or None
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._max_retries = max_retries
        self._backoff = backoff

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"ChatClient({self._base_url!r}, api_key={'set' if self._api_key else 'unset'})"

    def complete(
        self,
        operator: str,
        model: str,
        messages: list[dict],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant's text for ``messages``; ``operator`` names the caller in errors."""
        endpoint = f"{self._base_url}/chat/completions"

        def fail(kind: type[LLMError], message: str, status: int | None = None) -> LLMError:
            return kind(message, operator=operator, endpoint=endpoint, status=status)

        if self._api_key is None and any(host in self._base_url for host in HOSTED_NEEDING_KEYS):
            raise fail(MissingAPIKeyError, "this endpoint needs an API key: set OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        attempt = 0
        while True:
            try:
                response = http_client().post(endpoint, json=body, headers=headers, timeout=self._timeout)
            except httpx.TimeoutException as exc:
                raise fail(EndpointTimeoutError, f"no answer within the timeout ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise fail(EndpointUnreachableError, f"endpoint unreachable: {exc or type(exc).__name__}") from exc
            status = response.status_code
            if (status == 429 or status >= 500) and attempt < self._max_retries:
                attempt += 1
                time.sleep(_retry_delay(response, self._backoff * 2 ** (attempt - 1)))
                continue
            break
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if status == 429:
            raise fail(RateLimitError, f"HTTP 429 rate limited{tries}: {_detail(response)}", status)
        if status >= 500:
            raise fail(ServerError, f"HTTP {status} server error{tries}: {_detail(response)}", status)
        if status in (401, 403):
            if self._api_key is None:
                raise fail(MissingAPIKeyError, f"HTTP {status}: the endpoint needs an API key; set OPENAI_API_KEY", status)
            raise fail(AuthenticationError, f"HTTP {status}: the API key was rejected: {_detail(response)}", status)
        if status >= 400:
            raise fail(RequestError, f"HTTP {status}: {_detail(response)}", status)
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = response.text[:80]
            raise fail(
                MalformedResponseError,
                f"HTTP {status} with a body that is not a chat completion ({type(exc).__name__}): {snippet!r}",
                status,
            ) from exc
        if not isinstance(text, str):
            raise fail(MalformedResponseError, f"message content is {type(text).__name__}, not a string", status)
        return text


def _retry_delay(response: httpx.Response, fallback: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 5.0)
    except ValueError:
        return fallback


def _detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    except (ValueError, AttributeError):
        pass
    return response.text[:120] or response.reason_phrase


_SHARED: ChatClient | None = None


def default_client() -> ChatClient:
    """A client for the configured endpoint, shared by every ``ChatModel`` built without one (built
    anew when ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` changed or the embedded server was restarted)."""
    global _SHARED
    wanted = (os.environ.get("OPENAI_BASE_URL") or None, os.environ.get("OPENAI_API_KEY") or None)
    client = _SHARED
    if client is not None and wanted[1] == client._api_key and (
        wanted[0] == client._base_url or (wanted[0] is None and _is_default_server(client._base_url))
    ):
        return client
    _SHARED = client = ChatClient()
    return client


def _is_default_server(url: str) -> bool:
    from examples.llm import server

    default = server._DEFAULT
    return default is not None and default.running and default.url == url


# ---------------------------------------------------------------------- the operator
class ChatModel(Operator):
    """One chat model as an operator: ``{"prompt": str}`` in, ``{"text": str}`` out.

    ``name`` is how errors (and readers) refer to this call, e.g. ``"judge"``; ``system`` is an optional
    system prompt; ``temperature``/``max_tokens`` go to the endpoint as is.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        system: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        client: ChatClient | None = None,
    ):
        self.model = model or default_model()
        self.name = name or self.model
        self.system = system
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.client = client or default_client()

    def forward(self, *, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": str(inputs["prompt"])})
        label = f"ChatModel {self.name!r} (model {self.model!r})"
        text = self.client.complete(
            label, self.model, messages, temperature=self.temperature, max_tokens=self.max_tokens
        )
        return {"text": text}


__all__ = [
    "AuthenticationError", "ChatClient", "ChatModel", "EndpointTimeoutError", "EndpointUnreachableError",
    "LLMError", "MalformedResponseError", "MissingAPIKeyError", "RateLimitError", "RequestError",
    "ServerError", "close_http_client", "default_client", "default_model", "default_models", "http_client",
]
